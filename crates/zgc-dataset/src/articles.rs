//! What the five articles (named below, by title and date) say: every park
//! and named company, with the facts given about them. Each record's
//! `source` label names its article; details the articles leave open but a
//! record needs (a branch's city, say) are marked with the label
//! `detail = synthetic`.

use zgc_proto::registry::v1::{Company, Park, ParkKind};

use crate::build::{company, date, figure, labels, loc, moved, park};

/// "Beijing tech firms seize opportunities outside the city", China Daily,
/// 2015-10-28.
pub const SEIZE_OPPORTUNITIES: &str =
    "chinadaily-2015-10-28-beijing-tech-firms-seize-opportunities";
/// "China's 'Silicon Valley' expands", China Daily / Xinhua, 2017.
pub const SILICON_VALLEY_EXPANDS: &str = "chinadaily-2017-china-silicon-valley-expands";
/// Guiyang attracts Zhongguancun investment, China Daily, 2013-08-29.
pub const GUIYANG: &str = "chinadaily-2013-08-29-guiyang-attracts-zhongguancun-investment";
/// "Zhongguancun Promotes Beijing-Tianjin-Hebei Innovative Collaboration",
/// China Daily, 2016-12-09.
pub const COLLABORATION: &str = "chinadaily-2016-12-09-zhongguancun-collaborative-innovation";
/// "Beijing-Tianjin-Hebei coordination nets results", China Daily,
/// 2024-03-07.
pub const TEN_YEARS_ON: &str = "chinadaily-2024-03-07-beijing-tianjin-hebei-10-years-on";

/// Every park the articles mention, parents before children.
pub fn parks() -> Vec<Park> {
    let with = |mut p: Park,
                parent: &str,
                established: Option<zgc_proto::types::v1::Date>,
                sectors: &[&str],
                source: &str| {
        if !parent.is_empty() {
            p.parent_park = format!("parks/{parent}");
        }
        p.established = established;
        p.sectors = sectors.iter().map(|s| s.to_string()).collect();
        p.labels = labels(&[("source", source)]);
        p
    };
    vec![
        with(
            park(
                "zgc",
                "Zhongguancun Science Park",
                ParkKind::SciencePark,
                loc("Beijing", "Beijing", "Haidian"),
            ),
            "",
            None,
            &["information-technology", "biotechnology"],
            GUIYANG,
        ),
        with(
            park(
                "baoding",
                "Baoding Zhongguancun Innovation Center",
                ParkKind::InnovationCenter,
                loc("Hebei", "Baoding", ""),
            ),
            "zgc",
            date(2015, 4, 0),
            &[],
            SILICON_VALLEY_EXPANDS,
        ),
        with(
            park(
                "qinhuangdao",
                "Qinhuangdao Zhongguancun Affiliated Park",
                ParkKind::SciencePark,
                loc("Hebei", "Qinhuangdao", ""),
            ),
            "zgc",
            None,
            &[],
            SEIZE_OPPORTUNITIES,
        ),
        with(
            park(
                "binhai",
                "Tianjin Binhai Zhongguancun Science Park",
                ParkKind::SciencePark,
                loc("Tianjin", "Tianjin", "Binhai New Area"),
            ),
            "zgc",
            date(2016, 11, 0),
            &[
                "mobile-internet",
                "health-care",
                "cross-border-e-commerce",
                "technological-finance",
            ],
            SILICON_VALLEY_EXPANDS,
        ),
        with(
            park(
                "caofeidian",
                "Caofeidian Zhongguancun Innovation Park",
                ParkKind::InnovationCenter,
                loc("Hebei", "Tangshan", "Caofeidian"),
            ),
            "zgc",
            None,
            &[],
            COLLABORATION,
        ),
        with(
            park(
                "chengde",
                "Chengde Zhongguancun Innovation Park",
                ParkKind::InnovationCenter,
                loc("Hebei", "Chengde", ""),
            ),
            "zgc",
            None,
            &[],
            COLLABORATION,
        ),
        with(
            park(
                "guiyang",
                "Guiyang Industrial Park for Zhongguancun Companies",
                ParkKind::IndustrialPark,
                loc("Guizhou", "Guiyang", ""),
            ),
            "zgc",
            date(2013, 0, 0),
            &[
                "information-technology",
                "high-end-equipment",
                "pharmaceuticals",
                "electronics-manufacturing",
            ],
            GUIYANG,
        ),
        with(
            park(
                "luquan",
                "Luquan Economic Development Zone",
                ParkKind::DevelopmentZone,
                loc("Hebei", "Shijiazhuang", "Luquan"),
            ),
            "",
            None,
            &["electronic-information"],
            TEN_YEARS_ON,
        ),
        with(
            park(
                "qinhuangdao-incubator",
                "Qinhuangdao Tech Start-up Incubator",
                ParkKind::Incubator,
                loc("Hebei", "Qinhuangdao", ""),
            ),
            "",
            None,
            &[],
            SEIZE_OPPORTUNITIES,
        ),
    ]
}

fn real(mut c: Company, source: &str) -> Company {
    c.labels = labels(&[("source", source)]);
    c
}

fn real_with_synthetic_details(mut c: Company, source: &str) -> Company {
    c.labels = labels(&[("source", source), ("detail", "synthetic")]);
    c
}

/// The cities Hebei Shenyue Soft's 13 branches are placed in (the article
/// says only "13 branches in China").
const SHENYUE_BRANCH_CITIES: &[(&str, &str)] = &[
    ("Beijing", "Beijing"),
    ("Tianjin", "Tianjin"),
    ("Hebei", "Baoding"),
    ("Hebei", "Tangshan"),
    ("Hebei", "Handan"),
    ("Hebei", "Xingtai"),
    ("Hebei", "Cangzhou"),
    ("Hebei", "Langfang"),
    ("Shandong", "Jinan"),
    ("Henan", "Zhengzhou"),
    ("Shanxi", "Taiyuan"),
    ("Jiangsu", "Nanjing"),
    ("Guangdong", "Shenzhen"),
];

/// Headquarters the other records refer to; they come first.
pub fn headquarters() -> Vec<Company> {
    let mut baidu = company("baidu", "Baidu");
    baidu.park = "parks/zgc".into();
    baidu.location = loc("Beijing", "Beijing", "Haidian");
    baidu.sectors = vec!["internet".into(), "artificial-intelligence".into()];
    baidu.listed = true;
    baidu.high_tech = true;

    let mut longmaster = company("longmaster", "Longmaster Information and Technology Co");
    longmaster.location = loc("Guizhou", "Guiyang", "");
    longmaster.sectors = vec!["internet".into()];
    longmaster.listed = true;

    let mut mingsoft = company("mingsoft", "MingSoft");
    mingsoft.location = loc("Beijing", "Beijing", "");
    mingsoft.sectors = vec!["video-equipment".into()];

    let mut shenyue = company("hebei-shenyue-soft", "Hebei Shenyue Soft");
    shenyue.park = "parks/luquan".into();
    shenyue.location = loc("Hebei", "Shijiazhuang", "Luquan");
    shenyue.sectors = vec!["internet".into(), "software".into()];
    shenyue.high_tech = true;
    shenyue.employees = 1520;
    shenyue.relocations = vec![moved(
        loc("Beijing", "Beijing", ""),
        loc("Hebei", "Shijiazhuang", "Luquan"),
        None,
    )];

    vec![
        real(baidu, SEIZE_OPPORTUNITIES),
        real(longmaster, GUIYANG),
        real(mingsoft, SEIZE_OPPORTUNITIES),
        real(shenyue, TEN_YEARS_ON),
    ]
}

/// The other named companies, each with what its article says.
pub fn companies() -> Vec<Company> {
    let mut out = Vec::new();

    let mut tianchen = company(
        "qinhuangdao-tianchen",
        "Qinhuangdao Tianchen Technology Company",
    );
    tianchen.location = loc("Hebei", "Qinhuangdao", "");
    tianchen.sectors = vec!["education-equipment".into()];
    tianchen.founded = date(2015, 0, 0);
    out.push(real(tianchen, SEIZE_OPPORTUNITIES));

    let mut led = company("bao-dunfu-led", "Bao Dunfu LED Factory");
    led.park = "parks/baoding".into();
    led.location = loc("Hebei", "Baoding", "");
    led.sectors = vec!["led-lighting".into()];
    led.relocations = vec![moved(
        loc("Beijing", "Beijing", ""),
        loc("Hebei", "Baoding", ""),
        date(2014, 0, 0),
    )];
    out.push(real(led, SEIZE_OPPORTUNITIES));

    let mut mingsoft_q = company("qinhuangdao-mingsoft", "Qinhuangdao MingSoft");
    mingsoft_q.location = loc("Hebei", "Qinhuangdao", "");
    mingsoft_q.sectors = vec!["video-equipment".into()];
    mingsoft_q.parent_company = "companies/mingsoft".into();
    out.push(real(mingsoft_q, SEIZE_OPPORTUNITIES));

    let mut jiuwu = company("jiuwu-boron", "Jiuwu Boron Industry Co");
    jiuwu.park = "parks/baoding".into();
    jiuwu.location = loc("Hebei", "Baoding", "");
    jiuwu.sectors = vec!["new-materials".into()];
    jiuwu.founded = date(2016, 0, 0);
    jiuwu.investment_cny = 1_800_000_000;
    jiuwu.annual_figures = vec![figure(2016, 0, 100_000_000)];
    out.push(real(jiuwu, SILICON_VALLEY_EXPANDS));

    let mut tianhe = company(
        "zgc-tianhe-promotion-center",
        "Zhongguancun Tianhe Technology Promotion Center",
    );
    tianhe.park = "parks/binhai".into();
    tianhe.location = loc("Tianjin", "Tianjin", "Binhai New Area");
    tianhe.sectors = vec!["technology-services".into()];
    tianhe.founded = date(2016, 11, 0);
    out.push(real(tianhe, COLLABORATION));

    let mut jinghua = company("tianjin-jinghua", "Tianjin Jinghua Technology Co Ltd");
    jinghua.park = "parks/binhai".into();
    jinghua.location = loc("Tianjin", "Tianjin", "Binhai New Area");
    jinghua.sectors = vec!["unmanned-aerial-vehicles".into()];
    out.push(real(jinghua, SILICON_VALLEY_EXPANDS));

    let mut baidu_binhai = company(
        "baidu-innovation-center-binhai",
        "Baidu Innovation Center (Binhai)",
    );
    baidu_binhai.park = "parks/binhai".into();
    baidu_binhai.location = loc("Tianjin", "Tianjin", "Binhai New Area");
    baidu_binhai.sectors = vec!["internet".into(), "technology-services".into()];
    baidu_binhai.parent_company = "companies/baidu".into();
    baidu_binhai.founded = date(2016, 12, 0);
    baidu_binhai.investment_cny = 2_000_000_000;
    out.push(real_with_synthetic_details(
        baidu_binhai,
        SILICON_VALLEY_EXPANDS,
    ));

    let mut isecure = company("tianjin-isecure", "Tianjin Isecure Technology Co., Ltd");
    isecure.location = loc("Tianjin", "Tianjin", "");
    isecure.sectors = vec!["information-security".into()];
    isecure.founded = date(2015, 0, 0);
    out.push(real(isecure, COLLABORATION));

    let mut lm_rd = company("longmaster-beijing-rd", "Longmaster Beijing R&D Center");
    lm_rd.park = "parks/zgc".into();
    lm_rd.location = loc("Beijing", "Beijing", "Haidian");
    lm_rd.sectors = vec!["internet".into()];
    lm_rd.parent_company = "companies/longmaster".into();
    lm_rd.employees = 100;
    out.push(real(lm_rd, GUIYANG));

    for (i, (province, city)) in SHENYUE_BRANCH_CITIES.iter().enumerate() {
        let mut b = company(
            &format!("hebei-shenyue-soft-branch-{:02}", i + 1),
            &format!("Hebei Shenyue Soft {city} Branch"),
        );
        b.location = loc(province, city, "");
        b.sectors = vec!["software".into()];
        b.parent_company = "companies/hebei-shenyue-soft".into();
        out.push(real_with_synthetic_details(b, TEN_YEARS_ON));
    }
    out
}
