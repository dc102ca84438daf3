//! The flags every zgc server shares, and the tonic server they configure.

use std::time::Duration;

use tonic::transport::Server;
use tower_layer::{Identity, Stack};

use crate::load_shed::LoadShedLayer;
use crate::telemetry::LogFormat;

/// Flags every zgc server takes (flattened into each service's own).
#[derive(Debug, Clone, clap::Args)]
pub struct ServerArgs {
    /// Most calls handled at once (health and reflection not counted);
    /// more are answered UNAVAILABLE at once rather than queued. Memory
    /// for requests stays under about this many times the largest message.
    #[arg(long, env = "ZGC_MAX_CONCURRENT_CALLS", default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_concurrent_calls: u32,
    /// Seconds in-flight calls get to finish after SIGTERM before they are
    /// cut off.
    #[arg(long, env = "ZGC_DRAIN_SECS", default_value_t = 10)]
    pub drain_secs: u64,
    /// Log line format (filter with RUST_LOG).
    #[arg(long, env = "ZGC_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

impl Default for ServerArgs {
    fn default() -> Self {
        Self {
            max_concurrent_calls: 256,
            drain_secs: 10,
            log_format: LogFormat::Text,
        }
    }
}

/// The tonic server with the layers every zgc server runs behind.
pub type Builder = Server<Stack<LoadShedLayer, Identity>>;

impl ServerArgs {
    /// The drain timeout.
    pub fn drain(&self) -> Duration {
        Duration::from_secs(self.drain_secs)
    }

    /// The load-shedding layer these flags ask for.
    pub fn load_shed(&self) -> LoadShedLayer {
        LoadShedLayer::new(usize::try_from(self.max_concurrent_calls).unwrap_or(usize::MAX))
    }

    /// A tonic server configured by these flags, shedding load with
    /// `shed` (see [`ServerArgs::load_shed`]).
    pub fn server(&self, shed: LoadShedLayer) -> Builder {
        Server::builder().layer(shed)
    }
}
