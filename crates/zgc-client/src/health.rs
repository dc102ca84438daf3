//! Waiting for a server to be ready, as a health-checking proxy would.

use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

/// Why a server never reported `SERVING`.
#[derive(Debug, thiserror::Error)]
pub enum NotServing {
    /// The health call failed.
    #[error("health check failed: {0}")]
    Call(#[from] tonic::Status),
    /// The server ended the health stream first (it is shutting down).
    #[error("the server ended its health stream before reporting SERVING")]
    Ended,
}

/// Returns once the server behind `channel` reports `SERVING` for
/// `service` (`""`: the server as a whole), following its health stream
/// (`grpc.health.v1.Health/Watch`) rather than polling. Bound it with a
/// timeout: a server that never turns ready keeps the stream open.
pub async fn wait_serving(channel: Channel, service: &str) -> Result<(), NotServing> {
    let mut stream = HealthClient::new(channel)
        .watch(HealthCheckRequest {
            service: service.to_string(),
        })
        .await?
        .into_inner();
    while let Some(update) = stream.message().await? {
        if update.status == ServingStatus::Serving as i32 {
            return Ok(());
        }
    }
    Err(NotServing::Ended)
}
