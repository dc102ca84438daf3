//! Canonical proto3 JSON for any message of the API, exactly as grpcurl
//! prints it (lowerCamelCase names, 64-bit integers as strings, enums by
//! name, default values omitted), through the descriptor set.

use std::sync::LazyLock;

use prost::Message;
use prost_reflect::{DescriptorPool, DynamicMessage, MessageDescriptor, SerializeOptions};

/// Why a JSON conversion failed.
#[derive(Debug, thiserror::Error)]
pub enum JsonError {
    /// The message type is not in the descriptor set (a bug).
    #[error("unknown message type {0}")]
    UnknownType(String),
    /// The JSON does not describe a valid message of the type.
    #[error("{0}")]
    Invalid(String),
}

static POOL: LazyLock<Result<DescriptorPool, String>> =
    LazyLock::new(|| DescriptorPool::decode(crate::FILE_DESCRIPTOR_SET).map_err(|e| e.to_string()));

fn descriptor(full_name: &str) -> Result<MessageDescriptor, JsonError> {
    let pool = POOL
        .as_ref()
        .map_err(|e| JsonError::UnknownType(format!("{full_name}: {e}")))?;
    pool.get_message_by_name(full_name)
        .ok_or_else(|| JsonError::UnknownType(full_name.to_string()))
}

/// A message with a known protobuf type name.
pub trait Named: Message + Default {
    /// The fully qualified protobuf name, e.g. `zgc.registry.v1.Company`.
    const FULL_NAME: &'static str;
}

macro_rules! named {
    ($($t:ty => $n:literal),* $(,)?) => {
        $(impl Named for $t { const FULL_NAME: &'static str = $n; })*
    };
}

named! {
    crate::registry::v1::Park => "zgc.registry.v1.Park",
    crate::registry::v1::Company => "zgc.registry.v1.Company",
    crate::registry::v1::Entity => "zgc.registry.v1.Entity",
    crate::registry::v1::ChangeEvent => "zgc.registry.v1.ChangeEvent",
    crate::registry::v1::WatchChangesResponse => "zgc.registry.v1.WatchChangesResponse",
    crate::registry::v1::ListParksResponse => "zgc.registry.v1.ListParksResponse",
    crate::registry::v1::ListCompaniesResponse => "zgc.registry.v1.ListCompaniesResponse",
    crate::stats::v1::Summary => "zgc.stats.v1.Summary",
    crate::stats::v1::RankParksResponse => "zgc.stats.v1.RankParksResponse",
    crate::stats::v1::GetRelocationFlowsResponse => "zgc.stats.v1.GetRelocationFlowsResponse",
    crate::stats::v1::GetBranchFootprintResponse => "zgc.stats.v1.GetBranchFootprintResponse",
    crate::stats::v1::GetTimeSeriesResponse => "zgc.stats.v1.GetTimeSeriesResponse",
}

/// The canonical JSON value of a message. Map entries are sorted by key,
/// so a message always renders to the same text.
pub fn to_value<M: Named>(message: &M) -> Result<serde_json::Value, JsonError> {
    let desc = descriptor(M::FULL_NAME)?;
    let dynamic = DynamicMessage::decode(desc.clone(), message.encode_to_vec().as_slice())
        .map_err(|e| JsonError::Invalid(e.to_string()))?;
    let mut value = dynamic
        .serialize_with_options(serde_json::value::Serializer, &SerializeOptions::new())
        .map_err(|e| JsonError::Invalid(e.to_string()))?;
    sort_maps(&mut value, &desc);
    Ok(value)
}

/// Sorts the entries of every map field (prost-reflect holds them in a
/// `HashMap`, whose order varies from run to run).
fn sort_maps(value: &mut serde_json::Value, desc: &MessageDescriptor) {
    let Some(object) = value.as_object_mut() else {
        return;
    };
    for field in desc.fields() {
        let Some(v) = object.get_mut(field.json_name()) else {
            continue;
        };
        match field.kind() {
            prost_reflect::Kind::Message(inner) if field.is_map() => {
                if let Some(map) = v.as_object_mut() {
                    map.sort_keys();
                    if let prost_reflect::Kind::Message(value_desc) =
                        inner.map_entry_value_field().kind()
                    {
                        for entry in map.values_mut() {
                            sort_maps(entry, &value_desc);
                        }
                    }
                }
            }
            prost_reflect::Kind::Message(inner) => match v {
                serde_json::Value::Array(items) => {
                    items.iter_mut().for_each(|i| sort_maps(i, &inner))
                }
                other => sort_maps(other, &inner),
            },
            _ => {}
        }
    }
}

/// The canonical JSON text of a message, on one line.
pub fn to_string<M: Named>(message: &M) -> Result<String, JsonError> {
    Ok(to_value(message)?.to_string())
}

/// Parses canonical JSON (lowerCamelCase or original field names) into a
/// message. Unknown fields are an error.
pub fn from_str<M: Named>(text: &str) -> Result<M, JsonError> {
    let desc = descriptor(M::FULL_NAME)?;
    let mut de = serde_json::Deserializer::from_str(text);
    let dynamic = DynamicMessage::deserialize(desc, &mut de)
        .map_err(|e| JsonError::Invalid(e.to_string()))?;
    de.end().map_err(|e| JsonError::Invalid(e.to_string()))?;
    M::decode(dynamic.encode_to_vec().as_slice()).map_err(|e| JsonError::Invalid(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::v1::{Company, Entity, entity};
    use crate::types::v1::Location;

    #[test]
    fn round_trips_like_grpcurl() {
        let c = Company {
            name: "companies/a".into(),
            display_name: "A".into(),
            investment_cny: 35_000_000_000,
            location: Some(Location {
                province: "Hebei".into(),
                city: "Baoding".into(),
                district: String::new(),
            }),
            ..Default::default()
        };
        let e = Entity {
            kind: Some(entity::Kind::Company(c)),
        };
        let text = to_string(&e).unwrap();
        assert_eq!(
            text,
            r#"{"company":{"name":"companies/a","displayName":"A","location":{"province":"Hebei","city":"Baoding"},"investmentCny":"35000000000"}}"#
        );
        assert_eq!(from_str::<Entity>(&text).unwrap(), e);
        let snake = r#"{"company": {"display_name": "A", "investment_cny": 35000000000, "name": "companies/a", "location": {"province": "Hebei", "city": "Baoding"}}}"#;
        assert_eq!(from_str::<Entity>(snake).unwrap(), e);
        assert!(from_str::<Entity>(r#"{"company": {"nope": 1}}"#).is_err());
        assert!(from_str::<Entity>(r#"{"company": {}} trailing"#).is_err());
    }

    #[test]
    fn map_entries_come_out_sorted() {
        let labels = (0..20)
            .rev()
            .map(|i| (format!("k{i:02}"), "v".to_string()))
            .collect();
        let c = Company {
            labels,
            ..Default::default()
        };
        let text = to_string(&c).unwrap();
        let keys: Vec<&str> = text
            .match_indices("\"k")
            .map(|(i, _)| &text[i + 1..i + 4])
            .collect();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys.len(), 20);
        assert_eq!(keys, sorted);
    }
}
