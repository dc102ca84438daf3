//! Opaque, tamper-proof page tokens.
//!
//! A token carries the sort key of the last item of a page (keyset paging:
//! the next page starts strictly after it, so an item is never returned
//! twice and an item present throughout never skipped) and a digest of the
//! query (resource, filter and order in canonical form). It is signed with
//! HMAC-SHA256 under a per-store secret: any change to a token, or its use
//! with another query, is rejected.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use prost::Message;
use sha2::{Digest, Sha256};

use crate::order::{SortKey, SortValue};

type HmacSha256 = Hmac<Sha256>;

const MAC_LEN: usize = 32;
/// Tokens longer than this are rejected before decoding.
pub const MAX_TOKEN_CHARS: usize = 4096;

/// The secret page tokens are signed with.
#[derive(Clone)]
pub struct PageTokenKey([u8; 32]);

impl PageTokenKey {
    /// Wraps a 32-byte secret.
    pub fn new(secret: [u8; 32]) -> Self {
        Self(secret)
    }

    fn mac(&self) -> HmacSha256 {
        // HMAC accepts keys of any length, so this cannot fail.
        match HmacSha256::new_from_slice(&self.0) {
            Ok(mac) => mac,
            Err(_) => unreachable!("HMAC takes keys of any length"),
        }
    }
}

impl std::fmt::Debug for PageTokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PageTokenKey(..)")
    }
}

/// Why a page token was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PageTokenError {
    /// Not a token this service issued, or altered.
    #[error("the page token is malformed or was altered")]
    Invalid,
    /// Issued for another filter or order.
    #[error("the page token belongs to a different filter or order_by")]
    QueryMismatch,
}

/// A decoded page token: where the next page starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageToken {
    /// The sort key of the last item returned.
    pub after: SortKey,
    /// The revision the listing is of: every page shows the state as of
    /// the first page, so no item moves between pages.
    pub revision: u64,
}

#[derive(Clone, PartialEq, prost::Message)]
struct Payload {
    #[prost(bytes = "vec", tag = "1")]
    query_digest: Vec<u8>,
    #[prost(message, repeated, tag = "2")]
    values: Vec<WireValue>,
    #[prost(string, tag = "3")]
    name: String,
    #[prost(uint64, tag = "4")]
    revision: u64,
}

#[derive(Clone, PartialEq, prost::Message)]
struct WireValue {
    #[prost(oneof = "wire_value::Kind", tags = "1, 2")]
    kind: Option<wire_value::Kind>,
}

mod wire_value {
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Kind {
        #[prost(string, tag = "1")]
        Str(String),
        #[prost(sint64, tag = "2")]
        Int(i64),
    }
}

/// The digest binding a token to one query.
pub fn query_digest(resource: &str, filter: &str, order_by: &str) -> Vec<u8> {
    let mut h = Sha256::new();
    for part in [resource, filter, order_by] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part.as_bytes());
    }
    h.finalize()[..16].to_vec()
}

impl PageToken {
    /// Encodes and signs the token for the query with `digest`.
    pub fn encode(&self, key: &PageTokenKey, digest: &[u8]) -> String {
        let payload = Payload {
            query_digest: digest.to_vec(),
            values: self
                .after
                .values
                .iter()
                .map(|v| WireValue {
                    kind: Some(match v {
                        SortValue::Str(s) => wire_value::Kind::Str(s.clone()),
                        SortValue::Int(i) => wire_value::Kind::Int(*i),
                    }),
                })
                .collect(),
            name: self.after.name.clone(),
            revision: self.revision,
        };
        let mut bytes = payload.encode_to_vec();
        let mut mac = key.mac();
        mac.update(&bytes);
        bytes.extend_from_slice(&mac.finalize().into_bytes());
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// Verifies and decodes a token issued for the query with `digest`.
    pub fn decode(token: &str, key: &PageTokenKey, digest: &[u8]) -> Result<Self, PageTokenError> {
        if token.len() > MAX_TOKEN_CHARS {
            return Err(PageTokenError::Invalid);
        }
        let bytes = URL_SAFE_NO_PAD
            .decode(token)
            .map_err(|_| PageTokenError::Invalid)?;
        if bytes.len() < MAC_LEN {
            return Err(PageTokenError::Invalid);
        }
        let (body, tag) = bytes.split_at(bytes.len() - MAC_LEN);
        let mut mac = key.mac();
        mac.update(body);
        mac.verify_slice(tag).map_err(|_| PageTokenError::Invalid)?;
        let payload = Payload::decode(body).map_err(|_| PageTokenError::Invalid)?;
        if payload.query_digest != digest {
            return Err(PageTokenError::QueryMismatch);
        }
        let values = payload
            .values
            .into_iter()
            .map(|v| match v.kind {
                Some(wire_value::Kind::Str(s)) => Ok(SortValue::Str(s)),
                Some(wire_value::Kind::Int(i)) => Ok(SortValue::Int(i)),
                None => Err(PageTokenError::Invalid),
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            after: SortKey {
                values,
                name: payload.name,
            },
            revision: payload.revision,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn key() -> PageTokenKey {
        PageTokenKey::new([7; 32])
    }

    #[test]
    fn the_secret_is_never_printed() {
        assert_eq!(format!("{:?}", key()), "PageTokenKey(..)");
    }

    /// A token as long as the limit is read; a longer one, however
    /// genuine, is refused before it is decoded.
    #[test]
    fn the_length_limit_is_inclusive() {
        let d = query_digest("company", "", "");
        let of_len = |want: usize| {
            (0..MAX_TOKEN_CHARS)
                .map(|n| {
                    token(vec![SortValue::Str("x".repeat(n))], "companies/a").encode(&key(), &d)
                })
                .find(|s| s.len() >= want)
                .unwrap()
        };
        let at_limit = of_len(MAX_TOKEN_CHARS);
        assert_eq!(at_limit.len(), MAX_TOKEN_CHARS);
        assert!(PageToken::decode(&at_limit, &key(), &d).is_ok());
        let over = of_len(MAX_TOKEN_CHARS + 1);
        assert!(over.len() > MAX_TOKEN_CHARS);
        assert_eq!(
            PageToken::decode(&over, &key(), &d),
            Err(PageTokenError::Invalid)
        );
    }

    /// A token of a signature alone (an empty payload, signed) is read as
    /// the empty payload it is: a token for no query.
    #[test]
    fn a_signed_empty_payload_is_a_token_for_no_query() {
        let tag = key().mac().finalize().into_bytes();
        let token = URL_SAFE_NO_PAD.encode(tag);
        let d = query_digest("company", "", "");
        assert_eq!(
            PageToken::decode(&token, &key(), &d),
            Err(PageTokenError::QueryMismatch)
        );
        assert_eq!(
            PageToken::decode(&URL_SAFE_NO_PAD.encode(&tag[..31]), &key(), &d),
            Err(PageTokenError::Invalid)
        );
    }

    fn token(values: Vec<SortValue>, name: &str) -> PageToken {
        PageToken {
            after: SortKey {
                values,
                name: name.into(),
            },
            revision: 42,
        }
    }

    #[test]
    fn round_trips_and_binds_to_the_query() {
        let d = query_digest("company", "employees > 1", "");
        let t = token(
            vec![SortValue::Int(-3), SortValue::Str("x".into())],
            "companies/a",
        );
        let s = t.encode(&key(), &d);
        assert_eq!(PageToken::decode(&s, &key(), &d), Ok(t));
        let other = query_digest("company", "employees > 2", "");
        assert_eq!(
            PageToken::decode(&s, &key(), &other),
            Err(PageTokenError::QueryMismatch)
        );
        let other_key = PageTokenKey::new([8; 32]);
        assert_eq!(
            PageToken::decode(&s, &other_key, &d),
            Err(PageTokenError::Invalid)
        );
    }

    proptest! {
        /// Flipping any bit of any byte of a token is detected.
        #[test]
        fn any_tampering_is_rejected(
            n in any::<i64>(),
            name in "[a-z]{1,20}",
            byte in any::<prop::sample::Index>(),
            bit in 0u8..8,
        ) {
            let d = query_digest("park", "", "");
            let s = token(vec![SortValue::Int(n)], &name).encode(&key(), &d);
            let mut raw = URL_SAFE_NO_PAD.decode(&s).unwrap();
            let i = byte.index(raw.len());
            raw[i] ^= 1 << bit;
            let tampered = URL_SAFE_NO_PAD.encode(raw);
            prop_assert_eq!(PageToken::decode(&tampered, &key(), &d), Err(PageTokenError::Invalid));
        }

        /// Arbitrary strings never decode and never panic.
        #[test]
        fn garbage_is_rejected(s in ".{0,200}") {
            let d = query_digest("park", "", "");
            prop_assert!(PageToken::decode(&s, &key(), &d).is_err());
        }
    }
}
