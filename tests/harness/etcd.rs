//! The etcd cluster the tests of the etcd backend run on: `zgc-etcd`'s
//! (its `cluster` feature), started the way every test wants it.

use zgc_etcd::cluster::ClusterTls;

use crate::pki::Pki;

pub use zgc_etcd::cluster::EtcdCluster;

/// Starts a cluster of `size` members (panics, with the reason, if it
/// cannot: the tests need it).
pub async fn cluster(size: usize) -> EtcdCluster {
    EtcdCluster::start(size)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Starts a cluster of `size` members serving clients over TLS with
/// `pki`'s certificates and requiring a client certificate.
pub async fn tls_cluster(size: usize, pki: &Pki) -> EtcdCluster {
    let tls = ClusterTls {
        ca: pki.ca.clone(),
        server_cert: pki.server_cert.clone(),
        server_key: pki.server_key.clone(),
        client_cert: pki.client_cert.clone(),
        client_key: pki.client_key.clone(),
    };
    EtcdCluster::start_tls(size, tls)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}
