//! Write authorization: with `--auth-token-file`, the write RPCs require
//! `authorization: Bearer <token>`; reads, health and reflection stay open.
//!
//! No header (or not a bearer token): `UNAUTHENTICATED`. A token that is
//! not in the file: `PERMISSION_DENIED`. Tokens are kept as SHA-256
//! digests and compared in constant time; they are never logged.

use std::path::Path;
use std::sync::Arc;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tonic::Status;
use zgc_server::gate::Gate;

/// The methods that change state.
pub const WRITE_METHODS: [&str; 7] = [
    "CreatePark",
    "UpdatePark",
    "DeletePark",
    "CreateCompany",
    "UpdateCompany",
    "DeleteCompany",
    "BatchCreateCompanies",
];

const SERVICE_PREFIX: &str = "/zgc.registry.v1.RegistryService/";

/// Why the token file is unusable.
#[derive(Debug, thiserror::Error)]
pub enum TokenFileError {
    /// It could not be read.
    #[error("cannot read the token file {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// It holds no token.
    #[error("the token file {path} holds no token (one per line; # starts a comment)")]
    Empty {
        /// The file.
        path: String,
    },
}

/// The accepted tokens, as digests.
#[derive(Clone)]
pub struct Tokens {
    digests: Arc<Vec<[u8; 32]>>,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tokens({} redacted)", self.digests.len())
    }
}

fn digest(token: &[u8]) -> [u8; 32] {
    Sha256::digest(token).into()
}

impl Tokens {
    /// Reads a token file: one token per line (two during a rotation);
    /// blank lines and lines starting with `#` are skipped.
    pub fn from_file(path: &Path) -> Result<Self, TokenFileError> {
        let text = std::fs::read_to_string(path).map_err(|source| TokenFileError::Read {
            path: path.display().to_string(),
            source,
        })?;
        let tokens = Self::parse(&text);
        if tokens.digests.is_empty() {
            return Err(TokenFileError::Empty {
                path: path.display().to_string(),
            });
        }
        Ok(tokens)
    }

    /// The tokens in a token file's text.
    pub fn parse(text: &str) -> Self {
        let digests = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(|t| digest(t.as_bytes()))
            .collect();
        Self {
            digests: Arc::new(digests),
        }
    }

    /// Whether `token` is one of them, in time independent of where (or
    /// whether) it matches.
    pub fn accepts(&self, token: &[u8]) -> bool {
        let offered = digest(token);
        self.digests
            .iter()
            .fold(0u8, |found, d| found | d.ct_eq(&offered).unwrap_u8())
            == 1
    }
}

/// Checks a call's `authorization` header, if the call is a write.
pub fn check(path: &str, authorization: Option<&[u8]>, tokens: &Tokens) -> Result<(), Status> {
    let is_write = path
        .strip_prefix(SERVICE_PREFIX)
        .is_some_and(|m| WRITE_METHODS.contains(&m));
    if !is_write {
        return Ok(());
    }
    let Some(token) = authorization.and_then(|h| {
        let scheme = h.get(..7)?;
        scheme
            .eq_ignore_ascii_case(b"bearer ")
            .then(|| h[7..].trim_ascii())
    }) else {
        return Err(Status::unauthenticated(
            "this registry requires `authorization: Bearer <token>` on writes",
        ));
    };
    if tokens.accepts(token) {
        Ok(())
    } else {
        Err(Status::permission_denied(
            "the bearer token is not allowed to write",
        ))
    }
}

/// Enforces [`check`] on every call, when there are tokens.
#[derive(Clone, Debug)]
pub struct WriteAuth(pub Option<Tokens>);

impl Gate for WriteAuth {
    type Pass = ();

    fn admit(&self, path: &str, headers: &http::HeaderMap) -> Result<(), Status> {
        match &self.0 {
            None => Ok(()),
            Some(tokens) => check(
                path,
                headers
                    .get(http::header::AUTHORIZATION)
                    .map(|v| v.as_bytes()),
                tokens,
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WRITE: &str = "/zgc.registry.v1.RegistryService/CreateCompany";
    const READ: &str = "/zgc.registry.v1.RegistryService/GetCompany";

    #[test]
    fn writes_need_a_listed_bearer_token_and_reads_do_not() {
        let tokens = Tokens::parse("# rotation in progress\nold-token\n\n  new-token  \n");
        let code = |path: &str, header: Option<&str>| {
            check(path, header.map(str::as_bytes), &tokens)
                .err()
                .map(|s| s.code())
        };
        assert_eq!(code(READ, None), None);
        assert_eq!(code("/grpc.health.v1.Health/Check", None), None);
        assert_eq!(code(WRITE, Some("Bearer old-token")), None);
        assert_eq!(code(WRITE, Some("bearer new-token")), None);
        assert_eq!(code(WRITE, None), Some(tonic::Code::Unauthenticated));
        assert_eq!(
            code(WRITE, Some("Basic b2xkLXRva2Vu")),
            Some(tonic::Code::Unauthenticated)
        );
        assert_eq!(
            code(WRITE, Some("Bearer")),
            Some(tonic::Code::Unauthenticated)
        );
        assert_eq!(
            code(WRITE, Some("Bearer wrong")),
            Some(tonic::Code::PermissionDenied)
        );
        assert_eq!(
            code(WRITE, Some("Bearer # rotation in progress")),
            Some(tonic::Code::PermissionDenied)
        );
        for m in WRITE_METHODS {
            let path = format!("{SERVICE_PREFIX}{m}");
            assert_eq!(code(&path, None), Some(tonic::Code::Unauthenticated), "{m}");
        }
    }

    #[test]
    fn the_debug_form_shows_no_secret() {
        let tokens = Tokens::parse("s3cret");
        assert_eq!(format!("{tokens:?}"), "Tokens(1 redacted)");
    }
}
