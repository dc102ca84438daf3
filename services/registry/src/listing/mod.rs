//! `ListParks` and `ListCompanies`: filter, order, keyset paging with
//! signed tokens, exact totals.
//!
//! Every page of one listing shows the state as of the same revision: the
//! first page's, carried in the signed token. A page holds the
//! `page_size` smallest matches (in the requested order) strictly after
//! the token's sort key, so paging never returns an item twice and never
//! skips one that existed for the whole paging, even while items change.
//!
//! Pages come from the store's listing indexes (`zgc-index`), which count
//! the matches and find the page without reading the records around it,
//! as of any revision the change log reaches. While they are loading (or
//! off), a page is read as before: from the live state when nothing has
//! been applied since the listing's revision, else from a store snapshot
//! as of that revision; both scan. With the default order the scan
//! starts at the token and stops once the page is full when no filter
//! needs the rest counted; otherwise one pass over the candidates counts
//! the matches and keeps the page in a bounded heap. Candidates come from
//! a reference index when the filter pins `park`, `parent_company` or
//! `parent_park`.
//!
//! - [`records`]: which store snapshots hold a park or a company (their
//!   filterable records are `zgc_index::records`);
//! - [`paging`]: the request, the token and one page's assembly (pure);
//! - [`source`]: where the page comes from (the indexes, the live store
//!   or a snapshot);
//! - [`scans`]: how many pages are read at once.

pub mod paging;
pub mod records;
pub mod scans;
pub mod source;

pub use paging::{Page, Query};
pub use records::{CompanyRecord, Listable, ParkRecord};
pub use scans::{Abandoned, ScanLimit};
pub use source::{Stored, encoded_company_page, page};
