//! What one suite run measured: written as `results.json`, read back to
//! render `BENCHMARKS.md`.

use serde::{Deserialize, Serialize};

/// One run of the suite.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Results {
    /// The machine it ran on.
    pub machine: Machine,
    /// The command line.
    pub command: String,
    /// Companies loaded before the scenarios.
    pub companies: u64,
    /// Runs of each scenario; every figure is a median over them.
    pub runs: usize,
    /// Seconds each run of a load scenario lasted.
    pub seconds_per_run: f64,
    /// Calls in flight in the load scenarios.
    pub concurrency: usize,
    /// Connections the calls were spread over.
    pub connections: usize,
    /// The build profile of the binaries measured (`release` or `debug`).
    pub profile: String,
    /// The closed-loop load scenarios, baselines included.
    pub scenarios: Vec<Scenario>,
    /// The raw sled loop: durable single-key writes per second (median).
    pub raw_sled_writes_per_s: f64,
    /// Time from a write's acknowledgement to the stats service reflecting it.
    pub freshness: Freshness,
    /// Importing every company through BatchCreateCompanies of 1,000.
    pub import_s: Median,
    /// The stats service's start to SERVING on the full registry.
    pub stats_sync_s: Median,
    /// The registry's start to SERVING on the full store, after SIGKILL.
    pub registry_restart_s: Median,
    /// Peak resident memory of the registry over the whole run.
    pub registry_peak_rss_bytes: u64,
    /// Peak resident memory of the stats service over the whole run.
    pub stats_peak_rss_bytes: u64,
    /// The registry's data directory right after the import.
    pub disk_bytes: u64,
    /// The imported companies' encoded protobuf size.
    pub encoded_company_bytes: u64,
    /// PostgreSQL's GROUP BY against GetSummary, one call at a time.
    pub postgres: Vec<SqlComparison>,
    /// Seconds PostgreSQL took to load and index the same companies.
    pub postgres_load_s: f64,
    /// Each listing shape against PostgreSQL, one call at a time.
    #[serde(default)]
    pub listings: Vec<ListComparison>,
    /// The registry on etcd beside etcd itself.
    #[serde(default)]
    pub etcd: Option<EtcdFigures>,
    /// Why the etcd phase stopped, when it failed: the rest of the run is
    /// kept, and its targets say why they were not measured.
    #[serde(default)]
    pub etcd_failed: Option<String>,
    /// Latency at a fixed arrival rate (open loop), when measured.
    #[serde(default)]
    pub open_loop: Option<OpenLoop>,
}

/// The registry on a 3-member etcd cluster beside the same work sent to
/// etcd straight (`etcd.rs`); its load scenarios are among the others,
/// named `etcd/...`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct EtcdFigures {
    /// Importing every company into a registry on etcd.
    pub import_s: Median,
    /// The registry's import transactions sent straight to etcd.
    pub raw_import_s: Median,
    /// Single-company create transactions sent straight to etcd, per
    /// second, as many in flight as the create scenario.
    pub raw_creates_per_s: Median,
    /// Registry replicas in the `etcd/create-replicas` scenario.
    pub replicas: usize,
    /// How long each replica added for it took from start to SERVING on
    /// the imported registry: loading etcd's state, replaying its history.
    #[serde(default)]
    pub replica_start_s: Median,
    /// CPU used by the registry's imports, summed over the runs.
    #[serde(default)]
    pub import_cpu: CpuUse,
    /// CPU used by the imports straight to etcd.
    #[serde(default)]
    pub raw_import_cpu: CpuUse,
    /// CPU used by the registry's creates.
    #[serde(default)]
    pub create_cpu: CpuUse,
    /// CPU used by the creates straight to etcd.
    #[serde(default)]
    pub raw_create_cpu: CpuUse,
}

/// CPU seconds the registry and the etcd members used for some writes:
/// on a machine they share, what one uses the other cannot.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CpuUse {
    /// The registry's (0 for work sent straight to etcd).
    pub registry_s: f64,
    /// The three members' together.
    pub members_s: f64,
    /// The companies written.
    pub writes: u64,
}

impl CpuUse {
    /// Adds another run's use.
    pub fn add(&mut self, registry_s: f64, members_s: f64, writes: u64) {
        self.registry_s += registry_s;
        self.members_s += members_s;
        self.writes += writes;
    }

    /// Microseconds per company written: the registry's, the members'.
    pub fn per_write_us(&self) -> Option<(f64, f64)> {
        (self.writes > 0).then(|| {
            let n = self.writes as f64;
            (self.registry_s * 1e6 / n, self.members_s * 1e6 / n)
        })
    }
}

/// The machine.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Machine {
    /// Logical CPUs.
    pub cpus: usize,
    /// The CPU model.
    pub cpu_model: String,
    /// Total memory.
    pub memory_bytes: u64,
    /// The operating system.
    pub os: String,
    /// The kernel release.
    pub kernel: String,
}

/// A figure measured several times.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Median {
    /// The median.
    pub median: f64,
    /// Every measurement, in order.
    pub runs: Vec<f64>,
}

impl Median {
    /// The median of `runs`.
    pub fn of(runs: Vec<f64>) -> Self {
        let mut sorted = runs.clone();
        sorted.sort_by(f64::total_cmp);
        let median = match sorted.len() {
            0 => 0.0,
            n if !n.is_multiple_of(2) => sorted[n / 2],
            n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
        };
        Self { median, runs }
    }
}

/// One closed-loop scenario.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Scenario {
    /// Its name (`echo`, `get`, `summary/all`, ...).
    pub name: String,
    /// What each call does.
    pub description: String,
    /// Successful calls per second.
    pub throughput_per_s: Median,
    /// Client-side latency, median of the runs' p50s.
    pub p50_us: f64,
    /// Client-side latency, median of the runs' p99s.
    pub p99_us: f64,
    /// The server's own p99 from its latency histogram, when it has one.
    pub server_p99_us: Option<f64>,
    /// CPU seconds the server used per 1,000 calls.
    pub server_cpu_ms_per_call: f64,
}

/// Calls started at a fixed rate, half the echo's closed-loop throughput
/// unless `--open-loop-rate` set it, each latency counted from its
/// scheduled start (no coordinated omission).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct OpenLoop {
    /// Calls started per second, for every scenario.
    pub rate_per_s: u32,
    /// Whether `--open-loop-rate` set the rate.
    #[serde(default)]
    pub rate_set: bool,
    /// The scenarios, the echo first.
    pub scenarios: Vec<OpenLoopScenario>,
}

/// One scenario at the open loop's rate; medians of the runs.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct OpenLoopScenario {
    /// Its name (as the closed-loop scenario it calls like).
    pub name: String,
    /// What each call does.
    pub description: String,
    /// Calls answered per second.
    pub achieved_per_s: f64,
    /// The share of calls that failed (shed by a server that could not
    /// keep up), median of the runs.
    #[serde(default)]
    pub failed_share: f64,
    /// Latency from the scheduled start: median.
    pub p50_us: f64,
    /// The 99th percentile.
    pub p99_us: f64,
    /// The 99.9th percentile.
    pub p999_us: f64,
}

impl OpenLoop {
    /// The scenario called `name`.
    pub fn scenario(&self, name: &str) -> Option<&OpenLoopScenario> {
        self.scenarios.iter().find(|s| s.name == name)
    }
}

/// The freshness scenario.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Freshness {
    /// Writes started per second.
    pub target_rate: u32,
    /// Writes acknowledged per second.
    pub achieved_rate: f64,
    /// Median latency from acknowledgement to visibility.
    pub p50_us: f64,
    /// The 99th percentile of it.
    pub p99_us: f64,
}

/// GetSummary against the equivalent SQL, one call at a time.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SqlComparison {
    /// The scope.
    pub scope: String,
    /// PostgreSQL's median latency.
    pub postgres_p50_us: f64,
    /// GetSummary's median latency, measured over gRPC.
    pub summary_p50_us: f64,
}

/// A listing shape against PostgreSQL, one call at a time: the same page
/// and the same count.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ListComparison {
    /// The shape's label.
    pub shape: String,
    /// Its filter.
    pub filter: String,
    /// Its order.
    pub order_by: String,
    /// The indexes PostgreSQL had for it.
    pub indexes: Vec<String>,
    /// How many companies match.
    pub total: i64,
    /// PostgreSQL's median latency, count and page in one round trip.
    pub postgres_p50_us: f64,
    /// ListCompanies' median latency, measured over gRPC.
    pub list_p50_us: f64,
    /// The echo of the same page's median latency: the transport's own,
    /// the floor of any gRPC answer.
    #[serde(default)]
    pub echo_p50_us: f64,
}

impl Results {
    /// The scenario called `name`.
    pub fn scenario(&self, name: &str) -> Option<&Scenario> {
        self.scenarios.iter().find(|s| s.name == name)
    }

    /// The transport baseline a scenario's throughput is compared with:
    /// the echo of its own answer ([`echo_name`]; for the timed echo of a
    /// summary, that summary's), when the run has it; otherwise `echo` (a
    /// company-sized reply). Only a baseline with throughput counts.
    pub fn baseline(&self, scenario: &str) -> Option<&Scenario> {
        // A scenario on etcd is compared with the echo measured beside it.
        let (on_etcd, scenario) = match scenario.strip_prefix("etcd/") {
            Some(rest) => (true, rest),
            None => (false, scenario),
        };
        let name = echo_name(scenario.strip_prefix("observed-echo/").unwrap_or(scenario));
        let measured = |name: &str| {
            self.scenario(name)
                .filter(|s| s.throughput_per_s.median > 0.0)
        };
        let beside = if on_etcd {
            measured(&format!("etcd/{name}")).or_else(|| measured("etcd/echo"))
        } else {
            None
        };
        beside
            .or_else(|| measured(&name))
            .or_else(|| measured("echo"))
    }
}

/// The name of the echo of scenario `name`'s own answer.
pub fn echo_name(name: &str) -> String {
    format!("echo/{name}")
}

/// The name of the echo baseline of the summary scenario of `label`.
pub fn summary_echo_name(label: &str) -> String {
    echo_name(&format!("summary/{label}"))
}

/// The name of the listing scenario of shape `label`.
pub fn list_name(label: &str) -> String {
    format!("list/{label}")
}

/// The name of the echo baseline of the listing scenario of `label`.
pub fn list_echo_name(label: &str) -> String {
    echo_name(&list_name(label))
}

/// The name of the timed echo beside the summary scenario of `label`.
pub fn observed_echo_name(label: &str) -> String {
    format!("observed-echo/summary/{label}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_of_odd_and_even_counts() {
        assert_eq!(Median::of(vec![3.0, 1.0, 2.0]).median, 2.0);
        assert_eq!(Median::of(vec![4.0, 1.0, 2.0, 3.0]).median, 2.5);
        assert_eq!(Median::of(vec![]).median, 0.0);
        assert_eq!(Median::of(vec![3.0, 1.0]).runs, vec![3.0, 1.0]);
    }

    /// A scenario is compared with the echo of its own answer when the run
    /// measured it, and with the company-sized echo otherwise.
    #[test]
    fn a_baseline_is_the_echo_of_the_scenario_s_own_answer() {
        let measured = |name: &str, tput: f64| Scenario {
            name: name.into(),
            throughput_per_s: Median::of(vec![tput]),
            ..Default::default()
        };
        let r = Results {
            scenarios: vec![
                measured("echo", 100.0),
                measured("echo/branch-footprint", 50.0),
                measured("echo/summary/all", 80.0),
                measured("echo/time-series", 0.0),
            ],
            ..Default::default()
        };
        let baseline = |name: &str| r.baseline(name).map(|s| s.name.as_str());
        assert_eq!(baseline("branch-footprint"), Some("echo/branch-footprint"));
        assert_eq!(baseline("summary/all"), Some("echo/summary/all"));
        assert_eq!(
            baseline("observed-echo/summary/all"),
            Some("echo/summary/all")
        );
        // Measured without throughput, or not at all: the company echo.
        assert_eq!(baseline("time-series"), Some("echo"));
        assert_eq!(baseline("get"), Some("echo"));
    }

    /// A scenario on etcd is compared with the echo measured beside it,
    /// never with one measured in another phase of the run.
    #[test]
    fn a_baseline_on_etcd_is_the_echo_measured_beside_it() {
        let measured = |name: &str| Scenario {
            name: name.into(),
            throughput_per_s: Median::of(vec![1.0]),
            ..Default::default()
        };
        let r = Results {
            scenarios: vec![
                measured("echo"),
                measured("echo/summary/all"),
                measured("etcd/echo"),
                measured("etcd/echo/summary/all"),
            ],
            ..Default::default()
        };
        let baseline = |name: &str| r.baseline(name).map(|s| s.name.as_str());
        assert_eq!(baseline("etcd/get"), Some("etcd/echo"));
        assert_eq!(baseline("etcd/summary/all"), Some("etcd/echo/summary/all"));
        assert_eq!(baseline("get"), Some("echo"));
    }
}
