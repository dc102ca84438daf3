//! Why a query could not be answered, or an event not applied.

/// A rejected query.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    /// An invalid request field.
    #[error("{field}: {description}")]
    Invalid {
        /// The field path in the request.
        field: String,
        /// What is wrong with it.
        description: String,
    },
    /// The scope names a park that does not exist.
    #[error("{0} not found")]
    NotFound(String),
}

impl QueryError {
    pub(crate) fn invalid(field: impl Into<String>, description: impl Into<String>) -> Self {
        Self::Invalid {
            field: field.into(),
            description: description.into(),
        }
    }
}

/// A change event the engine cannot apply without drifting from the
/// registry: the aggregates no longer match it, and only a rebuild from a
/// snapshot can tell what they should be. A refused event changes no figure
/// (the names it carries may be remembered, as any event's are).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApplyError {
    /// An update or delete of a company the engine holds came without the
    /// company as it was, so its old contribution cannot be taken out.
    #[error("{0} changed without its `before` image")]
    MissingBefore(String),
    /// The `before` image does not place the company where the engine
    /// counted it: an event was missed or applied twice.
    #[error("{0}: the change's `before` image is not the company as counted")]
    Diverged(String),
    /// An update or delete (a change with a `before` image) of a company
    /// the engine does not hold: its creation was missed.
    #[error("{0} changed, but it was never counted")]
    Unknown(String),
}
