//! Shutdown: the stop requests (signals) and the steps every server
//! takes when one comes.

use futures::{Stream, StreamExt};

/// How a server is asked to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// As an orchestrator asks (SIGTERM): report NOT_SERVING, keep
    /// serving for the shutdown delay so that proxies and load balancers
    /// take this replica out of their rotation, then stop accepting and
    /// drain. Kubernetes removes a terminating pod's endpoints while it
    /// sends SIGTERM, not before, so calls keep arriving for a moment.
    Graceful,
    /// As a person asks (SIGINT, Ctrl-C), or an embedding program: report
    /// NOT_SERVING, stop accepting and drain at once.
    Now,
}

/// The process's stop requests: one [`Stop::Graceful`] per SIGTERM and
/// one [`Stop::Now`] per SIGINT. The handlers are installed when this is
/// called, so a signal that arrives before the stream is first polled is
/// kept, not fatal.
pub fn signals() -> futures::stream::BoxStream<'static, Stop> {
    use futures::StreamExt;
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) {
            (Ok(term), Ok(int)) => {
                return futures::stream::unfold((term, int), |(mut term, mut int)| async move {
                    let stop = tokio::select! {
                        Some(()) = term.recv() => {
                            tracing::info!("SIGTERM received: shutting down");
                            Stop::Graceful
                        }
                        Some(()) = int.recv() => {
                            tracing::info!("SIGINT received: shutting down now");
                            Stop::Now
                        }
                        else => return None,
                    };
                    Some((stop, (term, int)))
                })
                .boxed();
            }
            _ => tracing::warn!("cannot install signal handlers; waiting for Ctrl-C only"),
        }
    }
    futures::stream::unfold((), |()| async {
        tokio::signal::ctrl_c().await.ok()?;
        Some((Stop::Now, ()))
    })
    .boxed()
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
/// signal fires, health turns NOT_SERVING; after a [`Stop::Graceful`]
/// signal the server keeps accepting and serving for the shutdown delay;
/// then long-lived streams are told to end ([`Lifecycle::stop_token`];
/// they end with UNAVAILABLE, which their clients resume from), the server
/// stops accepting (GOAWAY on every connection) and drains in-flight
/// calls, for at most the drain timeout.
#[derive(Clone, Default)]
pub struct Lifecycle {
    stop: tokio_util::sync::CancellationToken,
}

impl Lifecycle {
    /// A lifecycle whose shutdown has not begun.
    pub fn new() -> Self {
        Self::default()
    }

    /// Cancelled when the server stops accepting; streams select on it.
    pub fn stop_token(&self) -> tokio_util::sync::CancellationToken {
        self.stop.clone()
    }

    /// The future to give tonic's `serve_with_incoming_shutdown`: it
    /// resolves once `requests` has asked to stop, health reports
    /// NOT_SERVING and, when the request was [`Stop::Graceful`], `delay`
    /// has passed since or a [`Stop::Now`] has followed. A `requests` that
    /// ends without an item never stops the server.
    pub fn on_signal(
        &self,
        requests: impl Stream<Item = Stop> + Send + 'static,
        health: crate::health::Health,
        delay: std::time::Duration,
    ) -> impl std::future::Future<Output = ()> + Send + 'static {
        let stop = self.stop.clone();
        async move {
            let mut requests = std::pin::pin!(requests);
            let Some(how) = requests.next().await else {
                return std::future::pending().await;
            };
            health.not_serving().await;
            if how == Stop::Graceful && !delay.is_zero() {
                tracing::info!(
                    ?delay,
                    "NOT_SERVING; still serving while proxies take this replica out \
                     (SIGINT stops at once)"
                );
                let hurried = async {
                    while let Some(request) = requests.next().await {
                        if request == Stop::Now {
                            return;
                        }
                    }
                    std::future::pending().await
                };
                tokio::select! {
                    () = tokio::time::sleep(delay) => {}
                    () = hurried => tracing::info!("stopping before the shutdown delay has passed"),
                }
            }
            tracing::info!("no longer accepting calls; draining");
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
/// or SIGINT (see [`signals`]), and turn the outcome into an exit code.
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

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tokio::sync::mpsc;
    use tokio::time::Instant;
    use tokio_stream::wrappers::UnboundedReceiverStream;

    const DELAY: Duration = Duration::from_secs(5);

    /// A lifecycle's shutdown future driven by a channel of stop
    /// requests, with health SERVING beforehand.
    async fn started() -> (
        Lifecycle,
        crate::health::Health,
        mpsc::UnboundedSender<Stop>,
        tokio::task::JoinHandle<Instant>,
    ) {
        let lifecycle = Lifecycle::new();
        let (health, _server) = crate::health::Health::new(&["test.Service"]).await;
        health.serving().await;
        let (tx, rx) = mpsc::unbounded_channel();
        let shutdown = lifecycle.on_signal(UnboundedReceiverStream::new(rx), health.clone(), DELAY);
        let task = tokio::spawn(async move {
            shutdown.await;
            Instant::now()
        });
        (lifecycle, health, tx, task)
    }

    #[tokio::test(start_paused = true)]
    async fn a_graceful_stop_goes_not_serving_at_once_and_stops_accepting_after_the_delay() {
        let (lifecycle, health, tx, task) = started().await;
        let asked = Instant::now();
        tx.send(Stop::Graceful).unwrap();
        // Not serving as soon as the request is seen, streams still open.
        while health.is_serving() {
            tokio::task::yield_now().await;
        }
        assert!(!lifecycle.stop_token().is_cancelled());
        let stopped = task.await.unwrap();
        assert!(
            stopped - asked >= DELAY,
            "stopped after {:?}",
            stopped - asked
        );
        assert!(lifecycle.stop_token().is_cancelled());
    }

    #[tokio::test(start_paused = true)]
    async fn a_stop_now_skips_the_delay() {
        let (lifecycle, health, tx, task) = started().await;
        let asked = Instant::now();
        tx.send(Stop::Now).unwrap();
        let stopped = task.await.unwrap();
        assert!(stopped - asked < DELAY);
        assert!(!health.is_serving());
        assert!(lifecycle.stop_token().is_cancelled());
    }

    #[tokio::test(start_paused = true)]
    async fn a_stop_now_during_the_delay_ends_it() {
        let (_lifecycle, health, tx, task) = started().await;
        let asked = Instant::now();
        tx.send(Stop::Graceful).unwrap();
        while health.is_serving() {
            tokio::task::yield_now().await;
        }
        // A second SIGTERM changes nothing; a SIGINT stops at once.
        tx.send(Stop::Graceful).unwrap();
        tx.send(Stop::Now).unwrap();
        let stopped = task.await.unwrap();
        assert!(stopped - asked < DELAY);
    }

    #[tokio::test(start_paused = true)]
    async fn requests_that_end_without_a_stop_never_stop_the_server() {
        let (lifecycle, health, tx, task) = started().await;
        drop(tx);
        tokio::time::sleep(DELAY * 10).await;
        assert!(!task.is_finished());
        assert!(health.is_serving());
        assert!(!lifecycle.stop_token().is_cancelled());
    }
}
