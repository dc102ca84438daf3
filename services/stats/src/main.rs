//! `zgc-stats`: parses flags, then serves until SIGTERM or SIGINT.

use clap::Parser;
use tokio::net::TcpListener;
use zgc_stats::Config;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let config = Config::parse();
    zgc_server::telemetry::init(config.log_format);
    let listener = match TcpListener::bind(config.listen).await {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(listen = %config.listen, error = %e, "cannot listen");
            return std::process::ExitCode::FAILURE;
        }
    };
    match listener.local_addr() {
        Ok(addr) => tracing::info!(%addr, "listening"),
        Err(e) => tracing::warn!(error = %e, "listening on an unknown address"),
    }
    match zgc_stats::serve(config, listener, zgc_server::shutdown::signal()).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "stats service failed");
            eprintln!("zgc-stats: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
