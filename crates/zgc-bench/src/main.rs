//! `zgc-bench`: the benchmark suite's load generator.
//!
//! Starts the real `zgc-registry` and `zgc-stats` binaries (built next to
//! this one) and a bare tonic echo server (this binary, `echo-server`),
//! loads generated companies through `BatchCreateCompanies`, then drives
//! each scenario with many calls in flight over several connections,
//! several runs each, and reports medians as JSON and Markdown.
//!
//! ```sh
//! cargo build --release -p zgc-registry -p zgc-stats -p zgc-bench
//! target/release/zgc-bench --companies 1000000 --out target/bench
//! target/debug/zgc-bench --quick       # what CI runs
//! ```

mod echo;
mod load;
mod procs;
mod suite;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

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
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::EchoServer { listen }) => {
            let listener = match tokio::net::TcpListener::bind(listen).await {
                Ok(l) => l,
                Err(e) => {
                    eprintln!("zgc-bench echo-server: cannot listen on {listen}: {e}");
                    return ExitCode::FAILURE;
                }
            };
            let addr = listener
                .local_addr()
                .map(|a| a.to_string())
                .unwrap_or_default();
            eprintln!(
                "{}",
                serde_json::json!({"message": "listening", "addr": addr})
            );
            let reply = suite::sample_company();
            match echo::serve(listener, reply).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("zgc-bench echo-server: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        None => match suite::run(cli.suite).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("zgc-bench: {e}");
                ExitCode::FAILURE
            }
        },
    }
}

/// Where results go by default.
pub fn default_out() -> PathBuf {
    PathBuf::from("target/bench")
}
