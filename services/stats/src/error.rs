//! Errors converted once into `tonic::Status`.

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};
use zgc_stats_engine::QueryError;

use crate::state::NotYet;

/// A failed stats call.
#[derive(Debug, thiserror::Error)]
pub enum StatsError {
    /// The query was rejected.
    #[error(transparent)]
    Query(#[from] QueryError),
    /// The requested revision was not applied in time.
    #[error("{}", describe(.0))]
    NotYet(NotYet),
    /// The service is shutting down.
    #[error("the stats service is shutting down")]
    ShuttingDown,
}

fn describe(n: &NotYet) -> String {
    if n.loading {
        "the stats service is still loading its first snapshot from the registry; retry shortly"
            .into()
    } else {
        format!(
            "the stats service has applied revision {} of the registry, not yet {}; retry shortly",
            n.applied, n.wanted
        )
    }
}

impl From<StatsError> for Status {
    fn from(err: StatsError) -> Self {
        let message = err.to_string();
        match err {
            StatsError::Query(QueryError::Invalid { field, description }) => {
                Status::with_error_details(
                    Code::InvalidArgument,
                    message,
                    ErrorDetails::with_bad_request_violation(field, description),
                )
            }
            StatsError::Query(QueryError::NotFound(_)) => Status::not_found(message),
            StatsError::NotYet(_) => zgc_server::retry::unavailable(message),
            StatsError::ShuttingDown => Status::unavailable(message),
        }
    }
}
