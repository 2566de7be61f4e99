//! The HTTP transport of SOAP and XML adapters: one pooled keep-alive client
//! per endpoint, a cap on requests in flight per endpoint, ordered failover,
//! and time limits that never pass the request's deadline.
//!
//! Failover moves to the next endpoint only when the request cannot have
//! reached the server (connection refused, connect timeout, TLS handshake
//! failure): an authorization that may have been received is never sent twice.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use tokio::sync::Semaphore;
use tokio::time::Instant;

use super::AdapterError;
use super::file::{EndpointFile, TlsFile};
use crate::account::AccountError;
use crate::link::tls::TlsError;

/// Why an adapter file's HTTP setting cannot be used (the adapter's author
/// must fix the file; reported with the key by the compiler).
#[derive(Debug, thiserror::Error)]
pub enum HttpSettingError {
    /// An operation path that is empty or starts with `/`.
    #[error(
        "{path:?}: give a path relative to the endpoint URLs (\"authorize\", not \"/authorize\")"
    )]
    AbsolutePath { path: String },
    /// An operation path with a `#fragment`.
    #[error("{path:?}: a fragment is never sent")]
    Fragment { path: String },
    /// An endpoint URL with a `?query`: no path can follow it.
    #[error("endpoint URL {url:?} has a query; a path cannot follow it")]
    QueryInUrl { url: String },
    /// The path appended to an endpoint URL does not make a URL.
    #[error("{path:?} after {url:?}: {source}")]
    BadUrl {
        path: String,
        url: String,
        #[source]
        source: <reqwest::Url as std::str::FromStr>::Err,
    },
    #[error("{name:?} is not a header name")]
    HeaderName { name: String },
    #[error("{value:?} is not a header value (control characters?)")]
    HeaderValue { value: String },
    /// A header the engine or the transport writes; `instead` names the key
    /// to use.
    #[error("set by {instead}")]
    Reserved { instead: &'static str },
    /// The TLS files cannot be used.
    #[error("tls: {0}")]
    Tls(#[from] TlsError),
    /// rustls refuses the configuration.
    #[error("tls: {0}")]
    Rustls(#[from] rustls::Error),
}

/// An HTTP answer, whatever its status (SOAP 1.1 faults come with 500).
#[derive(Debug)]
pub struct HttpAnswer {
    pub status: u16,
    pub body: Bytes,
    /// The `charset` parameter of the answer's `Content-Type`, if any.
    pub charset: Option<String>,
}

/// What one operation's requests carry besides the body, fixed when the
/// adapter compiles: a path after the endpoint URL, and every header but
/// basic authentication (content type, SOAP action, the file's headers).
#[derive(Debug, Clone, Default)]
pub struct HttpCall {
    /// Appended to each endpoint URL after a `/`; empty for the URL itself.
    path: String,
    headers: HeaderMap,
}

struct Endpoint {
    url: String,
    client: reqwest::Client,
    /// Requests in flight to this endpoint.
    permits: Arc<Semaphore>,
}

/// The endpoints of one adapter.
pub struct HttpTransport {
    endpoints: Vec<Endpoint>,
    timeout: Duration,
    basic: Option<(String, String)>,
    max_answer: usize,
}

impl HttpTransport {
    /// Clients for every endpoint; `base` anchors relative TLS paths.
    ///
    /// # Errors
    /// [`AdapterError::Invalid`] for unusable URLs or TLS files.
    pub fn new(
        endpoint: &EndpointFile,
        tls: Option<&TlsFile>,
        base: &Path,
        basic: Option<(String, String)>,
        max_answer: usize,
    ) -> Result<HttpTransport, AdapterError> {
        let mut problems = Vec::new();
        let has_ca = tls.is_some_and(|t| t.ca.is_some());
        let tls_config = match tls.map_or_else(plain_http_tls, |t| client_tls(t, base)) {
            Ok(c) => Some(c),
            Err(e) => {
                problems.push(e.to_string());
                None
            }
        };
        let mut endpoints = Vec::new();
        for url in &endpoint.urls {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                problems.push(format!("endpoint.urls: {url:?} is not an http(s) URL"));
                continue;
            }
            if url.starts_with("https://") && !has_ca {
                problems.push(format!(
                    "endpoint.urls: {url:?} needs [tls] ca to verify the server"
                ));
                continue;
            }
            let mut builder = reqwest::Client::builder()
                .connect_timeout(Duration::from_millis(endpoint.connect_timeout_ms))
                .pool_idle_timeout(Duration::from_secs(90))
                .tcp_nodelay(true); // Always our own rustls configuration (ring): reqwest has no
            // provider of its own and would panic building a client.
            if let Some(c) = &tls_config {
                builder = builder.tls_backend_preconfigured(c.clone());
            }
            match builder.build() {
                Ok(client) => endpoints.push(Endpoint {
                    url: url.clone(),
                    client,
                    permits: Arc::new(Semaphore::new(endpoint.max_in_flight.max(1))),
                }),
                Err(e) => problems.push(format!("endpoint {url}: {e}")),
            }
        }
        if endpoint.urls.is_empty() {
            problems.push("endpoint.urls: at least one URL is needed".into());
        }
        if !problems.is_empty() {
            return Err(AdapterError::invalid(problems));
        }
        Ok(HttpTransport {
            endpoints,
            timeout: Duration::from_millis(endpoint.timeout_ms),
            basic,
            max_answer,
        })
    }

    /// POSTs `body` with `call`'s path and headers to the first endpoint
    /// that can be reached.
    ///
    /// # Errors
    /// [`AccountError::Unreachable`] when no endpoint can be reached,
    /// [`AccountError::Timeout`] when the answer does not come in time,
    /// [`AccountError::Malformed`] for an answer too large to read.
    pub async fn post(
        &self,
        body: Bytes,
        call: &HttpCall,
        deadline: Instant,
    ) -> Result<HttpAnswer, AccountError> {
        let deadline = deadline.min(Instant::now() + self.timeout);
        let mut failures = Vec::new();
        for endpoint in &self.endpoints {
            let permit =
                tokio::time::timeout_at(deadline, endpoint.permits.clone().acquire_owned())
                    .await
                    .map_err(|_| AccountError::Timeout)?
                    .map_err(|_| AccountError::Unreachable("endpoint closed".into()))?;
            let mut request = endpoint
                .client
                .post(call.url(&endpoint.url))
                .headers(call.headers.clone())
                .body(body.clone());
            if let Some((user, password)) = &self.basic {
                request = request.basic_auth(user, Some(password));
            }
            let sent = tokio::time::timeout_at(deadline, request.send()).await;
            match sent {
                Err(_) => return Err(AccountError::Timeout),
                Ok(Err(e)) if e.is_connect() => {
                    failures.push(format!("{}: {e}", endpoint.url));
                    continue;
                }
                Ok(Err(e)) if e.is_timeout() => return Err(AccountError::Timeout),
                Ok(Err(e)) => {
                    return Err(AccountError::Unreachable(format!("{}: {e}", endpoint.url)));
                }
                Ok(Ok(response)) => {
                    let answer = tokio::time::timeout_at(deadline, self.read(response)).await;
                    drop(permit);
                    return answer.map_err(|_| AccountError::Timeout)?;
                }
            }
        }
        Err(AccountError::Unreachable(failures.join("; ")))
    }

    /// Reads an answer's body, at most `max_answer` bytes.
    async fn read(&self, mut response: reqwest::Response) -> Result<HttpAnswer, AccountError> {
        let status = response.status().as_u16();
        let charset = (response.headers().get(CONTENT_TYPE))
            .and_then(|value| value.to_str().ok())
            .and_then(charset)
            .map(str::to_owned);
        let mut body = BytesMut::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| AccountError::Unreachable(format!("reading the answer: {e}")))?
        {
            if body.len() + chunk.len() > self.max_answer {
                return Err(AccountError::Malformed(format!(
                    "answer larger than {} bytes",
                    self.max_answer
                )));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(HttpAnswer {
            status,
            body: body.freeze(),
            charset,
        })
    }
}

impl HttpCall {
    /// A call with `path` after the endpoint URLs (checked with
    /// [`check_path`]) and `headers`.
    pub fn new(path: Option<&str>, headers: HeaderMap) -> HttpCall {
        let path = path.unwrap_or_default().to_owned();
        HttpCall { path, headers }
    }

    fn url(&self, endpoint: &str) -> String {
        join(endpoint, &self.path)
    }
}

fn join(url: &str, path: &str) -> String {
    if path.is_empty() {
        url.to_owned()
    } else {
        format!("{}/{path}", url.trim_end_matches('/'))
    }
}

/// Checks an operation's `path` against the endpoint URLs it is appended to.
///
/// # Errors
/// Why the path cannot be used: empty, absolute (`/…`), a fragment, an
/// endpoint URL with a query, or not a URL once appended.
pub fn check_path(path: &str, urls: &[String]) -> Result<(), HttpSettingError> {
    let path_owned = || path.to_owned();
    if path.is_empty() || path.starts_with('/') {
        return Err(HttpSettingError::AbsolutePath { path: path_owned() });
    }
    if path.contains('#') {
        return Err(HttpSettingError::Fragment { path: path_owned() });
    }
    for url in urls {
        if url.contains('?') {
            return Err(HttpSettingError::QueryInUrl { url: url.clone() });
        }
        reqwest::Url::parse(&join(url, path)).map_err(|source| HttpSettingError::BadUrl {
            path: path_owned(),
            url: url.clone(),
            source,
        })?;
    }
    Ok(())
}

/// A header an adapter file sets, parsed; headers the engine or the
/// transport writes are refused.
///
/// # Errors
/// Why the header cannot be set, naming the key to use instead.
pub fn static_header(
    name: &str,
    value: &str,
) -> Result<(HeaderName, HeaderValue), HttpSettingError> {
    let name =
        HeaderName::from_bytes(name.as_bytes()).map_err(|_| HttpSettingError::HeaderName {
            name: name.to_owned(),
        })?;
    let instead = match name.as_str() {
        "content-type" => "[http] content_type (xml-http; SOAP sets its own)",
        "soapaction" => "soap_action",
        "authorization" => "[auth]",
        "content-length" | "transfer-encoding" | "host" | "connection" => "the transport",
        _ => {
            let value =
                HeaderValue::from_str(value).map_err(|_| HttpSettingError::HeaderValue {
                    value: value.to_owned(),
                })?;
            return Ok((name, value));
        }
    };
    Err(HttpSettingError::Reserved { instead })
}

/// The `charset` parameter of a media type (`text/xml; charset="ISO-8859-1"`).
pub fn charset(content_type: &str) -> Option<&str> {
    content_type.split(';').skip(1).find_map(|parameter| {
        let (name, value) = parameter.split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("charset")
            .then(|| value.trim().trim_matches('"'))
    })
}

/// The TLS configuration of an adapter without `[tls]`: it only speaks
/// `http://` (an `https://` URL without a CA is refused when the file
/// loads), so no root is trusted.
///
/// # Errors
/// [`HttpSettingError::Rustls`] when rustls refuses the ring provider's
/// protocol versions.
pub fn plain_http_tls() -> Result<rustls::ClientConfig, HttpSettingError> {
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth())
}

/// A rustls client configuration (ring provider) from the adapter's TLS files.
fn client_tls(tls: &TlsFile, base: &Path) -> Result<rustls::ClientConfig, HttpSettingError> {
    let link_tls = crate::link::config::TlsConfig {
        cert: tls.cert.as_ref().map(|p| base.join(p)),
        key: tls.key.as_ref().map(|p| base.join(p)),
        ca: tls.ca.as_ref().map(|p| base.join(p)),
        server_name: None,
    };
    Ok(crate::link::tls::client_config(&link_tls)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charset_is_read_from_the_content_type() {
        assert_eq!(charset("text/xml; charset=ISO-8859-1"), Some("ISO-8859-1"));
        assert_eq!(
            charset("application/soap+xml;action=\"a;b\"; Charset=\"windows-1252\""),
            Some("windows-1252")
        );
        assert_eq!(charset("text/xml"), None);
        assert_eq!(charset("text/xml; format=flowed"), None);
    }
}
