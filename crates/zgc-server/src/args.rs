//! The flags every zgc server shares, and the tonic server they configure.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tonic::transport::Server;
use tower_layer::{Identity, Stack};

use crate::deadline::DeadlineLayer;
use crate::gate::GateLayer;
use crate::load_shed::{LoadShed, LoadShedLayer};
use crate::metrics::Metrics;
use crate::observe::ObserveLayer;
use crate::telemetry::LogFormat;

/// Flags every zgc server takes (flattened into each service's own).
#[derive(Debug, Clone, clap::Args)]
pub struct ServerArgs {
    /// Most calls handled at once (health and reflection not counted);
    /// more are answered UNAVAILABLE at once rather than queued. Memory
    /// for requests stays under about this many times the largest message.
    #[arg(long, env = "ZGC_MAX_CONCURRENT_CALLS", default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_concurrent_calls: u32,
    /// Seconds the server keeps accepting and serving calls after SIGTERM,
    /// with health already NOT_SERVING, so that proxies and load balancers
    /// take it out of their rotation before it stops accepting (SIGINT
    /// skips this). Keep it longer than they take to notice: a readiness
    /// probe's period times its failure threshold, plus the time endpoint
    /// changes take to reach every proxy. See deploy/README.md.
    #[arg(long, env = "ZGC_SHUTDOWN_DELAY_SECS", default_value_t = 5)]
    pub shutdown_delay_secs: u64,
    /// Seconds in-flight calls get to finish once the server has stopped
    /// accepting (after the shutdown delay) before they are cut off.
    #[arg(long, env = "ZGC_DRAIN_SECS", default_value_t = 10)]
    pub drain_secs: u64,
    /// Log line format (filter with RUST_LOG).
    #[arg(long, env = "ZGC_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Address to serve Prometheus metrics on (`GET /metrics`); off
    /// unless set.
    #[arg(long, env = "ZGC_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
    /// Seconds between HTTP/2 pings the server sends on each connection
    /// to notice dead peers (0: none). Server pings never trip a client's
    /// or proxy's `too_many_pings` limit.
    #[arg(long, env = "ZGC_KEEPALIVE_SECS", default_value_t = 60)]
    pub keepalive_secs: u64,
    /// Seconds after which a connection is asked to go away (GOAWAY), so
    /// clients reconnect and load spreads over new replicas (0: never).
    /// Calls and streams in flight on it run to their end.
    #[arg(long, env = "ZGC_MAX_CONNECTION_AGE_SECS", default_value_t = 0)]
    pub max_connection_age_secs: u64,
    /// Most calls (HTTP/2 streams) in flight on one connection; a client
    /// holds further calls until one ends. It bounds what one connection
    /// can hold in the server: a client that never opens its receive
    /// window keeps each answered call's response until it does. A low
    /// limit keeps the queue of calls in the clients, or in a mesh's
    /// proxies, which open more connections, instead of inside the server:
    /// the time a call spends in the server falls, the time clients wait
    /// rises, and a single connection's throughput is capped
    /// (BENCHMARKS.md). An open stream such as WatchChanges holds its
    /// place until it ends.
    #[arg(long, env = "ZGC_MAX_CONCURRENT_STREAMS", default_value_t = 1024, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_concurrent_streams: u32,
    /// PEM certificate chain to serve TLS with (needs --tls-key). Without
    /// it the server speaks plaintext HTTP/2 (h2c), as behind a mesh.
    #[arg(long, env = "ZGC_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, env = "ZGC_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// PEM CA certificates: clients must present a certificate one of them
    /// signed (mutual TLS). Needs --tls-cert.
    #[arg(long, env = "ZGC_TLS_CLIENT_CA", requires = "tls_cert")]
    pub tls_client_ca: Option<PathBuf>,
}

/// Why a server could not be set up from its flags.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// The TLS material was refused.
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsSetupError),
}

/// The flags' defaults, as a server started with no flags and no
/// environment has them: read from their clap definitions, the one place
/// each default is written.
impl Default for ServerArgs {
    fn default() -> Self {
        #[derive(clap::Parser)]
        struct Only {
            #[command(flatten)]
            args: ServerArgs,
        }
        defaults::<Only>().args
    }
}

/// A command's flags at their defaults: parsed from no arguments with
/// every environment-variable fallback switched off, so what the
/// environment of this process says does not leak in. Services derive
/// their in-process configurations (`zgc up`, tests) from this, so they
/// can never drift from the binaries'.
///
/// Panics if a default of `P` itself fails its own parser: a bug in the
/// flag definitions, not input (each service's tests parse its defaults).
pub fn defaults<P: clap::Parser>() -> P {
    let command = P::command().mut_args(|arg| arg.env(None::<&str>));
    #[allow(clippy::expect_used)] // only our own definitions are parsed
    let matches = command
        .try_get_matches_from([P::command().get_name().to_string()])
        .expect("every flag's default parses");
    #[allow(clippy::expect_used)]
    P::from_arg_matches(&matches).expect("every flag's default parses")
}

/// The tonic server with the layers every zgc server runs behind, from
/// the outside in: observation (request ID, span, log, metrics), load
/// shedding, deadlines.
pub type Builder =
    Server<Stack<DeadlineLayer, Stack<LoadShedLayer, Stack<ObserveLayer, Identity>>>>;

impl ServerArgs {
    /// The drain timeout.
    pub fn drain(&self) -> Duration {
        Duration::from_secs(self.drain_secs)
    }

    /// How long a graceful stop keeps serving before it stops accepting.
    pub fn shutdown_delay(&self) -> Duration {
        Duration::from_secs(self.shutdown_delay_secs)
    }

    /// The load-shedding layer these flags ask for.
    pub fn load_shed(&self) -> LoadShedLayer {
        GateLayer(LoadShed::new(
            usize::try_from(self.max_concurrent_calls).unwrap_or(usize::MAX),
        ))
    }

    /// The TLS configuration these flags ask for, if any, for
    /// [`crate::incoming::incoming`].
    pub fn tls(&self) -> Result<Option<Arc<tokio_rustls::rustls::ServerConfig>>, SetupError> {
        let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) else {
            return Ok(None);
        };
        Ok(Some(crate::tls::server_config(
            cert,
            key,
            self.tls_client_ca.as_deref(),
        )?))
    }

    /// A tonic server configured by these flags, recording into `metrics`.
    pub fn server(&self, metrics: Arc<Metrics>) -> Result<Builder, SetupError> {
        let mut server =
            Server::builder().max_concurrent_streams(Some(self.max_concurrent_streams));
        if self.keepalive_secs > 0 {
            server = server
                .http2_keepalive_interval(Some(Duration::from_secs(self.keepalive_secs)))
                .http2_keepalive_timeout(Some(Duration::from_secs(20)));
        }
        if self.max_connection_age_secs > 0 {
            // No `max_connection_age_grace`: with it, tonic 0.14 skips the
            // GOAWAY and cuts the connection at age + grace, failing the
            // calls on it. Without it the server sends GOAWAY at the age,
            // new calls go to a new connection, and the old one closes
            // when its last call (or stream) ends.
            server = server.max_connection_age(Duration::from_secs(self.max_connection_age_secs));
        }
        Ok(server
            .layer(ObserveLayer::new(metrics))
            .layer(self.load_shed())
            .layer(DeadlineLayer))
    }
}
