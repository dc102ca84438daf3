//! Parks and companies as the registry lists them: the records the filter
//! and the indexes read (`zgc_index::records`), and which store snapshots
//! hold each.

use zgc_proto::registry::v1::{Entity, entity};
use zgc_store::SnapshotOf;

pub use zgc_index::records::{CompanyRecord, ParkRecord, Resource};

/// A listable resource.
pub trait Listable: Resource {
    /// The store snapshots that hold it.
    const OF: SnapshotOf;
    /// It, from a snapshot's entity of its kind.
    fn from_entity(e: Entity) -> Option<Self>;
}

impl Listable for ParkRecord {
    const OF: SnapshotOf = SnapshotOf::Parks;

    fn from_entity(e: Entity) -> Option<Self> {
        match e.kind? {
            entity::Kind::Park(p) => Some(Self(p)),
            entity::Kind::Company(_) => None,
        }
    }
}

impl Listable for CompanyRecord {
    const OF: SnapshotOf = SnapshotOf::Companies;

    fn from_entity(e: Entity) -> Option<Self> {
        match e.kind? {
            entity::Kind::Company(c) => Some(Self(c)),
            entity::Kind::Park(_) => None,
        }
    }
}
