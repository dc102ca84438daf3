//! The suite: start the servers, load the data, run every scenario a few
//! times beside its baselines, and write `results.json` and the report.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use prost::Message;
use tonic::transport::Channel;
use zgc_proto::registry::v1::registry_service_client::RegistryServiceClient;
use zgc_proto::registry::v1::{
    Company, GetCompanyRequest, ListCompaniesRequest, ListCompaniesResponse,
};
use zgc_proto::stats::v1::stats_service_client::StatsServiceClient;
use zgc_proto::stats::v1::{GetSummaryRequest, Scope, Summary};

use crate::dataset::{self, Loaded};
use crate::listings::{self, Shape};
use crate::postgres::{self, Postgres};
use crate::procs::{self, Server};
use crate::results::{self, CpuUse, Freshness, ListComparison, Median, Results, SqlComparison};
use crate::scenarios::{self, Scenario, Target};
use crate::server_latency;
use crate::{echo, etcd, load, report, sled_loop};

/// How the suite runs.
#[derive(Debug, Clone, clap::Args)]
pub struct Options {
    /// Companies loaded before the scenarios run (the targets are defined
    /// at 1,000,000).
    #[arg(long, default_value_t = 100_000)]
    pub companies: u64,
    /// Runs of each scenario and of each one-off measurement; the report
    /// shows medians.
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    /// Seconds each run of a load scenario lasts.
    #[arg(long, default_value_t = 5.0)]
    pub seconds: f64,
    /// Calls in flight.
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// Connections the calls are spread over.
    #[arg(long, default_value_t = 4)]
    pub connections: usize,
    /// BatchCreateCompanies calls the import keeps in flight (as `zgc
    /// import --in-flight`).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u8).range(1..=16))]
    pub import_in_flight: u8,
    /// Writes per second in the freshness scenario.
    #[arg(long, default_value_t = 1000)]
    pub freshness_rate: u32,
    /// Calls per second in the open-loop scenarios, instead of half the
    /// echo's closed-loop throughput: to see a scenario at a rate it can
    /// sustain (e.g. whether reads wait on the writer in `mixed`).
    #[arg(long)]
    pub open_loop_rate: Option<u32>,
    /// Leave out the PostgreSQL baseline (its targets then read "not
    /// measured").
    #[arg(long)]
    pub skip_postgres: bool,
    /// Leave out the registry on etcd (its targets then read "not
    /// measured").
    #[arg(long)]
    pub skip_etcd: bool,
    /// Registry replicas over the etcd cluster in the replicas scenario.
    #[arg(long, default_value_t = 3)]
    pub etcd_replicas: usize,
    /// Run only these load scenarios and measurements (comma-separated
    /// names as in the report, e.g. `get,summary/all,freshness,postgres,
    /// raw-sled`), for profiling; a scenario's echo baseline runs with it.
    /// Import, sync and restart always run.
    #[arg(long, value_delimiter = ',')]
    pub only: Vec<String>,
    /// A small, fast run that only checks the suite works (CI).
    #[arg(long)]
    pub quick: bool,
    /// Directory for `results.json` (and `BENCHMARKS.md` unless
    /// `--markdown` says elsewhere).
    #[arg(long, default_value = "target/bench")]
    pub out: PathBuf,
    /// The Markdown report to write; an existing file keeps what is
    /// outside its generated part (pass the repository's BENCHMARKS.md).
    #[arg(long)]
    pub markdown: Option<PathBuf>,
}

/// Why the suite failed.
#[derive(Debug, thiserror::Error)]
pub enum SuiteError {
    /// A server would not start.
    #[error(transparent)]
    Proc(#[from] procs::ProcError),
    /// The PostgreSQL baseline.
    #[error(transparent)]
    Postgres(#[from] postgres::PgError),
    /// The etcd cluster.
    #[error(transparent)]
    Etcd(#[from] zgc_etcd::cluster::ClusterError),
    /// A connection failed.
    #[error("connect: {0}")]
    Connect(#[from] tonic::transport::Error),
    /// A setup call failed.
    #[error("setup call failed: {0}")]
    Call(#[from] tonic::Status),
    /// Files.
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    /// results.json.
    #[error("results: {0}")]
    Json(#[from] serde_json::Error),
    /// A scenario had errors, or figures disagree.
    #[error("{0}")]
    Failed(String),
}

async fn channel(addr: SocketAddr) -> Result<Channel, SuiteError> {
    Ok(Channel::from_shared(format!("http://{addr}"))
        .map_err(|e| SuiteError::Failed(e.to_string()))?
        .connect()
        .await?)
}

async fn channels(addr: SocketAddr, n: usize) -> Result<Vec<Channel>, SuiteError> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n.max(1) {
        out.push(channel(addr).await?);
    }
    Ok(out)
}

async fn wait_serving(addr: SocketAddr) -> Result<(), SuiteError> {
    zgc_client::health::wait_serving(channel(addr).await?, "")
        .await
        .map_err(|e| SuiteError::Failed(format!("{addr}: {e}")))
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// A server's arguments: loopback ports for gRPC and metrics, JSON logs,
/// then `flag value`.
fn server_args(flag: &str, value: String) -> Vec<String> {
    let mut a = strings(&[
        "--listen",
        "127.0.0.1:0",
        "--metrics-listen",
        "127.0.0.1:0",
        "--log-format",
        "json",
        flag,
    ]);
    a.push(value);
    a
}

fn registry_args(dir: &Path) -> Vec<String> {
    server_args("--data-dir", dir.display().to_string())
}

fn stats_args(registry: SocketAddr) -> Vec<String> {
    server_args("--registry-addr", format!("http://{registry}"))
}

/// The servers under load, and connections to each.
struct Servers {
    echo: Server,
    observed_echo: Server,
    registry: Server,
    stats: Server,
    to_echo: Vec<Channel>,
    to_observed_echo: Vec<Channel>,
    to_registry: Vec<Channel>,
    to_stats: Vec<Channel>,
}

impl Servers {
    fn of(&self, target: Target) -> (&Server, &[Channel]) {
        match target {
            Target::Echo => (&self.echo, &self.to_echo),
            Target::ObservedEcho => (&self.observed_echo, &self.to_observed_echo),
            Target::Registry => (&self.registry, &self.to_registry),
            Target::Stats => (&self.stats, &self.to_stats),
        }
    }
}

async fn latency_buckets(
    server: &Server,
    method: Option<(&str, &str)>,
) -> Option<server_latency::Buckets> {
    let (service, method) = method?;
    let page = server_latency::scrape(server.metrics_addr?).await.ok()?;
    Some(server_latency::buckets(&page, service, method))
}

/// What the runs of one scenario measured.
#[derive(Default)]
struct Runs {
    tput: Vec<f64>,
    p50: Vec<f64>,
    p99: Vec<f64>,
    server_p99: Vec<f64>,
    cpu: Vec<f64>,
}

/// Runs one closed-loop run of `s` and adds its figures to `runs`.
async fn run_once(
    o: &Options,
    servers: &Servers,
    s: &Scenario,
    runs: &mut Runs,
) -> Result<(), SuiteError> {
    let (server, connections) = servers.of(s.target);
    let before = latency_buckets(server, s.method).await;
    let cpu_before = server.cpu_seconds();
    let call = s.call.clone();
    let r = load::closed(
        connections,
        o.concurrency,
        Duration::from_secs_f64(o.seconds),
        move |ch, n| call(ch, n),
    )
    .await;
    if r.errors > 0 || r.calls == 0 {
        return Err(SuiteError::Failed(format!(
            "{}: {} calls failed ({}), {} succeeded",
            s.name,
            r.errors,
            r.first_error.unwrap_or_default(),
            r.calls
        )));
    }
    runs.cpu
        .push((server.cpu_seconds() - cpu_before) / r.calls as f64);
    if let (Some(before), Some(after)) = (before, latency_buckets(server, s.method).await)
        && let Some(q) = after.since(&before).quantile(0.99)
    {
        runs.server_p99.push(q * 1e6);
    }
    runs.tput.push(r.throughput());
    runs.p50.push(r.percentile_us(0.5) as f64);
    runs.p99.push(r.percentile_us(0.99) as f64);
    Ok(())
}

/// Runs each scenario of `group` `o.runs` times, taking turns (a run of
/// each, then the next run of each), so a scenario and the baseline it is
/// compared with see the shared machine in the same states.
async fn measure(
    o: &Options,
    servers: &Servers,
    group: &[&Scenario],
) -> Result<Vec<results::Scenario>, SuiteError> {
    let mut runs: Vec<Runs> = group.iter().map(|_| Runs::default()).collect();
    for _ in 0..o.runs.max(1) {
        for (s, r) in group.iter().zip(&mut runs) {
            run_once(o, servers, s, r).await?;
        }
    }
    let mut out = Vec::with_capacity(group.len());
    for (s, r) in group.iter().zip(runs) {
        let m = results::Scenario {
            name: s.name.clone(),
            description: s.description.clone(),
            throughput_per_s: Median::of(r.tput),
            p50_us: Median::of(r.p50).median,
            p99_us: Median::of(r.p99).median,
            server_p99_us: (!r.server_p99.is_empty()).then(|| Median::of(r.server_p99).median),
            server_cpu_ms_per_call: Median::of(r.cpu).median * 1000.0,
        };
        eprintln!(
            "{:>28}: {:>8.0} calls/s  p50 {:>6.0} µs  p99 {:>7.0} µs  server p99 {}",
            m.name,
            m.throughput_per_s.median,
            m.p50_us,
            m.p99_us,
            m.server_p99_us.map_or("-".into(), |v| format!("{v:.0} µs"))
        );
        out.push(m);
    }
    Ok(out)
}

/// Imports into a fresh registry; returns it with what was loaded.
async fn fresh_registry(o: &Options, dir: &Path) -> Result<(Server, Loaded), SuiteError> {
    let registry = Server::spawn(&procs::sibling("zgc-registry"), &registry_args(dir)).await?;
    wait_serving(registry.addr).await?;
    let loaded = dataset::import(
        channel(registry.addr).await?,
        o.companies,
        usize::from(o.import_in_flight),
    )
    .await?;
    eprintln!(
        "imported {} companies in {:.1} s",
        o.companies,
        loaded.took.as_secs_f64()
    );
    Ok((registry, loaded))
}

/// Of up to 101 stored companies spread over the store, the one of median
/// encoded size.
async fn median_company(registry: SocketAddr, names: &[String]) -> Result<Company, SuiteError> {
    let mut client = RegistryServiceClient::new(channel(registry).await?);
    let step = (names.len() / 101).max(1);
    let mut companies = Vec::with_capacity(101);
    for name in names.iter().step_by(step).take(101) {
        let request = GetCompanyRequest { name: name.clone() };
        companies.push(client.get_company(request).await?.into_inner());
    }
    companies.sort_by_key(|c| c.encoded_len());
    let middle = companies.len() / 2;
    companies
        .into_iter()
        .nth(middle)
        .ok_or_else(|| SuiteError::Failed("no company was imported".into()))
}

/// The stats service's summary of each scope.
async fn summaries(
    stats: SocketAddr,
    scopes: &[(String, Scope)],
) -> Result<Vec<(Scope, Summary)>, SuiteError> {
    let mut client = StatsServiceClient::new(channel(stats).await?);
    let mut out = Vec::with_capacity(scopes.len());
    for (_, scope) in scopes {
        let summary = client
            .get_summary(GetSummaryRequest {
                scope: Some(scope.clone()),
                min_revision: 0,
            })
            .await?
            .into_inner();
        out.push((scope.clone(), summary));
    }
    Ok(out)
}

/// The answers of the stats RPCs that [`scenarios::listed_stats`] calls,
/// for their echoes.
async fn listed_stats(stats: SocketAddr) -> Result<echo::Replies, SuiteError> {
    let mut client = StatsServiceClient::new(channel(stats).await?);
    Ok(echo::Replies {
        flows: client
            .get_relocation_flows(scenarios::flows_request())
            .await?
            .into_inner(),
        footprint: client
            .get_branch_footprint(scenarios::footprint_request())
            .await?
            .into_inner(),
        series: client
            .get_time_series(scenarios::series_request())
            .await?
            .into_inner(),
        ..Default::default()
    })
}

fn summary_of_all() -> Scope {
    Scope {
        selector: Some(zgc_proto::stats::v1::scope::Selector::All(true)),
        include_affiliates: false,
    }
}

/// From a write's acknowledgement to GetSummary reflecting it, with
/// writes started at `o.freshness_rate` per second.
async fn freshness(o: &Options, servers: &Servers) -> Result<Freshness, SuiteError> {
    let (mut rate, mut p50, mut p99) = (vec![], vec![], vec![]);
    for _ in 0..o.runs.max(1) {
        let registry = servers.to_registry.clone();
        let stats = servers.to_stats.clone();
        let r = load::paced(
            o.freshness_rate,
            Duration::from_secs_f64(o.seconds),
            4096,
            move |n| {
                let i = n as usize;
                let mut writer = RegistryServiceClient::new(registry[i % registry.len()].clone());
                let mut reader = StatsServiceClient::new(stats[i % stats.len()].clone());
                async move {
                    let company = writer
                        .create_company(scenarios::new_company("fresh"))
                        .await?
                        .into_inner();
                    let acknowledged = Instant::now();
                    reader
                        .get_summary(GetSummaryRequest {
                            scope: Some(summary_of_all()),
                            min_revision: company.revision,
                        })
                        .await?;
                    Ok::<_, tonic::Status>(acknowledged.elapsed())
                }
            },
        )
        .await;
        if r.errors > 0 || r.calls == 0 {
            return Err(SuiteError::Failed(format!(
                "freshness: {} writes failed ({}), {} succeeded",
                r.errors,
                r.first_error.unwrap_or_default(),
                r.calls
            )));
        }
        rate.push(r.throughput());
        p50.push(r.percentile_us(0.5) as f64);
        p99.push(r.percentile_us(0.99) as f64);
    }
    let f = Freshness {
        target_rate: o.freshness_rate,
        achieved_rate: Median::of(rate).median,
        p50_us: Median::of(p50).median,
        p99_us: Median::of(p99).median,
    };
    eprintln!(
        "         freshness: {:.0} writes/s, p50 {:.0} µs, p99 {:.0} µs",
        f.achieved_rate, f.p50_us, f.p99_us
    );
    Ok(f)
}

/// The listing shapes on the imported dataset: its busiest park, province,
/// city and sector, its second headquarters (which has branches) and its
/// middle company's display name.
fn listing_shapes(o: &Options, busiest: &dataset::Busiest) -> Vec<Shape> {
    listings::shapes(
        busiest,
        &zgc_dataset::generated_name(1.min(o.companies.saturating_sub(1))),
        &zgc_dataset::generated_display_name(o.companies / 2),
    )
}

/// The first page of each shape, as the registry answers it.
async fn first_pages(
    registry: SocketAddr,
    shapes: &[Shape],
) -> Result<Vec<(ListCompaniesRequest, ListCompaniesResponse)>, SuiteError> {
    let mut client = RegistryServiceClient::new(channel(registry).await?);
    let mut out = Vec::with_capacity(shapes.len());
    for shape in shapes {
        let request = scenarios::list_request(shape);
        let page = client.list_companies(request.clone()).await?.into_inner();
        out.push((request, page));
    }
    Ok(out)
}

/// Calls `s` one at a time over the first of `channels` for a run's time.
async fn one_at_a_time(
    o: &Options,
    channels: &[Channel],
    s: &Scenario,
) -> Result<load::LoadResult, SuiteError> {
    let call = s.call.clone();
    let r = load::closed(
        &channels[..1],
        1,
        Duration::from_secs_f64(o.seconds),
        move |ch, n| call(ch, n),
    )
    .await;
    if r.errors > 0 || r.calls == 0 {
        return Err(SuiteError::Failed(format!(
            "{}: {} calls failed ({})",
            s.name,
            r.errors,
            r.first_error.unwrap_or_default()
        )));
    }
    Ok(r)
}

/// Each listing shape against PostgreSQL, one call at a time, after
/// checking that both answer the same page and count.
async fn listings_against_postgres(
    o: &Options,
    servers: &Servers,
    pg: &Postgres,
    shapes: &[Shape],
) -> Result<Vec<ListComparison>, SuiteError> {
    let mut out = Vec::with_capacity(shapes.len());
    for shape in shapes {
        let request = scenarios::list_request(shape);
        let page = RegistryServiceClient::new(servers.to_registry[0].clone())
            .list_companies(request)
            .await?
            .into_inner();
        let names: Vec<String> = page.companies.into_iter().map(|c| c.name).collect();
        let sql = shape.sql();
        let (_, pg_names, pg_total) = pg.list(&sql).await?; // also warms the cache
        if pg_names != names || pg_total != i64::from(page.total_size) {
            return Err(SuiteError::Failed(format!(
                "PostgreSQL and the registry disagree on listing `{}`: {pg_total} matches, \
                 first {:?} against {} matches, first {:?}",
                shape.label,
                pg_names.first(),
                page.total_size,
                names.first()
            )));
        }
        // As many SQL runs as fit in the time a scenario run takes, at
        // least three.
        let mut sql_us = vec![];
        let started = std::time::Instant::now();
        while sql_us.len() < 3 || started.elapsed().as_secs_f64() < o.seconds {
            sql_us.push(pg.list(&sql).await?.0.as_secs_f64() * 1e6);
        }
        let r = one_at_a_time(o, &servers.to_registry, &scenarios::list(shape)).await?;
        let echo = one_at_a_time(o, &servers.to_echo, &scenarios::echo_list(shape)).await?;
        let c = ListComparison {
            shape: shape.label.into(),
            filter: shape.filter.clone(),
            order_by: shape.order_by.into(),
            indexes: shape.indexes.iter().map(|i| (*i).to_string()).collect(),
            total: pg_total,
            postgres_p50_us: Median::of(sql_us).median,
            list_p50_us: r.percentile_us(0.5) as f64,
            echo_p50_us: echo.percentile_us(0.5) as f64,
        };
        eprintln!(
            "  PostgreSQL listing `{}`: {:.0} µs against ListCompanies {:.0} µs ({} matches)",
            c.shape, c.postgres_p50_us, c.list_p50_us, c.total
        );
        out.push(c);
    }
    Ok(out)
}

/// PostgreSQL's GROUP BY against GetSummary, one call at a time, for the
/// whole registry and for the busiest park; checks both count the same.
/// Then each listing shape against its SQL.
async fn against_postgres(
    o: &Options,
    servers: &Servers,
    park: &str,
    shapes: &[Shape],
) -> Result<(f64, Vec<SqlComparison>, Vec<ListComparison>), SuiteError> {
    eprintln!("loading PostgreSQL...");
    let pg = Postgres::start().await?;
    let load_s = pg
        .load(o.companies, dataset::SEED, &listings::all_indexes(shapes))
        .await?
        .as_secs_f64();
    eprintln!("PostgreSQL loaded in {load_s:.1} s");
    let mut out = vec![];
    let park_scope = Scope {
        selector: Some(zgc_proto::stats::v1::scope::Selector::Park(park.into())),
        include_affiliates: false,
    };
    for (label, park_filter, scope) in [
        ("all", None, summary_of_all()),
        ("park", Some(park), park_scope),
    ] {
        // What stats says, to check the SQL computes the same figures.
        let summary = StatsServiceClient::new(servers.to_stats[0].clone())
            .get_summary(GetSummaryRequest {
                scope: Some(scope.clone()),
                min_revision: 0,
            })
            .await?
            .into_inner();
        let (_, figures) = pg.summary(park_filter).await?; // also warms the cache
        if figures.companies != summary.company_count || figures.employees != summary.employees {
            return Err(SuiteError::Failed(format!(
                "PostgreSQL and the stats service disagree on `{label}`: \
                 {figures:?} against {} companies, {} employees",
                summary.company_count, summary.employees
            )));
        }
        let mut sql = vec![];
        for _ in 0..o.runs.max(3) {
            sql.push(pg.summary(park_filter).await?.0.as_secs_f64() * 1e6);
        }
        let one = scenarios::summary(label, scope);
        let call = one.call.clone();
        let r = load::closed(
            &servers.to_stats[..1],
            1,
            Duration::from_secs_f64(o.seconds),
            move |ch, n| call(ch, n),
        )
        .await;
        let c = SqlComparison {
            scope: label.into(),
            postgres_p50_us: Median::of(sql).median,
            summary_p50_us: r.percentile_us(0.5) as f64,
        };
        eprintln!(
            "  PostgreSQL `{}`: {:.0} µs against GetSummary {:.0} µs",
            c.scope, c.postgres_p50_us, c.summary_p50_us
        );
        out.push(c);
    }
    let listings = listings_against_postgres(o, servers, &pg, shapes).await?;
    Ok((load_s, out, listings))
}

fn machine() -> results::Machine {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let cpuinfo = read("/proc/cpuinfo");
    let field = |text: &str, key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key))
            .map(|v| {
                v.trim_start_matches([' ', '\t', ':', '='])
                    .trim()
                    .trim_matches('"')
                    .to_string()
            })
            .unwrap_or_default()
    };
    results::Machine {
        cpus: std::thread::available_parallelism().map_or(1, usize::from),
        cpu_model: field(&cpuinfo, "model name"),
        memory_bytes: field(&read("/proc/meminfo"), "MemTotal")
            .trim_end_matches("kB")
            .trim()
            .parse::<u64>()
            .unwrap_or(0)
            * 1024,
        os: field(&read("/etc/os-release"), "PRETTY_NAME"),
        kernel: read("/proc/sys/kernel/osrelease").trim().to_string(),
    }
}

impl Options {
    /// Whether `--only` leaves `name` in.
    fn wants(&self, name: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|n| n == name)
    }

    /// The scenarios of `group` (its baselines, then what is compared with
    /// them) that `--only` leaves in: those it names, and the baselines
    /// whenever something compared with them runs.
    fn wanted<'a>(&self, group: &'a [Scenario]) -> Vec<&'a Scenario> {
        let compared = group
            .iter()
            .any(|s| !s.target.is_baseline() && self.wants(&s.name));
        group
            .iter()
            .filter(|s| self.wants(&s.name) || (s.target.is_baseline() && compared))
            .collect()
    }
}

/// Runs the suite.
pub async fn run(mut o: Options) -> Result<(), SuiteError> {
    if o.quick {
        o.companies = o.companies.min(3_000);
        o.seconds = o.seconds.min(0.3);
        o.concurrency = o.concurrency.min(16);
        o.freshness_rate = o.freshness_rate.min(200);
    }
    let scratch = tempfile::tempdir()?;
    let mut r = Results {
        machine: machine(),
        command: std::env::args().collect::<Vec<_>>().join(" "),
        companies: o.companies,
        runs: o.runs,
        seconds_per_run: o.seconds,
        concurrency: o.concurrency,
        connections: o.connections,
        profile: if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        }
        .into(),
        ..Default::default()
    };

    // Import, into a fresh registry each run; the last one stays.
    let mut imports = vec![];
    let mut registry_rss = 0;
    let mut kept = None;
    for run in 0..o.runs.max(1) {
        let dir = scratch.path().join(format!("registry-{run}"));
        let (registry, loaded) = fresh_registry(&o, &dir).await?;
        imports.push(loaded.took.as_secs_f64());
        registry_rss = registry_rss.max(registry.peak_rss());
        if let Some((old, _, old_dir)) = kept.replace((registry, loaded, dir)) {
            drop::<Server>(old);
            std::fs::remove_dir_all(old_dir)?;
        }
    }
    let Some((registry, loaded, data_dir)) = kept else {
        return Err(SuiteError::Failed("no import ran".into()));
    };
    r.import_s = Median::of(imports);
    r.disk_bytes = procs::dir_bytes(&data_dir);
    r.encoded_company_bytes = loaded.encoded_bytes;

    // The stats service's initial sync, from its start to SERVING.
    let stats_bin = procs::sibling("zgc-stats");
    let mut syncs = vec![];
    let mut stats = None;
    for _ in 0..o.runs.max(1) {
        drop(stats.take());
        let s = Server::spawn(&stats_bin, &stats_args(registry.addr)).await?;
        wait_serving(s.addr).await?;
        syncs.push(s.started.elapsed().as_secs_f64());
        stats = Some(s);
    }
    let Some(stats) = stats else {
        return Err(SuiteError::Failed("no stats service ran".into()));
    };
    r.stats_sync_s = Median::of(syncs);
    eprintln!("stats sync {:.1} s", r.stats_sync_s.median);

    // The echo server answers with what the servers under test answer: a
    // stored company of the median size, and each scope's summary.
    let scopes = scenarios::scopes(&loaded.busiest);
    let shapes = listing_shapes(&o, &loaded.busiest);
    let replies = echo::Replies {
        company: median_company(registry.addr, &loaded.names).await?,
        summaries: summaries(stats.addr, &scopes).await?,
        pages: first_pages(registry.addr, &shapes).await?,
        ..listed_stats(stats.addr).await?
    };
    let replies_file = scratch.path().join("echo-replies");
    echo::write_replies(&replies_file, &replies)?;
    let mut echo_args = strings(&["echo-server", "--listen", "127.0.0.1:0", "--replies"]);
    echo_args.push(replies_file.display().to_string());
    let echo = Server::spawn(&std::env::current_exe()?, &echo_args).await?;
    echo_args.extend(strings(&["--metrics-listen", "127.0.0.1:0"]));
    let observed_echo = Server::spawn(&std::env::current_exe()?, &echo_args).await?;
    let mut servers = Servers {
        to_echo: channels(echo.addr, o.connections).await?,
        to_observed_echo: channels(observed_echo.addr, o.connections).await?,
        to_registry: channels(registry.addr, o.connections).await?,
        to_stats: channels(stats.addr, o.connections).await?,
        echo,
        observed_echo,
        registry,
        stats,
    };

    // Reads first, on the imported data.
    let names = Arc::new(loaded.names);
    // Groups, baselines first; a group's runs take turns: GetCompany with
    // its echo, each summary with the echo of its own payload and that
    // echo timed as the services time their calls.
    let mut reads = vec![vec![scenarios::echo(), scenarios::get(names.clone())]];
    for shape in &shapes {
        reads.push(vec![scenarios::echo_list(shape), scenarios::list(shape)]);
    }
    for (label, scope) in scopes {
        reads.push(vec![
            scenarios::echo_summary(&label, scope.clone()),
            scenarios::observed_echo_summary(&label, scope.clone()),
            scenarios::summary(&label, scope),
        ]);
    }
    reads.push(vec![scenarios::rank_parks()]);
    reads.extend(scenarios::listed_stats().into_iter().map(Vec::from));
    for group in &reads {
        r.scenarios
            .extend(measure(&o, &servers, &o.wanted(group)).await?);
    }
    if !o.skip_postgres && o.wants("postgres") {
        let (load_s, comparisons, listings) =
            against_postgres(&o, &servers, &loaded.busiest.park, &shapes).await?;
        r.postgres_load_s = load_s;
        r.postgres = comparisons;
        r.listings = listings;
    }

    // Then writes, and the storage limit they are measured against.
    for s in [scenarios::create(), scenarios::mixed(names.clone())] {
        if o.wants(&s.name) {
            r.scenarios.extend(measure(&o, &servers, &[&s]).await?);
        }
    }
    if o.wants("open-loop") {
        let rate = o.open_loop_rate.map(f64::from).unwrap_or_else(|| {
            r.scenario("echo")
                .map(|s| s.throughput_per_s.median / 2.0)
                .unwrap_or(0.0)
        });
        if rate > 0.0 {
            let listing = shapes.iter().find(|s| s.label == "display-name");
            r.open_loop = Some(open_loop(&o, &servers, rate, names.clone(), listing).await?);
        }
    }
    let mut raw = vec![];
    for run in 0..o.runs.max(1) {
        if !o.wants("raw-sled") {
            break;
        }
        let dir = scratch.path().join(format!("raw-sled-{run}"));
        let value_len =
            usize::try_from(r.encoded_company_bytes / o.companies.max(1)).unwrap_or(256);
        let seconds = Duration::from_secs_f64(o.seconds);
        raw.push(
            tokio::task::spawn_blocking(move || {
                sled_loop::writes_per_second(&dir, value_len, seconds)
            })
            .await
            .map_err(|e| SuiteError::Failed(e.to_string()))??,
        );
    }
    r.raw_sled_writes_per_s = Median::of(raw).median;
    eprintln!(
        "{:>28}: {:.0} writes/s",
        "raw sled loop", r.raw_sled_writes_per_s
    );
    if o.wants("freshness") {
        r.freshness = freshness(&o, &servers).await?;
    }
    if !o.skip_etcd && o.wants("etcd") {
        // The etcd phase comes last among the measurements and needs an
        // etcd cluster that keeps up on this machine: when it fails, the
        // rest of the run is still reported, with the reason.
        match on_etcd(&o, &mut servers, &mut r.scenarios).await {
            Ok(figures) => r.etcd = Some(figures),
            Err(e) => {
                eprintln!("the etcd phase failed, the rest of the run is kept: {e}");
                r.etcd_failed = Some(e.to_string());
            }
        }
    }

    r.registry_peak_rss_bytes = registry_rss.max(servers.registry.peak_rss());
    r.stats_peak_rss_bytes = servers.stats.peak_rss();

    // Restart: SIGKILL, then time to SERVING on the full store.
    let Servers { mut registry, .. } = servers;
    let mut restarts = vec![];
    for _ in 0..o.runs.max(1) {
        registry.child.kill().await?;
        registry =
            Server::spawn(&procs::sibling("zgc-registry"), &registry_args(&data_dir)).await?;
        wait_serving(registry.addr).await?;
        restarts.push(registry.started.elapsed().as_secs_f64());
    }
    r.registry_restart_s = Median::of(restarts);
    drop(registry);

    write(&o, &r)
}

/// The open loop's reads with writes beside them: GetCompany at 90% of
/// the rate, its latencies the ones recorded, while durable creates run at
/// the other 10% in a schedule of their own. A mix measured as one would
/// report the writes' own fsync-bound latency as its tail (they are 10% of
/// the calls); apart, the reads' tail says whether reads wait on writes.
const READS_WITH_WRITES: &str = "reads-with-writes";

/// Latency at a fixed arrival rate, `rate` calls per second (half the
/// echo's closed-loop throughput in this run, unless `--open-loop-rate`
/// says otherwise), each latency from the call's scheduled start: the
/// echo, GetCompany, GetSummary of everything, an indexed ListCompanies,
/// and GetCompany with durable creates beside it ([`READS_WITH_WRITES`]).
/// Runs take turns, as the closed-loop groups do.
async fn open_loop(
    o: &Options,
    servers: &Servers,
    rate: f64,
    names: Arc<Vec<String>>,
    listing: Option<&Shape>,
) -> Result<results::OpenLoop, SuiteError> {
    let rate = rate.max(1.0) as u32;
    let mut group = vec![
        scenarios::echo(),
        scenarios::get(names.clone()),
        scenarios::summary("all", summary_of_all()),
    ];
    group.extend(listing.map(scenarios::list));
    let mut reads = scenarios::get(names);
    reads.name = READS_WITH_WRITES.into();
    reads.description = "GetCompany at 90% of the rate, with durable CreateCompany at the \
                         other 10% beside it: the reads' latency"
        .into();
    group.push(reads);
    let writes = scenarios::create();
    let duration = Duration::from_secs_f64(o.seconds);
    let mut runs: Vec<[Vec<f64>; 5]> = group.iter().map(|_| Default::default()).collect();
    for _ in 0..o.runs.max(1) {
        for (s, [achieved, p50, p99, p999, failed]) in group.iter().zip(&mut runs) {
            let (_, connections) = servers.of(s.target);
            let call = s.call.clone();
            let r = if s.name == READS_WITH_WRITES {
                let write = writes.call.clone();
                let (r, w) = tokio::join!(
                    load::open(connections, rate - rate / 10, duration, move |ch, n| {
                        call(ch, n)
                    }),
                    load::open(connections, (rate / 10).max(1), duration, move |ch, n| {
                        write(ch, n)
                    }),
                );
                if let Some(e) = &w.first_error {
                    eprintln!("open loop {}: {} writes failed: {e}", s.name, w.errors);
                }
                r
            } else {
                load::open(connections, rate, duration, move |ch, n| call(ch, n)).await
            };
            // A server that cannot keep up sheds calls: that is a
            // finding to report, not a reason to stop.
            if r.calls == 0 {
                return Err(SuiteError::Failed(format!(
                    "open loop {}: every call failed ({})",
                    s.name,
                    r.first_error.unwrap_or_default(),
                )));
            }
            if let Some(e) = &r.first_error {
                eprintln!("open loop {}: {} calls failed: {e}", s.name, r.errors);
            }
            failed.push(r.errors as f64 / (r.errors + r.calls) as f64);
            achieved.push(r.throughput());
            p50.push(r.percentile_us(0.5) as f64);
            p99.push(r.percentile_us(0.99) as f64);
            p999.push(r.percentile_us(0.999) as f64);
        }
    }
    let mut out = results::OpenLoop {
        rate_per_s: rate,
        rate_set: o.open_loop_rate.is_some(),
        scenarios: Vec::new(),
    };
    for (s, [achieved, p50, p99, p999, failed]) in group.iter().zip(runs) {
        let m = results::OpenLoopScenario {
            name: s.name.clone(),
            description: s.description.clone(),
            failed_share: Median::of(failed).median,
            achieved_per_s: Median::of(achieved).median,
            p50_us: Median::of(p50).median,
            p99_us: Median::of(p99).median,
            p999_us: Median::of(p999).median,
        };
        eprintln!(
            "{:>28}: {rate} calls/s open loop  p50 {:>6.0} µs  p99 {:>7.0} µs  p99.9 {:>7.0} µs",
            m.name, m.p50_us, m.p99_us, m.p999_us
        );
        out.scenarios.push(m);
    }
    Ok(out)
}

/// A registry on the etcd cluster at `endpoints`, under `prefix`.
async fn etcd_registry(endpoints: &str, prefix: &str) -> Result<Server, SuiteError> {
    let mut args = server_args("--etcd-endpoints", endpoints.to_string());
    args.extend(strings(&["--etcd-prefix", prefix]));
    let registry = Server::spawn(&procs::sibling("zgc-registry"), &args).await?;
    wait_serving(registry.addr).await?;
    Ok(registry)
}

/// Runs `group` with the registry and the stats service swapped for the
/// ones on etcd; the scenarios are named `etcd/...`.
async fn measure_on(
    o: &Options,
    servers: &mut Servers,
    on: &mut (Server, Server, Vec<Channel>, Vec<Channel>),
    group: &[&Scenario],
) -> Result<Vec<results::Scenario>, SuiteError> {
    std::mem::swap(&mut servers.registry, &mut on.0);
    std::mem::swap(&mut servers.stats, &mut on.1);
    std::mem::swap(&mut servers.to_registry, &mut on.2);
    std::mem::swap(&mut servers.to_stats, &mut on.3);
    let measured = measure(o, servers, group).await;
    std::mem::swap(&mut servers.registry, &mut on.0);
    std::mem::swap(&mut servers.stats, &mut on.1);
    std::mem::swap(&mut servers.to_registry, &mut on.2);
    std::mem::swap(&mut servers.to_stats, &mut on.3);
    measured
}

fn renamed(mut s: Scenario, suffix: &str) -> Scenario {
    s.name = format!("etcd/{}", s.name);
    s.description = format!("{}{suffix}", s.description);
    s
}

/// The registry on a 3-member etcd cluster: the import and durable creates
/// against the same transactions sent straight to etcd, taking turns;
/// GetCompany and GetSummary against the echo; creates through several
/// replicas against one.
async fn on_etcd(
    o: &Options,
    servers: &mut Servers,
    scenarios_out: &mut Vec<results::Scenario>,
) -> Result<results::EtcdFigures, SuiteError> {
    let fail = |e: String| SuiteError::Failed(format!("etcd: {e}"));
    let in_flight = usize::from(o.import_in_flight);

    // Imports, taking turns, each into a cluster of its own that starts
    // empty: emptying one cluster between runs would be a delete of every
    // key in one transaction, and a compaction of all of it, which at
    // scale takes etcd longer than any client waits. The registry's
    // cluster of the last run stays for the rest.
    let (mut imports, mut raw_imports) = (vec![], vec![]);
    let (mut import_cpu, mut raw_import_cpu) = (CpuUse::default(), CpuUse::default());
    let mut kept: Option<(zgc_etcd::cluster::EtcdCluster, Server)> = None;
    for run in 0..o.runs.max(1) {
        let took = {
            let cluster = zgc_etcd::cluster::EtcdCluster::start(3).await?;
            let client = cluster.client().map_err(|e| fail(e.to_string()))?;
            let members = members_cpu(&cluster);
            let took = etcd::import(&client, o.companies, in_flight)
                .await
                .map_err(fail)?;
            raw_import_cpu.add(0.0, members_cpu(&cluster) - members, o.companies);
            took
        };
        raw_imports.push(took.as_secs_f64());
        if let Some((old_cluster, old_registry)) = kept.take() {
            drop(old_registry);
            drop(old_cluster);
        }
        let cluster = zgc_etcd::cluster::EtcdCluster::start(3).await?;
        let registry = etcd_registry(&cluster.endpoints().join(","), "zgc/").await?;
        let (members, own) = (members_cpu(&cluster), registry.cpu_seconds());
        let loaded = dataset::import(channel(registry.addr).await?, o.companies, in_flight).await?;
        import_cpu.add(
            registry.cpu_seconds() - own,
            members_cpu(&cluster) - members,
            o.companies,
        );
        imports.push(loaded.took.as_secs_f64());
        eprintln!(
            "etcd import run {run}: registry {:.1} s, straight to etcd {:.1} s",
            loaded.took.as_secs_f64(),
            took.as_secs_f64()
        );
        kept = Some((cluster, registry));
    }
    let Some((cluster, registry)) = kept else {
        return Err(SuiteError::Failed("no etcd import ran".into()));
    };
    let endpoints = cluster.endpoints().join(",");
    let stats = Server::spawn(&procs::sibling("zgc-stats"), &stats_args(registry.addr)).await?;
    wait_serving(stats.addr).await?;
    let mut on = (registry, stats, Vec::new(), Vec::new());
    on.2 = channels(on.0.addr, o.connections).await?;
    on.3 = channels(on.1.addr, o.connections).await?;

    // Reads against the echo, measured beside them.
    let names = {
        let mut c = RegistryServiceClient::new(channel(on.0.addr).await?);
        let page = c
            .list_companies(ListCompaniesRequest {
                page_size: 1000,
                ..Default::default()
            })
            .await?
            .into_inner();
        Arc::new(
            page.companies
                .into_iter()
                .map(|c| c.name)
                .collect::<Vec<_>>(),
        )
    };
    let all = Scope {
        selector: Some(zgc_proto::stats::v1::scope::Selector::All(true)),
        include_affiliates: false,
    };
    let groups = [
        vec![
            renamed(scenarios::echo(), ""),
            renamed(scenarios::get(names), " (registry on etcd)"),
        ],
        vec![
            renamed(scenarios::echo_summary("all", all.clone()), ""),
            renamed(
                scenarios::summary("all", all),
                " (following the registry on etcd)",
            ),
        ],
    ];
    for group in &groups {
        let group: Vec<&Scenario> = group.iter().collect();
        scenarios_out.extend(measure_on(o, servers, &mut on, &group).await?);
    }

    // Creates, taking turns with the same transactions straight to etcd.
    let create = renamed(scenarios::create(), " (registry on etcd)");
    let mut raw_creates = vec![];
    let mut runs = Vec::new();
    let company = scenarios::new_company("raw").company.unwrap_or_default();
    let raw_clients: Vec<_> = (0..o.connections.max(1))
        .map(|_| cluster.client())
        .collect::<Result<_, _>>()
        .map_err(|e| fail(e.to_string()))?;
    let once = Options {
        runs: 1,
        ..o.clone()
    };
    let revision = || async {
        let status = raw_clients[0]
            .status()
            .await
            .map_err(|e| fail(e.to_string()))?;
        Ok::<u64, SuiteError>(
            status
                .header
                .map_or(0, |h| u64::try_from(h.revision).unwrap_or(0)),
        )
    };
    let (mut create_cpu, mut raw_create_cpu) = (CpuUse::default(), CpuUse::default());
    for _ in 0..o.runs.max(1) {
        // Each create is one etcd revision, so etcd's revision counts them.
        let (first, members, own) = (revision().await?, members_cpu(&cluster), on.0.cpu_seconds());
        runs.extend(measure_on(&once, servers, &mut on, &[&create]).await?);
        create_cpu.add(
            on.0.cpu_seconds() - own,
            members_cpu(&cluster) - members,
            revision().await? - first,
        );
        let (first, members) = (revision().await?, members_cpu(&cluster));
        raw_creates.push(
            etcd::creates(
                &raw_clients,
                o.concurrency,
                Duration::from_secs_f64(o.seconds),
                &company,
            )
            .await
            .map_err(fail)?,
        );
        raw_create_cpu.add(
            0.0,
            members_cpu(&cluster) - members,
            revision().await? - first,
        );
    }
    scenarios_out.push(median_of(runs));

    // The same creates through several replicas.
    let mut replicas = vec![];
    let mut replica_starts = vec![];
    for _ in 1..o.etcd_replicas.max(1) {
        let started = Instant::now();
        replicas.push(etcd_registry(&endpoints, "zgc/").await?);
        replica_starts.push(started.elapsed().as_secs_f64());
    }
    let mut spread = on.2.clone();
    for replica in &replicas {
        spread.extend(channels(replica.addr, o.connections).await?);
    }
    let single = std::mem::replace(&mut on.2, spread);
    let mut many = renamed(scenarios::create(), "");
    many.name = "etcd/create-replicas".into();
    many.description = format!(
        "CreateCompany, durable, through {} registry replicas over one etcd cluster",
        o.etcd_replicas.max(1)
    );
    scenarios_out.extend(measure_on(o, servers, &mut on, &[&many]).await?);
    on.2 = single;
    drop(replicas);

    Ok(results::EtcdFigures {
        import_s: Median::of(imports),
        raw_import_s: Median::of(raw_imports),
        raw_creates_per_s: Median::of(raw_creates),
        replicas: o.etcd_replicas.max(1),
        replica_start_s: Median::of(replica_starts),
        import_cpu,
        raw_import_cpu,
        create_cpu,
        raw_create_cpu,
    })
}

/// CPU seconds the cluster's members have used so far.
fn members_cpu(cluster: &zgc_etcd::cluster::EtcdCluster) -> f64 {
    cluster.pids().into_iter().map(procs::cpu_seconds_of).sum()
}

/// One scenario's runs measured one at a time, as one.
fn median_of(runs: Vec<results::Scenario>) -> results::Scenario {
    let mut out = runs.first().cloned().unwrap_or_default();
    let tput = runs.iter().map(|s| s.throughput_per_s.median).collect();
    let p50 = runs.iter().map(|s| s.p50_us).collect();
    let p99 = runs.iter().map(|s| s.p99_us).collect();
    let cpu = runs.iter().map(|s| s.server_cpu_ms_per_call).collect();
    out.throughput_per_s = Median::of(tput);
    out.p50_us = Median::of(p50).median;
    out.p99_us = Median::of(p99).median;
    out.server_cpu_ms_per_call = Median::of(cpu).median;
    out.server_p99_us = None;
    out
}

/// Writes `results.json` and the Markdown report.
pub fn write(o: &Options, r: &Results) -> Result<(), SuiteError> {
    std::fs::create_dir_all(&o.out)?;
    let json = o.out.join("results.json");
    std::fs::write(&json, serde_json::to_string_pretty(r)?)?;
    let md = o
        .markdown
        .clone()
        .unwrap_or_else(|| o.out.join("BENCHMARKS.md"));
    render(r, &md)?;
    for t in report::targets(r) {
        eprintln!("{:>60}: {} ({:?})", t.goal, t.measured, t.status);
    }
    eprintln!("results: {} and {}", json.display(), md.display());
    Ok(())
}

/// Writes the report for `r` into `md`, keeping what is outside its
/// generated part.
pub fn render(r: &Results, md: &Path) -> Result<(), SuiteError> {
    let existing = std::fs::read_to_string(md).ok();
    std::fs::write(
        md,
        report::splice(existing.as_deref(), &report::markdown(r)),
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        options: Options,
    }

    fn options(args: &[&str]) -> Options {
        Cli::parse_from(std::iter::once("zgc-bench").chain(args.iter().copied())).options
    }

    fn names(group: &[&Scenario]) -> Vec<String> {
        group.iter().map(|s| s.name.clone()).collect()
    }

    #[test]
    fn only_keeps_a_scenario_with_its_baseline_and_nothing_else() {
        let scope = Scope {
            selector: Some(zgc_proto::stats::v1::scope::Selector::All(true)),
            include_affiliates: false,
        };
        let get = [scenarios::echo(), scenarios::get(Arc::new(vec![]))];
        let all = [
            scenarios::echo_summary("all", scope.clone()),
            scenarios::observed_echo_summary("all", scope.clone()),
            scenarios::summary("all", scope),
        ];

        let o = options(&["--only", "get"]);
        assert_eq!(names(&o.wanted(&get)), ["echo", "get"]);
        assert!(o.wanted(&all).is_empty());

        let o = options(&["--only", "echo,summary/all"]);
        assert_eq!(names(&o.wanted(&get)), ["echo"], "a baseline alone");
        assert_eq!(
            names(&o.wanted(&all)),
            [
                "echo/summary/all",
                "observed-echo/summary/all",
                "summary/all"
            ]
        );

        let o = options(&["--only", "observed-echo/summary/all"]);
        assert_eq!(names(&o.wanted(&all)), ["observed-echo/summary/all"]);

        let everything = options(&[]);
        assert_eq!(everything.wanted(&get).len(), 2);
        assert!(everything.wants("list"));
    }
}
