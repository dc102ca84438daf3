//! Prometheus metrics: one registry per server, the RPC metrics every zgc
//! server records, room for each service's own, and the `/metrics`
//! endpoint on its own port (`--metrics-listen`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Metric, Registry};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::health::Health;

/// Labels of a finished call.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CallLabels {
    /// The gRPC service, e.g. `zgc.registry.v1.RegistryService`.
    pub service: String,
    /// The method, e.g. `GetCompany`.
    pub method: String,
    /// The status code, e.g. `OK`, `NOT_FOUND`.
    pub code: String,
}

/// Labels of a method.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MethodLabels {
    /// The gRPC service.
    pub service: String,
    /// The method.
    pub method: String,
}

/// A histogram family whose buckets are set once.
pub type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// RPC latency bucket bounds, in seconds: fine below a millisecond, where
/// point reads answer and where the benchmarks' latency targets are, then
/// coarser up to a minute for streams and slow writes.
pub const LATENCY_BUCKETS: [f64; 24] = [
    0.000_025, 0.000_05, 0.000_075, 0.000_1, 0.000_15, 0.000_2, 0.000_25, 0.000_3, 0.000_4,
    0.000_5, 0.000_75, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
    60.0,
];

fn latency_buckets() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

/// The most methods whose calls are recorded under their own labels. The
/// path of a call comes from the client, and a label set, once made, is
/// exported forever: calls to further paths (which can only be unknown
/// methods, answered UNIMPLEMENTED) are recorded as [`OTHER`].
pub const MAX_METHODS: usize = 256;

/// The service and method label of calls beyond [`MAX_METHODS`].
pub const OTHER: &str = "other";

/// gRPC status codes have values 0 to 16.
const CODES: usize = 17;

/// What every server records about its calls.
#[derive(Clone)]
pub struct RpcMetrics {
    /// Finished calls by method and status code.
    pub calls: Family<CallLabels, Counter>,
    /// Call latency by method, from headers in to the last byte out.
    pub latency: HistogramFamily<MethodLabels>,
    /// Calls in progress by method.
    pub in_flight: Family<MethodLabels, Gauge>,
    /// Each method's metrics by request path, looked up once per method
    /// rather than hashed from label strings on every call.
    methods: Arc<RwLock<HashMap<String, Arc<MethodMetrics>>>>,
}

/// The metrics of one method: handles into the families of [`RpcMetrics`].
pub struct MethodMetrics {
    /// The method's labels.
    pub labels: MethodLabels,
    /// Its calls in progress.
    pub in_flight: Gauge,
    /// Its latency.
    pub latency: Histogram,
    calls: Family<CallLabels, Counter>,
    /// Its finished calls by status code, made on first use, so that only
    /// codes that occurred are exported.
    by_code: [OnceLock<Counter>; CODES],
}

impl MethodMetrics {
    /// Counts one finished call with status `code`.
    pub fn count(&self, code: i32) {
        let code = usize::try_from(code)
            .ok()
            .filter(|c| *c < CODES)
            .unwrap_or(2);
        self.by_code[code]
            .get_or_init(|| {
                self.calls
                    .get_or_create(&CallLabels {
                        service: self.labels.service.clone(),
                        method: self.labels.method.clone(),
                        code: crate::observe::code_name(code as i32).to_string(),
                    })
                    .clone()
            })
            .inc();
    }
}

impl RpcMetrics {
    /// The metrics of the method at `path` (`/package.Service/Method`).
    pub fn method(&self, path: &str) -> Arc<MethodMetrics> {
        {
            let methods = match self.methods.read() {
                Ok(m) => m,
                Err(poisoned) => poisoned.into_inner(),
            };
            if let Some(m) = methods.get(path) {
                return m.clone();
            }
            // Full: unknown paths share `other` without the write lock.
            if methods.len() > MAX_METHODS
                && let Some(m) = methods.get(OTHER)
            {
                return m.clone();
            }
        }
        let mut methods = match self.methods.write() {
            Ok(m) => m,
            Err(poisoned) => poisoned.into_inner(),
        };
        let (key, labels) = if methods.len() < MAX_METHODS {
            let (service, method) = path
                .trim_start_matches('/')
                .split_once('/')
                .unwrap_or(("", ""));
            (path, (service, method))
        } else {
            (OTHER, (OTHER, OTHER))
        };
        methods
            .entry(key.to_string())
            .or_insert_with(|| {
                let labels = MethodLabels {
                    service: labels.0.to_string(),
                    method: labels.1.to_string(),
                };
                Arc::new(MethodMetrics {
                    in_flight: self.in_flight.get_or_create(&labels).clone(),
                    latency: self.latency.get_or_create(&labels).clone(),
                    calls: self.calls.clone(),
                    by_code: std::array::from_fn(|_| OnceLock::new()),
                    labels,
                })
            })
            .clone()
    }
}

type Hook = Box<dyn Fn() + Send + Sync>;

/// A server's metrics.
pub struct Metrics {
    registry: Mutex<Registry>,
    hooks: Mutex<Vec<Hook>>,
    /// The per-call metrics.
    pub rpc: RpcMetrics,
}

impl Metrics {
    /// A registry holding the RPC metrics.
    pub fn new() -> Arc<Self> {
        let mut registry = Registry::default();
        let rpc = RpcMetrics {
            calls: Family::default(),
            latency: Family::new_with_constructor(latency_buckets),
            in_flight: Family::default(),
            methods: Arc::default(),
        };
        registry.register(
            "zgc_rpc_calls",
            "Finished gRPC calls, by service, method and status code",
            rpc.calls.clone(),
        );
        registry.register(
            "zgc_rpc_latency_seconds",
            "gRPC call latency (streams: until they end), by service and method",
            rpc.latency.clone(),
        );
        registry.register(
            "zgc_rpc_in_flight",
            "gRPC calls in progress, by service and method",
            rpc.in_flight.clone(),
        );
        Arc::new(Self {
            registry: Mutex::new(registry),
            hooks: Mutex::new(Vec::new()),
            rpc,
        })
    }

    /// Adds a service's own metric.
    pub fn register(&self, name: &str, help: &str, metric: impl Metric) {
        let mut registry = match self.registry.lock() {
            Ok(r) => r,
            Err(poisoned) => poisoned.into_inner(),
        };
        registry.register(name, help, metric);
    }

    /// Runs `hook` before every scrape, to set gauges read from state
    /// (revisions, sizes on disk).
    pub fn on_scrape(&self, hook: impl Fn() + Send + Sync + 'static) {
        let mut hooks = match self.hooks.lock() {
            Ok(h) => h,
            Err(poisoned) => poisoned.into_inner(),
        };
        hooks.push(Box::new(hook));
    }

    /// The metrics in the Prometheus text format.
    pub fn encode(&self) -> String {
        {
            let hooks = match self.hooks.lock() {
                Ok(h) => h,
                Err(poisoned) => poisoned.into_inner(),
            };
            for hook in hooks.iter() {
                hook();
            }
        }
        let registry = match self.registry.lock() {
            Ok(r) => r,
            Err(poisoned) => poisoned.into_inner(),
        };
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &registry) {
            tracing::error!(error = %e, "encoding metrics failed");
        }
        out
    }
}

/// A histogram of durations in seconds, 50 µs to about 26 s.
pub fn duration_histogram() -> Histogram {
    latency_buckets()
}

/// A histogram of sizes from 1 to 2^15.
pub fn size_histogram() -> Histogram {
    Histogram::new(exponential_buckets(1.0, 2.0, 16))
}

/// Binds `--metrics-listen`, if set, so a bad address fails the start.
pub async fn bind(args: &crate::ServerArgs) -> std::io::Result<Option<TcpListener>> {
    let Some(addr) = args.metrics_listen else {
        return Ok(None);
    };
    TcpListener::bind(addr)
        .await
        .map(Some)
        .map_err(|e| std::io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))
}

/// Serves the endpoint on `listener`, if any, until `stop` is cancelled.
pub fn spawn(
    listener: Option<TcpListener>,
    metrics: Arc<Metrics>,
    health: Health,
    stop: CancellationToken,
) -> Option<tokio::task::JoinHandle<()>> {
    listener.map(|l| tokio::spawn(serve(l, metrics, health, stop)))
}

/// Serves `GET /metrics` and `GET /ready` on `listener` until `stop` is
/// cancelled. `/ready` answers 200 `SERVING` while the gRPC health service
/// reports SERVING, else 503 `NOT_SERVING`: from the moment shutdown
/// begins, so an HTTP health check takes the replica out during the
/// shutdown delay.
pub async fn serve(
    listener: TcpListener,
    metrics: Arc<Metrics>,
    health: Health,
    stop: CancellationToken,
) {
    use axum::routing::get;
    let app = axum::Router::new()
        .route(
            "/metrics",
            get(move || {
                let metrics = metrics.clone();
                async move {
                    (
                        [(
                            http::header::CONTENT_TYPE,
                            "text/plain; version=0.0.4; charset=utf-8",
                        )],
                        metrics.encode(),
                    )
                }
            }),
        )
        .route(
            "/ready",
            get(move || {
                let serving = health.is_serving();
                async move {
                    if serving {
                        (http::StatusCode::OK, "SERVING\n")
                    } else {
                        (http::StatusCode::SERVICE_UNAVAILABLE, "NOT_SERVING\n")
                    }
                }
            }),
        );
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "metrics listening");
    }
    let result = axum::serve(listener, app)
        .with_graceful_shutdown(async move { stop.cancelled().await })
        .await;
    if let Err(e) = result {
        tracing::error!(error = %e, "the metrics endpoint failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_are_counted_per_method_and_code() {
        let metrics = Metrics::new();
        let get = metrics
            .rpc
            .method("/zgc.registry.v1.RegistryService/GetCompany");
        get.count(0);
        get.count(0);
        metrics
            .rpc
            .method("/zgc.registry.v1.RegistryService/GetCompany")
            .count(5);
        // Out-of-range codes count as UNKNOWN.
        get.count(99);
        let text = metrics.encode();
        for line in [
            r#"zgc_rpc_calls_total{service="zgc.registry.v1.RegistryService",method="GetCompany",code="OK"} 2"#,
            r#"zgc_rpc_calls_total{service="zgc.registry.v1.RegistryService",method="GetCompany",code="NOT_FOUND"} 1"#,
            r#"zgc_rpc_calls_total{service="zgc.registry.v1.RegistryService",method="GetCompany",code="UNKNOWN"} 1"#,
        ] {
            assert!(text.contains(line), "{line} missing from:\n{text}");
        }
    }

    #[test]
    fn paths_beyond_the_limit_are_recorded_as_other() {
        let metrics = Metrics::new();
        for i in 0..MAX_METHODS + 50 {
            metrics.rpc.method(&format!("/made.Up/Method{i}")).count(12);
        }
        let text = metrics.encode();
        assert_eq!(
            text.matches("zgc_rpc_calls_total{").count(),
            MAX_METHODS + 1,
            "one label set per method up to the limit, then one for the rest"
        );
        assert!(text.contains(
            r#"zgc_rpc_calls_total{service="other",method="other",code="UNIMPLEMENTED"} 50"#
        ));
    }
}
