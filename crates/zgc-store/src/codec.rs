//! Encoding of stored values.

use prost::Message;
use zgc_proto::registry::v1::{ChangeEvent, Company, Park};

use crate::StoreError;

/// The largest encoded entity accepted: twice this (an update's before and
/// after) stays well below sled's out-of-log blob threshold (a quarter of
/// its 512 KiB segment), so every value lives in the log that flush + fsync
/// covers.
pub const MAX_ENTITY_BYTES: usize = 48 * 1024;

pub fn decode_park(bytes: &[u8]) -> Result<Park, StoreError> {
    Park::decode(bytes).map_err(|e| StoreError::Corrupt(format!("park: {e}")))
}

pub fn decode_company(bytes: &[u8]) -> Result<Company, StoreError> {
    Company::decode(bytes).map_err(|e| StoreError::Corrupt(format!("company: {e}")))
}

pub fn decode_event(bytes: &[u8]) -> Result<ChangeEvent, StoreError> {
    ChangeEvent::decode(bytes).map_err(|e| StoreError::Corrupt(format!("change event: {e}")))
}

/// An idempotency record: which request and which revision answered it.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RequestRecord {
    /// The fingerprint of the original request.
    #[prost(bytes = "vec", tag = "1")]
    pub fingerprint: Vec<u8>,
    /// The revision that answered it; its change-log events hold the result.
    #[prost(uint64, tag = "2")]
    pub revision: u64,
    /// On etcd, the entities it made, as `p/<id>` or `c/<id>`: a replica
    /// whose change log starts after `revision` reads them from etcd's
    /// history at that revision instead.
    #[prost(string, repeated, tag = "3")]
    pub entities: Vec<String>,
}

pub fn decode_request(bytes: &[u8]) -> Result<RequestRecord, StoreError> {
    RequestRecord::decode(bytes).map_err(|e| StoreError::Corrupt(format!("request record: {e}")))
}
