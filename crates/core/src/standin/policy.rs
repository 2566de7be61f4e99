//! The stand-in policy: what cardhub may approve from a shadow balance on
//! its own — the floor limit and the stale-balance rule. (The balance
//! itself is checked by the shadow book, atomically with the hold.)

use super::config::StandInConfig;
use super::shadow::Shadow;

const HOUR_US: i64 = 3_600_000_000;

/// Why stand-in may not approve a debit of `amount` from `shadow` at
/// `now_us`, or `None` when the policy allows it.
pub fn refusal(config: &StandInConfig, amount: u64, shadow: Shadow, now_us: i64) -> Option<String> {
    if amount > config.floor_limit {
        return Some(format!(
            "stand-in: {amount} is above the floor limit {}",
            config.floor_limit
        ));
    }
    let age_us = now_us - shadow.as_of_us;
    if age_us > i64::from(config.max_balance_age_hours) * HOUR_US && amount > config.stale_limit {
        return Some(format!(
            "stand-in: balance is {} h old (stale after {} h); stale balances approve only up to {}",
            age_us / HOUR_US,
            config.max_balance_age_hours,
            config.stale_limit
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floor_limit_and_stale_balance() {
        let config = StandInConfig {
            floor_limit: 10_000,
            max_balance_age_hours: 24,
            stale_limit: 2_000,
            ..StandInConfig::default()
        };
        let fresh = Shadow {
            available: 50_000,
            as_of_us: 0,
        };
        assert_eq!(refusal(&config, 10_000, fresh, HOUR_US), None);
        assert!(
            refusal(&config, 10_001, fresh, HOUR_US)
                .unwrap()
                .contains("floor limit")
        );
        let late = 25 * HOUR_US;
        assert_eq!(refusal(&config, 2_000, fresh, late), None);
        assert!(
            refusal(&config, 2_001, fresh, late)
                .unwrap()
                .contains("25 h old")
        );
    }
}
