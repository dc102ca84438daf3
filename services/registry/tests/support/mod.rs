//! Running the real `zgc-registry` binary in tests: start it on a free
//! port, read its address from its JSON logs, and connect.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tonic::transport::Channel;
use zgc_proto::registry::v1::registry_service_client::RegistryServiceClient;
use zgc_proto::registry::v1::{Company, ListCompaniesRequest};
use zgc_proto::types::v1::Location;

/// A registry client.
pub type Client = RegistryServiceClient<Channel>;

/// The revision a response's `x-zgc-revision` header names.
pub fn revision_header(metadata: &tonic::metadata::MetadataMap) -> u64 {
    metadata
        .get("x-zgc-revision")
        .expect("every response carries x-zgc-revision")
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

/// Every company matching `filter`, read page by page.
pub async fn all_companies(c: &mut Client, filter: &str) -> Vec<Company> {
    let mut out = Vec::new();
    let mut token = String::new();
    loop {
        let page = c
            .list_companies(ListCompaniesRequest {
                page_size: 1000,
                page_token: token,
                filter: filter.into(),
                order_by: String::new(),
            })
            .await
            .unwrap()
            .into_inner();
        out.extend(page.companies);
        token = page.next_page_token;
        if token.is_empty() {
            return out;
        }
    }
}

/// Company `n` (`n` employees, in Baoding) made large by `labels` labels
/// of about 250 bytes each, for tests about disk and memory.
pub fn large_company(n: usize, labels: usize) -> Company {
    Company {
        display_name: format!("Large company {n}"),
        location: Some(Location {
            province: "Hebei".into(),
            city: "Baoding".into(),
            district: String::new(),
        }),
        employees: i32::try_from(n).unwrap_or(i32::MAX),
        labels: (0..labels)
            .map(|k| (format!("k{k:02}"), format!("{n}-{k}-{}", "x".repeat(240))))
            .collect(),
        ..Default::default()
    }
}

/// How long anything may take on a loaded machine before a test fails.
pub const PATIENCE: Duration = Duration::from_secs(120);

/// A running registry process.
pub struct Running {
    pub child: Child,
    pub client: Client,
    pub addr: SocketAddr,
    pub channel: Channel,
    /// Its JSON log lines after the "listening" one, in order.
    pub logs: tokio::sync::mpsc::UnboundedReceiver<serde_json::Value>,
}

impl Running {
    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id().expect("the registry is running")
    }

    /// The next log line matching `matches`; lines before it are skipped.
    pub async fn log_line(
        &mut self,
        matches: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        tokio::time::timeout(PATIENCE, async {
            while let Some(line) = self.logs.recv().await {
                if matches(&line) {
                    return line;
                }
            }
            panic!("zgc-registry exited before logging the line looked for");
        })
        .await
        .expect("zgc-registry never logged the line looked for")
    }

    /// Field `key` of the next log line whose message is `message`.
    pub async fn log_value(&mut self, message: &str, key: &str) -> String {
        let line = self.log_line(|v| v["message"] == message).await;
        line[key].as_str().expect("a string field").to_string()
    }

    /// Waits (without polling) until the health service reports
    /// `SERVING` for the registry.
    pub async fn wait_serving(&self) {
        tokio::time::timeout(
            PATIENCE,
            zgc_client::health::wait_serving(self.channel.clone(), ""),
        )
        .await
        .expect("the registry never became SERVING")
        .expect("the registry reports SERVING");
    }
}

/// The registry command for `dir`, on a free port, logging JSON.
pub fn command(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_zgc-registry"));
    cmd.args([
        "--listen",
        "127.0.0.1:0",
        "--log-format",
        "json",
        "--data-dir",
    ])
    .arg(dir)
    .env("RUST_LOG", "info")
    .stderr(Stdio::piped())
    .stdout(Stdio::null())
    .kill_on_drop(true);
    cmd
}

/// Starts the registry on `dir` and connects to it.
pub async fn start(dir: &Path) -> Running {
    spawn(command(dir)).await
}

/// A registry process and its logs, not connected to.
pub struct Process {
    pub child: Child,
    pub addr: SocketAddr,
    /// Its JSON log lines after the "listening" one, in order; the
    /// channel ends when the process does.
    pub logs: tokio::sync::mpsc::UnboundedReceiver<serde_json::Value>,
}

/// Spawns `cmd` (a registry command) and connects once it listens.
pub async fn spawn(cmd: Command) -> Running {
    let Process { child, addr, logs } = spawn_process(cmd).await;
    // Every call has a deadline, so a call that never returns fails its
    // test where it was made instead of stalling it until the runner's
    // timeout.
    let channel = Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .timeout(PATIENCE)
        .connect()
        .await
        .unwrap();
    Running {
        child,
        client: RegistryServiceClient::new(channel.clone()),
        addr,
        channel,
        logs,
    }
}

/// Spawns `cmd` (a registry command) and returns once it listens.
pub async fn spawn_process(mut cmd: Command) -> Process {
    let mut child = cmd.spawn().expect("spawn zgc-registry");
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let addr = tokio::time::timeout(PATIENCE, async {
        while let Some(line) = lines.next_line().await.unwrap() {
            let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) else {
                continue;
            };
            if v["message"] == "listening" {
                return v["addr"].as_str().unwrap().to_string();
            }
        }
        panic!("zgc-registry exited before listening");
    })
    .await
    .expect("zgc-registry did not start");
    // Keep draining its logs so it never blocks on a full pipe, handing
    // them to the test.
    let (tx, logs) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) {
                let _ = tx.send(v);
            }
        }
    });
    Process {
        child,
        addr: addr.parse().unwrap(),
        logs,
    }
}

/// Runs the registry on `dir` to its exit; returns whether it succeeded
/// and everything it wrote to stderr.
pub async fn run_to_exit(mut cmd: Command) -> (bool, String) {
    let out = tokio::time::timeout(PATIENCE, cmd.output())
        .await
        .expect("zgc-registry did not exit")
        .expect("spawn zgc-registry");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Sets the soft file-size limit (RLIMIT_FSIZE) of process `pid`, the
/// hard limit staying unlimited: writes beyond it fail with EFBIG, the way
/// writes to a full disk fail with ENOSPC.
pub fn set_file_size_limit(pid: u32, soft: Option<u64>) {
    let soft = soft.map_or("unlimited".to_string(), |b| b.to_string());
    let status = std::process::Command::new("prlimit")
        .arg("--pid")
        .arg(pid.to_string())
        .arg(format!("--fsize={soft}:unlimited"))
        .status()
        .expect("run prlimit (util-linux)");
    assert!(status.success(), "prlimit failed");
}
