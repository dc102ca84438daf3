//! Helpers for reading errors the way a client program does.

use tonic::Status;
use tonic_types::StatusExt;

/// The `BadRequest` field paths of an error.
pub fn violation_fields(status: &Status) -> Vec<String> {
    status
        .get_details_bad_request()
        .map(|b| b.field_violations.into_iter().map(|v| v.field).collect())
        .unwrap_or_default()
}

/// The `ErrorInfo` reason of an error, if any.
pub fn reason(status: &Status) -> Option<String> {
    status.get_details_error_info().map(|i| i.reason)
}

/// The `ErrorInfo` metadata value of an error.
pub fn info_metadata(status: &Status, key: &str) -> Option<String> {
    status
        .get_details_error_info()
        .and_then(|i| i.metadata.get(key).cloned())
}

/// The `x-zgc-revision` header of a response's metadata.
pub fn revision_header(metadata: &tonic::metadata::MetadataMap) -> Option<u64> {
    metadata.get("x-zgc-revision")?.to_str().ok()?.parse().ok()
}
