//! Keyset paging (pure): a validated request ([`Query`]: filter, order,
//! page size, the signed token's position and revision), and a page built
//! from candidates in one pass ([`Page`]): the `page_size` smallest
//! matches strictly after the token's sort key, kept in a bounded heap,
//! with the exact number of matches.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use bytes::Bytes;
use zgc_index::Listing;
use zgc_proto::wire::reason;
use zgc_query::page_token::query_digest;
use zgc_query::{Filter, OrderBy, PageToken, PageTokenError, PageTokenKey, SortKey};

use super::records::Listable;
use crate::error::ApiError;

/// The page size when the request says 0.
pub const DEFAULT_PAGE_SIZE: usize = 50;
/// The largest page.
pub const MAX_PAGE_SIZE: usize = 1000;

/// A validated list request.
pub struct Query {
    filter: Filter,
    order: OrderBy,
    page_size: usize,
    after: Option<SortKey>,
    as_of: Option<u64>,
    digest: Vec<u8>,
}

/// One page of results.
pub struct Page<T> {
    /// The items.
    pub items: Vec<T>,
    /// The next page's token, empty on the last page.
    pub next_page_token: String,
    /// The number of matches.
    pub total_size: i32,
}

impl Query {
    /// Validates the list request fields of resource `T`.
    pub fn parse<T: Listable>(
        page_size: i32,
        page_token: &str,
        filter: &str,
        order_by: &str,
        key: &PageTokenKey,
    ) -> Result<Self, ApiError> {
        let page_size = match page_size {
            n if n < 0 => return Err(ApiError::invalid("page_size", "must not be negative")),
            0 => DEFAULT_PAGE_SIZE,
            n => usize::try_from(n)
                .unwrap_or(MAX_PAGE_SIZE)
                .min(MAX_PAGE_SIZE),
        };
        let filter =
            Filter::parse(filter, &T::SCHEMA).map_err(|e| ApiError::InvalidWithReason {
                field: "filter".into(),
                description: e.to_string(),
                reason: reason::INVALID_FILTER,
            })?;
        let order = OrderBy::parse(order_by, &T::SCHEMA)
            .map_err(|e| ApiError::invalid("order_by", e.to_string()))?;
        let digest = query_digest(T::SCHEMA.resource, &filter.to_string(), &order.to_string());
        let (after, as_of) = if page_token.is_empty() {
            (None, None)
        } else {
            let token = PageToken::decode(page_token, key, &digest).map_err(|e| {
                ApiError::InvalidWithReason {
                    field: "page_token".into(),
                    description: match e {
                        PageTokenError::Invalid => {
                            "the page token is malformed or was altered".into()
                        }
                        PageTokenError::QueryMismatch => {
                            "the page token was issued for a different filter or order_by".into()
                        }
                    },
                    reason: reason::INVALID_PAGE_TOKEN,
                }
            })?;
            if token.after.values.len() != order.fields().len() {
                return Err(ApiError::invalid(
                    "page_token",
                    "the page token does not fit this order_by",
                ));
            }
            (Some(token.after), Some(token.revision))
        };
        Ok(Self {
            filter,
            order,
            page_size,
            after,
            as_of,
            digest,
        })
    }

    /// The revision a continued listing is of (from its page token).
    pub fn as_of(&self) -> Option<u64> {
        self.as_of
    }

    /// The value the filter pins `field` to, for index lookups.
    pub fn pinned(&self, field: &str) -> Option<&str> {
        self.filter.required_equality(field)
    }

    /// Whether the order is by name and nothing else needs every match:
    /// then the caller may scan a name-ordered source from
    /// [`Query::resume_name`] and stop early, with `total` from a counter.
    pub fn is_plain_name_scan(&self) -> bool {
        self.order.is_by_name() && self.filter.expr().is_none()
    }

    /// The name the page starts after, in name order.
    pub fn resume_name(&self) -> Option<&str> {
        self.after.as_ref().map(|k| k.name.as_str())
    }

    /// The request as the indexes take it: a page and one more, so that
    /// the last says whether there is a next page.
    pub fn listing(&self) -> Listing<'_> {
        Listing {
            filter: &self.filter,
            order: &self.order,
            after: self.after.as_ref(),
            limit: self.page_size + 1,
        }
    }

    /// The page made of `items` (the first matches after the token, in
    /// order, at most a page and one more) and the number of matches.
    pub fn page_of<T: Listable>(
        &self,
        mut items: Vec<T>,
        total: u64,
        revision: u64,
        key: &PageTokenKey,
    ) -> Page<T> {
        let more = items.len() > self.page_size;
        items.truncate(self.page_size);
        let next_page_token = match (more, items.last()) {
            (true, Some(last)) => PageToken {
                after: self.key_of(last),
                revision,
            }
            .encode(key, &self.digest),
            _ => String::new(),
        };
        Page {
            items,
            next_page_token,
            total_size: i32::try_from(total).unwrap_or(i32::MAX),
        }
    }

    /// As [`Query::page_of`], for items as their stored encodings: only
    /// the last one kept is decoded (by `decode`), for the next page's
    /// token.
    pub fn encoded_page_of<T: Listable>(
        &self,
        mut items: Vec<Bytes>,
        total: u64,
        revision: u64,
        key: &PageTokenKey,
        decode: impl FnOnce(&Bytes) -> Result<T, ApiError>,
    ) -> Result<Page<Bytes>, ApiError> {
        let more = items.len() > self.page_size;
        items.truncate(self.page_size);
        let next_page_token = match (more, items.last()) {
            (true, Some(last)) => PageToken {
                after: self.key_of(&decode(last)?),
                revision,
            }
            .encode(key, &self.digest),
            _ => String::new(),
        };
        Ok(Page {
            items,
            next_page_token,
            total_size: i32::try_from(total).unwrap_or(i32::MAX),
        })
    }

    fn key_of<T: Listable>(&self, item: &T) -> SortKey {
        item.sort_key(&self.order)
    }

    /// Builds the page from candidates (any order), which must be the state
    /// as of `revision`. `known_total` is the number of matches when the
    /// caller knows it (unfiltered listing).
    pub fn page<T: Listable, E>(
        &self,
        candidates: impl Iterator<Item = Result<T, E>>,
        known_total: Option<u64>,
        revision: u64,
        key: &PageTokenKey,
    ) -> Result<Page<T>, E> {
        struct Entry<'q, T> {
            key: SortKey,
            item: T,
            order: &'q OrderBy,
        }
        impl<T> PartialEq for Entry<'_, T> {
            fn eq(&self, other: &Self) -> bool {
                self.cmp(other) == Ordering::Equal
            }
        }
        impl<T> Eq for Entry<'_, T> {}
        impl<T> PartialOrd for Entry<'_, T> {
            fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
                Some(self.cmp(other))
            }
        }
        impl<T> Ord for Entry<'_, T> {
            fn cmp(&self, other: &Self) -> Ordering {
                self.order.compare(&self.key, &other.key)
            }
        }

        let stop_early = known_total.is_some() && self.order.is_by_name();
        let keep = self.page_size + 1;
        let mut heap: BinaryHeap<Entry<'_, T>> = BinaryHeap::with_capacity(keep + 1);
        let mut total: u64 = 0;
        for candidate in candidates {
            let item = candidate?;
            if !self.filter.matches(&item) {
                continue;
            }
            total += 1;
            let key = self.key_of(&item);
            if self
                .after
                .as_ref()
                .is_some_and(|a| self.order.compare(&key, a) != Ordering::Greater)
            {
                continue;
            }
            if heap.len() == keep {
                // The heap's top is the largest kept key: a key not below
                // it cannot be on the page (nor, in name order, any later).
                let beyond = heap
                    .peek()
                    .is_some_and(|top| self.order.compare(&key, &top.key) != Ordering::Less);
                if beyond && stop_early {
                    break;
                }
                if beyond {
                    continue;
                }
                heap.pop();
            }
            heap.push(Entry {
                key,
                item,
                order: &self.order,
            });
        }
        let mut entries = heap.into_sorted_vec();
        let more = entries.len() > self.page_size;
        entries.truncate(self.page_size);
        let next_page_token = match (more, entries.last()) {
            (true, Some(last)) => PageToken {
                after: last.key.clone(),
                revision,
            }
            .encode(key, &self.digest),
            _ => String::new(),
        };
        let total = known_total.unwrap_or(total);
        Ok(Page {
            items: entries.into_iter().map(|e| e.item).collect(),
            next_page_token,
            total_size: i32::try_from(total).unwrap_or(i32::MAX),
        })
    }
}
