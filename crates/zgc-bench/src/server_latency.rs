//! Server-side latency: what a server's own `zgc_rpc_latency_seconds`
//! histogram says about one method between two scrapes of its
//! `/metrics`, as Prometheus' `histogram_quantile` would compute it.

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Cumulative bucket counts of one method's latency histogram: `(upper
/// bound in seconds, calls at or below it)`, ascending, `+Inf` last.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Buckets(pub Vec<(f64, u64)>);

/// Fetches a server's metrics page.
pub async fn scrape(addr: SocketAddr) -> std::io::Result<String> {
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    stream
        .write_all(b"GET /metrics HTTP/1.0\r\nHost: zgc-bench\r\n\r\n")
        .await?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await?;
    match response.split_once("\r\n\r\n") {
        Some((head, body)) if head.starts_with("HTTP/1.") && head.contains(" 200 ") => {
            Ok(body.to_string())
        }
        _ => Err(std::io::Error::other(format!(
            "{addr}: not a metrics page: {:.80}",
            response
        ))),
    }
}

/// The latency buckets of `service`/`method` in a metrics page; empty when
/// the method has not been called.
pub fn buckets(page: &str, service: &str, method: &str) -> Buckets {
    let mut out: Vec<(f64, u64)> = page
        .lines()
        .filter_map(|line| {
            let rest = line.strip_prefix("zgc_rpc_latency_seconds_bucket{")?;
            let (labels, value) = rest.rsplit_once('}')?;
            let labels = parse_labels(labels);
            let label = |k: &str| {
                labels
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.as_str())
            };
            if label("service")? != service || label("method")? != method {
                return None;
            }
            let le = match label("le")? {
                "+Inf" => f64::INFINITY,
                le => le.parse().ok()?,
            };
            let count = value.trim().parse::<f64>().ok()?;
            Some((le, count as u64))
        })
        .collect();
    out.sort_by(|a, b| a.0.total_cmp(&b.0));
    Buckets(out)
}

/// `a="x",b="y"` (values may hold `\"`, `\\` and `\n` escapes).
fn parse_labels(text: &str) -> Vec<(&str, String)> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some((name, after)) = rest.split_once("=\"") {
        let mut value = String::new();
        let mut chars = after.char_indices();
        let mut end = after.len();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, other)) => value.push(other),
                    None => {}
                },
                '"' => {
                    end = i + 1;
                    break;
                }
                c => value.push(c),
            }
        }
        out.push((name.trim_start_matches(',').trim(), value));
        rest = &after[end..];
    }
    out
}

impl Buckets {
    /// The calls counted in `self` but not in `earlier`.
    pub fn since(&self, earlier: &Buckets) -> Buckets {
        Buckets(
            self.0
                .iter()
                .map(|&(le, n)| {
                    let before = earlier
                        .0
                        .iter()
                        .find(|(l, _)| *l == le)
                        .map_or(0, |&(_, c)| c);
                    (le, n.saturating_sub(before))
                })
                .collect(),
        )
    }

    /// The `q` quantile in seconds, interpolated linearly inside its
    /// bucket (Prometheus' `histogram_quantile`). `None` without calls;
    /// the largest finite bound when the quantile is in `+Inf`.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let total = self.0.last()?.1;
        if total == 0 {
            return None;
        }
        let rank = q.clamp(0.0, 1.0) * total as f64;
        let (mut lower, mut below) = (0.0, 0u64);
        for &(le, count) in &self.0 {
            if count as f64 >= rank {
                if le.is_infinite() {
                    return Some(lower);
                }
                let inside = (count - below) as f64;
                let into = if inside > 0.0 {
                    (rank - below as f64) / inside
                } else {
                    1.0
                };
                return Some(lower + (le - lower) * into);
            }
            (lower, below) = (le, count);
        }
        Some(lower)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: &str = r#"# HELP zgc_rpc_latency_seconds Call latency.
# TYPE zgc_rpc_latency_seconds histogram
zgc_rpc_latency_seconds_sum{service="s",method="Get"} 0.05
zgc_rpc_latency_seconds_count{service="s",method="Get"} 100
zgc_rpc_latency_seconds_bucket{le="0.0001",service="s",method="Get"} 50
zgc_rpc_latency_seconds_bucket{le="0.0002",service="s",method="Get"} 90
zgc_rpc_latency_seconds_bucket{le="0.0004",service="s",method="Get"} 100
zgc_rpc_latency_seconds_bucket{le="+Inf",service="s",method="Get"} 100
zgc_rpc_latency_seconds_bucket{le="0.0001",service="s",method="Get2"} 1
zgc_rpc_latency_seconds_bucket{service="s",method="List",le="0.0001"} 7
zgc_rpc_latency_seconds_bucket{service="s",method="List",le="+Inf"} 9
"#;

    #[test]
    fn reads_one_methods_buckets() {
        let b = buckets(PAGE, "s", "Get");
        assert_eq!(b.0.len(), 4);
        assert_eq!(b.0[0], (0.0001, 50));
        assert_eq!(b.0[3], (f64::INFINITY, 100));
        assert!(buckets(PAGE, "s", "Missing").0.is_empty());
        assert_eq!(buckets(PAGE, "s", "List").0.len(), 2);
    }

    #[test]
    fn label_values_may_hold_escapes() {
        let labels = parse_labels(r#"a="x\"y",b="1\\2",c="""#);
        assert_eq!(labels[0], ("a", "x\"y".to_string()));
        assert_eq!(labels[1], ("b", "1\\2".to_string()));
        assert_eq!(labels[2], ("c", String::new()));
    }

    #[test]
    fn quantiles_interpolate_inside_the_bucket() {
        let b = buckets(PAGE, "s", "Get");
        let median = b.quantile(0.5).unwrap_or_default();
        assert!((median - 0.0001).abs() < 1e-12, "{median}");
        // Rank 99 of 100 is 9/10 of the way through (0.0002, 0.0004].
        let p99 = b.quantile(0.99).unwrap_or_default();
        assert!((p99 - 0.00038).abs() < 1e-12, "{p99}");
    }

    #[test]
    fn a_quantile_in_the_overflow_bucket_is_the_largest_finite_bound() {
        let b = buckets(PAGE, "s", "List");
        assert_eq!(b.quantile(0.99), Some(0.0001));
    }

    #[test]
    fn deltas_count_only_calls_between_scrapes() {
        let before = Buckets(vec![(0.0001, 40), (f64::INFINITY, 40)]);
        let after = Buckets(vec![(0.0001, 40), (f64::INFINITY, 50)]);
        let d = after.since(&before);
        assert_eq!(d.0, vec![(0.0001, 0), (f64::INFINITY, 10)]);
        assert_eq!(Buckets::default().quantile(0.5), None);
    }
}
