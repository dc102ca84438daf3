//! Clients for the two services: TLS when asked, and on every call the
//! bearer token (if any), one `x-request-id` per command, and the trace
//! context.

use tonic::transport::Channel;
use zgc_client::{ClientTls, Outgoing};
use zgc_proto::registry::v1::registry_service_client::RegistryServiceClient;
use zgc_proto::stats::v1::stats_service_client::StatsServiceClient;

use crate::cli::Connection;
use crate::error::CliError;

/// The largest response accepted.
const MAX_MESSAGE: usize = 64 * 1024 * 1024;

/// A registry client.
pub type Registry = RegistryServiceClient<Outgoing>;

/// A stats client.
pub type Stats = StatsServiceClient<Outgoing>;

/// The TLS settings the flags ask for.
pub fn client_tls(c: &Connection) -> ClientTls {
    ClientTls {
        ca: c.tls_ca.clone(),
        cert: c.tls_cert.clone(),
        key: c.tls_key.clone(),
        server_name: c.tls_server_name.clone(),
    }
}

async fn channel(addr: &str, c: &Connection) -> Result<Outgoing, CliError> {
    let tls = client_tls(c);
    let input = |e: zgc_client::ClientError| CliError::Input(e.to_string());
    let endpoint = zgc_client::endpoint(addr, &tls)
        .map_err(|e| CliError::Input(crate::diagnose::setup(&e, tls.cert.as_deref())))?;
    let token = c
        .token_file
        .as_deref()
        .map(zgc_client::read_token)
        .transpose()
        .map_err(input)?;
    let headers = zgc_client::headers(token.as_deref(), None).map_err(input)?;
    let channel: Channel = endpoint
        .connect()
        .await
        .map_err(|source| CliError::Connect {
            addr: addr.to_string(),
            source,
        })?;
    Ok(Outgoing::new(
        channel,
        headers,
        zgc_server::telemetry::propagator(),
    ))
}

/// A registry client.
pub async fn registry(addr: &str, c: &Connection) -> Result<Registry, CliError> {
    Ok(RegistryServiceClient::new(channel(addr, c).await?).max_decoding_message_size(MAX_MESSAGE))
}

/// A stats client.
pub async fn stats(addr: &str, c: &Connection) -> Result<Stats, CliError> {
    Ok(StatsServiceClient::new(channel(addr, c).await?).max_decoding_message_size(MAX_MESSAGE))
}
