//! Both services behind a real HTTP/2 proxy standing in for a mesh
//! sidecar or kube-proxy: HAProxy (from Debian's packages; `scripts/setup`
//! installs it, `HAPROXY` overrides the path), health-checking every
//! replica through `GET /ready` on its metrics port.
//!
//! The replicas are the real binaries: two `zgc-registry` over one etcd
//! cluster and two `zgc-stats` following the registry through the proxy.
//! Under steady client load (reads of both services and writes), each
//! replica in turn gets a plain SIGTERM, as Kubernetes sends it: nobody
//! takes it out of the proxy's rotation first. The replica must do that
//! itself (NOT_SERVING, then serving on through its shutdown delay while
//! the proxy's health checks notice), then drain and exit 0; it comes back
//! on the same ports. Not one call may fail.
//!
//! `ZGC_SOAK_ROLLS=N` repeats the rolling restart N times: a soak, not
//! for CI, run outside nextest (whose timeout would stop it):
//! `ZGC_SOAK_ROLLS=30 cargo test -p zgc-tests --test behind_a_proxy -- --nocapture`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
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
use zgc_tests::binaries::Server;
use zgc_tests::company;

const PATIENCE: Duration = Duration::from_secs(120);

/// The replicas' shutdown delay: far longer than the proxy takes to see
/// `/ready` fail (checks every 100 ms, out after one failure), so that even
/// on a loaded machine no call is sent to a replica that has stopped
/// accepting.
const SHUTDOWN_DELAY_SECS: &str = "2";

fn haproxy_binary() -> std::path::PathBuf {
    zgc_tests::tools::tool("haproxy", "HAPROXY")
}

/// A proxy backend: its name and its replicas.
struct Backend<'a> {
    name: &'static str,
    replicas: &'a [&'a Server],
}

/// The proxy's configuration: registry calls by path to the registry
/// replicas, everything else (stats calls, health checks) to the stats
/// replicas, round-robin, HTTP/2 in cleartext on both sides, as between
/// sidecars. Each replica is health-checked with `GET /ready` on its
/// metrics port. The proxy retries nothing (as kube-proxy cannot): a call
/// sent to a replica that no longer accepts fails, so the replicas must
/// leave the rotation on their own before they stop. Every request is logged to stderr (shown when the test
/// fails): a response cut short by a server shows as termination state
/// `SD--`.
fn config(dir: &Path, listen: u16, backends: &[Backend<'_>]) -> String {
    let d = dir.display();
    let backends: String = backends
        .iter()
        .map(|b| {
            let servers: String = b
                .replicas
                .iter()
                .enumerate()
                .map(|(i, r)| {
                    format!(
                        "  server {}{i} {} proto h2 port {}\n",
                        b.name,
                        r.addr,
                        r.metrics_addr.port()
                    )
                })
                .collect();
            format!(
                "backend {}\n  balance roundrobin\n  option httpchk GET /ready\n  \
                 default-server check inter 100ms fall 1 rise 1 check-proto h1\n{servers}",
                b.name
            )
        })
        .collect();
    format!(
        "global
  stats socket {d}/admin.sock level admin
defaults
  log stderr format raw local0
  option httplog
  option log-health-checks
  mode http
  timeout connect 5s
  timeout client 1h
  timeout server 1h
  timeout check 2s
  retry-on none
frontend grpc
  bind 127.0.0.1:{listen} proto h2
  use_backend registry if {{ path_beg /zgc.registry.v1.RegistryService/ }}
  default_backend stats
{backends}"
    )
}

/// HAProxy, serving until dropped.
struct Proxy {
    addr: SocketAddr,
    admin: std::path::PathBuf,
    _child: Child,
}

impl Proxy {
    /// Starts HAProxy on `port`, which the caller chose free.
    async fn start(dir: &Path, port: u16, backends: &[Backend<'_>]) -> Self {
        let conf = dir.join("haproxy.cfg");
        std::fs::write(&conf, config(dir, port, backends)).unwrap();
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
        tokio::time::timeout(PATIENCE, async {
            loop {
                if let Ok(Some(status)) = child.try_wait() {
                    panic!("haproxy exited ({status}); its messages are on stderr above");
                }
                if tokio::net::TcpStream::connect(addr).await.is_ok() {
                    return;
                }
                // HAProxy binds its port within milliseconds of starting.
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await
        .expect("haproxy never started");
        Self {
            addr,
            admin: dir.join("admin.sock"),
            _child: child,
        }
    }

    async fn channel(&self) -> Channel {
        Channel::from_shared(format!("http://{}", self.addr))
            .unwrap()
            .connect()
            .await
            .unwrap()
    }

    /// Runs a read-only admin command and returns its answer.
    async fn admin(&self, command: &str) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut socket = tokio::net::UnixStream::connect(&self.admin).await.unwrap();
        socket
            .write_all(format!("{command}\n").as_bytes())
            .await
            .unwrap();
        let mut answer = String::new();
        socket.read_to_string(&mut answer).await.unwrap();
        answer
    }

    /// Waits until the proxy's health checks have every replica of
    /// `backend` in its rotation (HAProxy's operational state 2, UP).
    async fn wait_all_up(&self, backend: &str) {
        tokio::time::timeout(PATIENCE, async {
            loop {
                let state = self.admin(&format!("show servers state {backend}")).await;
                // Columns: be_id be_name srv_id srv_name srv_addr
                // srv_op_state ...; the first line is a version, the
                // second the header.
                let states: Vec<&str> = state
                    .lines()
                    .filter(|l| !l.starts_with('#') && l.split_whitespace().count() > 5)
                    .map(|l| l.split_whitespace().nth(5).unwrap())
                    .collect();
                if !states.is_empty() && states.iter().all(|s| *s == "2") {
                    return;
                }
                // HAProxy checks every 100 ms; ask again at that pace.
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
        .await
        .unwrap_or_else(|_| panic!("the proxy never saw every {backend} replica up"));
    }
}

/// A port free at the moment (the proxy's; the stats replicas need its
/// address before it starts).
async fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
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

/// Which service a replica runs.
#[derive(Clone, Copy)]
enum Kind {
    Registry,
    Stats,
}

impl Kind {
    fn binary(self) -> &'static str {
        match self {
            Kind::Registry => "zgc-registry",
            Kind::Stats => "zgc-stats",
        }
    }

    fn backend(self) -> &'static str {
        match self {
            Kind::Registry => "registry",
            Kind::Stats => "stats",
        }
    }
}

/// One replica: what it runs, with which flags, and the process.
struct Replica {
    kind: Kind,
    label: String,
    args: Vec<String>,
    server: Option<Server>,
}

impl Replica {
    async fn start(kind: Kind, label: String, args: Vec<String>) -> Self {
        let any = SocketAddr::from(([127, 0, 0, 1], 0));
        let server = Server::start(kind.binary(), &label, any, any, &args).await;
        Self {
            kind,
            label,
            args,
            server: Some(server),
        }
    }

    fn server(&self) -> &Server {
        self.server.as_ref().unwrap()
    }
}

/// Calls made and failed by the load, and the companies it created.
#[derive(Default)]
struct Tally {
    failures: Vec<String>,
    created: Vec<String>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_restart_by_sigterm_alone_fails_no_call() {
    let dir = tempfile::tempdir().unwrap();
    let etcd = zgc_tests::etcd::cluster(1).await;
    let proxy_port = free_port().await;
    let delay = [
        "--shutdown-delay-secs".to_string(),
        SHUTDOWN_DELAY_SECS.into(),
    ];

    // A small retention, as a deployment has: etcd's history is compacted,
    // so a restarted replica loads a snapshot instead of replaying every
    // revision the soak wrote.
    let registry_args: Vec<String> = [
        "--etcd-endpoints".to_string(),
        etcd.endpoints().join(","),
        "--retention".into(),
        "10000".into(),
    ]
    .into_iter()
    .chain(delay.clone())
    .collect();
    let stats_args: Vec<String> = [
        "--registry-addr".to_string(),
        format!("http://127.0.0.1:{proxy_port}"),
        "--backoff-max-ms".into(),
        "200".into(),
    ]
    .into_iter()
    .chain(delay.clone())
    .collect();
    let mut replicas = Vec::new();
    for i in 0..2 {
        replicas.push(
            Replica::start(
                Kind::Registry,
                format!("registry{i}"),
                registry_args.clone(),
            )
            .await,
        );
    }
    for i in 0..2 {
        replicas.push(Replica::start(Kind::Stats, format!("stats{i}"), stats_args.clone()).await);
    }
    let proxy = {
        let registry: Vec<&Server> = replicas[..2].iter().map(Replica::server).collect();
        let stats: Vec<&Server> = replicas[2..].iter().map(Replica::server).collect();
        Proxy::start(
            dir.path(),
            proxy_port,
            &[
                Backend {
                    name: "registry",
                    replicas: &registry,
                },
                Backend {
                    name: "stats",
                    replicas: &stats,
                },
            ],
        )
        .await
    };
    // HAProxy counts a server up until its first check fails: wait for
    // the replicas themselves first.
    for replica in &replicas {
        replica.server().wait_ready().await;
    }
    proxy.wait_all_up("registry").await;
    proxy.wait_all_up("stats").await;
    let channel = proxy.channel().await;

    // Unary calls, the change stream and health checks, through the proxy.
    let mut registry = RegistryServiceClient::new(channel.clone());
    let mut stream = registry
        .watch_changes(WatchChangesRequest { start_revision: 0 })
        .await
        .unwrap()
        .into_inner();
    let created = registry
        .create_company(CreateCompanyRequest {
            company: Some(company("Proxied", "Tianjin", "Tianjin")),
            company_id: "proxied".into(),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    tokio::time::timeout(PATIENCE, async {
        loop {
            let msg = stream.message().await.unwrap().unwrap();
            if msg.events.iter().any(|e| e.revision == created.revision) {
                return;
            }
        }
    })
    .await
    .expect("the stream through the proxy never showed the write");
    drop(stream);
    let status = HealthClient::new(channel.clone())
        .check(HealthCheckRequest {
            service: "zgc.stats.v1.StatsService".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .status;
    assert_eq!(status, ServingStatus::Serving as i32);

    // Steady load through the proxy: summaries, reads and listings of the
    // registry, and writes (each with a request_id, as a client that
    // retries would send them).
    let (served, mut served_rx) = watch::channel(0u64);
    let served = Arc::new(served);
    let tally = Arc::new(Mutex::new(Tally::default()));
    let (stop_load, load_stopped) = watch::channel(false);
    let mut load = tokio::task::JoinSet::new();
    for worker in 0..4 {
        let mut stats = StatsServiceClient::new(channel.clone());
        let mut registry = RegistryServiceClient::new(channel.clone());
        let (served, tally, mut stopped) = (served.clone(), tally.clone(), load_stopped.clone());
        load.spawn(async move {
            let mut n = 0u64;
            while !*stopped.borrow_and_update() {
                n += 1;
                let result = match n % 4 {
                    0 => stats.get_summary(summary()).await.map(drop),
                    1 => registry
                        .get_company(GetCompanyRequest {
                            name: "companies/proxied".into(),
                        })
                        .await
                        .map(drop),
                    2 => registry
                        .list_companies(ListCompaniesRequest {
                            page_size: 10,
                            ..Default::default()
                        })
                        .await
                        .map(drop),
                    _ => {
                        let id = format!("load-{worker}-{n}");
                        let created = registry
                            .create_company(CreateCompanyRequest {
                                company: Some(company(&id, "Tianjin", "Tianjin")),
                                company_id: id.clone(),
                                request_id: uuid::Uuid::new_v4().to_string(),
                            })
                            .await;
                        if created.is_ok() {
                            tally.lock().unwrap().created.push(id);
                        }
                        created.map(drop)
                    }
                };
                match result {
                    Ok(()) => served.send_modify(|n| *n += 1),
                    Err(status) => tally.lock().unwrap().failures.push(format!("{status:?}")),
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

    // Each replica in turn: SIGTERM and nothing else, a clean exit, load
    // served by the others meanwhile, back on the same ports.
    let rolls: usize = std::env::var("ZGC_SOAK_ROLLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    for roll in 0..rolls {
        for replica in &mut replicas {
            eprintln!("roll {roll}: SIGTERM to {}", replica.label);
            let old = replica.server.take().unwrap();
            let (addr, metrics_addr) = (old.addr, old.metrics_addr);
            old.signal("TERM");
            assert_eq!(
                old.wait().await,
                Some(0),
                "{} did not exit cleanly after SIGTERM",
                replica.label
            );
            fifty_more().await;
            replica.server = Some(
                Server::start(
                    replica.kind.binary(),
                    &replica.label,
                    addr,
                    metrics_addr,
                    &replica.args,
                )
                .await,
            );
            replica.server().wait_ready().await;
            proxy.wait_all_up(replica.kind.backend()).await;
            fifty_more().await;
        }
    }
    stop_load.send(true).unwrap();
    while let Some(t) = load.join_next().await {
        t.unwrap();
    }
    let tally = std::mem::take(&mut *tally.lock().unwrap());
    assert!(
        tally.failures.is_empty(),
        "{} of {} calls failed during the rolling restart: {:#?}",
        tally.failures.len(),
        *served_rx.borrow() + tally.failures.len() as u64,
        tally.failures
    );
    eprintln!(
        "rolling restart: {rolls} rolls, {} SIGTERMs; {} calls served, none failed; {} writes acknowledged",
        rolls * replicas.len(),
        *served_rx.borrow(),
        tally.created.len()
    );
    // Every acknowledged write is there.
    for id in &tally.created {
        registry
            .get_company(GetCompanyRequest {
                name: format!("companies/{id}"),
            })
            .await
            .unwrap_or_else(|e| panic!("acknowledged write {id} is lost: {e:?}"));
    }
}
