//! What an etcd call can end in, in the terms the caller must act on.

use tonic::{Code, Status};

/// Why an etcd call failed.
#[derive(Debug, thiserror::Error)]
pub enum EtcdError {
    /// The configuration cannot be used: no endpoints, or one that is not
    /// a valid URL, or TLS settings that cannot be read.
    #[error("etcd client setup: {0}")]
    Config(String),
    /// No member answered before the call's deadline; the call was not
    /// applied.
    #[error("no etcd member answered: {0}")]
    Unavailable(String),
    /// A call that changes data failed in a way that leaves it unknown
    /// whether etcd applied it (the connection broke after it was sent,
    /// the leader changed while it waited, the deadline passed). The
    /// caller must find out by reading, never by sending it again blindly.
    #[error("an etcd write may or may not have been applied: {0}")]
    Ambiguous(String),
    /// A watch asked for a revision etcd has compacted away.
    #[error("etcd revision {requested} is compacted (the oldest kept is {compact_revision})")]
    Compacted {
        /// The revision the watch asked to start from.
        requested: i64,
        /// The revision etcd compacted up to.
        compact_revision: i64,
    },
    /// etcd refused the call (permission, a request too large, an invalid
    /// argument): sending it again would not help.
    #[error("etcd refused the call: {} ({:?})", .0.message(), .0.code())]
    Refused(Status),
    /// The user name or password was refused.
    #[error("etcd authentication failed: {0}")]
    Auth(String),
}

/// What a failed call tells about retrying it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failure {
    /// The call never took effect (the member could not be reached, or it
    /// has no leader to propose it to): any call may go to another member.
    NotApplied,
    /// The call may have taken effect: a read may go to another member, a
    /// write is ambiguous.
    Unknown,
    /// The auth token expired or was revoked: authenticate and send again.
    Token,
    /// Another member would refuse it too.
    Final,
}

/// etcd's error messages for calls it refused before proposing them
/// (`rpctypes` in etcd's API).
const NOT_PROPOSED: &[&str] = &[
    "etcdserver: no leader",
    "etcdserver: not capable",
    "etcdserver: too many requests",
    "etcdserver: server stopped",
    "etcdserver: unhealthy cluster",
];

/// etcd's error messages for a token that no longer holds.
const BAD_TOKEN: &[&str] = &[
    "etcdserver: invalid auth token",
    "etcdserver: user name is empty",
];

pub(crate) fn classify(status: &Status) -> Failure {
    let message = status.message();
    if BAD_TOKEN.iter().any(|m| message.contains(m)) {
        return Failure::Token;
    }
    if NOT_PROPOSED.iter().any(|m| message.contains(m)) || never_connected(status) {
        return Failure::NotApplied;
    }
    match status.code() {
        Code::Unavailable
        | Code::DeadlineExceeded
        | Code::Unknown
        | Code::Internal
        | Code::Cancelled
        | Code::Aborted => Failure::Unknown,
        _ => Failure::Final,
    }
}

/// Whether the call failed to connect, so nothing was sent.
fn never_connected(status: &Status) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(status);
    while let Some(error) = source {
        if let Some(io) = error.downcast_ref::<std::io::Error>()
            && matches!(
                io.kind(),
                std::io::ErrorKind::ConnectionRefused | std::io::ErrorKind::NotFound
            )
        {
            return true;
        }
        let text = error.to_string();
        if text.contains("tcp connect error") || text.contains("Connection refused") {
            return true;
        }
        source = error.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etcd_refusals_before_proposing_are_not_applied() {
        for message in NOT_PROPOSED {
            assert_eq!(
                classify(&Status::unavailable(*message)),
                Failure::NotApplied
            );
        }
    }

    #[test]
    fn a_leader_change_or_timeout_leaves_a_write_unknown() {
        for message in [
            "etcdserver: leader changed",
            "etcdserver: request timed out",
        ] {
            assert_eq!(classify(&Status::unavailable(message)), Failure::Unknown);
        }
        assert_eq!(
            classify(&Status::deadline_exceeded("deadline")),
            Failure::Unknown
        );
    }

    #[test]
    fn an_expired_token_is_renewed_and_a_refusal_is_final() {
        assert_eq!(
            classify(&Status::unauthenticated("etcdserver: invalid auth token")),
            Failure::Token
        );
        assert_eq!(
            classify(&Status::invalid_argument(
                "etcdserver: request is too large"
            )),
            Failure::Final
        );
        assert_eq!(
            classify(&Status::permission_denied("etcdserver: permission denied")),
            Failure::Final
        );
    }
}
