//! Overload: past their limit of calls in flight, the servers answer
//! UNAVAILABLE (reason OVERLOADED, with RetryInfo) at once instead of
//! queueing; health checks still answer; shed writes retried with their
//! request ID land exactly once; service resumes as soon as load drops.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use tonic::Code;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_types::StatusExt;
use zgc_proto::registry::v1::registry_service_client::RegistryServiceClient;
use zgc_proto::registry::v1::*;
use zgc_proto::stats::v1::{GetSummaryRequest, Scope, scope};
use zgc_tests::{Registry, Stats, company, request_id};

const PATIENCE: Duration = Duration::from_secs(120);

fn is_overloaded(status: &tonic::Status) -> bool {
    status.code() == Code::Unavailable
        && status
            .get_details_error_info()
            .is_some_and(|info| info.reason == "OVERLOADED" && info.domain == "zgc.dev")
}

fn summary(min_revision: u64) -> tonic::Request<GetSummaryRequest> {
    let mut request = tonic::Request::new(GetSummaryRequest {
        scope: Some(Scope {
            selector: Some(scope::Selector::All(true)),
            include_affiliates: false,
        }),
        min_revision,
    });
    request.set_timeout(PATIENCE);
    request
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_sheds_calls_beyond_its_limit_keeps_health_and_recovers() {
    let registry = Registry::start().await;
    let mut writer = registry.client().await;
    let stats = Stats::start_with(&registry.endpoint(), |c| {
        c.server.max_concurrent_calls = 2;
    })
    .await;
    stats.wait_serving().await;

    // Two calls that wait for a revision nobody has written yet fill the
    // limit. (Admitted in a race with the probes below, so each retries
    // until it gets in.)
    let mut holders = Vec::new();
    for _ in 0..2 {
        let mut client = stats.client().await;
        holders.push(tokio::spawn(async move {
            loop {
                match client.get_summary(summary(1)).await {
                    Ok(r) => return r.into_inner(),
                    Err(s) if is_overloaded(&s) => continue,
                    Err(s) => panic!("a waiting call failed: {s:?}"),
                }
            }
        }));
    }

    // Once both wait inside, the next call is shed at once.
    let mut probe = stats.client().await;
    let shed = tokio::time::timeout(PATIENCE, async {
        loop {
            match probe.get_summary(summary(0)).await {
                Ok(_) => continue,
                Err(status) => return status,
            }
        }
    })
    .await
    .expect("no call was ever shed at the limit");
    assert!(is_overloaded(&shed), "{shed:?}");
    assert!(
        shed.get_details_retry_info()
            .is_some_and(|r| r.retry_delay.is_some()),
        "a shed call says when to retry"
    );
    assert!(shed.message().contains("limit of 2 calls"), "{shed:?}");

    // Health checks are never shed: a busy server is not a dead one.
    let mut health = HealthClient::new(stats.channel().await);
    let status = health
        .check(HealthCheckRequest {
            service: "zgc.stats.v1.StatsService".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .status;
    assert_eq!(status, ServingStatus::Serving as i32);

    // The write the holders wait for lets them finish...
    writer
        .create_company(CreateCompanyRequest {
            company: Some(company("Release", "Hebei", "Baoding")),
            company_id: "release".into(),
            request_id: String::new(),
        })
        .await
        .unwrap();
    for h in holders {
        assert_eq!(h.await.unwrap().company_count, 1);
    }
    // ...and with them gone, every call is served again.
    for _ in 0..20 {
        probe.get_summary(summary(1)).await.unwrap();
    }
}

/// Calls that take slots of a server's limit and keep them: on one raw
/// HTTP/2 connection, each sends its headers (the server admits a call on
/// them) and never its message. Dropping them resets the streams, which
/// frees the slots.
struct HeldCalls {
    // The connection's handle too: with the last one dropped, the client
    // closes the connection.
    _connection: h2::client::SendRequest<bytes::Bytes>,
    _streams: Vec<(h2::client::ResponseFuture, h2::SendStream<bytes::Bytes>)>,
}

async fn hold_calls(addr: std::net::SocketAddr, n: usize) -> HeldCalls {
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (h2, connection) = h2::client::handshake(tcp).await.unwrap();
    tokio::spawn(connection);
    let mut streams = Vec::new();
    for _ in 0..n {
        let mut h2 = h2.clone().ready().await.unwrap();
        let request = http::Request::post(format!(
            "http://{addr}/zgc.registry.v1.RegistryService/CreateCompany"
        ))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(())
        .unwrap();
        streams.push(h2.send_request(request, false).unwrap());
    }
    HeldCalls {
        _connection: h2,
        _streams: streams,
    }
}

/// Waits until the server reports `n` CreateCompany calls in flight
/// (its `zgc_rpc_in_flight` gauge), reading its metrics as they change.
async fn wait_in_flight(metrics: std::net::SocketAddr, n: f64) {
    tokio::time::timeout(PATIENCE, async {
        loop {
            let body = zgc_tests::scrape(metrics).await;
            let line = body.lines().find(|l| {
                l.starts_with("zgc_rpc_in_flight{") && l.contains("method=\"CreateCompany\"")
            });
            if line.and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok()) == Some(n) {
                return;
            }
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the held calls never reached the server");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_burst_far_beyond_the_limit_loses_nothing_and_recovers() {
    const LIMIT: usize = 4;
    const CONNECTIONS: usize = 8;
    const PER_CONNECTION: usize = 64;
    let registry = Registry::start_with(|c| c.server.max_concurrent_calls = LIMIT as u32).await;

    // Every slot is held while the burst comes: all of it must be shed,
    // at once, with nothing written.
    let held = hold_calls(registry.addr, LIMIT).await;
    wait_in_flight(registry.metrics_addr, LIMIT as f64).await;
    let full = registry
        .client()
        .await
        .list_parks(ListParksRequest::default())
        .await
        .unwrap_err();
    assert!(is_overloaded(&full), "{full:?}");

    let mut tasks = tokio::task::JoinSet::new();
    for conn in 0..CONNECTIONS {
        // One channel per connection, many calls in flight on each.
        let client = registry.client().await;
        for k in 0..PER_CONNECTION {
            let mut client = client.clone();
            tasks.spawn(async move {
                let request = CreateCompanyRequest {
                    company: Some(company(&format!("Burst {conn}-{k}"), "Tianjin", "Tianjin")),
                    company_id: format!("burst-{conn}-{k}"),
                    request_id: request_id(),
                };
                let first = client.create_company(request.clone()).await;
                (request, first.map(|r| r.into_inner()))
            });
        }
    }
    let mut shed = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        let (request, result) = joined.unwrap();
        match result {
            Ok(c) => panic!("{} was admitted past a full limit", c.name),
            Err(status) => {
                assert!(is_overloaded(&status), "{status:?}");
                assert!(status.get_details_retry_info().is_some(), "{status:?}");
                shed.push(request);
            }
        }
    }
    assert_eq!(shed.len(), CONNECTIONS * PER_CONNECTION);
    let mut client = registry.client().await;

    // The burst is over and the slots are free again: the shed writes,
    // retried with their request IDs, all go through; retried once more,
    // each is answered with the company it created, not a second one.
    drop(held);
    for request in &shed {
        let created = tokio::time::timeout(PATIENCE, async {
            loop {
                match client.create_company(request.clone()).await {
                    Ok(c) => return c.into_inner(),
                    // The held calls' slots are freed as the server sees
                    // their streams reset.
                    Err(status) if is_overloaded(&status) => continue,
                    Err(status) => panic!("{status:?}"),
                }
            }
        })
        .await
        .expect("the limit never freed up");
        assert_eq!(created.name, format!("companies/{}", request.company_id));
        let again = client
            .create_company(request.clone())
            .await
            .unwrap()
            .into_inner();
        assert_eq!(again, created, "a retried request_id is answered once");
    }
    let listed = client
        .list_companies(ListCompaniesRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.total_size as usize, CONNECTIONS * PER_CONNECTION);
}

#[tokio::test]
async fn watchers_beyond_the_limit_are_refused_with_resource_exhausted() {
    let registry = Registry::start_with(|c| c.max_watchers = 2).await;
    let mut client = registry.client().await;
    let mut open = Vec::new();
    for _ in 0..2 {
        open.push(
            client
                .watch_changes(WatchChangesRequest { start_revision: 0 })
                .await
                .unwrap()
                .into_inner(),
        );
    }
    let refused = client
        .watch_changes(WatchChangesRequest { start_revision: 0 })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    assert_eq!(
        refused.get_details_error_info().unwrap().reason,
        "TOO_MANY_WATCHERS"
    );
    // A stream the client drops frees its place (once the server has
    // seen the reset, hence the retries).
    drop(open.pop());
    let reopened = tokio::time::timeout(PATIENCE, async {
        loop {
            match client
                .watch_changes(WatchChangesRequest { start_revision: 0 })
                .await
            {
                Ok(stream) => return stream.into_inner(),
                Err(s) if s.code() == Code::ResourceExhausted => continue,
                Err(s) => panic!("{s:?}"),
            }
        }
    })
    .await
    .expect("a closed stream never freed its place");
    drop(reopened);
}

/// Shedding thousands of calls on one connection must not cost the
/// connection: h2 counts the streams it resets on its own against a limit
/// (hyper's 1,024 per connection) and closes the connection past it, which
/// would fail every admitted call on it too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shedding_thousands_of_calls_on_one_connection_keeps_it() {
    let registry = Registry::start_with(|c| c.server.max_concurrent_calls = 1).await;
    let channel = registry.channel().await;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..64 {
        let mut client = RegistryServiceClient::new(channel.clone());
        tasks.spawn(async move {
            let (mut shed, mut other) = (0u64, Vec::new());
            for _ in 0..100 {
                match client.list_parks(ListParksRequest::default()).await {
                    Ok(_) => {}
                    Err(s)
                        if s.code() == tonic::Code::Unavailable
                            && s.message().contains("limit") =>
                    {
                        shed += 1
                    }
                    Err(s) => other.push(s),
                }
            }
            (shed, other)
        });
    }
    let (mut shed, mut other) = (0, Vec::new());
    while let Some(t) = tasks.join_next().await {
        let (s, o) = t.unwrap();
        shed += s;
        other.extend(o);
    }
    assert!(shed > 1024, "only {shed} calls were shed");
    assert!(
        other.is_empty(),
        "{} calls failed otherwise: {:?}",
        other.len(),
        other.first()
    );
}
