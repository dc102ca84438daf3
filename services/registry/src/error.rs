//! Errors as types inside the service, converted once into `tonic::Status`
//! with standard details (`BadRequest`, `ErrorInfo` in domain `zgc.dev`).

use std::collections::HashMap;

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, FieldViolation, StatusExt};
use zgc_proto::wire::{ERROR_DOMAIN, metadata, reason};
use zgc_store::StoreError;

/// A failed registry call.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Invalid fields: one violation per bad field.
    #[error("invalid request: {}", describe(.0))]
    Invalid(Vec<FieldViolation>),
    /// An invalid field that programs must tell apart by reason.
    #[error("{description}")]
    InvalidWithReason {
        /// The field path.
        field: String,
        /// What is wrong with it.
        description: String,
        /// The `ErrorInfo` reason.
        reason: &'static str,
    },
    /// No such resource.
    #[error("{0} not found")]
    NotFound(String),
    /// The resource exists already.
    #[error("{0} already exists")]
    AlreadyExists(String),
    /// The request conflicts with the current state.
    #[error("{message}")]
    FailedPrecondition {
        /// Human-readable.
        message: String,
        /// The `ErrorInfo` reason.
        reason: &'static str,
    },
    /// The resource changed since the client's etag.
    #[error("{0}")]
    EtagMismatch(String),
    /// Watch history no longer kept.
    #[error("revisions up to {compact_revision} are compacted; watch from 0 or later than it")]
    Compacted {
        /// Every revision up to this one is gone.
        compact_revision: u64,
    },
    /// A limit on what one server holds open was reached.
    #[error("{message}")]
    Exhausted {
        /// Human-readable.
        message: String,
        /// The `ErrorInfo` reason.
        reason: &'static str,
    },
    /// The server is shutting down or cannot serve right now.
    #[error("{0}")]
    Unavailable(String),
    /// The caller gave up before the answer was ready (nobody reads it).
    #[error("the caller cancelled the call")]
    Cancelled,
    /// A bug or corruption; details are logged, not sent.
    #[error("internal error")]
    Internal(String),
}

fn describe(v: &[FieldViolation]) -> String {
    v.iter()
        .map(|f| format!("{}: {}", f.field, f.description))
        .collect::<Vec<_>>()
        .join("; ")
}

impl ApiError {
    /// One invalid field.
    pub fn invalid(field: impl Into<String>, description: impl Into<String>) -> Self {
        Self::Invalid(vec![FieldViolation::new(field, description)])
    }

    /// Maps a store error; `entry_path` gives the field path prefix of a
    /// batch entry (e.g. `requests[3].company`).
    pub fn from_store(err: StoreError, entry_path: &dyn Fn(usize) -> String) -> Self {
        match err {
            StoreError::AlreadyExists { name, .. } => Self::AlreadyExists(name),
            StoreError::NotFound { name } => Self::NotFound(name),
            StoreError::MissingReference {
                entry,
                field,
                target,
            } => Self::FailedPrecondition {
                message: format!("{}.{field}: {target} does not exist", entry_path(entry)),
                reason: reason::REFERENCE_NOT_FOUND,
            },
            StoreError::InUse { name, by } => Self::FailedPrecondition {
                message: format!("{name} is still referenced by {by}"),
                reason: reason::RESOURCE_IN_USE,
            },
            StoreError::Cycle {
                field,
                name,
                target,
            } => Self::FailedPrecondition {
                message: format!("setting {field} of {name} to {target} would make a cycle"),
                reason: reason::PARENT_CYCLE,
            },
            StoreError::RevisionMismatch { name, .. } => {
                Self::EtagMismatch(format!("{name} changed since the etag was read"))
            }
            StoreError::RequestIdReused { request_id } => Self::InvalidWithReason {
                field: "request_id".into(),
                description: format!(
                    "request_id {request_id} was already used with a different request"
                ),
                reason: reason::REQUEST_ID_REUSED,
            },
            StoreError::Compacted { compact_revision } => Self::Compacted { compact_revision },
            StoreError::TooLarge {
                entry,
                bytes,
                limit,
            } => Self::invalid(
                entry_path(entry),
                format!("encodes to {bytes} bytes; at most {limit} are allowed"),
            ),
            StoreError::Closed => Self::Unavailable("the registry is shutting down".into()),
            e @ StoreError::Unavailable(_) => Self::Unavailable(e.to_string()),
            StoreError::Io(e) => Self::Unavailable(format!("storage unavailable: {e}")),
            StoreError::Storage(e) => Self::Unavailable(format!("storage unavailable: {e}")),
            e @ (StoreError::Corrupt(_)
            | StoreError::Locked { .. }
            | StoreError::Open { .. }
            | StoreError::Config(_)) => Self::Internal(e.to_string()),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        Self::from_store(err, &|_| "request".into())
    }
}

fn info(reason: &str, metadata: HashMap<String, String>) -> ErrorDetails {
    ErrorDetails::with_error_info(reason, ERROR_DOMAIN, metadata)
}

impl From<ApiError> for Status {
    fn from(err: ApiError) -> Self {
        let message = err.to_string();
        match err {
            ApiError::Invalid(violations) => Status::with_error_details(
                Code::InvalidArgument,
                message,
                ErrorDetails::with_bad_request(violations),
            ),
            ApiError::InvalidWithReason {
                field,
                description,
                reason,
            } => {
                let mut d = ErrorDetails::with_bad_request_violation(field, description);
                d.set_error_info(reason, ERROR_DOMAIN, HashMap::new());
                Status::with_error_details(Code::InvalidArgument, message, d)
            }
            ApiError::NotFound(_) => Status::not_found(message),
            ApiError::AlreadyExists(_) => Status::already_exists(message),
            ApiError::FailedPrecondition { reason, .. } => Status::with_error_details(
                Code::FailedPrecondition,
                message,
                info(reason, HashMap::new()),
            ),
            ApiError::EtagMismatch(_) => Status::with_error_details(
                Code::Aborted,
                message,
                info(reason::ETAG_MISMATCH, HashMap::new()),
            ),
            ApiError::Compacted { compact_revision } => Status::with_error_details(
                Code::OutOfRange,
                message,
                info(
                    reason::REVISION_COMPACTED,
                    HashMap::from([(
                        metadata::COMPACT_REVISION.to_string(),
                        compact_revision.to_string(),
                    )]),
                ),
            ),
            ApiError::Exhausted { reason, .. } => Status::with_error_details(
                Code::ResourceExhausted,
                message,
                info(reason, HashMap::new()),
            ),
            ApiError::Unavailable(_) => zgc_server::retry::unavailable(message),
            ApiError::Cancelled => Status::cancelled(message),
            ApiError::Internal(detail) => {
                tracing::error!(%detail, "internal error");
                Status::internal(message)
            }
        }
    }
}
