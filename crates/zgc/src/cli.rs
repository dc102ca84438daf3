//! The command line: every subcommand and flag.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// zgc: parks and companies of Zhongguancun and its affiliated parks, and
/// the figures about them.
#[derive(Debug, Parser)]
#[command(name = "zgc", version, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// Flags every subcommand takes.
#[derive(Debug, Clone, Args)]
pub struct Global {
    /// The registry's gRPC endpoint.
    #[arg(
        long,
        global = true,
        env = "ZGC_REGISTRY_ADDR",
        default_value = "http://127.0.0.1:50051"
    )]
    pub registry: String,
    /// The stats service's gRPC endpoint.
    #[arg(
        long,
        global = true,
        env = "ZGC_STATS_ADDR",
        default_value = "http://127.0.0.1:50052"
    )]
    pub stats: String,
    /// How to print results: readable tables and charts, or canonical
    /// proto3 JSON (the same as grpcurl prints).
    #[arg(long, short, global = true, env = "ZGC_OUTPUT", value_enum, default_value_t = Output::Table)]
    pub output: Output,
    /// How to authenticate and encrypt calls.
    #[command(flatten)]
    pub connection: Connection,
}

/// Credentials and TLS for the calls the CLI makes.
#[derive(Debug, Clone, Default, Args)]
pub struct Connection {
    /// A file holding the bearer token for writes (registries started with
    /// --auth-token-file require one).
    #[arg(long, global = true, env = "ZGC_TOKEN_FILE")]
    pub token_file: Option<std::path::PathBuf>,
    /// PEM CA certificates to trust for `https://` endpoints (default: the
    /// public web roots).
    #[arg(long, global = true, env = "ZGC_TLS_CA")]
    pub tls_ca: Option<std::path::PathBuf>,
    /// PEM client certificate, for servers that require mutual TLS.
    #[arg(long, global = true, env = "ZGC_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<std::path::PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, global = true, env = "ZGC_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<std::path::PathBuf>,
    /// The name to check the server certificate against, when it differs
    /// from the endpoint's host.
    #[arg(long, global = true, env = "ZGC_TLS_SERVER_NAME")]
    pub tls_server_name: Option<String>,
}

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// Tables and charts for people.
    Table,
    /// Canonical proto3 JSON, one document (or one line per item) per result.
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the registry and the stats service together on an embedded
    /// store, loading the scenario dataset on first start.
    Up(Up),
    /// Parks: create, get, list, update, delete.
    #[command(subcommand)]
    Parks(Resource),
    /// Companies: create, get, list, update, delete.
    #[command(subcommand)]
    Companies(Resource),
    /// Import parks and companies from a JSON Lines file (one
    /// `zgc.registry.v1.Entity` per line, as `zgc export` and `zgc gen`
    /// write). Safe to re-run after an interruption.
    Import(Import),
    /// Export every park and company as JSON Lines (parents first), ready
    /// to import elsewhere.
    Export(Export),
    /// Statistics from the stats service.
    #[command(subcommand)]
    Stats(Stats),
    /// Follow the registry's change stream.
    Watch(Watch),
    /// Generate a dataset: the scenario, or synthetic companies at any
    /// scale, as JSON Lines.
    Gen(Gen),
    /// Print shell completions.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

#[derive(Debug, Args)]
pub struct Up {
    /// Where the registry keeps its data.
    #[arg(long, env = "ZGC_DATA_DIR", default_value = "./zgc-data")]
    pub data_dir: PathBuf,
    /// The registry's address.
    #[arg(long, default_value = "127.0.0.1:50051")]
    pub registry_listen: std::net::SocketAddr,
    /// The stats service's address.
    #[arg(long, default_value = "127.0.0.1:50052")]
    pub stats_listen: std::net::SocketAddr,
    /// The dashboard's address: a web page over the stats service.
    #[arg(long, default_value = "127.0.0.1:8052")]
    pub dashboard_listen: std::net::SocketAddr,
    /// Start empty instead of loading the scenario dataset.
    #[arg(long)]
    pub no_seed: bool,
}

#[derive(Debug, Subcommand)]
pub enum Resource {
    /// Show one, by name (`parks/x`) or ID (`x`).
    Get {
        /// Name or ID.
        name: String,
    },
    /// List, filtered and ordered.
    List(List),
    /// Create from JSON (fields as in the .proto, e.g. `{"display_name": "…"}`).
    Create(Create),
    /// Update the fields in the JSON patch (or those named by --mask).
    Update(Update),
    /// Delete.
    Delete {
        /// Name or ID.
        name: String,
        /// Only if the stored etag still matches.
        #[arg(long)]
        etag: Option<String>,
    },
}

#[derive(Debug, Args)]
pub struct List {
    /// An AIP-160 filter, e.g. `location.province = "Hebei" AND employees > 100`.
    #[arg(long, short)]
    pub filter: Option<String>,
    /// Order, e.g. `employees desc, display_name`.
    #[arg(long)]
    pub order_by: Option<String>,
    /// Items per page (at most 1000).
    #[arg(long, default_value_t = 50)]
    pub page_size: i32,
    /// Continue from a page token.
    #[arg(long)]
    pub page_token: Option<String>,
    /// Fetch every page.
    #[arg(long)]
    pub all: bool,
}

#[derive(Debug, Args)]
pub struct Create {
    /// The ID to give it (else the server picks one).
    #[arg(long)]
    pub id: Option<String>,
    /// The resource as JSON; `-` reads standard input.
    #[arg(long)]
    pub json: String,
    /// A UUID making the create safe to retry.
    #[arg(long)]
    pub request_id: Option<String>,
}

#[derive(Debug, Args)]
pub struct Update {
    /// Name or ID.
    pub name: String,
    /// The new values as JSON; `-` reads standard input.
    #[arg(long)]
    pub json: String,
    /// The fields to update, comma-separated (`*` for all); default: the
    /// fields set in the JSON.
    #[arg(long)]
    pub mask: Option<String>,
    /// Only if the stored etag still matches.
    #[arg(long)]
    pub etag: Option<String>,
}

#[derive(Debug, Args)]
pub struct Import {
    /// The JSON Lines file; `-` reads standard input.
    pub file: PathBuf,
    /// Companies per BatchCreateCompanies call (1..=1000).
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub batch_size: u16,
    /// Batches sent at once (1..=16). A batch naming a parent company
    /// waits until the batch creating that parent was answered.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u8).range(1..=16))]
    pub in_flight: u8,
}

#[derive(Debug, Args)]
pub struct Export {
    /// Write here instead of standard output.
    #[arg(long)]
    pub file: Option<PathBuf>,
}

/// Which parks and companies a statistic covers.
#[derive(Debug, Clone, Args)]
#[group(required = true, multiple = false)]
pub struct ScopeArgs {
    /// Everything.
    #[arg(long)]
    pub all: bool,
    /// A park (name or ID).
    #[arg(long)]
    pub park: Option<String>,
    /// A province.
    #[arg(long)]
    pub province: Option<String>,
    /// A city, as `Province/City`.
    #[arg(long)]
    pub city: Option<String>,
    /// A sector slug.
    #[arg(long)]
    pub sector: Option<String>,
}

/// A registry revision the answer must reflect.
#[derive(Debug, Clone, Args)]
pub struct Fresh {
    /// Wait until the stats service has applied this registry revision.
    #[arg(long, default_value_t = 0)]
    pub min_revision: u64,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Level {
    Province,
    City,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum RankMetric {
    CompanyCount,
    Employees,
    Investment,
    Revenue,
    RevenueGrowth,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum SeriesMetric {
    Founded,
    Branches,
    Relocations,
    Revenue,
    OutputValue,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Granularity {
    Year,
    Month,
}

#[derive(Debug, Subcommand)]
pub enum Stats {
    /// The summary of a scope.
    Summary(SummaryArgs),
    /// Parks ranked by a metric.
    Rank(RankArgs),
    /// Relocations grouped by origin and destination.
    Flows(FlowsArgs),
    /// Where the branches of a scope's companies are.
    Footprint(FootprintArgs),
    /// A metric over time.
    Series(SeriesArgs),
    /// Follow a scope's summary as it changes.
    Watch(WatchSummaryArgs),
}

#[derive(Debug, Args)]
pub struct SummaryArgs {
    #[command(flatten)]
    pub scope: ScopeArgs,
    /// With --park: include every affiliated park.
    #[arg(long)]
    pub affiliates: bool,
    #[command(flatten)]
    pub fresh: Fresh,
}

#[derive(Debug, Args)]
pub struct RankArgs {
    #[arg(long, value_enum)]
    pub metric: RankMetric,
    /// The year, for revenue metrics.
    #[arg(long, default_value_t = 0)]
    pub year: i32,
    /// Only parks in this province.
    #[arg(long)]
    pub province: Option<String>,
    /// How many (at most 100).
    #[arg(long, default_value_t = 10)]
    pub limit: i32,
    #[command(flatten)]
    pub fresh: Fresh,
}

#[derive(Debug, Args)]
pub struct FlowsArgs {
    /// Only from this province.
    #[arg(long)]
    pub from: Option<String>,
    /// Only to this province.
    #[arg(long)]
    pub to: Option<String>,
    /// Only records dated in this year or later.
    #[arg(long, default_value_t = 0)]
    pub start_year: i32,
    /// Only records dated in this year or earlier.
    #[arg(long, default_value_t = 0)]
    pub end_year: i32,
    #[arg(long, value_enum, default_value_t = Level::Province)]
    pub level: Level,
    #[command(flatten)]
    pub fresh: Fresh,
}

#[derive(Debug, Args)]
pub struct FootprintArgs {
    #[command(flatten)]
    pub scope: ScopeArgs,
    /// With --park: include every affiliated park.
    #[arg(long)]
    pub affiliates: bool,
    /// Founded on or after (YYYY, YYYY-MM or YYYY-MM-DD).
    #[arg(long)]
    pub start: Option<String>,
    /// Founded on or before.
    #[arg(long)]
    pub end: Option<String>,
    #[arg(long, value_enum, default_value_t = Level::Province)]
    pub level: Level,
    #[command(flatten)]
    pub fresh: Fresh,
}

#[derive(Debug, Args)]
pub struct SeriesArgs {
    #[command(flatten)]
    pub scope: ScopeArgs,
    /// With --park: include every affiliated park.
    #[arg(long)]
    pub affiliates: bool,
    #[arg(long, value_enum)]
    pub metric: SeriesMetric,
    #[arg(long, value_enum, default_value_t = Granularity::Year)]
    pub granularity: Granularity,
    /// The first period (YYYY, YYYY-MM or YYYY-MM-DD).
    #[arg(long)]
    pub start: Option<String>,
    /// The last period.
    #[arg(long)]
    pub end: Option<String>,
    #[command(flatten)]
    pub fresh: Fresh,
}

#[derive(Debug, Args)]
pub struct WatchSummaryArgs {
    #[command(flatten)]
    pub scope: ScopeArgs,
    /// With --park: include every affiliated park.
    #[arg(long)]
    pub affiliates: bool,
    /// At most one summary per this many milliseconds.
    #[arg(long, default_value_t = 1000)]
    pub interval_ms: u64,
    /// Stop after this many summaries.
    #[arg(long)]
    pub limit: Option<u64>,
}

#[derive(Debug, Args)]
pub struct Watch {
    /// 0 for a snapshot then live changes; N to replay from revision N.
    #[arg(long, default_value_t = 0)]
    pub from: u64,
    /// Stop after this many events.
    #[arg(long)]
    pub limit: Option<u64>,
}

#[derive(Debug, Args)]
pub struct Gen {
    /// Write the checked-in scenario dataset instead of synthetic companies.
    #[arg(long, conflicts_with_all = ["companies", "seed"])]
    pub scenario: bool,
    /// How many synthetic companies.
    #[arg(long, default_value_t = 1000)]
    pub companies: u64,
    /// The random seed.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Write here instead of standard output.
    #[arg(long)]
    pub file: Option<PathBuf>,
}
