//! The quorum read behind every consistent read, shared: a caller needs a
//! read of the newest write's revision that *started after it arrived*
//! (anything older might miss a write it must see). Callers that arrive
//! while such a read is in flight wait for the next one, which a single
//! caller sends for all of them, so concurrent reads cost etcd one quorum
//! read per round trip instead of one each, as writes share a commit.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::{Mutex, watch};

/// The outcome of one shared read: its number, and the revision it gave or
/// why it failed.
type Outcome = (u64, Result<u64, String>);

pub(crate) struct Barrier {
    /// The number of the last read started.
    started: AtomicU64,
    /// Held by the caller sending a read.
    sending: Mutex<()>,
    done: watch::Sender<Outcome>,
}

impl Barrier {
    pub(crate) fn new() -> Self {
        Self {
            started: AtomicU64::new(0),
            sending: Mutex::new(()),
            done: watch::channel((0, Ok(0))).0,
        }
    }

    /// The result of a read (`read`) started after this call began, shared
    /// with the calls waiting alongside.
    pub(crate) async fn read<F, Fut>(&self, read: F) -> Result<u64, String>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<u64, String>>,
    {
        // Any read numbered above the last one started now began after us.
        let needed = self.started.load(Ordering::Acquire) + 1;
        let mut done = self.done.subscribe();
        loop {
            {
                let (number, outcome) = &*done.borrow_and_update();
                if *number >= needed {
                    return outcome.clone();
                }
            }
            match self.sending.try_lock() {
                Ok(sending) => {
                    let number = self.started.fetch_add(1, Ordering::AcqRel) + 1;
                    let outcome = read().await;
                    // Free to send the next read before the waiters wake.
                    drop(sending);
                    let _previous = self.done.send_replace((number, outcome.clone()));
                    return outcome;
                }
                // A read is in flight: wait for it, then for ours.
                Err(_) => {
                    if done.changed().await.is_err() {
                        return Err("the store is closing".into());
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::AtomicUsize;

    use super::*;

    #[tokio::test]
    async fn a_read_in_flight_when_a_caller_arrives_is_not_its_read() {
        let barrier = Arc::new(Barrier::new());
        let reads = Arc::new(AtomicUsize::new(0));
        let (release, released) = watch::channel(false);
        // The first caller's read waits until released; the second caller
        // arrives while it is in flight.
        let first = {
            let (barrier, reads, released) = (barrier.clone(), reads.clone(), released.clone());
            tokio::spawn(async move {
                barrier
                    .read(|| {
                        let (reads, mut released) = (reads.clone(), released.clone());
                        async move {
                            let n = reads.fetch_add(1, Ordering::SeqCst) as u64 + 1;
                            let _ = released.wait_for(|r| *r).await;
                            Ok(n)
                        }
                    })
                    .await
            })
        };
        while reads.load(Ordering::SeqCst) == 0 {
            tokio::task::yield_now().await;
        }
        let second = {
            let (barrier, reads) = (barrier.clone(), reads.clone());
            tokio::spawn(async move {
                barrier
                    .read(|| {
                        let reads = reads.clone();
                        async move { Ok(reads.fetch_add(1, Ordering::SeqCst) as u64 + 1) }
                    })
                    .await
            })
        };
        release.send_replace(true);
        drop(released);
        assert_eq!(first.await.unwrap(), Ok(1));
        assert_eq!(
            second.await.unwrap(),
            Ok(2),
            "the second caller got a read of its own"
        );
        assert_eq!(reads.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn callers_waiting_together_share_one_read() {
        let barrier = Arc::new(Barrier::new());
        let reads = Arc::new(AtomicUsize::new(0));
        let (release, released) = watch::channel(false);
        let read = {
            let (reads, released) = (reads.clone(), released.clone());
            move || {
                let (reads, mut released) = (reads.clone(), released.clone());
                async move {
                    let n = reads.fetch_add(1, Ordering::SeqCst) as u64 + 1;
                    let _ = released.wait_for(|r| *r).await;
                    Ok(n)
                }
            }
        };
        // One read in flight; then eight callers arrive and wait for the
        // next, which one of them sends for all.
        let first = tokio::spawn({
            let (barrier, read) = (barrier.clone(), read.clone());
            async move { barrier.read(read).await }
        });
        while reads.load(Ordering::SeqCst) == 0 {
            tokio::task::yield_now().await;
        }
        let waiting: Vec<_> = (0..8)
            .map(|_| {
                let (barrier, read) = (barrier.clone(), read.clone());
                tokio::spawn(async move { barrier.read(read).await })
            })
            .collect();
        for _ in 0..64 {
            tokio::task::yield_now().await;
        }
        release.send_replace(true);
        assert_eq!(first.await.unwrap(), Ok(1));
        for w in waiting {
            assert_eq!(w.await.unwrap(), Ok(2));
        }
        assert_eq!(reads.load(Ordering::SeqCst), 2, "eight callers, one read");
        drop(released);
    }
}
