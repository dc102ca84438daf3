//! `zgc-registry`: parses flags, then serves until SIGTERM or SIGINT.

use clap::Parser;
use zgc_registry::Config;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let config = Config::parse();
    zgc_server::telemetry::init(config.server.log_format);
    zgc_server::shutdown::survive_file_size_limit();
    let listen = config.listen;
    zgc_server::shutdown::run_main("zgc-registry", listen, |listener| {
        zgc_registry::serve(config, listener, zgc_server::shutdown::signal())
    })
    .await
}
