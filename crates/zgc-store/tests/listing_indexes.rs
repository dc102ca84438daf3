//! Listings read from the store's indexes against a brute-force scan of
//! the same store: through creates, updates and deletes committed by the
//! writer, listings of an earlier revision while later ones apply, and a
//! reopen that loads the indexes from disk.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use proptest::prelude::*;
use zgc_index::Listing;
use zgc_index::records::{CompanyRecord, ParkRecord, Resource};
use zgc_proto::registry::v1::{Company, Park};
use zgc_proto::types::v1::{Date, Location};
use zgc_query::{Filter, OrderBy, SortKey};
use zgc_store::{Durability, IndexedPage, Store, StoreConfig, Write};

mod support;

const COMPANY_FILTERS: &[&str] = &[
    "",
    r#"park = "parks/a" AND employees >= 2"#,
    r#"location.province = "Hebei" AND high_tech"#,
    r#"display_name = "Beta""#,
    r#"sectors:"ai""#,
    "NOT listed",
    r#"park = "parks/a" OR employees < 1"#,
    r#"parent_company = "companies/c01""#,
    r#"labels.source = "a" AND NOT investment_cny > 1000"#,
    "founded.year >= 2000",
];
const COMPANY_ORDERS: &[&str] = &[
    "",
    "employees desc",
    "investment_cny desc",
    "display_name",
    "founded, create_time desc",
];
const PARK_FILTERS: &[&str] = &[
    "",
    r#"parent_park = "parks/a""#,
    r#"display_name >= "B""#,
    "kind = PARK_KIND_INCUBATOR",
];
const PARK_ORDERS: &[&str] = &["", "display_name desc", "established"];

#[derive(Debug, Clone)]
enum Op {
    Create(Vec<Company>),
    Update(Box<Company>),
    Delete(usize),
}

fn company() -> impl Strategy<Value = Company> {
    (
        (
            0..24usize,
            prop::sample::select(&["Alpha", "Beta", "beta", "Z"][..]),
        ),
        (
            prop::sample::select(&["", "parks/a", "parks/b"][..]),
            prop::option::of(0..3usize),
            prop::option::of(prop::sample::select(&["Hebei", "Tianjin"][..])),
        ),
        (0..4i32, 0..3i64, any::<bool>(), any::<bool>()),
        (
            prop::collection::vec(prop::sample::select(&["ai", "bio"][..]), 0..2),
            prop::option::of(prop::sample::select(&["a", "b"][..])),
            prop::option::of(1999..2002i32),
        ),
    )
        .prop_map(
            |(
                (n, display),
                (park, parent, province),
                (employees, inv, high_tech, listed),
                (sectors, source, year),
            )| {
                Company {
                    name: format!("companies/c{n:02}"),
                    uid: format!("uid-{n}"),
                    display_name: display.into(),
                    park: park.into(),
                    parent_company: parent.map_or(String::new(), |p| format!("companies/c{p:02}")),
                    location: province.map(|p| Location {
                        province: p.into(),
                        city: "X".into(),
                        district: String::new(),
                    }),
                    employees,
                    investment_cny: inv * 1000,
                    high_tech,
                    listed,
                    sectors: sectors.into_iter().map(String::from).collect(),
                    labels: source
                        .map(|s| [("source".to_string(), s.to_string())].into())
                        .unwrap_or_default(),
                    founded: year.map(|year| Date {
                        year,
                        month: 1,
                        day: 1,
                    }),
                    ..Default::default()
                }
            },
        )
}

fn ops() -> impl Strategy<Value = Vec<Op>> {
    prop::collection::vec(
        prop_oneof![
            2 => prop::collection::vec(company(), 1..6).prop_map(Op::Create),
            2 => company().prop_map(|c| Op::Update(Box::new(c))),
            1 => (0..24usize).prop_map(Op::Delete),
        ],
        0..24,
    )
}

/// Applies an operation as the registry would (with the stored revision
/// as the expected one); a write the store refuses (a missing reference,
/// a name taken, a company with branches) changes nothing.
async fn apply(store: &Store, op: Op) {
    let write = match op {
        Op::Create(companies) => Write::CreateCompanies {
            companies,
            request: None,
        },
        Op::Update(company) => {
            let id = company.name.trim_start_matches("companies/").to_string();
            let Some(current) = store.get_company(&id).unwrap() else {
                return;
            };
            Write::UpdateCompany {
                company: *company,
                expected_revision: current.revision,
            }
        }
        Op::Delete(n) => Write::DeleteCompany {
            name: format!("companies/c{n:02}"),
            expected_revision: None,
        },
    };
    let _ = store.write(write).await;
}

fn key_of<R: Resource>(record: &R, order: &OrderBy) -> SortKey {
    SortKey {
        values: order
            .fields()
            .iter()
            .map(|(f, _)| record.sort_value(f))
            .collect(),
        name: record.name().to_string(),
    }
}

/// Every page of every listing, from the indexes as of `revision`,
/// against the brute-force answer over `all` (the records as of it).
fn check<R: Resource>(
    all: &[R],
    filters: &[&str],
    orders: &[&str],
    list: impl Fn(&Listing<'_>) -> Option<IndexedPage<R>>,
) -> Result<(), TestCaseError> {
    let by_name: BTreeMap<&str, &R> = all.iter().map(|r| (r.name(), r)).collect();
    for text in filters {
        let filter = Filter::parse(text, &R::SCHEMA).unwrap();
        for order_text in orders {
            let order = OrderBy::parse(order_text, &R::SCHEMA).unwrap();
            let mut expected: Vec<&R> = all.iter().filter(|r| filter.matches(*r)).collect();
            expected.sort_by(|a, b| order.compare(&key_of(*a, &order), &key_of(*b, &order)));
            for limit in [1, 3] {
                let mut after: Option<SortKey> = None;
                let mut seen = 0;
                loop {
                    let listing = Listing {
                        filter: &filter,
                        order: &order,
                        after: after.as_ref(),
                        limit,
                    };
                    let page = list(&listing);
                    prop_assert!(page.is_some(), "the loaded indexes answer");
                    let page = page.unwrap();
                    prop_assert_eq!(
                        page.total,
                        expected.len() as u64,
                        "{} by {}",
                        text,
                        order_text
                    );
                    let got: Vec<&str> = page.items.iter().map(|r| r.name()).collect();
                    let want: Vec<&str> = expected
                        .iter()
                        .skip(seen)
                        .take(limit)
                        .map(|r| r.name())
                        .collect();
                    prop_assert_eq!(&got, &want, "{} by {} from {}", text, order_text, seen);
                    // The items are the records as of the revision too.
                    for item in &page.items {
                        let held = by_name.get(item.name()).copied();
                        prop_assert_eq!(
                            held.map(|r| key_of(r, &order)),
                            Some(key_of(item, &order))
                        );
                    }
                    seen += got.len();
                    match page.items.last() {
                        Some(last) if got.len() == limit => after = Some(key_of(last, &order)),
                        _ => break,
                    }
                }
                prop_assert_eq!(seen, expected.len());
            }
        }
    }
    Ok(())
}

fn scan_companies(store: &Store) -> Vec<CompanyRecord> {
    store
        .companies_after(None)
        .map(|c| CompanyRecord(c.unwrap()))
        .collect()
}

fn scan_parks(store: &Store) -> Vec<ParkRecord> {
    store
        .parks_after(None)
        .map(|p| ParkRecord(p.unwrap()))
        .collect()
}

fn check_now(store: &Store) -> Result<(), TestCaseError> {
    let revision = store.revision();
    check(
        &scan_companies(store),
        COMPANY_FILTERS,
        COMPANY_ORDERS,
        |l| {
            store
                .list_companies(l, revision)
                .unwrap()
                .map(|p| IndexedPage {
                    items: p.items.into_iter().map(CompanyRecord).collect(),
                    total: p.total,
                })
        },
    )?;
    check(&scan_parks(store), PARK_FILTERS, PARK_ORDERS, |l| {
        store.list_parks(l, revision).unwrap().map(|p| IndexedPage {
            items: p.items.into_iter().map(ParkRecord).collect(),
            total: p.total,
        })
    })
}

/// Opens the store in `dir` (retrying while the store closed just before
/// holds its lock).
fn open(dir: &std::path::Path) -> Store {
    let mut config = StoreConfig::new(dir);
    config.durability = Durability::Flush;
    support::try_open(config).unwrap()
}

async fn run(first: Vec<Op>, second: Vec<Op>) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    for (name, parent, kind) in [("parks/a", "", 1), ("parks/b", "parks/a", 5)] {
        let park = Park {
            name: name.into(),
            uid: name.into(),
            display_name: name.to_uppercase(),
            parent_park: parent.into(),
            kind,
            ..Default::default()
        };
        store
            .write(Write::CreatePark {
                park,
                request: None,
            })
            .await
            .unwrap();
    }
    store.indexes_loaded().await;
    for op in first {
        apply(&store, op).await;
    }
    check_now(&store)?;

    // A listing of this revision, read while later writes apply.
    let then = store.revision();
    let companies_then = scan_companies(&store);
    for op in second {
        apply(&store, op).await;
    }
    check_now(&store)?;
    check(&companies_then, COMPANY_FILTERS, COMPANY_ORDERS, |l| {
        store.list_companies(l, then).unwrap().map(|p| IndexedPage {
            items: p.items.into_iter().map(CompanyRecord).collect(),
            total: p.total,
        })
    })?;

    // Reopened: the loader builds the indexes from what is stored.
    store.close().await.unwrap();
    assert!(
        store
            .wait_until_last(std::time::Duration::from_secs(30))
            .await
    );
    drop(store);
    let store = open(dir.path());
    store.indexes_loaded().await;
    let stats = store.indexes().unwrap();
    prop_assert!(stats.loaded);
    prop_assert_eq!(stats.companies, scan_companies(&store).len() as u64);
    check_now(&store)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn listings_from_the_indexes_equal_a_scan(first in ops(), second in ops()) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(run(first, second))?;
    }
}

/// With the indexes off, the store says so and listings scan.
#[tokio::test]
async fn without_indexes_the_store_answers_nothing_from_them() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = StoreConfig::new(dir.path());
    config.listing_indexes = false;
    let store = Store::open(config).unwrap();
    store.indexes_loaded().await;
    assert_eq!(store.indexes(), None);
    let filter = Filter::default();
    let order = OrderBy::default();
    let listing = Listing {
        filter: &filter,
        order: &order,
        after: None,
        limit: 10,
    };
    assert_eq!(
        store.list_companies(&listing, store.revision()).unwrap(),
        None
    );
}
