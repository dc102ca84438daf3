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

/// Turns on etcd's auth with a `root` user whose password is `password`,
/// as an operator does (`etcdctl user add root; auth enable`), through
/// member 0 (over TLS when the cluster serves it).
pub async fn enable_auth(cluster: &EtcdCluster, password: &str) {
    use zgc_etcd::pb::etcdserverpb::auth_client::AuthClient;
    use zgc_etcd::pb::etcdserverpb::{
        AuthEnableRequest, AuthRoleAddRequest, AuthUserAddRequest, AuthUserGrantRoleRequest,
    };

    let channel = zgc_client::endpoint(&cluster.endpoint(0), &cluster.client_config().tls)
        .expect("endpoint")
        .connect()
        .await
        .expect("connect to etcd");
    let mut auth = AuthClient::new(channel);
    auth.role_add(AuthRoleAddRequest {
        name: "root".into(),
    })
    .await
    .expect("role add");
    auth.user_add(AuthUserAddRequest {
        name: "root".into(),
        password: password.into(),
        ..Default::default()
    })
    .await
    .expect("user add");
    auth.user_grant_role(AuthUserGrantRoleRequest {
        user: "root".into(),
        role: "root".into(),
    })
    .await
    .expect("grant role");
    auth.auth_enable(AuthEnableRequest {})
        .await
        .expect("auth enable");
}
