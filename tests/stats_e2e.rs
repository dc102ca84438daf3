//! The registry and the stats service together, over real gRPC on loopback:
//! read-your-writes, restarts, network cuts, compaction gaps, store
//! changes, health, every stats RPC, and figures computed by hand.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use tonic::{Code, Request};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_types::StatusExt;
use zgc_proto::registry::v1::*;
use zgc_proto::stats::v1::*;
use zgc_proto::types::v1::Date;
use zgc_tests::proxy::Proxy;
use zgc_tests::{Registry, Stats, company, date, loc, park, sample, scrape};

type RegistryClient = registry_service_client::RegistryServiceClient<tonic::transport::Channel>;
type StatsClient = stats_service_client::StatsServiceClient<tonic::transport::Channel>;

fn all() -> Option<Scope> {
    Some(Scope {
        selector: Some(scope::Selector::All(true)),
        include_affiliates: false,
    })
}

fn park_scope(name: &str, include_affiliates: bool) -> Option<Scope> {
    Some(Scope {
        selector: Some(scope::Selector::Park(name.into())),
        include_affiliates,
    })
}

fn province(p: &str) -> Option<Scope> {
    Some(Scope {
        selector: Some(scope::Selector::Province(p.into())),
        include_affiliates: false,
    })
}

async fn summary(s: &mut StatsClient, scope: Option<Scope>, min_revision: u64) -> Summary {
    s.get_summary(GetSummaryRequest {
        scope,
        min_revision,
    })
    .await
    .expect("summary")
    .into_inner()
}

async fn add_companies(r: &mut RegistryClient, prefix: &str, n: usize) -> u64 {
    let requests = (0..n)
        .map(|i| CreateCompanyRequest {
            company: Some(company(&format!("{prefix} {i}"), "Hebei", "Baoding")),
            company_id: format!("{prefix}-{i}"),
            request_id: String::new(),
        })
        .collect();
    let out = r
        .batch_create_companies(BatchCreateCompaniesRequest {
            requests,
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    out.companies[0].revision
}

#[tokio::test]
async fn a_write_is_visible_to_a_read_with_its_revision() {
    let reg = Registry::start().await;
    let stats = Stats::start(&reg.endpoint()).await;
    let mut r = reg.client().await;
    let mut s = stats.client().await;
    for i in 0..5 {
        let created = r
            .create_company(CreateCompanyRequest {
                company: Some(company(&format!("C{i}"), "Tianjin", "Tianjin")),
                company_id: format!("c{i}"),
                request_id: String::new(),
            })
            .await
            .unwrap()
            .into_inner();
        let got = s
            .get_summary(GetSummaryRequest {
                scope: all(),
                min_revision: created.revision,
            })
            .await
            .unwrap();
        let header = zgc_tests::fixtures::revision_header(got.metadata()).unwrap();
        let got = got.into_inner();
        assert!(got.as_of_revision >= created.revision);
        assert_eq!(header, got.as_of_revision);
        assert_eq!(got.company_count, i + 1, "read-your-writes");
    }
}

#[tokio::test]
async fn a_summary_is_answered_from_the_cache_until_a_change_is_applied() {
    let reg = Registry::start().await;
    let mut r = reg.client().await;
    let first = add_companies(&mut r, "cached", 2).await;
    let stats = Stats::start(&reg.endpoint()).await;
    let mut s = stats.client().await;
    let counts = |body: &str| {
        (
            sample(body, "zgc_stats_summary_cache_hits_total"),
            sample(body, "zgc_stats_summary_cache_misses_total"),
        )
    };

    let built = summary(&mut s, all(), first).await;
    let cached = summary(&mut s, all(), first).await;
    assert_eq!(built.company_count, 2);
    assert_eq!(cached, built, "the same figures, revision and scope");
    let other = summary(&mut s, province("Hebei"), first).await;
    assert_eq!(other.company_count, 2);
    assert_eq!(other.scope, province("Hebei"), "each scope its own answer");
    let body = scrape(stats.metrics_addr).await;
    assert_eq!(counts(&body), (Some(1.0), Some(2.0)), "{body}");

    // A change makes every kept answer stale: the next one is built anew.
    let created = r
        .create_company(CreateCompanyRequest {
            company: Some(company("Cached 3", "Tianjin", "Tianjin")),
            company_id: "cached-3".into(),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    let after = summary(&mut s, all(), created.revision).await;
    assert_eq!(after.company_count, 3);
    assert_eq!(after.as_of_revision, created.revision);
    let hebei = summary(&mut s, province("Hebei"), created.revision).await;
    assert_eq!(hebei.company_count, 2);
    assert_eq!(hebei.as_of_revision, created.revision);
    let body = scrape(stats.metrics_addr).await;
    assert_eq!(counts(&body), (Some(1.0), Some(4.0)), "{body}");
}

#[tokio::test]
async fn health_turns_serving_only_after_the_first_snapshot() {
    let reg = Registry::start().await;
    add_companies(&mut reg.client().await, "pre", 3).await;
    let proxy = Proxy::start(reg.addr).await;
    proxy.cut();
    let stats = Stats::start(&proxy.endpoint()).await;
    let mut health = HealthClient::new(stats.channel().await);
    let status = health
        .check(HealthCheckRequest {
            service: "zgc.stats.v1.StatsService".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(status.status, ServingStatus::NotServing as i32);
    // A read with a deadline is told to retry, shortly before the
    // deadline (a tenth of it early: time enough for the answer to come
    // back on a loaded machine).
    let mut req = Request::new(GetSummaryRequest {
        scope: all(),
        min_revision: 0,
    });
    req.set_timeout(Duration::from_secs(2));
    let err = stats.client().await.get_summary(req).await.unwrap_err();
    assert_eq!(err.code(), Code::Unavailable);
    assert!(err.get_details_retry_info().is_some());

    proxy.restore();
    stats.wait_serving().await;
    assert_eq!(
        summary(&mut stats.client().await, all(), 0)
            .await
            .company_count,
        3
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registry_restart_is_caught_up_with_nothing_missed_or_counted_twice() {
    let dir = tempfile::tempdir().unwrap();
    let reg = Registry::start_in(dir.path(), |_| {}).await;
    let proxy = Proxy::start(reg.addr).await;
    let stats = Stats::start(&proxy.endpoint()).await;
    let mut s = stats.client().await;
    let rev = add_companies(&mut reg.client().await, "a", 40).await;
    assert_eq!(summary(&mut s, all(), rev).await.company_count, 40);

    reg.stop().await;
    let reg = Registry::start_in(dir.path(), |_| {}).await;
    proxy.set_upstream(reg.addr);
    let mut r = reg.client().await;
    let mut last = 0;
    for i in 0..5 {
        last = add_companies(&mut r, &format!("b{i}"), 10).await;
    }
    let got = summary(&mut s, all(), last).await;
    assert_eq!(got.company_count, 90);
    assert_eq!(got.as_of_revision, last);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_connection_resumes_without_gaps_or_double_counts() {
    let reg = Registry::start().await;
    let proxy = Proxy::start(reg.addr).await;
    let stats = Stats::start(&proxy.endpoint()).await;
    let mut s = stats.client().await;
    let mut r = reg.client().await;
    let rev = add_companies(&mut r, "x", 10).await;
    summary(&mut s, all(), rev).await;
    for round in 0..3 {
        proxy.cut();
        // A batch large enough to be split over several stream messages.
        let requests = (0..700)
            .map(|i| CreateCompanyRequest {
                company: Some(company(&format!("R{round} {i}"), "Beijing", "Beijing")),
                company_id: format!("r{round}-{i}"),
                request_id: String::new(),
            })
            .collect();
        let out = r
            .batch_create_companies(BatchCreateCompaniesRequest {
                requests,
                request_id: String::new(),
            })
            .await
            .unwrap();
        let rev = out.into_inner().companies[0].revision;
        proxy.restore();
        let got = summary(&mut s, all(), rev).await;
        assert_eq!(got.company_count, 10 + 700 * (round + 1));
        assert_eq!(
            summary(&mut s, province("beijing"), rev)
                .await
                .company_count,
            700 * (round + 1)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compaction_gap_triggers_a_clean_rebuild() {
    let reg = Registry::start_with(|c| c.retention = 3).await;
    let proxy = Proxy::start(reg.addr).await;
    let stats = Stats::start(&proxy.endpoint()).await;
    let mut s = stats.client().await;
    let mut r = reg.client().await;
    let rev = add_companies(&mut r, "base", 5).await;
    assert_eq!(summary(&mut s, all(), rev).await.company_count, 5);
    proxy.cut();
    let mut last = 0;
    for i in 0..12 {
        last = add_companies(&mut r, &format!("gap{i}"), 2).await;
    }
    r.delete_company(DeleteCompanyRequest {
        name: "companies/base-0".into(),
        etag: String::new(),
    })
    .await
    .unwrap();
    last += 1;
    proxy.restore();
    let got = summary(&mut s, all(), last).await;
    assert_eq!(got.company_count, 5 + 24 - 1);
    assert_eq!(got.as_of_revision, last);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registry_with_a_new_store_is_rebuilt_from_scratch() {
    let reg = Registry::start().await;
    let proxy = Proxy::start(reg.addr).await;
    let stats = Stats::start(&proxy.endpoint()).await;
    let mut s = stats.client().await;
    let mut last = 0;
    for i in 0..5 {
        last = add_companies(&mut reg.client().await, &format!("old{i}"), 3).await;
    }
    assert_eq!(summary(&mut s, all(), last).await.company_count, 15);

    // A registry on an empty data directory: lower revisions, other data.
    let fresh = Registry::start().await;
    add_companies(&mut fresh.client().await, "new", 2).await;
    let mut watch = s
        .watch_summary(WatchSummaryRequest {
            scope: all(),
            min_interval: None,
            min_revision: 0,
        })
        .await
        .unwrap()
        .into_inner();
    proxy.set_upstream(fresh.addr);
    let settled = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            let next = watch.message().await.unwrap().unwrap();
            if next.company_count == 2 {
                return next;
            }
        }
    })
    .await
    .expect("stats never switched to the new store");
    assert_eq!(settled.park_count, 0);
    drop(reg);
}

/// Copies a stopped registry's data directory, as a backup would.
fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// Creates one company of `employees` in Hebei; returns its revision.
async fn add_company(r: &mut RegistryClient, id: &str, employees: i32) -> u64 {
    let mut c = company(id, "Hebei", "Baoding");
    c.employees = employees;
    r.create_company(CreateCompanyRequest {
        company: Some(c),
        company_id: id.into(),
        request_id: String::new(),
    })
    .await
    .unwrap()
    .into_inner()
    .revision
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restored_backup_with_another_history_triggers_a_rebuild() {
    // A backup has the store ID of the registry it was taken from, so the
    // follower resumes on it; past the backup, its history differs.
    let dir = tempfile::tempdir().unwrap();
    let (live, backup) = (dir.path().join("live"), dir.path().join("backup"));
    let reg = Registry::start_in(&live, |_| {}).await;
    add_company(&mut reg.client().await, "base", 5).await;
    reg.stop().await;
    copy_dir(&live, &backup);

    let reg = Registry::start_in(&live, |_| {}).await;
    let proxy = Proxy::start(reg.addr).await;
    let stats = Stats::start(&proxy.endpoint()).await;
    let mut s = stats.client().await;
    let rev = add_company(&mut reg.client().await, "live-only", 7).await;
    let seen = summary(&mut s, all(), rev).await;
    assert_eq!((seen.company_count, seen.employees), (2, 5 + 7));
    let rebuilds = sample(
        &scrape(stats.metrics_addr).await,
        "zgc_stats_rebuilds_total",
    );

    // The backup comes back in the live registry's place. Its next
    // revision created another company, and the one after updates it: an
    // update of a company the follower never saw created.
    let restored = Registry::start_in(&backup, |_| {}).await;
    let mut b = restored.client().await;
    assert_eq!(add_company(&mut b, "restored-only", 100).await, rev);
    let patch = Company {
        name: "companies/restored-only".into(),
        employees: 200,
        ..Default::default()
    };
    let updated = b
        .update_company(UpdateCompanyRequest {
            company: Some(patch),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["employees".into()],
            }),
        })
        .await
        .unwrap()
        .into_inner();
    proxy.set_upstream(restored.addr);

    // The follower refuses that event, rebuilds from the restored
    // registry's snapshot, and counts the rebuild.
    let got = summary(&mut s, all(), updated.revision).await;
    assert_eq!((got.company_count, got.employees), (2, 5 + 200));
    let after = sample(
        &scrape(stats.metrics_addr).await,
        "zgc_stats_rebuilds_total",
    );
    assert!(after > rebuilds, "{rebuilds:?} -> {after:?}");
    drop(reg);
}

/// A small dataset whose figures were computed by hand.
// One push per record reads better here, each with why it is there.
#[allow(clippy::vec_init_then_push)]
async fn hand_made_dataset(r: &mut RegistryClient) -> u64 {
    let p = |id: &str, name: &str, prov: &str, city: &str, parent: &str| {
        let mut x = park(name, prov, city);
        x.parent_park = parent.into();
        CreateParkRequest {
            park: Some(x),
            park_id: id.into(),
            request_id: String::new(),
        }
    };
    for req in [
        p("zgc", "Zhongguancun Science Park", "Beijing", "Beijing", ""),
        p(
            "baoding",
            "Baoding Zhongguancun Innovation Center",
            "Hebei",
            "Baoding",
            "parks/zgc",
        ),
        p(
            "binhai",
            "Tianjin Binhai Zhongguancun Science Park",
            "Tianjin",
            "Tianjin",
            "parks/zgc",
        ),
        p(
            "luquan",
            "Luquan Economic Development Zone",
            "Hebei",
            "Shijiazhuang",
            "",
        ),
    ] {
        r.create_park(req).await.unwrap();
    }
    let figures = |a: i64, b: i64| {
        vec![
            AnnualFigure {
                year: 2022,
                revenue_cny: a,
                output_value_cny: 0,
            },
            AnnualFigure {
                year: 2023,
                revenue_cny: b,
                output_value_cny: 0,
            },
        ]
    };
    let moved = |from: (&str, &str), to: (&str, &str), d: Option<Date>| Relocation {
        from: loc(from.0, from.1),
        to: loc(to.0, to.1),
        date: d,
    };
    let mut cs: Vec<(&str, Company)> = Vec::new();
    // Luquan: 2022 revenue 1,000; 2023 revenue 1,349: +34.9%.
    cs.push((
        "l1",
        Company {
            park: "parks/luquan".into(),
            annual_figures: figures(400, 540),
            sectors: vec!["electronic-information".into()],
            ..company("L1", "", "")
        },
    ));
    cs.push((
        "l2",
        Company {
            park: "parks/luquan".into(),
            annual_figures: figures(600, 809),
            sectors: vec!["electronic-information".into()],
            ..company("L2", "", "")
        },
    ));
    // Relocations into Hebei: two from Beijing to Baoding, one from Tianjin.
    cs.push((
        "b1",
        Company {
            park: "parks/baoding".into(),
            relocations: vec![moved(
                ("Beijing", "Beijing"),
                ("Hebei", "Baoding"),
                date(2016, 5, 0),
            )],
            ..company("B1", "", "")
        },
    ));
    cs.push((
        "b2",
        Company {
            park: "parks/baoding".into(),
            relocations: vec![moved(
                ("Beijing", "Beijing"),
                ("Hebei", "Baoding"),
                date(2017, 3, 1),
            )],
            ..company("B2", "", "")
        },
    ));
    cs.push((
        "b3",
        Company {
            park: "parks/baoding".into(),
            relocations: vec![moved(
                ("Tianjin", "Tianjin"),
                ("Hebei", "Baoding"),
                date(2016, 9, 0),
            )],
            ..company("B3", "", "")
        },
    ));
    // Shenyue: Beijing -> Shijiazhuang, 1,500 employees.
    cs.push((
        "shenyue",
        Company {
            employees: 1500,
            relocations: vec![moved(
                ("Beijing", "Beijing"),
                ("Hebei", "Shijiazhuang"),
                date(2019, 0, 0),
            )],
            ..company("Hebei Shenyue Soft", "Hebei", "Shijiazhuang")
        },
    ));
    // ZGC headquarters and their branches.
    cs.push((
        "h1",
        Company {
            park: "parks/zgc".into(),
            ..company("H1", "", "")
        },
    ));
    cs.push((
        "h2",
        Company {
            park: "parks/zgc".into(),
            ..company("H2", "", "")
        },
    ));
    let branch = |parent: &str, prov: &str, city: &str, founded: Option<Date>| Company {
        parent_company: format!("companies/{parent}"),
        founded,
        ..company("Branch", prov, city)
    };
    cs.push((
        "h1-tj",
        branch("h1", "Tianjin", "Tianjin", date(2016, 3, 2)),
    ));
    cs.push(("h1-bd", branch("h1", "Hebei", "Baoding", date(2016, 7, 20))));
    cs.push(("h1-lf", branch("h1", "Hebei", "Langfang", date(2016, 8, 1))));
    cs.push((
        "h1-old",
        branch("h1", "Tianjin", "Tianjin", date(2015, 12, 31)),
    ));
    cs.push(("h2-bd", branch("h2", "Hebei", "Baoding", date(2016, 0, 0))));
    cs.push((
        "h2-bj",
        branch("h2", "Beijing", "Beijing", date(2016, 2, 0)),
    ));
    let requests = cs
        .into_iter()
        .map(|(id, c)| CreateCompanyRequest {
            company: Some(c),
            company_id: id.into(),
            request_id: String::new(),
        })
        .collect();
    let out = r
        .batch_create_companies(BatchCreateCompaniesRequest {
            requests,
            request_id: String::new(),
        })
        .await
        .unwrap();
    out.into_inner().companies[0].revision
}

#[tokio::test]
async fn figures_computed_by_hand() {
    let reg = Registry::start().await;
    let stats = Stats::start(&reg.endpoint()).await;
    let rev = hand_made_dataset(&mut reg.client().await).await;
    let mut s = stats.client().await;

    // Luquan's operating income rose 34.9% year on year.
    let luquan = summary(&mut s, park_scope("parks/luquan", false), rev).await;
    assert_eq!(luquan.company_count, 2);
    let y2023 = luquan
        .figures_by_year
        .iter()
        .find(|f| f.year == 2023)
        .unwrap();
    assert_eq!(y2023.revenue_cny, 1349);
    assert!((y2023.revenue_yoy_percent.unwrap() - 34.9).abs() < 1e-9);
    assert_eq!(
        luquan.sectors,
        vec![SectorCount {
            sector: "electronic-information".into(),
            company_count: 2
        }]
    );
    let ranking = s
        .rank_parks(RankParksRequest {
            metric: ParkMetric::RevenueGrowth as i32,
            year: 2023,
            province: "Hebei".into(),
            limit: 0,
            min_revision: rev,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        ranking.entries.len(),
        1,
        "only Luquan has figures for both years"
    );
    assert_eq!(ranking.entries[0].park, "parks/luquan");

    // ZGC with its affiliated parks.
    let zgc = summary(&mut s, park_scope("parks/zgc", true), rev).await;
    assert_eq!(zgc.park_count, 3);
    assert_eq!(zgc.company_count, 5, "h1, h2 in ZGC; b1..b3 in Baoding");
    assert_eq!(zgc.relocated_in_count, 3);
    assert_eq!(
        zgc.relocation_origins[0],
        RelocationOrigin {
            province: "Beijing".into(),
            company_count: 2
        }
    );
    assert_eq!(
        summary(&mut s, park_scope("parks/zgc", false), rev)
            .await
            .park_count,
        1
    );

    // Relocation flows Beijing -> Hebei: B1, B2 and Shenyue.
    let flows = |from: &str, to: &str, start_year: i32, end_year: i32, level: RegionLevel| {
        GetRelocationFlowsRequest {
            from_province: from.into(),
            to_province: to.into(),
            start_year,
            end_year,
            level: level as i32,
            min_revision: rev,
        }
    };
    let got = s
        .get_relocation_flows(flows("Beijing", "Hebei", 0, 0, RegionLevel::Province))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got.flows.len(), 1);
    assert_eq!(got.flows[0].count, 3);
    let got = s
        .get_relocation_flows(flows("Beijing", "", 2016, 2016, RegionLevel::Province))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got.flows[0].count, 1, "only B1 moved in 2016");
    let got = s
        .get_relocation_flows(flows("", "hebei", 0, 0, RegionLevel::City))
        .await
        .unwrap()
        .into_inner();
    let counts: Vec<(String, String, i64)> = got
        .flows
        .iter()
        .map(|f| {
            (
                f.from.as_ref().unwrap().city.clone(),
                f.to.as_ref().unwrap().city.clone(),
                f.count,
            )
        })
        .collect();
    assert_eq!(
        counts,
        vec![
            ("Beijing".into(), "Baoding".into(), 2),
            ("Beijing".into(), "Shijiazhuang".into(), 1),
            ("Tianjin".into(), "Baoding".into(), 1),
        ]
    );

    // Branches ZGC companies opened January to July 2016, by province.
    let window = |level: RegionLevel| GetBranchFootprintRequest {
        parent_scope: park_scope("parks/zgc", false),
        start: Some(Date {
            year: 2016,
            month: 1,
            day: 0,
        }),
        end: Some(Date {
            year: 2016,
            month: 7,
            day: 0,
        }),
        level: level as i32,
        min_revision: rev,
    };
    let got = s
        .get_branch_footprint(window(RegionLevel::Province))
        .await
        .unwrap()
        .into_inner();
    let regions: Vec<(String, i64)> = got
        .regions
        .iter()
        .map(|r| {
            (
                r.location.as_ref().unwrap().province.clone(),
                r.branch_count,
            )
        })
        .collect();
    assert_eq!(
        regions,
        vec![
            ("Hebei".into(), 2),
            ("Beijing".into(), 1),
            ("Tianjin".into(), 1)
        ]
    );
    let in_tianjin_and_hebei: i64 = regions
        .iter()
        .filter(|(p, _)| p != "Beijing")
        .map(|(_, n)| n)
        .sum();
    assert_eq!(in_tianjin_and_hebei, 3);

    // The same branches over time in Hebei: July by month, 2 in 2016 by year.
    let series = |granularity: Granularity| GetTimeSeriesRequest {
        scope: province("Hebei"),
        metric: SeriesMetric::BranchesOpened as i32,
        granularity: granularity as i32,
        start: Some(Date {
            year: 2016,
            month: 1,
            day: 0,
        }),
        end: Some(Date {
            year: 2016,
            month: 7,
            day: 0,
        }),
        min_revision: rev,
    };
    let monthly = s
        .get_time_series(series(Granularity::Month))
        .await
        .unwrap()
        .into_inner()
        .points;
    assert_eq!(
        monthly.len(),
        7,
        "every month of the window, zeros included"
    );
    let values: Vec<f64> = monthly.iter().map(|p| p.value).collect();
    assert_eq!(values, vec![0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0]);
    let yearly = s
        .get_time_series(series(Granularity::Year))
        .await
        .unwrap()
        .into_inner()
        .points;
    assert_eq!(yearly.len(), 1);
    assert_eq!(
        yearly[0].value, 2.0,
        "the July branch and the one whose month is unknown"
    );

    // Province-level relocated-out figures.
    let beijing = summary(&mut s, province("Beijing"), rev).await;
    assert_eq!(beijing.relocated_out_count, 3);
    assert_eq!(summary(&mut s, all(), rev).await.relocated_out_count, 0);
}

#[tokio::test]
async fn errors_name_the_problem() {
    let reg = Registry::start().await;
    let stats = Stats::start(&reg.endpoint()).await;
    stats.wait_serving().await;
    let mut s = stats.client().await;
    let err = s
        .get_summary(GetSummaryRequest {
            scope: park_scope("parks/none", false),
            min_revision: 0,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let err = s
        .get_summary(GetSummaryRequest {
            scope: None,
            min_revision: 0,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let err = s
        .rank_parks(RankParksRequest {
            metric: ParkMetric::CompanyCount as i32,
            limit: 101,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(
        err.get_details_bad_request().unwrap().field_violations[0].field,
        "limit"
    );
    let err = s
        .get_time_series(GetTimeSeriesRequest {
            scope: all(),
            metric: SeriesMetric::Revenue as i32,
            granularity: Granularity::Month as i32,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    // A revision the registry has not reached: UNAVAILABLE within the
    // deadline (answered a tenth of it early).
    let mut req = Request::new(GetSummaryRequest {
        scope: all(),
        min_revision: 1_000_000,
    });
    req.set_timeout(Duration::from_secs(2));
    let err = s.get_summary(req).await.unwrap_err();
    assert_eq!(err.code(), Code::Unavailable);
    assert!(err.get_details_retry_info().is_some());
}

#[tokio::test]
async fn watch_summary_sends_the_current_figures_then_each_change() {
    let reg = Registry::start().await;
    let stats = Stats::start(&reg.endpoint()).await;
    let mut r = reg.client().await;
    let rev = add_companies(&mut r, "w", 2).await;
    let mut s = stats.client().await;
    let mut stream = s
        .watch_summary(WatchSummaryRequest {
            scope: province("Hebei"),
            min_interval: Some(prost_types::Duration {
                seconds: 0,
                nanos: 100_000_000,
            }),
            min_revision: rev,
        })
        .await
        .unwrap()
        .into_inner();
    let first = stream.message().await.unwrap().unwrap();
    assert_eq!(first.company_count, 2);
    // A change outside the scope sends nothing; one inside sends a summary.
    r.create_company(CreateCompanyRequest {
        company: Some(company("Out", "Tianjin", "Tianjin")),
        ..Default::default()
    })
    .await
    .unwrap();
    add_companies(&mut r, "w2", 1).await;
    let next = tokio::time::timeout(Duration::from_secs(60), stream.message())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(next.company_count, 3);
    assert!(next.as_of_revision > first.as_of_revision);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_stream_is_abandoned_and_the_follower_catches_up() {
    let reg = Registry::start().await;
    let proxy = Proxy::start(reg.addr).await;
    let stats = Stats::start_with(&proxy.endpoint(), |c| c.stall_secs = 1).await;
    let mut s = stats.client().await;
    let mut r = reg.client().await;
    let rev = add_companies(&mut r, "before", 3).await;
    assert_eq!(summary(&mut s, all(), rev).await.company_count, 3);

    // The network goes silent without closing anything.
    let connections = proxy.accepted();
    proxy.stall();
    let rev = add_companies(&mut r, "during", 4).await;
    // The follower notices the silence and dials again; that new connection
    // is frozen too, until the network recovers for new connections only.
    tokio::time::timeout(
        Duration::from_secs(60),
        proxy.wait_accepted_more_than(connections),
    )
    .await
    .expect("the follower never gave up on the stalled stream");
    proxy.unstall();
    let got = summary(&mut s, all(), rev).await;
    assert_eq!(got.company_count, 7, "caught up, nothing missed or doubled");
}
