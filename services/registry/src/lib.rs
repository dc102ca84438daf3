//! The zgc registry service: parks and companies stored in sled, served
//! over gRPC with a change stream.
//!
//! [`serve`] runs the whole server on a listener until a shutdown future
//! resolves; `main.rs` only parses flags and wires signals to it. Modules:
//! [`service`] (thin handlers), [`validate`] and [`mask`] (pure request
//! logic), [`listing`] (`List*`: records, paging, where pages come from,
//! how many are read at once), [`watch`] (the change stream), [`auth`]
//! (write tokens), [`metrics`], [`error`] (typed errors, mapped once to
//! `tonic::Status`).

pub mod auth;
pub mod config;
pub mod error;
pub mod listing;
pub mod mask;
pub mod metrics;
pub mod service;
pub mod validate;
pub mod watch;

use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::Duration;

pub use config::Config;
use futures::Stream;
use tokio::net::TcpListener;
use zgc_proto::registry::v1::registry_service_server::{RegistryServiceServer, SERVICE_NAME};
use zgc_server::RevisionLayer;
use zgc_server::encoded::EncodedMethod;
use zgc_server::health::Health;
use zgc_server::shutdown::{Lifecycle, Stop};

use tokio_util::sync::CancellationToken;

use zgc_store::{EtcdConfig, Store, StoreConfig, StoreStatus};

impl ServeError {
    /// Whether another store holds the data directory.
    pub fn is_locked(&self) -> bool {
        matches!(
            self,
            ServeError::Store(zgc_store::StoreError::Locked { .. })
        )
    }
}

/// Why the server could not run.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The store could not be opened or closed.
    #[error(transparent)]
    Store(#[from] zgc_store::StoreError),
    /// The gRPC server failed.
    #[error("gRPC server: {0}")]
    Transport(#[from] tonic::transport::Error),
    /// Reflection could not be built.
    #[error("reflection: {0}")]
    Reflection(#[from] zgc_server::reflection::Error),
    /// The token file is unusable.
    #[error(transparent)]
    Tokens(#[from] auth::TokenFileError),
    /// The server flags could not be applied (TLS files).
    #[error(transparent)]
    Setup(#[from] zgc_server::args::SetupError),
    /// The etcd flags cannot be used (an unreadable password file).
    #[error("etcd: {0}")]
    Etcd(String),
    /// The metrics port could not be bound.
    #[error("metrics endpoint: {0}")]
    Metrics(#[from] std::io::Error),
}

/// Opens the store and serves on `listener` until `shutdown` asks it to stop.
///
/// Shutdown ([`zgc_server::shutdown::Lifecycle`]): health turns
/// NOT_SERVING, the server keeps serving for the shutdown delay if the stop
/// is [`Stop::Graceful`], then watch streams end with UNAVAILABLE, the
/// server stops accepting and drains in-flight calls for up to
/// `config.drain_secs`, and the store is flushed and closed.
pub async fn serve(
    config: Config,
    listener: TcpListener,
    shutdown: impl Stream<Item = Stop> + Send + 'static,
) -> Result<(), ServeError> {
    let metrics_listener = zgc_server::metrics::bind(&config.server).await?;
    serve_with(config, listener, metrics_listener, shutdown).await
}

/// [`serve`], with the metrics endpoint (if any) on a listener bound by
/// the caller instead of `--metrics-listen`.
pub async fn serve_with(
    config: Config,
    listener: TcpListener,
    metrics_listener: Option<TcpListener>,
    shutdown: impl Stream<Item = Stop> + Send + 'static,
) -> Result<(), ServeError> {
    let tokens = config
        .auth_token_file
        .as_deref()
        .map(auth::Tokens::from_file)
        .transpose()?;
    let mut store_config = StoreConfig::new(&config.data_dir);
    store_config.durability = config.durability.into();
    store_config.retention = config.retention;
    store_config.cache_capacity = config.cache_mb.saturating_mul(1024 * 1024);
    store_config.companies_in_memory = config.companies_in_memory;
    store_config.listing_indexes = config.listing_indexes;
    store_config.compression = config.store_compression;
    let metrics = zgc_server::metrics::Metrics::new();
    store_config.on_commit = Some(metrics::commit_hook(&metrics));
    let store = if config.etcd.enabled() {
        // The replica's scratch store goes in the system's temporary
        // directory: etcd keeps the data.
        store_config.path = std::env::temp_dir();
        let store = Store::open_etcd(EtcdConfig {
            client: config.etcd.client().map_err(ServeError::Etcd)?,
            prefix: config.etcd.prefix.clone(),
            local: store_config,
        })
        .await?;
        tracing::info!(
            endpoints = ?config.etcd.endpoints,
            prefix = %config.etcd.prefix,
            store_id = store.store_id(),
            revision = store.revision(),
            "store open on etcd"
        );
        store
    } else {
        let store = Store::open(store_config)?;
        tracing::info!(
            data_dir = %config.data_dir.display(),
            store_id = store.store_id(),
            revision = store.revision(),
            durability = ?config.durability,
            compressed = store.compressed(),
            "store open"
        );
        store
    };

    let (health, health_service) = Health::new(&[SERVICE_NAME]).await;
    let (reflection_v1, reflection_v1alpha) = zgc_server::reflection::services(&[SERVICE_NAME])?;
    let lifecycle = Lifecycle::new();
    let stop = lifecycle.stop_token();
    let watch = watch::WatchConfig {
        progress_interval: Duration::from_secs(config.watch_progress_secs.max(1)),
        max_watchers: usize::try_from(config.max_watchers).unwrap_or(usize::MAX),
        ..Default::default()
    };
    let max_watchers = watch.max_watchers;
    let scans = config
        .max_concurrent_scans
        .and_then(|n| NonZeroUsize::new(usize::try_from(n).unwrap_or(usize::MAX)))
        .map_or_else(listing::ScanLimit::per_cpu, listing::ScanLimit::new);
    tracing::info!(max_concurrent_scans = scans.limit(), "scan limit");
    let registry = service::Registry::new(store.clone(), watch, scans.clone(), stop.clone());
    metrics::register_gauges(
        &metrics,
        store.clone(),
        registry.watchers(),
        max_watchers,
        scans,
    );
    let metrics_server = zgc_server::metrics::spawn(
        metrics_listener,
        metrics.clone(),
        health.clone(),
        stop.clone(),
    );
    let registry = EncodedMethod::new(
        EncodedMethod::new(
            RegistryServiceServer::new(registry.clone())
                .max_decoding_message_size(config.max_message_bytes)
                .max_encoding_message_size(usize::MAX),
            service::GetCompany::PATH,
            service::GetCompany(registry.clone()),
            config.max_message_bytes,
        ),
        service::ListCompanies::PATH,
        service::ListCompanies(registry),
        config.max_message_bytes,
    );

    let revision_store = store.clone();
    let layer = RevisionLayer::new(Arc::new(move || revision_store.revision()));

    let on_signal = lifecycle.on_signal(shutdown, health.clone(), config.server.shutdown_delay());
    let server = config
        .server
        .server(metrics)?
        .layer(layer)
        .layer(zgc_server::gate::GateLayer(auth::WriteAuth(tokens)))
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(registry)
        .serve_with_incoming_shutdown(
            zgc_server::incoming::incoming(listener, config.server.tls()?),
            on_signal,
        );

    health.serving().await;
    tokio::spawn(follow_store_status(
        store.status(),
        health.clone(),
        stop.clone(),
    ));
    tracing::info!("serving");
    let drain = config.drain();
    let result = lifecycle.run(server, drain).await.map_err(ServeError::from);
    if let Some(m) = metrics_server {
        let _ = m.await;
    }
    store.close().await?;
    if !store.wait_until_last(drain).await {
        tracing::warn!(
            "store handles outlived the drain; the data directory stays locked until they end"
        );
    }
    drop(store);
    tracing::info!("stopped");
    result
}

/// Health follows the store: NOT_SERVING while it reopens after a storage
/// failure (disk full, I/O error), SERVING again once it is back, until
/// shutdown begins.
async fn follow_store_status(
    mut status: tokio::sync::watch::Receiver<StoreStatus>,
    health: Health,
    stop: CancellationToken,
) {
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            changed = status.changed() => if changed.is_err() { return },
        }
        let now = status.borrow_and_update().clone();
        if stop.is_cancelled() {
            return;
        }
        match now {
            StoreStatus::Ready => {
                tracing::info!("store ready again: serving");
                health.serving().await;
            }
            StoreStatus::Recovering(why) => {
                tracing::error!(%why, "store failed: not serving until it reopens");
                health.not_serving().await;
            }
        }
    }
}
