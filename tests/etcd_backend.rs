//! The registry on etcd as a platform team runs it: several replicas over
//! one 3-member cluster, writes through all of them, an etcd leader and a
//! replica lost under load, and etcd's history kept to the retention.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use tonic::transport::Channel;
use zgc_etcd::{EtcdError, WatchOptions};
use zgc_proto::registry::v1::registry_service_client::RegistryServiceClient;
use zgc_proto::registry::v1::*;
use zgc_proto::stats::v1::{GetSummaryRequest, Scope, scope};
use zgc_tests::fixtures::revision_header;
use zgc_tests::proxy::Proxy;
use zgc_tests::{Backend, Registry, Stats, company, park, request_id};

type Client = RegistryServiceClient<Channel>;

/// How long anything may take on a loaded machine before a test fails.
const PATIENCE: Duration = Duration::from_secs(120);

async fn connect(endpoint: &str) -> Option<Client> {
    let channel = Channel::from_shared(endpoint.to_string())
        .unwrap()
        .timeout(PATIENCE)
        .connect()
        .await
        .ok()?;
    Some(RegistryServiceClient::new(channel))
}

fn all() -> Option<Scope> {
    Some(Scope {
        selector: Some(scope::Selector::All(true)),
        include_affiliates: false,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_serve_one_registry() {
    let backend = Backend::etcd().await;
    let (one, two) = (backend.start(|_| {}).await, backend.start(|_| {}).await);
    let (mut a, mut b) = (one.client().await, two.client().await);

    let zgc = a
        .create_park(CreateParkRequest {
            park_id: "zgc".into(),
            park: Some(park("Zhongguancun", "Beijing", "Beijing")),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    // Every read path of the other replica sees it at once.
    let got = b
        .get_park(GetParkRequest {
            name: "parks/zgc".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got, zgc);
    let listed = b
        .list_parks(ListParksRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.parks, vec![zgc.clone()]);
    // So do its writes: the company's park exists and its location comes
    // from it.
    let mut new = company("Baidu", "", "");
    new.location = None;
    new.park = "parks/zgc".into();
    new.employees = 40;
    let created = b
        .create_company(CreateCompanyRequest {
            company: Some(new),
            company_id: "baidu".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(created.location.as_ref().unwrap().city, "Beijing");

    let read = a
        .get_company(GetCompanyRequest {
            name: "companies/baidu".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(read, created, "a write on one replica is read on the other");
    let batch = a
        .batch_get_companies(BatchGetCompaniesRequest {
            names: vec!["companies/baidu".into()],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(batch.companies, vec![created.clone()]);
    let page = a
        .list_companies(ListCompaniesRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(page.companies, vec![created.clone()]);

    let mut update = read.clone();
    update.employees = 45;
    let updated = a
        .update_company(UpdateCompanyRequest {
            company: Some(update),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["employees".into()],
            }),
        })
        .await
        .unwrap();
    let revision = revision_header(updated.metadata()).unwrap();
    // The etag read on one replica guards an update through the other.
    let mut stale = read.clone();
    stale.employees = 1;
    let refused = b
        .update_company(UpdateCompanyRequest {
            company: Some(stale),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["employees".into()],
            }),
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Aborted);

    // Both replicas are the same store to a follower.
    let store_id = |response: &tonic::Response<tonic::Streaming<WatchChangesResponse>>| {
        response.metadata().get("x-zgc-store-id").unwrap().clone()
    };
    let from_a = a
        .watch_changes(WatchChangesRequest { start_revision: 1 })
        .await
        .unwrap();
    let from_b = b
        .watch_changes(WatchChangesRequest { start_revision: 1 })
        .await
        .unwrap();
    assert_eq!(store_id(&from_a), store_id(&from_b));

    // A replica started later replays every revision etcd keeps.
    let three = backend.start(|_| {}).await;
    let mut history = three
        .client()
        .await
        .watch_changes(WatchChangesRequest { start_revision: 1 })
        .await
        .unwrap()
        .into_inner();
    let mut kinds = Vec::new();
    while kinds.len() < 3 {
        let message = history.message().await.unwrap().unwrap();
        kinds.extend(message.events.iter().map(|e| {
            let name = match e
                .after
                .as_ref()
                .or(e.before.as_ref())
                .and_then(|x| x.kind.as_ref())
            {
                Some(entity::Kind::Park(p)) => p.name.clone(),
                Some(entity::Kind::Company(c)) => c.name.clone(),
                None => String::new(),
            };
            (e.r#type, name)
        }));
    }
    assert_eq!(
        kinds,
        vec![
            (ChangeType::Created as i32, "parks/zgc".to_string()),
            (ChangeType::Created as i32, "companies/baidu".to_string()),
            (ChangeType::Updated as i32, "companies/baidu".to_string()),
        ]
    );

    // A stats service following either replica counts what is stored.
    for replica in [&one, &two] {
        let stats = Stats::start(&replica.endpoint()).await;
        stats.wait_serving().await;
        let summary = stats
            .client()
            .await
            .get_summary(GetSummaryRequest {
                scope: all(),
                min_revision: revision,
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            (summary.park_count, summary.company_count, summary.employees),
            (1, 1, 45)
        );
        stats.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_history_and_old_request_ids_are_dropped_past_the_retention() {
    let backend = Backend::etcd().await;
    let registry = backend.start(|c| c.retention = 3).await;
    let mut c = registry.client().await;
    let first = c
        .create_company(CreateCompanyRequest {
            company: Some(company("First", "Hebei", "Baoding")),
            request_id: request_id(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let mut last = 0;
    for i in 0..8 {
        let created = c
            .create_company(CreateCompanyRequest {
                company: Some(company(&format!("C{i}"), "Hebei", "Baoding")),
                ..Default::default()
            })
            .await
            .unwrap();
        last = revision_header(created.metadata()).unwrap();
    }

    // The replica compacts etcd behind it once its revision has moved on:
    // wait for etcd to say so.
    let etcd = backend.cluster().unwrap().client().unwrap();
    let watch_from_first = || {
        etcd.watch(WatchOptions {
            key: b"zgc/".to_vec(),
            range_end: zgc_etcd::prefix_end(b"zgc/"),
            start_revision: i64::try_from(first.revision).unwrap(),
            prev_kv: false,
        })
    };
    let compacted = tokio::time::timeout(PATIENCE, async {
        loop {
            let mut watch = watch_from_first();
            if let Err(EtcdError::Compacted {
                compact_revision, ..
            }) = watch.next().await
            {
                return compact_revision;
            }
            // Polling a condition: the compactor runs as revisions come.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("etcd's history was never compacted");
    assert!(compacted >= i64::try_from(first.revision).unwrap());
    assert!(
        compacted <= i64::try_from(last).unwrap() - 3,
        "the retention is kept"
    );

    // The first request's idempotency record went with its revision.
    let records = etcd
        .range(zgc_etcd::pb::etcdserverpb::RangeRequest {
            key: b"zgc/e/r/".to_vec(),
            range_end: zgc_etcd::prefix_end(b"zgc/e/r/"),
            count_only: true,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(records.count, 0);
}

/// What a writer knows: the acknowledged creates, by display name.
type Acks = Arc<Mutex<BTreeMap<String, (String, u64)>>>;

/// Creates `count` companies named `w{writer}-{i}`, each with its own
/// request ID, retrying every failure with the same request ID through
/// whichever replica is up, until acknowledged.
async fn writer(writer: usize, count: usize, replicas: watch::Receiver<Vec<String>>, acks: Acks) {
    for i in 0..count {
        let tag = format!("w{writer}-{i}");
        let request = CreateCompanyRequest {
            company: Some(company(&tag, "Hebei", "Baoding")),
            request_id: request_id(),
            ..Default::default()
        };
        let mut attempt = writer + i;
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{tag} was never acknowledged"
            );
            let endpoints = replicas.borrow().clone();
            let endpoint = &endpoints[attempt % endpoints.len()];
            attempt += 1;
            let Some(mut client) = connect(endpoint).await else {
                continue;
            };
            match client.create_company(request.clone()).await {
                Ok(response) => {
                    let revision = revision_header(response.metadata()).unwrap();
                    let company = response.into_inner();
                    acks.lock()
                        .unwrap()
                        .insert(tag.clone(), (company.name, revision));
                    break;
                }
                Err(status) => {
                    assert_ne!(
                        status.code(),
                        tonic::Code::InvalidArgument,
                        "{tag}: {status:?}"
                    );
                }
            }
        }
    }
}

/// Follows the change stream through whichever replica is up, resuming
/// after the last revision seen, until `until` is seen; every created
/// company's name, checking that revisions only grow.
async fn watcher(
    start: u64,
    until: watch::Receiver<u64>,
    replicas: watch::Receiver<Vec<String>>,
) -> BTreeMap<u64, Vec<String>> {
    let mut seen: BTreeMap<u64, Vec<String>> = BTreeMap::new();
    let mut through = start - 1;
    let mut last_event = 0;
    let mut attempt = 0usize;
    loop {
        let target = *until.borrow();
        if target != 0 && through >= target {
            return seen;
        }
        let endpoints = replicas.borrow().clone();
        let endpoint = &endpoints[attempt % endpoints.len()];
        attempt += 1;
        let Some(mut client) = connect(endpoint).await else {
            continue;
        };
        let Ok(response) = client
            .watch_changes(WatchChangesRequest {
                start_revision: through + 1,
            })
            .await
        else {
            continue;
        };
        let mut stream = response.into_inner();
        while let Ok(Some(message)) = stream.message().await {
            for event in message.events {
                // One write, one event here: revisions strictly grow.
                assert!(
                    event.revision > last_event,
                    "revision {} after {last_event}: repeated or out of order",
                    event.revision
                );
                last_event = event.revision;
                if let Some(entity::Kind::Company(c)) = event.after.and_then(|a| a.kind) {
                    seen.entry(event.revision).or_default().push(c.name);
                }
            }
            through = through.max(message.revision);
            let target = *until.borrow();
            if target != 0 && through >= target {
                return seen;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_through_both_replicas_survive_losing_the_etcd_leader_and_a_replica() {
    const WRITERS: usize = 4;
    const EACH: usize = 30;
    let backend = Backend::etcd().await;
    let cluster = backend.cluster().unwrap();
    let first = backend.start(|_| {}).await;
    let mut second = Some(backend.start(|_| {}).await);
    let endpoints = vec![first.endpoint(), second.as_ref().unwrap().endpoint()];
    let (replicas_tx, replicas) = watch::channel(endpoints);
    let start = {
        let mut c = first.client().await;
        let created = c
            .create_park(CreateParkRequest {
                park_id: "zgc".into(),
                park: Some(park("Zhongguancun", "Beijing", "Beijing")),
                ..Default::default()
            })
            .await
            .unwrap();
        revision_header(created.metadata()).unwrap() + 1
    };

    let (until_tx, until) = watch::channel(0u64);
    let watchers: Vec<_> = (0..2)
        .map(|_| tokio::spawn(watcher(start, until.clone(), replicas.clone())))
        .collect();
    let acks: Acks = Arc::default();
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| tokio::spawn(writer(w, EACH, replicas.clone(), acks.clone())))
        .collect();
    let acked = |n: usize| {
        let acks = acks.clone();
        async move {
            tokio::time::timeout(PATIENCE, async {
                // Polling a condition: the writers count as they go.
                while acks.lock().unwrap().len() < n {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            })
            .await
            .expect("the writers stopped making progress");
        }
    };

    // Lose the etcd leader under load, then a registry replica; bring both
    // back.
    acked(20).await;
    let leader = cluster.leader().await.unwrap();
    cluster.kill(leader).await.unwrap();
    acked(45).await;
    replicas_tx.send_replace(vec![first.endpoint()]);
    second.take().unwrap().kill().await;
    acked(70).await;
    cluster.restart(leader).await.unwrap();
    let second = backend.start(|_| {}).await;
    replicas_tx.send_replace(vec![first.endpoint(), second.endpoint()]);

    for w in writers {
        w.await.unwrap();
    }
    let acks = acks.lock().unwrap().clone();
    assert_eq!(acks.len(), WRITERS * EACH);
    let last = acks.values().map(|(_, r)| *r).max().unwrap();
    until_tx.send_replace(last);

    // Every acknowledged write is there, once: a retried request ID made
    // one company.
    let mut c = second.client().await;
    let mut stored: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut token = String::new();
    loop {
        let page = c
            .list_companies(ListCompaniesRequest {
                page_size: 1000,
                page_token: token,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        for company in page.companies {
            stored
                .entry(company.display_name)
                .or_default()
                .push(company.name);
        }
        token = page.next_page_token;
        if token.is_empty() {
            break;
        }
    }
    for (tag, (name, _)) in &acks {
        assert_eq!(stored.get(tag), Some(&vec![name.clone()]), "{tag}");
    }
    assert_eq!(stored.len(), acks.len(), "nothing unacknowledged was made");

    // Every watcher saw every created company once, in revision order.
    let names: BTreeSet<String> = acks.values().map(|(n, _)| n.clone()).collect();
    for w in watchers {
        let seen = tokio::time::timeout(PATIENCE, w)
            .await
            .expect("a watcher never caught up")
            .unwrap();
        let watched: Vec<String> = seen.into_values().flatten().collect();
        assert_eq!(watched.len(), names.len(), "each create seen once");
        assert_eq!(watched.into_iter().collect::<BTreeSet<_>>(), names);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registry_reaches_etcd_over_mutual_tls_as_an_etcd_user() {
    let dir = tempfile::tempdir().unwrap();
    let pki = zgc_tests::pki::Pki::new(dir.path());
    let cluster = zgc_tests::etcd::tls_cluster(3, &pki).await;
    let tls = cluster.client_config().tls;
    zgc_tests::etcd::enable_auth(&cluster, "s3cret").await;
    let password = dir.path().join("etcd-password");
    std::fs::write(&password, "s3cret\n").unwrap();

    let scratch = tempfile::tempdir().unwrap();
    let registry = zgc_tests::Registry::start_in(scratch.path(), |c| {
        c.etcd.endpoints = cluster.endpoints();
        c.etcd.ca = tls.ca.clone();
        c.etcd.cert = tls.cert.clone();
        c.etcd.key = tls.key.clone();
        c.etcd.user = Some("root".into());
        c.etcd.password_file = Some(password.clone());
    })
    .await;
    let mut c = registry.client().await;
    let created = c
        .create_park(CreateParkRequest {
            park_id: "zgc".into(),
            park: Some(park("Zhongguancun", "Beijing", "Beijing")),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let read = c
        .get_park(GetParkRequest {
            name: "parks/zgc".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(read, created);
}

/// etcd batches up to a thousand revisions into one watch response, far
/// past gRPC's usual 4 MiB message limit; a replica replaying such a
/// history takes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_replays_history_larger_than_a_default_grpc_message() {
    let backend = Backend::etcd().await;
    let first = backend.start(|_| {}).await;
    let mut c = first.client().await;
    let mut last = String::new();
    for batch in 0..3 {
        let requests = (0..1000)
            .map(|i| {
                let mut co = company(&format!("Big {batch}-{i}"), "Hebei", "Baoding");
                co.labels = (0..16)
                    .map(|k| (format!("k{k}"), "x".repeat(120)))
                    .collect();
                CreateCompanyRequest {
                    company: Some(co),
                    company_id: format!("big-{batch}-{i}"),
                    ..Default::default()
                }
            })
            .collect();
        let created = c
            .batch_create_companies(BatchCreateCompaniesRequest {
                requests,
                request_id: String::new(),
            })
            .await
            .unwrap()
            .into_inner();
        last = created.companies.last().unwrap().name.clone();
    }
    let second = backend.start(|_| {}).await;
    let read = second
        .client()
        .await
        .get_company(GetCompanyRequest { name: last.clone() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(read.name, last);
}

/// A replica cut off from etcd while the other writes past the retention
/// finds, once back, that etcd has compacted away the revisions it
/// needs. It loads etcd's state again instead of stopping: it serves what
/// the other replica serves, and its change log starts after the load.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_left_behind_the_retention_loads_again() {
    let backend = Backend::etcd().await;
    let cluster = backend.cluster().unwrap();
    // Retention 10: the setup's writes stay in etcd's history; the
    // fifteen made while the second replica is cut off do not.
    let one = backend.start(|c| c.retention = 10).await;
    let mut proxies = Vec::new();
    for endpoint in cluster.endpoints() {
        let member = endpoint.trim_start_matches("http://").parse().unwrap();
        proxies.push(Proxy::start(member).await);
    }
    let scratch = tempfile::tempdir().unwrap();
    let through_proxies: Vec<String> = proxies.iter().map(Proxy::endpoint).collect();
    let two = Registry::start_in(scratch.path(), |c| {
        c.etcd.endpoints = through_proxies;
        c.retention = 1000;
    })
    .await;
    let (mut a, mut b) = (one.client().await, two.client().await);

    a.create_park(CreateParkRequest {
        park_id: "zgc".into(),
        park: Some(park("Zhongguancun", "Beijing", "Beijing")),
        ..Default::default()
    })
    .await
    .unwrap();
    for (id, request) in [
        ("kept", String::new()),
        ("changed", String::new()),
        ("gone", request_id()),
    ] {
        let mut new = company(id, "", "");
        new.location = None;
        new.park = "parks/zgc".into();
        a.create_company(CreateCompanyRequest {
            company: Some(new),
            company_id: id.into(),
            request_id: request,
        })
        .await
        .unwrap();
    }
    // The second replica has it all; then it hears nothing more.
    let seen = b
        .get_company(GetCompanyRequest {
            name: "companies/gone".into(),
        })
        .await
        .unwrap();
    let left_at = revision_header(seen.metadata()).unwrap();
    for proxy in &proxies {
        proxy.stall();
    }

    let changed = a
        .get_company(GetCompanyRequest {
            name: "companies/changed".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let mut update = changed.clone();
    update.employees = 77;
    a.update_company(UpdateCompanyRequest {
        company: Some(update),
        update_mask: Some(prost_types::FieldMask {
            paths: vec!["employees".into()],
        }),
    })
    .await
    .unwrap();
    a.delete_company(DeleteCompanyRequest {
        name: "companies/gone".into(),
        etag: String::new(),
    })
    .await
    .unwrap();
    a.create_park(CreateParkRequest {
        park_id: "tianjin".into(),
        park: Some(park("Binhai", "Tianjin", "Tianjin")),
        ..Default::default()
    })
    .await
    .unwrap();
    for i in 0..12 {
        a.create_company(CreateCompanyRequest {
            company: Some(company(&format!("N{i}"), "Tianjin", "Tianjin")),
            ..Default::default()
        })
        .await
        .unwrap();
    }

    // The first replica compacts etcd past where the second stopped.
    let etcd = cluster.client().unwrap();
    tokio::time::timeout(PATIENCE, async {
        loop {
            let mut watch = etcd.watch(WatchOptions {
                key: b"zgc/".to_vec(),
                range_end: zgc_etcd::prefix_end(b"zgc/"),
                start_revision: i64::try_from(left_at + 1).unwrap(),
                prev_kv: false,
            });
            if let Err(EtcdError::Compacted { .. }) = watch.next().await {
                return;
            }
            // Polling a condition: the compactor runs as revisions come.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("etcd's history was never compacted");

    // The second replica's connections close; new ones go through.
    for proxy in &proxies {
        proxy.unstall();
        proxy.cut();
        proxy.restore();
    }
    let everything = ListCompaniesRequest {
        page_size: 1000,
        ..Default::default()
    };
    let expected = a
        .list_companies(everything.clone())
        .await
        .unwrap()
        .into_inner()
        .companies;
    assert_eq!(expected.len(), 14);
    let served = tokio::time::timeout(PATIENCE, async {
        loop {
            match b.list_companies(everything.clone()).await {
                Ok(page) => return page.into_inner().companies,
                // Not serving while it loads, or not yet reconnected.
                Err(status) if status.code() == tonic::Code::Unavailable => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(status) => panic!("the replica left behind failed: {status:?}"),
            }
        }
    })
    .await
    .expect("the replica left behind never served again");
    assert_eq!(served, expected, "the replica serves etcd's state");
    let parks = b
        .list_parks(ListParksRequest::default())
        .await
        .unwrap()
        .into_inner()
        .parks;
    assert_eq!(parks.len(), 2);

    // Its change log starts after the load: a follower from where it was
    // is told to load a snapshot.
    let err = match b
        .watch_changes(WatchChangesRequest {
            start_revision: left_at + 1,
        })
        .await
    {
        Err(e) => e,
        Ok(resp) => resp.into_inner().message().await.unwrap_err(),
    };
    assert_eq!(err.code(), tonic::Code::OutOfRange);

    // And it follows etcd again: a write on the first is read on it.
    a.create_company(CreateCompanyRequest {
        company: Some(company("After", "Tianjin", "Tianjin")),
        company_id: "after".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    b.get_company(GetCompanyRequest {
        name: "companies/after".into(),
    })
    .await
    .unwrap();
}
