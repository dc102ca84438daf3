//! `zgc-bench`: the benchmark suite.
//!
//! Starts the real `zgc-registry` and `zgc-stats` binaries (built next to
//! this one), loads generated companies through `BatchCreateCompanies`,
//! then drives each scenario with many calls in flight over several
//! connections, several runs each, beside its baselines: a bare tonic echo
//! server (this binary, `echo-server`), a raw sled loop and PostgreSQL;
//! then a registry on a 3-member etcd cluster beside etcd itself.
//! Writes `results.json` and the Markdown report of medians and targets.
//!
//! ```sh
//! cargo build --release -p zgc-registry -p zgc-stats -p zgc-bench
//! target/release/zgc-bench --companies 1000000 --markdown BENCHMARKS.md
//! target/debug/zgc-bench --quick       # what CI runs
//! ```

mod dataset;
mod echo;
mod etcd;
mod listings;
mod load;
mod postgres;
mod procs;
mod report;
mod results;
mod scenarios;
mod server_latency;
mod sled_loop;
mod suite;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// The allocator the servers use, so the baselines measured in this
/// process (the echo server, the raw sled loop) run on it too.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Says where `listener` listens, as the JSON log line the services write
/// and the suite waits for.
fn announce(message: &str, listener: &tokio::net::TcpListener) {
    let addr = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    eprintln!("{}", serde_json::json!({"message": message, "addr": addr}));
}

/// The zgc benchmark suite.
#[derive(Debug, Parser)]
#[command(name = "zgc-bench", version)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    suite: suite::Options,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the transport baseline (the suite starts it by itself).
    EchoServer {
        /// Where to listen.
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: SocketAddr,
        /// The replies, written by the suite (real answers of the servers
        /// under test). Without it: a sample company, and NOT_FOUND for
        /// summaries.
        #[arg(long)]
        replies: Option<PathBuf>,
        /// Time every call with the services' own layer and serve the
        /// latency histogram at `/metrics` here (the transport's
        /// server-side latency; never a throughput baseline).
        #[arg(long)]
        metrics_listen: Option<SocketAddr>,
    },
    /// Render the Markdown report of an earlier run's `results.json`.
    Report {
        /// The results file.
        #[arg(long, default_value = "target/bench/results.json")]
        results: PathBuf,
        /// The report to write; an existing file keeps what is outside
        /// its generated part.
        #[arg(long, default_value = "BENCHMARKS.md")]
        markdown: PathBuf,
    },
}

fn report(results: &std::path::Path, markdown: &std::path::Path) -> Result<(), String> {
    let text = std::fs::read_to_string(results)
        .map_err(|e| format!("cannot read {}: {e}", results.display()))?;
    let r: results::Results = serde_json::from_str(&text)
        .map_err(|e| format!("{} is not a results file: {e}", results.display()))?;
    suite::render(&r, markdown).map_err(|e| format!("cannot write {}: {e}", markdown.display()))
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::EchoServer {
            listen,
            replies,
            metrics_listen,
        }) => {
            let replies = match replies.as_deref().map(echo::read_replies) {
                None => echo::Replies {
                    company: scenarios::sample_company(),
                    ..Default::default()
                },
                Some(Ok(r)) => r,
                Some(Err(e)) => {
                    eprintln!("zgc-bench echo-server: cannot read the replies: {e}");
                    return ExitCode::FAILURE;
                }
            };
            let listener = match tokio::net::TcpListener::bind(listen).await {
                Ok(l) => l,
                Err(e) => {
                    eprintln!("zgc-bench echo-server: cannot listen on {listen}: {e}");
                    return ExitCode::FAILURE;
                }
            };
            let observed = match metrics_listen {
                None => None,
                Some(at) => match tokio::net::TcpListener::bind(at).await {
                    Ok(l) => {
                        announce("metrics listening", &l);
                        let metrics = zgc_server::metrics::Metrics::new();
                        let stop = tokio_util::sync::CancellationToken::new();
                        let (health, _) = zgc_server::health::Health::new(&[]).await;
                        health.serving().await;
                        zgc_server::metrics::spawn(Some(l), metrics.clone(), health, stop);
                        Some(metrics)
                    }
                    Err(e) => {
                        eprintln!("zgc-bench echo-server: cannot listen on {at}: {e}");
                        return ExitCode::FAILURE;
                    }
                },
            };
            announce("listening", &listener);
            let echo = echo::Echo::new(&replies);
            match echo::serve(listener, echo, observed).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("zgc-bench echo-server: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Some(Command::Report { results, markdown }) => match report(&results, &markdown) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("zgc-bench report: {e}");
                ExitCode::FAILURE
            }
        },
        None => match suite::run(cli.suite).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("zgc-bench: {e}");
                ExitCode::FAILURE
            }
        },
    }
}
