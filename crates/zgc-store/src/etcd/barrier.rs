//! The quorum read behind every consistent read, shared: a caller needs a
//! read of the newest write's revision that *started after it arrived*
//! (anything older might miss a write it must see).
//!
//! One read is in flight at a time. A caller that finds a read started
//! since it came waits for it; one that does not starts one if none is in
//! flight, and otherwise waits for the one in flight to end and tries
//! again. So the callers arriving during a read share the next, and
//! concurrent reads cost etcd one quorum read per round trip instead of
//! one each, as writes share a commit. (Two in flight cut a caller's wait
//! by a fraction of a round trip, but on a machine etcd shares with the
//! registry the second read's cost to etcd outweighed it: see
//! BENCHMARKS.md.)
//!
//! Reads run as tasks of their own: a caller that goes away (its client
//! hung up) does not take with it a read that others wait for.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use tokio::sync::watch;

/// Quorum reads in flight at once, at most.
const IN_FLIGHT: usize = 1;

/// The outcome of one shared read: its number, and the revision it gave or
/// why it failed.
type Outcome = (u64, Result<u64, String>);

pub(crate) struct Barrier {
    shared: Arc<Shared>,
}

struct Shared {
    /// The number of the last read started.
    started: AtomicU64,
    /// Reads started and not finished.
    in_flight: AtomicUsize,
    /// The highest-numbered read finished; every finish notifies.
    done: watch::Sender<Outcome>,
}

impl Barrier {
    pub(crate) fn new() -> Self {
        Self {
            shared: Arc::new(Shared {
                started: AtomicU64::new(0),
                in_flight: AtomicUsize::new(0),
                done: watch::channel((0, Ok(0))).0,
            }),
        }
    }

    /// The result of a read (`read`) started after this call began, shared
    /// with the calls waiting alongside.
    pub(crate) async fn read<F, Fut>(&self, read: F) -> Result<u64, String>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<u64, String>> + Send + 'static,
    {
        let shared = &self.shared;
        // Any read numbered above the last one started now began after us.
        let needed = shared.started.load(Ordering::Acquire) + 1;
        let mut done = shared.done.subscribe();
        let mut read = Some(read);
        loop {
            {
                let (number, outcome) = &*done.borrow_and_update();
                if *number >= needed {
                    return outcome.clone();
                }
            }
            let none_started_since = shared.started.load(Ordering::Acquire) < needed;
            if none_started_since && let Some(start) = read.take_if(|_| shared.take_slot()) {
                let number = shared.started.fetch_add(1, Ordering::AcqRel) + 1;
                let shared = shared.clone();
                let reading = start();
                tokio::spawn(async move {
                    let outcome = reading.await;
                    shared.done.send_modify(|done| {
                        if number > done.0 {
                            *done = (number, outcome);
                        }
                    });
                    // Notifies again, for the callers waiting for a slot.
                    shared.in_flight.fetch_sub(1, Ordering::AcqRel);
                    shared.done.send_modify(|_| {});
                });
            }
            // A read started after us is in flight, or every slot is taken:
            // wait for a read to finish.
            if done.changed().await.is_err() {
                return Err("the store is closing".into());
            }
        }
    }
}

impl Shared {
    /// Takes one of the [`IN_FLIGHT`] slots, if one is free.
    fn take_slot(&self) -> bool {
        self.in_flight
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < IN_FLIGHT).then_some(n + 1)
            })
            .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use super::*;

    /// A read that counts itself and then waits until `released`; it gives
    /// its own count.
    fn held_read(
        reads: &Arc<AtomicUsize>,
        released: &watch::Receiver<bool>,
    ) -> impl FnOnce() -> std::pin::Pin<Box<dyn Future<Output = Result<u64, String>> + Send>>
    + Send
    + 'static {
        let (reads, mut released) = (reads.clone(), released.clone());
        move || {
            let n = reads.fetch_add(1, Ordering::SeqCst) as u64 + 1;
            Box::pin(async move {
                let _ = released.wait_for(|r| *r).await;
                Ok(n)
            })
        }
    }

    async fn until_reads(reads: &AtomicUsize, n: usize) {
        while reads.load(Ordering::SeqCst) < n {
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test]
    async fn a_read_in_flight_when_a_caller_arrives_is_not_its_read() {
        let barrier = Arc::new(Barrier::new());
        let reads = Arc::new(AtomicUsize::new(0));
        let (release, released) = watch::channel(false);
        let first = tokio::spawn({
            let (barrier, read) = (barrier.clone(), held_read(&reads, &released));
            async move { barrier.read(read).await }
        });
        until_reads(&reads, 1).await;
        let second = tokio::spawn({
            let (barrier, read) = (barrier.clone(), held_read(&reads, &released));
            async move { barrier.read(read).await }
        });
        for _ in 0..64 {
            tokio::task::yield_now().await;
        }
        assert_eq!(reads.load(Ordering::SeqCst), 1, "one read in flight");
        release.send_replace(true);
        assert_eq!(first.await.unwrap(), Ok(1));
        assert_eq!(
            second.await.unwrap(),
            Ok(2),
            "the second caller got a read that started after it came"
        );
    }

    #[tokio::test]
    async fn callers_waiting_together_share_one_read() {
        let barrier = Arc::new(Barrier::new());
        let reads = Arc::new(AtomicUsize::new(0));
        let (release, released) = watch::channel(false);
        let first = tokio::spawn({
            let (barrier, read) = (barrier.clone(), held_read(&reads, &released));
            async move { barrier.read(read).await }
        });
        until_reads(&reads, 1).await;
        let waiting: Vec<_> = (0..8)
            .map(|_| {
                let (barrier, read) = (barrier.clone(), held_read(&reads, &released));
                tokio::spawn(async move { barrier.read(read).await })
            })
            .collect();
        for _ in 0..64 {
            tokio::task::yield_now().await;
        }
        release.send_replace(true);
        assert_eq!(first.await.unwrap(), Ok(1));
        for caller in waiting {
            assert_eq!(caller.await.unwrap(), Ok(2));
        }
        assert_eq!(reads.load(Ordering::SeqCst), 2, "eight callers, one read");
    }

    #[tokio::test]
    async fn a_read_outlives_the_caller_that_started_it() {
        let barrier = Arc::new(Barrier::new());
        let reads = Arc::new(AtomicUsize::new(0));
        let (release, released) = watch::channel(false);
        let gone = tokio::spawn({
            let (barrier, read) = (barrier.clone(), held_read(&reads, &released));
            async move { barrier.read(read).await }
        });
        until_reads(&reads, 1).await;
        // A caller that came after the read started: it needs the next.
        let staying = tokio::spawn({
            let (barrier, read) = (barrier.clone(), held_read(&reads, &released));
            async move { barrier.read(read).await }
        });
        for _ in 0..64 {
            tokio::task::yield_now().await;
        }
        // The first caller hangs up. Its read still ends and frees its
        // slot, and the second caller starts its own.
        gone.abort();
        release.send_replace(true);
        assert_eq!(staying.await.unwrap(), Ok(2));
        assert_eq!(reads.load(Ordering::SeqCst), 2);
    }
}
