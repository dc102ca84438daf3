//! Accepted connections, configured the way gRPC needs them.

use std::time::Duration;

use tokio::net::TcpListener;
use tonic::transport::server::TcpIncoming;

/// The connections of `listener`, with `TCP_NODELAY` (without it, small
/// responses wait for delayed ACKs: tens of milliseconds per unary call)
/// and TCP keepalive (dead peers are noticed).
pub fn incoming(listener: TcpListener) -> TcpIncoming {
    TcpIncoming::from(listener)
        .with_nodelay(Some(true))
        .with_keepalive(Some(Duration::from_secs(60)))
}
