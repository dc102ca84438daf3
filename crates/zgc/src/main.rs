//! `zgc`: the command-line tool. See `zgc --help`.

mod args;
mod charts;
mod cli;
mod connect;
mod diagnose;
mod error;
mod output;
mod resources;
mod stats;
mod transfer;
mod up;
mod watch;

use std::io::{BufReader, BufWriter, Write};
use std::process::ExitCode;

use clap::{CommandFactory, Parser};

use crate::cli::{Cli, Command};
use crate::error::CliError;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let endpoint = service_called(&cli).map(str::to_string);
    let tls = connect::client_tls(&cli.global.connection);
    let _telemetry =
        zgc_server::telemetry::init_client(zgc_server::telemetry::LogFormat::Text, "warn", "zgc");
    // One trace per command: every call it makes carries its context.
    let span = tracing::info_span!("zgc");
    match tracing::Instrument::instrument(run(cli), span).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // A failure on the wire is told by its cause, which a second
            // TLS handshake made only to watch it fail can name for sure.
            let probed = match &endpoint {
                Some(addr) if e.is_on_the_wire() && zgc_client::wants_tls(addr, &tls) => {
                    zgc_client::probe::tls(addr, &tls).await.err()
                }
                Some(addr) if e.is_on_the_wire() => zgc_client::probe::plaintext(addr).await.err(),
                _ => None,
            };
            eprintln!(
                "error: {}",
                e.describe(tls.cert.as_deref(), probed.as_ref())
            );
            ExitCode::from(e.exit_code())
        }
    }
}

/// The endpoint a command calls, if it calls one.
fn service_called(cli: &Cli) -> Option<&str> {
    match cli.command {
        Command::Parks(_)
        | Command::Companies(_)
        | Command::Import(_)
        | Command::Export(_)
        | Command::Watch(_) => Some(&cli.global.registry),
        Command::Stats(_) => Some(&cli.global.stats),
        Command::Up(_) | Command::Gen(_) | Command::Completions { .. } => None,
    }
}

async fn run(cli: Cli) -> Result<(), CliError> {
    let g = cli.global;
    match cli.command {
        Command::Up(up) => up::run(up).await,
        Command::Parks(c) => resources::run(resources::Kind::Parks, c, &g).await,
        Command::Companies(c) => resources::run(resources::Kind::Companies, c, &g).await,
        Command::Stats(c) => stats::run(c, &g).await,
        Command::Watch(w) => watch::run(w, &g).await,
        Command::Import(i) => {
            let client = connect::registry(&g.registry, &g.connection).await?;
            let report = if i.file.as_os_str() == "-" {
                transfer::import(
                    client,
                    std::io::stdin().lock(),
                    None,
                    usize::from(i.batch_size),
                    usize::from(i.in_flight),
                )
                .await?
            } else {
                let file = std::fs::File::open(&i.file).map_err(|e| {
                    CliError::Input(format!("cannot open {}: {e}", i.file.display()))
                })?;
                let size = file.metadata().ok().map(|m| m.len());
                transfer::import(
                    client,
                    BufReader::new(file),
                    size,
                    usize::from(i.batch_size),
                    usize::from(i.in_flight),
                )
                .await?
            };
            println!("{report}");
            if report.failed.is_empty() {
                Ok(())
            } else {
                Err(CliError::Partial(format!(
                    "{} lines failed",
                    report.failed.len()
                )))
            }
        }
        Command::Export(e) => {
            let client = connect::registry(&g.registry, &g.connection).await?;
            let n = match e.file {
                Some(path) => {
                    let mut out = BufWriter::new(std::fs::File::create(&path)?);
                    let n = transfer::export(client, &mut out).await?;
                    out.flush()?;
                    n
                }
                None => {
                    let mut out = BufWriter::new(std::io::stdout().lock());
                    let n = transfer::export(client, &mut out).await?;
                    out.flush()?;
                    n
                }
            };
            eprintln!("exported {n} records");
            Ok(())
        }
        Command::Gen(gen_args) => {
            let mut out: Box<dyn Write> = match &gen_args.file {
                Some(path) => Box::new(BufWriter::new(std::fs::File::create(path)?)),
                None => Box::new(BufWriter::new(std::io::stdout().lock())),
            };
            if gen_args.scenario {
                out.write_all(zgc_dataset::SCENARIO_JSONL.as_bytes())?;
            } else {
                for entity in zgc_dataset::generate(gen_args.companies, gen_args.seed) {
                    let line = zgc_proto::json::to_string(&entity)
                        .map_err(|e| CliError::Input(e.to_string()))?;
                    writeln!(out, "{line}")?;
                }
            }
            out.flush()?;
            Ok(())
        }
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "zgc", &mut std::io::stdout());
            Ok(())
        }
    }
}
