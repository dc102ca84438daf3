//! The listing shapes measured against PostgreSQL: each a `ListCompanies`
//! filter and order, the SQL that answers the same page and count, and
//! the indexes a DBA would create for it.

use crate::dataset::Busiest;

/// Companies per page, in both.
pub const PAGE: i32 = 50;

/// One listing shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shape {
    /// Its name in the report: `list/<label>`.
    pub label: &'static str,
    /// The AIP-160 filter.
    pub filter: String,
    /// The `order_by`.
    pub order_by: &'static str,
    /// `FROM ... WHERE ...` over `companies c` selecting the same
    /// companies.
    pub sql_from: String,
    /// `ORDER BY` in the same order (names break ties, bytewise: the
    /// server runs with the C locale).
    pub sql_order: &'static str,
    /// The indexes created for it, as SQL.
    pub indexes: &'static [&'static str],
}

impl Shape {
    /// Counts the matches, then reads the page: one round trip.
    pub fn sql(&self) -> String {
        format!(
            "SELECT count(*) FROM {from}; SELECT c.name FROM {from} ORDER BY {order} LIMIT {PAGE}",
            from = self.sql_from,
            order = self.sql_order
        )
    }
}

fn quote(s: &str) -> String {
    s.replace('\'', "''")
}

/// The shapes: the five a new user tried, an `OR`, a negation and a
/// `parent_company` lookup. `parent` is a company with branches and
/// `display_name` a company's display name.
pub fn shapes(busiest: &Busiest, parent: &str, display_name: &str) -> Vec<Shape> {
    let park = &busiest.park;
    let province = &busiest.province;
    let city = &busiest.city.city;
    let sector = &busiest.sector;
    vec![
        Shape {
            label: "park-employees",
            filter: format!(r#"park = "{park}" AND employees >= 100"#),
            order_by: "",
            sql_from: format!(
                "companies c WHERE c.park = '{}' AND c.employees >= 100",
                quote(park)
            ),
            sql_order: "c.name",
            indexes: &["CREATE INDEX ON companies (park, employees)"],
        },
        Shape {
            label: "province-high-tech",
            filter: format!(r#"location.province = "{province}" AND high_tech = true"#),
            order_by: "",
            sql_from: format!(
                "companies c WHERE c.province = '{}' AND c.high_tech",
                quote(province)
            ),
            sql_order: "c.name",
            indexes: &["CREATE INDEX ON companies (province, high_tech, name)"],
        },
        Shape {
            label: "employees-desc",
            filter: String::new(),
            order_by: "employees desc",
            sql_from: "companies c".into(),
            sql_order: "c.employees DESC, c.name",
            indexes: &["CREATE INDEX ON companies (employees DESC, name)"],
        },
        Shape {
            label: "display-name",
            filter: format!(r#"display_name = "{display_name}""#),
            order_by: "",
            sql_from: format!(
                "companies c WHERE c.display_name = '{}'",
                quote(display_name)
            ),
            sql_order: "c.name",
            indexes: &["CREATE INDEX ON companies (display_name)"],
        },
        Shape {
            label: "sector-investment",
            filter: format!(r#"sectors:"{sector}""#),
            order_by: "investment_cny desc",
            sql_from: format!(
                "companies c JOIN company_sectors s ON s.company = c.name WHERE s.sector = '{}'",
                quote(sector)
            ),
            sql_order: "c.investment_cny DESC, c.name",
            indexes: &[
                "CREATE INDEX ON company_sectors (sector, company)",
                "CREATE INDEX ON companies (investment_cny DESC, name)",
            ],
        },
        Shape {
            label: "park-or-city",
            filter: format!(r#"park = "{park}" OR location.city = "{city}""#),
            order_by: "",
            sql_from: format!(
                "companies c WHERE c.park = '{}' OR c.city = '{}'",
                quote(park),
                quote(city)
            ),
            sql_order: "c.name",
            indexes: &[
                "CREATE INDEX ON companies (park, employees)",
                "CREATE INDEX ON companies (city)",
            ],
        },
        Shape {
            label: "not-high-tech",
            filter: "NOT high_tech".into(),
            order_by: "investment_cny desc",
            sql_from: "companies c WHERE NOT c.high_tech".into(),
            sql_order: "c.investment_cny DESC, c.name",
            indexes: &["CREATE INDEX ON companies (investment_cny DESC, name) WHERE NOT high_tech"],
        },
        Shape {
            label: "parent-company",
            filter: format!(r#"parent_company = "{parent}""#),
            order_by: "",
            sql_from: format!("companies c WHERE c.parent_company = '{}'", quote(parent)),
            sql_order: "c.name",
            indexes: &["CREATE INDEX ON companies (parent_company)"],
        },
    ]
}

/// Every index the shapes name, once each, in order.
pub fn all_indexes(shapes: &[Shape]) -> Vec<&'static str> {
    let mut out: Vec<&'static str> = Vec::new();
    for index in shapes.iter().flat_map(|s| s.indexes.iter().copied()) {
        if !out.contains(&index) {
            out.push(index);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use zgc_index::records::COMPANY_SCHEMA;
    use zgc_proto::types::v1::Location;
    use zgc_query::{Filter, OrderBy};

    fn busiest() -> Busiest {
        Busiest {
            park: "parks/o'brien".into(),
            province: "Hebei".into(),
            city: Location {
                province: "Hebei".into(),
                city: "Baoding".into(),
                district: String::new(),
            },
            sector: "new-materials".into(),
        }
    }

    #[test]
    fn every_shape_is_a_valid_listing_and_quotes_its_sql() {
        let shapes = shapes(
            &busiest(),
            "companies/gen-00000001",
            "Generated Company 00000002",
        );
        assert!(shapes.len() >= 8);
        for s in &shapes {
            assert!(
                Filter::parse(&s.filter, &COMPANY_SCHEMA).is_ok(),
                "{}",
                s.filter
            );
            assert!(
                OrderBy::parse(s.order_by, &COMPANY_SCHEMA).is_ok(),
                "{}",
                s.order_by
            );
            assert!(!s.indexes.is_empty(), "{} names its indexes", s.label);
            assert!(s.sql().ends_with(&format!("LIMIT {PAGE}")));
        }
        assert!(shapes[0].sql().contains("c.park = 'parks/o''brien'"));
        let indexes = all_indexes(&shapes);
        let mut unique = indexes.clone();
        unique.dedup();
        assert_eq!(indexes.len(), unique.len());
    }
}
