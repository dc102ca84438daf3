//! gRPC's transparent retry, which tonic's client does not do: a call that
//! failed before the server could have processed it is sent again, once.
//!
//! HTTP/2 says when a server has not processed a request: it refused the
//! stream (`RST_STREAM` with `REFUSED_STREAM`), or its GOAWAY's last stream
//! ID is below the request's (a graceful GOAWAY, as a server sends when it
//! stops accepting or rotates a connection). A request the client never
//! sent (its connection closed while the request waited, or no connection
//! could be made) was not processed either. Those are retried.
//!
//! Any other transport failure (a connection reset, a GOAWAY with an
//! error, a stream reset) may come after the server processed the call:
//! retried only when the call is marked [`Idempotent`] (a read, or a write
//! carrying a `request_id`, which the server answers once however often it
//! is sent). A call that got an answer, any gRPC status included, is never
//! retried here.
//!
//! Requests are buffered to be sent twice; zgc has no client-streaming
//! calls, so a request is one message.

use std::error::Error as StdError;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use tonic::body::Body;
use tower_service::Service;

/// The error a retrying service returns: the transport's, boxed.
pub type BoxError = Box<dyn StdError + Send + Sync>;

/// Marks a call as safe to send twice even when the server may have
/// processed it: a read, or a write with a `request_id`. Set it with
/// [`idempotent`].
#[derive(Debug, Clone, Copy)]
pub struct Idempotent;

/// `message` as a request marked [`Idempotent`].
pub fn idempotent<T>(message: T) -> tonic::Request<T> {
    idempotent_if(message, true)
}

/// `message` as a request, marked [`Idempotent`] if `safe` (a write is when
/// it carries a `request_id`).
pub fn idempotent_if<T>(message: T, safe: bool) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    if safe {
        request.extensions_mut().insert(Idempotent);
    }
    request
}

/// What a transport failure says about whether the server saw the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The server certainly did not process it.
    NotProcessed,
    /// It may have.
    MaybeProcessed,
}

/// Reads `error`'s source chain for what HTTP/2 (h2) and the client
/// (hyper) said about the call.
pub fn classify(error: &(dyn StdError + 'static)) -> Failure {
    let mut next = Some(error);
    while let Some(e) = next {
        if let Some(h2) = e.downcast_ref::<h2::Error>() {
            let refused = h2.is_reset() && h2.reason() == Some(h2::Reason::REFUSED_STREAM);
            // h2 gives a graceful GOAWAY's NO_ERROR to exactly the streams
            // above its last stream ID; a GOAWAY with an error may end
            // processed streams too.
            let gone_away = h2.is_go_away() && h2.reason() == Some(h2::Reason::NO_ERROR);
            return if h2.is_remote() && (refused || gone_away) {
                Failure::NotProcessed
            } else {
                Failure::MaybeProcessed
            };
        }
        if let Some(hyper) = e.downcast_ref::<hyper::Error>()
            && hyper.is_canceled()
        {
            // hyper cancels a request its connection closed before it was
            // handed to HTTP/2: never sent.
            return Failure::NotProcessed;
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>()
            && io.kind() == std::io::ErrorKind::ConnectionRefused
        {
            // Refused at connect: nothing was sent.
            return Failure::NotProcessed;
        }
        next = e.source();
    }
    Failure::MaybeProcessed
}

/// A service (a tonic `Channel`) whose calls are retried once when they
/// failed before the server processed them (see the module's docs).
#[derive(Debug, Clone)]
pub struct Retry<S> {
    inner: S,
}

impl<S> Retry<S> {
    /// Wraps `inner`.
    pub fn new(inner: S) -> Self {
        Self { inner }
    }
}

impl<S> Service<Request<Body>> for Retry<S>
where
    S: Service<Request<Body>, Response = Response<Body>> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: Into<BoxError>,
{
    type Response = Response<Body>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        // The service polled ready takes the first attempt; a clone, polled
        // ready in its turn, the second.
        let again = self.inner.clone();
        let mut first = std::mem::replace(&mut self.inner, again.clone());
        let mut again = again;
        Box::pin(async move {
            let idempotent = request.extensions().get::<Idempotent>().is_some();
            let (parts, body) = request.into_parts();
            let message = body.collect().await.map_err(BoxError::from)?.to_bytes();
            let attempt =
                |message: Bytes| Request::from_parts(parts.clone(), Body::new(Full::new(message)));
            let error = match first.call(attempt(message.clone())).await {
                Ok(response) => return Ok(response),
                Err(e) => e.into(),
            };
            let failure = classify(&*error);
            if failure == Failure::MaybeProcessed && !idempotent {
                return Err(error);
            }
            tracing::debug!(
                error = %error,
                ?failure,
                path = parts.uri.path(),
                "sending a call again that failed in transport"
            );
            std::future::poll_fn(|cx| again.poll_ready(cx))
                .await
                .map_err(Into::into)?;
            again.call(attempt(message)).await.map_err(Into::into)
        })
    }
}
