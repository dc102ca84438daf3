//! The HTTP/2 attacks of recent years, against both services: rapid reset
//! (CVE-2023-44487), CONTINUATION floods (CVE-2024-27316 and its kin),
//! SETTINGS and PING floods, a huge header block, thousands of headers,
//! and a reader that never opens its receive window.
//!
//! The attacks come from a real HTTP/2 client outside this process
//! (`hostile/http2_attacks.py`, Python's h2 stack, frame by frame) at the
//! real binaries, so that their memory can be read. For each attack: the
//! offending connection is closed (with GOAWAY `ENHANCE_YOUR_CALM` where
//! the HTTP/2 server, h2, ends the flood itself), a well-behaved client on
//! another connection is served throughout without one error, the server's
//! memory stays within a bound, and it stays up.
//!
//! Which limit ends which attack (see also `zgc_server::flood`):
//! - rapid reset: h2's limit on streams reset before the server reads them;
//! - CONTINUATION floods and a huge header block: h2's header-list limit
//!   (16 KiB, hyper's default), checked as CONTINUATION frames arrive;
//! - thousands of headers: the same limit; h2 stops decoding the block,
//!   so the connection's header compression state is lost
//!   (`COMPRESSION_ERROR`);
//! - SETTINGS and PING floods: `zgc_server::flood`'s budget of frames that
//!   must be answered;
//! - a reader that never opens its window: the server's keepalive ping
//!   (`--keepalive-secs`), unanswered, closes the connection; until then
//!   `--max-concurrent-streams` bounds the responses it holds.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::watch;
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use zgc_proto::registry::v1::ListParksRequest;
use zgc_proto::registry::v1::registry_service_client::RegistryServiceClient;
use zgc_proto::stats::v1::stats_service_client::StatsServiceClient;
use zgc_proto::stats::v1::{GetSummaryRequest, Scope, scope};
use zgc_tests::binaries::Server;

/// `GOAWAY` error codes (RFC 9113, section 7).
const COMPRESSION_ERROR: u64 = 0x9;
const ENHANCE_YOUR_CALM: u64 = 0xb;

/// How much a server's memory may grow over one attack.
const MEMORY_BOUND: u64 = 64 << 20;

/// What the attack script reports.
#[derive(Debug)]
struct Outcome {
    closed: bool,
    goaway: Option<u64>,
}

/// Runs one attack at `addr`, its requests calling `service`, and returns
/// what the attacker saw.
async fn attack(name: &str, addr: SocketAddr, service: Service) -> Outcome {
    let (path, message) = match service {
        // ListParksRequest { page_size: 1000 }
        Service::Registry => ("/zgc.registry.v1.RegistryService/ListParks", "08e807"),
        // GetSummaryRequest { scope: { all: true } }
        Service::Stats => ("/zgc.stats.v1.StatsService/GetSummary", "0a020801"),
    };
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("hostile/http2_attacks.py");
    let output = tokio::process::Command::new(zgc_tests::tools::python())
        .arg(&script)
        .arg(name)
        .arg(addr.to_string())
        .args(["--patience", "60", "--path", path, "--message", message])
        .kill_on_drop(true)
        .output()
        .await
        .expect("run the attack script");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{name}: the attack script failed: {}{stdout}",
        String::from_utf8_lossy(&output.stderr)
    );
    let json: serde_json::Value = serde_json::from_str(stdout.trim()).expect("one JSON line");
    Outcome {
        closed: json["closed"].as_bool().expect("closed"),
        goaway: json["goaway"].as_u64(),
    }
}

/// The service attacked.
#[derive(Clone, Copy)]
enum Service {
    Registry,
    Stats,
}

/// Calls `service` at `addr` in a loop until told to stop; returns the
/// calls served and the failures.
async fn well_behaved(
    service: Service,
    addr: SocketAddr,
    mut stop: watch::Receiver<bool>,
    served: Arc<AtomicU64>,
) -> Vec<tonic::Status> {
    let channel = Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut registry = RegistryServiceClient::new(channel.clone());
    let mut stats = StatsServiceClient::new(channel);
    let mut failures = Vec::new();
    while !*stop.borrow_and_update() {
        let result = match service {
            Service::Registry => registry
                .list_parks(ListParksRequest::default())
                .await
                .map(drop),
            Service::Stats => stats
                .get_summary(GetSummaryRequest {
                    scope: Some(Scope {
                        selector: Some(scope::Selector::All(true)),
                        include_affiliates: false,
                    }),
                    min_revision: 0,
                })
                .await
                .map(drop),
        };
        match result {
            Ok(()) => {
                served.fetch_add(1, Ordering::Relaxed);
            }
            Err(status) => failures.push(status),
        }
    }
    failures
}

/// Every attack at `server`, with a well-behaved client alongside.
async fn withstands_every_attack(service: Service, server: &Server) {
    let attacks: [(&str, Option<u64>); 7] = [
        ("rapid-reset", Some(ENHANCE_YOUR_CALM)),
        ("continuation-flood", Some(ENHANCE_YOUR_CALM)),
        ("huge-headers", Some(ENHANCE_YOUR_CALM)),
        ("many-headers", Some(COMPRESSION_ERROR)),
        ("settings-flood", None),
        ("ping-flood", None),
        ("zero-window", None),
    ];
    let baseline = server.rss();
    for (name, goaway) in attacks {
        let served = Arc::new(AtomicU64::new(0));
        let (stop, stopped) = watch::channel(false);
        let client = tokio::spawn(well_behaved(service, server.addr, stopped, served.clone()));
        let started = std::time::Instant::now();
        let outcome = attack(name, server.addr, service).await;
        eprintln!("{name}: {outcome:?} after {:?}", started.elapsed());
        // The client must have been served while the attack ran, and after.
        let before = served.load(Ordering::Relaxed);
        tokio::time::timeout(Duration::from_secs(60), async {
            while served.load(Ordering::Relaxed) < before + 10 {
                tokio::task::yield_now().await;
            }
        })
        .await
        .unwrap_or_else(|_| panic!("{name}: the well-behaved client stopped being served"));
        stop.send(true).unwrap();
        let failures = client.await.unwrap();
        assert!(
            failures.is_empty(),
            "{name}: {} calls of the well-behaved client failed: {:?}",
            failures.len(),
            failures.first()
        );
        assert!(
            outcome.closed,
            "{name}: the connection stayed open: {outcome:?}"
        );
        if let Some(code) = goaway {
            assert_eq!(outcome.goaway, Some(code), "{name}: {outcome:?}");
        }
        let rss = server.rss();
        assert!(
            rss < baseline + MEMORY_BOUND,
            "{name}: memory grew from {baseline} to {rss} bytes"
        );
    }
    let status = HealthClient::new(
        Channel::from_shared(server.endpoint())
            .unwrap()
            .connect()
            .await
            .unwrap(),
    )
    .check(HealthCheckRequest {
        service: String::new(),
    })
    .await
    .unwrap()
    .into_inner()
    .status;
    assert_eq!(status, ServingStatus::Serving as i32);
}

/// Flags for an attacked server: a keepalive ping every second, so that a
/// peer that never reads is found out within the test's patience.
fn flags(extra: &[String]) -> Vec<String> {
    let mut flags = vec!["--keepalive-secs".to_string(), "1".into()];
    flags.extend_from_slice(extra);
    flags
}

async fn registry(dir: &Path) -> Server {
    let any = SocketAddr::from(([127, 0, 0, 1], 0));
    let args = flags(&["--data-dir".into(), dir.display().to_string()]);
    let server = Server::start("zgc-registry", "registry", any, any, &args).await;
    server.wait_ready().await;
    server
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_registry_withstands_http2_attacks() {
    let dir = tempfile::tempdir().unwrap();
    let registry = registry(dir.path()).await;
    withstands_every_attack(Service::Registry, &registry).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stats_service_withstands_http2_attacks() {
    let dir = tempfile::tempdir().unwrap();
    let registry = registry(dir.path()).await;
    let any = SocketAddr::from(([127, 0, 0, 1], 0));
    let args = flags(&["--registry-addr".into(), registry.endpoint()]);
    let stats = Server::start("zgc-stats", "stats", any, any, &args).await;
    stats.wait_ready().await;
    withstands_every_attack(Service::Stats, &stats).await;
}
