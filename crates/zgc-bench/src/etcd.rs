//! The etcd baseline: what the registry on etcd sends to etcd for an
//! import and for single creates, sent by a plain etcd client straight to
//! the same cluster (under another prefix), so the registry is measured
//! against etcd doing the same work.
//!
//! The transactions are the registry's (`zgc-store`'s `etcd/txn.rs`):
//! a compare that each company is absent and that its park and parent
//! exist, a put of each company and of its park and parent index entries,
//! and a put of the key every write marks. Their layout is restated here,
//! as a client of etcd would write it; the suite checks nothing through
//! it.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use prost::Message;
use zgc_client::pipeline::Pipeline;
use zgc_etcd::pb::etcdserverpb::compare::{CompareResult, CompareTarget, TargetUnion};
use zgc_etcd::pb::etcdserverpb::request_op::Request;
use zgc_etcd::pb::etcdserverpb::{Compare, PutRequest, RequestOp, TxnRequest};
use zgc_etcd::{Client, EtcdError};
use zgc_proto::registry::v1::{Company, entity};

use crate::dataset::{BATCH, SEED};
use crate::load;

/// The prefix the baseline writes under.
pub const PREFIX: &str = "raw/";

fn key(parts: &[&str]) -> Vec<u8> {
    let mut k = PREFIX.as_bytes().to_vec();
    for p in parts {
        k.extend_from_slice(p.as_bytes());
    }
    k
}

fn index(tag: char, target: &str, source: &str) -> Vec<u8> {
    let mut k = key(&["i/"]);
    k.push(tag as u8);
    k.extend_from_slice(target.as_bytes());
    k.push(0);
    k.extend_from_slice(source.as_bytes());
    k
}

fn put(key: Vec<u8>, value: Vec<u8>) -> RequestOp {
    RequestOp {
        request: Some(Request::RequestPut(PutRequest {
            key,
            value,
            ..Default::default()
        })),
    }
}

fn created(key: Vec<u8>, exists: bool) -> Compare {
    Compare {
        result: if exists {
            CompareResult::Greater
        } else {
            CompareResult::Equal
        } as i32,
        target: CompareTarget::Create as i32,
        key,
        target_union: Some(TargetUnion::CreateRevision(0)),
        ..Default::default()
    }
}

/// The transaction that creates `companies` (IDs and companies), as the
/// registry makes it.
fn create_txn(companies: &[(String, Company)]) -> TxnRequest {
    let ids: BTreeSet<&str> = companies.iter().map(|(id, _)| id.as_str()).collect();
    let mut compare = Vec::with_capacity(companies.len() + 16);
    let mut refs = BTreeSet::new();
    let mut success = Vec::with_capacity(companies.len() * 3 + 1);
    for (id, company) in companies {
        compare.push(created(key(&["e/c/", id]), false));
        if let Some(park) = company.park.strip_prefix("parks/") {
            refs.insert(key(&["e/p/", park]));
            success.push(put(index('C', park, id), Vec::new()));
        }
        if let Some(parent) = company.parent_company.strip_prefix("companies/") {
            if !ids.contains(parent) {
                refs.insert(key(&["e/c/", parent]));
            }
            success.push(put(index('B', parent, id), Vec::new()));
        }
        success.push(put(key(&["e/c/", id]), company.encode_to_vec()));
    }
    compare.extend(refs.into_iter().map(|k| created(k, true)));
    success.push(put(key(&["e/m/last"]), Vec::new()));
    TxnRequest {
        compare,
        success,
        failure: Vec::new(),
    }
}

/// Commits `txn`; sent again when etcd cannot say whether it applied (its
/// compares then fail if it had).
async fn commit(client: &Client, txn: TxnRequest) -> Result<(), String> {
    let mut ambiguous = false;
    loop {
        match client.txn(txn.clone()).await {
            Ok(response) if response.succeeded => return Ok(()),
            Ok(_) if ambiguous => return Ok(()),
            Ok(_) => return Err("a baseline transaction's compares failed".into()),
            Err(EtcdError::Ambiguous(_)) => ambiguous = true,
            Err(e) => return Err(e.to_string()),
        }
    }
}

/// Imports the generated companies as the registry's import does (batches
/// of 1,000, `in_flight` at once, a batch naming a parent after the batch
/// creating it); how long it took.
pub async fn import(client: &Client, companies: u64, in_flight: usize) -> Result<Duration, String> {
    let started = Instant::now();
    let mut pipeline: Pipeline<Result<(), String>> = Pipeline::new(in_flight);
    let mut batch: Vec<(String, Company)> = Vec::with_capacity(BATCH);
    for entity in zgc_dataset::generate(companies, SEED) {
        match entity.kind {
            Some(entity::Kind::Park(p)) => {
                let id = p.name.trim_start_matches("parks/").to_string();
                let txn = TxnRequest {
                    compare: vec![created(key(&["e/p/", &id]), false)],
                    success: vec![put(key(&["e/p/", &id]), p.encode_to_vec())],
                    failure: Vec::new(),
                };
                commit(client, txn).await?;
            }
            Some(entity::Kind::Company(c)) => {
                let id = c.name.trim_start_matches("companies/").to_string();
                batch.push((id, c));
                if batch.len() == BATCH {
                    send(client, &mut pipeline, std::mem::take(&mut batch)).await?;
                }
            }
            None => {}
        }
    }
    if !batch.is_empty() {
        send(client, &mut pipeline, batch).await?;
    }
    pipeline
        .finish()
        .await
        .map_err(|e| e.to_string())?
        .into_iter()
        .collect::<Result<Vec<()>, String>>()?;
    Ok(started.elapsed())
}

/// Starts committing `batch` once the batches creating its parents are
/// done; fails with the first batch that failed.
async fn send(
    client: &Client,
    pipeline: &mut Pipeline<Result<(), String>>,
    batch: Vec<(String, Company)>,
) -> Result<(), String> {
    let provides: Vec<String> = batch.iter().map(|(id, _)| id.clone()).collect();
    let needs: Vec<String> = batch
        .iter()
        .filter_map(|(_, c)| c.parent_company.strip_prefix("companies/"))
        .map(str::to_string)
        .collect();
    let client = client.clone();
    let txn = create_txn(&batch);
    let finished = pipeline
        .start(provides, needs, async move { commit(&client, txn).await })
        .await
        .map_err(|e| e.to_string())?;
    finished.into_iter().collect::<Result<Vec<()>, String>>()?;
    Ok(())
}

/// Single-company create transactions, `concurrency` in flight for
/// `seconds`, as CreateCompany makes them; per second.
pub async fn creates(
    clients: &[Client],
    concurrency: usize,
    seconds: Duration,
    company: &Company,
) -> Result<f64, String> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let company = company.clone();
    let r = load::closed(clients, concurrency, seconds, move |client: Client, _| {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let txn = create_txn(&[(format!("raw-create-{n}"), company.clone())]);
        async move { commit(&client, txn).await }
    })
    .await;
    if r.errors > 0 || r.calls == 0 {
        return Err(format!(
            "raw etcd creates: {} failed ({}), {} succeeded",
            r.errors,
            r.first_error.unwrap_or_default(),
            r.calls
        ));
    }
    Ok(r.throughput())
}
