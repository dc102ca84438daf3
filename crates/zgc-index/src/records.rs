//! Parks and companies as records the filter language and ordering read
//! (`zgc_query::Record`): which fields they have, of which types, and
//! each one's value and sort key. The one description of both, used by
//! the registry's filters and by the indexes alike.

use zgc_proto::registry::v1::{Company, Park, ParkKind};
use zgc_proto::types::v1::{Date, Location};
use zgc_query::{FieldType, OrderBy, Record, Schema, SortKey, SortValue, Value};

const PARK_KINDS: &[&str] = &[
    "PARK_KIND_SCIENCE_PARK",
    "PARK_KIND_INNOVATION_CENTER",
    "PARK_KIND_INDUSTRIAL_PARK",
    "PARK_KIND_DEVELOPMENT_ZONE",
    "PARK_KIND_INCUBATOR",
];

/// What ListParks filters and orders by.
pub const PARK_SCHEMA: Schema = Schema {
    resource: "parks",
    filter_fields: &[
        ("display_name", FieldType::String),
        ("kind", FieldType::Enum(PARK_KINDS)),
        ("location.province", FieldType::String),
        ("location.city", FieldType::String),
        ("location.district", FieldType::String),
        ("parent_park", FieldType::String),
        ("sectors", FieldType::StringList),
        ("labels", FieldType::StringMap),
        ("established.year", FieldType::Int),
    ],
    order_fields: &["display_name", "established", "create_time"],
};

/// What ListCompanies filters and orders by.
pub const COMPANY_SCHEMA: Schema = Schema {
    resource: "companies",
    filter_fields: &[
        ("display_name", FieldType::String),
        ("location.province", FieldType::String),
        ("location.city", FieldType::String),
        ("location.district", FieldType::String),
        ("park", FieldType::String),
        ("parent_company", FieldType::String),
        ("sectors", FieldType::StringList),
        ("labels", FieldType::StringMap),
        ("employees", FieldType::Int),
        ("investment_cny", FieldType::Int),
        ("high_tech", FieldType::Bool),
        ("listed", FieldType::Bool),
        ("founded.year", FieldType::Int),
    ],
    order_fields: &[
        "display_name",
        "employees",
        "investment_cny",
        "founded",
        "create_time",
    ],
};

/// A listable resource: what the filter reads ([`Record`]), how it is
/// ordered, and which of its filter fields an ordering index answers.
pub trait Resource: Record + Clone + Send + Sync + 'static {
    /// Its filter and order schema.
    const SCHEMA: Schema;
    /// Filter fields whose values are exactly the sort values of the
    /// order field of the same name (always present, same type), so that
    /// the ordering index answers equality and ranges on them.
    const RANGED: &'static [&'static str];
    /// Its resource name.
    fn name(&self) -> &str;
    /// Its value for an orderable field.
    fn sort_value(&self, field: &str) -> SortValue;
    /// Its sort key under `order`: the ordered fields' values, then its
    /// name.
    fn sort_key(&self, order: &OrderBy) -> SortKey {
        SortKey {
            values: order
                .fields()
                .iter()
                .map(|(f, _)| self.sort_value(f))
                .collect(),
            name: self.name().to_string(),
        }
    }
}

fn location_value<'a>(l: Option<&'a Location>, field: &str) -> Option<Value<'a>> {
    let l = l?;
    Some(Value::Str(match field {
        "location.province" => &l.province,
        "location.city" => &l.city,
        _ => &l.district,
    }))
}

fn date_sort(d: Option<&Date>) -> SortValue {
    SortValue::Int(d.map_or(0, |d| {
        i64::from(d.year) * 10_000 + i64::from(d.month) * 100 + i64::from(d.day)
    }))
}

fn time_sort(t: Option<&prost_types::Timestamp>) -> SortValue {
    SortValue::Int(t.map_or(0, |t| {
        t.seconds
            .saturating_mul(1_000_000_000)
            .saturating_add(i64::from(t.nanos))
    }))
}

fn labels<'a>(map: &'a std::collections::BTreeMap<String, String>, key: Option<&str>) -> Value<'a> {
    match key {
        Some(k) => Value::MapEntry(map.get(k).map(String::as_str)),
        None => Value::MapKeys(map.keys().map(String::as_str).collect()),
    }
}

/// A park seen by the filter.
#[derive(Debug, Clone)]
pub struct ParkRecord(pub Park);

impl Record for ParkRecord {
    fn value(&self, field: &str, key: Option<&str>) -> Option<Value<'_>> {
        let p = &self.0;
        Some(match field {
            "display_name" => Value::Str(&p.display_name),
            "kind" => Value::Str(ParkKind::try_from(p.kind).map_or("", |k| k.as_str_name())),
            "location.province" | "location.city" | "location.district" => {
                return location_value(p.location.as_ref(), field);
            }
            "parent_park" => Value::Str(&p.parent_park),
            "sectors" => Value::List(&p.sectors),
            "labels" => labels(&p.labels, key),
            "established.year" => Value::Int(p.established.map_or(0, |d| i64::from(d.year))),
            _ => return None,
        })
    }
}

impl Resource for ParkRecord {
    const SCHEMA: Schema = PARK_SCHEMA;
    const RANGED: &'static [&'static str] = &["display_name"];

    fn name(&self) -> &str {
        &self.0.name
    }

    fn sort_value(&self, field: &str) -> SortValue {
        match field {
            "display_name" => SortValue::Str(self.0.display_name.clone()),
            "established" => date_sort(self.0.established.as_ref()),
            _ => time_sort(self.0.create_time.as_ref()),
        }
    }
}

/// A company seen by the filter.
#[derive(Debug, Clone)]
pub struct CompanyRecord(pub Company);

impl Record for CompanyRecord {
    fn value(&self, field: &str, key: Option<&str>) -> Option<Value<'_>> {
        let c = &self.0;
        Some(match field {
            "display_name" => Value::Str(&c.display_name),
            "location.province" | "location.city" | "location.district" => {
                return location_value(c.location.as_ref(), field);
            }
            "park" => Value::Str(&c.park),
            "parent_company" => Value::Str(&c.parent_company),
            "sectors" => Value::List(&c.sectors),
            "labels" => labels(&c.labels, key),
            "employees" => Value::Int(i64::from(c.employees)),
            "investment_cny" => Value::Int(c.investment_cny),
            "high_tech" => Value::Bool(c.high_tech),
            "listed" => Value::Bool(c.listed),
            "founded.year" => Value::Int(c.founded.map_or(0, |d| i64::from(d.year))),
            _ => return None,
        })
    }
}

impl Resource for CompanyRecord {
    const SCHEMA: Schema = COMPANY_SCHEMA;
    const RANGED: &'static [&'static str] = &["display_name", "employees", "investment_cny"];

    fn name(&self) -> &str {
        &self.0.name
    }

    fn sort_value(&self, field: &str) -> SortValue {
        let c = &self.0;
        match field {
            "display_name" => SortValue::Str(c.display_name.clone()),
            "employees" => SortValue::Int(i64::from(c.employees)),
            "investment_cny" => SortValue::Int(c.investment_cny),
            "founded" => date_sort(c.founded.as_ref()),
            _ => time_sort(c.create_time.as_ref()),
        }
    }
}
