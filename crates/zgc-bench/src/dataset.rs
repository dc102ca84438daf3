//! Loading the generated companies into the registry, the way `zgc
//! import` does: BatchCreateCompanies of 1,000, a few batches in flight,
//! and a batch naming a parent company sent only once the batch creating
//! that parent was answered.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use prost::Message;
use tonic::transport::Channel;
use zgc_client::pipeline::Pipeline;
use zgc_proto::registry::v1::registry_service_client::RegistryServiceClient;
use zgc_proto::registry::v1::*;
use zgc_proto::types::v1::Location;

/// The seed every run generates its companies from.
pub const SEED: u64 = 11;

/// Companies per BatchCreateCompanies call.
pub const BATCH: usize = 1000;

/// What was loaded.
pub struct Loaded {
    /// How long the import took.
    pub took: Duration,
    /// The companies' encoded protobuf size, as the dataset made them.
    pub encoded_bytes: u64,
    /// Every company's name.
    pub names: Vec<String>,
    /// The scopes that cover the most companies.
    pub busiest: Busiest,
}

/// The park, province, city and sector with the most companies.
#[derive(Debug, Clone, Default)]
pub struct Busiest {
    /// A park's name.
    pub park: String,
    /// A province.
    pub province: String,
    /// A city.
    pub city: Location,
    /// A sector slug.
    pub sector: String,
}

fn most<K: Clone + Ord + std::hash::Hash>(counts: &HashMap<K, u64>) -> Option<K> {
    counts
        .iter()
        .max_by(|a, b| a.1.cmp(b.1).then_with(|| b.0.cmp(a.0)))
        .map(|(k, _)| k.clone())
}

/// Imports `zgc_dataset::generate(companies, SEED)`, `in_flight` batches
/// at a time.
pub async fn import(
    registry: Channel,
    companies: u64,
    in_flight: usize,
) -> Result<Loaded, tonic::Status> {
    let mut client = RegistryServiceClient::new(registry).max_encoding_message_size(64 << 20);
    let mut encoded_bytes = 0u64;
    let mut names = Vec::with_capacity(usize::try_from(companies).unwrap_or(0));
    let (mut parks, mut provinces, mut cities, mut sectors) = (
        HashMap::new(),
        HashMap::new(),
        HashMap::new(),
        HashMap::new(),
    );
    let started = Instant::now();
    let mut batch = Vec::with_capacity(BATCH);
    let mut pipeline = Pipeline::new(in_flight);
    for entity in zgc_dataset::generate(companies, SEED) {
        match entity.kind {
            Some(entity::Kind::Park(p)) => {
                let id = p.name.trim_start_matches("parks/").to_string();
                client
                    .create_park(CreateParkRequest {
                        park: Some(Park {
                            name: String::new(),
                            ..p
                        }),
                        park_id: id,
                        request_id: String::new(),
                    })
                    .await?;
            }
            Some(entity::Kind::Company(c)) => {
                encoded_bytes += c.encoded_len() as u64;
                names.push(c.name.clone());
                if !c.park.is_empty() {
                    *parks.entry(c.park.clone()).or_insert(0u64) += 1;
                }
                if let Some(l) = &c.location {
                    *provinces.entry(l.province.clone()).or_insert(0u64) += 1;
                    *cities
                        .entry((l.province.clone(), l.city.clone()))
                        .or_insert(0u64) += 1;
                }
                for s in &c.sectors {
                    *sectors.entry(s.clone()).or_insert(0u64) += 1;
                }
                let id = c.name.trim_start_matches("companies/").to_string();
                batch.push(CreateCompanyRequest {
                    company: Some(Company {
                        name: String::new(),
                        ..c
                    }),
                    company_id: id,
                    request_id: String::new(),
                });
                if batch.len() == BATCH {
                    send(&client, &mut pipeline, std::mem::take(&mut batch)).await?;
                }
            }
            None => {}
        }
    }
    send(&client, &mut pipeline, batch).await?;
    for sent in pipeline.finish().await.map_err(joined)? {
        sent?;
    }
    let (province, city) = most(&cities).unwrap_or_default();
    Ok(Loaded {
        took: started.elapsed(),
        encoded_bytes,
        names,
        busiest: Busiest {
            park: most(&parks).unwrap_or_default(),
            province: most(&provinces).unwrap_or_default(),
            city: Location {
                province,
                city,
                district: String::new(),
            },
            sector: most(&sectors).unwrap_or_default(),
        },
    })
}

/// Starts sending `batch` once the batches creating its companies'
/// parents were answered; fails with the first batch that failed.
async fn send(
    client: &RegistryServiceClient<Channel>,
    pipeline: &mut Pipeline<Result<(), tonic::Status>>,
    batch: Vec<CreateCompanyRequest>,
) -> Result<(), tonic::Status> {
    if batch.is_empty() {
        return Ok(());
    }
    let provides = batch
        .iter()
        .map(|r| format!("companies/{}", r.company_id))
        .collect();
    let needs: Vec<String> = batch
        .iter()
        .filter_map(|r| r.company.as_ref())
        .map(|c| c.parent_company.clone())
        .collect();
    let mut client = client.clone();
    let sent = async move {
        client
            .batch_create_companies(BatchCreateCompaniesRequest {
                requests: batch,
                request_id: String::new(),
            })
            .await
            .map(drop)
    };
    for earlier in pipeline
        .start(provides, needs, sent)
        .await
        .map_err(joined)?
    {
        earlier?;
    }
    Ok(())
}

fn joined(e: tokio::task::JoinError) -> tonic::Status {
    tonic::Status::internal(format!("an import batch's task failed: {e}"))
}
