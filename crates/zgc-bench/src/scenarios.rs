//! The calls each load scenario makes. A scenario is a name, what it
//! measures, the method whose server-side latency to read, and a call.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use futures::FutureExt;
use futures::future::BoxFuture;
use tonic::transport::Channel;
use zgc_proto::registry::v1::registry_service_client::RegistryServiceClient;
use zgc_proto::registry::v1::*;
use zgc_proto::stats::v1::stats_service_client::StatsServiceClient;
use zgc_proto::stats::v1::*;
use zgc_proto::types::v1::{Date, Location};

use crate::dataset::Busiest;
use crate::listings::Shape;

/// One call of a scenario: a connection and a number unique to the call.
pub type Call =
    Arc<dyn Fn(Channel, u64) -> BoxFuture<'static, Result<(), tonic::Status>> + Send + Sync>;

/// Which server a scenario talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// The bare tonic echo server.
    Echo,
    /// The echo server timing its calls with the services' own layer.
    ObservedEcho,
    /// zgc-registry.
    Registry,
    /// zgc-stats.
    Stats,
}

impl Target {
    /// Whether scenarios on this server are baselines, measured for what
    /// the services are compared with.
    pub fn is_baseline(self) -> bool {
        matches!(self, Self::Echo | Self::ObservedEcho)
    }
}

/// A load scenario.
pub struct Scenario {
    /// Its name in the report.
    pub name: String,
    /// What each call does.
    pub description: String,
    /// The server it loads.
    pub target: Target,
    /// The `(service, method)` whose server-side latency is reported.
    pub method: Option<(&'static str, &'static str)>,
    /// The call.
    pub call: Call,
}

const REGISTRY: &str = "zgc.registry.v1.RegistryService";
const STATS: &str = "zgc.stats.v1.StatsService";

/// A company like those the dataset makes: what the create scenarios
/// write, and the echo server's reply when it is run by hand.
pub fn sample_company() -> Company {
    Company {
        name: "companies/bench-sample".into(),
        uid: "00000000-0000-4000-8000-000000000000".into(),
        display_name: "Zhongguancun Bench Sample Technology Co., Ltd.".into(),
        park: "parks/zgc".into(),
        location: Some(Location {
            province: "Beijing".into(),
            city: "Beijing".into(),
            district: "Haidian".into(),
        }),
        sectors: vec!["software".into(), "ai".into()],
        employees: 420,
        investment_cny: 50_000_000,
        high_tech: true,
        revision: 1,
        etag: "\"1\"".into(),
        ..Default::default()
    }
}

fn unit<T>(r: Result<tonic::Response<T>, tonic::Status>) -> Result<(), tonic::Status> {
    r.map(|_| ())
}

/// One call of the echo server's method at `path`, decoding its answer as
/// a `Resp`, as a generated client would.
async fn echo_call<Req, Resp>(
    ch: Channel,
    path: &'static str,
    request: Req,
) -> Result<(), tonic::Status>
where
    Req: prost::Message + Send + 'static,
    Resp: prost::Message + Default + Send + 'static,
{
    let mut grpc = tonic::client::Grpc::new(ch);
    grpc.ready()
        .await
        .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
    let codec = tonic_prost::ProstCodec::<Req, Resp>::default();
    let path = http::uri::PathAndQuery::from_static(path);
    unit(grpc.unary(tonic::Request::new(request), path, codec).await)
}

/// The transport baseline of GetCompany: the same request, answered with a
/// stored company of the median size, no server work.
pub fn echo() -> Scenario {
    Scenario {
        name: "echo".into(),
        description: "bare tonic server, canned reply: a stored company of median size".into(),
        target: Target::Echo,
        method: None,
        call: Arc::new(|ch, _| {
            let request = GetCompanyRequest {
                name: "companies/bench-sample".into(),
            };
            echo_call::<_, Company>(ch, crate::echo::PATH, request).boxed()
        }),
    }
}

fn pick(names: &[String], n: u64) -> String {
    // A stride prime to any dataset size spreads the reads over the store.
    names
        .get((n as usize).wrapping_mul(7919) % names.len().max(1))
        .cloned()
        .unwrap_or_default()
}

/// GetCompany of existing companies, spread over the whole store.
pub fn get(names: Arc<Vec<String>>) -> Scenario {
    Scenario {
        name: "get".into(),
        description: "GetCompany, a random existing company".into(),
        target: Target::Registry,
        method: Some((REGISTRY, "GetCompany")),
        call: Arc::new(move |ch, n| {
            let name = pick(&names, n);
            async move {
                unit(
                    RegistryServiceClient::new(ch)
                        .get_company(GetCompanyRequest { name })
                        .await,
                )
            }
            .boxed()
        }),
    }
}

/// A filtered page of ListCompanies.
pub fn list(shape: &Shape) -> Scenario {
    let request = list_request(shape);
    Scenario {
        name: crate::results::list_name(shape.label),
        description: format!(
            "ListCompanies, {} of {}{}, exact total_size",
            crate::listings::PAGE,
            if shape.filter.is_empty() {
                "every company".to_string()
            } else {
                format!("`{}`", shape.filter)
            },
            order_note(shape)
        ),
        target: Target::Registry,
        method: Some((REGISTRY, "ListCompanies")),
        call: Arc::new(move |ch, _| {
            let request = request.clone();
            async move { unit(RegistryServiceClient::new(ch).list_companies(request).await) }
                .boxed()
        }),
    }
}

/// The transport baseline of a listing shape: the same request, answered
/// with the page the registry gave for it.
pub fn echo_list(shape: &Shape) -> Scenario {
    let request = list_request(shape);
    Scenario {
        name: crate::results::list_echo_name(shape.label),
        description: format!(
            "bare tonic server, canned reply: the page of `{}`",
            shape.label
        ),
        target: Target::Echo,
        method: None,
        call: Arc::new(move |ch, _| {
            echo_call::<_, ListCompaniesResponse>(ch, crate::echo::LIST_PATH, request.clone())
                .boxed()
        }),
    }
}

/// The first page's request of a listing shape.
pub fn list_request(shape: &Shape) -> ListCompaniesRequest {
    ListCompaniesRequest {
        page_size: crate::listings::PAGE,
        filter: shape.filter.clone(),
        order_by: shape.order_by.into(),
        ..Default::default()
    }
}

fn order_note(shape: &Shape) -> String {
    if shape.order_by.is_empty() {
        String::new()
    } else {
        format!(" by `{}`", shape.order_by)
    }
}

/// A new company to create, with an ID starting with `id_prefix`.
pub fn new_company(id_prefix: &str) -> CreateCompanyRequest {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let mut c = sample_company();
    c.name = String::new();
    c.uid = String::new();
    c.etag = String::new();
    c.revision = 0;
    c.park = String::new();
    CreateCompanyRequest {
        company: Some(c),
        company_id: format!("{id_prefix}-{n}"),
        request_id: String::new(),
    }
}

/// Durable CreateCompany, one company per call.
pub fn create() -> Scenario {
    Scenario {
        name: "create".into(),
        description: "CreateCompany, durable (fsync), one company per call".into(),
        target: Target::Registry,
        method: Some((REGISTRY, "CreateCompany")),
        call: Arc::new(|ch, _| {
            async move {
                unit(
                    RegistryServiceClient::new(ch)
                        .create_company(new_company("bench"))
                        .await,
                )
            }
            .boxed()
        }),
    }
}

/// 90% GetCompany, 10% durable CreateCompany.
pub fn mixed(names: Arc<Vec<String>>) -> Scenario {
    Scenario {
        name: "mixed".into(),
        description: "90% GetCompany, 10% durable CreateCompany".into(),
        target: Target::Registry,
        method: None,
        call: Arc::new(move |ch, n| {
            let name = pick(&names, n);
            async move {
                let mut client = RegistryServiceClient::new(ch);
                if n % 10 == 9 {
                    unit(client.create_company(new_company("mixed")).await)
                } else {
                    unit(client.get_company(GetCompanyRequest { name }).await)
                }
            }
            .boxed()
        }),
    }
}

/// Every scope kind, at its busiest value.
pub fn scopes(busiest: &Busiest) -> Vec<(String, Scope)> {
    let scope = |selector, include_affiliates| Scope {
        selector: Some(selector),
        include_affiliates,
    };
    vec![
        ("all".into(), scope(scope::Selector::All(true), false)),
        (
            "park".into(),
            scope(scope::Selector::Park(busiest.park.clone()), false),
        ),
        (
            "park+affiliates".into(),
            scope(scope::Selector::Park("parks/zgc".into()), true),
        ),
        (
            "province".into(),
            scope(scope::Selector::Province(busiest.province.clone()), false),
        ),
        (
            "city".into(),
            scope(scope::Selector::City(busiest.city.clone()), false),
        ),
        (
            "sector".into(),
            scope(scope::Selector::Sector(busiest.sector.clone()), false),
        ),
    ]
}

/// GetSummary of one scope.
pub fn summary(label: &str, scope: Scope) -> Scenario {
    let description = format!("GetSummary, {}", describe(&scope));
    Scenario {
        name: format!("summary/{label}"),
        description,
        target: Target::Stats,
        method: Some((STATS, "GetSummary")),
        call: Arc::new(move |ch, _| {
            let scope = scope.clone();
            async move {
                unit(
                    StatsServiceClient::new(ch)
                        .get_summary(GetSummaryRequest {
                            scope: Some(scope),
                            min_revision: 0,
                        })
                        .await,
                )
            }
            .boxed()
        }),
    }
}

/// The transport baseline of a GetSummary scenario: the same request to
/// the echo server, answered with the summary the stats service gave for
/// that scope (see [`crate::echo`]).
pub fn echo_summary(label: &str, scope: Scope) -> Scenario {
    Scenario {
        name: crate::results::summary_echo_name(label),
        description: format!(
            "bare tonic server, canned reply: the summary of {}",
            describe(&scope)
        ),
        target: Target::Echo,
        method: None,
        call: summary_echo_call(scope),
    }
}

/// The transport's own server-side latency beside a GetSummary scenario:
/// the calls of [`echo_summary`], to the echo server that times them with
/// the layer the services time theirs with.
pub fn observed_echo_summary(label: &str, scope: Scope) -> Scenario {
    Scenario {
        name: crate::results::observed_echo_name(label),
        description: format!(
            "the echo of the summary of {}, timed like the services' calls",
            describe(&scope)
        ),
        target: Target::ObservedEcho,
        method: Some(("zgc.bench.v1.Echo", "EchoSummary")),
        call: summary_echo_call(scope),
    }
}

fn summary_echo_call(scope: Scope) -> Call {
    Arc::new(move |ch, _| {
        let request = GetSummaryRequest {
            scope: Some(scope.clone()),
            min_revision: 0,
        };
        echo_call::<_, Summary>(ch, crate::echo::SUMMARY_PATH, request).boxed()
    })
}

fn describe(scope: &Scope) -> String {
    match &scope.selector {
        Some(scope::Selector::All(_)) | None => "everything".into(),
        Some(scope::Selector::Park(p)) if scope.include_affiliates => {
            format!("`{p}` and its affiliated parks")
        }
        Some(scope::Selector::Park(p)) => format!("`{p}`"),
        Some(scope::Selector::Province(p)) => format!("province {p}"),
        Some(scope::Selector::City(l)) => format!("city {} {}", l.province, l.city),
        Some(scope::Selector::Sector(s)) => format!("sector `{s}`"),
    }
}

/// RankParks, the one other stats RPC whose answer is as small as a
/// company's: compared with `echo`.
pub fn rank_parks() -> Scenario {
    Scenario {
        name: "rank-parks".into(),
        description: "RankParks by company count, all parks".into(),
        target: Target::Stats,
        method: Some((STATS, "RankParks")),
        call: Arc::new(|ch, _| {
            async move {
                unit(
                    StatsServiceClient::new(ch)
                        .rank_parks(RankParksRequest {
                            metric: ParkMetric::CompanyCount as i32,
                            ..Default::default()
                        })
                        .await,
                )
            }
            .boxed()
        }),
    }
}

fn everything() -> Scope {
    Scope {
        selector: Some(scope::Selector::All(true)),
        include_affiliates: false,
    }
}

/// The GetRelocationFlows call the suite makes.
pub fn flows_request() -> GetRelocationFlowsRequest {
    GetRelocationFlowsRequest {
        level: RegionLevel::City as i32,
        ..Default::default()
    }
}

/// The GetBranchFootprint call the suite makes.
pub fn footprint_request() -> GetBranchFootprintRequest {
    GetBranchFootprintRequest {
        parent_scope: Some(everything()),
        level: RegionLevel::City as i32,
        ..Default::default()
    }
}

/// The GetTimeSeries call the suite makes.
pub fn series_request() -> GetTimeSeriesRequest {
    GetTimeSeriesRequest {
        scope: Some(everything()),
        metric: SeriesMetric::CompaniesFounded as i32,
        granularity: Granularity::Month as i32,
        start: Some(Date {
            year: 2000,
            month: 1,
            day: 1,
        }),
        end: Some(Date {
            year: 2025,
            month: 12,
            day: 31,
        }),
        min_revision: 0,
    }
}

/// The stats RPCs whose answers are lists as long as the data makes them,
/// each with the echo of its own answer before it: GetRelocationFlows,
/// GetBranchFootprint and GetTimeSeries, once each over their widest
/// scope.
pub fn listed_stats() -> Vec<[Scenario; 2]> {
    let flows = flows_request();
    let footprint = footprint_request();
    let series = series_request();
    vec![
        [
            stats_echo::<_, GetRelocationFlowsResponse>(
                "relocation-flows",
                crate::echo::FLOWS_PATH,
                flows.clone(),
            ),
            Scenario {
                name: "relocation-flows".into(),
                description: "GetRelocationFlows by city, all years".into(),
                target: Target::Stats,
                method: Some((STATS, "GetRelocationFlows")),
                call: Arc::new(move |ch, _| {
                    let request = flows.clone();
                    async move {
                        unit(
                            StatsServiceClient::new(ch)
                                .get_relocation_flows(request)
                                .await,
                        )
                    }
                    .boxed()
                }),
            },
        ],
        [
            stats_echo::<_, GetBranchFootprintResponse>(
                "branch-footprint",
                crate::echo::FOOTPRINT_PATH,
                footprint.clone(),
            ),
            Scenario {
                name: "branch-footprint".into(),
                description: "GetBranchFootprint of every parent, by city".into(),
                target: Target::Stats,
                method: Some((STATS, "GetBranchFootprint")),
                call: Arc::new(move |ch, _| {
                    let request = footprint.clone();
                    async move {
                        unit(
                            StatsServiceClient::new(ch)
                                .get_branch_footprint(request)
                                .await,
                        )
                    }
                    .boxed()
                }),
            },
        ],
        [
            stats_echo::<_, GetTimeSeriesResponse>(
                "time-series",
                crate::echo::SERIES_PATH,
                series.clone(),
            ),
            Scenario {
                name: "time-series".into(),
                description: "GetTimeSeries of companies founded per month, 2000-2025".into(),
                target: Target::Stats,
                method: Some((STATS, "GetTimeSeries")),
                call: Arc::new(move |ch, _| {
                    let request = series.clone();
                    async move { unit(StatsServiceClient::new(ch).get_time_series(request).await) }
                        .boxed()
                }),
            },
        ],
    ]
}

/// The transport baseline of the stats scenario `name`: the same request,
/// answered with what the stats service gave for it.
fn stats_echo<Req, Resp>(name: &str, path: &'static str, request: Req) -> Scenario
where
    Req: prost::Message + Clone + Send + Sync + 'static,
    Resp: prost::Message + Default + Send + 'static,
{
    Scenario {
        name: crate::results::echo_name(name),
        description: format!("bare tonic server, canned reply: the answer of `{name}`"),
        target: Target::Echo,
        method: None,
        call: Arc::new(move |ch, _| echo_call::<_, Resp>(ch, path, request.clone()).boxed()),
    }
}
