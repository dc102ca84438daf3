//! `UNAVAILABLE` answers that tell the client when to try again.

use std::time::Duration;

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// How long a client is asked to wait (`google.rpc.RetryInfo`) before
/// retrying a call that found the service not ready: a store reopening, a
/// revision not applied yet. Long enough not to spin, short against the
/// deadlines clients set.
pub const RETRY_DELAY: Duration = Duration::from_millis(250);

/// `UNAVAILABLE` with `message` and a `RetryInfo` of [`RETRY_DELAY`].
pub fn unavailable(message: impl Into<String>) -> Status {
    Status::with_error_details(
        Code::Unavailable,
        message,
        ErrorDetails::with_retry_info(Some(RETRY_DELAY)),
    )
}
