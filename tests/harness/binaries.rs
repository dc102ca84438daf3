//! The real binaries (`zgc-registry`, `zgc-stats`, and `zgc` for `zgc up`)
//! run as child processes, for the tests where the process itself is the
//! subject: signals, exit codes, ports taken back after a restart, what
//! `zgc up` prints.
//!
//! Cargo gives a test the path of its own package's binaries only, so the
//! binaries are built here, once per test process, with the cargo and the
//! profile that built the test (a no-op when they are fresh): a test never
//! runs a stale binary.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::OnceCell;

/// How long a binary gets to start listening: generous, because a debug
/// build on a loaded machine loads its store slowly, and a test that waits
/// this long has already failed.
const START: Duration = Duration::from_secs(300);

/// The path of the workspace binary `name`, built if needed.
pub async fn path(name: &str) -> PathBuf {
    static BUILT: OnceCell<Result<PathBuf, String>> = OnceCell::const_new();
    let dir = BUILT
        .get_or_init(|| async { build().await })
        .await
        .clone()
        .unwrap_or_else(|e| panic!("{e}"));
    dir.join(name)
}

/// Builds the binaries into the directory this test binary was
/// built in (`target/<profile>/`), and returns that directory.
async fn build() -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| format!("where is this test? {e}"))?;
    // target/<profile>/deps/<test>: the profile's directory is two up.
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .ok_or_else(|| format!("{} is not in a cargo target directory", exe.display()))?;
    let target = dir
        .parent()
        .ok_or_else(|| format!("{} has no parent", dir.display()))?;
    let profile = match dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") => "dev".to_string(),
        Some(other) => other.to_string(),
        None => return Err(format!("{} names no profile", dir.display())),
    };
    // One build at a time among the test processes (nextest runs each test
    // in a process of its own): the others wait here, not on cargo's own
    // lock, so that cargo waiting for its lock can only mean a cargo other
    // than ours holds the build directory.
    let lock_path = dir.join(".zgc-tests-binaries.lock");
    let _lock = tokio::task::spawn_blocking(move || {
        let file = std::fs::File::create(&lock_path)?;
        file.lock()?;
        Ok::<_, std::io::Error>(file)
    })
    .await
    .map_err(|e| format!("cannot wait for the build lock: {e}"))?
    .map_err(|e| format!("cannot take the build lock: {e}"))?;
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml");
    let mut cargo = Command::new(env!("CARGO"))
        .arg("build")
        .arg("--manifest-path")
        .arg(&manifest)
        .arg("--target-dir")
        .arg(target)
        .args(["--profile", &profile])
        .args(["-p", "zgc-registry", "-p", "zgc-stats", "-p", "zgc"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot run cargo to build the server binaries: {e}"))?;
    let mut lines = BufReader::new(cargo.stderr.take().expect("piped stderr")).lines();
    let mut log = String::new();
    while let Ok(Some(line)) = lines.next_line().await {
        if line.contains("Blocking waiting for file lock") {
            // `cargo test` holds the build directory while its tests run
            // (nextest does not), as does a build the user runs meanwhile:
            // use the binaries there are, if there are.
            let _ = cargo.kill().await;
            let built = ["zgc-registry", "zgc-stats", "zgc"]
                .iter()
                .all(|name| dir.join(name).is_file());
            return if built {
                Ok(dir.to_path_buf())
            } else {
                Err(
                    "the server binaries are not built and cargo's build directory is \
                     locked by this test run: run the tests with scripts/test (nextest), \
                     or `cargo build -p zgc-registry -p zgc-stats -p zgc` first"
                        .into(),
                )
            };
        }
        log.push_str(&line);
        log.push('\n');
    }
    let status = cargo
        .wait()
        .await
        .map_err(|e| format!("cargo did not finish: {e}"))?;
    if !status.success() {
        return Err(format!("cargo could not build the server binaries:\n{log}"));
    }
    Ok(dir.to_path_buf())
}

/// A server binary running as a child process, with its log (JSON lines)
/// copied to the test's stderr, prefixed with `label`.
pub struct Server {
    /// Its gRPC address.
    pub addr: SocketAddr,
    /// Its metrics address (`/metrics`, `/ready`).
    pub metrics_addr: SocketAddr,
    child: Child,
}

impl Server {
    /// Starts binary `name` with `args`, on `listen` and `metrics` (port 0:
    /// any free port), and returns once it listens on both.
    pub async fn start(
        name: &str,
        label: &str,
        listen: SocketAddr,
        metrics: SocketAddr,
        args: &[String],
    ) -> Self {
        let mut child = Command::new(path(name).await)
            .arg("--listen")
            .arg(listen.to_string())
            .arg("--metrics-listen")
            .arg(metrics.to_string())
            .args(["--log-format", "json"])
            .args(args)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {name}: {e}"));
        let stderr = child.stderr.take().expect("piped stderr");
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let label = label.to_string();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                eprintln!("[{label}] {line}");
                let Ok(json) = serde_json::from_str::<serde_json::Value>(&line) else {
                    continue;
                };
                let addr = json["addr"].as_str().and_then(|a| a.parse().ok());
                if let (Some(message), Some(addr)) = (json["message"].as_str(), addr) {
                    let _ = tx.send((message.to_string(), addr));
                }
            }
        });
        let (mut addr, mut metrics_addr) = (None, None);
        let started = tokio::time::timeout(START, async {
            while addr.is_none() || metrics_addr.is_none() {
                match rx.recv().await {
                    Some((m, a)) if m == "listening" => addr = Some(a),
                    Some((m, a)) if m == "metrics listening" => metrics_addr = Some(a),
                    Some(_) => {}
                    None => return false,
                }
            }
            true
        })
        .await;
        match (started, addr, metrics_addr) {
            (Ok(true), Some(addr), Some(metrics_addr)) => Self {
                addr,
                metrics_addr,
                child,
            },
            _ => panic!("{name} did not start listening (its log is above)"),
        }
    }

    /// `http://` endpoint of its gRPC port.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Sends it `signal` (a `kill -s` name: `TERM`, `INT`).
    pub fn signal(&self, signal: &str) {
        let pid = self.child.id().expect("the server is running");
        let status = std::process::Command::new("kill")
            .args(["-s", signal, &pid.to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -s {signal} {pid} failed");
    }

    /// Waits for it to exit and returns its exit code (`None`: killed by a
    /// signal).
    pub async fn wait(mut self) -> Option<i32> {
        self.child.wait().await.expect("wait for the server").code()
    }

    /// Its resident memory, in bytes (Linux's `/proc`).
    pub fn rss(&self) -> u64 {
        let pid = self.child.id().expect("the server is running");
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map(|kb| kb * 1024)
            .expect("VmRSS in /proc/<pid>/status")
    }

    /// Whether `GET /ready` on its metrics port answers 200 (`false` for
    /// 503 or no answer).
    pub async fn ready(&self) -> bool {
        ready(self.metrics_addr).await
    }

    /// Waits until `GET /ready` answers 200 (panics after a minute).
    pub async fn wait_ready(&self) {
        tokio::time::timeout(START, async {
            while !self.ready().await {
                // A plain HTTP poll of loopback; ten times a second is
                // plenty for a state that changes once.
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
        .await
        .unwrap_or_else(|_| panic!("{} never turned ready", self.addr));
    }
}

/// `GET /ready` at `addr` answered 200.
pub async fn ready(addr: SocketAddr) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Ok(mut socket) = tokio::net::TcpStream::connect(addr).await else {
        return false;
    };
    let request = format!("GET /ready HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    if socket.write_all(request.as_bytes()).await.is_err() {
        return false;
    }
    let mut answer = String::new();
    let _ = socket.read_to_string(&mut answer).await;
    answer.starts_with("HTTP/1.1 200")
}
