//! The real `zgc` binary against real services on loopback ports: the
//! scenario imported through the CLI reproduces the articles' figures; an
//! interrupted import resumes to the same data; every subcommand works, in
//! tables and in JSON, with meaningful exit codes; `zgc up` seeds once and
//! stops cleanly.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use assert_cmd::cargo::CommandCargoExt;
use serde_json::Value;
use zgc_proto::registry::v1::*;
use zgc_proto::stats::v1::*;
use zgc_proto::types::v1::Date;
use zgc_tests::{Registry, Stats};

const SCENARIO: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../zgc-dataset/data/scenario.jsonl"
);

/// Runs `zgc` with the given endpoints; returns (exit code, stdout, stderr).
async fn zgc(registry: &str, stats: &str, args: &[&str]) -> (i32, String, String) {
    let mut cmd = Command::cargo_bin("zgc").unwrap();
    cmd.args(["--registry", registry, "--stats", stats])
        .args(args);
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

struct Pair {
    registry: Registry,
    stats: Stats,
}

impl Pair {
    async fn start() -> Self {
        let registry = Registry::start().await;
        let stats = Stats::start(&registry.endpoint()).await;
        Self { registry, stats }
    }

    async fn zgc(&self, args: &[&str]) -> (i32, String, String) {
        zgc(
            &self.registry.endpoint(),
            &format!("http://{}", self.stats.addr),
            args,
        )
        .await
    }

    async fn head(&self) -> u64 {
        let resp = self
            .registry
            .client()
            .await
            .list_parks(ListParksRequest::default())
            .await
            .unwrap();
        resp.metadata()
            .get("x-zgc-revision")
            .unwrap()
            .to_str()
            .unwrap()
            .parse()
            .unwrap()
    }
}

fn park(name: &str) -> Option<Scope> {
    Some(Scope {
        selector: Some(scope::Selector::Park(format!("parks/{name}"))),
        include_affiliates: false,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_imported_scenario_reproduces_the_articles_figures() {
    let pair = Pair::start().await;
    let (code, out, err) = pair.zgc(&["import", SCENARIO]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("failed 0"), "{out}");
    let rev = pair.head().await;
    let mut s = pair.stats.client().await;
    let summary = |scope: Option<Scope>| GetSummaryRequest {
        scope,
        min_revision: rev,
    };

    // Baoding Zhongguancun Innovation Center: about 90 companies, half from Beijing.
    let baoding = s
        .get_summary(summary(park("baoding")))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(baoding.company_count, 90);
    assert_eq!(baoding.relocation_origins[0].province, "Beijing");
    assert_eq!(baoding.relocation_origins[0].company_count, 45);
    let p = pair
        .registry
        .client()
        .await
        .get_park(GetParkRequest {
            name: "parks/baoding".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        p.established,
        Some(Date {
            year: 2015,
            month: 4,
            day: 0
        })
    );

    // Tianjin Binhai: more than 30 companies in its first two months; 45
    // programmes, 35 billion yuan.
    let series = s
        .get_time_series(GetTimeSeriesRequest {
            scope: park("binhai"),
            metric: SeriesMetric::CompaniesFounded as i32,
            granularity: Granularity::Month as i32,
            start: Some(Date {
                year: 2016,
                month: 11,
                day: 0,
            }),
            end: Some(Date {
                year: 2016,
                month: 12,
                day: 0,
            }),
            min_revision: rev,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(series.points.iter().map(|p| p.value).sum::<f64>() > 30.0);
    let binhai = s
        .get_summary(summary(park("binhai")))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(binhai.branch_count, 45);
    assert_eq!(binhai.investment_cny, 35_000_000_000);

    // 687 ZGC branches in Tianjin and Hebei, January-July 2016; more than
    // 10,000 by the end of 2023.
    let branches = |start: Option<Date>, end: Option<Date>| GetBranchFootprintRequest {
        parent_scope: park("zgc"),
        start,
        end,
        level: RegionLevel::Province as i32,
        min_revision: rev,
    };
    let tj_hb = |r: GetBranchFootprintResponse| -> i64 {
        r.regions
            .iter()
            .filter(|x| {
                matches!(
                    x.location.as_ref().unwrap().province.as_str(),
                    "Tianjin" | "Hebei"
                )
            })
            .map(|x| x.branch_count)
            .sum()
    };
    let jan_jul = s
        .get_branch_footprint(branches(
            Some(Date {
                year: 2016,
                month: 1,
                day: 0,
            }),
            Some(Date {
                year: 2016,
                month: 7,
                day: 0,
            }),
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(tj_hb(jan_jul), 687);
    let by_2023 = s
        .get_branch_footprint(branches(
            None,
            Some(Date {
                year: 2023,
                month: 12,
                day: 0,
            }),
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(tj_hb(by_2023) > 10_000);

    // Luquan: 1,060 electronic-information companies; 2023 income above
    // 85 billion, up 34.9%; at least 50 from Beijing and Tianjin.
    let luquan = s
        .get_summary(summary(park("luquan")))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        luquan
            .sectors
            .iter()
            .find(|x| x.sector == "electronic-information")
            .unwrap()
            .company_count,
        1060
    );
    let y = luquan
        .figures_by_year
        .iter()
        .find(|f| f.year == 2023)
        .unwrap();
    assert!(y.revenue_cny > 85_000_000_000);
    assert_eq!(format!("{:.1}", y.revenue_yoy_percent.unwrap()), "34.9");
    let bj_tj: i64 = luquan
        .relocation_origins
        .iter()
        .filter(|o| o.province == "Beijing" || o.province == "Tianjin")
        .map(|o| o.company_count)
        .sum();
    assert!(bj_tj >= 50);

    // Guiyang: more than 50 companies, 43.7 billion yuan.
    let guiyang = s
        .get_summary(summary(park("guiyang")))
        .await
        .unwrap()
        .into_inner();
    assert!(guiyang.company_count > 50);
    assert_eq!(guiyang.investment_cny, 43_700_000_000);

    // Hebei Shenyue Soft: from Beijing to Shijiazhuang, over 1,500
    // employees, 13 branches.
    let mut r = pair.registry.client().await;
    let shenyue = r
        .get_company(GetCompanyRequest {
            name: "companies/hebei-shenyue-soft".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(shenyue.employees > 1500);
    let last = shenyue.relocations.last().unwrap();
    assert_eq!(last.from.as_ref().unwrap().province, "Beijing");
    assert_eq!(last.to.as_ref().unwrap().city, "Shijiazhuang");
    let branches = r
        .list_companies(ListCompaniesRequest {
            filter: "parent_company = \"companies/hebei-shenyue-soft\"".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(branches.total_size, 13);

    // Real records name their article; synthetic ones say so.
    let real = r
        .list_companies(ListCompaniesRequest {
            filter: "labels.source = \"synthetic\"".into(),
            page_size: 1,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(real.total_size > 11_000);
    assert!(shenyue.labels["source"].starts_with("chinadaily-"));

    // And the CLI shows them: the summary table has the figures.
    let (code, out, _) = pair.zgc(&["stats", "summary", "--park", "luquan"]).await;
    assert_eq!(code, 0);
    assert!(
        out.contains("85,121,900,000") && out.contains("+34.9%"),
        "{out}"
    );
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_import_resumes_to_the_same_data_as_a_clean_one() {
    let dir = tempfile::tempdir().unwrap();
    let all = lines(Path::new(SCENARIO));
    // The first part of the scenario, cut mid-way, as an interrupted
    // import would have left it.
    let part = dir.path().join("part.jsonl");
    std::fs::write(&part, all[..4321].join("\n")).unwrap();

    let interrupted = Pair::start().await;
    let (code, out, err) = interrupted
        .zgc(&["import", part.to_str().unwrap(), "--batch-size", "300"])
        .await;
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, err) = interrupted
        .zgc(&["import", SCENARIO, "--batch-size", "300"])
        .await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("skipped 4321"),
        "the first part is skipped, not doubled: {out}"
    );
    assert!(
        out.contains(&format!("created {}", all.len() - 4321)),
        "{out}"
    );
    // Once more: nothing new.
    let (_, out, _) = interrupted.zgc(&["import", SCENARIO]).await;
    assert!(out.contains("created 0,"), "{out}");

    let clean = Pair::start().await;
    let (code, _, _) = clean.zgc(&["import", SCENARIO]).await;
    assert_eq!(code, 0);

    let a = dir.path().join("a.jsonl");
    let b = dir.path().join("b.jsonl");
    assert_eq!(
        interrupted
            .zgc(&["export", "--file", a.to_str().unwrap()])
            .await
            .0,
        0
    );
    assert_eq!(
        clean
            .zgc(&["export", "--file", b.to_str().unwrap()])
            .await
            .0,
        0
    );
    let (a, b) = (lines(&a), lines(&b));
    assert_eq!(a.len(), all.len());
    assert!(a == b, "the resumed import ended with different data");
    // And the export is importable as is.
    let again = Pair::start().await;
    let exported = dir.path().join("b.jsonl");
    let (code, out, _) = again.zgc(&["import", exported.to_str().unwrap()]).await;
    assert_eq!(code, 0, "{out}");
}

#[tokio::test]
async fn resource_subcommands_tables_json_and_exit_codes() {
    let pair = Pair::start().await;
    let park = r#"{"display_name": "Baoding Zhongguancun Innovation Center", "kind": "PARK_KIND_INNOVATION_CENTER", "location": {"province": "Hebei", "city": "Baoding"}}"#;
    let (code, out, err) = pair
        .zgc(&[
            "-o", "json", "parks", "create", "--id", "baoding", "--json", park,
        ])
        .await;
    assert_eq!(code, 0, "{err}");
    let created: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(created["name"], "parks/baoding");

    let etag = created["etag"].as_str().unwrap().to_string();
    let patch = r#"{"sectors": ["new-materials"]}"#;
    let (code, out, err) = pair
        .zgc(&[
            "-o", "json", "parks", "update", "baoding", "--json", patch, "--etag", &etag,
        ])
        .await;
    assert_eq!(code, 0, "{err}");
    let updated: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(updated["sectors"][0], "new-materials");
    assert_eq!(
        updated["displayName"], "Baoding Zhongguancun Innovation Center",
        "only the patched field changed"
    );
    let (code, _, err) = pair
        .zgc(&[
            "parks", "update", "baoding", "--json", patch, "--etag", &etag,
        ])
        .await;
    assert_eq!(code, 1, "a stale etag is refused: {err}");
    assert!(err.contains("ABORTED"), "{err}");

    let company =
        r#"{"display_name": "Jiuwu Boron Industry Co", "park": "parks/baoding", "employees": 120}"#;
    let (code, _, err) = pair
        .zgc(&["companies", "create", "--id", "jiuwu", "--json", company])
        .await;
    assert_eq!(code, 0, "{err}");
    let (code, out, _) = pair.zgc(&["companies", "get", "jiuwu"]).await;
    assert_eq!(code, 0);
    assert!(
        out.contains("Jiuwu Boron Industry Co") && out.contains("Baoding"),
        "{out}"
    );
    let (code, out, _) = pair
        .zgc(&[
            "-o",
            "json",
            "companies",
            "list",
            "--filter",
            "employees > 100",
        ])
        .await;
    assert_eq!(code, 0);
    let list: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(list["totalSize"], 1);

    let (code, out, err) = pair
        .zgc(&[
            "-o",
            "json",
            "companies",
            "update",
            "jiuwu",
            "--json",
            r#"{"employees": 150}"#,
        ])
        .await;
    assert_eq!(code, 0, "{err}");
    let updated: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(updated["employees"], 150);
    let (code, _, err) = pair
        .zgc(&[
            "companies",
            "update",
            "jiuwu",
            "--json",
            "{}",
            "--mask",
            "etag",
        ])
        .await;
    assert_eq!(code, 2, "invalid argument: {err}");
    assert!(
        err.contains("INVALID_ARGUMENT") && err.contains("update_mask.paths[0]"),
        "{err}"
    );

    // Field violations are listed one per line.
    let (code, _, err) = pair
        .zgc(&[
            "companies",
            "create",
            "--json",
            r#"{"display_name": "", "employees": -1}"#,
        ])
        .await;
    assert_eq!(code, 2);
    assert!(
        err.contains("company.display_name") && err.contains("company.employees"),
        "{err}"
    );
    // Not JSON at all.
    let (code, _, err) = pair.zgc(&["companies", "create", "--json", "{nope"]).await;
    assert_eq!(code, 2);
    assert!(err.contains("invalid JSON"), "{err}");

    let (code, _, err) = pair.zgc(&["parks", "delete", "baoding"]).await;
    assert_eq!(code, 1);
    assert!(
        err.contains("FAILED_PRECONDITION") && err.contains("RESOURCE_IN_USE"),
        "{err}"
    );
    assert_eq!(pair.zgc(&["companies", "delete", "jiuwu"]).await.0, 0);
    assert_eq!(pair.zgc(&["parks", "delete", "parks/baoding"]).await.0, 0);
    let (code, _, err) = pair.zgc(&["parks", "get", "baoding"]).await;
    assert_eq!(code, 1);
    assert!(err.contains("NOT_FOUND"), "{err}");
    let (code, out, _) = pair.zgc(&["parks", "list"]).await;
    assert_eq!(code, 0, "{out}");

    // No server there.
    let (code, _, err) = zgc(
        "http://127.0.0.1:1",
        "http://127.0.0.1:1",
        &["parks", "list"],
    )
    .await;
    assert_eq!(code, 3);
    assert!(err.contains("cannot reach"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_and_watch_subcommands() {
    let pair = Pair::start().await;
    assert_eq!(pair.zgc(&["import", SCENARIO]).await.0, 0);
    let rev = pair.head().await.to_string();
    let fresh = ["--min-revision", rev.as_str()];

    let (code, out, _) = pair
        .zgc(&[&["stats", "summary", "--park", "baoding"][..], &fresh].concat())
        .await;
    assert_eq!(code, 0);
    assert!(
        out.contains("Relocated in from") && out.contains("Beijing"),
        "{out}"
    );
    let (code, out, _) = pair
        .zgc(
            &[
                &[
                    "-o",
                    "json",
                    "stats",
                    "summary",
                    "--city",
                    "Hebei/Shijiazhuang",
                ][..],
                &fresh,
            ]
            .concat(),
        )
        .await;
    assert_eq!(code, 0);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert!(v["companyCount"].as_str().unwrap().parse::<i64>().unwrap() > 1000);

    let (code, out, _) = pair
        .zgc(&[
            "stats",
            "rank",
            "--metric",
            "revenue-growth",
            "--year",
            "2023",
        ])
        .await;
    assert_eq!(code, 0);
    assert!(
        out.contains("Luquan Economic Development Zone") && out.contains("34.9"),
        "{out}"
    );
    let (code, out, _) = pair
        .zgc(&[
            "-o", "json", "stats", "flows", "--from", "Beijing", "--level", "city",
        ])
        .await;
    assert_eq!(code, 0);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert!(!v["flows"].as_array().unwrap().is_empty());
    let (code, out, _) = pair
        .zgc(&[
            "stats",
            "footprint",
            "--park",
            "zgc",
            "--start",
            "2016-01",
            "--end",
            "2016-07",
        ])
        .await;
    assert_eq!(code, 0);
    assert!(out.contains("687 branches"), "{out}");
    let (code, out, _) = pair
        .zgc(&[
            "-o",
            "json",
            "stats",
            "series",
            "--province",
            "Tianjin",
            "--metric",
            "branches",
            "--granularity",
            "month",
            "--start",
            "2016-01",
            "--end",
            "2016-07",
        ])
        .await;
    assert_eq!(code, 0);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["points"].as_array().unwrap().len(), 7);
    let (code, out, _) = pair
        .zgc(&["stats", "series", "--all", "--metric", "founded"])
        .await;
    assert_eq!(code, 0);
    assert!(out.contains("companies founded"), "{out}");
    let (code, _, err) = pair
        .zgc(&["stats", "rank", "--metric", "revenue", "--limit", "500"])
        .await;
    assert_eq!(code, 2, "{err}");
    let (code, _, err) = pair.zgc(&["stats", "summary", "--park", "nowhere"]).await;
    assert_eq!(code, 1);
    assert!(err.contains("NOT_FOUND"), "{err}");
    let (code, _, err) = pair
        .zgc(&["stats", "footprint", "--all", "--start", "July"])
        .await;
    assert_eq!(code, 2, "{err}");

    let (code, out, _) = pair.zgc(&["stats", "watch", "--all", "--limit", "1"]).await;
    assert_eq!(code, 0);
    assert!(out.contains("companies"), "{out}");
    let (code, out, _) = pair
        .zgc(&["-o", "json", "watch", "--from", "1", "--limit", "3"])
        .await;
    assert_eq!(code, 0);
    let events: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(events.len(), 3);
    assert_eq!(events[0]["type"], "CHANGE_TYPE_CREATED");
    let (code, out, _) = pair.zgc(&["watch", "--limit", "2"]).await;
    assert_eq!(code, 0);
    assert!(out.contains("created"), "{out}");
}

#[tokio::test]
async fn gen_and_completions() {
    let none = "http://127.0.0.1:1";
    let (code, a, _) = zgc(none, none, &["gen", "--companies", "200", "--seed", "3"]).await;
    assert_eq!(code, 0);
    let (_, b, _) = zgc(none, none, &["gen", "--companies", "200", "--seed", "3"]).await;
    assert_eq!(a, b, "the same seed gives the same data");
    let parks = a.lines().filter(|l| l.starts_with(r#"{"park""#)).count();
    assert_eq!(a.lines().count(), parks + 200);
    let (_, scenario, _) = zgc(none, none, &["gen", "--scenario"]).await;
    assert!(scenario == std::fs::read_to_string(SCENARIO).unwrap());
    let (code, out, _) = zgc(none, none, &["completions", "bash"]).await;
    assert_eq!(code, 0);
    assert!(out.contains("zgc"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_seeds_once_prints_working_commands_and_stops_on_ctrl_c() {
    let dir = tempfile::tempdir().unwrap();
    let start = |dir: &Path| {
        let mut child = Command::cargo_bin("zgc")
            .unwrap()
            .args([
                "up",
                "--registry-listen",
                "127.0.0.1:0",
                "--stats-listen",
                "127.0.0.1:0",
                "--dashboard-listen",
                "127.0.0.1:0",
                "--data-dir",
            ])
            .arg(dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let printed: Vec<String> = stdout
            .lines()
            .map(|l| l.unwrap())
            .take_while(|l| !l.contains("Ctrl-C"))
            .collect();
        (child, printed)
    };
    let dir_path = dir.path().to_path_buf();
    let (child, printed) = tokio::task::spawn_blocking(move || start(&dir_path))
        .await
        .unwrap();
    assert!(printed[0].starts_with("zgc is up"), "{printed:?}");
    let dashboard = printed
        .iter()
        .find_map(|l| l.trim().strip_prefix("dashboard http://"))
        .and_then(|rest| rest.split('/').next())
        .unwrap_or_else(|| panic!("no dashboard address in {printed:?}"));
    // The page answers where `zgc up` says.
    let page = tokio::task::spawn_blocking({
        let dashboard = dashboard.to_string();
        move || {
            use std::io::{Read, Write};
            let mut conn = std::net::TcpStream::connect(&dashboard).unwrap();
            conn.write_all(b"GET / HTTP/1.1\r\nHost: zgc\r\nConnection: close\r\n\r\n")
                .unwrap();
            let mut page = String::new();
            conn.read_to_string(&mut page).unwrap();
            page
        }
    })
    .await
    .unwrap();
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    assert!(page.contains("<title>zgc dashboard</title>"), "{page}");
    // The first example works as printed.
    let example = printed
        .iter()
        .find(|l| l.contains("stats summary --park baoding"))
        .unwrap();
    let words: Vec<&str> = example.split_whitespace().collect();
    let out = tokio::task::spawn_blocking({
        let words: Vec<String> = words.iter().map(|s| s.to_string()).collect();
        move || Command::new(&words[0]).args(&words[1..]).output().unwrap()
    })
    .await
    .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{example}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("│ companies           ┆ 90"), "{text}");

    let stop = |mut child: std::process::Child| {
        let pid = child.id().to_string();
        assert!(
            Command::new("kill")
                .args(["-INT", &pid])
                .status()
                .unwrap()
                .success()
        );
        let status = child.wait().unwrap();
        let mut err = String::new();
        std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
        (status, err)
    };
    let (status, err) = tokio::task::spawn_blocking(move || stop(child))
        .await
        .unwrap();
    assert!(status.success(), "{err}");
    assert!(err.contains("loading the scenario dataset"), "{err}");

    // A restart keeps the data and does not load it again.
    let dir_path = dir.path().to_path_buf();
    let (child, printed_again) = tokio::time::timeout(
        Duration::from_secs(120),
        tokio::task::spawn_blocking(move || start(&dir_path)),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(
        printed_again[0], printed[0],
        "same revision after a restart"
    );
    let (status, err) = tokio::task::spawn_blocking(move || stop(child))
        .await
        .unwrap();
    assert!(status.success());
    assert!(!err.contains("loading the scenario"), "{err}");
}

#[tokio::test]
async fn a_pipelined_import_keeps_parents_first_and_reports_bad_lines_in_order() {
    let dir = tempfile::tempdir().unwrap();
    // A chain of branches, each the parent of the next, one company per
    // batch and 8 batches in flight: every branch must wait for the batch
    // that creates its parent. Two bad lines in between.
    let mut lines = vec![
        r#"{"park": {"name": "parks/chain", "display_name": "Chain Park", "kind": "PARK_KIND_INNOVATION_CENTER", "location": {"province": "Hebei", "city": "Baoding"}}}"#.to_string(),
    ];
    for i in 0..40 {
        let parent = if i == 0 {
            String::new()
        } else {
            format!("companies/link-{:02}", i - 1)
        };
        lines.push(format!(
            r#"{{"company": {{"name": "companies/link-{i:02}", "display_name": "Link {i}", "park": "parks/chain", "parent_company": "{parent}"}}}}"#
        ));
        if i == 10 {
            lines.push("{not json".into());
        }
        if i == 25 {
            lines.push(
                r#"{"company": {"name": "companies/orphan", "display_name": "Orphan", "park": "parks/chain", "parent_company": "companies/nowhere"}}"#
                    .into(),
            );
        }
    }
    let file = dir.path().join("chain.jsonl");
    std::fs::write(&file, lines.join("\n")).unwrap();

    let pair = Pair::start().await;
    let (code, out, err) = pair
        .zgc(&[
            "import",
            file.to_str().unwrap(),
            "--batch-size",
            "1",
            "--in-flight",
            "8",
        ])
        .await;
    assert_eq!(code, 4, "some lines failed: {out}{err}");
    assert!(out.contains("created 41, skipped 0, failed 2"), "{out}");
    let bad: Vec<&str> = out.lines().filter(|l| l.starts_with("line ")).collect();
    assert_eq!(bad.len(), 2, "{out}");
    assert!(bad[0].starts_with("line 13: not an Entity"), "{out}");
    assert!(bad[1].starts_with("line 29: "), "{out}");
    assert!(bad[1].contains("nowhere"), "{out}");

    let last = pair
        .registry
        .client()
        .await
        .get_company(GetCompanyRequest {
            name: "companies/link-39".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(last.parent_company, "companies/link-38");

    // Out of range: refused before anything is sent.
    let (code, _, err) = pair
        .zgc(&["import", file.to_str().unwrap(), "--in-flight", "0"])
        .await;
    assert_eq!(code, 2, "{err}");
}
