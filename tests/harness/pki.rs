//! A throwaway certificate authority for TLS tests: a CA, a server
//! certificate for `localhost` and `127.0.0.1`, and a client certificate,
//! as PEM files.

use std::path::{Path, PathBuf};

use rcgen::{BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair};

/// PEM files of one test PKI.
pub struct Pki {
    /// The CA certificate.
    pub ca: PathBuf,
    /// The server certificate (localhost, 127.0.0.1) and its key.
    pub server_cert: PathBuf,
    /// The server key.
    pub server_key: PathBuf,
    /// A client certificate signed by the CA, and its key.
    pub client_cert: PathBuf,
    /// The client key.
    pub client_key: PathBuf,
    /// A client certificate signed by another CA, and its key.
    pub stranger_cert: PathBuf,
    /// The stranger's key.
    pub stranger_key: PathBuf,
}

fn write(dir: &Path, name: &str, pem: String) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, pem).expect("write a PEM file");
    path
}

fn ca() -> (CertificateParams, KeyPair, String) {
    let key = KeyPair::generate().expect("key");
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let cert = params.self_signed(&key).expect("self-sign");
    (params, key, cert.pem())
}

fn leaf(
    issuer: &Issuer<'_, KeyPair>,
    names: &[&str],
    usage: ExtendedKeyUsagePurpose,
) -> (String, String) {
    let key = KeyPair::generate().expect("key");
    let mut params =
        CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
            .expect("params");
    params.extended_key_usages = vec![usage];
    let cert = params.signed_by(&key, issuer).expect("sign");
    (cert.pem(), key.serialize_pem())
}

impl Pki {
    /// Writes a fresh PKI into `dir`.
    pub fn new(dir: &Path) -> Self {
        let (ca_params, ca_key, ca_pem) = ca();
        let issuer = Issuer::new(ca_params, ca_key);
        let (server_cert, server_key) = leaf(
            &issuer,
            &["localhost", "127.0.0.1"],
            ExtendedKeyUsagePurpose::ServerAuth,
        );
        let (client_cert, client_key) = leaf(
            &issuer,
            &["zgc-client"],
            ExtendedKeyUsagePurpose::ClientAuth,
        );
        let (other_params, other_key, _) = ca();
        let other = Issuer::new(other_params, other_key);
        let (stranger_cert, stranger_key) =
            leaf(&other, &["stranger"], ExtendedKeyUsagePurpose::ClientAuth);
        Self {
            ca: write(dir, "ca.pem", ca_pem),
            server_cert: write(dir, "server.pem", server_cert),
            server_key: write(dir, "server.key", server_key),
            client_cert: write(dir, "client.pem", client_cert),
            client_key: write(dir, "client.key", client_key),
            stranger_cert: write(dir, "stranger.pem", stranger_cert),
            stranger_key: write(dir, "stranger.key", stranger_key),
        }
    }
}
