//! What a failed command says, and its exit code.

use std::fmt;

use std::path::Path;

use tonic::{Code, Status};
use tonic_types::StatusExt;

use crate::diagnose;

/// A failed command.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// A call failed; printed with its code, message and details.
    #[error("{}", render_status(.0))]
    Rpc(#[from] Status),
    /// The server could not be reached.
    #[error("cannot reach {addr}: {}", diagnose::cause(.source, None).unwrap_or_else(|| .source.to_string()))]
    Connect {
        /// The endpoint.
        addr: String,
        /// Why.
        source: tonic::transport::Error,
    },
    /// Bad input from the user.
    #[error("{0}")]
    Input(String),
    /// A local I/O failure.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// Some records failed (the report was printed).
    #[error("{0}")]
    Partial(String),
    /// A server failed to run.
    #[error("{0}")]
    Serve(String),
    /// A bug in the CLI itself (a task of it panicked).
    #[error("internal error: {0}")]
    Internal(String),
}

impl CliError {
    /// The error for people: [`Display`](fmt::Display), and for a failure
    /// on the wire its cause from the error's source chain, told with the
    /// client certificate this command presented (if any) in mind.
    /// `probed` is what a separate TLS handshake with the same settings
    /// ended with ([`zgc_client::probe`]), which names a TLS refusal the
    /// call itself may have seen only as a closed connection.
    pub fn describe(&self, client_cert: Option<&Path>, probed: Option<&std::io::Error>) -> String {
        let probed = probed.and_then(|e| diagnose::cause(e, client_cert));
        match self {
            CliError::Connect { addr, source } => {
                let cause = probed.or_else(|| diagnose::cause(source, client_cert));
                format!(
                    "cannot reach {addr}: {}",
                    cause.unwrap_or_else(|| source.to_string())
                )
            }
            CliError::Rpc(status) => {
                let mut text = render_status(status);
                if let Some(cause) = probed.or_else(|| diagnose::cause(status, client_cert)) {
                    text.push_str(&format!("\n  cause: {cause}"));
                }
                text
            }
            other => other.to_string(),
        }
    }

    /// Whether the command failed on the wire (connecting, or a call cut
    /// by its connection) rather than with an answer from the server.
    pub fn is_on_the_wire(&self) -> bool {
        match self {
            CliError::Connect { .. } => true,
            CliError::Rpc(status) => std::error::Error::source(status).is_some(),
            _ => false,
        }
    }

    /// The process exit code: 2 for bad input, 3 when a server cannot be
    /// reached (or a call is cut by its connection), 4 for a partial
    /// import, 1 for everything else.
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Input(_) => 2,
            CliError::Rpc(s) if s.code() == Code::InvalidArgument => 2,
            CliError::Connect { .. } => 3,
            CliError::Rpc(s) if s.code() == Code::Unavailable => 3,
            // A call cut by its connection: the service was not reached.
            err if err.is_on_the_wire() => 3,
            CliError::Partial(_) => 4,
            _ => 1,
        }
    }
}

struct Code2(Code);

impl fmt::Display for Code2 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The canonical upper-case name, e.g. NOT_FOUND.
        let name = format!("{:?}", self.0);
        let mut out = String::new();
        for (i, c) in name.chars().enumerate() {
            if c.is_uppercase() && i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_uppercase());
        }
        f.write_str(&out)
    }
}

/// `CODE: message`, then each field violation and the error reason.
pub fn render_status(s: &Status) -> String {
    let mut out = format!("{}: {}", Code2(s.code()), s.message());
    if let Some(bad) = s.get_details_bad_request() {
        for v in bad.field_violations {
            out.push_str(&format!("\n  {}: {}", v.field, v.description));
        }
    }
    if let Some(info) = s.get_details_error_info() {
        out.push_str(&format!("\n  reason: {}", info.reason));
        for (k, v) in info.metadata {
            out.push_str(&format!(" ({k}={v})"));
        }
    }
    if let Some(retry) = s.get_details_retry_info().and_then(|r| r.retry_delay) {
        out.push_str(&format!("\n  retry after {retry:?}"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_print_like_grpc_names() {
        assert_eq!(Code2(Code::NotFound).to_string(), "NOT_FOUND");
        assert_eq!(Code2(Code::InvalidArgument).to_string(), "INVALID_ARGUMENT");
        assert_eq!(Code2(Code::Ok).to_string(), "OK");
    }
}
