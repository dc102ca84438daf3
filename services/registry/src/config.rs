//! Command-line flags, each with an environment-variable fallback.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use zgc_server::ServerArgs;

/// How writes are made durable before they are acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DurabilityArg {
    /// Flush sled's log and fsync it: survives power loss (default).
    Fsync,
    /// Flush sled's log (sync_file_range): survives a crash of the process,
    /// not necessarily of the machine.
    Flush,
    /// Acknowledge before flushing (sled flushes every 500 ms): may lose
    /// acknowledged writes on any crash. For tests and benchmarks only.
    None,
}

impl From<DurabilityArg> for zgc_store::Durability {
    fn from(d: DurabilityArg) -> Self {
        match d {
            DurabilityArg::Fsync => Self::Fsync,
            DurabilityArg::Flush => Self::Flush,
            DurabilityArg::None => Self::None,
        }
    }
}

/// The registry's configuration.
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "zgc-registry",
    version,
    about = "The zgc registry: parks and companies over gRPC, stored in sled or in an etcd cluster."
)]
pub struct Config {
    /// Address to serve gRPC on.
    #[arg(long, env = "ZGC_LISTEN", default_value = "127.0.0.1:50051")]
    pub listen: SocketAddr,
    /// Directory of the sled database (created if missing). Not used with
    /// `--etcd-endpoints`.
    #[arg(long, env = "ZGC_DATA_DIR", default_value = "./zgc-data/registry")]
    pub data_dir: PathBuf,
    /// Keep the registry in an etcd cluster instead (see below).
    #[command(flatten)]
    pub etcd: EtcdArgs,
    /// How writes are made durable before they are acknowledged.
    #[arg(long, env = "ZGC_DURABILITY", value_enum, default_value_t = DurabilityArg::Fsync)]
    pub durability: DurabilityArg,
    /// How many revisions of change history WatchChanges can replay (and
    /// request IDs are remembered for).
    #[arg(long, env = "ZGC_RETENTION", default_value_t = zgc_store::DEFAULT_RETENTION, value_parser = clap::value_parser!(u64).range(1..))]
    pub retention: u64,
    /// sled's page cache, in MiB. sled's pages take about twice this in
    /// memory; more makes reads of a store that does not fit faster.
    #[arg(long, env = "ZGC_CACHE_MB", default_value_t = zgc_store::DEFAULT_CACHE_MB)]
    pub cache_mb: u64,
    /// Hold every company in memory, compressed, so reads by ID
    /// (GetCompany, BatchGetCompanies, list pages) skip sled's page cache:
    /// a little less than the companies' encoded size, loaded in the
    /// background after start, while reads go to disk. `false` turns it
    /// off, for stores far larger than memory.
    #[arg(long, env = "ZGC_COMPANIES_IN_MEMORY", default_value_t = true, action = clap::ArgAction::Set)]
    pub companies_in_memory: bool,
    /// Keep listing indexes of every park and company in memory, so a
    /// filtered or ordered ListParks/ListCompanies reads what its page
    /// needs instead of scanning: built in the background after start,
    /// while listings scan. `false` turns them off, to save their memory.
    #[arg(long, env = "ZGC_LISTING_INDEXES", default_value_t = true, action = clap::ArgAction::Set)]
    pub listing_indexes: bool,
    /// Compress the store's log with zstd (level 1) when this start creates
    /// the data directory: about half the disk, for CPU on every write and
    /// on every page read back from disk. A store keeps what it was created
    /// with (sled cannot change it), so this only matters for a new one.
    #[arg(long, env = "ZGC_STORE_COMPRESSION", default_value_t = true, action = clap::ArgAction::Set)]
    pub store_compression: bool,
    /// Largest request message accepted, in bytes.
    #[arg(long, env = "ZGC_MAX_MESSAGE_BYTES", default_value_t = 16 * 1024 * 1024)]
    pub max_message_bytes: usize,
    /// Most WatchChanges streams open at once; more are refused with
    /// RESOURCE_EXHAUSTED. Each holds a task and a few responses.
    #[arg(long, env = "ZGC_MAX_WATCHERS", default_value_t = 1024, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_watchers: u32,
    /// Most `List*` pages read from the store at once (default: one per
    /// CPU this process may use). A filtered page may read most of the
    /// store on a thread of its own; the pages past the limit wait for a
    /// running one to end, so many lists in flight share the cores without
    /// a thread and its memory each.
    #[arg(long, env = "ZGC_MAX_CONCURRENT_SCANS", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_concurrent_scans: Option<u32>,
    /// Seconds between progress marks on an idle WatchChanges stream.
    #[arg(long, env = "ZGC_WATCH_PROGRESS_SECS", default_value_t = 3)]
    pub watch_progress_secs: u64,
    /// A file of bearer tokens (one per line) that write RPCs must carry
    /// as `authorization: Bearer <token>`; reads stay open. Off unless
    /// set. Read at start.
    #[arg(long, env = "ZGC_AUTH_TOKEN_FILE")]
    pub auth_token_file: Option<PathBuf>,
    /// Flags every zgc server takes.
    #[command(flatten)]
    pub server: ServerArgs,
}

/// The etcd backend's flags.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct EtcdArgs {
    /// Keep the registry in an etcd cluster (3.4 or later) instead of
    /// sled: its members' client URLs, comma-separated
    /// (`http://host:2379`, or `https://` for TLS). Every registry started
    /// with the same endpoints and prefix serves the same registry, so
    /// replicas scale out; each keeps a copy in memory, fed by etcd's
    /// watch, and serves reads from it. etcd needs `--max-txn-ops 4096`
    /// and `--max-request-bytes 16777216` for batches of 1,000 companies
    /// (deploy/README.md).
    #[arg(
        long = "etcd-endpoints",
        env = "ZGC_ETCD_ENDPOINTS",
        value_delimiter = ','
    )]
    pub endpoints: Vec<String>,
    /// The prefix of the registry's keys in etcd: registries sharing a
    /// cluster use different ones.
    #[arg(long = "etcd-prefix", env = "ZGC_ETCD_PREFIX", default_value = "zgc/")]
    pub prefix: String,
    /// etcd user, when etcd's auth is enabled (with
    /// `--etcd-password-file`).
    #[arg(long = "etcd-user", env = "ZGC_ETCD_USER", requires = "password_file")]
    pub user: Option<String>,
    /// File holding the etcd user's password (its first line).
    #[arg(
        long = "etcd-password-file",
        env = "ZGC_ETCD_PASSWORD_FILE",
        requires = "user"
    )]
    pub password_file: Option<PathBuf>,
    /// PEM CA certificates to trust for etcd's TLS (instead of the public
    /// roots).
    #[arg(long = "etcd-ca", env = "ZGC_ETCD_CA")]
    pub ca: Option<PathBuf>,
    /// PEM client certificate for etcd's `--client-cert-auth` (with
    /// `--etcd-key`).
    #[arg(long = "etcd-cert", env = "ZGC_ETCD_CERT", requires = "key")]
    pub cert: Option<PathBuf>,
    /// PEM private key of `--etcd-cert`.
    #[arg(long = "etcd-key", env = "ZGC_ETCD_KEY", requires = "cert")]
    pub key: Option<PathBuf>,
}

impl EtcdArgs {
    /// Whether the registry is kept in etcd.
    pub fn enabled(&self) -> bool {
        !self.endpoints.is_empty()
    }

    /// The etcd client's configuration.
    pub fn client(&self) -> Result<zgc_etcd::Config, String> {
        let mut config = zgc_etcd::Config::new(self.endpoints.iter().map(|e| e.trim().to_string()));
        config.tls = zgc_client::ClientTls {
            ca: self.ca.clone(),
            cert: self.cert.clone(),
            key: self.key.clone(),
            server_name: None,
        };
        if let (Some(user), Some(file)) = (&self.user, &self.password_file) {
            let text = std::fs::read_to_string(file)
                .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
            let password = text.lines().next().unwrap_or_default().to_string();
            config.credentials = Some(zgc_etcd::Credentials {
                user: user.clone(),
                password,
            });
        }
        Ok(config)
    }
}

impl Config {
    /// Every flag at its default, as `zgc-registry` with no flags and no
    /// environment starts.
    pub fn defaults() -> Self {
        zgc_server::args::defaults()
    }

    /// Every default, for `data_dir`, on any free loopback port when used
    /// with [`crate::serve`].
    pub fn for_data_dir(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            data_dir: data_dir.into(),
            ..Self::defaults()
        }
    }

    /// The drain timeout.
    pub fn drain(&self) -> Duration {
        self.server.drain()
    }
}
