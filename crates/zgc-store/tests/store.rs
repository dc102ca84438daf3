//! The storage engine on its own: snapshots stay consistent while writes
//! interleave with their chunks, the change log reads densely, counters and
//! reference checks hold, and state survives a reopen.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use zgc_proto::registry::v1::{Company, Entity, Park, entity};
use zgc_proto::types::v1::Location;
use zgc_store::{Durability, Store, StoreConfig, StoreError, Write};

fn open(dir: &std::path::Path, durability: Durability) -> Store {
    let mut config = StoreConfig::new(dir);
    config.durability = durability;
    Store::open(config).unwrap()
}

fn company(id: &str, employees: i32) -> Company {
    Company {
        name: format!("companies/{id}"),
        display_name: id.into(),
        location: Some(Location {
            province: "Hebei".into(),
            city: "Baoding".into(),
            district: String::new(),
        }),
        employees,
        ..Default::default()
    }
}

fn key(e: &Entity) -> String {
    match e.kind.as_ref().unwrap() {
        entity::Kind::Park(p) => p.name.clone(),
        entity::Kind::Company(c) => c.name.clone(),
    }
}

fn state(store: &Store) -> BTreeMap<String, Entity> {
    let parks = store.parks_after(None).map(|p| Entity {
        kind: Some(entity::Kind::Park(p.unwrap())),
    });
    let companies = store.companies_after(None).map(|c| Entity {
        kind: Some(entity::Kind::Company(c.unwrap())),
    });
    parks.chain(companies).map(|e| (key(&e), e)).collect()
}

/// A small deterministic generator, so each seed is a reproducible run.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshots_are_consistent_while_writes_interleave() {
    for seed in 0..12u64 {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path(), Durability::None);
        let park = Park {
            name: "parks/p".into(),
            display_name: "P".into(),
            kind: 1,
            ..Default::default()
        };
        store
            .write(Write::CreatePark {
                park,
                request: None,
            })
            .await
            .unwrap();
        let initial: Vec<_> = (0..60).map(|i| company(&format!("c{i:02}"), i)).collect();
        store
            .write(Write::CreateCompanies {
                companies: initial,
                request: None,
            })
            .await
            .unwrap();

        let expected = state(&store);
        let mut snap = store.snapshot();
        assert_eq!(snap.revision(), store.revision());
        let mut rng = Lcg(seed);
        let mut got = BTreeMap::new();
        let mut fresh = 0;
        loop {
            // Between chunks: updates, deletes and creates anywhere in the
            // key space, some of them touching the same entity twice.
            for _ in 0..rng.next(6) {
                let id = format!("c{:02}", rng.next(60));
                match rng.next(3) {
                    0 => {
                        if let Some(current) = store.get_company(&id).unwrap() {
                            let mut next = current.clone();
                            next.employees += 1000;
                            store
                                .write(Write::UpdateCompany {
                                    company: next,
                                    expected_revision: current.revision,
                                })
                                .await
                                .unwrap();
                        }
                    }
                    1 => {
                        let _ = store
                            .write(Write::DeleteCompany {
                                name: format!("companies/{id}"),
                                expected_revision: None,
                            })
                            .await;
                    }
                    _ => {
                        fresh += 1;
                        let id = format!("{}{fresh}", if rng.next(2) == 0 { "a" } else { "z" });
                        store
                            .write(Write::CreateCompanies {
                                companies: vec![company(&id, 1)],
                                request: None,
                            })
                            .await
                            .unwrap();
                    }
                }
            }
            let Some(chunk) = snap.next_chunk(7).unwrap() else {
                break;
            };
            for e in chunk {
                assert!(
                    got.insert(key(&e), e).is_none(),
                    "seed {seed}: an entity was sent twice"
                );
            }
        }
        assert_eq!(
            got, expected,
            "seed {seed}: the snapshot is the state at its revision"
        );
    }
}

#[tokio::test]
async fn counters_references_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let rev = {
        let store = open(dir.path(), Durability::Fsync);
        let mut hq = company("hq", 1);
        hq.park = "parks/none".into();
        let err = store
            .write(Write::CreateCompanies {
                companies: vec![hq.clone()],
                request: None,
            })
            .await
            .unwrap_err();
        assert!(matches!(
            err,
            StoreError::MissingReference { field: "park", .. }
        ));
        hq.park.clear();
        let mut branch = company("branch", 1);
        branch.parent_company = "companies/hq".into();
        let out = store
            .write(Write::CreateCompanies {
                companies: vec![hq, branch],
                request: None,
            })
            .await
            .unwrap();
        assert_eq!(out.entities.len(), 2);
        assert_eq!(store.company_count().unwrap(), 2);
        assert_eq!(
            store
                .branch_ids("hq")
                .collect::<Result<Vec<_>, _>>()
                .unwrap(),
            vec!["branch"]
        );
        let err = store
            .write(Write::DeleteCompany {
                name: "companies/hq".into(),
                expected_revision: None,
            })
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::InUse { .. }));
        let batch = store.read_changes((1, 0), 100).unwrap();
        assert_eq!(batch.events.len(), 2);
        assert_eq!(batch.complete_through, out.revision);
        store.close().await.unwrap();
        assert!(matches!(
            store
                .write(Write::DeleteCompany {
                    name: "companies/branch".into(),
                    expected_revision: None
                })
                .await,
            Err(StoreError::Closed)
        ));
        out.revision
    };
    let store = open(dir.path(), Durability::Fsync);
    assert_eq!(store.revision(), rev);
    assert_eq!(store.company_count().unwrap(), 2);
    let out = store
        .write(Write::DeleteCompany {
            name: "companies/branch".into(),
            expected_revision: Some(rev),
        })
        .await
        .unwrap();
    assert_eq!(out.revision, rev + 1, "revisions continue after a reopen");
    assert_eq!(store.company_count().unwrap(), 1);
    assert!(store.branch_ids("hq").next().is_none());
}
