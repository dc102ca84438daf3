//! The `zgc.stats.v1.StatsService` handlers: wait for `min_revision`, read
//! the engine under its read lock, answer with `as_of_revision`.
//!
//! GetSummary is served by [`GetSummary`] with answers kept encoded
//! ([`crate::summaries`]); the trait's `get_summary` decodes the same
//! answer, for callers of the service as a Rust value.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures::Stream;
use futures::future::BoxFuture;
use prost::Message;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::metadata::MetadataMap;
use tonic::server::UnaryService;
use tonic::{Request, Response, Status};
use zgc_proto::stats::v1::stats_service_server::StatsService;
use zgc_proto::stats::v1::{
    GetBranchFootprintRequest, GetBranchFootprintResponse, GetRelocationFlowsRequest,
    GetRelocationFlowsResponse, GetSummaryRequest, GetTimeSeriesRequest, GetTimeSeriesResponse,
    RankParksRequest, RankParksResponse, Summary, WatchSummaryRequest,
};
use zgc_proto::wire::REVISION_HEADER;
use zgc_server::encoded::Encoded;
use zgc_stats_engine::{Engine, QueryError};

use crate::deadline::wait_budget;
use crate::error::StatsError;
use crate::state::State;
use crate::summaries::Summaries;

/// The shortest `min_interval` of WatchSummary.
pub const MIN_INTERVAL: Duration = Duration::from_millis(100);
/// The `min_interval` when the request has none.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(1);

/// The stats service.
#[derive(Clone)]
pub struct Stats {
    state: Arc<State>,
    summaries: Arc<Summaries>,
    shutdown: CancellationToken,
}

impl Stats {
    /// A service reading `state` and keeping its summaries in `summaries`;
    /// summary streams end when `shutdown` fires.
    pub fn new(state: Arc<State>, summaries: Arc<Summaries>, shutdown: CancellationToken) -> Self {
        Self {
            state,
            summaries,
            shutdown,
        }
    }

    /// GetSummary's answer, encoded: from the cache while the engine has
    /// not changed since it was made, built and kept otherwise.
    pub async fn summary(
        &self,
        request: Request<GetSummaryRequest>,
    ) -> Result<Response<Encoded<Summary>>, Status> {
        let (metadata, _, req) = request.into_parts();
        self.state
            .wait_for(req.min_revision, wait_budget(&metadata))
            .await
            .map_err(StatsError::NotYet)?;
        let key = req
            .scope
            .as_ref()
            .map(Message::encode_to_vec)
            .unwrap_or_default();
        let (built, generation, revision) = {
            let engine = self.state.read();
            let revision = engine.revision();
            if let Some(cached) = self.summaries.get(&key, engine.generation()) {
                return Ok(respond(cached, revision));
            }
            let built = engine
                .summary(req.scope.as_ref())
                .map_err(StatsError::from)?;
            (built, engine.generation(), revision)
        };
        let encoded = Encoded::new(&built);
        self.summaries.put(key.into(), generation, encoded.clone());
        Ok(respond(encoded, revision))
    }

    async fn read<T>(
        &self,
        metadata: &MetadataMap,
        min_revision: u64,
        query: impl FnOnce(&Engine) -> Result<T, QueryError>,
    ) -> Result<(T, u64), StatsError> {
        self.state
            .wait_for(min_revision, wait_budget(metadata))
            .await
            .map_err(StatsError::NotYet)?;
        let engine = self.state.read();
        let answer = query(&engine)?;
        Ok((answer, engine.revision()))
    }
}

fn respond<T>(message: T, revision: u64) -> Response<T> {
    let mut response = Response::new(message);
    response
        .metadata_mut()
        .insert(REVISION_HEADER, revision.into());
    response
}

fn interval(d: Option<&prost_types::Duration>) -> Result<Duration, StatsError> {
    let Some(d) = d else {
        return Ok(DEFAULT_INTERVAL);
    };
    if d.seconds < 0 || d.nanos < 0 {
        return Err(QueryError::Invalid {
            field: "min_interval".into(),
            description: "must not be negative".into(),
        }
        .into());
    }
    let d = Duration::new(
        u64::try_from(d.seconds).unwrap_or(0),
        u32::try_from(d.nanos).unwrap_or(0),
    );
    Ok(if d.is_zero() {
        DEFAULT_INTERVAL
    } else {
        d.max(MIN_INTERVAL).min(Duration::from_secs(3600))
    })
}

fn without_revision(s: &Summary) -> Summary {
    Summary {
        as_of_revision: 0,
        ..s.clone()
    }
}

/// GetSummary as the server runs it: its answer goes on the wire as the
/// cache holds it (`zgc_server::encoded::EncodedMethod`).
#[derive(Clone)]
pub struct GetSummary(pub Stats);

impl GetSummary {
    /// The method's path, which this handler takes over.
    pub const PATH: &'static str = "/zgc.stats.v1.StatsService/GetSummary";
}

impl UnaryService<GetSummaryRequest> for GetSummary {
    type Response = Encoded<Summary>;
    type Future = BoxFuture<'static, Result<Response<Encoded<Summary>>, Status>>;

    fn call(&mut self, request: Request<GetSummaryRequest>) -> Self::Future {
        let stats = self.0.clone();
        Box::pin(async move { stats.summary(request).await })
    }
}

type SummaryStream = Pin<Box<dyn Stream<Item = Result<Summary, Status>> + Send>>;

#[tonic::async_trait]
impl StatsService for Stats {
    async fn get_summary(
        &self,
        request: Request<GetSummaryRequest>,
    ) -> Result<Response<Summary>, Status> {
        let (metadata, encoded, extensions) = self.summary(request).await?.into_parts();
        Ok(Response::from_parts(
            metadata,
            encoded.decode()?,
            extensions,
        ))
    }

    async fn rank_parks(
        &self,
        request: Request<RankParksRequest>,
    ) -> Result<Response<RankParksResponse>, Status> {
        let (metadata, _, req) = request.into_parts();
        let (entries, revision) = self
            .read(&metadata, req.min_revision, |e| e.rank_parks(&req))
            .await?;
        Ok(respond(
            RankParksResponse {
                entries,
                as_of_revision: revision,
            },
            revision,
        ))
    }

    async fn get_relocation_flows(
        &self,
        request: Request<GetRelocationFlowsRequest>,
    ) -> Result<Response<GetRelocationFlowsResponse>, Status> {
        let (metadata, _, req) = request.into_parts();
        let (flows, revision) = self
            .read(&metadata, req.min_revision, |e| e.relocation_flows(&req))
            .await?;
        Ok(respond(
            GetRelocationFlowsResponse {
                flows,
                as_of_revision: revision,
            },
            revision,
        ))
    }

    async fn get_branch_footprint(
        &self,
        request: Request<GetBranchFootprintRequest>,
    ) -> Result<Response<GetBranchFootprintResponse>, Status> {
        let (metadata, _, req) = request.into_parts();
        let (regions, revision) = self
            .read(&metadata, req.min_revision, |e| e.branch_footprint(&req))
            .await?;
        Ok(respond(
            GetBranchFootprintResponse {
                regions,
                as_of_revision: revision,
            },
            revision,
        ))
    }

    async fn get_time_series(
        &self,
        request: Request<GetTimeSeriesRequest>,
    ) -> Result<Response<GetTimeSeriesResponse>, Status> {
        let (metadata, _, req) = request.into_parts();
        let (points, revision) = self
            .read(&metadata, req.min_revision, |e| e.time_series(&req))
            .await?;
        Ok(respond(
            GetTimeSeriesResponse {
                points,
                as_of_revision: revision,
            },
            revision,
        ))
    }

    type WatchSummaryStream = SummaryStream;

    async fn watch_summary(
        &self,
        request: Request<WatchSummaryRequest>,
    ) -> Result<Response<Self::WatchSummaryStream>, Status> {
        let (metadata, _, req) = request.into_parts();
        let every = interval(req.min_interval.as_ref())?;
        let scope = req.scope;
        let (first, revision) = self
            .read(&metadata, req.min_revision, |e| e.summary(scope.as_ref()))
            .await?;
        // One summary in flight at most: a slow client gets the newest
        // figures when it reads, never a backlog.
        let (tx, rx) = mpsc::channel::<Result<Summary, Status>>(1);
        let state = self.state.clone();
        let shutdown = self.shutdown.clone();
        tokio::spawn(async move {
            let mut applied = state.subscribe();
            let mut last = without_revision(&first);
            if tx.send(Ok(first)).await.is_err() {
                return;
            }
            loop {
                let next_allowed = tokio::time::Instant::now() + every;
                tokio::select! {
                    changed = applied.changed() => if changed.is_err() { return },
                    _ = tx.closed() => return,
                    _ = shutdown.cancelled() => {
                        let _ = tx.send(Err(StatsError::ShuttingDown.into())).await;
                        return;
                    }
                }
                tokio::time::sleep_until(next_allowed).await;
                let current = {
                    let engine = state.read();
                    engine.summary(scope.as_ref())
                };
                match current {
                    Ok(summary) => {
                        let comparable = without_revision(&summary);
                        if comparable != last {
                            last = comparable;
                            if tx.send(Ok(summary)).await.is_err() {
                                return;
                            }
                        }
                    }
                    Err(e) => {
                        let _ = tx.send(Err(StatsError::Query(e).into())).await;
                        return;
                    }
                }
            }
        });
        Ok(respond(
            Box::pin(ReceiverStream::new(rx)) as SummaryStream,
            revision,
        ))
    }
}
