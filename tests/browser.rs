//! The dashboard in a real browser: `zgc up` on the article scenario, as a
//! person starts it, and Debian's Chromium driven by Playwright
//! (`tests/browser/dashboard.py`) on the address it prints. The figures the
//! page shows must be GetSummary's, for three scopes picked in the page's
//! own form; a write must reach the page live; the page must fit a phone's
//! screen, write every figure beside its mark, and raise no error. What the
//! browser saw is saved in `target/dashboard.png`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use zgc_proto::registry::v1::CreateCompanyRequest;
use zgc_proto::registry::v1::registry_service_client::RegistryServiceClient;
use zgc_proto::stats::v1::stats_service_client::StatsServiceClient;
use zgc_proto::stats::v1::{GetSummaryRequest, Scope, Summary, scope};
use zgc_tests::{binaries, company, request_id, tools};

/// How long the browser gets for one command; it waits for the page
/// itself, so this is only a bound on a hung browser.
const COMMAND: Duration = Duration::from_secs(120);

/// `zgc up`, and the addresses it printed.
struct Up {
    child: Child,
    registry: String,
    stats: String,
    dashboard: String,
}

async fn up(data_dir: &Path) -> Up {
    let mut child = Command::new(binaries::path("zgc").await)
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
        .arg(data_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let (mut registry, mut stats, mut dashboard) = (None, None, None);
    let printed = tokio::time::timeout(Duration::from_secs(300), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            let words: Vec<&str> = line.split_whitespace().collect();
            match words.as_slice() {
                ["registry", addr, ..] => registry = Some(addr.to_string()),
                ["stats", addr, ..] => stats = Some(addr.to_string()),
                ["dashboard", addr, ..] => dashboard = Some(addr.to_string()),
                _ if line.contains("Ctrl-C") => return,
                _ => {}
            }
        }
    })
    .await;
    assert!(printed.is_ok(), "zgc up did not come up");
    Up {
        child,
        registry: registry.expect("zgc up prints the registry's address"),
        stats: stats.expect("zgc up prints the stats service's address"),
        dashboard: dashboard.expect("zgc up prints the dashboard's address"),
    }
}

/// The browser, driven through `tests/browser/dashboard.py`.
struct Browser {
    child: Child,
    commands: ChildStdin,
    answers: Lines<BufReader<ChildStdout>>,
}

impl Browser {
    async fn open(url: &str) -> Self {
        let chromium = std::env::var("ZGC_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
        assert!(
            Path::new(&chromium).is_file(),
            "{chromium} is missing: run the tests with `scripts/test`, which installs Debian's \
             chromium (scripts/setup), or set ZGC_CHROMIUM"
        );
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("browser/dashboard.py");
        let mut child = Command::new(tools::python())
            .arg(script)
            .args(["--url", url, "--chromium", &chromium])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let commands = child.stdin.take().unwrap();
        let answers = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut browser = Self {
            child,
            commands,
            answers,
        };
        let ready = browser.answer().await;
        assert_eq!(ready["ready"], true, "{ready}");
        browser
    }

    async fn answer(&mut self) -> Value {
        let line = tokio::time::timeout(COMMAND, self.answers.next_line())
            .await
            .expect("the browser answers")
            .unwrap()
            .expect("the browser script ended (its error is above)");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{line:?}: {e}"))
    }

    async fn ask(&mut self, command: Value) -> Value {
        let mut line = command.to_string();
        line.push('\n');
        self.commands.write_all(line.as_bytes()).await.unwrap();
        self.answer().await
    }

    /// The summary figures the page shows, by field.
    async fn figures(&mut self) -> BTreeMap<String, String> {
        serde_json::from_value(self.ask(json!({"figures": true})).await).unwrap()
    }
}

/// The figures the page shows of `s`, named as the page names them.
fn figures_of(s: &Summary) -> BTreeMap<String, String> {
    [
        ("parkCount", s.park_count),
        ("companyCount", s.company_count),
        ("branchCount", s.branch_count),
        ("employees", s.employees),
        ("investmentCny", s.investment_cny),
        ("highTechCompanyCount", s.high_tech_company_count),
        ("listedCompanyCount", s.listed_company_count),
        ("relocatedInCount", s.relocated_in_count),
        ("relocatedOutCount", s.relocated_out_count),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_shows_getsummary_s_figures_and_follows_writes_live() {
    let dir = tempfile::tempdir().unwrap();
    let up = up(dir.path()).await;
    let mut stats = StatsServiceClient::connect(up.stats.clone()).await.unwrap();
    let mut registry = RegistryServiceClient::connect(up.registry.clone())
        .await
        .unwrap();
    let mut browser = Browser::open(&up.dashboard).await;

    let summary = async |stats: &mut StatsServiceClient<_>, selector, revision| {
        stats
            .get_summary(GetSummaryRequest {
                scope: Some(Scope {
                    selector: Some(selector),
                    include_affiliates: false,
                }),
                min_revision: revision,
            })
            .await
            .unwrap()
            .into_inner()
    };
    let baoding = || scope::Selector::Park("parks/baoding".into());
    for (shown, selector) in [
        ("park=parks/baoding", baoding()),
        ("province=Hebei", scope::Selector::Province("Hebei".into())),
        ("all", scope::Selector::All(true)),
    ] {
        let answer = browser.ask(json!({ "show": shown })).await;
        assert_eq!(answer["shown"], shown, "{answer}");
        let on_page = browser.figures().await;
        let truth = summary(&mut stats, selector, 0).await;
        assert_eq!(on_page, figures_of(&truth), "{shown}");
        assert!(truth.company_count > 0, "{shown}: the scenario is loaded");

        // Every chart drew marks, or says why it has none, and writes
        // every figure beside its mark.
        let charts = browser.ask(json!({"charts": true})).await;
        for chart in [
            "ranking-chart",
            "series-chart",
            "flows-chart",
            "footprint-chart",
        ] {
            let c = &charts[chart];
            assert_eq!(c["error"], Value::Null, "{shown} {chart}: {c}");
            assert!(
                c["marks"].as_u64().unwrap() > 0 || c["empty"].is_string(),
                "{shown} {chart}: {c}"
            );
            assert_eq!(c["unlabelled"], 0, "{shown} {chart}: {c}");
        }
    }
    let screenshot = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/dashboard.png");
    let saved = browser
        .ask(json!({"screenshot": screenshot.display().to_string()}))
        .await;
    assert!(saved["saved"].is_string(), "{saved}");
    assert!(std::fs::metadata(&screenshot).unwrap().len() > 10_000);

    // A write reaches the page live, through WatchSummary.
    browser.ask(json!({"show": "park=parks/baoding"})).await;
    let before = browser.figures().await;
    let created = registry
        .create_company(CreateCompanyRequest {
            company: Some(zgc_proto::registry::v1::Company {
                park: "parks/baoding".into(),
                ..company("Browser Test Robotics", "Hebei", "Baoding")
            }),
            company_id: String::new(),
            request_id: request_id(),
        })
        .await
        .unwrap()
        .into_inner();
    let answer = browser
        .ask(json!({"wait_revision": created.revision}))
        .await;
    assert!(
        answer["revision"].as_u64().unwrap() >= created.revision,
        "{answer}"
    );
    let after = browser.figures().await;
    let truth = summary(&mut stats, baoding(), created.revision).await;
    assert_eq!(after, figures_of(&truth));
    let count = |f: &BTreeMap<String, String>| f["companyCount"].parse::<i64>().unwrap();
    assert_eq!(count(&after), count(&before) + 1);

    // A phone's screen: nothing wider than it.
    let phone = browser.ask(json!({"phone": true})).await;
    assert_eq!(phone["wider_than_screen"], false, "{phone}");

    let quit = browser.ask(json!({"quit": true})).await;
    assert_eq!(quit["errors"], json!([]), "the page raised errors");
    let _ = browser.child.wait().await;
    drop(up.child);
}
