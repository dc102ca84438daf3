//! The targets of the benchmark issue, checked against a run's results,
//! and the Markdown that shows them. Pure: no I/O.

use crate::results::Results;

/// The scale the targets are defined at.
pub const FULL_SCALE: u64 = 1_000_000;

/// Where the generated part of BENCHMARKS.md begins and ends; text
/// outside the markers is kept when the file is rewritten.
pub const BEGIN: &str =
    "<!-- zgc-bench: generated from results.json; edit outside these markers -->";
/// See [`BEGIN`].
pub const END: &str = "<!-- zgc-bench: end of generated part -->";

/// Whether a target was met.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Met.
    Met,
    /// Missed.
    Missed,
    /// Measured below the scale the target is defined at: says nothing.
    BelowScale,
    /// Not measured in this run.
    NotMeasured,
}

impl Status {
    fn label(self) -> &'static str {
        match self {
            Status::Met => "met",
            Status::Missed => "**missed**",
            Status::BelowScale => "below scale",
            Status::NotMeasured => "not measured",
        }
    }
}

/// One target and what the run measured.
#[derive(Debug, Clone)]
pub struct Target {
    /// What is asked.
    pub goal: String,
    /// What was measured.
    pub measured: String,
    /// The verdict.
    pub status: Status,
}

fn verdict(ok: bool, full_scale: bool) -> Status {
    match (ok, full_scale) {
        (_, false) => Status::BelowScale,
        (true, true) => Status::Met,
        (false, true) => Status::Missed,
    }
}

const MB: f64 = 1e6;

/// Every target, in the issue's order.
pub fn targets(r: &Results) -> Vec<Target> {
    let full = r.companies >= FULL_SCALE;
    let mut out = Vec::new();
    let tput = |name: &str| r.scenario(name).map(|s| s.throughput_per_s.median);
    // Without an echo baseline (a `--only` run leaving it out) there is
    // nothing to compare throughputs with.
    let against =
        |name: &str, goal: String, floor: f64| match r.scenario(name).zip(r.baseline(name)) {
            Some((s, echo)) => {
                let (tput, base) = (s.throughput_per_s.median, echo.throughput_per_s.median);
                Target {
                    measured: format!(
                        "{:.3}x ({tput:.0} vs {base:.0} calls/s of `{}`)",
                        tput / base,
                        echo.name
                    ),
                    status: verdict(tput / base >= floor, full),
                    goal,
                }
            }
            None => not_measured(&goal),
        };

    out.push(against(
        "get",
        "GetCompany throughput ≥ 0.8x echo".into(),
        0.8,
    ));
    let summaries: Vec<_> = r
        .scenarios
        .iter()
        .filter(|s| s.name.starts_with("summary/"))
        .collect();
    if summaries.is_empty() {
        out.push(not_measured("GetSummary throughput ≥ 0.8x echo, any scope"));
    }
    for s in summaries {
        let goal = format!("GetSummary `{}` ≥ 0.8x echo", &s.name["summary/".len()..]);
        out.push(against(&s.name, goal, 0.8));
    }
    let lists: Vec<_> = r
        .scenarios
        .iter()
        .filter(|s| s.name.starts_with("list/"))
        .collect();
    if lists.is_empty() {
        out.push(not_measured(
            "ListCompanies under load ≥ 0.5x the echo of its page, every shape",
        ));
    }
    for s in lists {
        let goal = format!(
            "ListCompanies `{}` under load ≥ 0.5x the echo of its page",
            &s.name["list/".len()..]
        );
        out.push(against(&s.name, goal, 0.5));
    }
    for (name, rpc) in [
        ("relocation-flows", "GetRelocationFlows"),
        ("branch-footprint", "GetBranchFootprint"),
        ("time-series", "GetTimeSeries"),
    ] {
        out.push(against(
            name,
            format!("{rpc} under load ≥ 0.5x the echo of its answer"),
            0.5,
        ));
    }
    if r.listings.is_empty() {
        out.push(not_measured(
            "ListCompanies ≥ 10x faster than PostgreSQL, one call at a time, every shape",
        ));
    }
    for c in &r.listings {
        let ratio = c.postgres_p50_us / c.list_p50_us.max(1e-9);
        out.push(Target {
            goal: format!(
                "ListCompanies `{}` ≥ 10x faster than PostgreSQL, one call at a time",
                c.shape
            ),
            measured: format!(
                "{ratio:.1}x ({} vs {})",
                micros(c.list_p50_us),
                micros(c.postgres_p50_us)
            ),
            status: verdict(ratio >= 10.0, full),
        });
    }
    match tput("create") {
        Some(create) if r.raw_sled_writes_per_s > 0.0 => {
            let ratio = create / r.raw_sled_writes_per_s;
            out.push(Target {
                goal: "durable CreateCompany ≥ 1.5x the raw sled loop".into(),
                measured: format!(
                    "{ratio:.3}x ({create:.0} vs {:.0} writes/s)",
                    r.raw_sled_writes_per_s
                ),
                status: verdict(ratio >= 1.5, true),
            });
        }
        _ => out.push(not_measured(
            "durable CreateCompany ≥ 1.5x the raw sled loop",
        )),
    }
    out.push(Target {
        goal: "import 1,000,000 companies ≤ 60 s".into(),
        measured: format!(
            "{:.1} s for {} companies",
            r.import_s.median,
            thousands(r.companies)
        ),
        status: verdict(r.import_s.median <= 60.0, full),
    });
    out.extend(open_loop_targets(r, full));
    let f = &r.freshness;
    out.push(if f.target_rate == 0 {
        not_measured("freshness p99 ≤ 20 ms at 1,000 writes/s")
    } else {
        Target {
            goal: "freshness p99 ≤ 20 ms at 1,000 writes/s".into(),
            measured: format!(
                "{} at {:.0} writes/s (p50 {})",
                micros(f.p99_us),
                f.achieved_rate,
                micros(f.p50_us)
            ),
            status: verdict(
                f.p99_us <= 20_000.0 && f.achieved_rate >= 0.95 * f64::from(f.target_rate),
                full && f.target_rate >= 1000,
            ),
        }
    });
    out.push(Target {
        goal: "stats initial sync ≤ 15 s".into(),
        measured: format!("{:.1} s", r.stats_sync_s.median),
        status: verdict(r.stats_sync_s.median <= 15.0, full),
    });
    out.push(Target {
        goal: "stats RSS ≤ 400 MB".into(),
        measured: format!("{:.0} MB", r.stats_peak_rss_bytes as f64 / MB),
        status: verdict(r.stats_peak_rss_bytes as f64 <= 400.0 * MB, full),
    });
    out.push(Target {
        goal: "registry RSS ≤ 600 MB".into(),
        measured: format!("{:.0} MB", r.registry_peak_rss_bytes as f64 / MB),
        status: verdict(r.registry_peak_rss_bytes as f64 <= 600.0 * MB, full),
    });
    out.push(Target {
        goal: "registry restart to SERVING ≤ 5 s".into(),
        measured: format!("{:.2} s", r.registry_restart_s.median),
        status: verdict(r.registry_restart_s.median <= 5.0, full),
    });
    let disk = r.disk_bytes as f64 / (r.encoded_company_bytes.max(1)) as f64;
    out.push(Target {
        goal: "disk ≤ 3x the companies' encoded size".into(),
        measured: format!(
            "{disk:.2}x ({:.0} MB for {:.0} MB encoded)",
            r.disk_bytes as f64 / MB,
            r.encoded_company_bytes as f64 / MB
        ),
        status: verdict(disk <= 3.0, full),
    });
    out.extend(etcd_targets(r, full));
    if r.postgres.is_empty() {
        out.push(not_measured(
            "GetSummary latency ≥ 100x lower than PostgreSQL's GROUP BY",
        ));
    }
    for c in &r.postgres {
        let ratio = c.postgres_p50_us / c.summary_p50_us.max(1e-9);
        out.push(Target {
            goal: format!(
                "GetSummary `{}` latency ≥ 100x lower than PostgreSQL's GROUP BY",
                c.scope
            ),
            measured: format!(
                "{ratio:.0}x ({} vs {})",
                micros(c.summary_p50_us),
                micros(c.postgres_p50_us)
            ),
            status: verdict(ratio >= 100.0, full),
        });
    }
    out
}

/// The registry on etcd: reads against the echo measured beside them,
/// writes against the same transactions sent straight to etcd.
fn etcd_targets(r: &Results, full: bool) -> Vec<Target> {
    let goals = [
        "on etcd: GetCompany throughput ≥ 0.8x echo",
        "on etcd: GetSummary `all` ≥ 0.8x echo",
        "on etcd: durable CreateCompany ≥ 0.8x the same transactions straight to etcd",
        "on etcd: import ≥ 0.7x the rate of the same transactions straight to etcd",
    ];
    let Some(e) = &r.etcd else {
        return goals
            .iter()
            .map(|g| match &r.etcd_failed {
                Some(why) => Target {
                    measured: format!("the etcd phase failed: {why}"),
                    ..not_measured(g)
                },
                None => not_measured(g),
            })
            .collect();
    };
    let mut out = Vec::new();
    for (name, goal) in [("etcd/get", goals[0]), ("etcd/summary/all", goals[1])] {
        out.push(match r.scenario(name).zip(r.baseline(name)) {
            Some((s, echo)) => {
                let (tput, base) = (s.throughput_per_s.median, echo.throughput_per_s.median);
                Target {
                    goal: goal.into(),
                    measured: format!(
                        "{:.3}x ({tput:.0} vs {base:.0} calls/s of `{}`)",
                        tput / base,
                        echo.name
                    ),
                    status: verdict(tput / base >= 0.8, full),
                }
            }
            None => not_measured(goal),
        });
    }
    out.push(
        match r
            .scenario("etcd/create")
            .filter(|_| e.raw_creates_per_s.median > 0.0)
        {
            Some(s) => {
                let ratio = s.throughput_per_s.median / e.raw_creates_per_s.median;
                Target {
                    goal: goals[2].into(),
                    measured: format!(
                        "{ratio:.3}x ({:.0} vs {:.0} writes/s)",
                        s.throughput_per_s.median, e.raw_creates_per_s.median
                    ),
                    status: verdict(ratio >= 0.8, true),
                }
            }
            None => not_measured(goals[2]),
        },
    );
    out.push(if e.import_s.median > 0.0 && e.raw_import_s.median > 0.0 {
        let ratio = e.raw_import_s.median / e.import_s.median;
        Target {
            goal: goals[3].into(),
            measured: format!(
                "{ratio:.3}x ({:.1} s vs {:.1} s for {} companies)",
                e.import_s.median,
                e.raw_import_s.median,
                thousands(r.companies)
            ),
            status: verdict(ratio >= 0.7, full),
        }
    } else {
        not_measured(goals[3])
    });
    out
}

/// The open loop's targets: each read's p99 within 1.5x the echo's at the
/// same rate, and GetCompany's with durable writes beside it within 1.5x
/// its own alone.
fn open_loop_targets(r: &Results, full: bool) -> Vec<Target> {
    let reads = [
        ("get", "GetCompany"),
        ("summary/all", "GetSummary `all`"),
        (
            "list/display-name",
            "ListCompanies `display-name` (indexed)",
        ),
    ];
    let Some(o) = &r.open_loop else {
        let mut out: Vec<Target> = reads
            .iter()
            .map(|(_, what)| not_measured(&format!("open loop: {what} p99 ≤ 1.5x echo's p99")))
            .collect();
        out.push(not_measured(
            "open loop: GetCompany p99 with 10% durable writes beside it ≤ 1.5x alone",
        ));
        return out;
    };
    let ratio = |name: &str, base: &str, goal: String| match o.scenario(name).zip(o.scenario(base))
    {
        Some((s, b)) => Target {
            measured: format!(
                "{:.2}x ({} vs {} at {} calls/s){}",
                s.p99_us / b.p99_us.max(1.0),
                micros(s.p99_us),
                micros(b.p99_us),
                thousands(u64::from(o.rate_per_s)),
                if s.failed_share > 0.0 {
                    format!(", {:.1}% of calls failed", s.failed_share * 100.0)
                } else {
                    String::new()
                }
            ),
            status: verdict(s.p99_us <= 1.5 * b.p99_us && s.failed_share == 0.0, full),
            goal,
        },
        None => not_measured(&goal),
    };
    let mut out: Vec<Target> = reads
        .iter()
        .map(|(name, what)| {
            ratio(
                name,
                "echo",
                format!("open loop: {what} p99 ≤ 1.5x echo's p99"),
            )
        })
        .collect();
    out.push(ratio(
        "reads-with-writes",
        "get",
        "open loop: GetCompany p99 with 10% durable writes beside it ≤ 1.5x alone".into(),
    ));
    out
}

fn not_measured(goal: &str) -> Target {
    Target {
        goal: goal.into(),
        measured: "—".into(),
        status: Status::NotMeasured,
    }
}

fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A latency in µs, in the unit that reads best.
fn micros(us: f64) -> String {
    if us >= 10_000.0 {
        format!("{:.0} ms", us / 1000.0)
    } else if us >= 1000.0 {
        format!("{:.1} ms", us / 1000.0)
    } else {
        format!("{us:.0} µs")
    }
}

/// The open loop's figures, when measured.
fn open_loop_section(r: &Results) -> String {
    let Some(o) = &r.open_loop else {
        return String::new();
    };
    let echo_p99 = o.scenario("echo").map_or(0.0, |e| e.p99_us);
    let mut md = format!(
        "### Open loop\n\n\
         Calls started on a fixed schedule at {} per second ({}), each latency counted from \
         the call's scheduled start, so a call held up by earlier ones counts its wait. \
         Medians of the runs.\n\n\
         | scenario | each call | answered/s | failed | p50 | p99 | p99.9 | p99 vs echo |\n\
         |---|---|---|---|---|---|---|---|\n",
        thousands(u64::from(o.rate_per_s)),
        if o.rate_set {
            "set by `--open-loop-rate`"
        } else {
            "half the echo's closed-loop throughput in this run"
        }
    );
    for s in &o.scenarios {
        md.push_str(&format!(
            "| `{}` | {} | {:.0} | {:.1}% | {} | {} | {} | {:.2}x |\n",
            s.name,
            s.description,
            s.achieved_per_s,
            s.failed_share * 100.0,
            micros(s.p50_us),
            micros(s.p99_us),
            micros(s.p999_us),
            s.p99_us / echo_p99.max(1.0)
        ));
    }
    md.push('\n');
    md
}

/// The generated part of BENCHMARKS.md, markers included: the run's
/// setting, then one section per kind of measurement.
pub fn markdown(r: &Results) -> String {
    [
        format!("{BEGIN}\n\n## The latest run\n\n"),
        setting(r),
        targets_section(r),
        scenarios_section(r),
        once_per_run_section(r),
        postgres_section(r),
        listings_section(r),
        etcd_section(r),
        open_loop_section(r),
        format!("{END}\n"),
    ]
    .concat()
}

/// The machine, the command and the load.
fn setting(r: &Results) -> String {
    let m = &r.machine;
    let mut md = format!(
        "- Machine: {} CPUs ({}), {:.0} GiB, {}, Linux {}. The load generator, \
         the baselines and the servers share these CPUs.\n",
        m.cpus,
        m.cpu_model,
        m.memory_bytes as f64 / f64::from(1u32 << 30),
        m.os,
        m.kernel
    );
    md += &format!("- Command: `{}`\n", r.command);
    md += &format!(
        "- {} companies, {} build; {} calls in flight over {} connections; \
         every figure is the median of {} runs of {} s.\n",
        thousands(r.companies),
        r.profile,
        r.concurrency,
        r.connections,
        r.runs,
        r.seconds_per_run
    );
    if r.companies < FULL_SCALE {
        md += &format!(
            "- **Below the targets' scale** ({} companies): verdicts that depend \
             on scale say \"below scale\".\n",
            thousands(FULL_SCALE)
        );
    }
    md + "\n"
}

/// Every target, what was measured and whether it is met.
fn targets_section(r: &Results) -> String {
    let mut md = String::from("### Targets\n\n| target | measured | status |\n|---|---|---|\n");
    for t in targets(r) {
        md += &format!("| {} | {} | {} |\n", t.goal, t.measured, t.status.label());
    }
    md + "\n"
}

/// One row per load scenario, against the echo of its payload.
fn scenarios_section(r: &Results) -> String {
    let mut md = String::from(
        "### Load scenarios\n\n\
         | scenario | each call | calls/s | vs echo | p50 | p99 | server p99 | server CPU per call |\n\
         |---|---|---|---|---|---|---|---|\n",
    );
    for s in &r.scenarios {
        let vs_echo = r.baseline(&s.name).map_or("—".to_string(), |echo| {
            format!(
                "{:.2}",
                s.throughput_per_s.median / echo.throughput_per_s.median
            )
        });
        md += &format!(
            "| {} | {} | {:.0} | {} | {} | {} | {} | {:.0} µs |\n",
            s.name,
            s.description,
            s.throughput_per_s.median,
            vs_echo,
            micros(s.p50_us),
            micros(s.p99_us),
            s.server_p99_us.map_or("—".into(), micros),
            s.server_cpu_ms_per_call * 1000.0,
        );
    }
    md += &format!(
        "| raw sled loop | insert, flush, fsync one key (in-process) | {:.0} | | | | | |\n\n",
        r.raw_sled_writes_per_s
    );
    md + "\"vs echo\" is the throughput against the echo of the same payload: \
          `echo/<scenario>` (the scenario's own answer, such as the same first \
          page for `list/<shape>`) where the suite measures one, and for \
          `observed-echo/summary/<scope>` the echo of that summary; `echo` (a \
          stored company) for the rest. `observed-echo/summary/<scope>` is that echo with the layer that \
          times the services' calls: its server p99 is the transport's own \
          under the same load, and it is never a throughput baseline.\n\n"
}

/// The measurements made once per run: import, sync, restart, freshness.
fn once_per_run_section(r: &Results) -> String {
    let mut md =
        String::from("### Once per run\n\n| measurement | median | runs |\n|---|---|---|\n");
    for (name, m) in [
        (
            "import through BatchCreateCompanies of 1,000 (s)",
            &r.import_s,
        ),
        ("stats initial sync, start to SERVING (s)", &r.stats_sync_s),
        (
            "registry restart after SIGKILL, start to SERVING (s)",
            &r.registry_restart_s,
        ),
    ] {
        let runs: Vec<String> = m.runs.iter().map(|v| format!("{v:.2}")).collect();
        md += &format!("| {name} | {:.2} | {} |\n", m.median, runs.join(", "));
    }
    md += &format!(
        "| freshness at {} writes/s: acknowledgement to visible in stats | p50 {}, p99 {} | {:.0} writes/s achieved |\n\n",
        r.freshness.target_rate,
        micros(r.freshness.p50_us),
        micros(r.freshness.p99_us),
        r.freshness.achieved_rate
    );
    md
}

/// GetSummary against PostgreSQL's GROUP BY, one call at a time; nothing
/// when PostgreSQL was skipped.
fn postgres_section(r: &Results) -> String {
    if r.postgres.is_empty() {
        return String::new();
    }
    let mut md = format!(
        "### PostgreSQL\n\nThe same companies, loaded with `COPY` and indexed in {:.1} s. One call \
         at a time: the SQL that computes a summary (six `GROUP BY` statements in \
         one round trip) against GetSummary over gRPC.\n\n\
         | scope | PostgreSQL p50 | GetSummary p50 | ratio |\n|---|---|---|---|\n",
        r.postgres_load_s
    );
    for c in &r.postgres {
        md += &format!(
            "| {} | {} | {} | {:.0}x |\n",
            c.scope,
            micros(c.postgres_p50_us),
            micros(c.summary_p50_us),
            c.postgres_p50_us / c.summary_p50_us.max(1e-9)
        );
    }
    md + "\n"
}

/// Each listing shape against PostgreSQL, one call at a time; nothing
/// when PostgreSQL was skipped.
fn listings_section(r: &Results) -> String {
    if r.listings.is_empty() {
        return String::new();
    }
    let mut md = String::from(
        "### Listings against PostgreSQL\n\nOne call at a time: ListCompanies over gRPC (a page \
         of 50 and the exact `total_size`) against PostgreSQL counting the matches and \
         reading the same page in one round trip, with the indexes listed (beside the \
         primary key on `name`; the C locale, so text orders bytewise as the registry's \
         names do). The suite checks first that both give the same page and count. \
         \"echo p50\" is the echo of the same page one call at a time: the transport's \
         own round trip, below which no gRPC answer goes.\n\n\
         | shape | filter | order_by | PostgreSQL indexes | matches | PostgreSQL p50 | ListCompanies p50 | echo p50 | ratio |\n\
         |---|---|---|---|---|---|---|---|---|\n",
    );
    for c in &r.listings {
        md += &format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {:.1}x |\n",
            c.shape,
            if c.filter.is_empty() {
                "none".to_string()
            } else {
                format!("`{}`", c.filter.replace('|', "\\|"))
            },
            if c.order_by.is_empty() {
                "name".to_string()
            } else {
                format!("`{}`", c.order_by)
            },
            c.indexes
                .iter()
                .map(|i| format!("`{}`", i.trim_start_matches("CREATE INDEX ON ")))
                .collect::<Vec<_>>()
                .join(", "),
            thousands(u64::try_from(c.total).unwrap_or_default()),
            micros(c.postgres_p50_us),
            micros(c.list_p50_us),
            micros(c.echo_p50_us),
            c.postgres_p50_us / c.list_p50_us.max(1e-9)
        );
    }
    md + "\n"
}

fn etcd_section(r: &Results) -> String {
    let Some(e) = &r.etcd else {
        return match &r.etcd_failed {
            Some(why) => format!(
                "### On etcd

The etcd phase of this run failed, so its figures are not                  measured: {why}

"
            ),
            None => String::new(),
        };
    };
    let tput = |name: &str| {
        r.scenario(name).map_or("—".to_string(), |s| {
            format!("{:.0}", s.throughput_per_s.median)
        })
    };
    let rate = |seconds: f64| {
        if seconds > 0.0 {
            format!("{:.0}", r.companies as f64 / seconds)
        } else {
            "—".into()
        }
    };
    format!(
        "### On etcd\n\n\
         The registry with `--etcd-endpoints` on a 3-member etcd cluster on this machine \
         (each member fsyncs), beside the same transactions sent straight to etcd by a plain \
         client (`crates/zgc-bench/src/etcd.rs`). Its load scenarios are in the table above \
         as `etcd/...`, each against the echo measured beside it.\n\n\
         | | registry on etcd | straight to etcd | ratio |\n\
         |---|---|---|---|\n\
         | import of {} companies (companies/s) | {} ({:.1} s) | {} ({:.1} s) | {:.2}x |\n\
         | durable creates, {} in flight (writes/s) | {} | {:.0} | {} |\n\
         | durable creates through {} registry replicas (writes/s) | {} | | {} against 1 replica |\n\
         | a replica joining, start to SERVING (s) | {} | | |\n\n\
         CPU per company written, summed over the runs (the registry's, and the three \
         members' together): on one machine, what the registry uses the members cannot.\n\n\
         | | registry on etcd: registry + members | straight to etcd: members |\n\
         |---|---|---|\n\
         | import | {} | {} |\n\
         | durable creates | {} | {} |\n\n",
        thousands(r.companies),
        rate(e.import_s.median),
        e.import_s.median,
        rate(e.raw_import_s.median),
        e.raw_import_s.median,
        if e.import_s.median > 0.0 {
            e.raw_import_s.median / e.import_s.median
        } else {
            0.0
        },
        r.concurrency,
        tput("etcd/create"),
        e.raw_creates_per_s.median,
        r.scenario("etcd/create")
            .filter(|_| e.raw_creates_per_s.median > 0.0)
            .map_or("—".into(), |s| format!(
                "{:.2}x",
                s.throughput_per_s.median / e.raw_creates_per_s.median
            )),
        e.replicas,
        tput("etcd/create-replicas"),
        r.scenario("etcd/create-replicas")
            .zip(r.scenario("etcd/create"))
            .map_or("—".into(), |(many, one)| format!(
                "{:.2}x",
                many.throughput_per_s.median / one.throughput_per_s.median
            )),
        if e.replica_start_s.runs.is_empty() {
            "—".to_string()
        } else {
            format!("{:.1}", e.replica_start_s.median)
        },
        cpu_use(&e.import_cpu, true),
        cpu_use(&e.raw_import_cpu, false),
        cpu_use(&e.create_cpu, true),
        cpu_use(&e.raw_create_cpu, false),
    )
}

/// CPU per company written, as `registry + members` or `members`.
fn cpu_use(cpu: &crate::results::CpuUse, with_registry: bool) -> String {
    match cpu.per_write_us() {
        None => "—".into(),
        Some((registry, members)) if with_registry => {
            format!("{registry:.0} µs + {members:.0} µs")
        }
        Some((_, members)) => format!("{members:.0} µs"),
    }
}

/// `existing` with its generated part replaced by `generated`; the whole
/// of `generated` under a title when `existing` has no markers.
pub fn splice(existing: Option<&str>, generated: &str) -> String {
    if let Some(text) = existing
        && let (Some(begin), Some(end)) = (text.find(BEGIN), text.find(END))
        && begin < end
    {
        let mut out = String::with_capacity(text.len() + generated.len());
        out.push_str(&text[..begin]);
        out.push_str(generated.trim_end_matches('\n'));
        out.push_str(&text[end + END.len()..]);
        return out;
    }
    format!("# Benchmarks\n\n{generated}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::{Median, Scenario};

    fn scenario(name: &str, tput: f64, server_p99_us: Option<f64>) -> Scenario {
        Scenario {
            name: name.into(),
            throughput_per_s: Median::of(vec![tput]),
            server_p99_us,
            ..Default::default()
        }
    }

    fn results(companies: u64) -> Results {
        Results {
            companies,
            scenarios: vec![
                scenario("echo", 1000.0, None),
                scenario("get", 850.0, Some(100.0)),
                scenario("summary/all", 700.0, Some(300.0)),
                scenario("create", 150.0, None),
            ],
            raw_sled_writes_per_s: 100.0,
            import_s: Median::of(vec![50.0]),
            disk_bytes: 400,
            encoded_company_bytes: 100,
            ..Default::default()
        }
    }

    fn status(r: &Results, goal_start: &str) -> Status {
        targets(r)
            .into_iter()
            .find(|t| t.goal.starts_with(goal_start))
            .map(|t| t.status)
            .unwrap_or(Status::NotMeasured)
    }

    #[test]
    fn a_failed_etcd_phase_says_why_its_targets_are_not_measured() {
        let mut r = results(FULL_SCALE);
        r.etcd_failed = Some("etcd: Timeout expired".into());
        let etcd: Vec<Target> = targets(&r)
            .into_iter()
            .filter(|t| t.goal.starts_with("on etcd"))
            .collect();
        assert_eq!(etcd.len(), 4);
        for t in &etcd {
            assert_eq!(t.status, Status::NotMeasured);
            assert!(t.measured.contains("Timeout expired"), "{t:?}");
        }
        assert!(etcd_section(&r).contains("Timeout expired"));
    }

    #[test]
    fn without_the_echo_baseline_throughput_targets_are_not_measured() {
        let mut r = results(FULL_SCALE);
        r.scenarios.retain(|s| s.name != "echo");
        assert_eq!(status(&r, "GetCompany"), Status::NotMeasured);
        assert_eq!(status(&r, "GetSummary `all` ≥"), Status::NotMeasured);
        assert!(markdown(&r).contains("| get |  | 850 | — |"));
    }

    #[test]
    fn ratios_decide_the_verdicts_at_full_scale() {
        let r = results(FULL_SCALE);
        assert_eq!(status(&r, "GetCompany"), Status::Met);
        assert_eq!(status(&r, "GetSummary `all` ≥"), Status::Missed);
        assert_eq!(status(&r, "durable CreateCompany"), Status::Met);
        assert_eq!(status(&r, "import"), Status::Met);
        assert_eq!(status(&r, "disk"), Status::Missed);
        assert_eq!(status(&r, "freshness"), Status::NotMeasured);
        assert_eq!(status(&r, "GetSummary latency ≥ 100x"), Status::NotMeasured);
    }

    #[test]
    fn a_summary_is_compared_with_the_echo_of_its_own_payload_when_measured() {
        let mut r = results(FULL_SCALE);
        // Against the company-sized echo: 700 / 1000.
        assert_eq!(status(&r, "GetSummary `all` ≥"), Status::Missed);
        r.scenarios.push(scenario(
            &crate::results::summary_echo_name("all"),
            850.0,
            None,
        ));
        // Against the echo of its own summary: 700 / 850.
        assert_eq!(status(&r, "GetSummary `all` ≥"), Status::Met);
        assert!(markdown(&r).contains("| summary/all |  | 700 | 0.82 |"));
        // GetCompany keeps the company-sized echo.
        assert!(markdown(&r).contains("| get |  | 850 | 0.85 |"));
    }

    #[test]
    fn the_timed_echo_is_compared_like_a_service() {
        let mut r = results(FULL_SCALE);
        r.scenarios.push(scenario(
            &crate::results::summary_echo_name("all"),
            850.0,
            None,
        ));
        r.scenarios.push(scenario(
            &crate::results::observed_echo_name("all"),
            800.0,
            Some(200.0),
        ));
        // Throughput is compared with the bare echo (700 / 850), and the
        // timed echo with it too (800 / 850); server p99s only show.
        assert_eq!(status(&r, "GetSummary `all` ≥"), Status::Met);
        assert!(markdown(&r).contains("| observed-echo/summary/all |  | 800 | 0.94 |"));
        assert!(!targets(&r).iter().any(|t| t.goal.contains("server-side")));
    }

    fn open(name: &str, p99_us: f64) -> crate::results::OpenLoopScenario {
        crate::results::OpenLoopScenario {
            name: name.into(),
            p99_us,
            ..Default::default()
        }
    }

    #[test]
    fn open_loop_p99s_are_held_to_the_echo_and_to_reads_alone() {
        let mut r = results(FULL_SCALE);
        assert_eq!(status(&r, "open loop: GetCompany p99"), Status::NotMeasured);
        r.open_loop = Some(crate::results::OpenLoop {
            rate_per_s: 20_000,
            rate_set: false,
            scenarios: vec![
                open("echo", 400.0),
                open("get", 600.0),
                open("summary/all", 601.0),
                open("reads-with-writes", 901.0),
            ],
        });
        assert_eq!(status(&r, "open loop: GetCompany p99 ≤"), Status::Met);
        assert_eq!(status(&r, "open loop: GetSummary"), Status::Missed);
        assert_eq!(status(&r, "open loop: ListCompanies"), Status::NotMeasured);
        assert_eq!(status(&r, "open loop: GetCompany p99 with"), Status::Missed);
        let md = markdown(&r);
        assert!(md.contains("### Open loop\n\nCalls started"), "{md}");
        assert!(
            md.contains("\n| scenario | each call | answered/s | failed |"),
            "{md}"
        );
        assert!(
            md.contains("| `get` |  | 0 | 0.0% | 0 µs | 600 µs | 0 µs | 1.50x |"),
            "{md}"
        );
    }

    #[test]
    fn below_full_scale_only_scale_free_targets_get_a_verdict() {
        let r = results(1000);
        assert_eq!(status(&r, "GetCompany"), Status::BelowScale);
        assert_eq!(status(&r, "durable CreateCompany"), Status::Met);
        assert!(markdown(&r).contains("Below the targets' scale"));
    }

    #[test]
    fn each_section_renders_its_measurements() {
        let mut r = results(FULL_SCALE);
        r.import_s = Median::of(vec![47.37, 49.01, 50.13]);
        assert!(
            once_per_run_section(&r).contains("| 49.01 | 47.37, 49.01, 50.13 |"),
            "{}",
            once_per_run_section(&r)
        );
        assert!(
            scenarios_section(&r)
                .contains("| raw sled loop | insert, flush, fsync one key (in-process) | 100 |")
        );
        assert_eq!(postgres_section(&r), "", "no section without PostgreSQL");
        r.postgres.push(crate::results::SqlComparison {
            scope: "all".into(),
            postgres_p50_us: 348_000.0,
            summary_p50_us: 149.0,
        });
        assert!(postgres_section(&r).contains("| all | 348 ms | 149 µs | 2336x |"));
        let md = markdown(&r);
        assert!(md.starts_with(BEGIN) && md.trim_end().ends_with(END));
        let order: Vec<usize> = [
            "### Targets",
            "### Load scenarios",
            "### Once per run",
            "### PostgreSQL",
        ]
        .iter()
        .map(|h| md.find(h).expect(h))
        .collect();
        assert!(order.is_sorted(), "sections in order: {order:?}");
    }

    #[test]
    fn splicing_keeps_what_is_outside_the_markers() {
        let old = format!("# B\n\nintro\n\n{BEGIN}\nold\n{END}\n\n## Notes\nkept\n");
        let new = format!("{BEGIN}\nnew\n{END}\n");
        let out = splice(Some(&old), &new);
        assert_eq!(
            out,
            format!("# B\n\nintro\n\n{BEGIN}\nnew\n{END}\n\n## Notes\nkept\n")
        );
        assert!(splice(None, &new).starts_with("# Benchmarks\n\n"));
        assert!(splice(Some("no markers"), &new).contains("new"));
    }

    #[test]
    fn a_listing_is_held_to_its_page_echo_and_to_postgres() {
        let mut r = results(FULL_SCALE);
        assert_eq!(status(&r, "ListCompanies under load"), Status::NotMeasured);
        assert_eq!(status(&r, "ListCompanies ≥ 10x"), Status::NotMeasured);
        r.scenarios.push(scenario(
            &crate::results::list_name("parent-company"),
            450.0,
            None,
        ));
        // Against the company-sized echo until its own page's is there.
        assert!(
            targets(&r)
                .iter()
                .any(|t| t.measured.contains("of `echo`") && t.goal.contains("parent-company"))
        );
        r.scenarios.push(scenario(
            &crate::results::list_echo_name("parent-company"),
            1000.0,
            None,
        ));
        assert_eq!(
            status(&r, "ListCompanies `parent-company` under"),
            Status::Missed
        );
        r.scenarios[5].throughput_per_s = Median::of(vec![500.0]);
        assert_eq!(
            status(&r, "ListCompanies `parent-company` under"),
            Status::Met
        );

        assert_eq!(listings_section(&r), "", "no section without PostgreSQL");
        r.listings.push(crate::results::ListComparison {
            shape: "parent-company".into(),
            filter: r#"parent_company = "companies/a""#.into(),
            order_by: String::new(),
            indexes: vec!["CREATE INDEX ON companies (parent_company)".into()],
            total: 1234,
            postgres_p50_us: 900.0,
            list_p50_us: 100.0,
            echo_p50_us: 60.0,
        });
        assert_eq!(
            status(&r, "ListCompanies `parent-company` ≥ 10x"),
            Status::Missed
        );
        r.listings[0].list_p50_us = 90.0;
        assert_eq!(
            status(&r, "ListCompanies `parent-company` ≥ 10x"),
            Status::Met
        );
        assert!(
            listings_section(&r).contains(
                "| parent-company | `parent_company = \"companies/a\"` | name | \
                 `companies (parent_company)` | 1,234 | 900 µs | 90 µs | 60 µs | 10.0x |"
            ),
            "{}",
            listings_section(&r)
        );
        assert!(markdown(&r).contains("### Listings against PostgreSQL"));
    }

    #[test]
    fn numbers_read_well() {
        assert_eq!(thousands(1_000_000), "1,000,000");
        assert_eq!(thousands(999), "999");
        assert_eq!(micros(250.4), "250 µs");
        assert_eq!(micros(2_500.0), "2.5 ms");
        assert_eq!(micros(25_000.0), "25 ms");
    }
}
