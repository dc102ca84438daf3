//! The storage limit: a raw sled loop that makes one key durable at a
//! time (insert, flush, fsync), with values the size of an encoded
//! company. It runs in this process, on the same filesystem as the
//! registry's data directory, for as long as a run of `create` lasts.

use std::fs::File;
use std::path::Path;
use std::time::{Duration, Instant};

/// Durable single-key writes per second for `duration`.
pub fn writes_per_second(dir: &Path, value_len: usize, duration: Duration) -> std::io::Result<f64> {
    let db = sled::open(dir).map_err(std::io::Error::other)?;
    let tree = db.open_tree("companies").map_err(std::io::Error::other)?;
    // sled keeps its log in `<dir>/db`; fsync it as the store does.
    let log = File::open(dir.join("db"))?;
    let value = vec![0x5a_u8; value_len];
    let started = Instant::now();
    let mut n = 0u64;
    while started.elapsed() < duration {
        tree.insert(format!("companies/raw-{n:012}"), value.as_slice())
            .map_err(std::io::Error::other)?;
        db.flush().map_err(std::io::Error::other)?;
        log.sync_data()?;
        n += 1;
    }
    Ok(n as f64 / started.elapsed().as_secs_f64().max(1e-9))
}
