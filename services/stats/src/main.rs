//! `zgc-stats`: parses flags, then serves until SIGTERM or SIGINT.

use clap::Parser;
use zgc_stats::Config;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let config = Config::parse();
    zgc_server::telemetry::init(config.server.log_format);
    let listen = config.listen;
    zgc_server::shutdown::run_main("zgc-stats", listen, |listener| {
        zgc_stats::serve(config, listener, zgc_server::shutdown::signal())
    })
    .await
}
