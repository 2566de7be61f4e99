//! Configuration of switch connections: the `[[switch]]` sections and the
//! `[link]` section of `cardhub.toml`. Checked whole before any socket is
//! bound; every problem is reported at once.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::admission::{AddressRange, AddressRangeError};
use super::frame::Framing;
use crate::iso8583::Dialect;
use crate::iso8583::fields::ResponseCode;

/// Settings shared by all switch connections.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LinkSettings {
    /// Requests in flight across all connections; past it cardhub answers 91 at once.
    pub max_in_flight: usize,
    /// How long shutdown waits for in-flight requests and sign-off, in ms.
    pub shutdown_grace_ms: u64,
}

impl Default for LinkSettings {
    fn default() -> Self {
        LinkSettings {
            max_in_flight: 20_000,
            shutdown_grace_ms: 10_000,
        }
    }
}

/// Who opens the TCP connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// cardhub listens; the switch connects.
    Listen,
    /// cardhub connects to the switch, and reconnects with backoff.
    Dial,
}

/// What happens to a request that arrives before the peer signed on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BeforeSignOn {
    /// Answered with `refuse_code` without reaching the hub.
    Refuse,
    /// Processed as if signed on.
    Accept,
}

/// TLS on a switch connection (rustls). Paths are PEM files.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// Our certificate chain: required when listening, optional client
    /// certificate when dialing.
    pub cert: Option<PathBuf>,
    /// Private key of `cert`.
    pub key: Option<PathBuf>,
    /// CA certificates to verify the peer. Listening: when set, clients must
    /// present a certificate signed by it. Dialing: the server's CA (required).
    pub ca: Option<PathBuf>,
    /// Name to verify the server certificate against (dial only; default: the address's host).
    pub server_name: Option<String>,
}

/// One `[[switch]]` section: a connection to or from a card switch.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SwitchConfig {
    /// Name in logs and metrics.
    pub name: String,
    pub role: Role,
    /// Listen address, or the switch's address to dial (`host:port`).
    pub address: String,
    /// Dialect name or file (see `Dialect::find`).
    #[serde(default = "default_dialect")]
    pub dialect: String,
    #[serde(default)]
    pub framing: Framing,
    /// Largest frame accepted or sent, in bytes.
    #[serde(default = "default_max_frame")]
    pub max_frame: usize,
    /// Requests in flight on one connection; past it cardhub answers 91 at once.
    #[serde(default = "default_max_in_flight")]
    pub max_in_flight: usize,
    /// Connections accepted at once (listen only).
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// Slots strangers (not signed on, not allow-listed) may never hold
    /// (listen only; default: a quarter of `max_connections`).
    pub reserved_connections: Option<usize>,
    /// Connections from one IP address at once (listen only).
    #[serde(default = "default_max_connections_per_address")]
    pub max_connections_per_address: usize,
    /// IP addresses or CIDR blocks that may connect; empty: any (listen only).
    #[serde(default)]
    pub allow: Vec<String>,
    /// A connection must sign on (or, with `before_sign_on = "accept"`, send
    /// a complete frame) within this long of its accept, TLS handshake
    /// included (listen only; 0: no limit).
    #[serde(default = "default_sign_on_timeout_ms")]
    pub sign_on_timeout_ms: u64,
    /// A connection with no complete frame for this long is closed (0: never).
    #[serde(default = "default_idle_timeout_ms")]
    pub idle_timeout_ms: u64,
    /// A frame must be complete within this long of its first byte (0: no limit).
    #[serde(default = "default_frame_timeout_ms")]
    pub frame_timeout_ms: u64,
    /// The switch's time limit for an answer, from the frame's arrival.
    #[serde(default = "default_switch_timeout_ms")]
    pub switch_timeout_ms: u64,
    /// Kept back from the switch time limit for encoding and sending.
    #[serde(default = "default_safety_margin_ms")]
    pub safety_margin_ms: u64,
    /// Send an echo test after this long without traffic (0: never).
    #[serde(default = "default_idle_echo_ms")]
    pub idle_echo_ms: u64,
    /// An echo test (or sign-on) unanswered this long means the peer is dead.
    #[serde(default = "default_echo_timeout_ms")]
    pub echo_timeout_ms: u64,
    #[serde(default = "default_before_sign_on")]
    pub before_sign_on: BeforeSignOn,
    /// DE 39 for requests refused before sign-on. Requests over the in-flight
    /// limit or during shutdown are always answered 91.
    #[serde(default = "default_refuse_code")]
    pub refuse_code: String,
    /// Dial: first reconnect delay; doubles up to `reconnect_max_ms`, jittered.
    #[serde(default = "default_reconnect_min_ms")]
    pub reconnect_min_ms: u64,
    #[serde(default = "default_reconnect_max_ms")]
    pub reconnect_max_ms: u64,
    /// DE 41 of the network management requests cardhub sends (optional).
    pub terminal_id: Option<String>,
    /// Header for messages cardhub originates (echo, sign-on, sign-off);
    /// required when the dialect has a header.
    pub header: Option<String>,
    pub tls: Option<TlsConfig>,
}

fn default_dialect() -> String {
    "base24".into()
}
fn default_max_frame() -> usize {
    8192
}
fn default_max_in_flight() -> usize {
    5000
}
fn default_max_connections() -> usize {
    64
}
fn default_max_connections_per_address() -> usize {
    16
}
fn default_sign_on_timeout_ms() -> u64 {
    10_000
}
fn default_idle_timeout_ms() -> u64 {
    90_000
}
fn default_frame_timeout_ms() -> u64 {
    5_000
}
fn default_switch_timeout_ms() -> u64 {
    5000
}
fn default_safety_margin_ms() -> u64 {
    500
}
fn default_idle_echo_ms() -> u64 {
    30_000
}
fn default_echo_timeout_ms() -> u64 {
    5000
}
fn default_before_sign_on() -> BeforeSignOn {
    BeforeSignOn::Refuse
}
fn default_refuse_code() -> String {
    "91".into()
}
fn default_reconnect_min_ms() -> u64 {
    500
}
fn default_reconnect_max_ms() -> u64 {
    30_000
}

/// A switch connection's settings, checked and resolved (dialect loaded).
#[derive(Debug, Clone)]
pub struct SwitchSettings {
    pub config: SwitchConfig,
    pub dialect: std::sync::Arc<Dialect>,
    pub refuse_code: ResponseCode,
    /// `allow`, parsed.
    pub allow: Vec<AddressRange>,
}

impl SwitchSettings {
    /// Settings for the switch simulator's side of a connection: it dials,
    /// accepts traffic without sign-on, sends no idle echo tests.
    pub fn simulator(
        address: &str,
        dialect: std::sync::Arc<Dialect>,
        framing: Framing,
        header: Option<String>,
    ) -> SwitchSettings {
        SwitchSettings {
            config: SwitchConfig {
                name: "simulator".into(),
                role: Role::Dial,
                address: address.into(),
                dialect: dialect.name.clone(),
                framing,
                max_frame: framing.capacity(),
                max_in_flight: 100_000,
                max_connections: 1,
                reserved_connections: None,
                max_connections_per_address: 1,
                allow: Vec::new(),
                sign_on_timeout_ms: 0,
                idle_timeout_ms: 0,
                frame_timeout_ms: 0,
                switch_timeout_ms: default_switch_timeout_ms(),
                safety_margin_ms: default_safety_margin_ms(),
                idle_echo_ms: 0,
                echo_timeout_ms: default_echo_timeout_ms(),
                before_sign_on: BeforeSignOn::Accept,
                refuse_code: default_refuse_code(),
                reconnect_min_ms: default_reconnect_min_ms(),
                reconnect_max_ms: default_reconnect_max_ms(),
                terminal_id: None,
                header,
                tls: None,
            },
            dialect,
            refuse_code: ResponseCode::ISSUER_UNAVAILABLE,
            allow: Vec::new(),
        }
    }

    /// Time from a frame's arrival to the deadline for its answer.
    pub fn budget(&self) -> Duration {
        Duration::from_millis(
            self.config
                .switch_timeout_ms
                .saturating_sub(self.config.safety_margin_ms),
        )
    }

    pub fn idle_echo(&self) -> Option<Duration> {
        millis_or_none(self.config.idle_echo_ms)
    }

    pub fn echo_timeout(&self) -> Duration {
        Duration::from_millis(self.config.echo_timeout_ms)
    }

    /// The time limit for signing on, counted from accept (listen only).
    pub fn sign_on_timeout(&self) -> Option<Duration> {
        millis_or_none(self.config.sign_on_timeout_ms)
    }

    pub fn idle_timeout(&self) -> Option<Duration> {
        millis_or_none(self.config.idle_timeout_ms)
    }

    pub fn frame_timeout(&self) -> Option<Duration> {
        millis_or_none(self.config.frame_timeout_ms)
    }

    /// `reserved_connections`, or its default: a quarter of `max_connections`.
    pub fn reserved_connections(&self) -> usize {
        self.config
            .reserved_connections
            .unwrap_or(self.config.max_connections / 4)
    }
}

/// A setting in ms where 0 means "no limit".
fn millis_or_none(ms: u64) -> Option<Duration> {
    (ms > 0).then(|| Duration::from_millis(ms))
}

impl SwitchConfig {
    /// Checks this section and loads its dialect; problems are appended to
    /// `problems` prefixed with the section's name.
    pub fn resolve(
        &self,
        dialect_dir: &Path,
        problems: &mut Vec<String>,
    ) -> Option<SwitchSettings> {
        let before = problems.len();
        let mut problem = |msg: String| problems.push(format!("switch {:?}: {msg}", self.name));
        if self.role == Role::Listen && self.address.parse::<SocketAddr>().is_err() {
            problem(format!("address {:?} is not ip:port", self.address));
        }
        if self.role == Role::Dial && !self.address.contains(':') {
            problem(format!("address {:?} is not host:port", self.address));
        }
        if self.max_frame < 16 || self.max_frame > self.framing.capacity() {
            problem(format!(
                "max_frame {} must be 16 to {} for framing {:?}",
                self.max_frame,
                self.framing.capacity(),
                self.framing
            ));
        }
        if self.max_in_flight == 0 || self.max_connections == 0 {
            problem("max_in_flight and max_connections must be at least 1".into());
        }
        if self.safety_margin_ms >= self.switch_timeout_ms {
            problem(format!(
                "safety_margin_ms {} must be below switch_timeout_ms {}",
                self.safety_margin_ms, self.switch_timeout_ms
            ));
        }
        if self.reconnect_min_ms == 0 || self.reconnect_min_ms > self.reconnect_max_ms {
            problem("reconnect_min_ms must be at least 1 and at most reconnect_max_ms".into());
        }
        if self.echo_timeout_ms == 0 {
            problem("echo_timeout_ms must be at least 1".into());
        }
        if let Some(reserved) = self.reserved_connections
            && reserved >= self.max_connections
        {
            problem(format!(
                "reserved_connections {reserved} must be below max_connections {}",
                self.max_connections
            ));
        }
        if self.max_connections_per_address == 0 {
            problem("max_connections_per_address must be at least 1".into());
        }
        if self.idle_timeout_ms > 0
            && self.idle_echo_ms > 0
            && self.idle_timeout_ms <= self.idle_echo_ms.saturating_add(self.echo_timeout_ms)
        {
            problem(format!(
                "idle_timeout_ms {} must exceed idle_echo_ms + echo_timeout_ms ({}), \
                 or a peer answering every echo test would be dropped",
                self.idle_timeout_ms,
                self.idle_echo_ms.saturating_add(self.echo_timeout_ms)
            ));
        }
        let allow: Vec<AddressRange> = self
            .allow
            .iter()
            .filter_map(|entry| {
                entry
                    .parse()
                    .map_err(|e: AddressRangeError| problem(format!("allow: {e}")))
                    .ok()
            })
            .collect();
        let refuse_code = ResponseCode::new(&self.refuse_code)
            .map_err(|e| problem(e.to_string()))
            .ok();
        let dialect = Dialect::find(&self.dialect, dialect_dir)
            .map_err(|e| problem(e.to_string()))
            .ok();
        if let (Some(d), Some(h)) = (&dialect, &self.header) {
            match &d.header {
                Some(spec)
                    if h.len() == spec.length && h.as_bytes().starts_with(&spec.starts_with) => {}
                Some(spec) => problem(format!(
                    "header {h:?} must be {} characters starting with {:?}",
                    spec.length,
                    String::from_utf8_lossy(&spec.starts_with)
                )),
                None => problem(format!("dialect {} has no header", d.name)),
            }
        }
        if let (Some(d), None) = (&dialect, &self.header)
            && d.header.is_some()
        {
            problem(format!(
                "dialect {} needs `header` for the messages cardhub sends",
                d.name
            ));
        }
        if let Some(tls) = &self.tls {
            if self.role == Role::Listen && (tls.cert.is_none() || tls.key.is_none()) {
                problem("tls: listening needs cert and key".into());
            }
            if self.role == Role::Dial && tls.ca.is_none() {
                problem("tls: dialing needs ca to verify the switch".into());
            }
            if tls.cert.is_some() != tls.key.is_some() {
                problem("tls: cert and key go together".into());
            }
        }
        if problems.len() > before {
            return None;
        }
        Some(SwitchSettings {
            config: self.clone(),
            dialect: std::sync::Arc::new(dialect?),
            refuse_code: refuse_code?,
            allow,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::config::{Config, ConfigError};

    fn parse(extra: &str) -> Result<Config, ConfigError> {
        let text = format!(
            "[[switch]]\nname = \"s\"\nrole = \"listen\"\naddress = \"127.0.0.1:0\"\n\
             header = \"ISO006000070\"\n{extra}"
        );
        Config::from_toml(Path::new("t.toml"), &text, Path::new("."))
    }

    #[test]
    fn connection_guards_have_defaults_and_are_checked_together() {
        let cfg = parse("").unwrap();
        let s = &cfg.switches[0];
        assert_eq!(s.reserved_connections(), 16, "a quarter of 64");
        assert_eq!(s.config.max_connections_per_address, 16);
        assert!(s.allow.is_empty());
        assert!(s.sign_on_timeout().is_some() && s.idle_timeout().is_some());
        assert!(s.frame_timeout().is_some());

        let cfg = parse("allow = [\"10.0.0.1\", \"10.1.0.0/16\"]\nidle_timeout_ms = 0").unwrap();
        assert_eq!(cfg.switches[0].allow.len(), 2);
        assert_eq!(cfg.switches[0].idle_timeout(), None);

        let err = parse(
            "max_connections = 4\nreserved_connections = 4\nmax_connections_per_address = 0\n\
             allow = [\"10.0.0.1/8\", \"nope\"]\nidle_echo_ms = 30000\necho_timeout_ms = 5000\n\
             idle_timeout_ms = 35000",
        )
        .unwrap_err();
        let ConfigError::Invalid { problems, .. } = err else {
            panic!("{err}")
        };
        let text = problems.join("\n");
        for expected in [
            "reserved_connections 4 must be below max_connections 4",
            "max_connections_per_address must be at least 1",
            "allow: \"10.0.0.1/8\" has bits set past the prefix; the block is 10.0.0.0/8",
            "allow: \"nope\" is not an IP address",
            "idle_timeout_ms 35000 must exceed idle_echo_ms + echo_timeout_ms (35000)",
        ] {
            assert!(text.contains(expected), "{expected:?} missing in:\n{text}");
        }
    }
}
