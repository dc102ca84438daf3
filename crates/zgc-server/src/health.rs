//! `grpc.health.v1.Health`: `""` and each named service report together.
//! The same state is served over plain HTTP as `GET /ready` on the
//! metrics port ([`crate::metrics`]), for proxies and load balancers that
//! cannot speak gRPC health (HAProxy, nginx, most cloud load balancers).

use std::sync::Arc;

use tonic_health::ServingStatus;
use tonic_health::pb::health_server::HealthServer;
use tonic_health::server::{HealthReporter, health_reporter};

/// The health service and a handle that flips every name at once.
#[derive(Clone)]
pub struct Health {
    reporter: HealthReporter,
    names: Vec<String>,
    serving: Arc<tokio::sync::watch::Sender<bool>>,
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
            serving: Arc::new(tokio::sync::watch::channel(false).0),
        };
        health.set(ServingStatus::NotServing).await;
        (health, server)
    }

    async fn set(&self, status: ServingStatus) {
        self.serving.send_replace(status == ServingStatus::Serving);
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

    /// Whether every name reports SERVING.
    pub fn is_serving(&self) -> bool {
        *self.serving.borrow()
    }
}
