//! Per-call deadlines: a call still running when its `grpc-timeout` runs
//! out is answered `DEADLINE_EXCEEDED` (tonic alone would answer
//! `CANCELLED`), and its handler is dropped.
//!
//! For a stream, the deadline bounds the wait for its start, as tonic's
//! does. A write cut off by its deadline may or may not have been stored,
//! like any call whose answer was lost: retry it with its `request_id`.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use http::{Request, Response};
use tonic::Status;
use tower_layer::Layer;
use tower_service::Service;

/// Parses a `grpc-timeout` value: up to 8 digits and a unit (H M S m u n).
pub fn parse_grpc_timeout(value: &str) -> Option<Duration> {
    if value.len() < 2 || value.len() > 9 || !value.is_ascii() {
        return None;
    }
    let (digits, unit) = value.split_at(value.len() - 1);
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n.checked_mul(3600)?),
        "M" => Duration::from_secs(n.checked_mul(60)?),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

/// The deadline of a request with these headers, if it has one.
pub fn timeout_of(headers: &http::HeaderMap) -> Option<Duration> {
    headers
        .get("grpc-timeout")
        .and_then(|v| v.to_str().ok())
        .and_then(parse_grpc_timeout)
}

/// Answers `DEADLINE_EXCEEDED` when a call outlives its `grpc-timeout`.
#[derive(Debug, Clone, Copy, Default)]
pub struct DeadlineLayer;

impl<S> Layer<S> for DeadlineLayer {
    type Service = Deadline<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Deadline { inner }
    }
}

/// The service [`DeadlineLayer`] wraps around the server.
#[derive(Debug, Clone)]
pub struct Deadline<S> {
    inner: S,
}

impl<S, B, R> Service<Request<B>> for Deadline<S>
where
    S: Service<Request<B>, Response = Response<R>>,
    R: Default,
{
    type Response = Response<R>;
    type Error = S::Error;
    type Future = DeadlineFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        // Started before tonic's own timer (which wraps this layer and
        // starts its clock after this returns), so it expires first.
        match timeout_of(request.headers()) {
            Some(timeout) => {
                let deadline = tokio::time::Instant::now() + timeout;
                DeadlineFuture::Timed {
                    future: tokio::time::timeout_at(deadline, self.inner.call(request)),
                    timeout,
                }
            }
            None => DeadlineFuture::Open {
                future: self.inner.call(request),
            },
        }
    }
}

pin_project_lite::pin_project! {
    /// [`Deadline`]'s future: the call, raced against its deadline if it
    /// has one.
    #[project = DeadlineProjection]
    pub enum DeadlineFuture<F> {
        /// A call with a deadline.
        Timed { #[pin] future: tokio::time::Timeout<F>, timeout: Duration },
        /// A call without one.
        Open { #[pin] future: F },
    }
}

impl<F, R, E> Future for DeadlineFuture<F>
where
    F: Future<Output = Result<Response<R>, E>>,
    R: Default,
{
    type Output = Result<Response<R>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            DeadlineProjection::Timed { future, timeout } => {
                Poll::Ready(match std::task::ready!(future.poll(cx)) {
                    Ok(response) => response,
                    Err(_) => Ok(Status::deadline_exceeded(format!(
                        "the call's deadline ({} ms) passed before it finished",
                        timeout.as_millis()
                    ))
                    .into_http()),
                })
            }
            DeadlineProjection::Open { future } => future.poll(cx),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeout_values() {
        assert_eq!(parse_grpc_timeout("1S"), Some(Duration::from_secs(1)));
        assert_eq!(parse_grpc_timeout("100m"), Some(Duration::from_millis(100)));
        assert_eq!(parse_grpc_timeout("2H"), Some(Duration::from_secs(7200)));
        assert_eq!(
            parse_grpc_timeout("99999999n"),
            Some(Duration::from_nanos(99_999_999))
        );
        for bad in [
            "",
            "S",
            "1",
            "123456789S",
            "1s",
            "-1S",
            "+1S",
            "1.5S",
            "一S",
        ] {
            assert_eq!(parse_grpc_timeout(bad), None, "{bad}");
        }
    }
}
