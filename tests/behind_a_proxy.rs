//! Both services behind a real HTTP/2 proxy standing in for a mesh
//! sidecar: HAProxy (from Debian's packages; `scripts/setup` installs it,
//! `HAPROXY` overrides the path). Unary calls, the `WatchChanges` stream and
//! health checks go through it, and the stats service's two replicas are
//! restarted one after the other under steady client load, the way a
//! Kubernetes rolling update does it: the endpoint leaves the proxy's
//! rotation (here through HAProxy's admin socket), the pod gets SIGTERM
//! and drains, the new pod turns SERVING and joins the rotation. Not one
//! call may fail.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::process::{Child, Command};
use tokio::sync::watch;
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use zgc_proto::registry::v1::registry_service_client::RegistryServiceClient;
use zgc_proto::registry::v1::*;
use zgc_proto::stats::v1::stats_service_client::StatsServiceClient;
use zgc_proto::stats::v1::{GetSummaryRequest, Scope, scope};
use zgc_tests::{Registry, Stats, company};

const PATIENCE: Duration = Duration::from_secs(120);

fn haproxy_binary() -> std::path::PathBuf {
    zgc_tests::tools::tool("haproxy", "HAPROXY")
}

/// The proxy's configuration: registry calls by path to the registry,
/// everything else (stats calls, health checks) round-robin over the stats
/// replicas, HTTP/2 in cleartext on both sides, as between sidecars. Every
/// request is logged to stderr (shown when the test fails): a response cut
/// short by a server shows as termination state `SD--`.
fn config(dir: &Path, listen: u16, registry: SocketAddr, stats: &[SocketAddr]) -> String {
    let d = dir.display();
    let replicas: String = stats
        .iter()
        .enumerate()
        .map(|(i, a)| format!("  server s{i} {a} proto h2\n"))
        .collect();
    format!(
        "global
  stats socket {d}/admin.sock level admin
defaults
  log stderr format raw local0
  option httplog
  mode http
  timeout connect 5s
  timeout client 1h
  timeout server 1h
  retries 2
  retry-on conn-failure empty-response
  option redispatch
frontend grpc
  bind 127.0.0.1:{listen} proto h2
  use_backend registry if {{ path_beg /zgc.registry.v1.RegistryService/ }}
  default_backend stats
backend registry
  server r {registry} proto h2
backend stats
  balance roundrobin
{replicas}"
    )
}

/// HAProxy on a free port, serving until dropped.
struct Proxy {
    addr: SocketAddr,
    admin: std::path::PathBuf,
    _child: Child,
}

impl Proxy {
    async fn start(dir: &Path, registry: SocketAddr, stats: &[SocketAddr]) -> Self {
        for _ in 0..10 {
            // A free port, taken by HAProxy a moment later (retried if some
            // other process took it in between).
            let port = TcpListener::bind("127.0.0.1:0")
                .await
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let conf = dir.join("haproxy.cfg");
            std::fs::write(&conf, config(dir, port, registry, stats)).unwrap();
            let mut child = Command::new(haproxy_binary())
                .arg("-db")
                .arg("-f")
                .arg(&conf)
                .stdout(Stdio::null())
                .stderr(Stdio::inherit())
                .kill_on_drop(true)
                .spawn()
                .unwrap_or_else(|e| panic!("cannot run haproxy: {e}"));
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            // Ready once it accepts connections; or it exited (port taken).
            let ready = tokio::time::timeout(PATIENCE, async {
                loop {
                    if let Ok(Some(_)) = child.try_wait() {
                        return false;
                    }
                    if tokio::net::TcpStream::connect(addr).await.is_ok() {
                        return true;
                    }
                    // HAProxy binds its port within milliseconds of starting.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            })
            .await
            .expect("haproxy never started");
            if ready {
                return Self {
                    addr,
                    admin: dir.join("admin.sock"),
                    _child: child,
                };
            }
        }
        panic!("haproxy could not start (its messages are on stderr above)");
    }

    async fn channel(&self) -> Channel {
        Channel::from_shared(format!("http://{}", self.addr))
            .unwrap()
            .connect()
            .await
            .unwrap()
    }

    /// Runs an admin command; HAProxy has applied it when this returns.
    async fn admin(&self, command: &str) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut socket = tokio::net::UnixStream::connect(&self.admin).await.unwrap();
        socket
            .write_all(format!("{command}\n").as_bytes())
            .await
            .unwrap();
        let mut answer = String::new();
        socket.read_to_string(&mut answer).await.unwrap();
        assert!(answer.trim().is_empty(), "{command}: {answer}");
    }
}

fn summary() -> tonic::Request<GetSummaryRequest> {
    let mut r = tonic::Request::new(GetSummaryRequest {
        scope: Some(Scope {
            selector: Some(scope::Selector::All(true)),
            include_affiliates: false,
        }),
        min_revision: 0,
    });
    r.set_timeout(PATIENCE);
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_haproxy_with_a_rolling_restart_of_the_stats_service() {
    let dir = tempfile::tempdir().unwrap();
    let registry = Registry::start().await;
    let a = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let b = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (a_addr, b_addr) = (a.local_addr().unwrap(), b.local_addr().unwrap());
    let endpoint = registry.endpoint();
    let replica_a = Stats::start_on(a, &endpoint, |_| {}).await;
    let replica_b = Stats::start_on(b, &endpoint, |_| {}).await;
    replica_a.wait_serving().await;
    replica_b.wait_serving().await;
    let proxy = Proxy::start(dir.path(), registry.addr, &[a_addr, b_addr]).await;
    let channel = proxy.channel().await;

    // Unary registry calls and the change stream, through the proxy.
    let mut registry_client = RegistryServiceClient::new(channel.clone());
    let mut stream = registry_client
        .watch_changes(WatchChangesRequest { start_revision: 0 })
        .await
        .unwrap()
        .into_inner();
    let created = registry_client
        .create_company(CreateCompanyRequest {
            company: Some(company("Proxied", "Tianjin", "Tianjin")),
            company_id: "proxied".into(),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    let seen = tokio::time::timeout(PATIENCE, async {
        loop {
            let msg = stream.message().await.unwrap().unwrap();
            if let Some(e) = msg.events.iter().find(|e| e.revision == created.revision) {
                return e.clone();
            }
        }
    })
    .await
    .expect("the stream through the proxy never showed the write");
    assert_eq!(seen.r#type, ChangeType::Created as i32);

    // Health checks through the proxy.
    let mut health = HealthClient::new(channel.clone());
    let status = health
        .check(HealthCheckRequest {
            service: "zgc.stats.v1.StatsService".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .status;
    assert_eq!(status, ServingStatus::Serving as i32);

    // Steady load on the stats service through the proxy...
    let (served, mut served_rx) = watch::channel(0u64);
    let served = Arc::new(served);
    let failed = Arc::new(AtomicU64::new(0));
    let (stop_load, load_stopped) = watch::channel(false);
    let mut load = tokio::task::JoinSet::new();
    for _ in 0..4 {
        let mut client = StatsServiceClient::new(channel.clone());
        let (served, failed, mut stopped) = (served.clone(), failed.clone(), load_stopped.clone());
        load.spawn(async move {
            while !*stopped.borrow_and_update() {
                match client.get_summary(summary()).await {
                    Ok(_) => served.send_modify(|n| *n += 1),
                    Err(status) => {
                        eprintln!("a call failed: {status:?}");
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        });
    }
    // Waits (on the counter, not a clock) for 50 more calls served.
    let mut fifty_more = async || {
        let target = *served_rx.borrow_and_update() + 50;
        tokio::time::timeout(PATIENCE, served_rx.wait_for(|n| *n >= target))
            .await
            .expect("the load stopped being served")
            .unwrap();
    };
    fifty_more().await;

    // ...while each replica in turn leaves the rotation, drains, stops and
    // comes back on its port, as a Deployment's rolling update does.
    let mut replicas = [Some(replica_a), Some(replica_b)];
    for (i, slot) in replicas.iter_mut().enumerate() {
        proxy
            .admin(&format!("set server stats/s{i} state maint"))
            .await;
        let old = slot.take().unwrap();
        let addr = old.addr;
        old.stop().await;
        // Everything goes to the other replica meanwhile.
        fifty_more().await;
        let back = Stats::start_on(TcpListener::bind(addr).await.unwrap(), &endpoint, |_| {}).await;
        back.wait_serving().await;
        *slot = Some(back);
        proxy
            .admin(&format!("set server stats/s{i} state ready"))
            .await;
        fifty_more().await;
    }
    stop_load.send(true).unwrap();
    while let Some(t) = load.join_next().await {
        t.unwrap();
    }
    assert_eq!(
        failed.load(Ordering::Relaxed),
        0,
        "calls failed during the rolling restart ({} served)",
        *served_rx.borrow()
    );
}
