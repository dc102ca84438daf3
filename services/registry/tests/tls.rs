//! The real `zgc-registry` with mutual TLS: every refused handshake is
//! logged at warn with the peer's address and rustls' reason, and a flood
//! of them is logged at most `LOG_BURST` times per window, so a scanner
//! cannot fill the log; a client with a good certificate is served
//! throughout.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore};
use zgc_server::tls::LOG_BURST;

struct Material {
    ca: CertificateDer<'static>,
    client_chain: Vec<CertificateDer<'static>>,
    client_key: PrivateKeyDer<'static>,
}

/// A CA, the server's certificate and key as PEM files in `dir`, and a
/// client certificate signed by the CA.
fn pki(dir: &std::path::Path) -> Material {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.distinguished_name
        .push(DnType::CommonName, "tls test CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    std::fs::write(dir.join("ca.pem"), ca_cert.pem()).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    let server_key = KeyPair::generate().unwrap();
    let server = CertificateParams::new(vec!["localhost".to_string()])
        .unwrap()
        .signed_by(&server_key, &issuer)
        .unwrap();
    std::fs::write(dir.join("server.pem"), server.pem()).unwrap();
    std::fs::write(dir.join("server.key"), server_key.serialize_pem()).unwrap();
    let client_key = KeyPair::generate().unwrap();
    let client = CertificateParams::new(vec!["client".to_string()])
        .unwrap()
        .signed_by(&client_key, &issuer)
        .unwrap();
    Material {
        ca: ca_cert.der().clone(),
        client_chain: vec![client.der().clone()],
        client_key: PrivateKeyDer::try_from(client_key.serialize_der()).unwrap(),
    }
}

fn client_config(m: &Material, with_certificate: bool) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    roots.add(m.ca.clone()).unwrap();
    let builder =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots);
    let mut config = if with_certificate {
        builder
            .with_client_auth_cert(m.client_chain.clone(), m.client_key.clone_key())
            .unwrap()
    } else {
        builder.with_no_client_auth()
    };
    config.alpn_protocols = vec![b"h2".to_vec()];
    Arc::new(config)
}

/// A client without a certificate: its handshake completes on its side
/// (TLS 1.3), and the server's refusal arrives as an alert on the first
/// read. Returns its own address once the server has closed the
/// connection, which it does only after logging the refusal.
async fn refused_client(addr: std::net::SocketAddr, config: Arc<ClientConfig>) -> String {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let local = tcp.local_addr().unwrap().to_string();
    let name = ServerName::try_from("localhost").unwrap();
    let mut tls = TlsConnector::from(config).connect(name, tcp).await.unwrap();
    let _ = tls.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").await;
    let mut buf = [0u8; 64];
    let err = tls.read(&mut buf).await.unwrap_err();
    assert!(
        err.to_string().contains("CertificateRequired"),
        "the client is told why: {err}"
    );
    // Past the alert, the server's end closes (after its log line).
    let (mut tcp, _) = tls.into_inner();
    while matches!(tcp.read(&mut buf).await, Ok(n) if n > 0) {}
    local
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_handshakes_are_logged_with_peer_and_reason_and_rate_limited() {
    let dir = tempfile::tempdir().unwrap();
    let m = pki(dir.path());
    let mut cmd = support::command(&dir.path().join("data"));
    cmd.arg("--tls-cert")
        .arg(dir.path().join("server.pem"))
        .arg("--tls-key")
        .arg(dir.path().join("server.key"))
        .arg("--tls-client-ca")
        .arg(dir.path().join("ca.pem"));
    let mut registry = support::spawn_process(cmd).await;

    // Twice the burst: the first LOG_BURST are logged, the rest counted.
    let flood = 2 * LOG_BURST as usize;
    let mut peers = Vec::new();
    for _ in 0..flood {
        peers.push(refused_client(registry.addr, client_config(&m, false)).await);
    }
    // A client with a certificate is served.
    let good = client_config(&m, true);
    let tcp = TcpStream::connect(registry.addr).await.unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    let mut tls = TlsConnector::from(good).connect(name, tcp).await.unwrap();
    tls.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
        .await
        .unwrap();
    let mut settings = [0u8; 9];
    tls.read_exact(&mut settings).await.unwrap();
    assert_eq!(
        settings[3], 0x4,
        "the server answers with its SETTINGS frame"
    );
    // Closed, so that the server's drain does not wait for it.
    drop(tls);

    // Stop the server, then read every line it logged.
    let pid = registry.child.id().unwrap();
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    let mut refused = Vec::new();
    while let Some(line) = registry.logs.recv().await {
        if line["message"] == "TLS handshake refused" {
            assert_eq!(line["level"], "WARN", "{line}");
            refused.push(line);
        }
    }
    assert_eq!(
        refused.len(),
        LOG_BURST as usize,
        "at most the burst is logged: {refused:#?}"
    );
    for (line, peer) in refused.iter().zip(&peers) {
        assert_eq!(line["peer"], peer.as_str(), "{line}");
        assert_eq!(line["reason"], "peer sent no certificates", "{line}");
    }
}
