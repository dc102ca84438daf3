//! The servers' TLS: the rustls configuration the `--tls-*` flags ask
//! for, and handshakes that say why they failed.
//!
//! The servers do their own handshakes (in [`crate::incoming`]) instead of
//! leaving them to tonic, which drops a refused handshake with a debug
//! line and no peer: a client without a certificate, or with one the
//! server cannot accept, would be refused with nothing in the log. Here
//! each refusal is logged at warn with the peer's address and rustls'
//! reason, at most [`LOG_BURST`] lines per [`LOG_WINDOW`] so a scanner
//! cannot flood the log; the lines left out are counted in the next one.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{self, RootCertStore, ServerConfig};

/// How long a connection may take to complete its TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Refused handshakes logged per [`LOG_WINDOW`] at most.
pub const LOG_BURST: u32 = 20;

/// The window [`LOG_BURST`] counts over.
pub const LOG_WINDOW: Duration = Duration::from_secs(60);

/// Why the TLS flags could not be turned into a configuration.
#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    /// A file named by a flag could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// A file holds no PEM item of the kind it should.
    #[error("{path}: {what}")]
    Pem {
        /// The file.
        path: String,
        /// What is wrong with it.
        what: String,
    },
    /// rustls refused the material (a key that does not match the
    /// certificate, an unusable CA).
    #[error("TLS setup: {0}")]
    Rustls(String),
}

fn read(path: &Path) -> Result<Vec<u8>, TlsSetupError> {
    std::fs::read(path).map_err(|source| TlsSetupError::Read {
        path: path.display().to_string(),
        source,
    })
}

fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsSetupError> {
    let pem = read(path)?;
    let bad = |what: String| TlsSetupError::Pem {
        path: path.display().to_string(),
        what,
    };
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(format!("not a PEM certificate file: {e}")))?;
    if certs.is_empty() {
        return Err(bad("holds no CERTIFICATE block".into()));
    }
    Ok(certs)
}

/// A server configuration presenting `cert` (a PEM chain, leaf first)
/// with `key`, speaking HTTP/2 (ALPN `h2`), and with `client_ca`
/// requiring every client to present a certificate that CA signed
/// (mutual TLS).
pub fn server_config(
    cert: &Path,
    key: &Path,
    client_ca: Option<&Path>,
) -> Result<Arc<ServerConfig>, TlsSetupError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let rustls_error = |e: rustls::Error| TlsSetupError::Rustls(e.to_string());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(rustls_error)?;
    let builder = match client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            for cert in certificates(ca)? {
                roots.add(cert).map_err(rustls_error)?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(roots.into(), provider)
                .build()
                .map_err(|e| TlsSetupError::Rustls(e.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let chain = certificates(cert)?;
    let key_pem = read(key)?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| TlsSetupError::Pem {
        path: key.display().to_string(),
        what: format!("no usable private key: {e}"),
    })?;
    let mut config = builder.with_single_cert(chain, key).map_err(rustls_error)?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Arc::new(config))
}

/// Lets through at most `burst` events per `window`, and counts the rest.
#[derive(Debug)]
pub struct LogLimit {
    burst: u32,
    window: Duration,
    state: Mutex<Window>,
}

#[derive(Debug)]
struct Window {
    start: Instant,
    logged: u32,
    suppressed: u64,
}

/// What [`LogLimit::admit`] decided.
#[derive(Debug, PartialEq, Eq)]
pub enum Admit {
    /// Log this event; `suppressed` earlier ones were not logged.
    Log {
        /// Events left out since the last one logged.
        suppressed: u64,
    },
    /// Leave this one out (it is counted).
    Suppress,
}

impl LogLimit {
    /// At most `burst` per `window`.
    pub fn new(burst: u32, window: Duration) -> Self {
        Self {
            burst,
            window,
            state: Mutex::new(Window {
                start: Instant::now(),
                logged: 0,
                suppressed: 0,
            }),
        }
    }

    /// Whether an event at `now` is logged.
    pub fn admit(&self, now: Instant) -> Admit {
        let mut w = match self.state.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        if now.saturating_duration_since(w.start) >= self.window {
            w.start = now;
            w.logged = 0;
        }
        if w.logged < self.burst {
            w.logged += 1;
            Admit::Log {
                suppressed: std::mem::take(&mut w.suppressed),
            }
        } else {
            w.suppressed += 1;
            Admit::Suppress
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_past_the_limit_is_counted_and_reported_in_the_next_window() {
        let limit = LogLimit::new(2, Duration::from_secs(60));
        let t0 = Instant::now();
        assert_eq!(limit.admit(t0), Admit::Log { suppressed: 0 });
        assert_eq!(limit.admit(t0), Admit::Log { suppressed: 0 });
        for _ in 0..5 {
            assert_eq!(limit.admit(t0 + Duration::from_secs(59)), Admit::Suppress);
        }
        assert_eq!(
            limit.admit(t0 + Duration::from_secs(60)),
            Admit::Log { suppressed: 5 }
        );
        assert_eq!(
            limit.admit(t0 + Duration::from_secs(61)),
            Admit::Log { suppressed: 0 }
        );
        assert_eq!(limit.admit(t0 + Duration::from_secs(62)), Admit::Suppress);
    }

    #[test]
    fn missing_or_empty_files_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "").unwrap();
        let missing = dir.path().join("missing.pem");
        let err = server_config(&missing, &missing, None).unwrap_err();
        assert!(err.to_string().contains("missing.pem"), "{err}");
        let err = server_config(&empty, &empty, None).unwrap_err();
        assert!(
            err.to_string().contains("empty.pem") && err.to_string().contains("CERTIFICATE"),
            "{err}"
        );
    }
}
