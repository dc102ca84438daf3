//! Structured logs and traces.
//!
//! Logs: `tracing`, filtered by `RUST_LOG` (default `info`), printed as
//! text or as JSON lines on stderr.
//!
//! Traces: with an OTLP endpoint set (`OTEL_EXPORTER_OTLP_ENDPOINT` or
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, with the standard `OTEL_*`
//! variables: `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`,
//! `OTEL_TRACES_SAMPLER`, `OTEL_EXPORTER_OTLP_HEADERS`, ...), every
//! `tracing` span is also an OpenTelemetry span exported over OTLP/gRPC.
//! The trace context of an incoming call (W3C `traceparent`/`tracestate`,
//! or B3's `b3` / `x-b3-*`) is the parent of its `rpc` span
//! ([`extract_parent`]), and outgoing calls carry the current span's in both
//! formats ([`propagator`]). Without an endpoint servers make no
//! OpenTelemetry spans (they cost about a tenth of a cheap call's
//! throughput), but still log the trace ID a call came with (returned by
//! [`extract_parent`]); the CLI always traces, so its calls carry a
//! context.

use std::sync::Arc;

use opentelemetry::propagation::{Extractor, Injector, TextMapCompositePropagator};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry};

/// How log lines are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// Flushes and stops trace export when dropped (at the end of `main`).
#[must_use = "dropping the guard stops trace export"]
pub struct Guard {
    provider: Option<SdkTracerProvider>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take()
            && let Err(e) = provider.shutdown()
        {
            eprintln!("flushing traces failed: {e}");
        }
    }
}

/// Installs logging only (no traces). Safe to call more than once (later
/// calls do nothing), so tests may start several servers.
pub fn init(format: LogFormat) {
    let _ = install(format, "info", None, false);
}

/// Like [`init`], with another filter when `RUST_LOG` is unset.
pub fn init_with_default(format: LogFormat, default_filter: &str) {
    let _ = install(format, default_filter, None, false);
}

/// Installs logging and tracing for a server named `service` (the OTel
/// service name unless `OTEL_SERVICE_NAME` says otherwise). Spans become
/// OpenTelemetry spans only when an OTLP endpoint is set: they cost a
/// noticeable share of a cheap call's throughput. Without one, the
/// trace ID of an incoming call is still read and logged.
pub fn init_service(format: LogFormat, default_filter: &str, service: &str) -> Guard {
    install(format, default_filter, Some((service, None)), false)
}

/// Like [`init_service`], for a client that starts traces: its spans are
/// OpenTelemetry spans even without an exporter, so its calls carry a
/// trace context the servers log.
pub fn init_client(format: LogFormat, default_filter: &str, service: &str) -> Guard {
    install(format, default_filter, Some((service, None)), true)
}

/// Like [`init_service`], exporting to `otlp_endpoint` (a gRPC URL)
/// whatever the environment says: for tests.
pub fn init_service_exporting_to(
    format: LogFormat,
    default_filter: &str,
    service: &str,
    otlp_endpoint: &str,
) -> Guard {
    install(
        format,
        default_filter,
        Some((service, Some(otlp_endpoint))),
        true,
    )
}

fn otlp_endpoint_set() -> bool {
    [
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    ]
    .iter()
    .any(|v| std::env::var(v).is_ok_and(|s| !s.is_empty()))
}

fn tracer_provider(service: &str, endpoint: Option<&str>) -> (SdkTracerProvider, Option<String>) {
    let mut resource = opentelemetry_sdk::Resource::builder();
    if std::env::var("OTEL_SERVICE_NAME").is_err() {
        resource = resource.with_service_name(service.to_string());
    }
    let builder = SdkTracerProvider::builder().with_resource(resource.build());
    if endpoint.is_none() && !otlp_endpoint_set() {
        let provider = builder
            .with_sampler(Sampler::ParentBased(Box::new(Sampler::AlwaysOff)))
            .build();
        return (provider, None);
    }
    let mut exporter = opentelemetry_otlp::SpanExporter::builder().with_tonic();
    if let Some(endpoint) = endpoint {
        use opentelemetry_otlp::WithExportConfig;
        exporter = exporter.with_endpoint(endpoint);
    }
    match exporter.build() {
        Ok(exporter) => (builder.with_batch_exporter(exporter).build(), None),
        Err(e) => (
            builder.build(),
            Some(format!("OTLP trace export is off: {e}")),
        ),
    }
}

fn install(
    format: LogFormat,
    default_filter: &str,
    service: Option<(&str, Option<&str>)>,
    trace_always: bool,
) -> Guard {
    // RUST_LOG filters the log lines only: spans are traced from INFO up
    // whatever the log level.
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let fmt: Box<dyn Layer<Registry> + Send + Sync> = match format {
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_filter(filter)
            .boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .json()
            .flatten_event(true)
            .with_filter(filter)
            .boxed(),
    };
    let (provider, problem) = match service {
        Some((name, endpoint)) if trace_always || endpoint.is_some() || otlp_endpoint_set() => {
            let (provider, problem) = tracer_provider(name, endpoint);
            (Some(provider), problem)
        }
        Some(_) => (None, None),
        None => (None, None),
    };
    let otel = provider.as_ref().map(|p| {
        tracing_opentelemetry::layer()
            .with_tracer(p.tracer("zgc"))
            .with_error_records_to_exceptions(false)
            .with_filter(LevelFilter::INFO)
    });
    // Not `.with(otel)` on an `Option`: a `None` layer claims interest in
    // every callsite, so every disabled span (one per call) would still be
    // created, entered and closed.
    let installed = match otel {
        Some(otel) => tracing_subscriber::registry()
            .with(fmt)
            .with(otel)
            .try_init()
            .is_ok(),
        None => tracing_subscriber::registry().with(fmt).try_init().is_ok(),
    };
    if installed && service.is_some() {
        // B3 (`b3`, `x-b3-*`) for meshes that trace with Zipkin's format,
        // then W3C trace context, which wins when a call carries both.
        opentelemetry::global::set_text_map_propagator(TextMapCompositePropagator::new(vec![
            Box::new(crate::b3::B3Propagator),
            Box::new(TraceContextPropagator::new()),
        ]));
        if (otlp_endpoint_set() || service.is_some_and(|s| s.1.is_some())) && problem.is_none() {
            tracing::info!("exporting traces over OTLP");
        }
    }
    if let Some(problem) = problem {
        tracing::warn!("{problem}");
    }
    Guard {
        provider: provider.filter(|_| installed),
    }
}

struct HeaderExtractor<'a>(&'a http::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

struct HeaderInjector<'a>(&'a mut http::HeaderMap);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) = (
            http::HeaderName::from_bytes(key.as_bytes()),
            http::HeaderValue::from_str(&value),
        ) {
            self.0.insert(name, value);
        }
    }
}

/// Makes the trace context an incoming call carries (W3C or B3) the
/// parent of `span`, and returns its trace ID in hex, if it has a valid
/// one (for log lines when spans are not traced).
pub fn extract_parent(span: &tracing::Span, headers: &http::HeaderMap) -> Option<String> {
    use opentelemetry::trace::TraceContextExt;
    let parent =
        opentelemetry::global::get_text_map_propagator(|p| p.extract(&HeaderExtractor(headers)));
    let span_context = parent.span().span_context().clone();
    let _ = span.set_parent(parent);
    span_context
        .is_valid()
        .then(|| span_context.trace_id().to_string())
}

/// Writes the current span's trace context into outgoing headers.
pub fn inject_current(headers: &mut http::HeaderMap) {
    let context = tracing::Span::current().context();
    opentelemetry::global::get_text_map_propagator(|p| {
        p.inject_context(&context, &mut HeaderInjector(headers));
    });
}

/// A hook a client channel runs on each call's headers.
pub type HeaderHook = Arc<dyn Fn(&mut http::HeaderMap) + Send + Sync>;

/// The per-call hook a client channel runs to carry the trace context.
pub fn propagator() -> Option<HeaderHook> {
    Some(Arc::new(inject_current))
}

/// The trace ID of `span`, in hex, if it has one.
pub fn trace_id(span: &tracing::Span) -> Option<String> {
    use opentelemetry::trace::TraceContextExt;
    let context = span.context();
    let span_context = context.span().span_context().clone();
    span_context
        .is_valid()
        .then(|| span_context.trace_id().to_string())
}
