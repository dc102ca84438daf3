//! The zgc stats service: follows the registry's change stream and answers
//! every statistic from aggregates kept up to date incrementally.
//!
//! [`serve`] runs the server and the follower on a listener until a
//! shutdown future resolves. Modules: [`follower`] (the registry stream),
//! [`state`] (the shared engine, its generation and the revision),
//! [`service`] (thin handlers), [`summaries`] (GetSummary's answers kept
//! encoded), [`web`] (the dashboard and grpc-web), [`metrics`],
//! [`deadline`] and [`error`].

pub mod config;
pub mod deadline;
pub mod error;
pub mod follower;
pub mod metrics;
pub mod service;
pub mod state;
pub mod summaries;
pub mod web;

use std::sync::Arc;
use std::time::Duration;

pub use config::Config;
use futures::Stream;
use tokio::net::TcpListener;
use zgc_proto::stats::v1::stats_service_server::{SERVICE_NAME, StatsServiceServer};
use zgc_server::RevisionLayer;
use zgc_server::encoded::EncodedMethod;
use zgc_server::health::Health;
use zgc_server::shutdown::{Lifecycle, Stop};

/// Why the server could not run.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The gRPC server failed.
    #[error("gRPC server: {0}")]
    Transport(#[from] tonic::transport::Error),
    /// Reflection could not be built.
    #[error("reflection: {0}")]
    Reflection(#[from] zgc_server::reflection::Error),
    /// The server flags could not be applied (TLS files).
    #[error(transparent)]
    Setup(#[from] zgc_server::args::SetupError),
    /// The metrics port could not be bound.
    #[error("metrics endpoint: {0}")]
    Metrics(#[from] std::io::Error),
    /// The dashboard's port could not be bound.
    #[error("dashboard (--http-listen {addr}): {error}")]
    Http {
        addr: std::net::SocketAddr,
        error: std::io::Error,
    },
    /// `--http-allowed-origins` is not a list of origins.
    #[error("--http-allowed-origins: {0}")]
    Origins(String),
}

/// Serves on `listener`, following the registry, until `shutdown`
/// asks it to stop. Health is NOT_SERVING until the first snapshot is loaded and
/// from the moment shutdown begins (see
/// [`zgc_server::shutdown::Lifecycle`] for the steps of a shutdown).
pub async fn serve(
    config: Config,
    listener: TcpListener,
    shutdown: impl Stream<Item = Stop> + Send + 'static,
) -> Result<(), ServeError> {
    let metrics_listener = zgc_server::metrics::bind(&config.server).await?;
    let http_listener = match config.http_listen {
        Some(addr) => Some(
            TcpListener::bind(addr)
                .await
                .map_err(|error| ServeError::Http { addr, error })?,
        ),
        None => None,
    };
    serve_with(
        config,
        Listeners {
            grpc: listener,
            metrics: metrics_listener,
            http: http_listener,
        },
        shutdown,
    )
    .await
}

/// Where a stats server serves: gRPC, and optionally the metrics endpoint
/// and the dashboard.
pub struct Listeners {
    /// The gRPC port.
    pub grpc: TcpListener,
    /// The metrics endpoint (`/metrics`, `/ready`), if any.
    pub metrics: Option<TcpListener>,
    /// The dashboard and grpc-web ([`web`]), if any.
    pub http: Option<TcpListener>,
}

/// [`serve`], on listeners bound by the caller instead of the addresses
/// in `config`.
pub async fn serve_with(
    config: Config,
    listeners: Listeners,
    shutdown: impl Stream<Item = Stop> + Send + 'static,
) -> Result<(), ServeError> {
    let Listeners {
        grpc: listener,
        metrics: metrics_listener,
        http: http_listener,
    } = listeners;
    let origins = web::origins(&config.http_allowed_origins).map_err(ServeError::Origins)?;
    let state = Arc::new(state::State::new());
    let metrics = zgc_server::metrics::Metrics::new();
    let stats_metrics = metrics::register(&metrics, state.clone());
    let (health, health_service) = Health::new(&[SERVICE_NAME]).await;
    let (reflection_v1, reflection_v1alpha) = zgc_server::reflection::services(&[SERVICE_NAME])?;
    let lifecycle = Lifecycle::new();
    let stop = lifecycle.stop_token();

    let mut follower_config = follower::FollowerConfig::new(&config.registry_addr);
    follower_config.stall_timeout = Duration::from_secs(config.stall_secs.max(1));
    follower_config.backoff_max = Duration::from_millis(config.backoff_max_ms.max(10));
    follower_config.tls = config.registry_tls();
    let metrics_server = zgc_server::metrics::spawn(
        metrics_listener,
        metrics.clone(),
        health.clone(),
        stop.clone(),
    );
    let follower = tokio::spawn(follower::run(
        state.clone(),
        follower_config,
        health.clone(),
        stats_metrics.follower,
        stop.clone(),
    ));

    let summaries = Arc::new(summaries::Summaries::new(
        summaries::BUDGET_BYTES,
        stats_metrics.summaries,
    ));
    let handlers = service::Stats::new(state.clone(), summaries, stop.clone());
    let stats = EncodedMethod::new(
        StatsServiceServer::new(handlers.clone())
            .max_decoding_message_size(config.max_message_bytes),
        service::GetSummary::PATH,
        service::GetSummary(handlers),
        config.max_message_bytes,
    );
    let revision_state = state.clone();
    let layer = RevisionLayer::new(Arc::new(move || revision_state.applied()));
    // The dashboard's calls pass the layers the gRPC port's do.
    let dashboard = http_listener.map(|http| {
        let grpc_web = tower::ServiceBuilder::new()
            .layer(tonic_web::GrpcWebLayer::new())
            .layer(zgc_server::observe::ObserveLayer::new(metrics.clone()))
            .layer(config.server.load_shed())
            .layer(zgc_server::deadline::DeadlineLayer)
            .layer(layer.clone())
            .service(stats.clone());
        tokio::spawn(web::serve(
            http,
            web::router(grpc_web, &origins),
            stop.clone(),
        ))
    });

    let on_signal = lifecycle.on_signal(shutdown, health.clone(), config.server.shutdown_delay());
    let server = config
        .server
        .server(metrics)?
        .layer(layer)
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(stats)
        .serve_with_incoming_shutdown(
            zgc_server::incoming::incoming(listener, config.server.tls()?),
            on_signal,
        );
    tracing::info!(registry = %config.registry_addr, "serving; loading the first snapshot");
    let drain = config.drain();
    let result = lifecycle.run(server, drain).await.map_err(ServeError::from);
    stop.cancel();
    if let Some(dashboard) = dashboard {
        // Its streams ended with the stop; a page still reading gets the
        // drain timeout, as gRPC calls do.
        let _ = tokio::time::timeout(drain, dashboard).await;
    }
    let _ = follower.await;
    if let Some(m) = metrics_server {
        let _ = m.await;
    }
    tracing::info!("stopped");
    result
}
