//! The etcd client (`zgc-etcd`) against a real 3-member etcd cluster on
//! loopback: calls and watches carry on when the member they use is
//! killed, compaction is reported, and auth tokens are obtained and sent.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::time::Duration;

use zgc_etcd::pb::etcdserverpb::compare::{CompareResult, CompareTarget, TargetUnion};
use zgc_etcd::pb::etcdserverpb::request_op::Request;
use zgc_etcd::pb::etcdserverpb::{Compare, PutRequest, RangeRequest, RequestOp, TxnRequest};
use zgc_etcd::{Client, Config, Credentials, EtcdError, WatchOptions, prefix_end};
use zgc_tests::pki::Pki;

/// A transaction that creates `key` with `value` unless it exists: sent
/// again after an ambiguous failure, it cannot apply twice.
fn create(key: &str, value: &str) -> TxnRequest {
    TxnRequest {
        compare: vec![Compare {
            result: CompareResult::Equal as i32,
            target: CompareTarget::Create as i32,
            key: key.as_bytes().to_vec(),
            target_union: Some(TargetUnion::CreateRevision(0)),
            ..Default::default()
        }],
        success: vec![RequestOp {
            request: Some(Request::RequestPut(PutRequest {
                key: key.as_bytes().to_vec(),
                value: value.as_bytes().to_vec(),
                ..Default::default()
            })),
        }],
        failure: vec![],
    }
}

/// Creates `key`, sending the transaction again after an ambiguous
/// failure (it is guarded, so it applies once); its revision.
async fn create_once(client: &Client, key: &str, value: &str) {
    loop {
        match client.txn(create(key, value)).await {
            Ok(_) => return,
            Err(EtcdError::Ambiguous(_)) => continue,
            Err(e) => panic!("creating {key}: {e}"),
        }
    }
}

async fn get(client: &Client, key: &str) -> Option<String> {
    let response = client
        .range(RangeRequest {
            key: key.as_bytes().to_vec(),
            ..Default::default()
        })
        .await
        .unwrap();
    response
        .kvs
        .first()
        .map(|kv| String::from_utf8(kv.value.clone()).unwrap())
}

async fn revision(client: &Client) -> i64 {
    client.status().await.unwrap().header.unwrap().revision
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_move_to_a_live_member_when_the_one_in_use_is_killed() {
    let cluster = zgc_tests::etcd::cluster(3).await;
    let client = cluster.client().unwrap();
    create_once(&client, "k/before", "1").await;
    assert_eq!(get(&client, "k/before").await.as_deref(), Some("1"));

    // The client uses member 0 (it answered last): kill it.
    cluster.kill(0).await.unwrap();
    assert_eq!(get(&client, "k/before").await.as_deref(), Some("1"));
    create_once(&client, "k/after", "2").await;
    assert_eq!(get(&client, "k/after").await.as_deref(), Some("2"));
    cluster.restart(0).await.unwrap();
    let only_first = Client::new(Config::new([cluster.endpoint(0)])).unwrap();
    assert_eq!(get(&only_first, "k/after").await.as_deref(), Some("2"));

    // Kill the leader: a write waits out the election on the others.
    let leader = cluster.leader().await.unwrap();
    cluster.kill(leader).await.unwrap();
    create_once(&client, "k/election", "3").await;
    assert_eq!(get(&client, "k/election").await.as_deref(), Some("3"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_moves_to_a_live_member_without_losing_or_repeating_an_event() {
    const KEYS: usize = 120;
    let cluster = zgc_tests::etcd::cluster(3).await;
    // The writer prefers member 1, so killing member 0 (the watch's) does
    // not stop the writes while the watch moves.
    let endpoints = cluster.endpoints();
    let writer = Client::new(Config::new([
        endpoints[1].clone(),
        endpoints[2].clone(),
        endpoints[0].clone(),
    ]))
    .unwrap();
    let start = revision(&writer).await + 1;
    let mut watch = cluster.client().unwrap().watch(WatchOptions {
        key: b"w/".to_vec(),
        range_end: prefix_end(b"w/"),
        start_revision: start,
        prev_kv: true,
    });

    // The writer writes a third, waits until the watch has seen it and
    // its member is killed, then writes the rest.
    let (killed_tx, killed_rx) = tokio::sync::oneshot::channel::<()>();
    let writes = tokio::spawn(async move {
        for i in 0..KEYS / 3 {
            create_once(&writer, &format!("w/{i:04}"), &i.to_string()).await;
        }
        killed_rx.await.unwrap();
        for i in KEYS / 3..KEYS {
            create_once(&writer, &format!("w/{i:04}"), &i.to_string()).await;
        }
    });
    let mut killed_tx = Some(killed_tx);

    let mut seen: BTreeMap<i64, String> = BTreeMap::new();
    let mut last = start - 1;
    while seen.len() < KEYS {
        let batch = watch.next().await.unwrap();
        for event in batch.events {
            let kv = event.kv.unwrap();
            assert!(
                kv.mod_revision > last,
                "revision {} after {last}: repeated or out of order",
                kv.mod_revision
            );
            last = kv.mod_revision;
            seen.insert(kv.mod_revision, String::from_utf8(kv.key).unwrap());
        }
        if seen.len() == KEYS / 3
            && let Some(tx) = killed_tx.take()
        {
            // The watch is on member 0, the first endpoint.
            cluster.kill(0).await.unwrap();
            tx.send(()).unwrap();
        }
    }
    writes.await.unwrap();
    let keys: Vec<String> = seen.into_values().collect();
    let expected: Vec<String> = (0..KEYS).map(|i| format!("w/{i:04}")).collect();
    assert_eq!(keys, expected, "every key once, in the order written");
}

/// A watcher catching up on history gets up to a thousand revisions per
/// response; here they come to 24 MB, past the members'
/// `--max-request-bytes` (16 MiB), so etcd sends the response in
/// fragments, cut wherever the size falls, mostly inside a revision. The
/// watch still delivers whole revisions, every event once, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_catching_up_on_large_history_delivers_whole_revisions() {
    const REVISIONS: usize = 24;
    const KEYS_PER_REVISION: usize = 1000;
    let cluster = zgc_tests::etcd::cluster(3).await;
    let client = cluster.client().unwrap();
    let start = revision(&client).await + 1;
    let value = vec![b'v'; 1000];
    for r in 0..REVISIONS {
        let success = (0..KEYS_PER_REVISION)
            .map(|k| RequestOp {
                request: Some(Request::RequestPut(PutRequest {
                    key: format!("big/{r:02}/{k:04}").into_bytes(),
                    value: value.clone(),
                    ..Default::default()
                })),
            })
            .collect();
        client
            .txn(TxnRequest {
                compare: vec![],
                success,
                failure: vec![],
            })
            .await
            .unwrap();
    }

    let mut watch = client.watch(WatchOptions {
        key: b"big/".to_vec(),
        range_end: prefix_end(b"big/"),
        start_revision: start,
        prev_kv: false,
    });
    let mut events_by_revision: BTreeMap<i64, usize> = BTreeMap::new();
    let mut last_revision = start - 1;
    let mut batches = 0;
    while events_by_revision.len() < REVISIONS
        || events_by_revision.values().any(|n| *n < KEYS_PER_REVISION)
    {
        let batch = watch.next().await.unwrap();
        batches += 1;
        let first = batch.events.first().and_then(|e| e.kv.as_ref()).unwrap();
        assert!(
            first.mod_revision > last_revision,
            "revision {} was split between batches, or repeated",
            first.mod_revision
        );
        for event in &batch.events {
            let revision = event.kv.as_ref().unwrap().mod_revision;
            assert!(revision >= last_revision, "out of order");
            last_revision = revision;
            *events_by_revision.entry(revision).or_default() += 1;
        }
        assert_eq!(batch.revision, last_revision);
    }
    assert!(batches > 1, "the history came in more than one message");
    assert_eq!(events_by_revision.len(), REVISIONS);
    assert!(
        events_by_revision.values().all(|n| *n == KEYS_PER_REVISION),
        "every revision whole: {events_by_revision:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_from_a_compacted_revision_is_told_how_far_history_goes() {
    let cluster = zgc_tests::etcd::cluster(3).await;
    let client = cluster.client().unwrap();
    let first = revision(&client).await + 1;
    for i in 0..5 {
        create_once(&client, &format!("c/{i}"), "x").await;
    }
    let latest = revision(&client).await;
    client.compact(latest).await.unwrap();
    // Compacting again to the same revision is not an error.
    client.compact(latest).await.unwrap();

    let mut watch = client.watch(WatchOptions {
        key: b"c/".to_vec(),
        range_end: prefix_end(b"c/"),
        start_revision: first,
        prev_kv: false,
    });
    match watch.next().await {
        Err(EtcdError::Compacted {
            requested,
            compact_revision,
        }) => {
            assert_eq!(requested, first);
            assert_eq!(compact_revision, latest);
        }
        other => panic!("expected a compaction error, got {other:?}"),
    }

    // From the compaction on, the watch works.
    let mut watch = client.watch(WatchOptions {
        key: b"c/".to_vec(),
        range_end: prefix_end(b"c/"),
        start_revision: latest,
        prev_kv: false,
    });
    let batch = watch.next().await.unwrap();
    assert_eq!(batch.revision, latest);
    assert_eq!(batch.events[0].kv.as_ref().unwrap().key, b"c/4");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_auth_enabled_a_user_gets_a_token_and_a_stranger_is_refused() {
    let cluster = zgc_tests::etcd::cluster(3).await;
    zgc_tests::etcd::enable_auth(&cluster, "s3cret").await;

    let mut config = Config::new(cluster.endpoints());
    config.credentials = Some(Credentials {
        user: "root".into(),
        password: "s3cret".into(),
    });
    let user = Client::new(config.clone()).unwrap();
    create_once(&user, "a/1", "yes").await;
    assert_eq!(get(&user, "a/1").await.as_deref(), Some("yes"));

    let stranger = Client::new(Config::new(cluster.endpoints())).unwrap();
    let refused = stranger
        .range(RangeRequest {
            key: b"a/1".to_vec(),
            ..Default::default()
        })
        .await;
    assert!(
        matches!(refused, Err(EtcdError::Auth(_))),
        "a client without a user is refused: {refused:?}"
    );

    config.credentials = Some(Credentials {
        user: "root".into(),
        password: "wrong".into(),
    });
    let wrong = Client::new(config).unwrap();
    let refused = wrong.status().await;
    assert!(
        matches!(refused, Err(EtcdError::Auth(_))),
        "a wrong password is refused: {refused:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_tls_a_client_certificate_is_required() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = zgc_tests::etcd::tls_cluster(3, &Pki::new(dir.path())).await;
    let client = cluster.client().unwrap();
    create_once(&client, "t/1", "yes").await;
    assert_eq!(get(&client, "t/1").await.as_deref(), Some("yes"));

    let mut config = cluster.client_config();
    config.tls.cert = None;
    config.tls.key = None;
    config.retry_for = Duration::from_secs(1);
    let anonymous = Client::new(config).unwrap();
    let refused = anonymous
        .range(RangeRequest {
            key: b"t/1".to_vec(),
            ..Default::default()
        })
        .await;
    assert!(
        matches!(refused, Err(EtcdError::Unavailable(_))),
        "a client without a certificate gets nothing: {refused:?}"
    );
}
