//! The `x-zgc-revision` response header on every response.
//!
//! Handlers that know the exact revision of their answer (a write) set the
//! header themselves. For every other response this layer adds the revision
//! current when the request arrived: a lower bound of what the answer
//! reflects. Trailers-only error responses get it too, since tonic sends
//! them as a header frame.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{HeaderValue, Request, Response};
use tower_layer::Layer;
use tower_service::Service;
use zgc_proto::wire::REVISION_HEADER;

/// Where the layer reads the current revision from.
pub type RevisionSource = Arc<dyn Fn() -> u64 + Send + Sync>;

/// Adds `x-zgc-revision` to responses that lack it.
#[derive(Clone)]
pub struct RevisionLayer {
    source: RevisionSource,
}

impl RevisionLayer {
    /// A layer reading the revision from `source`.
    pub fn new(source: RevisionSource) -> Self {
        Self { source }
    }
}

impl<S> Layer<S> for RevisionLayer {
    type Service = RevisionService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RevisionService {
            inner,
            source: self.source.clone(),
        }
    }
}

/// The service [`RevisionLayer`] wraps around the server.
#[derive(Clone)]
pub struct RevisionService<S> {
    inner: S,
    source: RevisionSource,
}

impl<S, B, R> Service<Request<B>> for RevisionService<S>
where
    S: Service<Request<B>, Response = Response<R>>,
{
    type Response = Response<R>;
    type Error = S::Error;
    type Future = RevisionFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        RevisionFuture {
            revision: (self.source)(),
            future: self.inner.call(request),
        }
    }
}

pin_project_lite::pin_project! {
    /// [`RevisionService`]'s future: the call, then the header.
    pub struct RevisionFuture<F> {
        #[pin]
        future: F,
        revision: u64,
    }
}

impl<F, R, E> Future for RevisionFuture<F>
where
    F: Future<Output = Result<Response<R>, E>>,
{
    type Output = Result<Response<R>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut response = std::task::ready!(this.future.poll(cx))?;
        if !response.headers().contains_key(REVISION_HEADER) {
            response
                .headers_mut()
                .insert(REVISION_HEADER, header_value(*this.revision));
        }
        Poll::Ready(Ok(response))
    }
}

thread_local! {
    /// The last revision's header value on this thread: between writes
    /// every response carries the same one, and a clone is a reference
    /// count where formatting it allocates.
    static LAST: std::cell::RefCell<Option<(u64, HeaderValue)>> =
        const { std::cell::RefCell::new(None) };
}

fn header_value(revision: u64) -> HeaderValue {
    LAST.with(|last| {
        let mut last = last.borrow_mut();
        match &*last {
            Some((r, value)) if *r == revision => value.clone(),
            _ => {
                let value = HeaderValue::from(revision);
                *last = Some((revision, value.clone()));
                value
            }
        }
    })
}
