//! What proxies and meshes expect of a server at its edge: deadlines
//! answered `DEADLINE_EXCEEDED`, `x-request-id` echoed (or made up),
//! connections rotated after `--max-connection-age-secs` without losing a
//! call, and Prometheus metrics on both services.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use prost::Message;
use tonic::Code;
use zgc_proto::registry::v1::registry_service_client::RegistryServiceClient;
use zgc_proto::registry::v1::*;
use zgc_tests::proxy::Proxy;
use zgc_tests::raw::RawCodec;
use zgc_tests::{Registry, company};

#[tokio::test]
async fn a_call_past_its_deadline_answers_deadline_exceeded() {
    let registry = Registry::start().await;
    // A raw HTTP/2 client (tonic's own would time out first, on its side)
    // that sends the headers of a call but never its message: the handler
    // waits for it until the deadline.
    let tcp = tokio::net::TcpStream::connect(registry.addr).await.unwrap();
    let (h2, connection) = h2::client::handshake(tcp).await.unwrap();
    tokio::spawn(connection);
    let mut h2 = h2.ready().await.unwrap();
    let request = http::Request::post(format!(
        "http://{}/zgc.registry.v1.RegistryService/GetCompany",
        registry.addr
    ))
    .header("content-type", "application/grpc")
    .header("te", "trailers")
    .header("grpc-timeout", "200m")
    .body(())
    .unwrap();
    let (response, _body_never_sent) = h2.send_request(request, false).unwrap();
    let response = tokio::time::timeout(Duration::from_secs(120), response)
        .await
        .expect("the server never answered")
        .unwrap();
    let headers = response.headers();
    assert_eq!(
        headers.get("grpc-status").unwrap(),
        &(Code::DeadlineExceeded as i32).to_string(),
        "{headers:?}"
    );
    assert!(
        headers
            .get("grpc-message")
            .unwrap()
            .to_str()
            .unwrap()
            .contains("deadline"),
        "{headers:?}"
    );

    // A call within its deadline is unaffected.
    let mut client = registry.client().await;
    let mut ok = tonic::Request::new(ListParksRequest::default());
    ok.set_timeout(Duration::from_secs(60));
    client.list_parks(ok).await.unwrap();
    // And a call that does send its message is answered as usual.
    let body = GetCompanyRequest {
        name: "companies/none".into(),
    }
    .encode_to_vec();
    let mut grpc = tonic::client::Grpc::new(registry.channel().await);
    grpc.ready().await.unwrap();
    let status = grpc
        .unary(
            tonic::Request::new(Bytes::from(body)),
            http::uri::PathAndQuery::from_static("/zgc.registry.v1.RegistryService/GetCompany"),
            RawCodec,
        )
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
}

#[tokio::test]
async fn the_request_id_is_echoed_or_made_up() {
    let registry = Registry::start().await;
    let mut client = registry.client().await;
    let mut request = tonic::Request::new(ListParksRequest::default());
    request
        .metadata_mut()
        .insert("x-request-id", "from-the-mesh-1".parse().unwrap());
    let response = client.list_parks(request).await.unwrap();
    assert_eq!(
        response.metadata().get("x-request-id").unwrap(),
        "from-the-mesh-1"
    );

    let response = client
        .list_parks(ListParksRequest::default())
        .await
        .unwrap();
    let made_up = response.metadata().get("x-request-id").unwrap();
    assert!(
        uuid::Uuid::parse_str(made_up.to_str().unwrap()).is_ok(),
        "{made_up:?}"
    );

    // One that is too long to log safely is replaced, not echoed.
    let mut request = tonic::Request::new(ListParksRequest::default());
    request
        .metadata_mut()
        .insert("x-request-id", "x".repeat(300).parse().unwrap());
    let response = client.list_parks(request).await.unwrap();
    assert_ne!(
        response.metadata().get("x-request-id").unwrap(),
        &"x".repeat(300)
    );
}

/// `--max-concurrent-streams 1`: the server tells every connection it
/// takes one stream at a time (HTTP/2 `SETTINGS_MAX_CONCURRENT_STREAMS`),
/// so clients hold further calls, and a call waiting behind a
/// WatchChanges stream goes through once the stream ends.
#[tokio::test]
async fn a_connection_carries_at_most_max_concurrent_streams_calls() {
    let registry = Registry::start_with(|c| c.server.max_concurrent_streams = 1).await;
    let mut client = registry.client().await;
    client
        .create_company(CreateCompanyRequest {
            company: Some(company("Streams", "Hebei", "Baoding")),
            company_id: "streams".into(),
            request_id: String::new(),
        })
        .await
        .unwrap();
    let get = GetCompanyRequest {
        name: "companies/streams".into(),
    };
    let mut watch = client
        .watch_changes(WatchChangesRequest { start_revision: 0 })
        .await
        .unwrap()
        .into_inner();
    // The stream is open on the server: it has sent the first change.
    assert!(watch.message().await.unwrap().is_some());
    // A call queued behind it on the same connection...
    let waiting = tokio::spawn({
        let mut client = client.clone();
        let get = get.clone();
        async move { client.get_company(get).await }
    });
    // ...is held because the server advertises one stream per connection
    // (read here on a connection of our own, as any HTTP/2 client reads it).
    let tcp = tokio::net::TcpStream::connect(registry.addr).await.unwrap();
    let (h2, connection) = h2::client::handshake(tcp).await.unwrap();
    tokio::spawn(connection);
    let mut h2 = h2.ready().await.unwrap();
    // Once one call has been answered, the server's SETTINGS are in.
    let probe = http::Request::post(format!(
        "http://{}/grpc.health.v1.Health/Check",
        registry.addr
    ))
    .header("content-type", "application/grpc")
    .header("te", "trailers")
    .body(())
    .unwrap();
    let (answer, mut body) = h2.send_request(probe, false).unwrap();
    body.send_data(Bytes::from_static(&[0, 0, 0, 0, 0]), true)
        .unwrap();
    answer.await.unwrap();
    assert_eq!(h2.current_max_send_streams(), 1);
    // ...and answered once the stream ends.
    drop(watch);
    let company = waiting.await.unwrap().unwrap().into_inner();
    assert_eq!(company.name, "companies/streams");
    let company = client.get_company(get).await.unwrap().into_inner();
    assert_eq!(company.name, "companies/streams");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_connections_are_rotated_under_load_without_an_error_reaching_the_caller() {
    let registry = Registry::start_with(|c| c.server.max_connection_age_secs = 1).await;
    // Through a proxy that counts the connections it accepts.
    let proxy = Proxy::start(registry.addr).await;
    let channel = tonic::transport::Channel::from_shared(proxy.endpoint())
        .unwrap()
        .connect()
        .await
        .unwrap();
    // zgc-client's channel: a call the client had queued for a connection
    // the server sent away (GOAWAY), never sent, is sent again on the new
    // connection, as gRPC's transparent retry does; tonic alone fails it.
    let headers = zgc_client::headers(None, None).unwrap();
    let client = RegistryServiceClient::new(zgc_client::Outgoing::new(channel, headers, None));
    client
        .clone()
        .create_company(CreateCompanyRequest {
            company: Some(company("Rotated", "Hebei", "Baoding")),
            company_id: "rotated".into(),
            request_id: String::new(),
        })
        .await
        .unwrap();
    assert_eq!(proxy.accepted(), 1);
    // Four callers in a steady loop until the server has sent three
    // connections away and the client has opened a fourth.
    let errors = Arc::new(std::sync::Mutex::new(Vec::new()));
    let calls = Arc::new(AtomicU64::new(0));
    let mut load = tokio::task::JoinSet::new();
    for _ in 0..4 {
        let (mut client, errors, calls) = (client.clone(), errors.clone(), calls.clone());
        load.spawn(async move {
            loop {
                let get = GetCompanyRequest {
                    name: "companies/rotated".into(),
                };
                match client.get_company(get).await {
                    Ok(_) => calls.fetch_add(1, Ordering::Relaxed),
                    Err(status) => {
                        errors.lock().unwrap().push(status);
                        calls.fetch_add(1, Ordering::Relaxed)
                    }
                };
            }
        });
    }
    tokio::time::timeout(Duration::from_secs(120), proxy.wait_accepted_more_than(3))
        .await
        .expect("the connections were not rotated");
    load.abort_all();
    while load.join_next().await.is_some() {}
    let errors = errors.lock().unwrap();
    assert!(
        errors.is_empty(),
        "{} of {} calls failed while connections rotated: {:?}",
        errors.len(),
        calls.load(Ordering::Relaxed),
        errors.first()
    );
}

#[tokio::test]
async fn the_stats_service_exposes_its_revision_lag_and_calls() {
    use zgc_proto::stats::v1::{GetSummaryRequest, Scope, scope};
    use zgc_tests::{Stats, sample, scrape};
    let registry = Registry::start().await;
    let mut writer = registry.client().await;
    for n in 0..2 {
        writer
            .create_company(CreateCompanyRequest {
                company: Some(company(&format!("Scraped {n}"), "Hebei", "Baoding")),
                company_id: format!("scraped-{n}"),
                request_id: String::new(),
            })
            .await
            .unwrap();
    }
    let stats = Stats::start(&registry.endpoint()).await;
    let mut client = stats.client().await;
    let mut request = tonic::Request::new(GetSummaryRequest {
        scope: Some(Scope {
            selector: Some(scope::Selector::All(true)),
            include_affiliates: false,
        }),
        min_revision: 2,
    });
    request.set_timeout(Duration::from_secs(60));
    assert_eq!(
        client
            .get_summary(request)
            .await
            .unwrap()
            .into_inner()
            .company_count,
        2
    );
    let body = scrape(stats.metrics_addr).await;
    assert_eq!(
        sample(&body, "zgc_stats_applied_revision"),
        Some(2.0),
        "{body}"
    );
    assert_eq!(
        sample(&body, "zgc_stats_registry_revision"),
        Some(2.0),
        "{body}"
    );
    assert_eq!(
        sample(&body, "zgc_stats_lag_revisions"),
        Some(0.0),
        "{body}"
    );
    assert_eq!(
        sample(&body, "zgc_stats_rebuilds_total"),
        Some(0.0),
        "{body}"
    );
    assert_eq!(
        sample(
            &body,
            "zgc_rpc_calls_total{service=\"zgc.stats.v1.StatsService\",method=\"GetSummary\",code=\"OK\"}"
        ),
        Some(1.0),
        "{body}"
    );
    // The registry's side of the same story: its watch stream is open.
    let body = scrape(registry.metrics_addr).await;
    assert_eq!(sample(&body, "zgc_registry_watchers"), Some(1.0), "{body}");
}

#[tokio::test]
async fn metrics_count_calls_by_code_and_expose_the_store() {
    use zgc_tests::{sample, scrape};
    let registry = Registry::start().await;
    let mut client = registry.client().await;

    for n in 0..3 {
        client
            .create_company(CreateCompanyRequest {
                company: Some(company(&format!("Telemetry {n}"), "Tianjin", "Tianjin")),
                company_id: format!("t{n}"),
                request_id: String::new(),
            })
            .await
            .unwrap();
    }
    let missing = client
        .get_company(GetCompanyRequest {
            name: "companies/missing".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), tonic::Code::NotFound);
    let _watch = client
        .watch_changes(WatchChangesRequest { start_revision: 0 })
        .await
        .unwrap()
        .into_inner();

    let body = scrape(registry.metrics_addr).await;
    let svc = "zgc.registry.v1.RegistryService";
    assert_eq!(
        sample(
            &body,
            &format!(
                "zgc_rpc_calls_total{{service=\"{svc}\",method=\"CreateCompany\",code=\"OK\"}}"
            )
        ),
        Some(3.0),
        "{body}"
    );
    assert_eq!(
        sample(
            &body,
            &format!(
                "zgc_rpc_calls_total{{service=\"{svc}\",method=\"GetCompany\",code=\"NOT_FOUND\"}}"
            )
        ),
        Some(1.0),
        "{body}"
    );
    assert_eq!(
        sample(
            &body,
            &format!("zgc_rpc_latency_seconds_count{{service=\"{svc}\",method=\"CreateCompany\"}}")
        ),
        Some(3.0),
        "{body}"
    );
    // The open watch stream is in flight, and counted as a watcher.
    assert_eq!(
        sample(
            &body,
            &format!("zgc_rpc_in_flight{{service=\"{svc}\",method=\"WatchChanges\"}}")
        ),
        Some(1.0),
        "{body}"
    );
    assert_eq!(sample(&body, "zgc_registry_watchers"), Some(1.0), "{body}");
    assert_eq!(sample(&body, "zgc_registry_revision"), Some(3.0), "{body}");
    assert_eq!(
        sample(&body, "zgc_registry_store_ready"),
        Some(1.0),
        "{body}"
    );
    assert!(
        sample(&body, "zgc_registry_store_bytes").unwrap() > 0.0,
        "{body}"
    );
    // On by default.
    assert!(
        sample(&body, "zgc_registry_companies_in_memory_bytes").unwrap() > 0.0,
        "{body}"
    );
    assert_eq!(
        sample(&body, "zgc_registry_commit_batch_writes_sum"),
        Some(3.0),
        "{body}"
    );
    assert!(
        sample(&body, "zgc_registry_flush_seconds_count").unwrap() >= 1.0,
        "{body}"
    );
}

/// The listing indexes are counted in gauges, answer the same listing as
/// a scan, and are built again from disk after a restart; turned off,
/// the gauges say so and the listing scans to the same answer.
#[tokio::test]
async fn the_listing_indexes_are_counted_and_come_back_after_a_restart() {
    use zgc_tests::{sample, scrape};
    async fn loaded_metrics(registry: &Registry) -> String {
        let mut body = scrape(registry.metrics_addr).await;
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while sample(&body, "zgc_registry_listing_indexes_loaded") != Some(1.0) {
            assert!(std::time::Instant::now() < deadline, "never loaded: {body}");
            tokio::time::sleep(Duration::from_millis(10)).await;
            body = scrape(registry.metrics_addr).await;
        }
        body
    }
    async fn list(registry: &Registry) -> (Vec<String>, i32) {
        let page = registry
            .client()
            .await
            .list_companies(ListCompaniesRequest {
                page_size: 2,
                filter: r#"location.province = "Hebei" AND employees >= 0"#.into(),
                order_by: "display_name desc".into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        let names = page.companies.into_iter().map(|c| c.name).collect();
        (names, page.total_size)
    }

    let registry = Registry::start().await;
    let mut client = registry.client().await;
    for (id, province) in [
        ("a", "Hebei"),
        ("b", "Tianjin"),
        ("c", "Hebei"),
        ("d", "Hebei"),
    ] {
        let mut c = company(id, province, "X");
        c.display_name = format!("Company {id}");
        client
            .create_company(CreateCompanyRequest {
                company: Some(c),
                company_id: id.into(),
                request_id: String::new(),
            })
            .await
            .unwrap();
    }
    let body = loaded_metrics(&registry).await;
    assert_eq!(
        sample(&body, "zgc_registry_listing_indexed"),
        Some(4.0),
        "{body}"
    );
    assert!(
        sample(&body, "zgc_registry_listing_index_bytes").unwrap() > 0.0,
        "{body}"
    );
    let want = (
        vec!["companies/d".to_string(), "companies/c".to_string()],
        3,
    );
    assert_eq!(list(&registry).await, want);

    let dir = registry.stop().await.unwrap();
    let registry = Registry::start_in(dir.path(), |_| {}).await;
    let body = loaded_metrics(&registry).await;
    assert_eq!(
        sample(&body, "zgc_registry_listing_indexed"),
        Some(4.0),
        "{body}"
    );
    assert_eq!(list(&registry).await, want);

    registry.stop().await;
    let registry = Registry::start_in(dir.path(), |c| c.listing_indexes = false).await;
    let body = scrape(registry.metrics_addr).await;
    assert_eq!(
        sample(&body, "zgc_registry_listing_indexed"),
        Some(0.0),
        "{body}"
    );
    assert_eq!(
        sample(&body, "zgc_registry_listing_indexes_loaded"),
        Some(0.0),
        "{body}"
    );
    assert_eq!(list(&registry).await, want);
}

/// Reads by ID come from the companies held in memory and follow every
/// write: a create is held, an update is read back, and a delete leaves
/// nothing behind, in the answers or in memory. A restarted registry loads
/// what was stored, and answers the same; with the copy turned off it
/// answers the same from disk.
#[tokio::test]
async fn the_companies_in_memory_follow_every_write_and_come_back_after_a_restart() {
    use zgc_tests::{sample, scrape};
    let registry = Registry::start().await;
    let mut client = registry.client().await;
    let held = |body: &str| sample(body, "zgc_registry_companies_in_memory").unwrap();

    let mut created = Vec::new();
    for id in ["held", "kept-1", "kept-2"] {
        created.push(
            client
                .create_company(CreateCompanyRequest {
                    company: Some(company(id, "Hebei", "Baoding")),
                    company_id: id.into(),
                    request_id: String::new(),
                })
                .await
                .unwrap()
                .into_inner(),
        );
    }
    let body = scrape(registry.metrics_addr).await;
    assert_eq!(held(&body), 3.0, "the creates are held: {body}");

    async fn get(
        client: &mut RegistryServiceClient<tonic::transport::Channel>,
        id: &str,
    ) -> Result<Company, tonic::Status> {
        client
            .get_company(GetCompanyRequest {
                name: format!("companies/{id}"),
            })
            .await
            .map(tonic::Response::into_inner)
    }
    assert_eq!(get(&mut client, "held").await.unwrap(), created[0]);
    let updated = client
        .update_company(UpdateCompanyRequest {
            company: Some(Company {
                name: "companies/held".into(),
                employees: 77,
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["employees".into()],
            }),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(updated.employees, 77);
    assert_eq!(get(&mut client, "held").await.unwrap(), updated);

    client
        .delete_company(DeleteCompanyRequest {
            name: "companies/held".into(),
            etag: String::new(),
        })
        .await
        .unwrap();
    assert_eq!(
        get(&mut client, "held").await.unwrap_err().code(),
        tonic::Code::NotFound
    );
    let body = scrape(registry.metrics_addr).await;
    assert_eq!(held(&body), 2.0, "the delete left nothing: {body}");

    // Restarted on the same data: the stored companies are loaded.
    let dir = registry.stop().await.unwrap();
    let registry = Registry::start_in(dir.path(), |_| {}).await;
    let mut client = registry.client().await;
    let mut body = scrape(registry.metrics_addr).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while sample(&body, "zgc_registry_companies_in_memory_loaded") != Some(1.0) {
        assert!(std::time::Instant::now() < deadline, "never loaded: {body}");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        body = scrape(registry.metrics_addr).await;
    }
    assert_eq!(held(&body), 2.0, "{body}");
    for want in &created[1..] {
        let id = want.name.trim_start_matches("companies/");
        assert_eq!(&get(&mut client, id).await.unwrap(), want);
    }
    assert_eq!(
        get(&mut client, "held").await.unwrap_err().code(),
        tonic::Code::NotFound
    );

    // Turned off, the same answers come from disk.
    registry.stop().await;
    let registry = Registry::start_in(dir.path(), |c| c.companies_in_memory = false).await;
    let mut client = registry.client().await;
    let body = scrape(registry.metrics_addr).await;
    assert_eq!(held(&body), 0.0, "{body}");
    assert_eq!(
        sample(&body, "zgc_registry_companies_in_memory_bytes"),
        Some(0.0),
        "{body}"
    );
    assert_eq!(&get(&mut client, "kept-2").await.unwrap(), &created[2]);
    assert_eq!(
        get(&mut client, "held").await.unwrap_err().code(),
        tonic::Code::NotFound
    );
}

#[tokio::test]
async fn lists_past_the_scan_limit_wait_their_turn_and_all_answer() {
    use zgc_tests::{sample, scrape};
    // Three, not one: a default of one per CPU must not pass for the flag.
    let registry = Registry::start_with(|c| c.max_concurrent_scans = Some(3)).await;
    let mut client = registry.client().await;
    for i in 0..12 {
        client
            .create_company(CreateCompanyRequest {
                company: Some(Company {
                    employees: i,
                    ..company(&format!("Scan {i}"), "Hebei", "Baoding")
                }),
                company_id: format!("scan-{i:02}"),
                request_id: String::new(),
            })
            .await
            .unwrap();
    }

    // Sixteen pages asked for at once, more than five times the limit.
    let lists = (0..16).map(|_| {
        let mut client = client.clone();
        async move {
            client
                .list_companies(ListCompaniesRequest {
                    filter: "employees >= 4".into(),
                    page_size: 5,
                    order_by: "employees".into(),
                    ..Default::default()
                })
                .await
        }
    });
    for page in futures::future::join_all(lists).await {
        let page = page.unwrap().into_inner();
        let names: Vec<_> = page.companies.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "companies/scan-04",
                "companies/scan-05",
                "companies/scan-06",
                "companies/scan-07",
                "companies/scan-08"
            ]
        );
        assert_eq!(page.total_size, 8);
        assert!(!page.next_page_token.is_empty());
    }

    let body = scrape(registry.metrics_addr).await;
    let gauge = |name: &str| sample(&body, name).unwrap();
    assert_eq!(gauge("zgc_registry_scans_limit"), 3.0, "{body}");
    assert_eq!(gauge("zgc_registry_scans_running"), 0.0, "{body}");
    assert_eq!(gauge("zgc_registry_scans_waiting"), 0.0, "{body}");
}
