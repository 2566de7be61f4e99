//! `[web]`: how long a login session lives. A session ends when it has been
//! idle for `idle_minutes`, and in any case `absolute_hours` after login.

use std::time::Duration;

use serde::Deserialize;

/// `[web]` in the config file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebConfig {
    /// Minutes without a request after which a session ends (default 30).
    pub idle_minutes: u32,
    /// Hours after login at which a session ends however busy (default 12).
    pub absolute_hours: u32,
}

impl Default for WebConfig {
    fn default() -> Self {
        WebConfig {
            idle_minutes: 30,
            absolute_hours: 12,
        }
    }
}

/// The longest `absolute_hours` accepted (a week).
const MAX_ABSOLUTE_HOURS: u32 = 7 * 24;

impl WebConfig {
    /// Problems with the values, for the config check.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.idle_minutes == 0 {
            problems.push("web.idle_minutes must be at least 1".to_string());
        }
        if self.absolute_hours == 0 || self.absolute_hours > MAX_ABSOLUTE_HOURS {
            problems.push(format!(
                "web.absolute_hours {} must be between 1 and {MAX_ABSOLUTE_HOURS}",
                self.absolute_hours
            ));
        } else if u64::from(self.idle_minutes) > u64::from(self.absolute_hours) * 60 {
            problems.push(format!(
                "web.idle_minutes {} is longer than absolute_hours {}",
                self.idle_minutes, self.absolute_hours
            ));
        }
        problems
    }

    /// The idle timeout.
    pub fn idle(&self) -> Duration {
        Duration::from_secs(u64::from(self.idle_minutes) * 60)
    }

    /// The absolute timeout.
    pub fn absolute(&self) -> Duration {
        Duration::from_secs(u64::from(self.absolute_hours) * 3600)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_sane_and_bad_values_are_named() {
        assert!(WebConfig::default().problems().is_empty());
        let bad = WebConfig {
            idle_minutes: 0,
            absolute_hours: 0,
        };
        assert_eq!(bad.problems().len(), 2);
        let inverted = WebConfig {
            idle_minutes: 600,
            absolute_hours: 1,
        };
        assert!(inverted.problems()[0].contains("idle_minutes 600"));
    }
}
