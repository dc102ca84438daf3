//! `zgc up`: the registry and the stats service in one process, on an
//! embedded store, with the scenario dataset loaded on first start.

use std::io::Cursor;
use std::path::Path;

use futures::StreamExt;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use zgc_proto::registry::v1::ListParksRequest;
use zgc_proto::stats::v1::{GetSummaryRequest, Scope, scope};
use zgc_server::shutdown::Stop;

use crate::cli::Up;
use crate::connect;
use crate::error::CliError;
use crate::transfer;

async fn bind(addr: std::net::SocketAddr) -> Result<(TcpListener, std::net::SocketAddr), CliError> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| CliError::Serve(format!("cannot listen on {addr}: {e}")))?;
    let local = listener.local_addr()?;
    Ok((listener, local))
}

/// How to run this same binary from the current directory.
fn self_command() -> String {
    let exe = std::env::current_exe().ok();
    let relative = exe.as_deref().and_then(|e| {
        let cwd = std::env::current_dir().ok()?;
        e.strip_prefix(&cwd).ok().map(|p| Path::new(".").join(p))
    });
    match (relative, exe) {
        (Some(r), _) => r.display().to_string(),
        (None, Some(e)) => e.display().to_string(),
        (None, None) => "zgc".into(),
    }
}

/// The registry `zgc up` runs: the standalone binary's defaults, on the
/// store under `data_dir`.
fn registry_config(data_dir: &Path) -> zgc_registry::Config {
    zgc_registry::Config::for_data_dir(data_dir.join("registry"))
}

/// The stats service `zgc up` runs: the standalone binary's defaults,
/// following the registry at `registry_endpoint`.
fn stats_config(registry_endpoint: &str) -> zgc_stats::Config {
    zgc_stats::Config::for_registry(registry_endpoint)
}

/// Resolves when `stop` is cancelled, asking a server to stop at once:
/// `zgc up` serves one person's machine, with no proxy to leave first.
fn stopped(stop: &CancellationToken) -> impl futures::Stream<Item = Stop> + Send + 'static {
    let stop = stop.clone();
    futures::stream::once(async move {
        stop.cancelled().await;
        Stop::Now
    })
}

/// Runs until Ctrl-C or SIGTERM.
pub async fn run(up: Up) -> Result<(), CliError> {
    let (registry_listener, registry_addr) = bind(up.registry_listen).await?;
    let (stats_listener, stats_addr) = bind(up.stats_listen).await?;
    let (dashboard_listener, dashboard_addr) = bind(up.dashboard_listen).await?;
    let registry_endpoint = format!("http://{registry_addr}");
    let stats_endpoint = format!("http://{stats_addr}");
    let stop = CancellationToken::new();
    let mut signals = zgc_server::shutdown::signals();

    let registry = tokio::spawn(zgc_registry::serve(
        registry_config(&up.data_dir),
        registry_listener,
        stopped(&stop),
    ));
    let stats = tokio::spawn(zgc_stats::serve_with(
        stats_config(&registry_endpoint),
        zgc_stats::Listeners {
            grpc: stats_listener,
            metrics: None,
            http: Some(dashboard_listener),
        },
        stopped(&stop),
    ));

    let ready = async {
        let mut client = connect::registry(&registry_endpoint, &Default::default()).await?;
        let head = client
            .list_parks(ListParksRequest {
                page_size: 1,
                ..Default::default()
            })
            .await?;
        let mut revision = transfer_revision(head.metadata());
        if revision == 0 && !up.no_seed {
            eprintln!("first start: loading the scenario dataset from the articles…");
            let report = transfer::import(
                client.clone(),
                Cursor::new(zgc_dataset::SCENARIO_JSONL),
                Some(zgc_dataset::SCENARIO_JSONL.len() as u64),
                500,
                4,
            )
            .await?;
            eprintln!("{report}");
            let head = client
                .list_parks(ListParksRequest {
                    page_size: 1,
                    ..Default::default()
                })
                .await?;
            revision = transfer_revision(head.metadata());
        }
        // Wait until the stats service reflects everything loaded.
        let mut s = connect::stats(&stats_endpoint, &Default::default()).await?;
        let all = Some(Scope {
            selector: Some(scope::Selector::All(true)),
            include_affiliates: false,
        });
        let mut attempts = 0;
        loop {
            match s
                .get_summary(GetSummaryRequest {
                    scope: all.clone(),
                    min_revision: revision,
                })
                .await
            {
                Ok(_) => break,
                Err(e) if e.code() == tonic::Code::Unavailable && attempts < 60 => attempts += 1,
                Err(e) => return Err(CliError::from(e)),
            }
        }
        Ok::<u64, CliError>(revision)
    };
    let revision = tokio::select! {
        r = ready => r,
        _ = signals.next() => { stop.cancel(); Err(CliError::Serve("interrupted while starting".into())) }
    };
    let revision = match revision {
        Ok(r) => r,
        Err(e) => {
            stop.cancel();
            let _ = registry.await;
            let _ = stats.await;
            return Err(e);
        }
    };

    let zgc = self_command();
    let flags = if up.registry_listen.port() == 50051
        && up.stats_listen.port() == 50052
        && registry_addr.ip().is_loopback()
    {
        String::new()
    } else {
        format!(" --registry {registry_endpoint} --stats {stats_endpoint}")
    };
    println!("zgc is up (registry revision {revision}).");
    println!("  registry  {registry_endpoint}   zgc.registry.v1.RegistryService");
    println!("  stats     {stats_endpoint}   zgc.stats.v1.StatsService");
    println!("  dashboard http://{dashboard_addr}/   (a browser; grpc-web)");
    println!("  data      {}", up.data_dir.display());
    println!();
    println!("Try:");
    println!("  {zgc}{flags} stats summary --park baoding");
    println!("  {zgc}{flags} stats summary --park luquan");
    println!("  {zgc}{flags} stats footprint --park zgc --start 2016-01 --end 2016-07");
    println!(
        "  {zgc}{flags} companies list --filter 'park = \"parks/luquan\"' --order-by 'employees desc' --page-size 5"
    );
    println!(
        "  grpcurl -plaintext -d '{{\"scope\": {{\"park\": \"parks/binhai\"}}}}' {stats_addr} zgc.stats.v1.StatsService/GetSummary"
    );
    println!();
    println!("Ctrl-C stops both services.");

    signals.next().await;
    stop.cancel();
    let registry_result = registry.await.map_err(|e| CliError::Serve(e.to_string()))?;
    let stats_result = stats.await.map_err(|e| CliError::Serve(e.to_string()))?;
    registry_result.map_err(|e| CliError::Serve(format!("registry: {e}")))?;
    stats_result.map_err(|e| CliError::Serve(format!("stats: {e}")))?;
    eprintln!("stopped");
    Ok(())
}

fn transfer_revision(metadata: &tonic::metadata::MetadataMap) -> u64 {
    zgc_proto::wire::revision(metadata).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, FromArgMatches};

    use super::*;

    /// What a binary whose flags are `P` starts with given `args` and no
    /// environment (the environment of the test must not leak in).
    fn as_binary<P: CommandFactory + FromArgMatches>(args: &[&str]) -> P {
        let matches = P::command()
            .mut_args(|arg| arg.env(None::<&str>))
            .try_get_matches_from(args)
            .unwrap();
        P::from_arg_matches(&matches).unwrap()
    }

    /// `zgc up` runs both services as their binaries run when started
    /// with no flags: only the addresses and the data directory differ.
    #[test]
    fn up_runs_the_services_on_the_binaries_defaults() {
        let registry = registry_config(Path::new("/data"));
        let binary: zgc_registry::Config = as_binary(&[
            "zgc-registry",
            "--data-dir",
            "/data/registry",
            "--listen",
            &registry.listen.to_string(),
        ]);
        assert_eq!(format!("{registry:?}"), format!("{binary:?}"));

        let stats = stats_config("http://127.0.0.1:1");
        let binary: zgc_stats::Config = as_binary(&[
            "zgc-stats",
            "--registry-addr",
            "http://127.0.0.1:1",
            "--listen",
            &stats.listen.to_string(),
        ]);
        assert_eq!(format!("{stats:?}"), format!("{binary:?}"));
    }
}
