//! Test harness: real servers on loopback ports, real gRPC clients.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::Channel;
use zgc_proto::registry::v1::registry_service_client::RegistryServiceClient;
use zgc_proto::registry::v1::{Company, Park, ParkKind};
use zgc_proto::stats::v1::stats_service_client::StatsServiceClient;
use zgc_proto::types::v1::{Date, Location};
use zgc_registry::Config;
use zgc_server::shutdown::Stop;

pub mod binaries;
pub mod etcd;
pub mod fixtures;
pub mod otlp;
pub mod pki;
pub mod proxy;
pub mod raw;
pub mod tools;

/// A registry served in this process on a free loopback port.
pub struct Registry {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Where its Prometheus metrics are served.
    pub metrics_addr: SocketAddr,
    /// Its data directory.
    pub data_dir: PathBuf,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), zgc_registry::ServeError>>>,
    _temp: Option<tempfile::TempDir>,
    /// The etcd cluster it keeps its data in, kept running while it runs.
    _etcd: Option<Arc<etcd::EtcdCluster>>,
}

/// Where a registry keeps its data: a sled directory or a 3-member etcd
/// cluster. Registries started on the same backend one after another
/// serve the same data (a restart); on etcd, at the same time too (two
/// replicas).
pub enum Backend {
    /// A sled data directory.
    Sled(tempfile::TempDir),
    /// An etcd cluster.
    Etcd(Arc<etcd::EtcdCluster>),
}

impl Backend {
    /// A fresh sled data directory.
    pub fn sled() -> Self {
        Backend::Sled(tempfile::tempdir().expect("temp dir"))
    }

    /// A fresh 3-member etcd cluster.
    pub async fn etcd() -> Self {
        Backend::Etcd(Arc::new(etcd::cluster(3).await))
    }

    /// The etcd cluster, if on etcd.
    pub fn cluster(&self) -> Option<&etcd::EtcdCluster> {
        match self {
            Backend::Sled(_) => None,
            Backend::Etcd(cluster) => Some(cluster),
        }
    }

    /// Starts a registry on this backend's data, with `tweak` applied to
    /// the default configuration.
    pub async fn start(&self, tweak: impl FnOnce(&mut Config)) -> Registry {
        match self {
            Backend::Sled(dir) => Registry::start_in(dir.path(), tweak).await,
            Backend::Etcd(cluster) => {
                let scratch = tempfile::tempdir().expect("temp dir");
                let endpoints = cluster.endpoints();
                let mut registry = Registry::start_in(scratch.path(), |c| {
                    c.etcd.endpoints = endpoints;
                    tweak(c);
                })
                .await;
                registry._temp = Some(scratch);
                registry._etcd = Some(cluster.clone());
                registry
            }
        }
    }
}

/// Generates, for each `async fn name(backend: Backend)` named, a test of
/// it on sled (`on_sled::name`) and one on etcd (`on_etcd::name`).
#[macro_export]
macro_rules! on_both_backends {
    ($($test:ident),* $(,)?) => {
        mod on_sled {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::$test($crate::Backend::sled()).await
                }
            )*
        }
        mod on_etcd {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::$test($crate::Backend::etcd().await).await
                }
            )*
        }
    };
}

impl Registry {
    /// Starts a registry on a fresh data directory.
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// Starts a registry on a fresh data directory, with `tweak` applied to
    /// the default configuration.
    pub async fn start_with(tweak: impl FnOnce(&mut Config)) -> Self {
        let temp = tempfile::tempdir().expect("temp dir");
        let mut registry = Self::start_in(temp.path(), tweak).await;
        registry._temp = Some(temp);
        registry
    }

    /// Starts a registry on `data_dir`, which the caller keeps, and
    /// returns once it answers.
    ///
    /// Right after a registry on the same directory stopped in this
    /// process, sled's I/O threads may still hold its file, and so its
    /// lock, for a moment (the store's own tests retry the same way): a
    /// start that finds the directory locked is retried, for up to 30 s,
    /// which only a leaked store would exhaust. A process restart (the
    /// real one) never meets this: the lock goes with the process.
    pub async fn start_in(data_dir: &Path, tweak: impl FnOnce(&mut Config)) -> Self {
        let mut config = Config::for_data_dir(data_dir);
        tweak(&mut config);
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            let addr = listener.local_addr().expect("addr");
            let metrics = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            let metrics_addr = metrics.local_addr().expect("addr");
            let (stop, stopped) = oneshot::channel::<()>();
            let mut task = tokio::spawn(zgc_registry::serve_with(
                config.clone(),
                listener,
                Some(metrics),
                futures::stream::once(async move {
                    let _ = stopped.await;
                    Stop::Now
                }),
            ));
            // Up once its health service answers (serving or not yet). A
            // TLS registry is not probed (that would take the test's
            // certificates); the tests that run one never restart it.
            let tls = config.server.tls_cert.is_some();
            let up = async {
                if tls {
                    return;
                }
                loop {
                    let channel = Channel::from_shared(format!("http://{addr}"))
                        .expect("endpoint")
                        .connect()
                        .await;
                    if let Ok(channel) = channel {
                        let mut health =
                            tonic_health::pb::health_client::HealthClient::new(channel);
                        let check = tonic_health::pb::HealthCheckRequest {
                            service: String::new(),
                        };
                        if health.check(check).await.is_ok() {
                            return;
                        }
                    }
                    tokio::task::yield_now().await;
                }
            };
            tokio::select! {
                biased;
                () = up => {
                    return Self {
                        addr,
                        metrics_addr,
                        data_dir: data_dir.to_path_buf(),
                        stop: Some(stop),
                        task: Some(task),
                        _temp: None,
                        _etcd: None,
                    };
                }
                ended = &mut task => match ended.expect("serve task") {
                    Err(e) if e.is_locked() && tokio::time::Instant::now() < deadline => {
                        tokio::task::yield_now().await;
                    }
                    Err(e) => panic!("the registry did not start: {e}"),
                    Ok(()) => panic!("the registry stopped before answering"),
                },
            }
        }
    }

    /// `http://127.0.0.1:port`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A connected client.
    pub async fn client(&self) -> RegistryServiceClient<Channel> {
        RegistryServiceClient::new(self.channel().await)
    }

    /// A connected channel.
    pub async fn channel(&self) -> Channel {
        Channel::from_shared(self.endpoint())
            .expect("endpoint")
            .connect()
            .await
            .expect("connect")
    }

    /// Begins a graceful shutdown without waiting for it.
    pub fn begin_shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    /// Stops it at once, as a crash would: the serving task is dropped
    /// where it stands, with no drain and no store close.
    pub async fn kill(mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
    }

    /// Shuts down gracefully and waits until the store is closed. Returns
    /// the data directory, kept if the registry owned a temp dir.
    pub async fn stop(mut self) -> Option<tempfile::TempDir> {
        self.begin_shutdown();
        if let Some(task) = self.task.take() {
            task.await.expect("serve task").expect("serve result");
        }
        self._temp.take()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.begin_shutdown();
    }
}

/// A stats service served in this process on a free loopback port.
pub struct Stats {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Where its Prometheus metrics are served.
    pub metrics_addr: SocketAddr,
    /// Where its dashboard and grpc-web are served, if they are
    /// ([`Stats::start_with_dashboard`]).
    pub dashboard_addr: Option<SocketAddr>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), zgc_stats::ServeError>>>,
}

impl Stats {
    /// Starts with the dashboard on a free loopback port too, and `tweak`
    /// applied to the configuration.
    pub async fn start_with_dashboard(
        registry: &str,
        tweak: impl FnOnce(&mut zgc_stats::Config),
    ) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let http = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        Self::launch(listener, Some(http), registry, tweak).await
    }

    /// Starts a stats service following the registry at `registry` (an
    /// `http://` endpoint), with fast reconnects for tests.
    pub async fn start(registry: &str) -> Self {
        Self::start_with(registry, |_| {}).await
    }

    /// Starts with `tweak` applied to the configuration.
    pub async fn start_with(registry: &str, tweak: impl FnOnce(&mut zgc_stats::Config)) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        Self::start_on(listener, registry, tweak).await
    }

    /// Starts on `listener` (to come back on the same port after a stop).
    pub async fn start_on(
        listener: TcpListener,
        registry: &str,
        tweak: impl FnOnce(&mut zgc_stats::Config),
    ) -> Self {
        Self::launch(listener, None, registry, tweak).await
    }

    async fn launch(
        listener: TcpListener,
        http: Option<TcpListener>,
        registry: &str,
        tweak: impl FnOnce(&mut zgc_stats::Config),
    ) -> Self {
        let dashboard_addr = http.as_ref().map(|l| l.local_addr().expect("addr"));
        let mut config = zgc_stats::Config::for_registry(registry);
        config.backoff_max_ms = 200;
        tweak(&mut config);
        let addr = listener.local_addr().expect("addr");
        let metrics = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let metrics_addr = metrics.local_addr().expect("addr");
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(zgc_stats::serve_with(
            config,
            zgc_stats::Listeners {
                grpc: listener,
                metrics: Some(metrics),
                http,
            },
            futures::stream::once(async move {
                let _ = stopped.await;
                Stop::Now
            }),
        ));
        Self {
            addr,
            metrics_addr,
            dashboard_addr,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// A connected channel.
    pub async fn channel(&self) -> Channel {
        Channel::from_shared(format!("http://{}", self.addr))
            .expect("endpoint")
            .connect()
            .await
            .expect("connect")
    }

    /// A connected client.
    pub async fn client(&self) -> StatsServiceClient<Channel> {
        StatsServiceClient::new(self.channel().await)
    }

    /// Waits (on the health stream, not a clock) until it reports SERVING.
    pub async fn wait_serving(&self) {
        let wait = zgc_client::health::wait_serving(self.channel().await, "");
        tokio::time::timeout(std::time::Duration::from_secs(60), wait)
            .await
            .expect("stats never became SERVING")
            .expect("stats reports SERVING");
    }

    /// Shuts down gracefully and waits.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.expect("serve task").expect("serve result");
        }
    }
}

impl Drop for Stats {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// A location.
pub fn loc(province: &str, city: &str) -> Option<Location> {
    Some(Location {
        province: province.into(),
        city: city.into(),
        district: String::new(),
    })
}

/// A date.
pub fn date(year: i32, month: i32, day: i32) -> Option<Date> {
    Some(Date { year, month, day })
}

/// A valid park.
pub fn park(display_name: &str, province: &str, city: &str) -> Park {
    Park {
        display_name: display_name.into(),
        kind: ParkKind::SciencePark as i32,
        location: loc(province, city),
        ..Default::default()
    }
}

/// A valid company located in `province`/`city`.
pub fn company(display_name: &str, province: &str, city: &str) -> Company {
    Company {
        display_name: display_name.into(),
        location: loc(province, city),
        ..Default::default()
    }
}

/// A fresh request ID.
pub fn request_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// `GET /metrics` from a Prometheus endpoint; the body.
pub async fn scrape(addr: SocketAddr) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream
        .write_all(b"GET /metrics HTTP/1.0\r\nHost: zgc\r\n\r\n")
        .await
        .expect("send");
    let mut response = String::new();
    stream.read_to_string(&mut response).await.expect("read");
    let (head, body) = response.split_once("\r\n\r\n").expect("an HTTP response");
    assert!(head.contains(" 200 "), "{head}");
    body.to_string()
}

/// The value of the sample `name` (labels included, exactly as printed)
/// in a scraped body.
pub fn sample(body: &str, name: &str) -> Option<f64> {
    body.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}
