//! Traces across the pair, exported over OTLP to a real collector: an
//! incoming W3C `traceparent` (or B3 `b3` header) becomes the parent of
//! the call's span, and the stats service's stream from the registry is
//! one trace on both sides.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use zgc_proto::registry::v1::ListParksRequest;
use zgc_tests::otlp::Otlp;
use zgc_tests::{Registry, Stats};

// One test, since the exporter is installed once per process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traces_join_across_callers_and_services() {
    let mut otlp = Otlp::start().await;
    let _guard = zgc_server::telemetry::init_service_exporting_to(
        zgc_server::telemetry::LogFormat::Text,
        "warn",
        "zgc",
        &otlp.endpoint,
    );
    let registry = Registry::start().await;

    // A caller that is part of a trace (a mesh sidecar, another service).
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let parent = "00f067aa0ba902b7";
    let mut request = tonic::Request::new(ListParksRequest::default());
    request.metadata_mut().insert(
        "traceparent",
        format!("00-{trace_id}-{parent}-01").parse().unwrap(),
    );
    registry.client().await.list_parks(request).await.unwrap();
    let call = otlp
        .span(|s| s.name == "rpc" && s.trace_id == trace_id)
        .await;
    assert_eq!(call.parent, parent);

    // A caller in a mesh that traces with B3 (Zipkin's format).
    let b3_trace = "80f198ee56343ba864fe8b2a57d3eff7";
    let b3_span = "e457b5a2e4d86bd1";
    let mut request = tonic::Request::new(ListParksRequest::default());
    request
        .metadata_mut()
        .insert("b3", format!("{b3_trace}-{b3_span}-1").parse().unwrap());
    registry.client().await.list_parks(request).await.unwrap();
    let call = otlp
        .span(|s| s.name == "rpc" && s.trace_id == b3_trace)
        .await;
    assert_eq!(call.parent, b3_span);

    // The stats service's follower and the registry's WatchChanges call
    // (spans are exported when they end: here, when the stats service
    // stops and its stream closes).
    let stats = Stats::start(&registry.endpoint()).await;
    stats.wait_serving().await;
    stats.stop().await;
    let follower = otlp.span(|s| s.name == "follow_registry").await;
    let watch = otlp
        .span(|s| s.name == "rpc" && s.trace_id == follower.trace_id)
        .await;
    assert!(!watch.parent.is_empty());
}
