//! Sending a stream of requests several at a time, while keeping the
//! order some of them depend on.
//!
//! An import sends batches one after another; one at a time, the client
//! waits a whole round trip (and the server's fsync) per batch, and the
//! server idles while the client reads and encodes the next. A
//! [`Pipeline`] keeps up to `depth` of them in flight instead, so the
//! server's writer can commit several in one group. What must stay in
//! order is named by keys: a task that *needs* a key starts only once no
//! running task *provides* it (a batch naming a parent company waits for
//! the batch creating that parent to be answered).

use std::collections::HashMap;
use std::future::Future;

use tokio::task::{JoinError, JoinSet};

/// Tasks run at most `depth` at a time, each after the running tasks that
/// provide a key it needs. Dropping the pipeline aborts the tasks still
/// running.
pub struct Pipeline<T> {
    depth: usize,
    tasks: JoinSet<(u64, T)>,
    next: u64,
    /// The running task that provides each key (the latest, if several).
    providers: HashMap<String, u64>,
    /// The keys each running task provides.
    provided: HashMap<u64, Vec<String>>,
}

impl<T: Send + 'static> Pipeline<T> {
    /// A pipeline running at most `depth` tasks at once (at least one).
    pub fn new(depth: usize) -> Self {
        Self {
            depth: depth.max(1),
            tasks: JoinSet::new(),
            next: 0,
            providers: HashMap::new(),
            provided: HashMap::new(),
        }
    }

    /// Starts `task` once fewer than `depth` tasks run and none of them
    /// provides a key in `needs`; from then on, tasks that need a key in
    /// `provides` wait for this one. Returns what the tasks that finished
    /// in the meantime returned, in the order they finished.
    ///
    /// # Errors
    /// When a task that finished panicked or was aborted.
    pub async fn start<F, K>(
        &mut self,
        provides: Vec<String>,
        needs: impl IntoIterator<Item = K>,
        task: F,
    ) -> Result<Vec<T>, JoinError>
    where
        F: Future<Output = T> + Send + 'static,
        K: AsRef<str>,
    {
        let needs: Vec<K> = needs
            .into_iter()
            .filter(|k| !k.as_ref().is_empty())
            .collect();
        let mut finished = Vec::new();
        while self.tasks.len() >= self.depth
            || needs
                .iter()
                .any(|k| self.providers.contains_key(k.as_ref()))
        {
            match self.join_one().await? {
                Some(out) => finished.push(out),
                None => break,
            }
        }
        let id = self.next;
        self.next += 1;
        for key in &provides {
            self.providers.insert(key.clone(), id);
        }
        self.provided.insert(id, provides);
        self.tasks.spawn(async move { (id, task.await) });
        Ok(finished)
    }

    /// Waits for every running task; returns what they returned, in the
    /// order they finished.
    ///
    /// # Errors
    /// When a task panicked or was aborted.
    pub async fn finish(&mut self) -> Result<Vec<T>, JoinError> {
        let mut finished = Vec::new();
        while let Some(out) = self.join_one().await? {
            finished.push(out);
        }
        Ok(finished)
    }

    /// How many tasks are running.
    pub fn running(&self) -> usize {
        self.tasks.len()
    }

    async fn join_one(&mut self) -> Result<Option<T>, JoinError> {
        let Some(joined) = self.tasks.join_next().await else {
            return Ok(None);
        };
        let (id, out) = joined?;
        for key in self.provided.remove(&id).unwrap_or_default() {
            if self.providers.get(&key) == Some(&id) {
                self.providers.remove(&key);
            }
        }
        Ok(Some(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::FutureExt;
    use tokio::sync::oneshot;

    /// A task that returns `name` once `release` is sent to.
    fn held(name: &'static str) -> (oneshot::Sender<()>, impl Future<Output = &'static str>) {
        let (release, wait) = oneshot::channel::<()>();
        (release, async move {
            let _ = wait.await;
            name
        })
    }

    #[tokio::test]
    async fn no_more_than_depth_tasks_run_at_once() {
        let mut p = Pipeline::new(2);
        let (release_a, a) = held("a");
        let (_release_b, b) = held("b");
        assert!(p.start(vec![], [""; 0], a).await.unwrap().is_empty());
        assert!(p.start(vec![], [""; 0], b).await.unwrap().is_empty());
        assert_eq!(p.running(), 2);
        let mut third = Box::pin(p.start(vec![], [""; 0], async { "c" }));
        // Neither running task can finish before it is released.
        assert!((&mut third).now_or_never().is_none());
        release_a.send(()).unwrap();
        assert_eq!(third.await.unwrap(), vec!["a"]);
        assert_eq!(p.running(), 2);
    }

    #[tokio::test]
    async fn a_task_waits_for_the_running_task_providing_what_it_needs() {
        let mut p = Pipeline::new(8);
        let (release_parent, parent) = held("parent");
        let (_release_other, other) = held("other");
        p.start(vec!["companies/hq".into()], [""; 0], parent)
            .await
            .unwrap();
        p.start(vec!["companies/x".into()], [""; 0], other)
            .await
            .unwrap();
        // Needing nothing that runs: starts at once, with room to spare.
        let started = p
            .start(vec![], ["companies/elsewhere", ""], async { "free" })
            .now_or_never();
        assert!(matches!(started, Some(Ok(ref done)) if done.is_empty()));
        let mut branch = Box::pin(p.start(vec![], ["companies/hq"], async { "branch" }));
        assert!((&mut branch).now_or_never().is_none());
        release_parent.send(()).unwrap();
        let done = branch.await.unwrap();
        assert!(done.contains(&"parent"), "{done:?}");
        assert!(!done.contains(&"other"), "{done:?}");
    }

    #[tokio::test]
    async fn every_output_comes_back_once_and_nothing_stays_provided() {
        let mut p = Pipeline::new(3);
        let mut all = Vec::new();
        let mut previous = "";
        for name in ["a", "b", "c", "d", "e"] {
            // Each needs the one before: they run one after another.
            all.extend(
                p.start(vec![name.to_string()], [previous], async move { name })
                    .await
                    .unwrap(),
            );
            assert_eq!(p.running(), 1);
            previous = name;
        }
        all.extend(p.finish().await.unwrap());
        all.sort_unstable();
        assert_eq!(all, ["a", "b", "c", "d", "e"]);
        assert_eq!(p.running(), 0);
        assert!(p.providers.is_empty() && p.provided.is_empty());
    }
}
