//! Where list pages come from: the store's listing indexes once they are
//! loaded; before, the live state (with its reference indexes and
//! counters) when nothing has changed since the listing's revision, else
//! a store snapshot as of that revision. The paging itself is in
//! [`super::paging`].

use bytes::Bytes;
use prost::Message;
use zgc_index::Listing;
use zgc_proto::registry::v1::Company;
use zgc_proto::wire::reason;
use zgc_query::PageTokenKey;
use zgc_store::{Store, StoreError};

use super::paging::{Page, Query};
use super::records::{CompanyRecord, Listable, ParkRecord};
use super::scans::Abandoned;
use crate::error::ApiError;
use crate::validate;

/// IDs read from an index as the page goes: a park's companies can be
/// most of the store, so they are never collected.
type Ids = Box<dyn Iterator<Item = Result<String, StoreError>>>;
type Items<T> = Box<dyn Iterator<Item = Result<T, StoreError>>>;

/// A listable resource and how the store holds it.
pub trait Stored: Listable {
    /// The IDs a reference index gives for the filter's pinned reference
    /// field, if it pins one.
    fn indexed(store: &Store, q: &Query) -> Option<Ids>;
    /// One by ID.
    fn get(store: &Store, id: &str) -> Result<Option<Self>, StoreError>;
    /// All, in name order, after the name `after`.
    fn scan_after(store: &Store, after: Option<&str>) -> Items<Self>;
    /// How many there are.
    fn count(store: &Store) -> Result<u64, StoreError>;
    /// A page listed from the store's indexes as of `revision`, if they
    /// answer.
    fn listed(
        store: &Store,
        listing: &Listing<'_>,
        revision: u64,
    ) -> Result<Option<(Vec<Self>, u64)>, StoreError>;
}

fn ids(q: &Query, field: &str, collection: &str, lookup: impl FnOnce(&str) -> Ids) -> Option<Ids> {
    let target = q.pinned(field)?;
    Some(
        validate::parse_name(target, collection)
            .map_or_else(|| Box::new(std::iter::empty()) as Ids, lookup),
    )
}

impl Stored for ParkRecord {
    fn indexed(store: &Store, q: &Query) -> Option<Ids> {
        ids(q, "parent_park", "parks", |id| {
            Box::new(store.child_park_ids(id))
        })
    }
    fn get(store: &Store, id: &str) -> Result<Option<Self>, StoreError> {
        Ok(store.get_park(id)?.map(ParkRecord))
    }
    fn scan_after(store: &Store, after: Option<&str>) -> Items<Self> {
        let after = after.and_then(|n| n.strip_prefix("parks/"));
        Box::new(store.parks_after(after).map(|r| r.map(ParkRecord)))
    }
    fn count(store: &Store) -> Result<u64, StoreError> {
        store.park_count()
    }
    fn listed(
        store: &Store,
        listing: &Listing<'_>,
        revision: u64,
    ) -> Result<Option<(Vec<Self>, u64)>, StoreError> {
        Ok(store
            .list_parks(listing, revision)?
            .map(|page| (page.items.into_iter().map(ParkRecord).collect(), page.total)))
    }
}

impl Stored for CompanyRecord {
    fn indexed(store: &Store, q: &Query) -> Option<Ids> {
        ids(q, "park", "parks", |id| {
            Box::new(store.company_ids_in_park(id))
        })
        .or_else(|| {
            ids(q, "parent_company", "companies", |id| {
                Box::new(store.branch_ids(id))
            })
        })
    }
    fn get(store: &Store, id: &str) -> Result<Option<Self>, StoreError> {
        Ok(store.get_company(id)?.map(CompanyRecord))
    }
    fn scan_after(store: &Store, after: Option<&str>) -> Items<Self> {
        let after = after.and_then(|n| n.strip_prefix("companies/"));
        Box::new(store.companies_after(after).map(|r| r.map(CompanyRecord)))
    }
    fn count(store: &Store) -> Result<u64, StoreError> {
        store.company_count()
    }
    fn listed(
        store: &Store,
        listing: &Listing<'_>,
        revision: u64,
    ) -> Result<Option<(Vec<Self>, u64)>, StoreError> {
        Ok(store.list_companies(listing, revision)?.map(|page| {
            (
                page.items.into_iter().map(CompanyRecord).collect(),
                page.total,
            )
        }))
    }
}

/// `items`, cut short with [`ApiError::Cancelled`] once the caller has
/// given up: a scan of most of the store then stops where it is.
fn while_wanted<'a, T, E: Into<ApiError>>(
    items: impl Iterator<Item = Result<T, E>> + 'a,
    abandoned: &'a Abandoned,
) -> impl Iterator<Item = Result<T, ApiError>> + 'a {
    items.map(move |item| {
        if abandoned.is_set() {
            Err(ApiError::Cancelled)
        } else {
            item.map_err(Into::into)
        }
    })
}

/// A page from the live state, which is the state at `revision`.
fn live<T: Stored>(
    store: &Store,
    q: &Query,
    revision: u64,
    key: &PageTokenKey,
    abandoned: &Abandoned,
) -> Result<Page<T>, ApiError> {
    if let Some(ids) = T::indexed(store, q) {
        let items = ids.filter_map(|id| id.and_then(|id| T::get(store, &id)).transpose());
        return q.page(while_wanted(items, abandoned), None, revision, key);
    }
    if q.is_plain_name_scan() {
        let total = T::count(store)?;
        let items = T::scan_after(store, q.resume_name());
        return q.page(while_wanted(items, abandoned), Some(total), revision, key);
    }
    let items = T::scan_after(store, None);
    q.page(while_wanted(items, abandoned), None, revision, key)
}

/// A store error as a listing reports it: a revision no longer in the
/// change history is an expired page token.
fn expired(e: StoreError) -> ApiError {
    match e {
        StoreError::Compacted { .. } => ApiError::InvalidWithReason {
            field: "page_token".into(),
            description:
                "the listing's revision has left the change history; list again from the first page"
                    .into(),
            reason: reason::PAGE_TOKEN_EXPIRED,
        },
        other => other.into(),
    }
}

/// One page of companies, each as its stored encoding (from the indexes,
/// sent as they are), or encoded from a page read without them.
pub fn encoded_company_page(
    store: &Store,
    q: &Query,
    key: &PageTokenKey,
    abandoned: &Abandoned,
) -> Result<Page<Bytes>, ApiError> {
    let revision = q.as_of().unwrap_or_else(|| store.revision());
    if let Some(page) = store
        .list_companies_encoded(&q.listing(), revision)
        .map_err(expired)?
    {
        return q.encoded_page_of(page.items, page.total, revision, key, |last| {
            Company::decode(last.as_ref())
                .map(CompanyRecord)
                .map_err(|e| ApiError::Internal(format!("a stored company does not decode: {e}")))
        });
    }
    let page = scanned_page::<CompanyRecord>(store, q, revision, key, abandoned)?;
    Ok(Page {
        items: page
            .items
            .iter()
            .map(|c| Bytes::from(c.0.encode_to_vec()))
            .collect(),
        next_page_token: page.next_page_token,
        total_size: page.total_size,
    })
}

/// One page of a listing, as of the listing's revision (the token's, or
/// the current durable one for a first page). While nothing has been
/// applied since that revision the page is read from the live state, and
/// kept only if still nothing was applied by the time it is done;
/// otherwise it comes from a store snapshot as of the revision. Once
/// `abandoned` is set, the scan stops with [`ApiError::Cancelled`].
pub fn page<T: Stored>(
    store: &Store,
    q: &Query,
    key: &PageTokenKey,
    abandoned: &Abandoned,
) -> Result<Page<T>, ApiError> {
    let revision = q.as_of().unwrap_or_else(|| store.revision());
    if let Some((items, total)) = T::listed(store, &q.listing(), revision).map_err(expired)? {
        return Ok(q.page_of(items, total, revision, key));
    }
    scanned_page(store, q, revision, key, abandoned)
}

/// A page read without the indexes, as of `revision`: from the live state
/// while nothing has been applied since, else from a snapshot.
fn scanned_page<T: Stored>(
    store: &Store,
    q: &Query,
    revision: u64,
    key: &PageTokenKey,
    abandoned: &Abandoned,
) -> Result<Page<T>, ApiError> {
    if store.last_applied()? == revision {
        let page = live(store, q, revision, key, abandoned)?;
        if store.last_applied()? == revision {
            return Ok(page);
        }
    }
    let mut snapshot = store.snapshot_at(revision, T::OF).map_err(expired)?;
    let mut chunk = Vec::new().into_iter();
    let entities = std::iter::from_fn(move || {
        loop {
            if let Some(e) = chunk.next() {
                return Some(Ok(e));
            }
            match snapshot.next_chunk(1000) {
                Ok(Some(c)) => chunk = c.into_iter(),
                Ok(None) => return None,
                Err(e) => return Some(Err(e)),
            }
        }
    });
    let items = entities
        .filter_map(|r| r.map(T::from_entity).transpose())
        .map(|r| r.map_err(expired));
    q.page(while_wanted(items, abandoned), None, revision, key)
}

#[cfg(test)]
mod tests {
    use zgc_proto::registry::v1::{Company, Park};
    use zgc_store::{StoreConfig, Write};

    use super::*;

    /// A store with one park and 20 companies in it, `employees` 0 to 19,
    /// and no listing indexes: every page is read by a scan.
    async fn store_with_companies(dir: &std::path::Path) -> Store {
        let mut config = StoreConfig::new(dir);
        config.listing_indexes = false;
        let store = Store::open(config).expect("the store opens");
        let park = Park {
            name: "parks/p".into(),
            ..Default::default()
        };
        store
            .write(Write::CreatePark {
                park,
                request: None,
            })
            .await
            .expect("the park is created");
        let companies = (0..20)
            .map(|i| Company {
                name: format!("companies/c{i:02}"),
                park: "parks/p".into(),
                employees: i,
                ..Default::default()
            })
            .collect();
        store
            .write(Write::CreateCompanies {
                companies,
                request: None,
            })
            .await
            .expect("the companies are created");
        store
    }

    fn gone() -> Abandoned {
        let abandoned = Abandoned::default();
        abandoned.set();
        abandoned
    }

    #[tokio::test]
    async fn a_scan_whose_caller_gave_up_stops_with_cancelled_on_every_path() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let store = store_with_companies(dir.path()).await;
        let key = PageTokenKey::new(store.page_token_secret());
        let query = |filter: &str, token: &str| {
            Query::parse::<CompanyRecord>(5, token, filter, "", &key).expect("a valid query")
        };

        // The live state: a filter read through the park index, and one
        // that reads every company. Both count all matches.
        for filter in [r#"park = "parks/p" AND employees >= 10"#, "employees >= 10"] {
            let q = query(filter, "");
            let first =
                page::<CompanyRecord>(&store, &q, &key, &Abandoned::default()).expect("a page");
            assert_eq!(first.items.len(), 5, "{filter}");
            assert_eq!(first.total_size, 10, "{filter}");
            assert!(
                matches!(
                    page::<CompanyRecord>(&store, &q, &key, &gone()),
                    Err(ApiError::Cancelled)
                ),
                "{filter}"
            );
        }

        // A snapshot: the next page of a listing the store has moved past.
        let first = page::<CompanyRecord>(
            &store,
            &query("employees >= 10", ""),
            &key,
            &Abandoned::default(),
        )
        .expect("a page");
        let later = Company {
            name: "companies/later".into(),
            park: "parks/p".into(),
            employees: 99,
            ..Default::default()
        };
        store
            .write(Write::CreateCompanies {
                companies: vec![later],
                request: None,
            })
            .await
            .expect("one more company");
        let q = query("employees >= 10", &first.next_page_token);
        let second =
            page::<CompanyRecord>(&store, &q, &key, &Abandoned::default()).expect("a page");
        assert_eq!(second.items.len(), 5, "as of the first page's revision");
        assert!(matches!(
            page::<CompanyRecord>(&store, &q, &key, &gone()),
            Err(ApiError::Cancelled)
        ));
    }
}
