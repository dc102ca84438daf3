//! The transparent retry against a real HTTP/2 server (the `h2` crate's)
//! on loopback, scripted to fail the first call the way servers and
//! proxies do: a refused stream, a GOAWAY before the call was read, a
//! connection lost after the call was read.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use tokio::net::TcpListener;
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use zgc_client::{Retry, idempotent};

/// How the scripted server treats the first call it receives; every later
/// call is answered SERVING.
#[derive(Clone, Copy)]
enum First {
    /// `RST_STREAM(REFUSED_STREAM)`.
    Refuse,
    /// A graceful GOAWAY (NO_ERROR) sent before the call was read, so the
    /// call's stream is above its last stream ID.
    GoAway,
    /// The call is read, then the connection is dropped unanswered.
    Drop,
}

/// A server on loopback following `first`; returns its address and the
/// number of calls that reached it (read by the server).
async fn server(first: First) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = format!("http://{}", listener.local_addr().unwrap());
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = calls.clone();
    tokio::spawn(async move {
        let connections = AtomicUsize::new(0);
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let n = connections.fetch_add(1, Ordering::SeqCst);
            let mut conn = h2::server::handshake(tcp).await.unwrap();
            if n == 0 && matches!(first, First::GoAway) {
                conn.abrupt_shutdown(h2::Reason::NO_ERROR);
                // Drive the connection until the client has closed it.
                while conn.accept().await.is_some() {}
                continue;
            }
            let counted = counted.clone();
            tokio::spawn(async move {
                while let Some(Ok((request, mut respond))) = conn.accept().await {
                    let call = counted.fetch_add(1, Ordering::SeqCst);
                    let mut body = request.into_body();
                    while let Some(chunk) = body.data().await {
                        let chunk = chunk.unwrap();
                        let _ = body.flow_control().release_capacity(chunk.len());
                    }
                    match (call, first) {
                        (0, First::Refuse) => respond.send_reset(h2::Reason::REFUSED_STREAM),
                        (0, First::Drop) => return,
                        _ => answer(&mut respond),
                    }
                }
            });
        }
    });
    (addr, calls)
}

/// Answers a health check: SERVING.
fn answer(respond: &mut h2::server::SendResponse<Bytes>) {
    let response = http::Response::builder()
        .status(200)
        .header("content-type", "application/grpc")
        .body(())
        .unwrap();
    let mut stream = respond.send_response(response, false).unwrap();
    // One message: uncompressed, 2 bytes long, field 1 = SERVING (1).
    stream
        .send_data(Bytes::from_static(&[0, 0, 0, 0, 2, 0x08, 0x01]), false)
        .unwrap();
    let mut trailers = http::HeaderMap::new();
    trailers.insert("grpc-status", "0".parse().unwrap());
    stream.send_trailers(trailers).unwrap();
}

async fn client(addr: &str) -> HealthClient<Retry<Channel>> {
    HealthClient::new(Retry::new(
        Channel::from_shared(addr.to_string())
            .unwrap()
            .connect_lazy(),
    ))
}

fn check() -> HealthCheckRequest {
    HealthCheckRequest {
        service: String::new(),
    }
}

#[tokio::test]
async fn a_refused_stream_is_sent_again_and_answered() {
    let (addr, calls) = server(First::Refuse).await;
    let status = client(&addr).await.check(check()).await.unwrap();
    assert_eq!(status.into_inner().status, ServingStatus::Serving as i32);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_call_a_graceful_goaway_left_unread_is_sent_again_on_a_new_connection() {
    let (addr, calls) = server(First::GoAway).await;
    let status = client(&addr).await.check(check()).await.unwrap();
    assert_eq!(status.into_inner().status, ServingStatus::Serving as i32);
    // The first connection read nothing: one call reached the server.
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_call_the_server_may_have_processed_is_not_sent_again() {
    let (addr, calls) = server(First::Drop).await;
    let error = client(&addr).await.check(check()).await.unwrap_err();
    // The caller gets the failure (tonic reports a lost connection as
    // UNKNOWN "transport error") and decides; the server saw it once.
    assert!(error.message().contains("transport error"), "{error:?}");
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn an_idempotent_call_the_server_may_have_processed_is_sent_again_once() {
    let (addr, calls) = server(First::Drop).await;
    let status = client(&addr)
        .await
        .check(idempotent(check()))
        .await
        .unwrap();
    assert_eq!(status.into_inner().status, ServingStatus::Serving as i32);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}
