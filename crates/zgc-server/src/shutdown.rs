//! Shutdown signals.

/// Resolves on SIGTERM or SIGINT (Ctrl-C).
pub async fn signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) {
            (Ok(mut term), Ok(mut int)) => {
                tokio::select! {
                    _ = term.recv() => tracing::info!("SIGTERM received: shutting down"),
                    _ = int.recv() => tracing::info!("SIGINT received: shutting down"),
                }
            }
            _ => {
                tracing::warn!("cannot install signal handlers; waiting for Ctrl-C only");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Keeps SIGXFSZ from killing the process: a write beyond the file-size
/// limit (`ulimit -f`, RLIMIT_FSIZE) then fails with an I/O error the
/// store reports and recovers from, like a full disk. Call once, inside
/// the runtime.
pub fn survive_file_size_limit() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::from_raw(libc::SIGXFSZ)) {
            Ok(mut xfsz) => {
                tokio::spawn(async move {
                    while xfsz.recv().await.is_some() {
                        tracing::warn!("a write went beyond the file-size limit (SIGXFSZ)");
                    }
                });
            }
            Err(e) => tracing::warn!(error = %e, "cannot handle SIGXFSZ"),
        }
    }
}

/// The shutdown choreography every zgc server follows: when the external
/// signal fires, health turns NOT_SERVING, long-lived streams are told to
/// end ([`Lifecycle::stop_token`]), the server stops accepting and drains
/// in-flight calls, for at most the drain timeout.
#[derive(Clone, Default)]
pub struct Lifecycle {
    stop: tokio_util::sync::CancellationToken,
}

impl Lifecycle {
    /// A lifecycle whose shutdown has not begun.
    pub fn new() -> Self {
        Self::default()
    }

    /// Cancelled the moment shutdown begins; streams select on it.
    pub fn stop_token(&self) -> tokio_util::sync::CancellationToken {
        self.stop.clone()
    }

    /// The future to give tonic's `serve_with_incoming_shutdown`: it
    /// resolves once `external` has and health reports NOT_SERVING.
    pub fn on_signal(
        &self,
        external: impl std::future::Future<Output = ()> + Send + 'static,
        health: crate::health::Health,
    ) -> impl std::future::Future<Output = ()> + Send + 'static {
        let stop = self.stop.clone();
        async move {
            external.await;
            health.not_serving().await;
            stop.cancel();
        }
    }

    /// Runs `server` until it finishes, or until `drain` has passed since
    /// shutdown began (in-flight calls are then cut off).
    pub async fn run<E>(
        &self,
        server: impl std::future::Future<Output = Result<(), E>>,
        drain: std::time::Duration,
    ) -> Result<(), E> {
        let stop = self.stop.clone();
        tokio::select! {
            r = server => r,
            _ = async { stop.cancelled().await; tokio::time::sleep(drain).await } => {
                tracing::warn!(?drain, "in-flight calls did not finish in time; stopping anyway");
                Ok(())
            }
        }
    }
}

/// What a server binary's `main` does: bind, log where, serve until SIGTERM
/// or SIGINT, and turn the outcome into an exit code.
pub async fn run_main<Fut, E>(
    name: &str,
    listen: std::net::SocketAddr,
    serve: impl FnOnce(tokio::net::TcpListener) -> Fut,
) -> std::process::ExitCode
where
    Fut: std::future::Future<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    let listener = match tokio::net::TcpListener::bind(listen).await {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(%listen, error = %e, "cannot listen");
            eprintln!("{name}: cannot listen on {listen}: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match listener.local_addr() {
        Ok(addr) => tracing::info!(%addr, "listening"),
        Err(e) => tracing::warn!(error = %e, "listening on an unknown address"),
    }
    match serve(listener).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "{name} failed");
            eprintln!("{name}: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
