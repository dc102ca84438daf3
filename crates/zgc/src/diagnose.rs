//! What went wrong on the wire, in words: a failed connection or call
//! carries its cause deep in its source chain (tonic's "transport error",
//! hyper's, the socket's, rustls'), and this walks the chain to name it:
//! connection refused, the server's certificate not trusted, the server
//! asking for a client certificate, or refusing the one sent (and, when
//! it can be told here, why: a certificate that is not X.509 v3).

use std::error::Error;
use std::io;
use std::path::Path;

use tokio_rustls::rustls::pki_types::CertificateDer;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::{self, AlertDescription, CertificateError};

/// Every error of `err`'s source chain, outermost first. An `io::Error`
/// wrapping another error is followed into it (its own `source` skips
/// the wrapped error and goes to that error's source).
pub fn chain<'a>(err: &'a (dyn Error + 'static)) -> Vec<&'a (dyn Error + 'static)> {
    let mut out = Vec::new();
    let mut next = Some(err);
    while let Some(e) = next {
        out.push(e);
        next = match e.downcast_ref::<io::Error>().and_then(io::Error::get_ref) {
            Some(inner) => Some(inner as &(dyn Error + 'static)),
            None => e.source(),
        };
        if out.len() > 32 {
            break;
        }
    }
    out
}

/// The cause of a transport failure in words, if the chain names one.
/// `client_cert` is the certificate this client presented, if any: when
/// the server refuses it, it is checked here to say why.
pub fn cause(err: &(dyn Error + 'static), client_cert: Option<&Path>) -> Option<String> {
    let errors = chain(err);
    if let Some(tls) = errors.iter().find_map(|e| rustls_error(*e)) {
        return Some(format!(
            "TLS handshake failed: {}",
            tls_cause(&tls, client_cert)
        ));
    }
    if let Some(speaks_tls) = errors
        .iter()
        .find_map(|e| e.downcast_ref::<zgc_client::probe::SpeaksTls>())
    {
        return Some(speaks_tls.to_string());
    }
    let io = errors.iter().find_map(|e| e.downcast_ref::<io::Error>());
    match io.map(io::Error::kind) {
        Some(io::ErrorKind::ConnectionRefused) => {
            Some("connection refused: nothing listens at that address".into())
        }
        Some(io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe) => Some(
            "the server closed the connection (a TLS server spoken to in plaintext, or a \
             proxy refusing it)"
                .into(),
        ),
        Some(io::ErrorKind::TimedOut) => Some("the connection timed out".into()),
        _ => {
            // No known cause: the innermost message is the most specific.
            let innermost = errors.last()?;
            (errors.len() > 1).then(|| innermost.to_string())
        }
    }
}

/// The rustls error `e` is, or names: tokio-rustls passes some on as
/// their text only (`received fatal alert: BadCertificate`).
fn rustls_error(e: &(dyn Error + 'static)) -> Option<rustls::Error> {
    if let Some(tls) = e.downcast_ref::<rustls::Error>() {
        return Some(tls.clone());
    }
    let text = e.to_string();
    let name = text.strip_prefix("received fatal alert: ")?;
    (0..=u8::MAX)
        .map(AlertDescription::from)
        .find(|alert| format!("{alert:?}") == name)
        .map(rustls::Error::AlertReceived)
}

fn tls_cause(e: &rustls::Error, client_cert: Option<&Path>) -> String {
    match e {
        rustls::Error::InvalidCertificate(c) => format!(
            "the server's certificate {}",
            match c {
                CertificateError::UnknownIssuer => {
                    "is not trusted: its issuer is not among the CAs given with --tls-ca".into()
                }
                CertificateError::NotValidForName
                | CertificateError::NotValidForNameContext { .. } => {
                    "is not valid for this host name (see --tls-server-name)".into()
                }
                CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                    "has expired".into()
                }
                other => format!("is invalid ({other:?})"),
            }
        ),
        rustls::Error::AlertReceived(AlertDescription::CertificateRequired) => {
            "the server asks for a client certificate (give --tls-cert and --tls-key)".into()
        }
        rustls::Error::AlertReceived(
            alert @ (AlertDescription::BadCertificate
            | AlertDescription::UnsupportedCertificate
            | AlertDescription::CertificateUnknown
            | AlertDescription::UnknownCA
            | AlertDescription::CertificateExpired
            | AlertDescription::DecryptError
            | AlertDescription::DecodeError),
        ) => {
            let why = client_cert
                .and_then(certificate_problem)
                .unwrap_or_else(|| match alert {
                    AlertDescription::UnknownCA | AlertDescription::DecryptError => {
                        "it is not signed by a CA the server trusts".into()
                    }
                    _ => "the server's log says why".into(),
                });
            format!(
                "the server refused this client's certificate ({}): {why}",
                alert_name(*alert)
            )
        }
        rustls::Error::InvalidMessage(_) => {
            "the server does not speak TLS there (try an http:// address)".into()
        }
        other => other.to_string(),
    }
}

/// Why the TLS settings could not be used, before any connection: a
/// client certificate that no server would accept is named as such.
pub fn setup(err: &(dyn Error + 'static), client_cert: Option<&Path>) -> String {
    let problem = errors_mention_certificate(err)
        .then(|| client_cert.and_then(certificate_problem))
        .flatten();
    let innermost = chain(err).last().map(|e| e.to_string());
    match (problem, innermost) {
        (Some(problem), _) => format!("{err}: {problem}"),
        (None, Some(inner)) if inner != err.to_string() => format!("{err}: {inner}"),
        _ => err.to_string(),
    }
}

fn errors_mention_certificate(err: &(dyn Error + 'static)) -> bool {
    chain(err).iter().any(|e| {
        matches!(
            e.downcast_ref::<rustls::Error>(),
            Some(rustls::Error::InvalidCertificate(_))
        )
    })
}

/// What is wrong with the certificate in `path` that any server would
/// refuse, if anything can be told without the server.
pub fn certificate_problem(path: &Path) -> Option<String> {
    let cert = match CertificateDer::from_pem_file(path) {
        Ok(cert) => cert,
        Err(e) => return Some(format!("{} is not a PEM certificate: {e}", path.display())),
    };
    match webpki::EndEntityCert::try_from(&cert) {
        Err(webpki::Error::UnsupportedCertVersion) => Some(format!(
            "{} is not an X.509 v3 certificate (a plain `openssl x509 -req` makes v1; \
             sign it with extensions, e.g. `-extfile` with `extendedKeyUsage = clientAuth`)",
            path.display()
        )),
        Err(e) => Some(format!("{} cannot be used: {e}", path.display())),
        Ok(_) => None,
    }
}

/// The TLS alert's name as RFC 8446 spells it.
fn alert_name(alert: AlertDescription) -> String {
    let camel = format!("{alert:?}");
    let mut out = String::new();
    let mut previous_lower = false;
    for c in camel.chars() {
        if c.is_ascii_uppercase() && previous_lower {
            out.push('_');
        }
        previous_lower = c.is_ascii_lowercase();
        out.push(c.to_ascii_lowercase());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("transport error")]
    struct Outer(#[source] io::Error);

    #[test]
    fn the_chain_goes_through_an_io_error_into_what_it_wraps() {
        let tls = rustls::Error::AlertReceived(AlertDescription::CertificateRequired);
        let err = Outer(io::Error::new(io::ErrorKind::InvalidData, tls));
        let names: Vec<String> = chain(&err).iter().map(|e| e.to_string()).collect();
        assert_eq!(names.len(), 3, "{names:?}");
        assert_eq!(
            cause(&err, None).unwrap(),
            "TLS handshake failed: the server asks for a client certificate \
             (give --tls-cert and --tls-key)"
        );
    }

    #[test]
    fn a_refused_connection_says_so() {
        let err = Outer(io::Error::from(io::ErrorKind::ConnectionRefused));
        assert!(cause(&err, None).unwrap().starts_with("connection refused"));
    }

    #[test]
    fn an_untrusted_server_certificate_says_which_flag_trusts_it() {
        let tls = rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer);
        let err = Outer(io::Error::new(io::ErrorKind::InvalidData, tls));
        let text = cause(&err, None).unwrap();
        assert!(
            text.contains("not trusted") && text.contains("--tls-ca"),
            "{text}"
        );
    }

    #[test]
    fn alerts_are_named_as_the_rfc_does() {
        assert_eq!(
            alert_name(AlertDescription::BadCertificate),
            "bad_certificate"
        );
        assert_eq!(alert_name(AlertDescription::UnknownCA), "unknown_ca");
        assert_eq!(
            alert_name(AlertDescription::CertificateRequired),
            "certificate_required"
        );
    }

    #[test]
    fn an_error_without_a_chain_has_no_cause() {
        assert_eq!(cause(&std::fmt::Error, None), None);
    }
}
