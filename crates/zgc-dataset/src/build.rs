//! Small builders for parks and companies.

use std::collections::BTreeMap;

use zgc_proto::registry::v1::{AnnualFigure, Company, Entity, Park, ParkKind, Relocation, entity};
use zgc_proto::types::v1::{Date, Location};

/// A location.
pub fn loc(province: &str, city: &str, district: &str) -> Option<Location> {
    Some(Location {
        province: province.into(),
        city: city.into(),
        district: district.into(),
    })
}

/// A partial date (0 = unknown).
pub fn date(year: i32, month: i32, day: i32) -> Option<Date> {
    Some(Date { year, month, day })
}

/// Labels from pairs.
pub fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A park entity.
pub fn park(id: &str, display_name: &str, kind: ParkKind, location: Option<Location>) -> Park {
    Park {
        name: format!("parks/{id}"),
        display_name: display_name.into(),
        kind: kind as i32,
        location,
        ..Default::default()
    }
}

/// A company with a name and a display name.
pub fn company(id: &str, display_name: &str) -> Company {
    Company {
        name: format!("companies/{id}"),
        display_name: display_name.into(),
        ..Default::default()
    }
}

/// A relocation record.
pub fn moved(from: Option<Location>, to: Option<Location>, when: Option<Date>) -> Relocation {
    Relocation {
        from,
        to,
        date: when,
    }
}

/// An annual figure.
pub fn figure(year: i32, revenue_cny: i64, output_value_cny: i64) -> AnnualFigure {
    AnnualFigure {
        year,
        revenue_cny,
        output_value_cny,
    }
}

/// Wraps a park.
pub fn park_entity(p: Park) -> Entity {
    Entity {
        kind: Some(entity::Kind::Park(p)),
    }
}

/// Wraps a company.
pub fn company_entity(c: Company) -> Entity {
    Entity {
        kind: Some(entity::Kind::Company(c)),
    }
}
