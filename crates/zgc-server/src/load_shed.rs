//! Load shedding: at most N calls in flight per server; the next one is
//! answered at once with `UNAVAILABLE` instead of queueing.
//!
//! A permit is taken when a call's headers arrive and given back when its
//! response (for a stream: the start of it) is ready, so it bounds the
//! calls being decoded and handled, hence the memory they hold: about N
//! times the largest request message. A shed call was not executed, so it
//! is safe to retry (with backoff; the response carries `RetryInfo`).
//! Health checks and reflection are never shed: a busy server is not a
//! dead one, and probes must keep telling the truth.

use std::sync::Arc;
use std::time::Duration;

use http::HeaderMap;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};
use zgc_proto::wire::{ERROR_DOMAIN, metadata, reason};

use crate::gate::{Gate, GateLayer};

/// How long a shed client is asked to wait before retrying.
const RETRY_AFTER: Duration = Duration::from_millis(50);

/// Paths that are never shed.
const EXEMPT: [&str; 2] = ["/grpc.health.v1.Health/", "/grpc.reflection."];

/// Limits the calls in flight; see the module docs.
#[derive(Clone, Debug)]
pub struct LoadShed {
    permits: Arc<Semaphore>,
    limit: usize,
}

/// The load-shedding layer.
pub type LoadShedLayer = GateLayer<LoadShed>;

impl LoadShed {
    /// At most `limit` calls in flight (at least 1).
    pub fn new(limit: usize) -> Self {
        let limit = limit.clamp(1, Semaphore::MAX_PERMITS);
        Self {
            permits: Arc::new(Semaphore::new(limit)),
            limit,
        }
    }
}

impl Gate for LoadShed {
    type Pass = Option<OwnedSemaphorePermit>;

    fn admit(&self, path: &str, _headers: &HeaderMap) -> Result<Self::Pass, Status> {
        if EXEMPT.iter().any(|prefix| path.starts_with(prefix)) {
            return Ok(None);
        }
        match self.permits.clone().try_acquire_owned() {
            Ok(permit) => Ok(Some(permit)),
            Err(_) => {
                tracing::debug!(path, limit = self.limit, "shedding a call");
                Err(overloaded(self.limit))
            }
        }
    }
}

/// The status a shed call gets.
pub fn overloaded(limit: usize) -> Status {
    let mut details = ErrorDetails::with_retry_info(Some(RETRY_AFTER));
    details.set_error_info(
        reason::OVERLOADED,
        ERROR_DOMAIN,
        [(metadata::LIMIT.to_string(), limit.to_string())],
    );
    Status::with_error_details(
        Code::Unavailable,
        format!("the server is at its limit of {limit} calls in flight; retry with backoff"),
        details,
    )
}
