//! The ledger's reads for people: statements, and the audit of its
//! invariants against the postings.

use rusqlite::{Connection, params};

use super::{StatementLine, Subject};

/// Postings of a card or of an orderer (its cards and its pooled account)
/// booked in `[from_us, to_us)`, oldest first.
pub(super) fn statement(
    conn: &Connection,
    subject: &Subject,
    from_us: i64,
    to_us: i64,
) -> rusqlite::Result<Vec<StatementLine>> {
    let (filter, key) = match subject {
        Subject::Card(name) => ("a.kind = 'card' AND a.name = ?1", name),
        Subject::Orderer(id) => ("a.orderer = ?1", id),
    };
    let sql = format!(
        "SELECT e.id, e.kind, e.reference, e.booked_at_us, a.kind, a.name, p.amount
         FROM prepaid_postings p JOIN prepaid_entries e ON e.id = p.entry
         JOIN prepaid_accounts a ON a.id = p.account
         WHERE {filter} AND e.booked_at_us >= ?2 AND e.booked_at_us < ?3
         ORDER BY e.id, a.id"
    );
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt.query_map(params![key, from_us, to_us], |r| {
        Ok(StatementLine {
            entry: r.get(0)?,
            kind: r.get(1)?,
            reference: r.get(2)?,
            booked_at_us: r.get(3)?,
            account_kind: r.get(4)?,
            account: r.get(5)?,
            amount: r.get(6)?,
        })
    })?;
    rows.collect()
}

/// Every breach of the ledger's invariants, in words (empty: none).
pub(super) fn audit(conn: &Connection, now_us: i64) -> rusqlite::Result<Vec<String>> {
    let checks: [(&str, &str); 6] = [
        (
            "entry's pooled and settlement postings do not sum to zero",
            "SELECT p.entry, SUM(p.amount) FROM prepaid_postings p JOIN prepaid_accounts a ON a.id = p.account
             WHERE a.kind <> 'card' GROUP BY p.entry HAVING SUM(p.amount) <> 0",
        ),
        (
            "entry's card postings of an orderer differ from its pooled posting",
            "SELECT p.entry, SUM(p.amount) FROM prepaid_postings p JOIN prepaid_accounts a ON a.id = p.account
             WHERE a.kind IN ('card', 'pooled') GROUP BY p.entry, a.orderer HAVING SUM(p.amount) <> 0",
        ),
        (
            "account's balance column differs from the sum of its postings",
            "SELECT a.id, a.balance - COALESCE((SELECT SUM(amount) FROM prepaid_postings WHERE account = a.id), 0) AS d
             FROM prepaid_accounts a WHERE d <> 0",
        ),
        (
            "orderer's card balances differ from its pooled liability",
            "SELECT o.id, COALESCE((SELECT SUM(balance) FROM prepaid_accounts WHERE orderer = o.id AND kind IN ('card', 'pooled')), 0) AS d
             FROM prepaid_orderers o WHERE d <> 0",
        ),
        (
            "card balance is negative",
            "SELECT id, balance FROM prepaid_accounts WHERE kind = 'card' AND balance < 0",
        ),
        (
            "card balance is over its programme's maximum",
            "SELECT a.id, a.balance FROM prepaid_accounts a JOIN prepaid_programmes p ON p.id = a.programme
             WHERE a.kind = 'card' AND a.balance > p.max_balance",
        ),
    ];
    let mut found = Vec::new();
    for (what, sql) in checks {
        let mut stmt = conn.prepare(sql)?;
        let rows = stmt.query_map([], |r| {
            Ok((r.get::<_, rusqlite::types::Value>(0)?, r.get::<_, i64>(1)?))
        })?;
        for row in rows {
            let (key, value) = row?;
            found.push(format!("{what}: {key:?} ({value})"));
        }
    }
    let mut stmt = conn.prepare(
        "SELECT a.id, a.balance - COALESCE(SUM(h.remaining), 0) FROM prepaid_accounts a
         JOIN prepaid_holds h ON h.account = a.id AND h.state = 'open' AND h.expires_at_us > ?1
         GROUP BY a.id HAVING a.balance - COALESCE(SUM(h.remaining), 0) < 0",
    )?;
    for row in stmt.query_map([now_us], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)))? {
        let (id, available) = row?;
        found.push(format!(
            "card account {id} has negative available balance ({available})"
        ));
    }
    Ok(found)
}
