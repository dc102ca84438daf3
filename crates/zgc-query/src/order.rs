//! AIP-132 `order_by`: a comma list of fields, each optionally followed by
//! `desc`; ties are always broken by the resource name, ascending.

use std::cmp::Ordering;

use crate::schema::Schema;

/// The most fields one `order_by` may name.
pub const MAX_ORDER_FIELDS: usize = 8;

/// Why an `order_by` was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid order_by at position {position}: {message}")]
pub struct OrderError {
    /// 1-based character column.
    pub position: usize,
    /// What is wrong there.
    pub message: String,
}

/// A parsed `order_by`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OrderBy {
    fields: Vec<(String, bool)>,
}

/// One value of a sort key.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum SortValue {
    /// A string, compared bytewise.
    Str(String),
    /// An integer (also dates as `yyyymmdd` and times as nanoseconds).
    Int(i64),
}

/// The sort key of one record under an [`OrderBy`]: the values of the
/// ordered fields, then the resource name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SortKey {
    /// The values of the `order_by` fields, in order.
    pub values: Vec<SortValue>,
    /// The resource name, the final tie-breaker.
    pub name: String,
}

impl OrderBy {
    /// Parses `text` against the schema's orderable fields.
    pub fn parse(text: &str, schema: &Schema) -> Result<Self, OrderError> {
        let mut fields: Vec<(String, bool)> = Vec::new();
        if text.trim().is_empty() {
            return Ok(Self { fields });
        }
        let mut offset = 0;
        for part in text.split(',') {
            let start = offset + part.chars().take_while(|c| c.is_whitespace()).count() + 1;
            offset += part.chars().count() + 1;
            let words: Vec<&str> = part.split_whitespace().collect();
            let err = |message: String| OrderError {
                position: start,
                message,
            };
            let (field, desc) = match words.as_slice() {
                [field] => (*field, false),
                [field, "desc"] => (*field, true),
                [] => return Err(err("empty field in order_by".into())),
                [_, other, ..] => {
                    return Err(err(format!(
                        "expected `desc` or `,` after the field, found `{other}`"
                    )));
                }
            };
            if !schema.order_fields.contains(&field) {
                return Err(err(format!(
                    "cannot order {} by `{field}`; orderable fields: {}",
                    schema.resource,
                    schema.order_fields.join(", ")
                )));
            }
            if fields.iter().any(|(f, _)| f == field) {
                return Err(err(format!("`{field}` appears twice")));
            }
            fields.push((field.to_string(), desc));
            if fields.len() > MAX_ORDER_FIELDS {
                return Err(err(format!("at most {MAX_ORDER_FIELDS} fields")));
            }
        }
        Ok(Self { fields })
    }

    /// The ordered fields and whether each is descending.
    pub fn fields(&self) -> &[(String, bool)] {
        &self.fields
    }

    /// Whether this is the default order (by name alone).
    pub fn is_by_name(&self) -> bool {
        self.fields.is_empty()
    }

    /// Compares two sort keys of this order.
    pub fn compare(&self, a: &SortKey, b: &SortKey) -> Ordering {
        for (i, (_, desc)) in self.fields.iter().enumerate() {
            let ord = a.values.get(i).cmp(&b.values.get(i));
            let ord = if *desc { ord.reverse() } else { ord };
            if ord != Ordering::Equal {
                return ord;
            }
        }
        a.name.cmp(&b.name)
    }
}

/// Canonical text (`field desc, field`), which parses back to the same order.
impl std::fmt::Display for OrderBy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, (field, desc)) in self.fields.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            f.write_str(field)?;
            if *desc {
                f.write_str(" desc")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCHEMA: Schema = Schema {
        resource: "company",
        filter_fields: &[],
        order_fields: &["display_name", "employees"],
    };

    #[test]
    fn parses_and_prints_canonically() {
        let o = OrderBy::parse(" employees desc ,display_name", &SCHEMA).unwrap();
        assert_eq!(o.to_string(), "employees desc, display_name");
        assert_eq!(
            o.fields(),
            [
                ("employees".to_string(), true),
                ("display_name".to_string(), false)
            ]
        );
        assert!(!o.is_by_name());
        assert!(OrderBy::parse("", &SCHEMA).unwrap().is_by_name());
    }

    #[test]
    fn at_most_the_largest_number_of_fields() {
        const MANY: Schema = Schema {
            resource: "company",
            filter_fields: &[],
            order_fields: &["f0", "f1", "f2", "f3", "f4", "f5", "f6", "f7", "f8"],
        };
        let order = |n: usize| {
            (0..n)
                .map(|i| format!("f{i}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        assert_eq!(
            OrderBy::parse(&order(MAX_ORDER_FIELDS), &MANY)
                .unwrap()
                .fields()
                .len(),
            MAX_ORDER_FIELDS
        );
        let e = OrderBy::parse(&order(MAX_ORDER_FIELDS + 1), &MANY).unwrap_err();
        assert!(e.message.contains("at most"), "{e:?}");
    }

    #[test]
    fn rejects_bad_orders_with_positions() {
        let e = OrderBy::parse("employees, nope", &SCHEMA).unwrap_err();
        assert_eq!(e.position, 12);
        assert!(OrderBy::parse("employees asc", &SCHEMA).is_err());
        assert!(OrderBy::parse("employees,,", &SCHEMA).is_err());
        assert!(OrderBy::parse("employees, employees desc", &SCHEMA).is_err());
    }

    #[test]
    fn compare_respects_direction_and_name_tie_break() {
        let o = OrderBy::parse("employees desc", &SCHEMA).unwrap();
        let k = |e, n: &str| SortKey {
            values: vec![SortValue::Int(e)],
            name: n.into(),
        };
        assert_eq!(o.compare(&k(5, "a"), &k(3, "b")), Ordering::Less);
        assert_eq!(o.compare(&k(3, "a"), &k(3, "b")), Ordering::Less);
        assert_eq!(o.compare(&k(3, "b"), &k(3, "a")), Ordering::Greater);
    }
}
