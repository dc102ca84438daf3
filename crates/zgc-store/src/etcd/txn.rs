//! A write as one etcd transaction: the rules decide it against the
//! replica's state, every read they made becomes a compare, and the
//! changes become the transaction's puts and deletes. If anything the
//! rules read has changed in etcd since, the transaction fails and the
//! write is decided again on the newer state: the rules' answer always
//! holds at the revision the write commits at.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};

use prost::Message;
use zgc_etcd::pb::etcdserverpb::compare::{CompareResult, CompareTarget, TargetUnion};
use zgc_etcd::pb::etcdserverpb::request_op::Request;
use zgc_etcd::pb::etcdserverpb::{Compare, DeleteRangeRequest, PutRequest, RequestOp, TxnRequest};
use zgc_proto::registry::v1::{Company, Park};

use super::keys::Keys;
use crate::codec::RequestRecord;
use crate::keys::{self, id_of};
use crate::rules::{Change, State};
use crate::{RequestKey, StoreError};

/// What a read found, to be true still when the write commits.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Expect {
    /// The key does not exist.
    Absent,
    /// The key exists (whatever its value).
    Exists,
    /// The key was last changed at this revision.
    At(u64),
    /// No key from this one up to the given end exists.
    Empty(Vec<u8>),
}

/// The rules' [`State`] over the replica, remembering what they read.
pub(crate) struct Recorder<'a, S> {
    state: &'a S,
    keys: &'a Keys,
    reads: RefCell<BTreeMap<Vec<u8>, Expect>>,
}

impl<'a, S: State> Recorder<'a, S> {
    pub(crate) fn new(state: &'a S, keys: &'a Keys) -> Self {
        Self {
            state,
            keys,
            reads: RefCell::new(BTreeMap::new()),
        }
    }

    /// Keeps what a read found; a revision read is kept over a mere
    /// existence.
    fn record(&self, key: Vec<u8>, expect: Expect) {
        let mut reads = self.reads.borrow_mut();
        match reads.get(&key) {
            Some(Expect::At(_)) if expect == Expect::Exists => {}
            _ => {
                reads.insert(key, expect);
            }
        }
    }

    /// The compares that hold while nothing the rules read has changed.
    pub(crate) fn compares(self) -> Vec<Compare> {
        self.reads
            .into_inner()
            .into_iter()
            .map(|(key, expect)| compare(key, expect))
            .collect()
    }
}

fn compare(key: Vec<u8>, expect: Expect) -> Compare {
    let (target, result, union, range_end) = match expect {
        Expect::Absent => (
            CompareTarget::Create,
            CompareResult::Equal,
            TargetUnion::CreateRevision(0),
            Vec::new(),
        ),
        Expect::Exists => (
            CompareTarget::Create,
            CompareResult::Greater,
            TargetUnion::CreateRevision(0),
            Vec::new(),
        ),
        Expect::At(revision) => (
            CompareTarget::Mod,
            CompareResult::Equal,
            TargetUnion::ModRevision(i64::try_from(revision).unwrap_or(i64::MAX)),
            Vec::new(),
        ),
        // etcd compares each key of a range, and a range without keys as
        // one absent key: create revision 0 holds exactly when it is empty.
        Expect::Empty(end) => (
            CompareTarget::Create,
            CompareResult::Equal,
            TargetUnion::CreateRevision(0),
            end,
        ),
    };
    Compare {
        result: result as i32,
        target: target as i32,
        key,
        range_end,
        target_union: Some(union),
    }
}

impl<S: State> State for Recorder<'_, S> {
    fn park(&self, id: &str) -> Result<Option<Park>, StoreError> {
        let park = self.state.park(id)?;
        let expect = park
            .as_ref()
            .map_or(Expect::Absent, |p| Expect::At(p.revision));
        self.record(self.keys.park(id), expect);
        Ok(park)
    }

    fn has_park(&self, id: &str) -> Result<bool, StoreError> {
        let found = self.state.has_park(id)?;
        let expect = if found {
            Expect::Exists
        } else {
            Expect::Absent
        };
        self.record(self.keys.park(id), expect);
        Ok(found)
    }

    fn company(&self, id: &str) -> Result<Option<Company>, StoreError> {
        let company = self.state.company(id)?;
        let expect = company
            .as_ref()
            .map_or(Expect::Absent, |c| Expect::At(c.revision));
        self.record(self.keys.company(id), expect);
        Ok(company)
    }

    fn has_company(&self, id: &str) -> Result<bool, StoreError> {
        let found = self.state.has_company(id)?;
        let expect = if found {
            Expect::Exists
        } else {
            Expect::Absent
        };
        self.record(self.keys.company(id), expect);
        Ok(found)
    }

    fn first_referrer(&self, tag: u8, target: &str) -> Result<Option<String>, StoreError> {
        let found = self.state.first_referrer(tag, target)?;
        if found.is_none() {
            let prefix = self.keys.index_prefix(tag, target);
            let end = zgc_etcd::prefix_end(&prefix);
            self.record(prefix, Expect::Empty(end));
        }
        Ok(found)
    }

    fn request(&self, request_id: &str) -> Result<Option<RequestRecord>, StoreError> {
        let found = self.state.request(request_id)?;
        if found.is_none() {
            self.record(self.keys.request(request_id), Expect::Absent);
        }
        Ok(found)
    }
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

fn delete(key: Vec<u8>) -> RequestOp {
    RequestOp {
        request: Some(Request::RequestDeleteRange(DeleteRangeRequest {
            key,
            ..Default::default()
        })),
    }
}

/// The reference index entries an entity state makes, as
/// `(tag, target ID)`.
fn references(change: &Change, after: bool) -> BTreeSet<(u8, String)> {
    let mut out = BTreeSet::new();
    let mut add = |tag: u8, name: &str, collection: &str| {
        if let Some(target) = id_of(name, collection) {
            out.insert((tag, target.to_string()));
        }
    };
    match change {
        Change::Park {
            before, after: a, ..
        } => {
            let park = if after {
                a.as_ref().map(|(p, _)| p)
            } else {
                before.as_ref()
            };
            if let Some(p) = park {
                add(keys::IDX_PARK_BY_PARENT, &p.parent_park, "parks");
            }
        }
        Change::Company {
            before, after: a, ..
        } => {
            let company = if after {
                a.as_ref().map(|(c, _)| c)
            } else {
                before.as_ref()
            };
            if let Some(c) = company {
                add(keys::IDX_COMPANY_BY_PARK, &c.park, "parks");
                add(keys::IDX_BRANCH_BY_PARENT, &c.parent_company, "companies");
            }
        }
    }
    out
}

/// The transaction that makes `changes` (and keeps `request`'s record)
/// if everything `compares` says still holds.
pub(crate) fn build(
    keys: &Keys,
    compares: Vec<Compare>,
    changes: &[Change],
    request: Option<&RequestKey>,
) -> TxnRequest {
    let mut success = Vec::with_capacity(changes.len() * 3 + 1);
    for change in changes {
        let (key, id, value) = match change {
            Change::Park { id, after, .. } => (
                keys.park(id),
                id,
                after.as_ref().map(|(_, bytes)| bytes.clone()),
            ),
            Change::Company { id, after, .. } => (
                keys.company(id),
                id,
                after.as_ref().map(|(_, bytes)| bytes.clone()),
            ),
        };
        success.push(match value {
            Some(bytes) => put(key, bytes),
            None => delete(key),
        });
        let (old, new) = (references(change, false), references(change, true));
        for (tag, target) in old.difference(&new) {
            success.push(delete(keys.index(*tag, target, id)));
        }
        for (tag, target) in new.difference(&old) {
            success.push(put(keys.index(*tag, target, id), Vec::new()));
        }
    }
    if let Some(request) = request {
        let record = RequestRecord {
            fingerprint: request.fingerprint.clone(),
            revision: 0,
            entities: changes
                .iter()
                .filter_map(|change| match change {
                    Change::Park {
                        id, after: Some(_), ..
                    } => Some(format!("p/{id}")),
                    Change::Company {
                        id, after: Some(_), ..
                    } => Some(format!("c/{id}")),
                    _ => None,
                })
                .collect(),
        };
        success.push(put(
            keys.request(&request.request_id),
            record.encode_to_vec(),
        ));
    }
    // Marks the newest write, deletes included, for consistent reads.
    success.push(put(keys.last_write(), Vec::new()));
    TxnRequest {
        compare: compares,
        success,
        failure: Vec::new(),
    }
}
