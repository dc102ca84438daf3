//! The directory a replica keeps its local store in: made fresh at start,
//! removed when the replica closes, and, when a replica was killed before
//! it could remove its own, removed by the next replica to start in the
//! same data directory.
//!
//! A replica holds an exclusive lock on a file in its directory for as
//! long as it runs; the kernel releases it when the process dies, however
//! it dies. A directory whose lock can be taken belongs to no running
//! replica. One without a lock file is one a replica is making at this
//! moment, or one whose maker died before it locked: it is left alone
//! until it is older than any start could take.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The name every scratch directory starts with.
const PREFIX: &str = "zgc-replica-";
/// The file a running replica holds locked.
const LOCK: &str = "lock";
/// How old a directory without a lock file must be before it is taken
/// for a dead replica's.
const UNLOCKED_GRACE: Duration = Duration::from_secs(600);

/// A replica's scratch directory, locked; removed on drop.
pub(crate) struct Scratch {
    dir: tempfile::TempDir,
    _lock: File,
}

impl Scratch {
    /// Removes what dead replicas left in `data_dir`, then makes and
    /// locks a directory of this replica's own there.
    pub(crate) fn create(data_dir: &Path) -> std::io::Result<Self> {
        std::fs::create_dir_all(data_dir)?;
        remove_abandoned(data_dir);
        let dir = tempfile::Builder::new()
            .prefix(PREFIX)
            .tempdir_in(data_dir)?;
        let lock = File::create(dir.path().join(LOCK))?;
        lock.try_lock().map_err(std::io::Error::other)?;
        Ok(Self { dir, _lock: lock })
    }

    /// The directory.
    pub(crate) fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// Removes every scratch directory in `data_dir` no running replica
/// holds. Best effort: what cannot be read or removed is logged and left.
fn remove_abandoned(data_dir: &Path) {
    let entries = match std::fs::read_dir(data_dir) {
        Ok(entries) => entries,
        Err(e) => {
            tracing::warn!(dir = %data_dir.display(), error = %e, "cannot look for abandoned replica directories");
            return;
        }
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let is_scratch = entry
            .file_name()
            .to_str()
            .is_some_and(|name| name.starts_with(PREFIX))
            && entry.file_type().is_ok_and(|t| t.is_dir());
        if !is_scratch || !abandoned(&path) {
            continue;
        }
        match std::fs::remove_dir_all(&path) {
            Ok(()) => tracing::info!(dir = %path.display(), "removed a dead replica's directory"),
            Err(e) => {
                tracing::warn!(dir = %path.display(), error = %e, "cannot remove a dead replica's directory");
            }
        }
    }
}

/// Whether no running replica holds `dir`.
fn abandoned(dir: &Path) -> bool {
    let lock: PathBuf = dir.join(LOCK);
    match File::options().write(true).open(&lock) {
        // Taken: its replica is gone. The lock goes with the file.
        Ok(file) => file.try_lock().is_ok(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => std::fs::metadata(dir)
            .and_then(|m| m.modified())
            .is_ok_and(|made| made.elapsed().is_ok_and(|age| age > UNLOCKED_GRACE)),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch_dirs(dir: &Path) -> Vec<PathBuf> {
        let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with(PREFIX))
            })
            .collect();
        found.sort();
        found
    }

    #[test]
    fn a_dead_replicas_directory_is_removed_and_a_live_ones_is_kept() {
        let data = tempfile::tempdir().unwrap();
        // A live replica's: locked.
        let live = Scratch::create(data.path()).unwrap();
        // A dead one's: its lock file is there, unlocked (its process
        // died, and the kernel released the lock).
        let dead = data.path().join(format!("{PREFIX}dead"));
        std::fs::create_dir_all(dead.join("replica")).unwrap();
        std::fs::write(dead.join(LOCK), b"").unwrap();
        std::fs::write(dead.join("replica").join("db"), b"data").unwrap();
        // One being made right now: no lock file yet, and new.
        let making = data.path().join(format!("{PREFIX}making"));
        std::fs::create_dir_all(&making).unwrap();
        // Not a replica's at all.
        let other = data.path().join("other");
        std::fs::create_dir_all(&other).unwrap();

        let next = Scratch::create(data.path()).unwrap();
        let mut expected = vec![
            live.path().to_path_buf(),
            making.clone(),
            next.path().to_path_buf(),
        ];
        expected.sort();
        assert_eq!(scratch_dirs(data.path()), expected);
        assert!(other.exists());

        // Dropped, a replica removes its own.
        drop(next);
        drop(live);
        assert_eq!(scratch_dirs(data.path()), vec![making]);
    }
}
