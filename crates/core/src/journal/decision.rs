//! A decision as the hub answers and the journal records it.

use std::fmt;

use crate::account::Balances;
use crate::iso8583::fields::ResponseCode;

/// Who made a decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, utoipa::ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum DecidedBy {
    /// The institution's account system answered.
    AccountSystem,
    /// cardhub decided in the account system's place.
    StandIn,
    /// A hub rule decided (card checks, limits, format, availability).
    HubRule,
}

impl DecidedBy {
    /// Every decider, in the journal's order.
    pub const ALL: [DecidedBy; 3] = [
        DecidedBy::AccountSystem,
        DecidedBy::StandIn,
        DecidedBy::HubRule,
    ];

    /// The decider with this journal name.
    pub fn parse(name: &str) -> Option<DecidedBy> {
        DecidedBy::ALL.into_iter().find(|d| d.as_str() == name)
    }

    /// The name in the journal, the API and logs.
    pub const fn as_str(self) -> &'static str {
        match self {
            DecidedBy::AccountSystem => "account_system",
            DecidedBy::StandIn => "stand_in",
            DecidedBy::HubRule => "hub_rule",
        }
    }
}

/// The hub's answer to a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub code: ResponseCode,
    /// DE 38 on approvals.
    pub auth_id: Option<String>,
    pub balances: Option<Balances>,
    pub decided_by: DecidedBy,
    /// Why, in words, for the journal and operators.
    pub reason: String,
    /// Adapter that answered, and its own result code.
    pub adapter: Option<String>,
    pub raw_code: Option<String>,
}

impl Decision {
    /// A decision by a hub rule.
    pub fn rule(code: ResponseCode, reason: impl Into<String>) -> Decision {
        Decision {
            code,
            auth_id: None,
            balances: None,
            decided_by: DecidedBy::HubRule,
            reason: reason.into(),
            adapter: None,
            raw_code: None,
        }
    }

    pub fn approved(&self) -> bool {
        self.code.is_approval()
    }
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} by {} ({})",
            self.code,
            self.decided_by.as_str(),
            self.reason
        )
    }
}
