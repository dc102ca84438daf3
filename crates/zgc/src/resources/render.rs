//! Parks and companies as tables for people. Pure.

use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use zgc_proto::registry::v1::{Company, Park, ParkKind};
use zgc_proto::types::v1::Location;

fn table(headers: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED)
        .set_header(headers.to_vec());
    t
}

fn province_and_city(l: &Option<Location>) -> (String, String) {
    l.as_ref()
        .map(|l| (l.province.clone(), l.city.clone()))
        .unwrap_or_default()
}

/// Parks, one row each.
pub fn parks(parks: &[Park]) -> String {
    let mut t = table(&["name", "display name", "kind", "province", "city", "parent"]);
    for p in parks {
        let (province, city) = province_and_city(&p.location);
        let kind = ParkKind::try_from(p.kind)
            .map_or("", |k| k.as_str_name())
            .trim_start_matches("PARK_KIND_");
        t.add_row(vec![
            p.name.clone(),
            p.display_name.clone(),
            kind.to_lowercase(),
            province,
            city,
            p.parent_park.clone(),
        ]);
    }
    t.to_string()
}

/// Companies, one row each.
pub fn companies(companies: &[Company]) -> String {
    let mut t = table(&[
        "name",
        "display name",
        "park",
        "province",
        "city",
        "employees",
        "sectors",
    ]);
    for c in companies {
        let (province, city) = province_and_city(&c.location);
        t.add_row(vec![
            c.name.clone(),
            c.display_name.clone(),
            c.park.clone(),
            province,
            city,
            c.employees.to_string(),
            c.sectors.join(", "),
        ]);
    }
    t.to_string()
}

/// The line under a page: how many of how many.
pub fn count(shown: usize, total: i32, noun: &str) -> String {
    format!("{shown} of {total} {noun}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn location(province: &str, city: &str) -> Option<Location> {
        Some(Location {
            province: province.into(),
            city: city.into(),
            ..Default::default()
        })
    }

    /// The cells of the table's data rows.
    fn cells(table: &str) -> Vec<Vec<String>> {
        table
            .lines()
            .filter(|l| l.starts_with('│'))
            .skip(1)
            .map(|l| {
                l.trim_matches('│')
                    .split('┆')
                    .map(|c| c.trim().to_string())
                    .collect()
            })
            .collect()
    }

    #[test]
    fn a_park_row_shows_its_kind_in_words_and_its_place() {
        let p = Park {
            name: "parks/baoding".into(),
            display_name: "Baoding Zhongguancun Innovation Center".into(),
            kind: ParkKind::InnovationCenter as i32,
            location: location("Hebei", "Baoding"),
            parent_park: "parks/zgc".into(),
            ..Default::default()
        };
        assert_eq!(
            cells(&parks(&[p])),
            [[
                "parks/baoding",
                "Baoding Zhongguancun Innovation Center",
                "innovation_center",
                "Hebei",
                "Baoding",
                "parks/zgc"
            ]]
        );
        let unknown = Park {
            kind: 99,
            ..Default::default()
        };
        assert_eq!(
            cells(&parks(&[unknown]))[0][2],
            "",
            "an unknown kind is left blank"
        );
    }

    #[test]
    fn a_company_row_shows_its_park_head_count_and_sectors() {
        let c = Company {
            name: "companies/shenyue".into(),
            display_name: "Hebei Shenyue Soft".into(),
            park: "parks/baoding".into(),
            location: location("Hebei", "Shijiazhuang"),
            employees: 1500,
            sectors: vec!["software".into(), "ai".into()],
            ..Default::default()
        };
        assert_eq!(
            cells(&companies(&[c, Company::default()])),
            [
                vec![
                    "companies/shenyue",
                    "Hebei Shenyue Soft",
                    "parks/baoding",
                    "Hebei",
                    "Shijiazhuang",
                    "1500",
                    "software, ai"
                ],
                vec!["", "", "", "", "", "0", ""]
            ]
        );
    }

    #[test]
    fn the_count_line_says_how_many_of_how_many() {
        assert_eq!(count(50, 1060, "companies"), "50 of 1060 companies");
    }
}
