//! A connection made only to learn why another one failed.
//!
//! A refused client certificate is reported by the server in a TLS alert
//! sent after the client considers the handshake done (TLS 1.3), so the
//! gRPC call that follows may fail with only "connection closed",
//! depending on which of the alert and the call reaches the connection
//! first. This makes the same handshake with the same settings, then
//! sends the HTTP/2 preface and waits for the server's first bytes: the
//! alert, if there is one, is read here every time. Likewise a TLS server
//! spoken to in plaintext answers the HTTP/2 preface with a TLS alert,
//! which [`plaintext`] recognizes.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore};

use crate::ClientTls;

/// How long each step of the probe may take.
const STEP: Duration = Duration::from_secs(3);

/// The client connection preface of HTTP/2 and an empty SETTINGS frame.
const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00";

fn invalid(what: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, what.into())
}

fn config(tls: &ClientTls) -> io::Result<ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    match &tls.ca {
        Some(ca) => {
            for cert in CertificateDer::pem_file_iter(ca).map_err(|e| invalid(e.to_string()))? {
                roots
                    .add(cert.map_err(|e| invalid(e.to_string()))?)
                    .map_err(|e| invalid(e.to_string()))?;
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid(e.to_string()))?
        .with_root_certificates(roots);
    let mut config = match (&tls.cert, &tls.key) {
        (Some(cert), Some(key)) => {
            let chain = CertificateDer::pem_file_iter(cert)
                .map_err(|e| invalid(e.to_string()))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| invalid(e.to_string()))?;
            let key = PrivateKeyDer::from_pem_file(key).map_err(|e| invalid(e.to_string()))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?
        }
        _ => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(config)
}

/// The error [`plaintext`] ends with when the server speaks TLS.
#[derive(Debug, thiserror::Error)]
#[error("the server speaks TLS at this address (use an https:// address, with --tls-ca if needed)")]
pub struct SpeaksTls;

/// A TCP connection to `addr`'s host and port (`default_port` when it names
/// none), and the host as the address spells it.
async fn connect(addr: &str, default_port: u16) -> io::Result<(TcpStream, String)> {
    let uri: http::Uri = addr.parse().map_err(|e| invalid(format!("{addr}: {e}")))?;
    let host = uri
        .host()
        .ok_or_else(|| invalid(format!("{addr} names no host")))?
        .trim_matches(['[', ']'])
        .to_string();
    let port = uri.port_u16().unwrap_or(default_port);
    let tcp = tokio::time::timeout(STEP, TcpStream::connect((host.as_str(), port)))
        .await
        .map_err(|e| io::Error::new(io::ErrorKind::TimedOut, e))??;
    Ok((tcp, host))
}

/// Connects to `addr` in plaintext as a gRPC call would, sends the HTTP/2
/// preface and reads the first bytes of the answer: [`SpeaksTls`] (in an
/// `io::Error`) if they are a TLS record.
pub async fn plaintext(addr: &str) -> io::Result<()> {
    let (mut tcp, _) = connect(addr, 80).await?;
    tcp.write_all(PREFACE).await?;
    let mut first = [0u8; 64];
    match tokio::time::timeout(STEP, tcp.read(&mut first)).await {
        // A TLS record: alert (21) or handshake (22), version 3.x.
        Ok(Ok(n)) if n >= 2 && matches!(first[0], 21 | 22) && first[1] == 3 => {
            Err(io::Error::new(io::ErrorKind::InvalidData, SpeaksTls))
        }
        Ok(Ok(_)) | Err(_) => Ok(()),
        Ok(Err(e)) => Err(e),
    }
}

/// Connects to `addr` with `tls` as a gRPC call would, and returns the
/// error that ends it, if any: the handshake's, or the first read's (a
/// TLS alert from the server). `Ok` when the server answers HTTP/2.
pub async fn tls(addr: &str, tls: &ClientTls) -> io::Result<()> {
    let (tcp, host) = connect(addr, 443).await?;
    let name = tls.server_name.clone().unwrap_or(host);
    let server_name = ServerName::try_from(name).map_err(|e| invalid(e.to_string()))?;
    let step = |e| io::Error::new(io::ErrorKind::TimedOut, e);
    let connector = TlsConnector::from(Arc::new(config(tls)?));
    let mut stream = tokio::time::timeout(STEP, connector.connect(server_name, tcp))
        .await
        .map_err(step)??;
    stream.write_all(PREFACE).await?;
    stream.flush().await?;
    let mut first = [0u8; 64];
    match tokio::time::timeout(STEP, stream.read(&mut first)).await {
        Ok(Ok(0)) => Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the server closed the connection after the handshake",
        )),
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(e),
        // Nothing in time, but nothing refused either.
        Err(_) => Ok(()),
    }
}
