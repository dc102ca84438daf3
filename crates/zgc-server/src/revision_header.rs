//! The `x-zgc-revision` response header on every response.
//!
//! Handlers that know the exact revision of their answer (a write) set the
//! header themselves. For every other response this layer adds the revision
//! current when the request arrived: a lower bound of what the answer
//! reflects; or, when the handler first made sure its answer reflects a
//! later one ([`reflects_at_least`], as a read on an etcd replica does once
//! it has caught up with etcd), that one. Trailers-only error responses
//! get it too, since tonic sends them as a header frame.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{HeaderValue, Request, Response};
use tower_layer::Layer;
use tower_service::Service;
use zgc_proto::wire::REVISION_HEADER;

tokio::task_local! {
    /// The revision the call in progress is known to reflect at least.
    static REFLECTS: std::cell::Cell<u64>;
}

/// Records, from inside a call, that its answer reflects at least
/// `revision`: the header says so unless the handler sets its own. Does
/// nothing outside a call.
pub fn reflects_at_least(revision: u64) {
    let _ = REFLECTS.try_with(|r| r.set(r.get().max(revision)));
}

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
        let future = this.future;
        let (polled, reflects) = REFLECTS.sync_scope(std::cell::Cell::new(*this.revision), || {
            (future.poll(cx), REFLECTS.with(std::cell::Cell::get))
        });
        *this.revision = reflects;
        let mut response = std::task::ready!(polled)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A handler that, while it runs, may learn its answer reflects a
    /// later revision, and may set the header itself.
    #[derive(Clone)]
    struct Handler {
        reflects: Option<u64>,
        own: Option<u64>,
    }

    impl Service<Request<()>> for Handler {
        type Response = Response<()>;
        type Error = std::convert::Infallible;
        type Future = Pin<Box<dyn Future<Output = Result<Response<()>, Self::Error>> + Send>>;

        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, _: Request<()>) -> Self::Future {
            let this = self.clone();
            Box::pin(async move {
                tokio::task::yield_now().await;
                if let Some(revision) = this.reflects {
                    reflects_at_least(revision);
                }
                let mut response = Response::new(());
                if let Some(own) = this.own {
                    response
                        .headers_mut()
                        .insert(REVISION_HEADER, HeaderValue::from(own));
                }
                Ok(response)
            })
        }
    }

    async fn header(handler: Handler) -> String {
        let mut service = RevisionLayer::new(Arc::new(|| 5)).layer(handler);
        let response = service.call(Request::new(())).await.unwrap();
        response.headers()[REVISION_HEADER]
            .to_str()
            .unwrap()
            .to_string()
    }

    #[tokio::test]
    async fn the_header_is_the_arrival_revision_or_a_later_one_the_call_knows() {
        let plain = Handler {
            reflects: None,
            own: None,
        };
        assert_eq!(header(plain).await, "5");
        let synced = Handler {
            reflects: Some(9),
            own: None,
        };
        assert_eq!(header(synced).await, "9", "the call caught up to 9");
        let older = Handler {
            reflects: Some(3),
            own: None,
        };
        assert_eq!(header(older).await, "5", "never below the arrival");
        let write = Handler {
            reflects: Some(9),
            own: Some(12),
        };
        assert_eq!(header(write).await, "12", "a handler's own header stays");
        // Outside a call, recording does nothing.
        reflects_at_least(100);
    }
}
