//! WatchChanges over real gRPC: snapshot then live, resumable replay,
//! compaction, progress marks, split revisions, slow watchers.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::time::Duration;

use tonic::{Code, Streaming};
use zgc_proto::registry::v1::*;
use zgc_tests::fixtures::{info_metadata, reason};
use zgc_tests::{Backend, company, on_both_backends, park};

type Client = registry_service_client::RegistryServiceClient<tonic::transport::Channel>;

/// A safety net against a hung stream, not a timing assertion: every wait
/// here normally ends in milliseconds.
const PATIENCE: Duration = Duration::from_secs(60);

async fn next(stream: &mut Streaming<WatchChangesResponse>) -> WatchChangesResponse {
    tokio::time::timeout(PATIENCE, stream.message())
        .await
        .expect("the stream went quiet")
        .expect("stream error")
        .expect("stream ended")
}

fn name_of(e: &Option<Entity>) -> String {
    match e.as_ref().and_then(|e| e.kind.as_ref()) {
        Some(entity::Kind::Park(p)) => p.name.clone(),
        Some(entity::Kind::Company(c)) => c.name.clone(),
        None => String::new(),
    }
}

async fn create(c: &mut Client, id: &str) -> Company {
    c.create_company(CreateCompanyRequest {
        company: Some(company(id, "Hebei", "Baoding")),
        company_id: id.into(),
        request_id: String::new(),
    })
    .await
    .unwrap()
    .into_inner()
}

async fn snapshot_then_live_from_zero(backend: Backend) {
    let r = backend.start(|_| {}).await;
    let mut c = r.client().await;
    c.create_park(CreateParkRequest {
        park: Some(park("P", "Hebei", "Baoding")),
        park_id: "p".into(),
        request_id: String::new(),
    })
    .await
    .unwrap();
    let mut expected = BTreeMap::new();
    for i in 0..30 {
        let co = create(&mut c, &format!("c{i:02}")).await;
        expected.insert(co.name.clone(), co.revision);
    }
    let deleted = create(&mut c, "gone").await;
    c.delete_company(DeleteCompanyRequest {
        name: deleted.name,
        etag: String::new(),
    })
    .await
    .unwrap();
    let now = c
        .get_park(GetParkRequest {
            name: "parks/p".into(),
        })
        .await
        .unwrap();
    let head = zgc_tests::fixtures::revision_header(now.metadata()).unwrap();

    let mut stream = c
        .watch_changes(WatchChangesRequest { start_revision: 0 })
        .await
        .unwrap()
        .into_inner();
    let mut snapshot = BTreeMap::new();
    let mark = loop {
        let msg = next(&mut stream).await;
        if msg.events.is_empty() {
            break msg.revision;
        }
        for e in msg.events {
            assert_eq!(e.r#type, ChangeType::Created as i32);
            assert!(e.before.is_none());
            snapshot.insert(name_of(&e.after), e.revision);
        }
    };
    assert_eq!(
        mark, head,
        "the snapshot is consistent as of the head revision"
    );
    assert!(snapshot.remove("parks/p").is_some());
    assert_eq!(
        snapshot, expected,
        "every entity once, with its own revision"
    );

    let live = create(&mut c, "live").await;
    let msg = loop {
        let msg = next(&mut stream).await;
        if !msg.events.is_empty() {
            break msg;
        }
    };
    assert_eq!(msg.events.len(), 1);
    assert_eq!(msg.events[0].revision, live.revision);
    assert_eq!(msg.revision, live.revision);
    assert_eq!(name_of(&msg.events[0].after), live.name);
}

async fn resume_from_n_replays_each_event_once_in_order(backend: Backend) {
    let r = backend.start(|_| {}).await;
    let mut c = r.client().await;
    let mut history = Vec::new();
    for i in 0..10 {
        let co = create(&mut c, &format!("c{i}")).await;
        history.push((co.revision, ChangeType::Created as i32, co.name.clone()));
        if i % 3 == 0 {
            let upd = c
                .update_company(UpdateCompanyRequest {
                    company: Some(Company {
                        name: co.name.clone(),
                        employees: 7,
                        ..Default::default()
                    }),
                    update_mask: None,
                })
                .await
                .unwrap()
                .into_inner();
            history.push((upd.revision, ChangeType::Updated as i32, co.name.clone()));
        }
    }
    let start = history[4].0;
    let expected: Vec<_> = history.iter().filter(|h| h.0 >= start).cloned().collect();
    let mut stream = c
        .watch_changes(WatchChangesRequest {
            start_revision: start,
        })
        .await
        .unwrap()
        .into_inner();
    let mut got = Vec::new();
    while got.len() < expected.len() {
        for e in next(&mut stream).await.events {
            let name = if e.after.is_some() {
                name_of(&e.after)
            } else {
                name_of(&e.before)
            };
            got.push((e.revision, e.r#type, name));
        }
    }
    assert_eq!(got, expected);
    // Updates carry both sides.
    let mut again = c
        .watch_changes(WatchChangesRequest {
            start_revision: history[1].0,
        })
        .await
        .unwrap()
        .into_inner();
    let first = next(&mut again).await.events.remove(0);
    assert_eq!(first.r#type, ChangeType::Updated as i32);
    assert!(first.before.is_some() && first.after.is_some());
}

async fn compacted_history_answers_revision_compacted(backend: Backend) {
    let r = backend.start(|c| c.retention = 3).await;
    let mut c = r.client().await;
    let mut last = 0;
    for i in 0..10 {
        last = create(&mut c, &format!("c{i}")).await.revision;
    }
    // The store compacts right after storing a group: once it has, every
    // revision up to 3 behind the last is gone (on sled, revisions 1..=7;
    // on etcd the revisions are etcd's).
    let compacted_to = |err: &tonic::Status| -> u64 {
        info_metadata(err, "compact_revision")
            .unwrap()
            .parse()
            .unwrap()
    };
    let err = tokio::time::timeout(std::time::Duration::from_secs(60), async {
        loop {
            let err = match c
                .watch_changes(WatchChangesRequest { start_revision: 1 })
                .await
            {
                Err(e) => e,
                Ok(resp) => resp.into_inner().message().await.unwrap_err(),
            };
            assert_eq!(err.code(), Code::OutOfRange);
            assert_eq!(reason(&err).as_deref(), Some("REVISION_COMPACTED"));
            if compacted_to(&err) >= last - 3 {
                return err;
            }
            // Polling a condition: the compaction follows the last group.
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the history was never compacted to the retention");
    let compact = compacted_to(&err);
    assert_eq!(compact, last - 3, "a retention of 3 keeps the last 3");
    // Watching from just after it works.
    let mut stream = c
        .watch_changes(WatchChangesRequest {
            start_revision: compact + 1,
        })
        .await
        .unwrap()
        .into_inner();
    let msg = next(&mut stream).await;
    assert_eq!(msg.events[0].revision, compact + 1);
}

async fn idle_streams_send_progress_marks(backend: Backend) {
    let r = backend.start(|c| c.watch_progress_secs = 1).await;
    let mut c = r.client().await;
    let co = create(&mut c, "only").await;
    let mut stream = c
        .watch_changes(WatchChangesRequest {
            start_revision: co.revision + 1,
        })
        .await
        .unwrap()
        .into_inner();
    let mark = next(&mut stream).await;
    assert!(mark.events.is_empty());
    assert_eq!(mark.revision, co.revision);
}

async fn a_large_revision_is_split_across_messages(backend: Backend) {
    let r = backend.start(|_| {}).await;
    let mut c = r.client().await;
    let requests = (0..600)
        .map(|i| CreateCompanyRequest {
            company: Some(company(&format!("B{i}"), "Tianjin", "Tianjin")),
            company_id: format!("b{i:03}"),
            request_id: String::new(),
        })
        .collect();
    let batch = c
        .batch_create_companies(BatchCreateCompaniesRequest {
            requests,
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    let rev = batch.companies[0].revision;
    let mut stream = c
        .watch_changes(WatchChangesRequest {
            start_revision: rev,
        })
        .await
        .unwrap()
        .into_inner();
    let first = next(&mut stream).await;
    let second = next(&mut stream).await;
    assert_eq!(first.events.len() + second.events.len(), 600);
    assert_eq!(first.revision, rev - 1, "a partial revision is not claimed");
    assert_eq!(second.revision, rev);
}

async fn a_watcher_that_never_reads_does_not_block_writers(backend: Backend) {
    let r = backend.start(|_| {}).await;
    let mut c = r.client().await;
    // Opened and never read again.
    let _stuck = r
        .client()
        .await
        .watch_changes(WatchChangesRequest { start_revision: 0 })
        .await
        .unwrap();
    for b in 0..20 {
        let requests = (0..100)
            .map(|i| CreateCompanyRequest {
                company: Some(company(
                    &format!("Slow {b} {i} {}", "x".repeat(100)),
                    "Hebei",
                    "Baoding",
                )),
                company_id: format!("s{b}-{i}"),
                request_id: String::new(),
            })
            .collect();
        c.batch_create_companies(BatchCreateCompaniesRequest {
            requests,
            request_id: String::new(),
        })
        .await
        .unwrap();
    }
    let list = c
        .list_companies(ListCompaniesRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(list.total_size, 2000);
}

on_both_backends!(
    snapshot_then_live_from_zero,
    resume_from_n_replays_each_event_once_in_order,
    compacted_history_answers_revision_compacted,
    idle_streams_send_progress_marks,
    a_large_revision_is_split_across_messages,
    a_watcher_that_never_reads_does_not_block_writers,
);
