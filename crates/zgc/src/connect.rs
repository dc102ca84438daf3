//! Clients for the two services.

use std::time::Duration;

use tonic::transport::{Channel, Endpoint};
use zgc_proto::registry::v1::registry_service_client::RegistryServiceClient;
use zgc_proto::stats::v1::stats_service_client::StatsServiceClient;

use crate::error::CliError;

/// The largest response accepted.
const MAX_MESSAGE: usize = 64 * 1024 * 1024;

async fn channel(addr: &str) -> Result<Channel, CliError> {
    let endpoint = Endpoint::from_shared(addr.to_string())
        .map_err(|e| CliError::Input(format!("invalid endpoint {addr}: {e}")))?
        .connect_timeout(Duration::from_secs(5));
    endpoint
        .connect()
        .await
        .map_err(|source| CliError::Connect {
            addr: addr.to_string(),
            source,
        })
}

/// A registry client.
pub async fn registry(addr: &str) -> Result<RegistryServiceClient<Channel>, CliError> {
    Ok(RegistryServiceClient::new(channel(addr).await?).max_decoding_message_size(MAX_MESSAGE))
}

/// A stats client.
pub async fn stats(addr: &str) -> Result<StatsServiceClient<Channel>, CliError> {
    Ok(StatsServiceClient::new(channel(addr).await?).max_decoding_message_size(MAX_MESSAGE))
}
