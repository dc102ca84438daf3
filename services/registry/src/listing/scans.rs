//! The limit on store scans running at once.
//!
//! A `List*` call reads its page on a blocking thread, and a filtered
//! page with an exact `total_size` may read most of the store. Without a
//! limit, every such call in flight gets a thread of its own (up to the
//! server's concurrent-call limit): the scans share the same cores
//! anyway, and each thread holds its own stack, allocator heap and the
//! store pages it walks. With the limit, a scan past it waits, holding
//! nothing but its request, until a running one ends; a caller that
//! gives up (deadline, cancellation) leaves the queue at once, and a
//! running scan whose caller gave up is told so ([`Abandoned`]) and stops
//! early, freeing its slot for a caller still waiting.

use std::future::Future;
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

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
    /// Dropping the returned future while it waits gives up its place.
    /// Dropping it while the scan runs sets the scan's [`Abandoned`]; the
    /// slot is free once the scan returns.
    pub fn run<F, R>(
        &self,
        scan: F,
    ) -> impl Future<Output = Result<R, JoinError>> + Send + use<F, R>
    where
        F: FnOnce(&Abandoned) -> R + Send + 'static,
        R: Send + 'static,
    {
        let permits = self.permits.clone();
        let waiting = Waiting::enter(self.waiting.clone());
        async move {
            // `None` only if the semaphore were closed, which it never is.
            let permit = permits.acquire_owned().await.ok();
            drop(waiting);
            let abandoned = Abandoned::default();
            let _on_drop = AbandonOnDrop(abandoned.clone());
            tokio::task::spawn_blocking(move || {
                let _slot = permit;
                scan(&abandoned)
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

/// Set once nobody waits for a running scan's result any more: a scan
/// checks it as it goes and may stop early.
#[derive(Clone, Debug, Default)]
pub struct Abandoned(Arc<AtomicBool>);

impl Abandoned {
    /// Whether the scan's caller gave up.
    pub fn is_set(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    /// Marks the scan abandoned.
    pub fn set(&self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Abandons a scan when the future waiting for it goes (also after the
/// scan has returned, when nothing reads the flag any more).
struct AbandonOnDrop(Abandoned);

impl Drop for AbandonOnDrop {
    fn drop(&mut self) {
        self.0.set();
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
        let first = tokio::spawn(scans.run(move |_| {
            let _ = started_tx.send(());
            // Holds its slot until the test lets it go.
            let _ = release_rx.recv();
            1
        }));
        started_rx.await.expect("the first scan starts");
        assert_eq!(scans.running(), 1);

        let (ran_tx, mut ran_rx) = tokio::sync::oneshot::channel();
        let mut second = pin!(scans.run(move |_| {
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
        let first = tokio::spawn(scans.run(move |_| {
            let _ = started_tx.send(());
            let _ = release_rx.recv();
        }));
        started_rx.await.expect("the first scan starts");

        let (ran_tx, mut ran_rx) = tokio::sync::oneshot::channel::<()>();
        let mut given_up = Box::pin(scans.run(move |_| {
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
    async fn a_running_scan_whose_caller_gave_up_is_told_and_frees_its_slot() {
        let scans = limit(1);
        let (started_tx, started_rx) = tokio::sync::oneshot::channel();
        let (stopped_tx, stopped_rx) = tokio::sync::oneshot::channel();
        let mut abandoned_call = Box::pin(scans.run(move |abandoned: &Abandoned| {
            let _ = started_tx.send(abandoned.is_set());
            // A scan that would never end on its own: it stops only when
            // told its caller is gone.
            while !abandoned.is_set() {
                std::thread::yield_now();
            }
            let _ = stopped_tx.send(());
        }));
        assert!(pending(&mut abandoned_call).await);
        assert!(
            !started_rx.await.expect("the scan starts"),
            "a scan starts with its caller waiting"
        );
        drop(abandoned_call);
        stopped_rx.await.expect("the scan is told, and stops");

        // The slot is free again: the next scan gets it.
        assert_eq!(scans.run(|_| 7).await.expect("runs"), 7);
        assert_eq!(scans.running(), 0);
    }

    #[tokio::test]
    async fn scans_within_the_limit_run_together() {
        let scans = limit(2);
        let (a_tx, a_rx) = mpsc::channel::<()>();
        let (b_tx, b_rx) = mpsc::channel::<()>();
        // Each scan lets the other go only once it runs itself: with one
        // slot they would wait for each other forever.
        let a = tokio::spawn(scans.run(move |_| {
            let _ = b_tx.send(());
            a_rx.recv().is_ok()
        }));
        let b = tokio::spawn(scans.run(move |_| {
            let _ = a_tx.send(());
            b_rx.recv().is_ok()
        }));
        assert!(a.await.expect("joins").expect("runs"));
        assert!(b.await.expect("joins").expect("runs"));
    }
}
