//! The storage engine on its own: snapshots stay consistent while writes
//! interleave with their chunks, the change log reads densely, counters and
//! reference checks hold, and state survives a reopen.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use zgc_proto::registry::v1::{Company, Entity, Park, entity};
use zgc_proto::types::v1::Location;
use zgc_store::{Durability, Store, StoreConfig, StoreError, Write};

mod support;
use support::try_open;

/// Opens the store in `dir` (retrying while a store closed just before
/// holds its lock: [`try_open`]).
fn open(dir: &std::path::Path, durability: Durability) -> Store {
    let mut config = StoreConfig::new(dir);
    config.durability = durability;
    open_config(config)
}

/// Opens the store `config` says, as [`open`] does.
fn open_config(config: StoreConfig) -> Store {
    try_open(config).unwrap()
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

fn company_of(e: Option<&Entity>) -> Option<&Company> {
    match e?.kind.as_ref()? {
        entity::Kind::Company(c) => Some(c),
        entity::Kind::Park(_) => None,
    }
}

/// A company image as the tests compare it: employees and revision.
type Image = Option<(i32, u64)>;

/// The images of an event's `before` and `after` companies.
fn images(e: &zgc_proto::registry::v1::ChangeEvent) -> (Image, Image) {
    let of = |x: Option<&Entity>| company_of(x).map(|c| (c.employees, c.revision));
    (of(e.before.as_ref()), of(e.after.as_ref()))
}

/// Creates companies `c0` to `c{n-1}` with no employees, in one write:
/// their IDs and its revision.
async fn create_companies(store: &Store, n: usize) -> (Vec<String>, u64) {
    let ids: Vec<String> = (0..n).map(|i| format!("c{i}")).collect();
    let revision = store
        .write(Write::CreateCompanies {
            companies: ids.iter().map(|id| company(id, 0)).collect(),
            request: None,
        })
        .await
        .unwrap()
        .revision;
    (ids, revision)
}

async fn update(store: &Store, id: &str, employees: i32, expected_revision: u64) -> u64 {
    store
        .write(Write::UpdateCompany {
            company: company(id, employees),
            expected_revision,
        })
        .await
        .unwrap()
        .revision
}

#[tokio::test]
async fn the_change_log_keeps_each_revisions_images_after_the_companies_change() {
    use zgc_store::RequestKey;
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), Durability::Fsync);
    let request = RequestKey {
        request_id: "batch-1".into(),
        fingerprint: vec![1],
    };
    let created = store
        .write(Write::CreateCompanies {
            companies: vec![company("a", 1), company("b", 1), company("c", 1)],
            request: Some(request.clone()),
        })
        .await
        .unwrap();
    let r1 = created.revision;
    let r2 = update(&store, "b", 2, r1).await;
    let r3 = store
        .write(Write::DeleteCompany {
            name: "companies/c".into(),
            expected_revision: None,
        })
        .await
        .unwrap()
        .revision;
    let r4 = update(&store, "b", 3, r2).await;
    let r5 = store
        .write(Write::CreateCompanies {
            companies: vec![company("c", 5)],
            request: None,
        })
        .await
        .unwrap()
        .revision;

    let check = |store: &Store| {
        let events = store.read_changes((1, 0), 100).unwrap().events;
        let seen: Vec<_> = events.iter().map(|e| (e.revision, images(e))).collect();
        assert_eq!(
            seen,
            vec![
                (r1, (None, Some((1, r1)))),
                (r1, (None, Some((1, r1)))),
                (r1, (None, Some((1, r1)))),
                (r2, (Some((1, r1)), Some((2, r2)))),
                (r3, (Some((1, r1)), None)),
                (r4, (Some((2, r2)), Some((3, r4)))),
                (r5, (None, Some((5, r5)))),
            ]
        );
    };
    check(&store);
    // A retried batch answers with the companies as they were created.
    let replayed = store
        .write(Write::CreateCompanies {
            companies: vec![company("a", 1), company("b", 1), company("c", 1)],
            request: Some(request),
        })
        .await
        .unwrap();
    assert!(replayed.replayed);
    assert_eq!(replayed.entities, created.entities);
    store.close().await.unwrap();
    drop(store);
    check(&open(dir.path(), Durability::Fsync));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn change_log_reads_racing_updates_see_each_revisions_own_images() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), Durability::None);
    let (ids, first) = create_companies(&store, 50).await;
    let writer = {
        let store = store.clone();
        let ids = ids.clone();
        tokio::spawn(async move {
            let mut revisions = vec![first; ids.len()];
            let mut rng = Lcg(7);
            for n in 1..=400 {
                let i = rng.next(ids.len() as u64) as usize;
                revisions[i] = update(&store, &ids[i], n, revisions[i]).await;
            }
        })
    };
    // Every event, read while updates write out the entries that pointed at
    // the companies, carries the images of its own revision.
    let mut reads = 0;
    while !writer.is_finished() || reads == 0 {
        let reader = store.clone();
        let events = tokio::task::spawn_blocking(move || reader.read_changes((1, 0), 1000))
            .await
            .unwrap()
            .unwrap()
            .events;
        for e in &events {
            let (before, after) = images(e);
            assert_eq!(after.map(|(_, r)| r), Some(e.revision), "{e:?}");
            if let Some((_, r)) = before {
                assert!(r < e.revision, "{e:?}");
            }
        }
        reads += 1;
    }
    writer.await.unwrap();
}

/// The store's sled database, opened as the store opens it (compressed:
/// the default).
fn raw_db(dir: &std::path::Path) -> sled::Db {
    sled::Config::new()
        .path(dir)
        .use_compression(true)
        .open()
        .unwrap()
}

/// Sets the store's on-disk format marker, as an older or newer build
/// would have left it.
fn set_format(dir: &std::path::Path, format: u64) {
    let db = raw_db(dir);
    db.open_tree("meta")
        .unwrap()
        .insert("format", &format.to_be_bytes())
        .unwrap();
    db.flush().unwrap();
}

fn format_of(dir: &std::path::Path) -> Option<u64> {
    let db = raw_db(dir);
    let v = db.open_tree("meta").unwrap().get("format").unwrap()?;
    Some(u64::from_be_bytes(v.as_ref().try_into().unwrap()))
}

#[tokio::test]
async fn a_format_1_store_is_read_and_upgraded_and_a_newer_one_refused() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = open(dir.path(), Durability::Fsync);
        store
            .write(Write::CreateCompanies {
                companies: vec![company("a", 1)],
                request: None,
            })
            .await
            .unwrap();
        store.close().await.unwrap();
    }
    assert_eq!(format_of(dir.path()), Some(2));
    set_format(dir.path(), 1);
    {
        let store = open(dir.path(), Durability::Fsync);
        assert_eq!(store.company_count().unwrap(), 1);
        assert_eq!(store.read_changes((1, 0), 10).unwrap().events.len(), 1);
        store.close().await.unwrap();
    }
    assert_eq!(
        format_of(dir.path()),
        Some(2),
        "marked as the format it now holds"
    );

    set_format(dir.path(), 3);
    let mut config = StoreConfig::new(dir.path());
    config.durability = Durability::Fsync;
    match try_open(config) {
        Err(StoreError::Corrupt(why)) => assert!(why.contains("format 3"), "{why}"),
        other => panic!("a newer format must be refused: {:?}", other.err()),
    }
}

/// A store whose writer is held on its first commit (a park, revision 1)
/// until [`Held::commit_queued`] has queued the given writes behind it,
/// so they are taken as groups exactly as the queue holds them.
struct Held {
    store: std::sync::Arc<Store>,
    groups: std::sync::Arc<std::sync::Mutex<Vec<usize>>>,
    first: tokio::task::JoinHandle<Result<zgc_store::WriteOutcome, StoreError>>,
    release: std::sync::mpsc::Sender<()>,
}

impl Held {
    async fn open(dir: &std::path::Path) -> Self {
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::sync::{Arc, Mutex};
        use zgc_store::CommitHook;

        let groups = Arc::new(Mutex::new(Vec::new()));
        let (entered_tx, entered_rx) = tokio::sync::oneshot::channel::<()>();
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        let entered = Mutex::new(Some(entered_tx));
        let release_rx = Mutex::new(release_rx);
        let held = AtomicBool::new(false);
        let recorded = groups.clone();
        let mut config = StoreConfig::new(dir);
        config.on_commit = Some(CommitHook(Arc::new(move |n, _| {
            recorded.lock().unwrap().push(n);
            if !held.swap(true, Ordering::SeqCst) {
                if let Some(tx) = entered.lock().unwrap().take() {
                    let _ = tx.send(());
                }
                let _ = release_rx.lock().unwrap().recv();
            }
        })));
        let store = Arc::new(Store::open(config).unwrap());
        let first = tokio::spawn({
            let store = store.clone();
            async move {
                store
                    .write(Write::CreatePark {
                        park: Park {
                            name: "parks/p".into(),
                            ..Default::default()
                        },
                        request: None,
                    })
                    .await
            }
        });
        entered_rx.await.unwrap();
        Self {
            store,
            groups,
            first,
            release: release_tx,
        }
    }

    /// Queues `writes` (a first poll sends each), releases the writer, and
    /// returns their answers and the sizes of the groups committed.
    async fn commit_queued(
        self,
        writes: Vec<Write>,
    ) -> (
        Vec<Result<zgc_store::WriteOutcome, StoreError>>,
        Vec<usize>,
        std::sync::Arc<Store>,
    ) {
        use std::future::Future;
        let mut pending: Vec<_> = writes
            .into_iter()
            .map(|w| {
                let store = self.store.clone();
                Box::pin(async move { store.write(w).await })
            })
            .collect();
        for fut in &mut pending {
            std::future::poll_fn(|cx| {
                assert!(fut.as_mut().poll(cx).is_pending());
                std::task::Poll::Ready(())
            })
            .await;
        }
        self.release.send(()).unwrap();
        assert_eq!(self.first.await.unwrap().unwrap().revision, 1);
        let mut out = Vec::new();
        for fut in pending {
            out.push(fut.await);
        }
        let groups = self.groups.lock().unwrap().clone();
        (out, groups, self.store)
    }
}

/// Writes queued while the writer is busy are committed as one group, in
/// one transaction. Each is planned on top of the group's earlier ones:
/// what they create, change, delete, count and remember is seen by the
/// writes after them before any of it is committed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_plans_each_write_on_top_of_the_ones_before_it() {
    use zgc_store::RequestKey;

    let dir = tempfile::tempdir().unwrap();
    let held = Held::open(dir.path()).await;
    let in_park = |id: &str, employees| Company {
        park: "parks/p".into(),
        ..company(id, employees)
    };
    let request = RequestKey {
        request_id: "create-a".into(),
        fingerprint: vec![7],
    };
    let mut branch = company("b", 1);
    branch.parent_company = "companies/a".into();
    let delete = |name: &str, expected_revision| Write::DeleteCompany {
        name: name.into(),
        expected_revision,
    };
    let delete_park = || Write::DeletePark {
        name: "parks/p".into(),
        expected_revision: None,
    };
    // The park is revision 1; the group's commits take 2, 3, ...
    let writes = vec![
        Write::CreateCompanies {
            companies: vec![in_park("a", 10)],
            request: Some(request.clone()),
        },
        Write::UpdateCompany {
            company: in_park("a", 20),
            expected_revision: 2,
        },
        Write::CreateCompanies {
            companies: vec![branch],
            request: None,
        },
        Write::CreateCompanies {
            companies: vec![company("a", 1)],
            request: None,
        },
        Write::CreateCompanies {
            companies: vec![in_park("a", 10)],
            request: Some(request),
        },
        delete_park(),
        delete("companies/a", Some(3)),
        delete("companies/b", None),
        delete("companies/a", Some(3)),
        delete_park(),
    ];
    let n = writes.len();
    let (out, groups, store) = held.commit_queued(writes).await;
    assert_eq!(groups, vec![1, n], "one group behind the first");

    let revision = |i: usize| out[i].as_ref().unwrap().revision;
    assert_eq!(revision(0), 2);
    assert_eq!(revision(1), 3, "the update saw the created company");
    assert_eq!(revision(2), 4, "the branch saw its parent");
    assert!(
        matches!(out[3], Err(StoreError::AlreadyExists { .. })),
        "{:?}",
        out[3]
    );
    let replayed = out[4].as_ref().unwrap();
    assert!(replayed.replayed, "the retry saw its request's record");
    assert_eq!(replayed.entities, out[0].as_ref().unwrap().entities);
    assert!(
        matches!(&out[5], Err(StoreError::InUse { by, .. }) if by == "companies/a"),
        "{:?}",
        out[5]
    );
    assert!(
        matches!(&out[6], Err(StoreError::InUse { by, .. }) if by == "companies/b"),
        "{:?}",
        out[6]
    );
    assert_eq!(revision(7), 5);
    assert_eq!(
        revision(8),
        6,
        "a branch deleted earlier in the group frees its parent"
    );
    assert_eq!(
        revision(9),
        7,
        "companies deleted earlier in the group free the park"
    );

    let check = |store: &Store| {
        assert_eq!(store.revision(), 7);
        assert_eq!(store.company_count().unwrap(), 0);
        assert!(state(store).is_empty());
        let events = store.read_changes((2, 0), 100).unwrap().events;
        let seen: Vec<_> = events.iter().map(|e| (e.revision, images(e))).collect();
        assert_eq!(
            seen,
            vec![
                (2, (None, Some((10, 2)))),
                (3, (Some((10, 2)), Some((20, 3)))),
                (4, (None, Some((1, 4)))),
                (5, (Some((1, 4)), None)),
                (6, (Some((20, 3)), None)),
                (7, (None, None)),
            ],
            "each revision keeps its own images"
        );
    };
    check(&store);
    store.close().await.unwrap();
    drop(store);
    check(&open(dir.path(), Durability::Fsync));
}

/// A group takes no further write once it holds 4,096 entities, so the
/// changes it keeps in memory until it commits stay bounded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_stops_taking_writes_once_it_holds_4096_entities() {
    let dir = tempfile::tempdir().unwrap();
    let held = Held::open(dir.path()).await;
    let batches: Vec<Write> = (0..6)
        .map(|b| Write::CreateCompanies {
            companies: (0..1000)
                .map(|i| company(&format!("c{b}-{i}"), 1))
                .collect(),
            request: None,
        })
        .collect();
    let (out, groups, store) = held.commit_queued(batches).await;
    assert!(out.iter().all(Result::is_ok), "{out:?}");
    assert_eq!(
        groups,
        vec![1, 5, 1],
        "the fifth batch takes the group past 4,096 companies; the sixth waits"
    );
    assert_eq!(store.company_count().unwrap(), 6000);
}

/// Reads by ID racing updates while a reopened store loads its companies
/// into memory: no read sees a company older than what was acknowledged
/// before it started, and once every company is held, every read sees the
/// last write (the loader never put back a company a write replaced) and a
/// deleted company is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_by_id_never_go_back_to_a_replaced_company() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

    let dir = tempfile::tempdir().unwrap();
    let (ids, first) = {
        let store = open(dir.path(), Durability::Fsync);
        // Several of the loader's steps, and past the first dictionary.
        let created = create_companies(&store, 5000).await;
        store.close().await.unwrap();
        created
    };
    let store = open(dir.path(), Durability::None);
    // The employees each company was last acknowledged with: every update
    // sets a larger number than any before it.
    let acked: Arc<Vec<AtomicI32>> = Arc::new(ids.iter().map(|_| AtomicI32::new(0)).collect());
    let done = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..2u64)
        .map(|r| {
            let (store, ids, acked, done) =
                (store.clone(), ids.clone(), acked.clone(), done.clone());
            tokio::task::spawn_blocking(move || {
                let mut rng = Lcg(r + 11);
                let mut reads = 0u64;
                while !done.load(Ordering::Acquire) || reads == 0 {
                    let i = rng.next(ids.len() as u64) as usize;
                    let floor = acked[i].load(Ordering::Acquire);
                    let got = store.get_company(&ids[i]).unwrap().unwrap().employees;
                    assert!(
                        got >= floor,
                        "{}: read {got} after {floor} was acknowledged",
                        ids[i]
                    );
                    reads += 1;
                }
                reads
            })
        })
        .collect();
    let mut revisions = vec![first; ids.len()];
    let mut rng = Lcg(5);
    for n in 1..=3_000 {
        let i = rng.next(ids.len() as u64) as usize;
        revisions[i] = update(&store, &ids[i], n, revisions[i]).await;
        acked[i].store(n, Ordering::Release);
    }
    done.store(true, Ordering::Release);
    for r in readers {
        assert!(r.await.unwrap() > 0);
    }
    // The loader ends on its own; wait for it (a condition, not a time).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !store.companies_in_memory().unwrap().loaded {
        assert!(
            std::time::Instant::now() < deadline,
            "the loader never finished"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let held = store.companies_in_memory().unwrap();
    assert_eq!(held.companies, 5000);
    for (i, id) in ids.iter().enumerate() {
        let want = acked[i].load(Ordering::Acquire);
        assert_eq!(
            store.get_company(id).unwrap().unwrap().employees,
            want,
            "{id}"
        );
    }
    let last = revisions[0];
    store
        .write(Write::DeleteCompany {
            name: format!("companies/{}", ids[0]),
            expected_revision: Some(last),
        })
        .await
        .unwrap();
    assert_eq!(
        store.get_company(&ids[0]).unwrap(),
        None,
        "a deleted company is gone"
    );
    assert_eq!(store.companies_in_memory().unwrap().companies, 4999);
}

#[tokio::test]
async fn a_store_keeps_the_compression_it_was_created_with() {
    // sled refuses to open a database with the other setting; a store made
    // before compression was the default (or with it off) must still open
    // with the default configuration, and stay as it was made.
    for created_compressed in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let mut config = StoreConfig::new(dir.path());
        config.compression = created_compressed;
        let store = open_config(config);
        assert_eq!(store.compressed(), created_compressed);
        store
            .write(Write::CreateCompanies {
                companies: (0..300).map(|i| company(&format!("c{i}"), i)).collect(),
                request: None,
            })
            .await
            .unwrap();
        store.close().await.unwrap();
        drop(store);

        let mut config = StoreConfig::new(dir.path());
        config.compression = !created_compressed;
        let store = open_config(config);
        assert_eq!(store.compressed(), created_compressed);
        assert_eq!(store.get_company("c299").unwrap().unwrap().employees, 299);
        assert_eq!(state(&store).len(), 300);
        store.close().await.unwrap();
    }
}
