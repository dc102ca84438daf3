//! What can go wrong in the store, as types the service maps to gRPC codes.

/// A store failure. Variants name the entry (index in a batch, 0 otherwise)
/// and the field so the service can build exact field paths.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The resource name is taken.
    #[error("{name} already exists")]
    AlreadyExists {
        /// Index of the entry in its batch.
        entry: usize,
        /// The resource name.
        name: String,
    },
    /// No such resource.
    #[error("{name} does not exist")]
    NotFound {
        /// The resource name.
        name: String,
    },
    /// A reference field names a resource that does not exist.
    #[error("{field} names {target}, which does not exist")]
    MissingReference {
        /// Index of the entry in its batch.
        entry: usize,
        /// The referencing field, e.g. `park` or `parent_company`.
        field: &'static str,
        /// The missing resource.
        target: String,
    },
    /// The resource is still referenced, so it cannot be deleted.
    #[error("{name} is still referenced by {by}")]
    InUse {
        /// The resource name.
        name: String,
        /// One resource referring to it.
        by: String,
    },
    /// The change would make a parent chain loop.
    #[error("setting {field} of {name} to {target} would make a cycle")]
    Cycle {
        /// The parent field.
        field: &'static str,
        /// The resource being changed.
        name: String,
        /// The parent it would get.
        target: String,
    },
    /// The resource changed since the revision the caller saw.
    #[error("{name} changed since revision {expected} (now at {current})")]
    RevisionMismatch {
        /// The resource name.
        name: String,
        /// The revision the caller expected.
        expected: u64,
        /// The stored revision.
        current: u64,
    },
    /// The `request_id` was used before with a different request.
    #[error("request_id {request_id} was already used with a different request")]
    RequestIdReused {
        /// The reused request ID.
        request_id: String,
    },
    /// The requested history is no longer kept.
    #[error("revisions up to {compact_revision} have been compacted")]
    Compacted {
        /// Every revision up to and including this one is gone.
        compact_revision: u64,
    },
    /// A record is too large to store.
    #[error("entry {entry} encodes to {bytes} bytes, more than the {limit} allowed")]
    TooLarge {
        /// Index of the entry in its batch.
        entry: usize,
        /// Its size.
        bytes: usize,
        /// The limit.
        limit: usize,
    },
    /// Another process has the data directory open.
    #[error("the data directory {path} is in use by another process")]
    Locked {
        /// The data directory.
        path: String,
    },
    /// The data directory could not be opened (missing permissions, not
    /// a directory, disk full, ...).
    #[error("cannot open the data directory {path}: {source}")]
    Open {
        /// The data directory.
        path: String,
        /// What failed.
        source: Box<StoreError>,
    },
    /// The store's configuration cannot be used.
    #[error("invalid store configuration: {0}")]
    Config(String),
    /// sled failed other than by I/O (e.g. it found its files corrupt).
    #[error("storage error: {0}")]
    Storage(sled::Error),
    /// An I/O error: disk full, file too large, device error.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// Stored bytes do not decode.
    #[error("corrupt store: {0}")]
    Corrupt(String),
    /// Storage failed and the store is reopening; nothing was written.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// The store is shut down.
    #[error("the store is shut down")]
    Closed,
}

impl From<sled::Error> for StoreError {
    fn from(e: sled::Error) -> Self {
        match e {
            // sled prints I/O errors with Debug; keep the plain message.
            sled::Error::Io(io) => Self::Io(io),
            other => Self::Storage(other),
        }
    }
}

impl StoreError {
    /// Whether the storage itself failed, so the open database can no
    /// longer be trusted (sled stops taking writes after an I/O error).
    pub fn is_storage_failure(&self) -> bool {
        matches!(self, Self::Storage(_) | Self::Io(_))
    }
}
