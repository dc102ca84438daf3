//! The names the contract fixes besides its messages: response headers,
//! the `google.rpc.ErrorInfo` domain and its reasons. Clients match on
//! them, so every crate that writes or reads one takes it from here.

/// Response header on every response of both services: the registry
/// revision the answer reflects (a write's own revision for a write).
pub const REVISION_HEADER: &str = "x-zgc-revision";

/// Response header on `WatchChanges`: the identity of the registry's store.
/// A follower that sees it change rebuilds from a fresh snapshot, since
/// revisions of one store mean nothing in another.
pub const STORE_ID_HEADER: &str = "x-zgc-store-id";

/// Request (and response) header naming one call across logs and traces;
/// clients set it, servers make one when it is missing.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// The revision a response's [`REVISION_HEADER`] names, if it carries a
/// valid one.
pub fn revision(metadata: &tonic::metadata::MetadataMap) -> Option<u64> {
    metadata.get(REVISION_HEADER)?.to_str().ok()?.parse().ok()
}

/// The `ErrorInfo` domain of every zgc error.
pub const ERROR_DOMAIN: &str = "zgc.dev";

/// `ErrorInfo` reasons: what a program tells errors of one code apart by.
pub mod reason {
    /// `OUT_OF_RANGE`: `WatchChanges` from a revision older than the
    /// retained history; metadata [`COMPACT_REVISION`](super::metadata::COMPACT_REVISION).
    pub const REVISION_COMPACTED: &str = "REVISION_COMPACTED";
    /// `UNAVAILABLE`: the server is at its limit of calls in flight;
    /// metadata [`LIMIT`](super::metadata::LIMIT).
    pub const OVERLOADED: &str = "OVERLOADED";
    /// `ABORTED`: the request's `etag` is not the resource's.
    pub const ETAG_MISMATCH: &str = "ETAG_MISMATCH";
    /// `FAILED_PRECONDITION`: a reference to a park or company that does
    /// not exist.
    pub const REFERENCE_NOT_FOUND: &str = "REFERENCE_NOT_FOUND";
    /// `FAILED_PRECONDITION`: a delete of something still referenced.
    pub const RESOURCE_IN_USE: &str = "RESOURCE_IN_USE";
    /// `FAILED_PRECONDITION`: an update that would make a resource its own
    /// ancestor.
    pub const PARENT_CYCLE: &str = "PARENT_CYCLE";
    /// `INVALID_ARGUMENT`: a `request_id` reused with a different request.
    pub const REQUEST_ID_REUSED: &str = "REQUEST_ID_REUSED";
    /// `INVALID_ARGUMENT`: a `filter` that does not parse or type-check.
    pub const INVALID_FILTER: &str = "INVALID_FILTER";
    /// `INVALID_ARGUMENT`: a tampered `page_token`, or one reused with
    /// another filter or order.
    pub const INVALID_PAGE_TOKEN: &str = "INVALID_PAGE_TOKEN";
    /// `INVALID_ARGUMENT`: a `page_token` whose revision is no longer in the
    /// retained history.
    pub const PAGE_TOKEN_EXPIRED: &str = "PAGE_TOKEN_EXPIRED";
    /// `RESOURCE_EXHAUSTED`: every `WatchChanges` slot is taken.
    pub const TOO_MANY_WATCHERS: &str = "TOO_MANY_WATCHERS";
}

/// `ErrorInfo` metadata keys.
pub mod metadata {
    /// With `REVISION_COMPACTED`: the oldest revision still retained.
    pub const COMPACT_REVISION: &str = "compact_revision";
    /// With `OVERLOADED`: the server's limit of calls in flight.
    pub const LIMIT: &str = "limit";
}
