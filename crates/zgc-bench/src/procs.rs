//! The servers under test, as child processes of the real binaries (found
//! next to this one), and what the kernel says about them: CPU time and
//! peak resident memory.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// Why a server could not be run.
#[derive(Debug, thiserror::Error)]
pub enum ProcError {
    /// Spawning failed.
    #[error("cannot start {0}: {1}")]
    Spawn(String, std::io::Error),
    /// It exited or never said where it listens: what it said last.
    #[error("{0} did not start{1}")]
    NoStart(String, String),
}

/// How long a server has to say where it listens (a registry replica on
/// etcd loads the registry first, minutes at 1M companies on a machine
/// shared with the cluster).
const START_WITHIN: u64 = 900;

/// A binary built next to this one (`target/<profile>/`).
pub fn sibling(name: &str) -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .unwrap_or_default()
        .join(name)
}

/// A running server process.
pub struct Server {
    /// The process.
    pub child: Child,
    /// Its gRPC address.
    pub addr: SocketAddr,
    /// Its metrics address, when it was given `--metrics-listen`.
    pub metrics_addr: Option<SocketAddr>,
    /// When it was spawned.
    pub started: Instant,
}

impl Server {
    /// Spawns `program args`, waiting for the JSON log lines that say where
    /// it listens (`listening`, and `metrics listening` when `args` has
    /// `--metrics-listen`).
    pub async fn spawn(program: &Path, args: &[String]) -> Result<Self, ProcError> {
        let name = program.display().to_string();
        let started = Instant::now();
        let mut child = Command::new(program)
            .args(args)
            .env(
                "RUST_LOG",
                "warn,zgc_server::shutdown=info,zgc_server::metrics=info",
            )
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| ProcError::Spawn(name.clone(), e))?;
        let stderr = child
            .stderr
            .take()
            .ok_or_else(|| ProcError::NoStart(name.clone(), String::new()))?;
        let wants_metrics = args.iter().any(|a| a == "--metrics-listen");
        let mut lines = BufReader::new(stderr).lines();
        // The last lines it logged, to say why when it does not start.
        let mut last: std::collections::VecDeque<String> = std::collections::VecDeque::new();
        let listening = tokio::time::timeout(Duration::from_secs(START_WITHIN), async {
            let (mut addr, mut metrics_addr) = (None, None);
            while let Ok(Some(line)) = lines.next_line().await {
                if last.len() == 5 {
                    last.pop_front();
                }
                last.push_back(line.clone());
                let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) else {
                    continue;
                };
                let parsed = || v["addr"].as_str().and_then(|a| a.parse().ok());
                if v["message"] == "listening" {
                    addr = parsed();
                } else if v["message"] == "metrics listening" {
                    metrics_addr = parsed();
                }
                if addr.is_some() && (metrics_addr.is_some() || !wants_metrics) {
                    return Some((addr?, metrics_addr));
                }
            }
            None
        })
        .await;
        let (addr, metrics_addr) = match listening {
            Ok(Some(found)) => found,
            Ok(None) => {
                let said = Vec::from(last).join("\n");
                return Err(ProcError::NoStart(
                    name,
                    format!(": it exited; it said:\n{said}"),
                ));
            }
            Err(_) => {
                let said = Vec::from(last).join("\n");
                return Err(ProcError::NoStart(
                    name,
                    format!(" within {START_WITHIN} s; it said last:\n{said}"),
                ));
            }
        };
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(Self {
            child,
            addr,
            metrics_addr,
            started,
        })
    }

    /// CPU seconds (user + system) used so far.
    pub fn cpu_seconds(&self) -> f64 {
        self.child.id().map_or(0.0, cpu_seconds_of)
    }

    /// Peak resident memory in bytes (VmHWM).
    pub fn peak_rss(&self) -> u64 {
        let Some(pid) = self.child.id() else {
            return 0;
        };
        std::fs::read_to_string(format!("/proc/{pid}/status"))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("VmHWM:"))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            })
            .map_or(0, |kib| kib * 1024)
    }
}

/// The total size of the files under `dir`.
pub fn dir_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_bytes(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

/// CPU seconds (user + system) process `pid` has used so far; 0 when it
/// cannot be read.
pub fn cpu_seconds_of(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // Fields after the command name (which ends with ')').
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 (1-based), 12 and 13 here.
    (ticks(11) + ticks(12)) / 100.0
}
