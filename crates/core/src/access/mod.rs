//! Who is acting: users' roles and tenants, shared by the JSON API, the web
//! application and the audit log. A request carries one [`Actor`]; the
//! service layer checks it, so hiding a link is never the only guard.

use std::net::IpAddr;

/// What a user may do (`docs/web.md` has the table).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Everything, every tenant.
    BankAdmin,
    /// Monitoring, search, institutions, SAF, cards and balance files of its
    /// own institutions.
    BankOperator,
    /// Its orderer's prepaid cards, loads, moves, orders, statements,
    /// attestation, and its orderer's users.
    OrdererAdmin,
    /// Its orderer's prepaid cards, loads, moves, orders, statements,
    /// attestation.
    OrdererUser,
    /// Reads everything, and the audit log; changes nothing.
    Auditor,
}

impl Role {
    /// Every role, in the order the docs list them.
    pub const ALL: [Role; 5] = [
        Role::BankAdmin,
        Role::BankOperator,
        Role::OrdererAdmin,
        Role::OrdererUser,
        Role::Auditor,
    ];

    /// The name in the store, the CLI and the docs.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::BankAdmin => "bank-admin",
            Role::BankOperator => "bank-operator",
            Role::OrdererAdmin => "orderer-admin",
            Role::OrdererUser => "orderer-user",
            Role::Auditor => "auditor",
        }
    }

    /// The role named `name` (as [`Role::as_str`] spells it).
    pub fn parse(name: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == name)
    }

    /// Whether the role belongs to an orderer (else to the bank).
    pub fn is_orderer(self) -> bool {
        matches!(self, Role::OrdererAdmin | Role::OrdererUser)
    }
}

/// Whose data an actor may see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tenant {
    /// The bank as a whole (bank admins, auditors, machine clients).
    Bank,
    /// The named institutions only (bank operators).
    Institutions(Vec<String>),
    /// One prepaid orderer (orderer admins and users).
    Orderer(String),
}

/// Who makes a request, and from where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// The user's name, or the machine client's (`api-token`).
    pub user: String,
    pub role: Role,
    pub tenant: Tenant,
    /// The peer address, when over the network.
    pub from: Option<IpAddr>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_role_parses_back_from_its_name() {
        for role in Role::ALL {
            assert_eq!(Role::parse(role.as_str()), Some(role));
        }
        assert_eq!(Role::parse("admin"), None);
    }
}
