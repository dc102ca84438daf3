//! The rules every write is checked against (`plan.rs`), through the
//! store's own interface: references that must exist, parent chains that
//! must not loop, expected revisions, the reference indexes and counters
//! a write keeps, and the largest entity stored.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use zgc_proto::registry::v1::{Company, Park, entity};
use zgc_store::{Durability, Store, StoreConfig, StoreError, Write, WriteOutcome};

fn open(dir: &std::path::Path) -> Store {
    let mut config = StoreConfig::new(dir);
    config.durability = Durability::Flush;
    Store::open(config).unwrap()
}

fn park(id: &str, parent: &str) -> Park {
    Park {
        name: format!("parks/{id}"),
        uid: format!("uid-{id}"),
        display_name: id.to_uppercase(),
        parent_park: parent.into(),
        ..Default::default()
    }
}

fn company(id: &str, parent: &str) -> Company {
    Company {
        name: format!("companies/{id}"),
        uid: format!("uid-{id}"),
        display_name: id.to_uppercase(),
        parent_company: parent.into(),
        ..Default::default()
    }
}

async fn create_park(store: &Store, p: Park) -> Result<WriteOutcome, StoreError> {
    store
        .write(Write::CreatePark {
            park: p,
            request: None,
        })
        .await
}

async fn create_company(store: &Store, c: Company) -> Result<WriteOutcome, StoreError> {
    store
        .write(Write::CreateCompanies {
            companies: vec![c],
            request: None,
        })
        .await
}

fn the_park(outcome: &WriteOutcome) -> Park {
    match outcome.entities.first().and_then(|e| e.kind.clone()) {
        Some(entity::Kind::Park(p)) => p,
        other => panic!("not a park: {other:?}"),
    }
}

fn ids(found: impl Iterator<Item = Result<String, StoreError>>) -> Vec<String> {
    found.map(Result::unwrap).collect()
}

#[tokio::test]
async fn parks_need_their_parent_never_loop_and_keep_their_index_and_count() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());

    let missing = create_park(&store, park("a", "parks/nowhere")).await;
    assert!(
        matches!(
            missing,
            Err(StoreError::MissingReference {
                field: "parent_park",
                ..
            })
        ),
        "{missing:?}"
    );
    let a = create_park(&store, park("a", "")).await.unwrap();
    let a_park = the_park(&a);
    assert_eq!(a_park.name, "parks/a");
    assert_eq!(a_park.revision, a.revision);
    let b = the_park(&create_park(&store, park("b", "parks/a")).await.unwrap());
    assert_eq!(ids(store.child_park_ids("a")), ["b"]);
    assert_eq!(store.park_count().unwrap(), 2);

    // a under b, where b is under a: a loop.
    let looped = store
        .write(Write::UpdatePark {
            park: park("a", "parks/b"),
            expected_revision: a_park.revision,
        })
        .await;
    assert!(
        matches!(
            looped,
            Err(StoreError::Cycle {
                field: "parent_park",
                ..
            })
        ),
        "{looped:?}"
    );
    // A stale revision.
    let stale = store
        .write(Write::UpdatePark {
            park: park("b", ""),
            expected_revision: b.revision + 1,
        })
        .await;
    assert!(
        matches!(stale, Err(StoreError::RevisionMismatch { .. })),
        "{stale:?}"
    );
    // b leaves a: the index follows; b's identity stays.
    let mut moved = park("b", "");
    moved.display_name = "Moved".into();
    let moved = the_park(
        &store
            .write(Write::UpdatePark {
                park: moved,
                expected_revision: b.revision,
            })
            .await
            .unwrap(),
    );
    assert_eq!(moved.display_name, "Moved");
    assert_eq!(moved.uid, b.uid);
    assert_eq!(moved.create_time, b.create_time);
    assert!(ids(store.child_park_ids("a")).is_empty());
    // And joins it again.
    let back = store
        .write(Write::UpdatePark {
            park: park("b", "parks/a"),
            expected_revision: moved.revision,
        })
        .await
        .unwrap();
    assert_eq!(ids(store.child_park_ids("a")), ["b"]);

    // Deletes: a stale revision, a park with children, a missing park.
    let stale = store
        .write(Write::DeletePark {
            name: "parks/b".into(),
            expected_revision: Some(back.revision + 1),
        })
        .await;
    assert!(
        matches!(stale, Err(StoreError::RevisionMismatch { .. })),
        "{stale:?}"
    );
    let in_use = store
        .write(Write::DeletePark {
            name: "parks/a".into(),
            expected_revision: None,
        })
        .await;
    assert!(
        matches!(in_use, Err(StoreError::InUse { .. })),
        "{in_use:?}"
    );
    store
        .write(Write::DeletePark {
            name: "parks/b".into(),
            expected_revision: Some(back.revision),
        })
        .await
        .unwrap();
    assert_eq!(store.park_count().unwrap(), 1);
    assert!(ids(store.child_park_ids("a")).is_empty());
    let gone = store
        .write(Write::DeletePark {
            name: "parks/b".into(),
            expected_revision: None,
        })
        .await;
    assert!(matches!(gone, Err(StoreError::NotFound { .. })), "{gone:?}");
}

#[tokio::test]
async fn companies_need_their_parent_and_never_loop() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());

    let missing = create_company(&store, company("a", "companies/nowhere")).await;
    assert!(
        matches!(
            missing,
            Err(StoreError::MissingReference {
                field: "parent_company",
                ..
            })
        ),
        "{missing:?}"
    );
    let a = create_company(&store, company("a", "")).await.unwrap();
    create_company(&store, company("b", "companies/a"))
        .await
        .unwrap();
    assert_eq!(ids(store.branch_ids("a")), ["b"]);

    // a under its own branch: a loop.
    let looped = store
        .write(Write::UpdateCompany {
            company: company("a", "companies/b"),
            expected_revision: a.revision,
        })
        .await;
    assert!(
        matches!(
            looped,
            Err(StoreError::Cycle {
                field: "parent_company",
                ..
            })
        ),
        "{looped:?}"
    );
    // b moves to another parent, which is no loop: the index follows.
    create_company(&store, company("c", "")).await.unwrap();
    let b = store.get_company("b").unwrap().unwrap();
    store
        .write(Write::UpdateCompany {
            company: company("b", "companies/c"),
            expected_revision: b.revision,
        })
        .await
        .unwrap();
    assert!(ids(store.branch_ids("a")).is_empty());
    assert_eq!(ids(store.branch_ids("c")), ["b"]);
    // A parent that does not exist, set by an update.
    let missing = store
        .write(Write::UpdateCompany {
            company: company("a", "companies/nowhere"),
            expected_revision: a.revision,
        })
        .await;
    assert!(
        matches!(missing, Err(StoreError::MissingReference { .. })),
        "{missing:?}"
    );
}

/// The largest entity stored is exactly the limit: one byte more is
/// refused, whole.
#[tokio::test]
async fn an_entity_of_exactly_the_limit_is_stored_and_one_byte_more_is_not() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let limit = 48 * 1024;
    let padded = |id: &str, len: usize| {
        let mut c = company(id, "");
        c.display_name = "x".repeat(len);
        c
    };
    // The stored size of a company with a display name of `len` bytes,
    // stamped as the store stamps it: the rest of it is the same size for
    // the ones below (same ID length, revisions of the same digits).
    create_company(&store, padded("p0", 40_000)).await.unwrap();
    let stored = store.get_company_encoded("p0").unwrap().unwrap().len();
    let exact = 40_000 + (limit - stored);
    create_company(&store, padded("p1", exact)).await.unwrap();
    assert_eq!(
        store.get_company_encoded("p1").unwrap().unwrap().len(),
        limit
    );
    let over = create_company(&store, padded("p2", exact + 1)).await;
    assert!(
        matches!(over, Err(StoreError::TooLarge { bytes, .. }) if bytes == limit + 1),
        "{over:?}"
    );
    assert_eq!(store.get_company("p2").unwrap(), None);
}
