//! The suite: start the servers, load the data, run every scenario a few
//! times, and report medians beside the baselines and the targets.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use prost::Message;
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use zgc_proto::registry::v1::registry_service_client::RegistryServiceClient;
use zgc_proto::registry::v1::*;
use zgc_proto::stats::v1::stats_service_client::StatsServiceClient;
use zgc_proto::stats::v1::{GetSummaryRequest, Scope, scope};
use zgc_proto::types::v1::Location;

use crate::load::{self, LoadResult};
use crate::procs::{self, Server};

/// How the suite runs.
#[derive(Debug, Clone, clap::Args)]
pub struct Options {
    /// Companies loaded before the scenarios run.
    #[arg(long, default_value_t = 100_000)]
    pub companies: u64,
    /// Runs of each scenario; the report shows medians.
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    /// Seconds each run of a scenario lasts.
    #[arg(long, default_value_t = 10.0)]
    pub seconds: f64,
    /// Calls in flight.
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// Connections the calls are spread over.
    #[arg(long, default_value_t = 4)]
    pub connections: usize,
    /// A small, fast run that only checks the suite works (CI).
    #[arg(long)]
    pub quick: bool,
    /// Directory for `results.json` and `results.md`.
    #[arg(long, default_value = "target/bench")]
    pub out: PathBuf,
}

/// Why the suite failed.
#[derive(Debug, thiserror::Error)]
pub enum SuiteError {
    /// A server would not start.
    #[error(transparent)]
    Proc(#[from] procs::ProcError),
    /// A connection failed.
    #[error("connect: {0}")]
    Connect(#[from] tonic::transport::Error),
    /// A setup call failed.
    #[error("setup call failed: {0}")]
    Call(#[from] tonic::Status),
    /// Files.
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    /// A scenario had errors.
    #[error("{0}")]
    Failed(String),
}

/// The payload GetCompany returns here, also the echo baseline's reply.
pub fn sample_company() -> Company {
    Company {
        name: "companies/bench-sample".into(),
        uid: "00000000-0000-4000-8000-000000000000".into(),
        display_name: "Zhongguancun Bench Sample Technology Co., Ltd.".into(),
        park: "parks/zgc".into(),
        location: Some(Location {
            province: "Beijing".into(),
            city: "Beijing".into(),
            district: "Haidian".into(),
        }),
        sectors: vec!["software".into(), "ai".into()],
        employees: 420,
        investment_cny: 50_000_000,
        high_tech: true,
        revision: 1,
        etag: "\"1\"".into(),
        ..Default::default()
    }
}

async fn channel(addr: std::net::SocketAddr) -> Result<Channel, SuiteError> {
    Ok(Channel::from_shared(format!("http://{addr}"))
        .map_err(|e| SuiteError::Failed(e.to_string()))?
        .connect()
        .await?)
}

async fn channels(addr: std::net::SocketAddr, n: usize) -> Result<Vec<Channel>, SuiteError> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n.max(1) {
        out.push(channel(addr).await?);
    }
    Ok(out)
}

async fn wait_serving(addr: std::net::SocketAddr) -> Result<(), SuiteError> {
    let mut health = HealthClient::new(channel(addr).await?);
    let mut stream = health
        .watch(HealthCheckRequest {
            service: String::new(),
        })
        .await?
        .into_inner();
    while let Some(update) = stream.message().await? {
        if update.status == ServingStatus::Serving as i32 {
            return Ok(());
        }
    }
    Err(SuiteError::Failed("health stream ended".into()))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

/// One scenario's medians.
#[derive(Debug, Clone, Default)]
struct Measured {
    name: &'static str,
    throughput: f64,
    p50_us: f64,
    p99_us: f64,
    server_cpu_s: f64,
}

async fn scenario<F, Fut>(
    name: &'static str,
    o: &Options,
    channels: &[Channel],
    server: Option<&Server>,
    call: F,
) -> Result<Measured, SuiteError>
where
    F: Fn(Channel, u64) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<(), tonic::Status>> + Send,
{
    let (mut tput, mut p50, mut p99, mut cpu) = (vec![], vec![], vec![], vec![]);
    for _ in 0..o.runs.max(1) {
        let before = server.map_or(0.0, Server::cpu_seconds);
        let r: LoadResult = load::run(
            channels,
            o.concurrency,
            Duration::from_secs_f64(o.seconds),
            call.clone(),
        )
        .await;
        if r.errors > 0 || r.calls == 0 {
            return Err(SuiteError::Failed(format!(
                "{name}: {} calls failed, {} succeeded",
                r.errors, r.calls
            )));
        }
        cpu.push(server.map_or(0.0, Server::cpu_seconds) - before);
        tput.push(r.throughput());
        p50.push(r.percentile_us(0.5) as f64);
        p99.push(r.percentile_us(0.99) as f64);
    }
    let m = Measured {
        name,
        throughput: median(tput),
        p50_us: median(p50),
        p99_us: median(p99),
        server_cpu_s: median(cpu),
    };
    eprintln!(
        "{name:>10}: {:>9.0} calls/s  p50 {:>6.0} µs  p99 {:>7.0} µs",
        m.throughput, m.p50_us, m.p99_us
    );
    Ok(m)
}

/// Loads the generated companies in batches of 1,000; returns their
/// encoded size and the names created.
async fn import(
    registry: &[Channel],
    companies: u64,
) -> Result<(Duration, u64, Vec<String>), SuiteError> {
    let mut client =
        RegistryServiceClient::new(registry[0].clone()).max_encoding_message_size(64 << 20);
    let mut batches: Vec<Vec<CreateCompanyRequest>> = vec![];
    let mut encoded = 0u64;
    let mut names = Vec::new();
    let started = Instant::now();
    for entity in zgc_dataset::generate(companies, 11) {
        match entity.kind {
            Some(entity::Kind::Park(p)) => {
                let id = p.name.trim_start_matches("parks/").to_string();
                client
                    .create_park(CreateParkRequest {
                        park: Some(Park {
                            name: String::new(),
                            ..p
                        }),
                        park_id: id,
                        request_id: String::new(),
                    })
                    .await?;
            }
            Some(entity::Kind::Company(c)) => {
                encoded += c.encoded_len() as u64;
                let id = c.name.trim_start_matches("companies/").to_string();
                names.push(c.name.clone());
                if batches.last().is_none_or(|b| b.len() >= 1000) {
                    batches.push(Vec::with_capacity(1000));
                }
                if let Some(b) = batches.last_mut() {
                    b.push(CreateCompanyRequest {
                        company: Some(Company {
                            name: String::new(),
                            ..c
                        }),
                        company_id: id,
                        request_id: String::new(),
                    });
                }
            }
            None => {}
        }
    }
    // One batch at a time, in order: a branch's parent may be in the
    // batch before.
    for requests in batches {
        client
            .batch_create_companies(BatchCreateCompaniesRequest {
                requests,
                request_id: String::new(),
            })
            .await?;
    }
    Ok((started.elapsed(), encoded, names))
}

fn summary_request() -> GetSummaryRequest {
    GetSummaryRequest {
        scope: Some(Scope {
            selector: Some(scope::Selector::All(true)),
            include_affiliates: false,
        }),
        min_revision: 0,
    }
}

/// Runs the suite.
pub async fn run(mut o: Options) -> Result<(), SuiteError> {
    if o.quick {
        o.companies = o.companies.min(3_000);
        o.seconds = o.seconds.min(0.5);
        o.concurrency = o.concurrency.min(16);
    }
    let data = tempfile::tempdir()?;
    let data_dir = data.path().join("registry");
    let json = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();

    // The transport baseline.
    let echo = Server::spawn(
        &std::env::current_exe()?,
        &json(&["echo-server", "--listen", "127.0.0.1:0"]),
    )
    .await?;
    // The registry, with the default (fsync) durability.
    let registry_args = |dir: &std::path::Path| {
        let mut a = json(&[
            "--listen",
            "127.0.0.1:0",
            "--log-format",
            "json",
            "--data-dir",
        ]);
        a.push(dir.display().to_string());
        a
    };
    let registry_bin = procs::sibling("zgc-registry");
    let mut registry = Server::spawn(&registry_bin, &registry_args(&data_dir)).await?;
    wait_serving(registry.addr).await?;
    let reg = channels(registry.addr, o.connections).await?;

    eprintln!("importing {} companies...", o.companies);
    let (import_time, encoded, names) = import(&reg, o.companies).await?;
    eprintln!("imported in {:.1} s", import_time.as_secs_f64());
    let names = std::sync::Arc::new(names);

    // The stats service: time to its first snapshot.
    let stats_bin = procs::sibling("zgc-stats");
    let mut stats_args = json(&[
        "--listen",
        "127.0.0.1:0",
        "--log-format",
        "json",
        "--registry-addr",
    ]);
    stats_args.push(format!("http://{}", registry.addr));
    let stats = Server::spawn(&stats_bin, &stats_args).await?;
    wait_serving(stats.addr).await?;
    let sync_time = stats.started.elapsed();
    let st = channels(stats.addr, o.connections).await?;
    let ech = channels(echo.addr, o.connections).await?;

    let mut results = vec![];
    results.push(
        scenario("echo", &o, &ech, Some(&echo), |ch, _| async move {
            let mut grpc = tonic::client::Grpc::new(ch);
            grpc.ready()
                .await
                .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
            let codec = tonic_prost::ProstCodec::<GetCompanyRequest, Company>::default();
            grpc.unary(
                tonic::Request::new(GetCompanyRequest {
                    name: "companies/bench-sample".into(),
                }),
                http::uri::PathAndQuery::from_static(crate::echo::PATH),
                codec,
            )
            .await
            .map(|_| ())
        })
        .await?,
    );
    let get_names = names.clone();
    results.push(
        scenario("get", &o, &reg, Some(&registry), move |ch, n| {
            let name = get_names[(n as usize * 7919) % get_names.len().max(1)].clone();
            async move {
                RegistryServiceClient::new(ch)
                    .get_company(GetCompanyRequest { name })
                    .await
                    .map(|_| ())
            }
        })
        .await?,
    );
    results.push(
        scenario("summary", &o, &st, Some(&stats), |ch, _| async move {
            StatsServiceClient::new(ch)
                .get_summary(summary_request())
                .await
                .map(|_| ())
        })
        .await?,
    );
    results.push(
        scenario("create", &o, &reg, Some(&registry), |ch, _| async move {
            static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
            let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let mut c = sample_company();
            c.name = String::new();
            c.uid = String::new();
            c.etag = String::new();
            c.revision = 0;
            c.park = String::new();
            RegistryServiceClient::new(ch)
                .create_company(CreateCompanyRequest {
                    company: Some(c),
                    company_id: format!("bench-{n}"),
                    request_id: String::new(),
                })
                .await
                .map(|_| ())
        })
        .await?,
    );

    let disk = procs::dir_bytes(&data_dir);
    let registry_rss = registry.peak_rss();
    let stats_rss = stats.peak_rss();

    // Restart: SIGKILL, then time to SERVING on the full store.
    registry.child.kill().await?;
    let restarted = Server::spawn(&registry_bin, &registry_args(&data_dir)).await?;
    wait_serving(restarted.addr).await?;
    let restart_time = restarted.started.elapsed();
    registry = restarted;
    drop(registry);

    let echo_tput = results
        .iter()
        .find(|m| m.name == "echo")
        .map_or(0.0, |m| m.throughput);
    let ratio = |name: &str| {
        results
            .iter()
            .find(|m| m.name == name)
            .map_or(0.0, |m| m.throughput / echo_tput.max(1e-9))
    };
    let report = serde_json::json!({
        "command": std::env::args().collect::<Vec<_>>().join(" "),
        "companies": o.companies,
        "runs": o.runs,
        "seconds_per_run": o.seconds,
        "concurrency": o.concurrency,
        "connections": o.connections,
        "scenarios": results.iter().map(|m| serde_json::json!({
            "name": m.name,
            "throughput_per_s": m.throughput,
            "p50_us": m.p50_us,
            "p99_us": m.p99_us,
            "server_cpu_s": m.server_cpu_s,
        })).collect::<Vec<_>>(),
        "import_s": import_time.as_secs_f64(),
        "stats_sync_s": sync_time.as_secs_f64(),
        "registry_restart_s": restart_time.as_secs_f64(),
        "registry_peak_rss_bytes": registry_rss,
        "stats_peak_rss_bytes": stats_rss,
        "disk_bytes": disk,
        "encoded_company_bytes": encoded,
        "ratios": {
            "get_vs_echo": ratio("get"),
            "summary_vs_echo": ratio("summary"),
            "disk_vs_encoded": disk as f64 / (encoded.max(1)) as f64,
        },
    });
    std::fs::create_dir_all(&o.out)?;
    let path = o.out.join("results.json");
    std::fs::write(
        &path,
        serde_json::to_string_pretty(&report).unwrap_or_default(),
    )?;
    eprintln!(
        "get/echo {:.2}, summary/echo {:.2}, import {:.1} s, sync {:.1} s, restart {:.2} s, \
         registry RSS {} MiB, stats RSS {} MiB, disk {:.2}x encoded",
        ratio("get"),
        ratio("summary"),
        import_time.as_secs_f64(),
        sync_time.as_secs_f64(),
        restart_time.as_secs_f64(),
        registry_rss >> 20,
        stats_rss >> 20,
        disk as f64 / (encoded.max(1)) as f64
    );
    eprintln!("results: {}", path.display());
    Ok(())
}
