//! The limit on store scans running at once.
//!
//! A `List*` call reads its page on a blocking thread, and a filtered
//! page with an exact `total_size` may read most of the store. Without a
//! limit, every such call in flight gets a thread of its own (up to the
//! server's concurrent-call limit): the scans share the same cores
//! anyway, and each thread holds its own stack, allocator heap and the
//! store pages it walks. With the limit, a scan past it waits, holding
//! nothing but its request, until a running one ends; a caller that
//! gives up (deadline, cancellation) leaves the queue at once.

use std::future::Future;
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::Semaphore;
use tokio::task::JoinError;

/// At most `limit` scans run at once; the rest wait in arrival order.
#[derive(Clone, Debug)]
pub struct ScanLimit {
    permits: Arc<Semaphore>,
    limit: usize,
    waiting: Arc<AtomicUsize>,
}

impl ScanLimit {
    /// A limit of `limit` scans at once.
    pub fn new(limit: NonZeroUsize) -> Self {
        let limit = limit.get().min(Semaphore::MAX_PERMITS);
        Self {
            permits: Arc::new(Semaphore::new(limit)),
            limit,
            waiting: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// The default limit: one scan per CPU this process may use (cgroup
    /// quotas included), so scans keep every core busy and no more.
    pub fn per_cpu() -> Self {
        Self::new(std::thread::available_parallelism().unwrap_or(NonZeroUsize::MIN))
    }

    /// Runs `scan` on a blocking thread once a slot is free.
    ///
    /// Dropping the returned future while it waits gives up its place;
    /// once running, the scan finishes on its thread and frees the slot.
    pub fn run<F, R>(
        &self,
        scan: F,
    ) -> impl Future<Output = Result<R, JoinError>> + Send + use<F, R>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        let permits = self.permits.clone();
        let waiting = Waiting::enter(self.waiting.clone());
        async move {
            let permit = permits.acquire_owned().await;
            drop(waiting);
            tokio::task::spawn_blocking(move || {
                let _slot = permit;
                scan()
            })
            .await
        }
    }

    /// The most scans that run at once.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Scans running now.
    pub fn running(&self) -> usize {
        self.limit.saturating_sub(self.permits.available_permits())
    }

    /// Scans waiting for a slot now.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
    }
}

/// Counts a scan as waiting until it is dropped.
struct Waiting(Arc<AtomicUsize>);

impl Waiting {
    fn enter(count: Arc<AtomicUsize>) -> Self {
        count.fetch_add(1, Ordering::Relaxed);
        Self(count)
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use std::future::poll_fn;
    use std::pin::{Pin, pin};
    use std::sync::mpsc;
    use std::task::Poll;

    use super::*;

    fn limit(n: usize) -> ScanLimit {
        ScanLimit::new(NonZeroUsize::new(n).unwrap_or(NonZeroUsize::MIN))
    }

    /// Whether one poll of `fut` leaves it pending.
    async fn pending<F: Future + Unpin>(fut: &mut F) -> bool {
        poll_fn(|cx| Poll::Ready(Pin::new(&mut *fut).poll(cx).is_pending())).await
    }

    #[tokio::test]
    async fn a_scan_past_the_limit_waits_for_a_running_one_to_end() {
        let scans = limit(1);
        let (started_tx, started_rx) = tokio::sync::oneshot::channel();
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let first = tokio::spawn(scans.run(move || {
            let _ = started_tx.send(());
            // Holds its slot until the test lets it go.
            let _ = release_rx.recv();
            1
        }));
        started_rx.await.expect("the first scan starts");
        assert_eq!(scans.running(), 1);

        let (ran_tx, mut ran_rx) = tokio::sync::oneshot::channel();
        let mut second = pin!(scans.run(move || {
            let _ = ran_tx.send(());
            2
        }));
        assert!(pending(&mut second).await, "the second scan must wait");
        assert_eq!(scans.waiting(), 1);
        assert!(
            ran_rx.try_recv().is_err(),
            "the second scan ran while the first held the only slot"
        );

        release_tx.send(()).expect("the first scan is waiting");
        assert_eq!(first.await.expect("joins").expect("runs"), 1);
        assert_eq!(second.await.expect("runs"), 2);
        assert_eq!(scans.waiting(), 0);
        assert_eq!(scans.running(), 0);
    }

    #[tokio::test]
    async fn a_waiting_scan_given_up_leaves_the_queue_and_never_runs() {
        let scans = limit(1);
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let (started_tx, started_rx) = tokio::sync::oneshot::channel();
        let first = tokio::spawn(scans.run(move || {
            let _ = started_tx.send(());
            let _ = release_rx.recv();
        }));
        started_rx.await.expect("the first scan starts");

        let (ran_tx, mut ran_rx) = tokio::sync::oneshot::channel::<()>();
        let mut given_up = Box::pin(scans.run(move || {
            let _ = ran_tx.send(());
        }));
        assert!(pending(&mut given_up).await);
        assert_eq!(scans.waiting(), 1);
        drop(given_up);
        assert_eq!(scans.waiting(), 0);

        release_tx.send(()).expect("the first scan is waiting");
        first.await.expect("joins").expect("runs");
        assert_eq!(scans.running(), 0);
        // The given-up scan's closure was dropped unrun: its sender with it.
        assert_eq!(
            ran_rx.try_recv(),
            Err(tokio::sync::oneshot::error::TryRecvError::Closed)
        );
    }

    #[tokio::test]
    async fn scans_within_the_limit_run_together() {
        let scans = limit(2);
        let (a_tx, a_rx) = mpsc::channel::<()>();
        let (b_tx, b_rx) = mpsc::channel::<()>();
        // Each scan lets the other go only once it runs itself: with one
        // slot they would wait for each other forever.
        let a = tokio::spawn(scans.run(move || {
            let _ = b_tx.send(());
            a_rx.recv().is_ok()
        }));
        let b = tokio::spawn(scans.run(move || {
            let _ = a_tx.send(());
            b_rx.recv().is_ok()
        }));
        assert!(a.await.expect("joins").expect("runs"));
        assert!(b.await.expect("joins").expect("runs"));
    }
}
