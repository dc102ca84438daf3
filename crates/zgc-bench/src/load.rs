//! Closed-loop load: a fixed number of calls in flight over several
//! connections, for a fixed time, with every latency recorded in an HDR
//! histogram.

use std::future::Future;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use tonic::transport::Channel;

/// What one load run measured.
pub struct LoadResult {
    /// Calls that succeeded.
    pub calls: u64,
    /// Calls that failed.
    pub errors: u64,
    /// Wall time of the run.
    pub elapsed: Duration,
    /// Latency of successful calls, in microseconds.
    pub latency: Histogram<u64>,
}

impl LoadResult {
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

/// Runs `call` from `concurrency` tasks spread over `channels` for
/// `duration`. `call` gets a channel and a number unique to the call.
pub async fn run<F, Fut>(
    channels: &[Channel],
    concurrency: usize,
    duration: Duration,
    call: F,
) -> LoadResult
where
    F: Fn(Channel, u64) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<(), tonic::Status>> + Send,
{
    let start = Instant::now();
    let deadline = start + duration;
    let mut tasks = tokio::task::JoinSet::new();
    for t in 0..concurrency {
        let channel = channels[t % channels.len()].clone();
        let call = call.clone();
        tasks.spawn(async move {
            let mut latency = histogram();
            let (mut calls, mut errors) = (0u64, 0u64);
            let mut n = t as u64;
            while Instant::now() < deadline {
                let began = Instant::now();
                match call(channel.clone(), n).await {
                    Ok(()) => {
                        calls += 1;
                        let us = u64::try_from(began.elapsed().as_micros()).unwrap_or(u64::MAX);
                        let _ = latency.record(us.max(1));
                    }
                    Err(_) => errors += 1,
                }
                n += concurrency as u64;
            }
            (calls, errors, latency)
        });
    }
    let mut result = LoadResult {
        calls: 0,
        errors: 0,
        elapsed: Duration::ZERO,
        latency: histogram(),
    };
    while let Some(Ok((calls, errors, latency))) = tasks.join_next().await {
        result.calls += calls;
        result.errors += errors;
        let _ = result.latency.add(&latency);
    }
    result.elapsed = start.elapsed();
    result
}
