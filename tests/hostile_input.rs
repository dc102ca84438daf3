//! Hostile input over real gRPC: every case gets a clear error or a
//! correct answer, and the servers keep serving afterwards.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use bytes::Bytes;
use tonic::{Code, Request, Status};
use zgc_proto::registry::v1::*;
use zgc_proto::stats::v1::*;
use zgc_proto::types::v1::Date;
use zgc_tests::fixtures::violation_fields;
use zgc_tests::raw::RawCodec;
use zgc_tests::{Registry, Stats, company, park};

async fn raw_call(r: &Registry, method: &'static str, body: Vec<u8>) -> Result<Bytes, Status> {
    let mut grpc = tonic::client::Grpc::new(r.channel().await);
    grpc.ready().await.unwrap();
    let path = http::uri::PathAndQuery::from_static(method);
    grpc.unary(Request::new(Bytes::from(body)), path, RawCodec)
        .await
        .map(|r| r.into_inner())
}

/// A protobuf field: tag and length-delimited bytes.
fn field(tag: u8, bytes: &[u8]) -> Vec<u8> {
    let mut out = vec![(tag << 3) | 2];
    let mut len = bytes.len();
    loop {
        let b = (len & 0x7f) as u8;
        len >>= 7;
        if len == 0 {
            out.push(b);
            break;
        }
        out.push(b | 0x80);
    }
    out.extend_from_slice(bytes);
    out
}

async fn still_serving(r: &Registry) {
    let mut c = r.client().await;
    c.list_parks(ListParksRequest::default())
        .await
        .expect("the registry still answers");
}

#[tokio::test]
async fn garbage_and_invalid_utf8_on_the_wire_are_refused_cleanly() {
    let r = Registry::start().await;
    // Invalid UTF-8 in company.display_name.
    let company_bytes = field(3, &[0xff, 0xfe, b'x']);
    let body = field(1, &company_bytes);
    let err = raw_call(&r, "/zgc.registry.v1.RegistryService/CreateCompany", body)
        .await
        .unwrap_err();
    // gRPC's status-code table assigns INTERNAL to a request that does not parse.
    assert_eq!(err.code(), Code::Internal, "{err:?}");
    assert!(
        err.message().contains("UTF-8") || err.message().contains("utf-8"),
        "{}",
        err.message()
    );
    // Truncated and random bytes.
    for body in [
        vec![0x0a, 0xff, 0xff, 0xff, 0x0f],
        vec![0xff; 64],
        (0..=255u8).collect::<Vec<_>>(),
    ] {
        let err = raw_call(&r, "/zgc.registry.v1.RegistryService/ListCompanies", body)
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::Internal, "{err:?}");
    }
    // Unknown fields are ignored, as protobuf says: this is an empty list.
    let ok = raw_call(
        &r,
        "/zgc.registry.v1.RegistryService/ListParks",
        field(15, b"whatever"),
    )
    .await;
    assert!(ok.is_ok(), "{ok:?}");
    let err = raw_call(&r, "/zgc.registry.v1.RegistryService/NoSuchMethod", vec![])
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unimplemented);
    still_serving(&r).await;
}

#[tokio::test]
async fn enormous_and_deep_filters_tokens_and_strings() {
    let r = Registry::start().await;
    let mut c = r.client().await;
    let list = |filter: String, token: String| ListCompaniesRequest {
        filter,
        page_token: token,
        ..Default::default()
    };
    let cases = [
        (
            "deep",
            format!("{}employees = 1{}", "(".repeat(5000), ")".repeat(5000)),
        ),
        ("deep NOT", format!("{}employees = 1", "NOT ".repeat(1000))),
        (
            "huge",
            format!("display_name = \"{}\"", "x".repeat(1_000_000)),
        ),
        ("wide", vec!["employees = 1"; 2000].join(" OR ")),
        ("control", "display_name = \"a\u{0}b\" AND \u{7}".into()),
        ("overflow", "employees > 99999999999999999999999".into()),
    ];
    for (what, filter) in cases {
        let err = c
            .list_companies(list(filter, String::new()))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{what}: {err:?}");
        assert!(
            err.message().contains("position"),
            "{what}: {}",
            err.message()
        );
    }
    let err = c
        .list_companies(list(String::new(), "A".repeat(1_000_000)))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);

    // Strings: too long, control characters, a message over the size limit.
    let mut long = company("x", "Hebei", "Baoding");
    long.display_name = "名".repeat(100_000);
    long.labels.insert("source".into(), "\u{1b}[31mred".into());
    let err = c
        .create_company(CreateCompanyRequest {
            company: Some(long),
            ..Default::default()
        })
        .await
        .unwrap_err();
    let fields = violation_fields(&err);
    assert!(
        fields.contains(&"company.display_name".to_string())
            && fields.contains(&"company.labels.source".to_string()),
        "{fields:?}"
    );
    let mut huge = company("x", "Hebei", "Baoding");
    huge.display_name = "x".repeat(20 * 1024 * 1024);
    let err = c
        .create_company(CreateCompanyRequest {
            company: Some(huge),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert!(
        matches!(err.code(), Code::ResourceExhausted | Code::OutOfRange),
        "{err:?}"
    );
    // Many labels, each valid, but too many together.
    let mut labelled = company("x", "Hebei", "Baoding");
    labelled.labels = (0..1000)
        .map(|i| (format!("k{i}"), "v".repeat(200)))
        .collect();
    let err = c
        .create_company(CreateCompanyRequest {
            company: Some(labelled),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(violation_fields(&err), vec!["company.labels"]);
    still_serving(&r).await;
}

#[tokio::test]
async fn oversized_requests_to_pre_encoded_answers_are_refused() {
    // GetCompany and GetSummary answer through `zgc_server::encoded`, with
    // their own decoder: each server's own limit must hold there, not
    // tonic's default of 4 MiB (the registry allows 16 MiB, the stats
    // service 1 MiB).
    let r = Registry::start().await;
    let stats = Stats::start(&r.endpoint()).await;
    stats.wait_serving().await;
    let sector = |s: String| GetSummaryRequest {
        scope: Some(Scope {
            selector: Some(scope::Selector::Sector(s)),
            include_affiliates: false,
        }),
        min_revision: 0,
    };
    let too_large = |err: &Status| matches!(err.code(), Code::ResourceExhausted | Code::OutOfRange);

    let mut registry = r.client().await;
    let decoded = registry
        .get_company(GetCompanyRequest {
            name: "x".repeat(6 * 1024 * 1024),
        })
        .await
        .unwrap_err();
    assert_eq!(decoded.code(), Code::InvalidArgument, "{decoded:?}");
    let err = registry
        .get_company(GetCompanyRequest {
            name: "x".repeat(20 * 1024 * 1024),
        })
        .await
        .unwrap_err();
    assert!(too_large(&err), "{err:?}");

    let mut s = stats.client().await;
    let nobody = s
        .get_summary(sector("x".repeat(256 * 1024)))
        .await
        .expect("a sector nobody has heard of has a zero summary")
        .into_inner();
    assert_eq!(nobody.company_count, 0);
    let err = s
        .get_summary(sector("x".repeat(2 * 1024 * 1024)))
        .await
        .unwrap_err();
    assert!(too_large(&err), "{err:?}");

    still_serving(&r).await;
    let all = s
        .get_summary(GetSummaryRequest {
            scope: Some(Scope {
                selector: Some(scope::Selector::All(true)),
                include_affiliates: false,
            }),
            min_revision: 0,
        })
        .await;
    assert!(all.is_ok(), "{all:?}");
}

#[tokio::test]
async fn extreme_numbers_and_unknown_enums() {
    let r = Registry::start().await;
    let stats = Stats::start(&r.endpoint()).await;
    let mut c = r.client().await;
    let mut p = park("P", "Hebei", "Baoding");
    p.kind = 99;
    let err = c
        .create_park(CreateParkRequest {
            park: Some(p),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(violation_fields(&err), vec!["park.kind"]);

    // Sums that would overflow int64 saturate.
    let mut last = 0;
    for i in 0..3 {
        let mut co = company(&format!("Rich {i}"), "Hebei", "Baoding");
        co.investment_cny = i64::MAX;
        co.employees = i32::MAX;
        co.annual_figures = vec![AnnualFigure {
            year: 2023,
            revenue_cny: i64::MAX,
            output_value_cny: i64::MAX,
        }];
        last = c
            .create_company(CreateCompanyRequest {
                company: Some(co),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .revision;
    }
    let mut s = stats.client().await;
    let all = Some(Scope {
        selector: Some(scope::Selector::All(true)),
        include_affiliates: false,
    });
    let summary = s
        .get_summary(GetSummaryRequest {
            scope: all.clone(),
            min_revision: last,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(summary.investment_cny, i64::MAX);
    assert_eq!(summary.employees, 3 * i64::from(i32::MAX));
    assert_eq!(summary.figures_by_year[0].revenue_cny, i64::MAX);

    // Unknown enum values and impossible windows in stats requests.
    let err = s
        .rank_parks(RankParksRequest {
            metric: 42,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let err = s
        .get_relocation_flows(GetRelocationFlowsRequest {
            level: -7,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let err = s
        .get_time_series(GetTimeSeriesRequest {
            scope: all.clone(),
            metric: SeriesMetric::CompaniesFounded as i32,
            granularity: 77,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let err = s
        .get_time_series(GetTimeSeriesRequest {
            scope: all.clone(),
            metric: SeriesMetric::CompaniesFounded as i32,
            granularity: Granularity::Month as i32,
            start: Some(Date {
                year: 1800,
                month: 1,
                day: 1,
            }),
            end: Some(Date {
                year: 2200,
                month: 12,
                day: 31,
            }),
            min_revision: 0,
        })
        .await
        .unwrap_err();
    assert_eq!(
        err.code(),
        Code::InvalidArgument,
        "4,812 months are too many"
    );
    let err = s
        .get_branch_footprint(GetBranchFootprintRequest {
            parent_scope: all.clone(),
            start: Some(Date {
                year: i32::MAX,
                month: i32::MIN,
                day: -1,
            }),
            level: RegionLevel::City as i32,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let err = s
        .watch_summary(WatchSummaryRequest {
            scope: all.clone(),
            min_interval: Some(prost_types::Duration {
                seconds: -5,
                nanos: 0,
            }),
            min_revision: 0,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    // A revision that will never come: UNAVAILABLE before the deadline
    // (answered a tenth of it early).
    let mut req = Request::new(GetSummaryRequest {
        scope: all,
        min_revision: u64::MAX,
    });
    req.set_timeout(Duration::from_secs(2));
    assert_eq!(
        s.get_summary(req).await.unwrap_err().code(),
        Code::Unavailable
    );
    still_serving(&r).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_request_ids_is_answered_correctly() {
    let r = Registry::start().await;
    let mut tasks = Vec::new();
    for t in 0..8 {
        let mut c = r.client().await;
        tasks.push(tokio::spawn(async move {
            for i in 0..100 {
                let req = CreateCompanyRequest {
                    company: Some(company(&format!("F{t}-{i}"), "Tianjin", "Tianjin")),
                    company_id: String::new(),
                    request_id: uuid::Uuid::new_v4().to_string(),
                };
                let first = c.create_company(req.clone()).await.unwrap().into_inner();
                let again = c.create_company(req).await.unwrap().into_inner();
                assert_eq!(first, again);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let list = r
        .client()
        .await
        .list_companies(ListCompaniesRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        list.total_size, 800,
        "each request id created exactly one company"
    );
}

/// Whether `bytes` decode as the request type of `path`.
fn decodes(path: &str, bytes: &[u8]) -> bool {
    use prost::Message;
    let method = path.rsplit('/').next().unwrap_or_default();
    macro_rules! by_method {
        ($($name:literal => $ty:ty),* $(,)?) => {
            match method {
                $($name => <$ty>::decode(bytes).is_ok(),)*
                other => panic!("no request type listed for {other}"),
            }
        };
    }
    by_method!(
        "CreatePark" => CreateParkRequest,
        "GetPark" => GetParkRequest,
        "ListParks" => ListParksRequest,
        "UpdatePark" => UpdateParkRequest,
        "DeletePark" => DeleteParkRequest,
        "CreateCompany" => CreateCompanyRequest,
        "GetCompany" => GetCompanyRequest,
        "BatchGetCompanies" => BatchGetCompaniesRequest,
        "ListCompanies" => ListCompaniesRequest,
        "UpdateCompany" => UpdateCompanyRequest,
        "DeleteCompany" => DeleteCompanyRequest,
        "BatchCreateCompanies" => BatchCreateCompaniesRequest,
        "WatchChanges" => WatchChangesRequest,
        "GetSummary" => GetSummaryRequest,
        "RankParks" => RankParksRequest,
        "GetRelocationFlows" => GetRelocationFlowsRequest,
        "GetBranchFootprint" => GetBranchFootprintRequest,
        "GetTimeSeries" => GetTimeSeriesRequest,
        "WatchSummary" => WatchSummaryRequest,
    )
}

/// Fuzzes every method of both services over the wire with arbitrary
/// bytes and with valid requests that had bytes flipped, dropped or added:
/// what does not decode is refused as INTERNAL (gRPC's code for a message
/// that cannot be parsed), what decodes gets an answer or a clear error
/// (never INTERNAL or UNKNOWN), and both servers keep serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_method_survives_fuzzed_bytes_on_the_wire() {
    use proptest::strategy::{Strategy, ValueTree};
    use proptest::test_runner::TestRunner;
    const CASES_PER_METHOD: usize = 48;

    let r = Registry::start().await;
    let stats = Stats::start(&r.endpoint()).await;
    stats.wait_serving().await;
    let pool = prost_reflect::DescriptorPool::decode(zgc_proto::FILE_DESCRIPTOR_SET).unwrap();
    let seed = field(1, &field(3, "中关村\u{0}\u{7f}".as_bytes()));
    // Well-formed protobuf fields with any number, wire type and payload:
    // unknown fields are skipped, known ones reach validation.
    let wire_field = (
        1u32..24,
        0u8..4,
        proptest::collection::vec(proptest::arbitrary::any::<u8>(), 0..24),
        proptest::arbitrary::any::<u64>(),
    )
        .prop_map(|(number, kind, payload, int)| {
            let mut out = Vec::new();
            let varint = |mut v: u64, out: &mut Vec<u8>| loop {
                let b = (v & 0x7f) as u8;
                v >>= 7;
                if v == 0 {
                    out.push(b);
                    break;
                }
                out.push(b | 0x80);
            };
            let wire = [0u64, 2, 1, 5][usize::from(kind)];
            varint((u64::from(number) << 3) | wire, &mut out);
            match wire {
                0 => varint(int, &mut out),
                2 => {
                    varint(payload.len() as u64, &mut out);
                    out.extend_from_slice(&payload);
                }
                1 => out.extend_from_slice(&int.to_le_bytes()),
                _ => out.extend_from_slice(&int.to_le_bytes()[..4]),
            }
            out
        });
    let fields = proptest::collection::vec(wire_field, 0..6).prop_map(|f| f.concat());
    let inputs = proptest::prop_oneof![
        2 => fields,
        1 => proptest::collection::vec(proptest::arbitrary::any::<u8>(), 0..256),
        1 => (
            proptest::collection::vec(proptest::arbitrary::any::<u8>(), 0..16),
            proptest::arbitrary::any::<usize>(),
        )
            .prop_map(move |(noise, at)| {
                let mut bytes = seed.clone();
                let at = at % (bytes.len() + 1);
                bytes.splice(at..at, noise);
                bytes
            }),
    ];
    let mut runner = TestRunner::deterministic();
    let (mut tried, mut decoded) = (0, 0);
    for service in pool
        .services()
        .filter(|s| s.full_name().starts_with("zgc."))
    {
        let channel = if service.full_name().starts_with("zgc.stats") {
            stats.channel().await
        } else {
            r.channel().await
        };
        for method in service.methods() {
            let path = format!("/{}/{}", service.full_name(), method.name());
            let path: http::uri::PathAndQuery = path.parse().unwrap();
            for _ in 0..CASES_PER_METHOD {
                let bytes = inputs.new_tree(&mut runner).unwrap().current();
                let decodable = decodes(path.path(), &bytes);
                let mut grpc = tonic::client::Grpc::new(channel.clone());
                grpc.ready().await.unwrap();
                let mut request = Request::new(Bytes::from(bytes.clone()));
                // A decodable stats call may wait for a revision far in the
                // future until its deadline; any answer but INTERNAL or
                // UNKNOWN will do for it, so its deadline can be short.
                request.set_timeout(Duration::from_secs(if decodable { 2 } else { 60 }));
                let answer = if method.is_server_streaming() {
                    // Only the opening matters; the stream is dropped.
                    grpc.server_streaming(request, path.clone(), RawCodec)
                        .await
                        .map(|_| ())
                } else {
                    grpc.unary(request, path.clone(), RawCodec)
                        .await
                        .map(|_| ())
                };
                tried += 1;
                decoded += usize::from(decodable);
                match answer {
                    Ok(()) => assert!(decodable, "{path} accepted undecodable {bytes:?}"),
                    Err(status) if decodable => assert!(
                        !matches!(status.code(), Code::Internal | Code::Unknown),
                        "{path} answered {status:?} to decodable {bytes:?}"
                    ),
                    Err(status) => assert_eq!(
                        status.code(),
                        Code::Internal,
                        "{path} on undecodable {bytes:?}: {status:?}"
                    ),
                }
            }
        }
    }
    assert_eq!(tried, 19 * CASES_PER_METHOD);
    // Both kinds of input were tried: some decode, some do not.
    assert!(
        decoded > 0 && decoded < tried,
        "{decoded} of {tried} decoded"
    );
    eprintln!("fuzzed the wire: {tried} inputs over 19 methods, {decoded} of them decodable");
    still_serving(&r).await;
    stats
        .client()
        .await
        .get_summary(GetSummaryRequest {
            scope: Some(Scope {
                selector: Some(scope::Selector::All(true)),
                include_affiliates: false,
            }),
            min_revision: 0,
        })
        .await
        .expect("the stats service still answers");
}

/// A page size past the largest page is capped, not refused, and the
/// cap holds: with more companies than one page, `i32::MAX` returns one
/// full page and a token for the rest.
#[tokio::test]
async fn a_huge_page_size_is_capped_at_the_largest_page() {
    // The contract's largest page.
    const LARGEST: usize = 1000;
    let r = Registry::start().await;
    let mut c = r.client().await;
    let total = LARGEST + 5;
    for batch in (0..total).collect::<Vec<_>>().chunks(LARGEST) {
        let requests = batch
            .iter()
            .map(|i| CreateCompanyRequest {
                company: Some(company(&format!("Page {i}"), "Hebei", "Baoding")),
                company_id: format!("page-{i:04}"),
                request_id: String::new(),
            })
            .collect();
        c.batch_create_companies(BatchCreateCompaniesRequest {
            requests,
            request_id: String::new(),
        })
        .await
        .unwrap();
    }
    for page_size in [i32::MAX, LARGEST as i32 + 1] {
        let page = c
            .list_companies(ListCompaniesRequest {
                page_size,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(page.companies.len(), LARGEST, "page_size {page_size}");
        assert_eq!(page.total_size as usize, total);
        assert!(!page.next_page_token.is_empty());
        let rest = c
            .list_companies(ListCompaniesRequest {
                page_size,
                page_token: page.next_page_token,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(rest.companies.len(), 5);
        assert!(rest.next_page_token.is_empty());
    }
}
