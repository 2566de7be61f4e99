//! One simulated switch connection: a TCP dial to the hub served by the
//! link's own connection code, so answers are matched (MTI class + DE 41 +
//! DE 11) and the hub's echo tests are answered exactly as the link does.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::SimError;
use cardhub_core::iso8583::Dialect;
use cardhub_core::iso8583::dialect::HeaderLayout;
use cardhub_core::iso8583::fields::ResponseCode;
use cardhub_core::iso8583::{Message, de};
use cardhub_core::link::connection::{self, ConnectionHandle};
use cardhub_core::link::frame::Framing;
use cardhub_core::link::netmgmt::{self, NetworkCode};
use cardhub_core::link::{IssuerUnavailable, Outbound, SwitchSettings};

/// How long a TCP connect may take before the hub counts as unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long [`SimClient::sign_on`] waits for its answer.
const SIGN_ON_TIMEOUT: Duration = Duration::from_secs(5);

/// How long closing waits for the sign-off and in-flight requests.
const CLOSE_WAIT: Duration = Duration::from_secs(3);

/// The header of the network management messages on a BASE24 link: product
/// 00 (network), release 60, status 000, originator 7, responder 0.
const BASE24_NETWORK_HEADER: &str = "ISO006000070";

/// Requests the hub may send to the simulator at once (it answers them 91).
const PEER_IN_FLIGHT: usize = 100_000;

/// A connection to a hub, as the card switch. Dropping it closes the
/// connection at once; [`SimClient::close`] signs off first.
pub struct SimClient {
    /// `host:port` dialled, for errors.
    address: String,
    /// Header of the messages the simulator builds (sign-on, `sim send`).
    header: Option<String>,
    /// The running connection (reader and writer tasks).
    handle: ConnectionHandle,
    /// Starts the graceful close: drain, sign off, close.
    shutdown: CancellationToken,
}

impl SimClient {
    /// Dials the hub and starts serving the connection. `header` is the
    /// header of the messages the simulator builds; for a BASE24 dialect it
    /// defaults to the network management header `ISO006000070`.
    ///
    /// # Errors
    /// [`SimError::Connect`] when the hub cannot be reached,
    /// [`SimError::Header`] or [`SimError::HeaderRequired`] when the header
    /// does not fit the dialect.
    pub async fn connect(
        address: &str,
        dialect: Arc<Dialect>,
        framing: Framing,
        header: Option<String>,
    ) -> Result<SimClient, SimError> {
        let header = resolve_header(&dialect, header)?;
        let connect_error = |source| SimError::Connect {
            address: address.to_string(),
            source,
        };
        let stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(address))
            .await
            .map_err(|_| connect_error(std::io::ErrorKind::TimedOut.into()))?
            .map_err(connect_error)?;
        // Latency matters more than packet count for a simulator.
        stream.set_nodelay(true).map_err(connect_error)?;
        let peer = stream.peer_addr().map_err(connect_error)?;
        let settings = SwitchSettings::simulator(address, dialect, framing, header.clone());
        let shutdown = CancellationToken::new();
        let handle = connection::spawn(
            stream,
            peer,
            Arc::new(settings),
            Arc::new(IssuerUnavailable),
            Arc::new(Semaphore::new(PEER_IN_FLIGHT)),
            shutdown.clone(),
        );
        Ok(SimClient {
            address: address.to_string(),
            header,
            handle,
            shutdown,
        })
    }

    /// Signs on (0800, DE 70 = 001) and checks the answer approves it.
    ///
    /// # Errors
    /// [`SimError::SignOn`] when no answer comes, [`SimError::SignOnRefused`]
    /// when DE 39 is not 00.
    pub async fn sign_on(&self) -> Result<Message, SimError> {
        self.sign_on_within(SIGN_ON_TIMEOUT).await
    }

    /// [`SimClient::sign_on`], waiting at most `timeout` for the answer.
    ///
    /// # Errors
    /// As [`SimClient::sign_on`].
    pub async fn sign_on_within(&self, timeout: Duration) -> Result<Message, SimError> {
        let outbound = &self.handle.outbound;
        let request = netmgmt::request(
            NetworkCode::SignOn,
            outbound.next_stan(),
            self.header.as_deref(),
            None,
        );
        let answer = outbound
            .request(&request, timeout)
            .await
            .map_err(|source| SimError::SignOn {
                address: self.address.clone(),
                source,
            })?;
        if answer.get(de::RESPONSE_CODE) != Some(ResponseCode::APPROVED.as_str().as_bytes()) {
            return Err(SimError::SignOnRefused {
                address: self.address.clone(),
                code: response_code_text(&answer),
            });
        }
        // So that closing signs off.
        self.handle.signed_on.store(true, Ordering::Relaxed);
        Ok(answer)
    }

    /// Sends a request and waits for its answer; returns the answer and the
    /// round-trip time.
    ///
    /// # Errors
    /// [`SimError::Request`]: no answer within `timeout` ([`SimError::is_timeout`]),
    /// the connection closed, or a message that cannot be encoded.
    pub async fn request(
        &self,
        msg: &Message,
        timeout: Duration,
    ) -> Result<(Message, Duration), SimError> {
        exchange(&self.handle.outbound, msg, timeout).await
    }

    /// Whether the connection is signed on (the hub's sign-off clears it).
    pub fn is_signed_on(&self) -> bool {
        self.handle.signed_on.load(Ordering::Relaxed)
    }

    /// The connection's sender: STANs, the dialect, raw sends.
    pub fn outbound(&self) -> &Outbound {
        &self.handle.outbound
    }

    /// The header of the messages the simulator builds, if the dialect has one.
    pub fn header(&self) -> Option<&str> {
        self.header.as_deref()
    }

    /// The `host:port` this client dialled.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// Closes gracefully: waits for in-flight requests, signs off when signed
    /// on, closes. Gives up and closes at once after a few seconds.
    pub async fn close(mut self) {
        self.shutdown.cancel();
        if tokio::time::timeout(CLOSE_WAIT, &mut self.handle.task)
            .await
            .is_err()
        {
            self.handle.close.cancel();
        }
    }
}

impl Drop for SimClient {
    fn drop(&mut self) {
        self.handle.close.cancel();
    }
}

/// Sends a request on a connection and waits for its answer, timing the round trip.
pub(crate) async fn exchange(
    outbound: &Outbound,
    msg: &Message,
    timeout: Duration,
) -> Result<(Message, Duration), SimError> {
    let started = Instant::now();
    let answer = outbound
        .request(msg, timeout)
        .await
        .map_err(|source| SimError::Request {
            mti: msg.mti(),
            source,
        })?;
    Ok((answer, started.elapsed()))
}

/// DE 39 of an answer as text, `none` when absent.
pub(crate) fn response_code_text(answer: &Message) -> String {
    answer.get(de::RESPONSE_CODE).map_or_else(
        || "none".to_string(),
        |c| String::from_utf8_lossy(c).into_owned(),
    )
}

/// The header given, checked against the dialect, or the default one.
fn resolve_header(dialect: &Dialect, header: Option<String>) -> Result<Option<String>, SimError> {
    let Some(spec) = &dialect.header else {
        return match header {
            Some(h) => Err(SimError::Header {
                header: h,
                reason: format!("dialect {} has no header", dialect.name),
            }),
            None => Ok(None),
        };
    };
    let header = match header {
        Some(h) => h,
        None if spec.layout == Some(HeaderLayout::Base24) => BASE24_NETWORK_HEADER.to_string(),
        None => {
            return Err(SimError::HeaderRequired {
                dialect: dialect.name.clone(),
            });
        }
    };
    if header.len() != spec.length || !header.as_bytes().starts_with(&spec.starts_with) {
        return Err(SimError::Header {
            reason: format!(
                "dialect {} needs {} characters starting with {:?}",
                dialect.name,
                spec.length,
                String::from_utf8_lossy(&spec.starts_with)
            ),
            header,
        });
    }
    Ok(Some(header))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_defaults_and_checks() {
        let base24 = Dialect::shipped("base24").unwrap().unwrap();
        assert_eq!(
            resolve_header(&base24, None).unwrap().as_deref(),
            Some(BASE24_NETWORK_HEADER)
        );
        assert!(matches!(
            resolve_header(&base24, Some("XYZ006000070".into())),
            Err(SimError::Header { .. })
        ));
        let binary = Dialect::shipped("iso87-binary").unwrap().unwrap();
        assert_eq!(resolve_header(&binary, None).unwrap(), None);
        assert!(resolve_header(&binary, Some("ISO006000070".into())).is_err());
    }
}
