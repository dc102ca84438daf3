//! What a platform team reads in the real binary's logs: a line per call
//! with its request ID, method, status code and duration.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use zgc_proto::registry::v1::*;

#[tokio::test]
async fn every_call_is_logged_with_its_request_id_method_and_code() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = support::command(dir.path());
    cmd.env("RUST_LOG", "info,zgc::rpc=debug");
    let mut r = support::spawn(cmd).await;
    let mut request = tonic::Request::new(GetCompanyRequest {
        name: "companies/nobody".into(),
    });
    request
        .metadata_mut()
        .insert("x-request-id", "trace-me-42".parse().unwrap());
    // A mesh's trace context: logged even though this registry exports no
    // traces.
    request.metadata_mut().insert(
        "traceparent",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
            .parse()
            .unwrap(),
    );
    let status = r.client.get_company(request).await.unwrap_err();
    assert_eq!(
        status.metadata().get("x-request-id").unwrap(),
        "trace-me-42",
        "the request ID is echoed"
    );
    let line = r
        .log_line(|v| v["message"] == "call finished" && v["span"]["request_id"] == "trace-me-42")
        .await;
    assert_eq!(line["code"], "NOT_FOUND", "{line}");
    assert_eq!(line["span"]["rpc.method"], "GetCompany", "{line}");
    assert!(line["duration_us"].as_u64().is_some(), "{line}");
    assert_eq!(
        line["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736",
        "{line}"
    );
    r.child.kill().await.unwrap();
}
