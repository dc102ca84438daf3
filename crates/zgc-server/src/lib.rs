//! What every zgc gRPC server shares: logging setup, the health and
//! reflection services, the `x-zgc-revision` response header, shutdown
//! signals, load shedding, and the common server flags.
//!
//! Nothing here knows about parks, companies or storage.

pub mod args;
pub mod b3;
pub mod deadline;
pub mod encoded;
pub mod flood;
pub mod gate;
pub mod health;
pub mod incoming;
pub mod load_shed;
pub mod metrics;
pub mod observe;
pub mod reflection;
pub mod retry;
pub mod revision_header;
pub mod shutdown;
pub mod telemetry;
pub mod tls;

pub use args::ServerArgs;
pub use load_shed::LoadShedLayer;
pub use revision_header::RevisionLayer;
