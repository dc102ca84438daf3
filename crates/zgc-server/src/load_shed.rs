//! Load shedding: at most N calls in flight per server; the next one is
//! answered at once with `UNAVAILABLE` instead of queueing.
//!
//! A permit is taken when a call's headers arrive and given back when its
//! response (for a stream: the start of it) is ready, so it bounds the
//! calls being decoded and handled, hence the memory they hold: about N
//! times the largest request message. A shed call was not executed, so it
//! is safe to retry (with backoff; the response carries `RetryInfo`).
//! Health checks and reflection are never shed: a busy server is not a
//! dead one, and probes must keep telling the truth.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::{Request, Response};
use tokio::sync::Semaphore;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};
use tower_layer::Layer;
use tower_service::Service;

/// The `ErrorInfo` reason of a shed call (domain `zgc.dev`).
pub const OVERLOADED: &str = "OVERLOADED";

/// How long a shed client is asked to wait before retrying.
const RETRY_AFTER: Duration = Duration::from_millis(50);

/// Paths that are never shed.
const EXEMPT: [&str; 2] = ["/grpc.health.v1.Health/", "/grpc.reflection."];

/// Limits the calls in flight; see the module docs.
#[derive(Clone)]
pub struct LoadShedLayer {
    permits: Arc<Semaphore>,
    limit: usize,
}

impl LoadShedLayer {
    /// At most `limit` calls in flight (at least 1).
    pub fn new(limit: usize) -> Self {
        let limit = limit.clamp(1, Semaphore::MAX_PERMITS);
        Self {
            permits: Arc::new(Semaphore::new(limit)),
            limit,
        }
    }

    /// Calls in flight now (exempt calls not counted).
    pub fn in_flight(&self) -> usize {
        self.limit - self.permits.available_permits()
    }
}

impl<S> Layer<S> for LoadShedLayer {
    type Service = LoadShed<S>;

    fn layer(&self, inner: S) -> Self::Service {
        LoadShed {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service [`LoadShedLayer`] wraps around the server.
#[derive(Clone)]
pub struct LoadShed<S> {
    inner: S,
    layer: LoadShedLayer,
}

/// The status a shed call gets.
pub fn overloaded(limit: usize) -> Status {
    let mut details = ErrorDetails::with_retry_info(Some(RETRY_AFTER));
    details.set_error_info(
        OVERLOADED,
        "zgc.dev",
        [("limit".to_string(), limit.to_string())],
    );
    Status::with_error_details(
        Code::Unavailable,
        format!("the server is at its limit of {limit} calls in flight; retry with backoff"),
        details,
    )
}

impl<S, B, R> Service<Request<B>> for LoadShed<S>
where
    S: Service<Request<B>, Response = Response<R>>,
    S::Future: Send + 'static,
    R: Default,
{
    type Response = Response<R>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response<R>, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let path = request.uri().path();
        if EXEMPT.iter().any(|prefix| path.starts_with(prefix)) {
            return Box::pin(self.inner.call(request));
        }
        match self.layer.permits.clone().try_acquire_owned() {
            Ok(permit) => {
                let future = self.inner.call(request);
                Box::pin(async move {
                    let response = future.await;
                    drop(permit);
                    response
                })
            }
            Err(_) => {
                let limit = self.layer.limit;
                tracing::debug!(path, limit, "shedding a call");
                Box::pin(async move { Ok(overloaded(limit).into_http()) })
            }
        }
    }
}
