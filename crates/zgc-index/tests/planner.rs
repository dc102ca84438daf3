//! The planner against brute force: for random records, random changes
//! and random filters and orders, every page and every total the indexes
//! answer equals what evaluating the filter on every record and sorting
//! the matches gives.

use std::collections::BTreeMap;

use proptest::prelude::*;
use zgc_index::records::{COMPANY_SCHEMA, CompanyRecord, PARK_SCHEMA, ParkRecord, Resource};
use zgc_index::{Index, Listed, Listing};
use zgc_proto::registry::v1::{Company, Park};
use zgc_proto::types::v1::{Date, Location};
use zgc_query::filter::{CmpOp, Expr, FieldRef, HasArg, Literal};
use zgc_query::{Filter, OrderBy, Record, SortKey};

// ------------------------------------------------------------- records

fn pick<T: Clone + std::fmt::Debug + 'static>(items: &'static [T]) -> impl Strategy<Value = T> {
    proptest::sample::select(items)
}

const STRS: &[&str] = &["", "Alpha", "alpha", "Beta", "Hebei", "Tianjin", "a", "b"];
const PARKS: &[&str] = &["", "parks/a", "parks/b", "parks/c"];
const SECTORS: &[&str] = &["ai", "bio", "ev", "new-materials"];
const LABEL_KEYS: &[&str] = &["source", "seed", "x"];
const LABEL_VALUES: &[&str] = &["", "a", "b", "synthetic"];

fn location() -> impl Strategy<Value = Option<Location>> {
    proptest::option::of(
        (pick(STRS), pick(STRS), pick(STRS)).prop_map(|(p, c, d)| Location {
            province: p.into(),
            city: c.into(),
            district: d.into(),
        }),
    )
}

fn date() -> impl Strategy<Value = Option<Date>> {
    proptest::option::of(
        (pick(&[0, 1999, 2000, 2024]), 0..3i32, 0..3i32).prop_map(|(year, month, day)| Date {
            year,
            month,
            day,
        }),
    )
}

fn labels() -> impl Strategy<Value = BTreeMap<String, String>> {
    proptest::collection::btree_map(
        pick(LABEL_KEYS).prop_map(String::from),
        pick(LABEL_VALUES).prop_map(String::from),
        0..3,
    )
}

fn sectors() -> impl Strategy<Value = Vec<String>> {
    proptest::collection::vec(pick(SECTORS).prop_map(String::from), 0..3)
}

/// Names from a small set, so that changes hit held records.
const NAMES: usize = 40;

fn company() -> impl Strategy<Value = CompanyRecord> {
    (
        (0..NAMES, pick(STRS), location(), pick(PARKS), pick(PARKS)),
        (
            sectors(),
            labels(),
            0..5i32,
            -2..3i64,
            any::<bool>(),
            any::<bool>(),
        ),
        (date(), 0..4i64),
    )
        .prop_map(
            |(
                (n, display, location, park, parent),
                (sectors, labels, employees, investment, high_tech, listed),
                (founded, created),
            )| {
                CompanyRecord(Company {
                    name: format!("companies/c{n:02}"),
                    display_name: display.into(),
                    location,
                    park: park.into(),
                    parent_company: parent.replace("parks/", "companies/c"),
                    sectors,
                    labels,
                    employees,
                    investment_cny: investment * 1000,
                    high_tech,
                    listed,
                    founded,
                    create_time: Some(prost_types::Timestamp {
                        seconds: created,
                        nanos: 0,
                    }),
                    ..Default::default()
                })
            },
        )
}

fn park() -> impl Strategy<Value = ParkRecord> {
    (
        (0..NAMES, pick(STRS), location(), pick(PARKS), 0..4i32),
        (sectors(), labels(), date(), 0..4i64),
    )
        .prop_map(
            |((n, display, location, parent, kind), (sectors, labels, established, created))| {
                ParkRecord(Park {
                    name: format!("parks/p{n:02}"),
                    display_name: display.into(),
                    location,
                    parent_park: parent.into(),
                    kind,
                    sectors,
                    labels,
                    established,
                    create_time: Some(prost_types::Timestamp {
                        seconds: created,
                        nanos: 0,
                    }),
                    ..Default::default()
                })
            },
        )
}

// ------------------------------------------------------------- filters

fn field(path: &str, key: Option<&str>) -> FieldRef {
    FieldRef {
        path: path.into(),
        key: key.map(String::from),
    }
}

fn op() -> impl Strategy<Value = CmpOp> {
    pick(&[
        CmpOp::Eq,
        CmpOp::Ne,
        CmpOp::Lt,
        CmpOp::Le,
        CmpOp::Gt,
        CmpOp::Ge,
    ])
}

/// A comparison or has-restriction on one of the schema's fields, with
/// a literal of its type from the values the records use.
fn leaf(schema: &'static zgc_query::Schema) -> BoxedStrategy<Expr> {
    let strings: Vec<&'static str> = schema
        .filter_fields
        .iter()
        .filter(|(_, t)| matches!(t, zgc_query::FieldType::String))
        .map(|(p, _)| *p)
        .collect();
    let ints: Vec<&'static str> = schema
        .filter_fields
        .iter()
        .filter(|(_, t)| matches!(t, zgc_query::FieldType::Int))
        .map(|(p, _)| *p)
        .collect();
    let bools: Vec<&'static str> = schema
        .filter_fields
        .iter()
        .filter(|(_, t)| matches!(t, zgc_query::FieldType::Bool))
        .map(|(p, _)| *p)
        .collect();
    let string_values: Vec<&'static str> = STRS
        .iter()
        .chain(PARKS)
        .copied()
        .chain([
            "companies/ca",
            "PARK_KIND_SCIENCE_PARK",
            "PARK_KIND_INCUBATOR",
        ])
        .collect();
    let mut leaves: Vec<BoxedStrategy<Expr>> = vec![
        (
            proptest::sample::select(strings),
            op(),
            proptest::sample::select(string_values),
        )
            .prop_map(|(f, op, v)| Expr::Compare {
                field: field(f, None),
                op,
                value: Literal::Str(v.into()),
            })
            .boxed(),
        (pick(LABEL_KEYS), op(), pick(LABEL_VALUES))
            .prop_map(|(k, op, v)| Expr::Compare {
                field: field("labels", Some(k)),
                op,
                value: Literal::Str(v.into()),
            })
            .boxed(),
        proptest::option::of(pick(SECTORS))
            .prop_map(|v| Expr::Has {
                field: field("sectors", None),
                arg: v.map_or(HasArg::Any, |v| HasArg::Value(v.into())),
            })
            .boxed(),
        proptest::option::of(pick(LABEL_KEYS))
            .prop_map(|k| Expr::Has {
                field: field("labels", None),
                arg: k.map_or(HasArg::Any, |k| HasArg::Value(k.into())),
            })
            .boxed(),
        (pick(LABEL_KEYS), proptest::option::of(pick(LABEL_VALUES)))
            .prop_map(|(k, v)| Expr::Has {
                field: field("labels", Some(k)),
                arg: v.map_or(HasArg::Any, |v| HasArg::Value(v.into())),
            })
            .boxed(),
    ];
    if !ints.is_empty() {
        leaves.push(
            (
                proptest::sample::select(ints),
                op(),
                pick(&[-2000i64, -1, 0, 1, 2, 3, 1000, 1999, 2000, 2001]),
            )
                .prop_map(|(f, op, v)| Expr::Compare {
                    field: field(f, None),
                    op,
                    value: Literal::Int(v),
                })
                .boxed(),
        );
    }
    if !bools.is_empty() {
        leaves.push(
            (
                proptest::sample::select(bools),
                pick(&[CmpOp::Eq, CmpOp::Ne]),
                any::<bool>(),
            )
                .prop_map(|(f, op, v)| Expr::Compare {
                    field: field(f, None),
                    op,
                    value: Literal::Bool(v),
                })
                .boxed(),
        );
    }
    proptest::strategy::Union::new(leaves).boxed()
}

fn expr(schema: &'static zgc_query::Schema) -> impl Strategy<Value = Expr> {
    leaf(schema).prop_recursive(3, 12, 3, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 2..4).prop_map(Expr::And),
            proptest::collection::vec(inner.clone(), 2..4).prop_map(Expr::Or),
            inner.prop_map(|e| Expr::Not(Box::new(e))),
        ]
    })
}

/// A filter as a client would send it: printed, then parsed, so only
/// what the parser accepts is tried.
fn filter(schema: &'static zgc_query::Schema) -> impl Strategy<Value = Filter> {
    proptest::option::of(expr(schema)).prop_filter_map("the parser takes it", move |e| {
        let text = Filter::from_expr(e).to_string();
        Filter::parse(&text, schema).ok()
    })
}

fn order(schema: &'static zgc_query::Schema) -> impl Strategy<Value = OrderBy> {
    proptest::collection::vec(
        (proptest::sample::select(schema.order_fields), any::<bool>()),
        0..3,
    )
    .prop_filter_map("distinct fields", move |fields| {
        let text = fields
            .iter()
            .map(|(f, desc)| {
                if *desc {
                    format!("{f} desc")
                } else {
                    (*f).to_string()
                }
            })
            .collect::<Vec<_>>()
            .join(", ");
        OrderBy::parse(&text, schema).ok()
    })
}

// -------------------------------------------------------------- oracle

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

/// Every page of the listing, by brute force: all matches, sorted.
fn brute_force<R: Resource>(
    held: &BTreeMap<String, R>,
    filter: &Filter,
    order: &OrderBy,
) -> Vec<SortKey> {
    let mut keys: Vec<SortKey> = held
        .values()
        .filter(|r| filter.matches(*r as &dyn Record))
        .map(|r| key_of(r, order))
        .collect();
    keys.sort_by(|a, b| order.compare(a, b));
    keys
}

/// Pages through the whole listing with `limit` per page, as of the
/// state `held` (the index's own, or an earlier one given the records
/// `changed` since), checking each page and total against brute force.
fn check_listing<R: Resource>(
    index: &Index<R>,
    held: &BTreeMap<String, R>,
    changed: &[(String, Option<R>)],
    filter: &Filter,
    order: &OrderBy,
    limit: usize,
) -> Result<(), TestCaseError> {
    let expected = brute_force(held, filter, order);
    let mut after: Option<SortKey> = None;
    let mut seen = 0;
    loop {
        let listing = Listing {
            filter,
            order,
            after: after.as_ref(),
            limit,
        };
        let Listed { names, total } = if changed.is_empty() {
            index.list(&listing)
        } else {
            index.list_as_of(&listing, changed)
        };
        prop_assert_eq!(
            total,
            expected.len() as u64,
            "total of {} by {}",
            filter,
            order
        );
        let want: Vec<&str> = expected
            .iter()
            .skip(seen)
            .take(limit)
            .map(|k| k.name.as_str())
            .collect();
        prop_assert_eq!(
            names.iter().map(String::as_str).collect::<Vec<_>>(),
            want,
            "page from {} of {} by {}",
            seen,
            filter,
            order
        );
        seen += names.len();
        match names.last() {
            Some(last) if names.len() == limit => {
                after = Some(key_of(&held[last], order));
            }
            _ => break,
        }
    }
    prop_assert_eq!(seen, expected.len());
    Ok(())
}

#[derive(Debug, Clone)]
enum Change<R> {
    Put(R),
    Delete(usize),
}

fn changes<R: Resource + std::fmt::Debug>(
    record: impl Strategy<Value = R>,
) -> impl Strategy<Value = Vec<Change<R>>> {
    proptest::collection::vec(
        prop_oneof![
            4 => record.prop_map(Change::Put),
            1 => (0..NAMES).prop_map(Change::Delete),
        ],
        0..120,
    )
}

/// What a history of changes leaves: the index after all of them, the
/// records after all of them, the records after the first `split` of
/// them, and every record changed after those with its state then.
struct History<R: Resource> {
    index: Index<R>,
    now: BTreeMap<String, R>,
    then: BTreeMap<String, R>,
    changed: Vec<(String, Option<R>)>,
}

/// Applies the changes to an index and to a plain map, as the store
/// does: the state held is replaced by the new one.
fn apply<R: Resource>(changes: Vec<Change<R>>, split: usize, prefix: &str) -> History<R> {
    let mut index = Index::new();
    let mut now: BTreeMap<String, R> = BTreeMap::new();
    let mut then = BTreeMap::new();
    let mut changed: BTreeMap<String, Option<R>> = BTreeMap::new();
    let count = changes.len();
    for (i, change) in changes.into_iter().enumerate() {
        if i == split {
            then = now.clone();
        }
        let name = match &change {
            Change::Put(r) => r.name().to_string(),
            Change::Delete(n) => format!("{prefix}{n:02}"),
        };
        if i >= split {
            changed
                .entry(name.clone())
                .or_insert_with(|| now.get(&name).cloned());
        }
        match change {
            Change::Put(r) => {
                let old = now.insert(name, r.clone());
                index.replace(old.as_ref(), Some(&r));
            }
            Change::Delete(_) => {
                if let Some(old) = now.remove(&name) {
                    index.replace(Some(&old), None);
                }
            }
        }
    }
    if split >= count {
        then = now.clone();
    }
    History {
        index,
        now,
        then,
        changed: changed.into_iter().collect(),
    }
}

fn check_history<R: Resource>(
    history: &History<R>,
    queries: &[(Filter, OrderBy, usize)],
) -> Result<(), TestCaseError> {
    prop_assert_eq!(history.index.len(), history.now.len() as u64);
    for (filter, order, limit) in queries {
        check_listing(&history.index, &history.now, &[], filter, order, *limit)?;
        check_listing(
            &history.index,
            &history.then,
            &history.changed,
            filter,
            order,
            *limit,
        )?;
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn company_listings_equal_brute_force(
        changes in changes(company()),
        split in 0..150usize,
        queries in proptest::collection::vec(
            (filter(&COMPANY_SCHEMA), order(&COMPANY_SCHEMA), 1..6usize),
            1..6,
        ),
    ) {
        check_history(&apply(changes, split, "companies/c"), &queries)?;
    }

    #[test]
    fn park_listings_equal_brute_force(
        changes in changes(park()),
        split in 0..150usize,
        queries in proptest::collection::vec(
            (filter(&PARK_SCHEMA), order(&PARK_SCHEMA), 1..6usize),
            1..6,
        ),
    ) {
        check_history(&apply(changes, split, "parks/p"), &queries)?;
    }
}

/// An index holds each name once: a second insert under a held name
/// changes nothing, which is what lets a loader fill an index a writer
/// already keeps.
#[test]
fn an_insert_never_replaces_a_held_record() {
    let mut index: Index<CompanyRecord> = Index::new();
    let first = CompanyRecord(Company {
        name: "companies/a".into(),
        employees: 1,
        ..Default::default()
    });
    let stale = CompanyRecord(Company {
        employees: 99,
        ..first.0.clone()
    });
    assert!(index.insert(&first));
    assert!(!index.insert(&stale));
    let filter = Filter::parse("employees = 99", &COMPANY_SCHEMA).expect("parses");
    let order = OrderBy::default();
    let listed = index.list(&Listing {
        filter: &filter,
        order: &order,
        after: None,
        limit: 10,
    });
    assert_eq!(listed.total, 0);
    assert_eq!(index.len(), 1);
}
