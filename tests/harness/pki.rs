//! A throwaway certificate authority for TLS tests: a CA, a server
//! certificate for `localhost` and `127.0.0.1`, and a client certificate,
//! as PEM files.

use std::path::{Path, PathBuf};

use rcgen::{BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair};

/// PEM files of one test PKI.
#[derive(Debug, Clone)]
pub struct Pki {
    /// The CA certificate.
    pub ca: PathBuf,
    /// The CA's private key.
    pub ca_key: PathBuf,
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

/// A CA named `name` (distinct names, as real CAs have: a verifier finds
/// a certificate's issuer by name).
fn ca(name: &str) -> (CertificateParams, KeyPair, String, String) {
    let key = KeyPair::generate().expect("key");
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let cert = params.self_signed(&key).expect("self-sign");
    let key_pem = key.serialize_pem();
    (params, key, cert.pem(), key_pem)
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
        let (ca_params, ca_key, ca_pem, ca_key_pem) = ca("zgc test CA");
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
        let (other_params, other_key, _, _) = ca("another CA");
        let other = Issuer::new(other_params, other_key);
        let (stranger_cert, stranger_key) =
            leaf(&other, &["stranger"], ExtendedKeyUsagePurpose::ClientAuth);
        Self {
            ca: write(dir, "ca.pem", ca_pem),
            ca_key: write(dir, "ca.key", ca_key_pem),
            server_cert: write(dir, "server.pem", server_cert),
            server_key: write(dir, "server.key", server_key),
            client_cert: write(dir, "client.pem", client_cert),
            client_key: write(dir, "client.key", client_key),
            stranger_cert: write(dir, "stranger.pem", stranger_cert),
            stranger_key: write(dir, "stranger.key", stranger_key),
        }
    }

    /// A client certificate signed by the CA as a plain `openssl x509
    /// -req` signs one: X.509 v1, with no extensions, which rustls (like
    /// most TLS stacks) refuses. Made with the `openssl` command; returns
    /// the certificate and its key.
    pub fn v1_client(&self, dir: &Path) -> (PathBuf, PathBuf) {
        let openssl = crate::tools::tool("openssl", "OPENSSL");
        let key = dir.join("v1.key");
        let csr = dir.join("v1.csr");
        let cert = dir.join("v1.pem");
        let run = |args: &[&std::ffi::OsStr]| {
            let out = std::process::Command::new(&openssl)
                .args(args)
                .output()
                .expect("run openssl");
            assert!(out.status.success(), "openssl {args:?}: {out:?}");
        };
        let (key_s, csr_s, cert_s) = (key.as_os_str(), csr.as_os_str(), cert.as_os_str());
        run(&[
            "req".as_ref(),
            "-new".as_ref(),
            "-newkey".as_ref(),
            "ec".as_ref(),
            "-pkeyopt".as_ref(),
            "ec_paramgen_curve:P-256".as_ref(),
            "-nodes".as_ref(),
            "-subj".as_ref(),
            "/CN=v1-client".as_ref(),
            "-keyout".as_ref(),
            key_s,
            "-out".as_ref(),
            csr_s,
        ]);
        run(&[
            "x509".as_ref(),
            "-req".as_ref(),
            "-in".as_ref(),
            csr_s,
            "-CA".as_ref(),
            self.ca.as_os_str(),
            "-CAkey".as_ref(),
            self.ca_key.as_os_str(),
            "-days".as_ref(),
            "1".as_ref(),
            "-out".as_ref(),
            cert_s,
        ]);
        (cert, key)
    }
}
