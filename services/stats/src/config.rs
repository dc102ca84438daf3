//! Command-line flags, each with an environment-variable fallback.

use std::net::SocketAddr;
use std::time::Duration;

use zgc_server::ServerArgs;

/// The stats service's configuration.
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "zgc-stats",
    version,
    about = "The zgc stats service: figures about parks and companies, kept up to date from the registry's change stream."
)]
pub struct Config {
    /// Address to serve gRPC on.
    #[arg(long, env = "ZGC_STATS_LISTEN", default_value = "127.0.0.1:50052")]
    pub listen: SocketAddr,
    /// The registry to follow.
    #[arg(
        long,
        env = "ZGC_REGISTRY_ADDR",
        default_value = "http://127.0.0.1:50051"
    )]
    pub registry_addr: String,
    /// Seconds of silence after which the registry stream is considered
    /// dead and reconnected (the registry sends progress marks every few
    /// seconds).
    #[arg(long, env = "ZGC_STATS_STALL_SECS", default_value_t = 30)]
    pub stall_secs: u64,
    /// Longest pause between reconnect attempts, in milliseconds.
    #[arg(long, env = "ZGC_STATS_BACKOFF_MAX_MS", default_value_t = 5000)]
    pub backoff_max_ms: u64,
    /// Largest request message accepted, in bytes.
    #[arg(long, env = "ZGC_MAX_MESSAGE_BYTES", default_value_t = 1024 * 1024)]
    pub max_message_bytes: usize,
    /// Flags every zgc server takes.
    #[command(flatten)]
    pub server: ServerArgs,
}

impl Config {
    /// Every default, following `registry_addr`, on any free loopback port
    /// when used with [`crate::serve`].
    pub fn for_registry(registry_addr: impl Into<String>) -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            registry_addr: registry_addr.into(),
            stall_secs: 30,
            backoff_max_ms: 5000,
            max_message_bytes: 1024 * 1024,
            server: ServerArgs::default(),
        }
    }

    /// The drain timeout.
    pub fn drain(&self) -> Duration {
        self.server.drain()
    }
}
