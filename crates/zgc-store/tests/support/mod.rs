//! What the store's integration tests share.

use zgc_store::{Store, StoreConfig, StoreError};

/// Opens the store `config` says. Right after a store there was closed in
/// this process, sled's I/O threads may hold its file (and so its lock)
/// for a moment after their last write has completed: the open is retried
/// while the directory is locked, for up to 30 s, which only a leaked
/// handle would exhaust. Any other outcome is the answer.
pub fn try_open(config: StoreConfig) -> Result<Store, StoreError> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        match Store::open(config.clone()) {
            Err(StoreError::Locked { .. }) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            other => return other,
        }
    }
}
