//! How long a call may wait for `min_revision`: until shortly before the
//! call's deadline (`grpc-timeout`), or 5 s when it has none.

use std::time::Duration;

use tonic::metadata::MetadataMap;

/// The wait when the call has no deadline.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(5);

/// The wait budget for a call with these headers: the deadline less a
/// margin (a tenth of it, at least 20 ms, at most 500 ms) to answer in.
pub fn wait_budget(metadata: &MetadataMap) -> Duration {
    let Some(timeout) = metadata
        .get("grpc-timeout")
        .and_then(|v| v.to_str().ok())
        .and_then(zgc_server::deadline::parse_grpc_timeout)
    else {
        return DEFAULT_WAIT;
    };
    let margin = (timeout / 10).clamp(Duration::from_millis(20), Duration::from_millis(500));
    timeout.saturating_sub(margin)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget(v: &str) -> Duration {
        let mut m = MetadataMap::new();
        m.insert("grpc-timeout", v.parse().unwrap());
        wait_budget(&m)
    }

    #[test]
    fn budgets_leave_a_margin_before_the_deadline() {
        assert_eq!(wait_budget(&MetadataMap::new()), DEFAULT_WAIT);
        assert_eq!(budget("1S"), Duration::from_millis(900));
        assert_eq!(budget("100m"), Duration::from_millis(80));
        assert_eq!(budget("10m"), Duration::ZERO);
        assert_eq!(
            budget("1H"),
            Duration::from_secs(3600) - Duration::from_millis(500)
        );
        assert_eq!(budget("bogus"), DEFAULT_WAIT);
        assert_eq!(budget("123456789S"), DEFAULT_WAIT);
    }
}
