//! What every zgc gRPC server shares: logging setup, the health and
//! reflection services, the `x-zgc-revision` response header, shutdown
//! signals, and the common server flags.
//!
//! Nothing here knows about parks, companies or storage.

pub mod health;
pub mod incoming;
pub mod reflection;
pub mod revision_header;
pub mod shutdown;
pub mod telemetry;

pub use revision_header::{REVISION_HEADER, RevisionLayer};
