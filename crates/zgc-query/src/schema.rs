//! How a resource type describes its filterable and orderable fields.

/// The type of a filterable field, which decides the operators and literals
/// allowed with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldType {
    /// A string: every comparison, with a string literal.
    String,
    /// A 64-bit integer: every comparison, with an integer literal.
    Int,
    /// A boolean: `=` and `!=` with `true` or `false`.
    Bool,
    /// An enum: `=` and `!=` with one of the listed value names (bare or
    /// quoted).
    Enum(&'static [&'static str]),
    /// A repeated string: only the has operator, `field:"value"`.
    StringList,
    /// A string map, addressed as `field.<key>`: comparisons on the value
    /// at a key, `field.<key>:*` for presence, and `field:"key"`.
    StringMap,
}

/// The fields of one resource type.
#[derive(Debug, Clone, Copy)]
pub struct Schema {
    /// The resource's name for error messages, e.g. "company".
    pub resource: &'static str,
    /// Filterable fields and their types.
    pub filter_fields: &'static [(&'static str, FieldType)],
    /// Fields `order_by` accepts.
    pub order_fields: &'static [&'static str],
}

impl Schema {
    pub(crate) fn field_type(&self, path: &str) -> Option<FieldType> {
        self.filter_fields
            .iter()
            .find(|(name, _)| *name == path)
            .map(|(_, t)| *t)
    }
}

/// A field value read from a record.
#[derive(Debug, Clone, PartialEq)]
pub enum Value<'a> {
    /// A string (also enums, by value name).
    Str(&'a str),
    /// An integer.
    Int(i64),
    /// A boolean.
    Bool(bool),
    /// A repeated string.
    List(&'a [String]),
    /// A map value at a key (`None` when the key is absent).
    MapEntry(Option<&'a str>),
    /// The key list of a map, for `field:"key"`.
    MapKeys(Vec<&'a str>),
}

/// A resource the filter and ordering can read.
pub trait Record {
    /// The value of a filterable field. For a [`FieldType::StringMap`] field
    /// `labels`, `map_key` is `Some(key)` for `labels.<key>` (answer
    /// [`Value::MapEntry`]) and `None` for `labels` itself (answer
    /// [`Value::MapKeys`]).
    fn value(&self, field: &str, map_key: Option<&str>) -> Option<Value<'_>>;
}
