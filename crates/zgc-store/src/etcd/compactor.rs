//! Retention on etcd: etcd's history is compacted to the registry's
//! `--retention` revisions behind the newest, as the sled store compacts
//! its change log, and the idempotency records of the compacted revisions
//! are deleted with it (a retried request older than the retention is a
//! new request, on either backend). Every replica does it; compacting to
//! a revision already compacted and deleting keys already gone change
//! nothing.

use tokio::sync::watch;
use zgc_etcd::pb::etcdserverpb::request_op::Request;
use zgc_etcd::pb::etcdserverpb::{DeleteRangeRequest, RangeRequest, RequestOp, TxnRequest};
use zgc_etcd::{Client, prefix_end};

use super::keys::Keys;

/// Records deleted per transaction (within etcd's `--max-txn-ops`).
const DELETE_BATCH: i64 = 1000;

/// Compacts once the history to drop has grown by this share of the
/// retention, so a busy registry does not compact on every write.
fn step(retention: u64) -> u64 {
    (retention / 16).max(1)
}

/// Deletes the idempotency records last written at or before `upto`.
async fn forget_requests(client: &Client, keys: &Keys, upto: i64) -> Result<(), String> {
    let start = keys.request("");
    let end = prefix_end(&start);
    loop {
        let old = client
            .range(RangeRequest {
                key: start.clone(),
                range_end: end.clone(),
                limit: DELETE_BATCH,
                keys_only: true,
                max_mod_revision: upto,
                ..Default::default()
            })
            .await
            .map_err(|e| e.to_string())?;
        if old.kvs.is_empty() {
            return Ok(());
        }
        let success = old
            .kvs
            .into_iter()
            .map(|kv| RequestOp {
                request: Some(Request::RequestDeleteRange(DeleteRangeRequest {
                    key: kv.key,
                    ..Default::default()
                })),
            })
            .collect();
        client
            .txn(TxnRequest {
                compare: Vec::new(),
                success,
                failure: Vec::new(),
            })
            .await
            .map_err(|e| e.to_string())?;
        if !old.more {
            return Ok(());
        }
    }
}

/// Compacts etcd as the replica's revision moves on, until the store
/// closes.
pub(crate) async fn run(
    client: Client,
    keys: Keys,
    mut revisions: watch::Receiver<u64>,
    retention: u64,
) {
    let mut compacted = 0u64;
    loop {
        let revision = *revisions.borrow_and_update();
        let target = revision.saturating_sub(retention);
        if target >= compacted + step(retention) {
            let upto = i64::try_from(target).unwrap_or(i64::MAX);
            let done = match forget_requests(&client, &keys, upto).await {
                Ok(()) => client.compact(upto).await.map_err(|e| e.to_string()),
                Err(e) => Err(e),
            };
            match done {
                Ok(_) => {
                    tracing::debug!(revision = target, "compacted etcd's history");
                    compacted = target;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "compacting etcd's history failed; will retry")
                }
            }
        }
        if revisions.changed().await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::step;

    #[test]
    fn compaction_waits_for_a_sixteenth_of_the_retention() {
        assert_eq!(step(1_000_000), 62_500);
        assert_eq!(step(3), 1);
        assert_eq!(step(1), 1);
    }
}
