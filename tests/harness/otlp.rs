//! A real OTLP trace collector on a loopback port: what the servers and
//! the CLI export arrives here, span by span.

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use tokio::sync::mpsc;

/// One exported span: its service, name, trace ID and parent span ID (hex).
#[derive(Debug, Clone)]
pub struct Span {
    /// `service.name` of the exporter.
    pub service: String,
    /// The span's name.
    pub name: String,
    /// Its trace ID, in hex.
    pub trace_id: String,
    /// Its parent's span ID in hex (empty for a root).
    pub parent: String,
}

struct Collector(mpsc::UnboundedSender<Span>);

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        for resource in request.into_inner().resource_spans {
            let service = resource
                .resource
                .iter()
                .flat_map(|r| &r.attributes)
                .find(|a| a.key == "service.name")
                .and_then(|a| a.value.as_ref())
                .and_then(|v| match &v.value {
                    Some(
                        opentelemetry_proto::tonic::common::v1::any_value::Value::StringValue(s),
                    ) => Some(s.clone()),
                    _ => None,
                })
                .unwrap_or_default();
            for scope in resource.scope_spans {
                for span in scope.spans {
                    let _ = self.0.send(Span {
                        service: service.clone(),
                        name: span.name,
                        trace_id: hex(&span.trace_id),
                        parent: hex(&span.parent_span_id),
                    });
                }
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

/// A collector serving on a free loopback port.
pub struct Otlp {
    /// `http://127.0.0.1:port`, for `OTEL_EXPORTER_OTLP_ENDPOINT`.
    pub endpoint: String,
    spans: mpsc::UnboundedReceiver<Span>,
    seen: Vec<Span>,
}

impl Otlp {
    /// Starts the collector.
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (tx, spans) = mpsc::unbounded_channel();
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(TraceServiceServer::new(Collector(tx)))
                .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
        );
        Self {
            endpoint: format!("http://{addr}"),
            spans,
            seen: Vec::new(),
        }
    }

    /// An exported span that `matches` (waiting for it if need be).
    pub async fn span(&mut self, matches: impl Fn(&Span) -> bool) -> Span {
        if let Some(span) = self.seen.iter().find(|s| matches(s)) {
            return span.clone();
        }
        let wait = async {
            while let Some(span) = self.spans.recv().await {
                self.seen.push(span.clone());
                if matches(&span) {
                    return span;
                }
            }
            panic!("the collector stopped");
        };
        tokio::time::timeout(std::time::Duration::from_secs(120), wait)
            .await
            .expect("the span looked for was never exported")
    }
}
