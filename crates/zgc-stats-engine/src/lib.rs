//! The stats aggregation engine.
//!
//! [`Engine::apply`] takes registry change events (from a snapshot or the
//! live stream) and keeps aggregates per *bucket*: everything, each park,
//! each province, each city and each sector. Every change subtracts the old
//! contribution of the entity and adds the new one, so the aggregates always
//! equal a recomputation over the current entities. Queries read those
//! aggregates: their cost depends on the size of the answer (and on the
//! number of parks for rankings and affiliate trees), never on the number
//! of companies.
//!
//! A park with affiliated parks also has a *tree* bucket: the park and
//! its affiliates together, so an `include_affiliates` scope is one bucket
//! too. Company changes update tree buckets as they go; a change to which
//! parks exist or to a park's parent marks them stale, and they are
//! rebuilt from the park buckets once, when the batch of events ends
//! ([`Engine::set_revision`]).
//!
//! A bucket whose entities are all gone stays as an empty aggregate (it
//! answers zeros); inner maps drop entries whose count falls to zero.
//!
//! Sums are kept in 128-bit integers and saturate at the `int64` range when
//! reported. Regions compare case-insensitively after trimming and are
//! reported with the spelling seen first.
//!
//! No gRPC, no I/O: the service feeds events in and maps answers out.

mod agg;
mod dated;
mod dates;
mod error;
mod flows;
mod footprint;
mod leveled;
mod model;
mod query;
mod ranked;

pub use dates::Ymd;
pub use error::{ApplyError, QueryError};

use std::collections::{BTreeSet, HashMap, HashSet};

use agg::{Agg, BucketId};
use model::{CompanyInfo, Names, ParkInfo, Placement};
use zgc_proto::registry::v1::{ChangeEvent, Company, Entity, entity};

/// Aggregates over every park and company seen, as of a registry revision.
#[derive(Debug, Default, Clone)]
pub struct Engine {
    revision: u64,
    parks: HashMap<String, ParkInfo>,
    /// Where each company counts, not what it counts for: an update or
    /// delete carries the company as it was (`before`), and that is what
    /// is subtracted. Boxed: a hash table has up to twice as many slots as
    /// entries, and grows by doubling (both tables live while it moves),
    /// so slots hold a pointer, not the record.
    companies: HashMap<Box<str>, Box<Placement>>,
    /// Child parks by parent park name (whether or not the parent exists).
    park_children: HashMap<String, BTreeSet<String>>,
    /// Branch companies by parent company name.
    branches_of: HashMap<String, BTreeSet<String>>,
    buckets: HashMap<BucketId, Agg>,
    /// Parks that have a tree bucket (those with affiliated parks).
    trees: HashSet<String>,
    /// Parks appeared, went or changed parent since the tree buckets were
    /// built: they are rebuilt by `set_revision`, and ignored until then.
    trees_stale: bool,
    /// Relocation records by origin, destination and year.
    flows: flows::Flows,
    /// Region spellings, and the names kept per company, shared.
    names: Names,
}

impl Engine {
    /// An empty engine at revision 0.
    pub fn new() -> Self {
        Self::default()
    }

    /// The registry revision the aggregates reflect.
    pub fn revision(&self) -> u64 {
        self.revision
    }

    /// Records that every change up to `revision` has been applied: the
    /// end of a batch of events, where stale affiliate trees are rebuilt.
    pub fn set_revision(&mut self, revision: u64) {
        self.revision = self.revision.max(revision);
        if self.trees_stale {
            self.rebuild_trees();
        }
    }

    /// `name` and every existing park whose parent chain (through existing
    /// parks) leads to it.
    pub(crate) fn affiliates<'a>(&'a self, name: &'a str) -> Vec<&'a str> {
        let mut seen: HashSet<&str> = HashSet::from([name]);
        let mut out = vec![name];
        let mut queue = vec![name];
        while let Some(p) = queue.pop() {
            for child in self.park_children.get(p).into_iter().flatten() {
                // Every child is an existing park: a park leaves its
                // parent's children when it is deleted or moved.
                if seen.insert(child) {
                    out.push(child);
                    queue.push(child);
                }
            }
        }
        out
    }

    /// The tree buckets a contribution to park `park` also goes to: those
    /// of the park and of its existing ancestors.
    fn tree_ids(&self, park: &str) -> Vec<BucketId> {
        let mut out = Vec::new();
        if self.trees_stale || self.trees.is_empty() {
            return out;
        }
        let mut visited: Vec<&str> = Vec::new();
        let mut current = park;
        while let Some(info) = self.parks.get(current) {
            if visited.contains(&current) {
                break; // a cycle of parents
            }
            visited.push(current);
            if self.trees.contains(current) {
                out.push(BucketId::ParkTree(current.to_string()));
            }
            current = &info.parent;
        }
        out
    }

    fn rebuild_trees(&mut self) {
        self.buckets
            .retain(|id, _| !matches!(id, BucketId::ParkTree(_)));
        let mut trees = HashMap::new();
        for name in self.parks.keys() {
            let members = self.affiliates(name);
            if members.len() < 2 {
                continue;
            }
            let mut agg = Agg::default();
            for m in members {
                if let Some(b) = self.buckets.get(&BucketId::Park(m.to_string())) {
                    agg.merge(b);
                }
            }
            trees.insert(name.clone(), agg);
        }
        self.trees = trees.keys().cloned().collect();
        self.buckets.extend(
            trees
                .into_iter()
                .map(|(name, agg)| (BucketId::ParkTree(name), agg)),
        );
        self.trees_stale = false;
    }

    /// The number of parks and companies held.
    pub fn entity_count(&self) -> usize {
        self.parks.len() + self.companies.len()
    }

    /// Applies one change event: the entity's old contribution is
    /// subtracted and the new one (`after`) added. A park's old
    /// contribution is the one the engine holds; a company's is read from
    /// the event's `before`, which must place it where the engine counted
    /// it. An event that cannot be applied exactly is refused, and changes
    /// no figure.
    pub fn apply(&mut self, event: &ChangeEvent) -> Result<(), ApplyError> {
        let subject = event.after.as_ref().or(event.before.as_ref());
        match subject.and_then(|e| e.kind.as_ref()) {
            Some(entity::Kind::Park(p)) => {
                let name = p.name.clone();
                let after = event.after.as_ref().and_then(park_of);
                self.set_park(&name, after);
                Ok(())
            }
            Some(entity::Kind::Company(c)) => {
                let name = c.name.clone();
                let before = event.before.as_ref().and_then(company_of);
                let after = event.after.as_ref().and_then(company_of);
                self.set_company(&name, before, after)
            }
            None => Ok(()),
        }
    }

    fn bucket(&mut self, id: BucketId) -> &mut Agg {
        self.buckets.entry(id).or_default()
    }

    fn set_park(&mut self, name: &str, after: Option<&zgc_proto::registry::v1::Park>) {
        let parent_before = self.parks.get(name).map(|p| p.parent.clone());
        let parent_after = after.map(|p| p.parent_park.clone());
        if parent_before != parent_after {
            self.trees_stale = true;
        }
        if let Some(old) = self.parks.remove(name) {
            for id in old.buckets(name) {
                self.bucket(id).parks -= 1;
            }
            if let Some(children) = self.park_children.get_mut(&old.parent) {
                children.remove(name);
                if children.is_empty() {
                    self.park_children.remove(&old.parent);
                }
            }
        }
        if let Some(p) = after {
            let info = ParkInfo::from_proto(p, &mut self.names);
            for id in info.buckets(name) {
                self.bucket(id).parks += 1;
            }
            if links_to_parent(&info.parent, name) {
                self.park_children
                    .entry(info.parent.clone())
                    .or_default()
                    .insert(name.to_string());
            }
            self.parks.insert(name.to_string(), info);
        }
    }

    fn set_company(
        &mut self,
        name: &str,
        before: Option<&Company>,
        after: Option<&Company>,
    ) -> Result<(), ApplyError> {
        // Checked before anything changes.
        let old = match self.companies.get(name) {
            None if before.is_some() => return Err(ApplyError::Unknown(name.into())),
            None => None,
            Some(held) => {
                let before = before.ok_or_else(|| ApplyError::MissingBefore(name.into()))?;
                let old = CompanyInfo::from_proto(before, &mut self.names);
                if old.place != **held {
                    return Err(ApplyError::Diverged(name.into()));
                }
                Some(old)
            }
        };
        let branches: Vec<String> = self
            .branches_of
            .get(name)
            .map(|b| b.iter().cloned().collect())
            .unwrap_or_default();
        if let Some(old) = old {
            // As a parent: its branches leave its old buckets' footprints.
            for b in &branches {
                self.footprint(b, name, -1);
            }
            self.footprint(name, &old.place.parent, -1);
            self.contribute(&old, -1);
            if let Some(set) = self.branches_of.get_mut(&*old.place.parent) {
                set.remove(name);
                if set.is_empty() {
                    self.branches_of.remove(&*old.place.parent);
                }
            }
            self.companies.remove(name);
        }
        if let Some(c) = after {
            let info = CompanyInfo::from_proto(c, &mut self.names);
            self.contribute(&info, 1);
            let parent = info.place.parent.clone();
            if links_to_parent(&parent, name) {
                self.branches_of
                    .entry(parent.to_string())
                    .or_default()
                    .insert(name.to_string());
            }
            self.companies.insert(name.into(), Box::new(info.place));
            self.footprint(name, &parent, 1);
            for b in &branches {
                self.footprint(b, name, 1);
            }
        }
        Ok(())
    }

    /// Adds (`sign` 1) or removes (-1) a company's own contribution.
    fn contribute(&mut self, c: &CompanyInfo, sign: i64) {
        let mut ids = c.place.buckets();
        ids.extend(self.tree_ids(&c.place.park));
        for id in ids {
            self.bucket(id).add_company(c, sign);
        }
        if let Some(last) = c.relocations.last() {
            let (from, to) = (&last.from, &last.to);
            if from.province != to.province {
                self.bucket(BucketId::Province(from.province.to_string()))
                    .relocated_out += sign;
            }
            if from != to {
                self.bucket(BucketId::City(
                    from.province.to_string(),
                    from.city.to_string(),
                ))
                .relocated_out += sign;
            }
        }
        for r in &c.relocations {
            self.flows.add(&r.from, &r.to, r.date.map(|d| d.year), sign);
        }
    }

    /// Adds or removes branch `child`'s footprint in the buckets of its
    /// parent `parent`, if both exist.
    fn footprint(&mut self, child: &str, parent: &str, sign: i64) {
        if !links_to_parent(parent, child) {
            return;
        }
        let (Some(p), Some(c)) = (self.companies.get(parent), self.companies.get(child)) else {
            return;
        };
        if *c.parent != *parent {
            return;
        }
        let Some(location) = c.location.clone() else {
            return;
        };
        let founded = c.founded;
        let mut ids = p.buckets();
        ids.extend(self.tree_ids(&p.park));
        for id in ids {
            self.buckets
                .entry(id)
                .or_default()
                .footprint
                .add(&location, founded, sign);
        }
    }
}

/// Whether `parent`, named as the parent of `child`, makes a link that
/// counts: a name, and not the child's own (the registry refuses a
/// self-parent; the engine ignores one rather than count a park among its
/// own affiliates or a company among its own branches).
fn links_to_parent(parent: &str, child: &str) -> bool {
    !parent.is_empty() && parent != child
}

fn park_of(e: &Entity) -> Option<&zgc_proto::registry::v1::Park> {
    match e.kind.as_ref()? {
        entity::Kind::Park(p) => Some(p),
        entity::Kind::Company(_) => None,
    }
}

fn company_of(e: &Entity) -> Option<&Company> {
    match e.kind.as_ref()? {
        entity::Kind::Company(c) => Some(c),
        entity::Kind::Park(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use zgc_proto::registry::v1::{ChangeType, Park};

    use super::*;

    fn created(revision: u64, kind: entity::Kind) -> ChangeEvent {
        ChangeEvent {
            revision,
            r#type: ChangeType::Created as i32,
            before: None,
            after: Some(Entity { kind: Some(kind) }),
        }
    }

    fn park(name: &str, parent: &str) -> entity::Kind {
        entity::Kind::Park(Park {
            name: name.into(),
            parent_park: parent.into(),
            ..Default::default()
        })
    }

    fn company(name: &str, park: &str, employees: i32) -> entity::Kind {
        entity::Kind::Company(Company {
            name: name.into(),
            park: park.into(),
            employees,
            ..Default::default()
        })
    }

    #[test]
    fn only_another_entity_named_as_parent_is_a_link() {
        assert!(links_to_parent("parks/zgc", "parks/baoding"));
        assert!(!links_to_parent("", "parks/baoding"));
        assert!(!links_to_parent("parks/zgc", "parks/zgc"));
    }

    /// A company naming itself as its parent (which the registry refuses)
    /// is counted as a branch, as any company naming a parent is, but it
    /// is no branch of its own: no footprint comes of it.
    #[test]
    fn a_company_that_names_itself_as_parent_has_no_footprint() {
        let mut engine = Engine::new();
        let own = Company {
            name: "companies/a".into(),
            parent_company: "companies/a".into(),
            location: Some(zgc_proto::types::v1::Location {
                province: "Hebei".into(),
                city: "Baoding".into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        engine
            .apply(&created(1, entity::Kind::Company(own)))
            .unwrap();
        assert!(!engine.buckets.is_empty());
        for agg in engine.buckets.values() {
            assert_eq!(agg.branches, 1);
            assert!(agg.footprint.is_empty(), "{agg:?}");
        }
    }

    /// A park with affiliates gets its tree bucket at the end of the batch
    /// that made it one, so an `include_affiliates` query reads one bucket
    /// instead of merging the affiliates' on every call; until then the
    /// merge answers. The answers are the same either way: this is what
    /// tells the two apart.
    #[test]
    fn the_end_of_a_batch_builds_the_trees_a_park_change_left_stale() {
        let mut engine = Engine::new();
        for event in [
            created(1, park("parks/zgc", "")),
            created(1, park("parks/baoding", "parks/zgc")),
            created(1, company("companies/a", "parks/baoding", 10)),
        ] {
            engine.apply(&event).unwrap();
        }
        assert!(
            engine.trees_stale,
            "a new parent link makes the trees stale"
        );
        assert!(
            !engine
                .buckets
                .contains_key(&BucketId::ParkTree("parks/zgc".into()))
        );
        engine.set_revision(1);
        assert!(!engine.trees_stale);
        assert!(engine.trees.contains("parks/zgc"));
        let tree = &engine.buckets[&BucketId::ParkTree("parks/zgc".into())];
        assert_eq!((tree.parks, tree.companies, tree.employees), (2, 1, 10));
        // Later companies go into the tree as they come.
        engine
            .apply(&created(2, company("companies/b", "parks/baoding", 5)))
            .unwrap();
        engine.set_revision(2);
        let tree = &engine.buckets[&BucketId::ParkTree("parks/zgc".into())];
        assert_eq!((tree.companies, tree.employees), (2, 15));
    }

    /// While the trees are stale, contributions go to the park buckets
    /// only (the trees are rebuilt from them at the end of the batch).
    #[test]
    fn stale_trees_take_no_contributions() {
        let mut engine = Engine::new();
        engine.apply(&created(1, park("parks/zgc", ""))).unwrap();
        engine
            .apply(&created(1, park("parks/baoding", "parks/zgc")))
            .unwrap();
        engine.set_revision(1);
        assert_eq!(
            engine.tree_ids("parks/baoding"),
            [BucketId::ParkTree("parks/zgc".into())]
        );
        engine
            .apply(&created(2, park("parks/xiong", "parks/zgc")))
            .unwrap();
        assert!(engine.trees_stale);
        assert!(engine.tree_ids("parks/baoding").is_empty());
    }

    /// Parks whose parents form a cycle (the registry refuses one, but
    /// the engine must not hang on it) are each other's affiliates, once.
    #[test]
    fn affiliates_of_a_cycle_are_listed_once() {
        let mut engine = Engine::new();
        engine
            .apply(&created(1, park("parks/a", "parks/b")))
            .unwrap();
        engine
            .apply(&created(2, park("parks/b", "parks/a")))
            .unwrap();
        engine.set_revision(2);
        let mut affiliates = engine.affiliates("parks/a");
        affiliates.sort_unstable();
        assert_eq!(affiliates, ["parks/a", "parks/b"]);
    }

    #[test]
    fn the_entity_count_counts_parks_and_companies() {
        let mut engine = Engine::new();
        assert_eq!(engine.entity_count(), 0);
        engine.apply(&created(1, park("parks/zgc", ""))).unwrap();
        engine
            .apply(&created(2, company("companies/a", "parks/zgc", 1)))
            .unwrap();
        engine
            .apply(&created(3, company("companies/b", "parks/zgc", 1)))
            .unwrap();
        assert_eq!(engine.entity_count(), 3);
    }
}
