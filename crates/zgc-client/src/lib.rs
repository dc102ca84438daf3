//! What every zgc client shares (the `zgc` CLI, and the stats service
//! following the registry): endpoints, with TLS or mutual TLS when asked,
//! and the headers every outgoing call carries: `authorization` when a
//! token is given, an `x-request-id`, and the trace context; gRPC's
//! transparent [`retry`] of calls that never reached the server; and the
//! [`pipeline`] that keeps several requests in flight in dependency order.
//!
//! Nothing here knows about parks, companies or servers.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::{HeaderMap, HeaderName, HeaderValue, Request};
use tonic::body::Body;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use tower_service::Service;
use zgc_proto::wire::REQUEST_ID_HEADER;

pub mod health;
pub mod pipeline;
pub mod probe;
pub mod retry;

pub use retry::{Idempotent, Retry, idempotent};

/// How to reach a server over TLS.
#[derive(Debug, Clone, Default)]
pub struct ClientTls {
    /// PEM CA certificates to trust instead of the public web roots.
    pub ca: Option<PathBuf>,
    /// PEM client certificate chain, for mutual TLS (with `key`).
    pub cert: Option<PathBuf>,
    /// PEM private key of `cert`.
    pub key: Option<PathBuf>,
    /// The name to verify the server's certificate against, when it
    /// differs from the address's host.
    pub server_name: Option<String>,
}

/// Why a client could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The address is not a valid endpoint.
    #[error("invalid endpoint {addr}: {source}")]
    Endpoint {
        /// The address.
        addr: String,
        /// Why.
        source: tonic::transport::Error,
    },
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The TLS settings were refused.
    #[error("TLS setup for {addr}: {source}")]
    Tls {
        /// The address.
        addr: String,
        /// Why.
        source: tonic::transport::Error,
    },
    /// A client certificate without its key, or the other way round.
    #[error("a client certificate needs its key, and a key its certificate")]
    HalfIdentity,
    /// A header value that cannot be sent.
    #[error("the {0} header value is not valid")]
    Header(&'static str),
}

fn read(path: &Path) -> Result<Vec<u8>, ClientError> {
    std::fs::read(path).map_err(|source| ClientError::Read {
        path: path.display().to_string(),
        source,
    })
}

/// An endpoint for `addr` (`http://` for plaintext, `https://` for TLS;
/// TLS is also used whenever `tls` names a CA or a client certificate).
/// Whether calls to `addr` with `tls` use TLS: for `https://` addresses,
/// and whenever a CA or a client certificate is given.
pub fn wants_tls(addr: &str, tls: &ClientTls) -> bool {
    addr.starts_with("https://") || tls.ca.is_some() || tls.cert.is_some()
}

pub fn endpoint(addr: &str, tls: &ClientTls) -> Result<Endpoint, ClientError> {
    let mut endpoint =
        Endpoint::from_shared(addr.to_string()).map_err(|source| ClientError::Endpoint {
            addr: addr.to_string(),
            source,
        })?;
    if wants_tls(addr, tls) {
        let mut config = ClientTlsConfig::new();
        config = match &tls.ca {
            Some(ca) => config.ca_certificate(Certificate::from_pem(read(ca)?)),
            None => config.with_webpki_roots(),
        };
        match (&tls.cert, &tls.key) {
            (Some(cert), Some(key)) => {
                config = config.identity(Identity::from_pem(read(cert)?, read(key)?));
            }
            (None, None) => {}
            _ => return Err(ClientError::HalfIdentity),
        }
        if let Some(name) = &tls.server_name {
            config = config.domain_name(name.clone());
        }
        endpoint = endpoint
            .tls_config(config)
            .map_err(|source| ClientError::Tls {
                addr: addr.to_string(),
                source,
            })?;
    }
    Ok(endpoint.connect_timeout(Duration::from_secs(5)))
}

/// Reads a bearer token from a file (the first line that is not blank or
/// a `#` comment).
pub fn read_token(path: &Path) -> Result<String, ClientError> {
    let text = String::from_utf8_lossy(&read(path)?).into_owned();
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .ok_or(ClientError::Header("authorization"))
}

/// Headers for every call: `authorization: Bearer <token>` when a token is
/// given, and `x-request-id` (the same for every call of this client, so
/// one command's calls can be found together in the servers' logs).
pub fn headers(token: Option<&str>, request_id: Option<&str>) -> Result<HeaderMap, ClientError> {
    let mut headers = HeaderMap::new();
    if let Some(token) = token {
        let mut value = HeaderValue::from_str(&format!("Bearer {token}"))
            .map_err(|_| ClientError::Header("authorization"))?;
        value.set_sensitive(true);
        headers.insert(http::header::AUTHORIZATION, value);
    }
    let id = request_id.map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_string);
    headers.insert(
        HeaderName::from_static(REQUEST_ID_HEADER),
        HeaderValue::from_str(&id).map_err(|_| ClientError::Header(REQUEST_ID_HEADER))?,
    );
    Ok(headers)
}

/// Extra headers a caller adds per call (the trace context of the current
/// span, for instance).
pub type PerCall = Arc<dyn Fn(&mut HeaderMap) + Send + Sync>;

/// A channel that adds headers to every call and retries, once, a call
/// that failed before the server processed it ([`retry`]).
#[derive(Clone)]
pub struct Outgoing {
    inner: Retry<Channel>,
    headers: Arc<HeaderMap>,
    per_call: Option<PerCall>,
}

impl Outgoing {
    /// Wraps `channel`; every call gets `headers`, then `per_call`'s.
    pub fn new(channel: Channel, headers: HeaderMap, per_call: Option<PerCall>) -> Self {
        Self {
            inner: Retry::new(channel),
            headers: Arc::new(headers),
            per_call,
        }
    }
}

impl Service<Request<Body>> for Outgoing {
    type Response = <Retry<Channel> as Service<Request<Body>>>::Response;
    type Error = <Retry<Channel> as Service<Request<Body>>>::Error;
    type Future = <Retry<Channel> as Service<Request<Body>>>::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<Body>) -> Self::Future {
        for (name, value) in self.headers.iter() {
            request.headers_mut().insert(name.clone(), value.clone());
        }
        if let Some(per_call) = &self.per_call {
            per_call(request.headers_mut());
        }
        self.inner.call(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_carry_the_token_marked_sensitive_and_a_request_id() {
        let h = headers(Some("s3cret"), Some("cli-1")).unwrap();
        let auth = h.get(http::header::AUTHORIZATION).unwrap();
        assert_eq!(auth, "Bearer s3cret");
        assert!(auth.is_sensitive());
        assert!(!format!("{auth:?}").contains("s3cret"));
        assert_eq!(h.get("x-request-id").unwrap(), "cli-1");
        let h = headers(None, None).unwrap();
        assert!(h.get(http::header::AUTHORIZATION).is_none());
        assert!(uuid::Uuid::parse_str(h.get("x-request-id").unwrap().to_str().unwrap()).is_ok());
        assert!(headers(Some("bad\ntoken"), None).is_err());
    }

    #[test]
    fn a_half_identity_is_refused() {
        let tls = ClientTls {
            cert: Some("c.pem".into()),
            ..Default::default()
        };
        let err = endpoint("https://localhost:1", &tls).unwrap_err();
        assert!(matches!(
            err,
            ClientError::Read { .. } | ClientError::HalfIdentity
        ));
    }
}
