//! `zgc-registry`: parses flags, then serves until SIGTERM or SIGINT.

use clap::Parser;
use zgc_registry::Config;

/// mimalloc instead of glibc's malloc: see `BENCHMARKS.md`.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let config = Config::parse();
    let _telemetry =
        zgc_server::telemetry::init_service(config.server.log_format, "info", "zgc-registry");
    zgc_server::shutdown::survive_file_size_limit();
    let listen = config.listen;
    zgc_server::shutdown::run_main("zgc-registry", listen, |listener| {
        zgc_registry::serve(config, listener, zgc_server::shutdown::signals())
    })
    .await
}
