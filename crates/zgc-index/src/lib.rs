//! Listings answered from in-memory indexes, in time that grows with the
//! answer rather than with the records held.
//!
//! - [`records`]: parks and companies as the filter language sees them
//!   (fields, types, values, sort keys), and which filter fields an
//!   ordering index answers.
//! - [`Index`]: one resource type's records, each in a *slot*: its name
//!   and sort values in columns, an ordering index per order field and by
//!   name, and posting lists (compressed bitmaps of slots) for every other
//!   filter field, the elements of repeated fields and the keys and
//!   values of maps included.
//! - [`Listing`] and [`Index::list`]: the planner, which answers a filter,
//!   an order and a page position with the page's names and the exact
//!   number of matches (`plan.rs` says how).
//!
//! Nothing here does I/O or knows about storage or revisions beyond a
//! number its keeper sets: the store keeps an index in step with what it
//! commits, and the registry reads pages from it.

mod column;
mod index;
mod ordered;
mod plan;
pub mod records;
mod terms;

pub use index::Index;
pub use plan::{Listed, Listing};
