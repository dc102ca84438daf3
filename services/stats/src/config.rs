//! Command-line flags, each with an environment-variable fallback.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use zgc_server::ServerArgs;

use crate::follower;

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
    #[arg(long, env = "ZGC_STATS_STALL_SECS", default_value_t = follower::DEFAULT_STALL_SECS)]
    pub stall_secs: u64,
    /// Longest pause between reconnect attempts, in milliseconds.
    #[arg(long, env = "ZGC_STATS_BACKOFF_MAX_MS", default_value_t = follower::DEFAULT_BACKOFF_MAX_MS)]
    pub backoff_max_ms: u64,
    /// Largest request message accepted, in bytes.
    #[arg(long, env = "ZGC_MAX_MESSAGE_BYTES", default_value_t = 1024 * 1024)]
    pub max_message_bytes: usize,
    /// PEM CA certificates to trust for the registry (TLS is used with
    /// them, or with an `https://` --registry-addr).
    #[arg(long, env = "ZGC_REGISTRY_TLS_CA")]
    pub registry_tls_ca: Option<PathBuf>,
    /// PEM client certificate to present to the registry (mutual TLS).
    #[arg(long, env = "ZGC_REGISTRY_TLS_CERT", requires = "registry_tls_key")]
    pub registry_tls_cert: Option<PathBuf>,
    /// PEM private key of --registry-tls-cert.
    #[arg(long, env = "ZGC_REGISTRY_TLS_KEY", requires = "registry_tls_cert")]
    pub registry_tls_key: Option<PathBuf>,
    /// The name to check the registry's certificate against, when it
    /// differs from the address's host.
    #[arg(long, env = "ZGC_REGISTRY_TLS_SERVER_NAME")]
    pub registry_tls_server_name: Option<String>,
    /// Address to serve the dashboard on: a web page, and the stats
    /// service over grpc-web for it (HTTP/1.1, its own port: see
    /// `web.rs`). Off unless set.
    #[arg(long, env = "ZGC_STATS_HTTP_LISTEN")]
    pub http_listen: Option<SocketAddr>,
    /// Origins of pages served elsewhere that may call the service over
    /// grpc-web (CORS), comma-separated, such as
    /// `https://parks.example.org`; `*` for any (the default: the figures
    /// are public and calls carry no credentials).
    #[arg(
        long,
        env = "ZGC_STATS_HTTP_ALLOWED_ORIGINS",
        value_delimiter = ',',
        default_value = "*"
    )]
    pub http_allowed_origins: Vec<String>,
    /// Flags every zgc server takes.
    #[command(flatten)]
    pub server: ServerArgs,
}

impl Config {
    /// Every flag at its default, as `zgc-stats` with no flags and no
    /// environment starts.
    pub fn defaults() -> Self {
        zgc_server::args::defaults()
    }

    /// Every default, following `registry_addr`, on any free loopback port
    /// when used with [`crate::serve`].
    pub fn for_registry(registry_addr: impl Into<String>) -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            registry_addr: registry_addr.into(),
            ..Self::defaults()
        }
    }

    /// The drain timeout.
    pub fn drain(&self) -> Duration {
        self.server.drain()
    }
}

impl Config {
    /// TLS to the registry, from the flags.
    pub fn registry_tls(&self) -> zgc_client::ClientTls {
        zgc_client::ClientTls {
            ca: self.registry_tls_ca.clone(),
            cert: self.registry_tls_cert.clone(),
            key: self.registry_tls_key.clone(),
            server_name: self.registry_tls_server_name.clone(),
        }
    }
}
