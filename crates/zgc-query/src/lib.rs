//! Pure list-query logic shared by every `List*` RPC: AIP-160 filters
//! ([`filter`]), AIP-132 ordering ([`order`]) and tamper-proof page tokens
//! ([`page_token`]).
//!
//! Nothing here does I/O. A resource type describes itself once with a
//! [`Schema`] (which fields can be filtered and ordered, and of what type) and
//! exposes its values through [`Record`]; everything else is generic.

pub mod filter;
pub mod order;
pub mod page_token;
mod schema;

pub use filter::{Filter, FilterError};
pub use order::{OrderBy, OrderError, SortKey, SortValue};
pub use page_token::{PageToken, PageTokenError, PageTokenKey};
pub use schema::{FieldType, Record, Schema, Value};
