//! Why a query could not be answered.

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
