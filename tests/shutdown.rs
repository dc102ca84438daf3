//! A server's shutdown as an orchestrator drives it, on the real binary:
//! SIGTERM turns health NOT_SERVING (gRPC health and `GET /ready`) while
//! the server keeps accepting and serving calls through its shutdown
//! delay; a SIGINT then stops it at once, with exit code 0.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::time::Duration;

use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use zgc_proto::registry::v1::ListParksRequest;
use zgc_proto::registry::v1::registry_service_client::RegistryServiceClient;
use zgc_tests::binaries::Server;

async fn connect(addr: SocketAddr) -> Channel {
    Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_keeps_serving_through_the_delay_not_ready_and_sigint_ends_it() {
    let dir = tempfile::tempdir().unwrap();
    let any = SocketAddr::from(([127, 0, 0, 1], 0));
    // A delay no test machine outlasts: the test ends it with SIGINT.
    let args = [
        "--data-dir".to_string(),
        dir.path().display().to_string(),
        "--shutdown-delay-secs".into(),
        "3600".into(),
    ];
    let server = Server::start("zgc-registry", "registry", any, any, &args).await;
    server.wait_ready().await;
    let mut before = RegistryServiceClient::new(connect(server.addr).await);
    before
        .list_parks(ListParksRequest::default())
        .await
        .unwrap();

    server.signal("TERM");
    tokio::time::timeout(Duration::from_secs(60), async {
        while server.ready().await {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("/ready never turned 503 after SIGTERM");
    let status = HealthClient::new(connect(server.addr).await)
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .status;
    assert_eq!(status, ServingStatus::NotServing as i32);
    // Still serving calls, on a connection opened before and on a new one.
    before
        .list_parks(ListParksRequest::default())
        .await
        .unwrap();
    RegistryServiceClient::new(connect(server.addr).await)
        .list_parks(ListParksRequest::default())
        .await
        .unwrap();

    server.signal("INT");
    let code = tokio::time::timeout(Duration::from_secs(60), server.wait())
        .await
        .expect("SIGINT did not end the shutdown delay");
    assert_eq!(code, Some(0));
}
