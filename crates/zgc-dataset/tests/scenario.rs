//! The scenario reproduces every published figure (checked through the real
//! aggregation engine), the checked-in file is exactly the generator's
//! output, and the scale generator is deterministic.
//!
//! To regenerate `data/scenario.jsonl` after changing the generator:
//! `ZGC_WRITE_SCENARIO=1 cargo test -p zgc-dataset --test scenario`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use zgc_dataset::scenario::*;
use zgc_dataset::{SCENARIO_JSONL, generate, scenario, to_jsonl};
use zgc_proto::registry::v1::{ChangeEvent, ChangeType, entity};
use zgc_proto::stats::v1::*;
use zgc_proto::types::v1::{Date, Location};
use zgc_stats_engine::Engine;

#[test]
fn the_checked_in_file_is_the_generators_output() {
    let generated = to_jsonl(scenario()).unwrap();
    if std::env::var_os("ZGC_WRITE_SCENARIO").is_some() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/data/scenario.jsonl");
        std::fs::write(path, &generated).unwrap();
    }
    assert!(
        generated == SCENARIO_JSONL,
        "data/scenario.jsonl is stale: run ZGC_WRITE_SCENARIO=1 cargo test -p zgc-dataset --test scenario"
    );
}

fn engine() -> Engine {
    let mut e = Engine::new();
    for (i, entity) in scenario().into_iter().enumerate() {
        e.apply(&ChangeEvent {
            revision: i as u64 + 1,
            r#type: ChangeType::Created as i32,
            before: None,
            after: Some(entity),
        })
        .expect("the scenario applies");
    }
    e
}

fn park(name: &str, include_affiliates: bool) -> Option<Scope> {
    Some(Scope {
        selector: Some(scope::Selector::Park(format!("parks/{name}"))),
        include_affiliates,
    })
}

#[test]
fn every_record_is_labelled_and_parents_come_first() {
    let mut seen = std::collections::HashSet::new();
    for e in scenario() {
        let (name, labels, parent) = match e.kind.unwrap() {
            entity::Kind::Park(p) => (p.name, p.labels, p.parent_park),
            entity::Kind::Company(c) => (c.name, c.labels, c.parent_company),
        };
        assert!(labels.contains_key("source"), "{name} has no source label");
        assert!(
            parent.is_empty() || seen.contains(&parent),
            "{name} comes before its parent {parent}"
        );
        assert!(seen.insert(name.clone()), "{name} twice");
    }
}

#[test]
fn the_scenario_reproduces_the_published_figures() {
    let e = engine();

    // Baoding: about 90 companies, half of them from Beijing.
    let baoding = e.summary(park("baoding", false).as_ref()).unwrap();
    assert_eq!(baoding.company_count, BAODING_COMPANIES as i64);
    let from_beijing = baoding
        .relocation_origins
        .iter()
        .find(|o| o.province == "Beijing")
        .unwrap();
    assert_eq!(from_beijing.company_count, BAODING_FROM_BEIJING as i64);

    // Binhai: more than 30 companies in its first two months; 45 ZGC
    // programmes with 35 billion yuan.
    let first_two_months: f64 = e
        .time_series(&GetTimeSeriesRequest {
            scope: park("binhai", false),
            metric: SeriesMetric::CompaniesFounded as i32,
            granularity: Granularity::Month as i32,
            start: Some(Date {
                year: 2016,
                month: 11,
                day: 0,
            }),
            end: Some(Date {
                year: 2016,
                month: 12,
                day: 0,
            }),
            min_revision: 0,
        })
        .unwrap()
        .iter()
        .map(|p| p.value)
        .sum();
    assert!(first_two_months > 30.0, "{first_two_months}");
    let binhai = e.summary(park("binhai", false).as_ref()).unwrap();
    assert_eq!(binhai.branch_count, BINHAI_PROGRAMMES as i64);
    assert_eq!(binhai.investment_cny, BINHAI_INVESTMENT_CNY);

    // 687 ZGC branches in Tianjin and Hebei, January to July 2016; more
    // than 10,000 by the end of 2023.
    let in_tianjin_hebei = |start: Option<Date>, end: Option<Date>| -> i64 {
        e.branch_footprint(&GetBranchFootprintRequest {
            parent_scope: park("zgc", false),
            start,
            end,
            level: RegionLevel::Province as i32,
            min_revision: 0,
        })
        .unwrap()
        .into_iter()
        .filter(|r| {
            matches!(
                r.location.as_ref().unwrap().province.as_str(),
                "Tianjin" | "Hebei"
            )
        })
        .map(|r| r.branch_count)
        .sum()
    };
    assert_eq!(
        in_tianjin_hebei(
            Some(Date {
                year: 2016,
                month: 1,
                day: 0
            }),
            Some(Date {
                year: 2016,
                month: 7,
                day: 0
            })
        ),
        687
    );
    assert!(
        in_tianjin_hebei(
            None,
            Some(Date {
                year: 2023,
                month: 12,
                day: 31
            })
        ) > 10_000
    );

    // Luquan: 1,060 electronic-information companies, 2023 income above 85
    // billion, +34.9%; at least 50 companies from Beijing and Tianjin.
    let luquan = e.summary(park("luquan", false).as_ref()).unwrap();
    let ei = luquan
        .sectors
        .iter()
        .find(|s| s.sector == "electronic-information")
        .unwrap();
    assert_eq!(ei.company_count, 1060);
    let y2023 = luquan
        .figures_by_year
        .iter()
        .find(|f| f.year == 2023)
        .unwrap();
    assert!(y2023.revenue_cny > 85_000_000_000);
    assert_eq!(format!("{:.1}", y2023.revenue_yoy_percent.unwrap()), "34.9");
    let from_bj_tj: i64 = luquan
        .relocation_origins
        .iter()
        .filter(|o| o.province == "Beijing" || o.province == "Tianjin")
        .map(|o| o.company_count)
        .sum();
    assert!(from_bj_tj >= 50, "{from_bj_tj}");

    // Guiyang: more than 50 companies, 43.7 billion yuan.
    let guiyang = e.summary(park("guiyang", false).as_ref()).unwrap();
    assert!(guiyang.company_count > 50);
    assert_eq!(guiyang.investment_cny, GUIYANG_INVESTMENT_CNY);

    // ZGC and its affiliated parks.
    let zgc = e.summary(park("zgc", true).as_ref()).unwrap();
    assert_eq!(zgc.park_count, 7);

    // Shenyue: from Beijing to Shijiazhuang, over 1,500 employees, 13 branches.
    let shijiazhuang = Some(Scope {
        selector: Some(scope::Selector::City(Location {
            province: "Hebei".into(),
            city: "Shijiazhuang".into(),
            district: String::new(),
        })),
        include_affiliates: false,
    });
    assert!(e.summary(shijiazhuang.as_ref()).unwrap().employees > 1500);
}

#[test]
fn the_scale_generator_is_deterministic_and_exact() {
    let a: Vec<_> = generate(500, 7).collect();
    let b: Vec<_> = generate(500, 7).collect();
    let c: Vec<_> = generate(500, 8).collect();
    assert_eq!(a, b);
    assert_ne!(a, c);
    let companies = a
        .iter()
        .filter(|e| matches!(e.kind, Some(entity::Kind::Company(_))))
        .count();
    assert_eq!(companies, 500);
    // Parents always come before their branches.
    let mut seen = std::collections::HashSet::new();
    for e in &a {
        if let Some(entity::Kind::Company(c)) = &e.kind {
            assert!(
                c.parent_company.is_empty() || seen.contains(&c.parent_company),
                "{}",
                c.name
            );
            seen.insert(c.name.clone());
        }
    }
}
