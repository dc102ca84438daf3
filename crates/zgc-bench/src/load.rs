//! Load shapes: closed-loop (a fixed number of calls in flight, for a
//! fixed time), paced (calls started at a fixed rate, whatever the
//! answers do) and open (the same, on a precise schedule, latency counted
//! from each call's scheduled start). Every latency goes into an HDR
//! histogram.

use std::future::Future;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

/// What one load run measured.
pub struct LoadResult {
    /// Calls that succeeded.
    pub calls: u64,
    /// Calls that failed, and the first failure seen.
    pub errors: u64,
    /// The first failure, for the report.
    pub first_error: Option<String>,
    /// Wall time of the run.
    pub elapsed: Duration,
    /// Latency of successful calls, in microseconds.
    pub latency: Histogram<u64>,
}

impl LoadResult {
    fn new() -> Self {
        Self {
            calls: 0,
            errors: 0,
            first_error: None,
            elapsed: Duration::ZERO,
            latency: histogram(),
        }
    }

    fn record(&mut self, outcome: Result<Duration, String>) {
        match outcome {
            Ok(latency) => {
                self.calls += 1;
                let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
                let _ = self.latency.record(us.max(1));
            }
            Err(e) => {
                self.errors += 1;
                self.first_error.get_or_insert(e);
            }
        }
    }

    fn merge(&mut self, other: LoadResult) {
        self.calls += other.calls;
        self.errors += other.errors;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
        let _ = self.latency.add(&other.latency);
    }

    /// Successful calls per second.
    pub fn throughput(&self) -> f64 {
        self.calls as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// A latency percentile in microseconds.
    pub fn percentile_us(&self, q: f64) -> u64 {
        self.latency.value_at_quantile(q)
    }
}

/// 1 µs to 100 s, 3 significant digits.
#[allow(clippy::expect_used)] // constant, valid bounds
fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 100_000_000, 3).expect("valid histogram bounds")
}

/// Runs `call` from `concurrency` tasks spread over `connections` for
/// `duration`, each starting its next call when the last one ends.
/// `call` gets a connection and a number unique to the call; the latency
/// recorded is the call's own duration.
pub async fn closed<C, F, Fut, E>(
    connections: &[C],
    concurrency: usize,
    duration: Duration,
    call: F,
) -> LoadResult
where
    C: Clone + Send + 'static,
    F: Fn(C, u64) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<(), E>> + Send,
    E: std::fmt::Display,
{
    let start = Instant::now();
    let deadline = start + duration;
    let mut tasks = tokio::task::JoinSet::new();
    for t in 0..concurrency.max(1) {
        let Some(connection) = connections.get(t % connections.len().max(1)).cloned() else {
            break;
        };
        let call = call.clone();
        tasks.spawn(async move {
            let mut result = LoadResult::new();
            let mut n = t as u64;
            while Instant::now() < deadline {
                let began = Instant::now();
                let outcome = call(connection.clone(), n).await;
                result.record(outcome.map(|()| began.elapsed()).map_err(|e| e.to_string()));
                n += concurrency as u64;
            }
            result
        });
    }
    let mut result = LoadResult::new();
    while let Some(Ok(part)) = tasks.join_next().await {
        result.merge(part);
    }
    result.elapsed = start.elapsed();
    result
}

/// Starts `call` `rate` times per second for `duration`, without waiting
/// for earlier calls (an open loop: a slow answer does not slow the
/// arrivals), at most `max_in_flight` at once. `call` returns the latency
/// to record (which need not be its own duration).
pub async fn paced<F, Fut, E>(
    rate: u32,
    duration: Duration,
    max_in_flight: usize,
    call: F,
) -> LoadResult
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Duration, E>> + Send + 'static,
    E: std::fmt::Display,
{
    let start = Instant::now();
    let period = Duration::from_secs(1) / rate.max(1);
    let mut ticks = tokio::time::interval(period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut tasks = tokio::task::JoinSet::new();
    let mut result = LoadResult::new();
    let mut n = 0u64;
    while start.elapsed() < duration {
        ticks.tick().await;
        while tasks.len() >= max_in_flight.max(1) {
            if let Some(Ok(outcome)) = tasks.join_next().await {
                result.record(outcome);
            }
        }
        let call = call(n);
        tasks.spawn(async move { call.await.map_err(|e| e.to_string()) });
        n += 1;
        while let Some(Ok(outcome)) = tasks.try_join_next() {
            result.record(outcome);
        }
    }
    while let Some(Ok(outcome)) = tasks.join_next().await {
        result.record(outcome);
    }
    result.elapsed = start.elapsed();
    result
}

/// Starts `call` on `connections` in turn at `rate` per second for
/// `duration`, on a fixed schedule whatever the answers do (an open loop),
/// and records each call's latency from its *scheduled* start, so that a
/// call held back by slow earlier ones counts the wait (no coordinated
/// omission). A thread of its own keeps the schedule: tokio's timers tick
/// in milliseconds, far coarser than the calls measured; it sleeps until
/// each start rather than spinning, so it takes no core from the servers.
pub async fn open<C, F, Fut, E>(
    connections: &[C],
    rate: u32,
    duration: Duration,
    call: F,
) -> LoadResult
where
    C: Clone + Send + 'static,
    F: Fn(C, u64) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<(), E>> + Send + 'static,
    E: std::fmt::Display,
{
    let start = Instant::now();
    let period = Duration::from_secs(1) / rate.max(1);
    let count = (duration.as_secs_f64() * f64::from(rate.max(1))) as u64;
    let (due, mut starts) = tokio::sync::mpsc::unbounded_channel::<(u64, Instant)>();
    let pacer = std::thread::spawn(move || {
        for n in 0..count {
            let scheduled = start + period * u32::try_from(n).unwrap_or(u32::MAX);
            let now = Instant::now();
            if scheduled > now {
                std::thread::sleep(scheduled - now);
            }
            if due.send((n, scheduled)).is_err() {
                return;
            }
        }
    });
    let mut tasks = tokio::task::JoinSet::new();
    let mut result = LoadResult::new();
    while let Some((n, scheduled)) = starts.recv().await {
        let Some(connection) = connections
            .get(usize::try_from(n).unwrap_or(0) % connections.len().max(1))
            .cloned()
        else {
            break;
        };
        let call = call(connection, n);
        tasks.spawn(async move {
            call.await
                .map(|()| scheduled.elapsed())
                .map_err(|e| e.to_string())
        });
        while let Some(Ok(outcome)) = tasks.try_join_next() {
            result.record(outcome);
        }
    }
    while let Some(Ok(outcome)) = tasks.join_next().await {
        result.record(outcome);
    }
    let _ = pacer.join();
    result.elapsed = start.elapsed();
    result
}
