//! Every call observed once, at the edge: an `x-request-id` (the caller's,
//! or a new one) echoed in the response, a `rpc` span around the handler
//! (so every log line it writes carries the method and the request ID), a
//! log line when the call ends (its status code and duration: DEBUG for
//! OK, INFO otherwise), and the RPC metrics.
//!
//! A call ends when its last frame is sent: the trailers (where gRPC puts
//! the status of a normal response), or the headers of a trailers-only
//! error response. A stream the client abandons ends as `CANCELLED`.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Instant;

use http::{HeaderMap, HeaderValue, Request, Response};
use http_body::{Body, Frame, SizeHint};
use tower_layer::Layer;
use tower_service::Service;
use tracing::Instrument;
// The request ID header a mesh generates and asks applications to log and
// forward.
use zgc_proto::wire::REQUEST_ID_HEADER as REQUEST_ID;

use crate::metrics::{MethodMetrics, Metrics};

/// Longest accepted `x-request-id`; a longer or non-ASCII one is replaced.
const MAX_REQUEST_ID: usize = 128;

/// Observes every call; see the module docs.
#[derive(Clone)]
pub struct ObserveLayer {
    metrics: Arc<Metrics>,
}

impl ObserveLayer {
    /// Records into `metrics`.
    pub fn new(metrics: Arc<Metrics>) -> Self {
        Self { metrics }
    }
}

impl<S> Layer<S> for ObserveLayer {
    type Service = Observe<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Observe {
            inner,
            metrics: self.metrics.clone(),
        }
    }
}

/// The service [`ObserveLayer`] wraps around the server.
#[derive(Clone)]
pub struct Observe<S> {
    inner: S,
    metrics: Arc<Metrics>,
}

/// The canonical name of a gRPC status code, as the gRPC docs spell it.
pub fn code_name(code: i32) -> &'static str {
    match code {
        0 => "OK",
        1 => "CANCELLED",
        2 => "UNKNOWN",
        3 => "INVALID_ARGUMENT",
        4 => "DEADLINE_EXCEEDED",
        5 => "NOT_FOUND",
        6 => "ALREADY_EXISTS",
        7 => "PERMISSION_DENIED",
        8 => "RESOURCE_EXHAUSTED",
        9 => "FAILED_PRECONDITION",
        10 => "ABORTED",
        11 => "OUT_OF_RANGE",
        12 => "UNIMPLEMENTED",
        13 => "INTERNAL",
        14 => "UNAVAILABLE",
        15 => "DATA_LOSS",
        16 => "UNAUTHENTICATED",
        _ => "UNKNOWN",
    }
}

fn grpc_status(headers: &HeaderMap) -> Option<i32> {
    headers
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

/// The caller's request ID if it is reasonable, else a new one.
fn request_id(headers: &HeaderMap) -> HeaderValue {
    headers
        .get(REQUEST_ID)
        .filter(|v| {
            v.len() <= MAX_REQUEST_ID
                && !v.is_empty()
                && v.as_bytes().iter().all(|b| b.is_ascii_graphic())
        })
        .cloned()
        .unwrap_or_else(|| {
            let mut text = uuid::Uuid::encode_buffer();
            let id = uuid::Uuid::new_v4().hyphenated().encode_lower(&mut text);
            HeaderValue::from_str(id).unwrap_or_else(|_| HeaderValue::from_static("invalid"))
        })
}

/// Records the end of one call, exactly once.
struct Ending {
    method: Arc<MethodMetrics>,
    started: Instant,
    span: tracing::Span,
    /// The trace ID the call came with, for when spans are not traced.
    incoming_trace: Option<String>,
}

impl Ending {
    fn finish(self, code: i32) {
        let elapsed = self.started.elapsed();
        self.method.in_flight.dec();
        self.method.latency.observe(elapsed.as_secs_f64());
        self.method.count(code);
        let _entered = self.span.enter();
        // OK calls log at DEBUG, the rest at INFO: with that level off,
        // nothing below is needed.
        let logged = if code == 0 {
            tracing::enabled!(target: "zgc::rpc", tracing::Level::DEBUG)
        } else {
            tracing::enabled!(target: "zgc::rpc", tracing::Level::INFO)
        };
        if !logged {
            return;
        }
        let name = code_name(code);
        let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        let trace_id = crate::telemetry::trace_id(&self.span)
            .or(self.incoming_trace)
            .unwrap_or_default();
        if code == 0 {
            tracing::debug!(target: "zgc::rpc", code = name, duration_us = micros, trace_id, "call finished");
        } else {
            tracing::info!(target: "zgc::rpc", code = name, duration_us = micros, trace_id, "call finished");
        }
    }
}

impl<S, B> Service<Request<B>> for Observe<S>
where
    S: Service<Request<B>, Response = Response<tonic::body::Body>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = Response<tonic::body::Body>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        let method = self.metrics.rpc.method(request.uri().path());
        let id = request_id(request.headers());
        request.headers_mut().insert(REQUEST_ID, id.clone());
        let span = tracing::info_span!(
            target: "zgc::rpc",
            "rpc",
            rpc.service = %method.labels.service,
            rpc.method = %method.labels.method,
            request_id = %String::from_utf8_lossy(id.as_bytes()),
        );
        // The trace context matters only to a span or a log line: with
        // neither enabled, its headers are not even parsed.
        let incoming_trace =
            if !span.is_disabled() || tracing::enabled!(target: "zgc::rpc", tracing::Level::INFO) {
                crate::telemetry::extract_parent(&span, request.headers())
            } else {
                None
            };
        method.in_flight.inc();
        let ending = Ending {
            method,
            started: Instant::now(),
            span: span.clone(),
            incoming_trace,
        };
        let future = self.inner.call(request).instrument(span);
        Box::pin(async move {
            let response = match future.await {
                Ok(response) => response,
                Err(e) => {
                    ending.finish(2);
                    return Err(e);
                }
            };
            let (mut parts, body) = response.into_parts();
            // Each call's ID is new: left indexable, HPACK would add every
            // one to the connection's header table, evicting the headers
            // all responses share, at both ends (and in any proxy).
            let mut id = id;
            id.set_sensitive(true);
            parts.headers.insert(REQUEST_ID, id);
            if let Some(code) = grpc_status(&parts.headers) {
                // Trailers-only: the call ends with these headers.
                ending.finish(code);
                return Ok(Response::from_parts(parts, body));
            }
            let body = tonic::body::Body::new(ObservedBody {
                inner: body,
                ending: Some(ending),
            });
            Ok(Response::from_parts(parts, body))
        })
    }
}

pin_project_lite::pin_project! {
    /// A response body that reports the call's end when its trailers pass.
    struct ObservedBody {
        #[pin]
        inner: tonic::body::Body,
        ending: Option<Ending>,
    }

    impl PinnedDrop for ObservedBody {
        fn drop(this: Pin<&mut Self>) {
            // Dropped before its trailers: the client went away.
            if let Some(ending) = this.project().ending.take() {
                ending.finish(1);
            }
        }
    }
}

impl Body for ObservedBody {
    type Data = bytes::Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        let frame = ready!(this.inner.poll_frame(cx));
        match &frame {
            Some(Ok(f)) => {
                if let Some(trailers) = f.trailers_ref()
                    && let Some(ending) = this.ending.take()
                {
                    ending.finish(grpc_status(trailers).unwrap_or(2));
                }
            }
            Some(Err(_)) => {
                if let Some(ending) = this.ending.take() {
                    ending.finish(2);
                }
            }
            None => {
                if let Some(ending) = this.ending.take() {
                    ending.finish(0);
                }
            }
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
