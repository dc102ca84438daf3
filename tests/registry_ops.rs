//! Operations: health, reflection, graceful shutdown, exclusive data dirs.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use prost::Message;
use tokio_stream::StreamExt;
use tonic::Code;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_reflection::pb::v1::ServerReflectionRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
use zgc_proto::registry::v1::*;
use zgc_tests::{Registry, company};

const PATIENCE: Duration = Duration::from_secs(60);

#[tokio::test]
async fn health_reports_serving_for_the_server_and_the_service() {
    let r = Registry::start().await;
    let mut h = HealthClient::new(r.channel().await);
    for service in ["", "zgc.registry.v1.RegistryService"] {
        let resp = h
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(resp.status, ServingStatus::Serving as i32, "{service:?}");
    }
    let err = h
        .check(HealthCheckRequest {
            service: "no.such.Service".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
}

#[tokio::test]
async fn shutdown_turns_health_not_serving_first_and_keeps_every_write() {
    let dir = tempfile::tempdir().unwrap();
    let mut r = Registry::start_in(dir.path(), |c| c.server.drain_secs = 30).await;
    let mut c = r.client().await;
    let created = c
        .create_company(CreateCompanyRequest {
            company: Some(company("Kept", "Hebei", "Baoding")),
            company_id: "kept".into(),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    let mut h = HealthClient::new(r.channel().await);
    let mut watch = h
        .watch(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    let first = tokio::time::timeout(PATIENCE, watch.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(first.status, ServingStatus::Serving as i32);
    r.begin_shutdown();
    let next = tokio::time::timeout(PATIENCE, watch.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(next.status, ServingStatus::NotServing as i32);
    drop(watch);
    drop(h);
    drop(c);
    r.stop().await;

    let r = Registry::start_in(dir.path(), |_| {}).await;
    let got = r
        .client()
        .await
        .get_company(GetCompanyRequest {
            name: "companies/kept".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got, created);
}

#[tokio::test]
async fn a_second_registry_on_the_same_data_dir_refuses_to_start() {
    let r = Registry::start().await;
    // Make sure the first one has its store open.
    r.client()
        .await
        .list_parks(ListParksRequest::default())
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let config = zgc_registry::Config::for_data_dir(&r.data_dir);
    let err = zgc_registry::serve(
        config,
        listener,
        futures::stream::pending::<zgc_server::shutdown::Stop>(),
    )
    .await
    .unwrap_err();
    assert!(
        err.to_string().contains("in use by another process"),
        "{err}"
    );
}

async fn reflect(r: &Registry, request: MessageRequest) -> MessageResponse {
    let mut client = ServerReflectionClient::new(r.channel().await);
    let req = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(request),
    };
    let mut stream = client
        .server_reflection_info(tokio_stream::iter([req]))
        .await
        .unwrap()
        .into_inner();
    stream
        .next()
        .await
        .unwrap()
        .unwrap()
        .message_response
        .unwrap()
}

#[tokio::test]
async fn reflection_v1_lists_services_and_serves_documented_descriptors() {
    let r = Registry::start().await;
    let MessageResponse::ListServicesResponse(list) =
        reflect(&r, MessageRequest::ListServices(String::new())).await
    else {
        panic!("expected a service list");
    };
    let names: Vec<_> = list.service.into_iter().map(|s| s.name).collect();
    for expected in ["zgc.registry.v1.RegistryService", "grpc.health.v1.Health"] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} missing from {names:?}"
        );
    }
    assert!(
        !names.iter().any(|n| n == "zgc.stats.v1.StatsService"),
        "the registry does not serve stats: {names:?}"
    );

    let MessageResponse::FileDescriptorResponse(files) = reflect(
        &r,
        MessageRequest::FileContainingSymbol("zgc.registry.v1.Company".into()),
    )
    .await
    else {
        panic!("expected descriptors");
    };
    let files: Vec<prost_types::FileDescriptorProto> = files
        .file_descriptor_proto
        .iter()
        .map(|b| prost_types::FileDescriptorProto::decode(b.as_slice()).unwrap())
        .collect();
    let company = files
        .iter()
        .find(|f| f.name() == "zgc/registry/v1/company.proto")
        .expect("company.proto");
    let comments: Vec<&str> = company
        .source_code_info
        .as_ref()
        .expect("source info")
        .location
        .iter()
        .filter_map(|l| l.leading_comments.as_deref())
        .collect();
    assert!(
        comments
            .iter()
            .any(|c| c.contains("A company registered in the registry")),
        "{comments:?}"
    );

    // Error details are resolvable too.
    let resp = reflect(
        &r,
        MessageRequest::FileContainingSymbol("google.rpc.BadRequest".into()),
    )
    .await;
    assert!(matches!(resp, MessageResponse::FileDescriptorResponse(_)));
}
