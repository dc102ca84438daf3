//! Raw protobuf decoding of every request type the services accept, fed
//! arbitrary bytes and mutations of valid encodings: decoding never
//! panics, and whatever decodes re-encodes to bytes that decode to the
//! same message (what the server sees is what it would send back).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;

use proptest::prelude::*;
use prost::Message;
use prost_reflect::DescriptorPool;
use zgc_proto::registry::v1 as reg;
use zgc_proto::stats::v1 as st;

/// Decodes `bytes` as `T`; if that works, checks the round trip.
fn check<T: Message + Default + PartialEq + std::fmt::Debug>(bytes: &[u8]) {
    if let Ok(first) = T::decode(bytes) {
        let again = T::decode(first.encode_to_vec().as_slice())
            .expect("a decoded message re-encodes to something decodable");
        assert_eq!(first, again);
    }
}

/// A valid, well-filled encoding of several request types, to mutate.
fn seeds() -> Vec<Vec<u8>> {
    let company = reg::Company {
        name: "companies/a".into(),
        display_name: "中关村 Company".into(),
        park: "parks/zgc".into(),
        sectors: vec!["software".into()],
        employees: 12,
        investment_cny: i64::MAX,
        labels: [("k".to_string(), "v".to_string())].into(),
        ..Default::default()
    };
    let scope = st::Scope {
        selector: Some(st::scope::Selector::Province("Hebei".into())),
        include_affiliates: true,
    };
    vec![
        reg::CreateCompanyRequest {
            company: Some(company.clone()),
            company_id: "a".into(),
            request_id: "3f2c1a9e-5b7d-4e8f-9a0b-1c2d3e4f5a6b".into(),
        }
        .encode_to_vec(),
        reg::BatchCreateCompaniesRequest {
            requests: vec![reg::CreateCompanyRequest {
                company: Some(company.clone()),
                ..Default::default()
            }],
            request_id: String::new(),
        }
        .encode_to_vec(),
        reg::UpdateCompanyRequest {
            company: Some(company),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["employees".into()],
            }),
        }
        .encode_to_vec(),
        reg::ListCompaniesRequest {
            page_size: 50,
            page_token: "abc".into(),
            filter: "employees > 10 AND park = \"parks/zgc\"".into(),
            order_by: "employees desc".into(),
        }
        .encode_to_vec(),
        st::GetSummaryRequest {
            scope: Some(scope.clone()),
            min_revision: u64::MAX,
        }
        .encode_to_vec(),
        st::GetTimeSeriesRequest {
            scope: Some(scope),
            ..Default::default()
        }
        .encode_to_vec(),
    ]
}

/// Runs `check` on `bytes` for each listed type; returns the types' names.
macro_rules! every_request {
    ($bytes:expr, [$($ty:ty),* $(,)?]) => {{
        $( check::<$ty>($bytes); )*
        vec![$(full_name(stringify!($ty))),*]
    }};
}

/// `reg::X` as `zgc.registry.v1.X`, `st::X` as `zgc.stats.v1.X`.
fn full_name(path: &str) -> String {
    path.replace(' ', "")
        .replace("reg::", "zgc.registry.v1.")
        .replace("st::", "zgc.stats.v1.")
}

/// Every request type of both services.
fn check_all(bytes: &[u8]) -> Vec<String> {
    every_request!(
        bytes,
        [
            reg::CreateParkRequest,
            reg::GetParkRequest,
            reg::ListParksRequest,
            reg::UpdateParkRequest,
            reg::DeleteParkRequest,
            reg::CreateCompanyRequest,
            reg::GetCompanyRequest,
            reg::BatchGetCompaniesRequest,
            reg::ListCompaniesRequest,
            reg::UpdateCompanyRequest,
            reg::DeleteCompanyRequest,
            reg::BatchCreateCompaniesRequest,
            reg::WatchChangesRequest,
            st::GetSummaryRequest,
            st::RankParksRequest,
            st::GetRelocationFlowsRequest,
            st::GetBranchFootprintRequest,
            st::GetTimeSeriesRequest,
            st::WatchSummaryRequest,
        ]
    )
}

#[test]
fn the_list_covers_every_method_of_both_services() {
    let pool = DescriptorPool::decode(zgc_proto::FILE_DESCRIPTOR_SET).unwrap();
    let inputs: BTreeSet<String> = pool
        .services()
        .filter(|s| s.full_name().starts_with("zgc."))
        .flat_map(|s| s.methods().collect::<Vec<_>>())
        .map(|m| m.input().full_name().to_string())
        .collect();
    let checked: BTreeSet<String> = check_all(&[]).into_iter().collect();
    assert_eq!(inputs, checked);
}

/// A change to a valid encoding: flip, drop, insert or cut.
#[derive(Debug, Clone)]
enum Mutation {
    Flip(usize, u8),
    Remove(usize),
    Insert(usize, u8),
    Truncate(usize),
}

fn mutate(mut bytes: Vec<u8>, mutations: &[Mutation]) -> Vec<u8> {
    for m in mutations {
        let len = bytes.len().max(1);
        match *m {
            Mutation::Flip(i, bit) => {
                if let Some(b) = bytes.get_mut(i % len) {
                    *b ^= 1 << (bit % 8);
                }
            }
            Mutation::Remove(i) => {
                if !bytes.is_empty() {
                    bytes.remove(i % len);
                }
            }
            Mutation::Insert(i, b) => bytes.insert(i % (bytes.len() + 1), b),
            Mutation::Truncate(i) => bytes.truncate(i % len),
        }
    }
    bytes
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Flip(i, b)),
        any::<usize>().prop_map(Mutation::Remove),
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Insert(i, b)),
        any::<usize>().prop_map(Mutation::Truncate),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        check_all(&bytes);
    }

    #[test]
    fn mutated_valid_requests_never_panic(
        seed in 0usize..6,
        mutations in proptest::collection::vec(mutation(), 1..8),
    ) {
        let seeds = seeds();
        let bytes = mutate(seeds[seed % seeds.len()].clone(), &mutations);
        check_all(&bytes);
    }
}
