//! Request validation and normalisation: pure, no I/O. Every problem is
//! reported as one field violation with its path in the request.

use std::collections::BTreeSet;
use std::sync::LazyLock;

use regex::Regex;
use tonic_types::FieldViolation;
use zgc_proto::registry::v1::{Company, Park, ParkKind};
use zgc_proto::types::v1::{Date, Location};

/// Most characters in a display name (after trimming).
pub const MAX_DISPLAY_NAME: usize = 200;
/// Most characters in a location part.
pub const MAX_LOCATION_PART: usize = 100;
/// Most distinct sectors per entity.
pub const MAX_SECTORS: usize = 32;
/// Most characters in a sector slug.
pub const MAX_SECTOR_LEN: usize = 48;
/// Most labels per entity.
pub const MAX_LABELS: usize = 64;
/// Most characters in a label value.
pub const MAX_LABEL_VALUE: usize = 256;
/// Most relocation records per company.
pub const MAX_RELOCATIONS: usize = 100;
/// Most annual figures per company (one per year of the valid range).
pub const MAX_ANNUAL_FIGURES: usize = 401;

static ID: LazyLock<Regex> = LazyLock::new(|| regex_or_panic("^[a-z][a-z0-9-]{0,62}$"));
static SECTOR: LazyLock<Regex> = LazyLock::new(|| regex_or_panic("^[a-z0-9]+(-[a-z0-9]+)*$"));
static LABEL_KEY: LazyLock<Regex> = LazyLock::new(|| regex_or_panic("^[a-z][a-z0-9_-]{0,62}$"));

fn regex_or_panic(pattern: &str) -> Regex {
    // The patterns are constants of this file; a typo is a bug caught by
    // every test run.
    Regex::new(pattern).unwrap_or_else(|e| panic!("bad built-in regex {pattern}: {e}"))
}

/// Collects field violations under a path prefix.
#[derive(Debug, Default)]
pub struct Violations {
    list: Vec<FieldViolation>,
}

impl Violations {
    /// Records a violation.
    pub fn add(&mut self, field: impl Into<String>, description: impl Into<String>) {
        self.list.push(FieldViolation::new(field, description));
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// `Ok` when nothing was recorded, else every violation.
    pub fn finish(self) -> Result<(), Vec<FieldViolation>> {
        if self.list.is_empty() {
            Ok(())
        } else {
            Err(self.list)
        }
    }
}

/// Whether `id` is a valid resource ID.
pub fn is_valid_id(id: &str) -> bool {
    ID.is_match(id)
}

/// The ID in `collection/{id}`, if `name` is such a name with a valid ID.
pub fn parse_name<'a>(name: &'a str, collection: &str) -> Option<&'a str> {
    let id = name.strip_prefix(collection)?.strip_prefix('/')?;
    is_valid_id(id).then_some(id)
}

/// Checks a resource name field (`parks/{id}`), adding a violation if bad.
pub fn check_name(v: &mut Violations, path: &str, name: &str, collection: &str) {
    if parse_name(name, collection).is_none() {
        v.add(
            path,
            format!("must be a resource name `{collection}/{{id}}` with an ID matching ^[a-z][a-z0-9-]{{0,62}}$"),
        );
    }
}

/// Checks a `request_id`: empty or a UUID.
pub fn check_request_id(v: &mut Violations, path: &str, id: &str) {
    if !id.is_empty() && uuid::Uuid::parse_str(id).is_err() {
        v.add(
            path,
            "must be a UUID, e.g. 3f2c1a9e-5b7d-4e8f-9a0b-1c2d3e4f5a6b",
        );
    }
}

fn has_control(s: &str) -> bool {
    s.chars().any(char::is_control)
}

fn check_text(v: &mut Violations, path: &str, text: &mut String, required: bool, max: usize) {
    let trimmed = text.trim();
    if trimmed.len() != text.len() {
        *text = trimmed.to_string();
    }
    let chars = text.chars().count();
    if required && chars == 0 {
        v.add(path, "is required");
    } else if chars > max {
        v.add(
            path,
            format!("must be at most {max} characters, not {chars}"),
        );
    } else if has_control(text) {
        v.add(path, "must not contain control characters");
    }
}

fn days_in_month(year: i32, month: i32) -> i32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ => {
            let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
            if leap { 29 } else { 28 }
        }
    }
}

/// Checks a partial date. An absent or all-zero date is valid (unknown).
pub fn check_date(v: &mut Violations, path: &str, date: Option<&Date>) {
    let Some(d) = date else { return };
    if d.year == 0 && d.month == 0 && d.day == 0 {
        return;
    }
    if !(1800..=2200).contains(&d.year) {
        v.add(format!("{path}.year"), "must be between 1800 and 2200");
    }
    if !(0..=12).contains(&d.month) {
        v.add(
            format!("{path}.month"),
            "must be between 1 and 12, or 0 for unknown",
        );
    } else if !(0..=31).contains(&d.day) {
        v.add(
            format!("{path}.day"),
            "must be between 1 and 31, or 0 for unknown",
        );
    } else if d.day > 0 && d.month == 0 {
        v.add(format!("{path}.day"), "a day needs a month");
    } else if d.day > 0 && d.day > days_in_month(d.year, d.month) {
        v.add(
            format!("{path}.day"),
            format!("{}-{:02} has no day {}", d.year, d.month, d.day),
        );
    }
}

/// The earliest day a partial date can mean, as `yyyymmdd`; `None` when the
/// year is unknown.
pub fn earliest_day(d: Option<&Date>) -> Option<i64> {
    let d = d?;
    if d.year == 0 {
        return None;
    }
    Some(i64::from(d.year) * 10_000 + i64::from(d.month.max(1)) * 100 + i64::from(d.day.max(1)))
}

/// Whether a location has nothing set.
pub fn location_is_empty(l: Option<&Location>) -> bool {
    l.is_none_or(|l| {
        l.province.trim().is_empty() && l.city.trim().is_empty() && l.district.trim().is_empty()
    })
}

/// Checks a location that must name a province and a city.
pub fn check_location(v: &mut Violations, path: &str, location: &mut Option<Location>) {
    let Some(l) = location.as_mut() else {
        v.add(path, "is required (province and city)");
        return;
    };
    check_text(
        v,
        &format!("{path}.province"),
        &mut l.province,
        true,
        MAX_LOCATION_PART,
    );
    check_text(
        v,
        &format!("{path}.city"),
        &mut l.city,
        true,
        MAX_LOCATION_PART,
    );
    check_text(
        v,
        &format!("{path}.district"),
        &mut l.district,
        false,
        MAX_LOCATION_PART,
    );
}

fn check_sectors(v: &mut Violations, path: &str, sectors: &mut Vec<String>) {
    let mut seen = BTreeSet::new();
    sectors.retain(|s| seen.insert(s.clone()));
    if sectors.len() > MAX_SECTORS {
        v.add(
            path,
            format!(
                "at most {MAX_SECTORS} distinct sectors, not {}",
                sectors.len()
            ),
        );
        return;
    }
    for (i, s) in sectors.iter().enumerate() {
        if s.len() > MAX_SECTOR_LEN || !SECTOR.is_match(s) {
            v.add(
                format!("{path}[{i}]"),
                format!("must be a slug matching ^[a-z0-9]+(-[a-z0-9]+)*$ of at most {MAX_SECTOR_LEN} characters"),
            );
        }
    }
}

fn check_labels(
    v: &mut Violations,
    path: &str,
    labels: &std::collections::BTreeMap<String, String>,
) {
    if labels.len() > MAX_LABELS {
        v.add(
            path,
            format!("at most {MAX_LABELS} labels, not {}", labels.len()),
        );
        return;
    }
    for (key, value) in labels {
        if !LABEL_KEY.is_match(key) {
            v.add(
                format!("{path}.{key}"),
                "label keys match ^[a-z][a-z0-9_-]{0,62}$",
            );
        } else if value.chars().count() > MAX_LABEL_VALUE {
            v.add(
                format!("{path}.{key}"),
                format!("label values are at most {MAX_LABEL_VALUE} characters"),
            );
        } else if has_control(value) {
            v.add(
                format!("{path}.{key}"),
                "must not contain control characters",
            );
        }
    }
}

fn check_reference(v: &mut Violations, path: &str, name: &mut String, collection: &str, own: &str) {
    let trimmed = name.trim();
    if trimmed.len() != name.len() {
        *name = trimmed.to_string();
    }
    if name.is_empty() {
        return;
    }
    check_name(v, path, name, collection);
    if name == own {
        v.add(path, "must not name the resource itself");
    }
}

/// Validates and normalises a park (writable fields only). `path` is the
/// park's path in the request, e.g. `park`.
pub fn park(v: &mut Violations, path: &str, p: &mut Park) {
    check_text(
        v,
        &format!("{path}.display_name"),
        &mut p.display_name,
        true,
        MAX_DISPLAY_NAME,
    );
    match ParkKind::try_from(p.kind) {
        Ok(ParkKind::Unspecified) => v.add(format!("{path}.kind"), "is required"),
        Ok(_) => {}
        Err(_) => v.add(
            format!("{path}.kind"),
            format!("{} is not a ParkKind", p.kind),
        ),
    }
    check_location(v, &format!("{path}.location"), &mut p.location);
    let own = p.name.clone();
    check_reference(
        v,
        &format!("{path}.parent_park"),
        &mut p.parent_park,
        "parks",
        &own,
    );
    check_date(v, &format!("{path}.established"), p.established.as_ref());
    check_sectors(v, &format!("{path}.sectors"), &mut p.sectors);
    check_labels(v, &format!("{path}.labels"), &p.labels);
}

/// Validates and normalises a company (writable fields only). A missing
/// location is accepted when `park` is set (the caller copies the park's).
pub fn company(v: &mut Violations, path: &str, c: &mut Company) {
    check_text(
        v,
        &format!("{path}.display_name"),
        &mut c.display_name,
        true,
        MAX_DISPLAY_NAME,
    );
    let own = c.name.clone();
    check_reference(v, &format!("{path}.park"), &mut c.park, "parks", "");
    if location_is_empty(c.location.as_ref()) {
        c.location = None;
        if c.park.is_empty() {
            v.add(format!("{path}.location"), "is required unless park is set");
        }
    } else {
        check_location(v, &format!("{path}.location"), &mut c.location);
    }
    check_sectors(v, &format!("{path}.sectors"), &mut c.sectors);
    check_date(v, &format!("{path}.founded"), c.founded.as_ref());
    check_reference(
        v,
        &format!("{path}.parent_company"),
        &mut c.parent_company,
        "companies",
        &own,
    );
    if c.relocations.len() > MAX_RELOCATIONS {
        v.add(
            format!("{path}.relocations"),
            format!("at most {MAX_RELOCATIONS} records"),
        );
    } else {
        let mut last_dated: Option<i64> = None;
        for (i, r) in c.relocations.iter_mut().enumerate() {
            let rp = format!("{path}.relocations[{i}]");
            check_location(v, &format!("{rp}.from"), &mut r.from);
            check_location(v, &format!("{rp}.to"), &mut r.to);
            check_date(v, &format!("{rp}.date"), r.date.as_ref());
            if let Some(day) = earliest_day(r.date.as_ref()) {
                if last_dated.is_some_and(|prev| day < prev) {
                    v.add(
                        format!("{rp}.date"),
                        "is earlier than a previous relocation's date",
                    );
                }
                last_dated = Some(day);
            }
        }
    }
    if c.employees < 0 {
        v.add(format!("{path}.employees"), "must be >= 0");
    }
    if c.investment_cny < 0 {
        v.add(format!("{path}.investment_cny"), "must be >= 0");
    }
    if c.annual_figures.len() > MAX_ANNUAL_FIGURES {
        v.add(
            format!("{path}.annual_figures"),
            format!("at most {MAX_ANNUAL_FIGURES} years"),
        );
    } else {
        let mut years = BTreeSet::new();
        for (i, f) in c.annual_figures.iter().enumerate() {
            let fp = format!("{path}.annual_figures[{i}]");
            if !(1800..=2200).contains(&f.year) {
                v.add(format!("{fp}.year"), "must be between 1800 and 2200");
            } else if !years.insert(f.year) {
                v.add(
                    format!("{fp}.year"),
                    format!("{} appears more than once", f.year),
                );
            }
            if f.revenue_cny < 0 {
                v.add(format!("{fp}.revenue_cny"), "must be >= 0");
            }
            if f.output_value_cny < 0 {
                v.add(format!("{fp}.output_value_cny"), "must be >= 0");
            }
        }
    }
    check_labels(v, &format!("{path}.labels"), &c.labels);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use zgc_proto::registry::v1::{AnnualFigure, Relocation};

    fn loc(p: &str, c: &str) -> Option<Location> {
        Some(Location {
            province: p.into(),
            city: c.into(),
            district: String::new(),
        })
    }

    fn fields(f: impl FnOnce(&mut Violations)) -> Vec<String> {
        let mut v = Violations::default();
        f(&mut v);
        v.finish()
            .err()
            .unwrap_or_default()
            .into_iter()
            .map(|x| x.field)
            .collect()
    }

    fn good_company() -> Company {
        Company {
            name: "companies/a".into(),
            display_name: " Hebei Shenyue Soft ".into(),
            location: loc("Hebei", "Shijiazhuang"),
            sectors: vec!["software".into(), "software".into()],
            ..Default::default()
        }
    }

    #[test]
    fn a_good_company_is_normalised() {
        let mut c = good_company();
        assert!(fields(|v| company(v, "company", &mut c)).is_empty());
        assert_eq!(c.display_name, "Hebei Shenyue Soft");
        assert_eq!(c.sectors, vec!["software".to_string()]);
    }

    #[test]
    fn every_bad_field_is_reported_with_its_path() {
        let mut c = Company {
            name: "companies/a".into(),
            display_name: "  ".into(),
            location: loc("Hebei", ""),
            sectors: vec!["Bad Sector".into()],
            founded: Some(Date {
                year: 2023,
                month: 2,
                day: 29,
            }),
            parent_company: "companies/a".into(),
            employees: -1,
            investment_cny: -5,
            annual_figures: vec![
                AnnualFigure {
                    year: 2020,
                    revenue_cny: 1,
                    output_value_cny: 1,
                },
                AnnualFigure {
                    year: 2020,
                    revenue_cny: -1,
                    output_value_cny: 0,
                },
            ],
            relocations: vec![
                Relocation {
                    from: loc("Beijing", "Beijing"),
                    to: loc("Hebei", "Baoding"),
                    date: Some(Date {
                        year: 2016,
                        month: 5,
                        day: 0,
                    }),
                },
                Relocation {
                    from: None,
                    to: loc("Hebei", "Baoding"),
                    date: Some(Date {
                        year: 2015,
                        month: 0,
                        day: 0,
                    }),
                },
            ],
            labels: [("Bad".to_string(), "x".to_string())].into(),
            ..Default::default()
        };
        let f = fields(|v| company(v, "requests[2].company", &mut c));
        for expected in [
            "requests[2].company.display_name",
            "requests[2].company.location.city",
            "requests[2].company.sectors[0]",
            "requests[2].company.founded.day",
            "requests[2].company.parent_company",
            "requests[2].company.employees",
            "requests[2].company.investment_cny",
            "requests[2].company.annual_figures[1].year",
            "requests[2].company.annual_figures[1].revenue_cny",
            "requests[2].company.relocations[1].from",
            "requests[2].company.relocations[1].date",
            "requests[2].company.labels.Bad",
        ] {
            assert!(
                f.contains(&expected.to_string()),
                "missing {expected} in {f:?}"
            );
        }
    }

    #[test]
    fn location_may_come_from_the_park() {
        let mut c = Company {
            display_name: "x".into(),
            park: "parks/p".into(),
            ..Default::default()
        };
        assert!(fields(|v| company(v, "company", &mut c)).is_empty());
        let mut c = Company {
            display_name: "x".into(),
            ..Default::default()
        };
        assert_eq!(
            fields(|v| company(v, "company", &mut c)),
            vec!["company.location"]
        );
    }

    #[test]
    fn park_kind_is_required_and_must_be_known() {
        let mut p = Park {
            display_name: "p".into(),
            location: loc("Hebei", "Baoding"),
            ..Default::default()
        };
        assert_eq!(fields(|v| park(v, "park", &mut p)), vec!["park.kind"]);
        p.kind = 99;
        assert_eq!(fields(|v| park(v, "park", &mut p)), vec!["park.kind"]);
    }

    #[test]
    fn dates() {
        let check = |y, m, d| {
            fields(|v| {
                check_date(
                    v,
                    "d",
                    Some(&Date {
                        year: y,
                        month: m,
                        day: d,
                    }),
                )
            })
        };
        assert!(check(0, 0, 0).is_empty());
        assert!(check(2024, 2, 29).is_empty());
        assert!(check(2016, 0, 0).is_empty());
        assert_eq!(check(2023, 2, 29), vec!["d.day"]);
        assert_eq!(check(1900, 2, 29), vec!["d.day"]);
        assert_eq!(check(2016, 0, 3), vec!["d.day"]);
        assert_eq!(check(1799, 1, 1), vec!["d.year"]);
        assert_eq!(check(2016, 13, 0), vec!["d.month"]);
    }

    /// Validation never panics, and what it accepts is normalised:
    /// validating again reports nothing and changes nothing. Inputs are
    /// drawn half near the valid ranges and half from anywhere, and the
    /// test checks that the accepted branch (the idempotence claim) ran
    /// for a good share of the cases.
    #[test]
    fn validation_is_total_and_idempotent() {
        use proptest::test_runner::{Config, TestRunner};
        // Mostly near the valid range (its edges included), sometimes
        // anywhere: a company is valid only when all its fields are.
        let around = |lo: i32, hi: i32| prop_oneof![9 => lo - 1..=hi + 1, 1 => any::<i32>()];
        let text = |valid: &'static str, any: &'static str| prop_oneof![9 => valid, 1 => any];
        let strategy = (
            text("[A-Za-z0-9][A-Za-z0-9 ]{0,30}", "\\PC{0,250}"),
            text("[A-Za-z]{1,8}", "\\PC{0,5}"),
            text("[A-Za-z]{1,8}", "\\PC{0,5}"),
            prop::collection::vec(
                text("[a-z0-9]{1,6}(-[a-z0-9]{1,4})?", "[a-z0-9-]{0,6}"),
                0..8,
            ),
            around(0, 1_000_000),
            (around(1800, 2200), around(0, 12), around(0, 28)),
        );
        let accepted = std::cell::Cell::new(0u32);
        let cases = 512;
        let mut runner = TestRunner::new(Config {
            cases,
            ..Config::default()
        });
        runner
            .run(
                &strategy,
                |(name, province, city, sectors, employees, (year, month, day))| {
                    let mut c = Company {
                        name: "companies/x".into(),
                        display_name: name,
                        location: loc(&province, &city),
                        sectors,
                        employees,
                        founded: Some(Date { year, month, day }),
                        ..Default::default()
                    };
                    let mut v = Violations::default();
                    company(&mut v, "company", &mut c);
                    if v.is_empty() {
                        accepted.set(accepted.get() + 1);
                        let before = c.clone();
                        prop_assert!(fields(|v| company(v, "company", &mut c)).is_empty());
                        prop_assert_eq!(before, c);
                    }
                    Ok(())
                },
            )
            .unwrap();
        assert!(
            accepted.get() >= cases / 20,
            "only {} of {cases} generated companies were valid: the idempotence claim is barely tested",
            accepted.get()
        );
    }

    proptest! {
        #[test]
        fn ids(id in "\\PC{0,70}") {
            let valid = is_valid_id(&id);
            let expected = id.len() <= 63
                && id.chars().next().is_some_and(|c| c.is_ascii_lowercase())
                && id.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
            prop_assert_eq!(valid, expected);
        }
    }
}
