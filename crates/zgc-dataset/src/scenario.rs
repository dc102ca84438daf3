//! The scenario: the articles' records plus synthetic companies calibrated
//! so that the stats service reproduces the published figures. Every target
//! is a constant here, and the dataset's tests check each one.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use zgc_proto::registry::v1::{Company, Entity};

use crate::articles;
use crate::build::{company, company_entity, date, figure, labels, loc, moved, park_entity};
use crate::regions::{HEBEI_CITIES, SECTORS, split_total};

/// The seed the checked-in scenario is generated with.
pub const SCENARIO_SEED: u64 = 20_240_307;

/// Companies in the Baoding Zhongguancun Innovation Center ("about 90").
pub const BAODING_COMPANIES: usize = 90;
/// Of which relocated from Beijing ("half of which are from the capital").
pub const BAODING_FROM_BEIJING: usize = 45;
/// Companies registered in Binhai in its first two months, Nov-Dec 2016
/// ("more than 30").
pub const BINHAI_FIRST_TWO_MONTHS: usize = 32;
/// Zhongguancun programmes in Binhai (branches of ZGC companies).
pub const BINHAI_PROGRAMMES: usize = 45;
/// Their investment: 35 billion yuan.
pub const BINHAI_INVESTMENT_CNY: i64 = 35_000_000_000;
/// ZGC branches opened in Tianjin and Hebei, January to July 2016.
pub const BRANCHES_JAN_JUL_2016: usize = 687;
/// ZGC branches in Tianjin and Hebei by the end of 2023 ("more than
/// 10,000").
pub const BRANCHES_BY_2023: usize = 10_050;
/// Synthetic ZGC headquarters those branches belong to.
pub const ZGC_HEADQUARTERS: usize = 300;
/// Electronic-information companies in Luquan.
pub const LUQUAN_ELECTRONIC_INFORMATION: usize = 1060;
/// Their 2022 operating income.
pub const LUQUAN_REVENUE_2022_CNY: i64 = 63_100_000_000;
/// Their 2023 operating income: above 85 billion, +34.9%.
pub const LUQUAN_REVENUE_2023_CNY: i64 = 85_121_900_000;
/// Luquan companies from Beijing and Tianjin ("at least 50").
pub const LUQUAN_FROM_BEIJING_TIANJIN: usize = 52;
/// ZGC companies in Guiyang's park ("more than 50").
pub const GUIYANG_COMPANIES: usize = 52;
/// Their investment: 43.7 billion yuan.
pub const GUIYANG_INVESTMENT_CNY: i64 = 43_700_000_000;

fn synthetic(mut c: Company, calibrates: &str) -> Company {
    c.labels = labels(&[("source", "synthetic"), ("calibrates", calibrates)]);
    c
}

fn hq_name(i: usize) -> String {
    format!("companies/zgc-hq-{:03}", i % ZGC_HEADQUARTERS + 1)
}

/// A day within a month, valid for every month.
fn day(rng: &mut ChaCha8Rng) -> i32 {
    rng.random_range(1..=28)
}

/// The whole scenario, in an order that can be imported as is (parents
/// first).
pub fn scenario() -> Vec<Entity> {
    let mut rng = ChaCha8Rng::seed_from_u64(SCENARIO_SEED);
    let mut out: Vec<Entity> = articles::parks().into_iter().map(park_entity).collect();
    let mut push = |c: Company| out.push(company_entity(c));

    for c in articles::headquarters() {
        push(c);
    }
    // Zhongguancun headquarters whose branches make the regional figures.
    for i in 0..ZGC_HEADQUARTERS {
        let mut c = company(
            &format!("zgc-hq-{:03}", i + 1),
            &format!("Zhongguancun Tech {:03}", i + 1),
        );
        c.park = "parks/zgc".into();
        c.location = loc("Beijing", "Beijing", "Haidian");
        c.sectors = vec![SECTORS[i % SECTORS.len()].to_string()];
        c.founded = date(rng.random_range(1995..=2012), rng.random_range(1..=12), 0);
        c.employees = rng.random_range(50..=5000);
        c.high_tech = rng.random_bool(0.7);
        c.listed = i % 25 == 0;
        push(synthetic(c, "zgc-branches"));
    }
    for c in articles::companies() {
        push(c);
    }

    // Baoding: about 90 companies, half of them from Beijing. Two are real
    // (the LED factory, from Beijing; Jiuwu Boron).
    let from_beijing = BAODING_FROM_BEIJING - 1;
    for i in 0..BAODING_COMPANIES - 2 {
        let mut c = company(
            &format!("baoding-co-{:02}", i + 1),
            &format!("Baoding Innovation Co {:02}", i + 1),
        );
        c.park = "parks/baoding".into();
        c.location = loc("Hebei", "Baoding", "");
        c.sectors = vec![SECTORS[i % SECTORS.len()].to_string()];
        c.founded = date(rng.random_range(2015..=2017), rng.random_range(1..=12), 0);
        c.employees = rng.random_range(5..=300);
        if i < from_beijing {
            // 14 of them by October 2015 ("another 14 companies have moved").
            let when = if i < 14 {
                date(2015, rng.random_range(4..=10), 0)
            } else {
                date(rng.random_range(2016..=2017), rng.random_range(1..=12), 0)
            };
            c.relocations = vec![moved(
                loc("Beijing", "Beijing", ""),
                loc("Hebei", "Baoding", ""),
                when,
            )];
        }
        push(synthetic(c, "baoding-90-companies-half-from-beijing"));
    }

    // Binhai: 45 ZGC programmes with 35 billion yuan (one is Baidu's
    // innovation centre, 2 billion); 32 companies registered in November and
    // December 2016 (Tianhe, Baidu's centre and 30 programmes).
    let programmes = BINHAI_PROGRAMMES - 1;
    let investments = split_total(&mut rng, BINHAI_INVESTMENT_CNY - 2_000_000_000, programmes);
    for (i, investment) in investments.into_iter().enumerate() {
        let mut c = company(
            &format!("binhai-programme-{:02}", i + 1),
            &format!("Binhai Zhongguancun Programme {:02}", i + 1),
        );
        c.park = "parks/binhai".into();
        c.location = loc("Tianjin", "Tianjin", "Binhai New Area");
        c.parent_company = hq_name(i * 7);
        c.sectors = vec![
            [
                "mobile-internet",
                "health-care",
                "cross-border-e-commerce",
                "technological-finance",
            ][i % 4]
                .to_string(),
        ];
        c.investment_cny = investment;
        c.founded = if i < BINHAI_FIRST_TWO_MONTHS - 2 {
            date(2016, rng.random_range(11..=12), rng.random_range(1..=30))
        } else {
            date(2017, rng.random_range(1..=6), day(&mut rng))
        };
        push(synthetic(c, "binhai-45-programmes-35-billion"));
    }

    // ZGC branches in Tianjin and Hebei: 687 from January to July 2016, and
    // more than 10,000 in all by the end of 2023 (the 45 Binhai programmes
    // count too).
    let others = BRANCHES_BY_2023 - BINHAI_PROGRAMMES;
    for i in 0..others {
        let (province, city) = if i % 3 == 0 {
            ("Tianjin", "Tianjin")
        } else {
            HEBEI_CITIES[i % HEBEI_CITIES.len()]
        };
        let mut c = company(
            &format!("zgc-branch-{:05}", i + 1),
            &format!("Zhongguancun Branch {:05}", i + 1),
        );
        c.location = loc(province, city, "");
        c.parent_company = hq_name(i);
        c.sectors = vec![SECTORS[(i / 3) % SECTORS.len()].to_string()];
        c.employees = rng.random_range(3..=200);
        c.founded = if i < BRANCHES_JAN_JUL_2016 {
            date(2016, rng.random_range(1..=7), day(&mut rng))
        } else {
            // Any other month from 2014 to 2023.
            loop {
                let (y, m) = (rng.random_range(2014..=2023), rng.random_range(1..=12));
                if !(y == 2016 && m <= 7) {
                    break date(y, m, day(&mut rng));
                }
            }
        };
        push(synthetic(
            c,
            "zgc-branches-687-in-jan-jul-2016-10000-by-2023",
        ));
    }

    // Luquan: 1,060 electronic-information companies, 2023 operating income
    // above 85 billion, +34.9% on 2022; at least 50 from Beijing and
    // Tianjin (Shenyue plus 51 of these).
    let revenue_2022 = split_total(
        &mut rng,
        LUQUAN_REVENUE_2022_CNY,
        LUQUAN_ELECTRONIC_INFORMATION,
    );
    let revenue_2023 = split_total(
        &mut rng,
        LUQUAN_REVENUE_2023_CNY,
        LUQUAN_ELECTRONIC_INFORMATION,
    );
    for i in 0..LUQUAN_ELECTRONIC_INFORMATION {
        let mut c = if i == 0 {
            let mut c = company(
                "hebei-far-east-communication",
                "Hebei Far East Communication System Engineering",
            );
            c.high_tech = true;
            c.sectors = vec!["electronic-information".into(), "communications".into()];
            c.labels = labels(&[("source", articles::TEN_YEARS_ON), ("detail", "synthetic")]);
            c
        } else {
            let mut c = company(
                &format!("luquan-ei-{:04}", i),
                &format!("Luquan Electronics {:04}", i),
            );
            c.sectors = vec!["electronic-information".into()];
            c.high_tech = rng.random_bool(0.4);
            c = synthetic(c, "luquan-1060-companies-85-billion-up-34.9-percent");
            c
        };
        c.park = "parks/luquan".into();
        c.location = loc("Hebei", "Shijiazhuang", "Luquan");
        c.employees = rng.random_range(10..=800);
        c.annual_figures = vec![
            figure(2022, revenue_2022[i], 0),
            figure(2023, revenue_2023[i], 0),
        ];
        if (1..LUQUAN_FROM_BEIJING_TIANJIN).contains(&i) {
            let from = if i % 5 < 3 {
                loc("Beijing", "Beijing", "")
            } else {
                loc("Tianjin", "Tianjin", "")
            };
            c.relocations = vec![moved(
                from,
                loc("Hebei", "Shijiazhuang", "Luquan"),
                date(rng.random_range(2015..=2023), rng.random_range(1..=12), 0),
            )];
        }
        push(c);
    }

    // Guiyang: more than 50 Zhongguancun companies, 43.7 billion yuan.
    let investments = split_total(&mut rng, GUIYANG_INVESTMENT_CNY, GUIYANG_COMPANIES);
    for (i, investment) in investments.into_iter().enumerate() {
        let mut c = company(
            &format!("guiyang-zgc-{:02}", i + 1),
            &format!("Zhongguancun Guiyang Venture {:02}", i + 1),
        );
        c.park = "parks/guiyang".into();
        c.location = loc("Guizhou", "Guiyang", "");
        c.parent_company = hq_name(i * 5 + 3);
        c.sectors = vec![
            [
                "information-technology",
                "biotechnology",
                "electronics-manufacturing",
            ][i % 3]
                .to_string(),
        ];
        c.investment_cny = investment;
        c.founded = date(2013, rng.random_range(9..=12), 0);
        push(synthetic(c, "guiyang-50-companies-43.7-billion"));
    }
    out
}
