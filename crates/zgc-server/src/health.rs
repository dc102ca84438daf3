//! `grpc.health.v1.Health`: `""` and each named service report together.

use tonic_health::ServingStatus;
use tonic_health::pb::health_server::HealthServer;
use tonic_health::server::{HealthReporter, health_reporter};

/// The health service and a handle that flips every name at once.
#[derive(Clone)]
pub struct Health {
    reporter: HealthReporter,
    names: Vec<String>,
}

impl Health {
    /// Creates the health service for `names` (plus `""`), all NOT_SERVING.
    pub async fn new(
        names: &[&str],
    ) -> (
        Self,
        HealthServer<impl tonic_health::pb::health_server::Health>,
    ) {
        let (reporter, server) = health_reporter();
        let mut all: Vec<String> = vec![String::new()];
        all.extend(names.iter().map(|n| n.to_string()));
        let health = Self {
            reporter,
            names: all,
        };
        health.set(ServingStatus::NotServing).await;
        (health, server)
    }

    async fn set(&self, status: ServingStatus) {
        for name in &self.names {
            self.reporter
                .set_service_status(name.as_str(), status)
                .await;
        }
    }

    /// Reports SERVING for every name.
    pub async fn serving(&self) {
        self.set(ServingStatus::Serving).await;
    }

    /// Reports NOT_SERVING for every name.
    pub async fn not_serving(&self) {
        self.set(ServingStatus::NotServing).await;
    }
}
