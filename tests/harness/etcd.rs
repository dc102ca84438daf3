//! A real etcd cluster on loopback for the tests of the etcd backend:
//! Debian's `etcd-server` (installed by `scripts/setup`), each member with
//! its own data directory and ports, all of it removed when dropped.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::process::{Child, Command};
use zgc_etcd::{Client, Config};

use crate::pki::Pki;

/// How long a cluster or a member may take to come up on a loaded machine.
const PATIENCE: Duration = Duration::from_secs(90);
/// Times a cluster start is tried with new ports, in case another process
/// took one between choosing it and etcd binding it.
const START_ATTEMPTS: usize = 5;

fn etcd_binary() -> PathBuf {
    crate::tools::tool("etcd", "ETCD")
}

/// One member.
struct Member {
    name: String,
    client_port: u16,
    peer_port: u16,
    /// Whether clients speak TLS to it.
    tls: bool,
    child: Option<Child>,
}

impl Member {
    fn client_url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}", self.client_port)
    }

    fn peer_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.peer_port)
    }
}

/// An etcd cluster of a few members, stopped and removed when dropped.
pub struct EtcdCluster {
    dir: tempfile::TempDir,
    /// The members; a test kills and restarts them while registries use
    /// the cluster, so behind a lock.
    members: Mutex<Vec<Member>>,
    /// Each member's client URL, in member order.
    endpoints: Vec<String>,
    initial_cluster: String,
    token: String,
    /// Client TLS: the members serve it with the PKI's server certificate
    /// and require a client certificate signed by its CA.
    pki: Option<Pki>,
}

impl EtcdCluster {
    /// Starts `size` members and waits until they have elected a leader.
    pub async fn start(size: usize) -> Self {
        Self::start_with(size, None).await
    }

    /// Starts `size` members serving clients over TLS with `pki`'s server
    /// certificate and requiring a client certificate signed by its CA
    /// (etcd's `--client-cert-auth`).
    pub async fn start_tls(size: usize, pki: Pki) -> Self {
        Self::start_with(size, Some(pki)).await
    }

    async fn start_with(size: usize, pki: Option<Pki>) -> Self {
        for _ in 0..START_ATTEMPTS {
            let mut ports = Vec::new();
            let mut listeners = Vec::new();
            for _ in 0..size * 2 {
                let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
                ports.push(listener.local_addr().unwrap().port());
                listeners.push(listener);
            }
            drop(listeners);
            let members: Vec<Member> = (0..size)
                .map(|i| Member {
                    name: format!("m{i}"),
                    client_port: ports[2 * i],
                    peer_port: ports[2 * i + 1],
                    tls: pki.is_some(),
                    child: None,
                })
                .collect();
            let initial_cluster = members
                .iter()
                .map(|m| format!("{}={}", m.name, m.peer_url()))
                .collect::<Vec<_>>()
                .join(",");
            let cluster = Self {
                dir: tempfile::tempdir().unwrap(),
                endpoints: members.iter().map(Member::client_url).collect(),
                members: Mutex::new(members),
                initial_cluster,
                token: uuid::Uuid::new_v4().to_string(),
                pki: pki.clone(),
            };
            for i in 0..size {
                cluster.spawn(i);
            }
            if cluster.wait_ready().await {
                return cluster;
            }
            eprintln!("etcd cluster did not come up; trying again on other ports");
        }
        panic!("an etcd cluster could not start (its members' logs are above)");
    }

    fn members(&self) -> MutexGuard<'_, Vec<Member>> {
        self.members
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The members' client URLs, in member order.
    pub fn endpoints(&self) -> Vec<String> {
        self.endpoints.clone()
    }

    /// The client URL of member `i`.
    pub fn endpoint(&self, i: usize) -> String {
        self.endpoints[i].clone()
    }

    /// The indexes of the members running.
    fn running(&self) -> Vec<usize> {
        self.members()
            .iter()
            .enumerate()
            .filter(|(_, m)| m.child.is_some())
            .map(|(i, _)| i)
            .collect()
    }

    /// A client of every member, member 0 first.
    pub fn client(&self) -> Client {
        Client::new(self.client_config()).unwrap()
    }

    /// The configuration of a client of every member (with the PKI's
    /// client certificate, on TLS).
    pub fn client_config(&self) -> Config {
        let mut config = Config::new(self.endpoints());
        if let Some(pki) = &self.pki {
            config.tls = zgc_client::ClientTls {
                ca: Some(pki.ca.clone()),
                cert: Some(pki.client_cert.clone()),
                key: Some(pki.client_key.clone()),
                server_name: None,
            };
        }
        config
    }

    /// The index of the member that leads, as the first live member sees
    /// it.
    pub async fn leader(&self) -> usize {
        let client = self.client();
        let running = self.running();
        for &i in &running {
            if let Ok(status) = client.member_status(&self.endpoints[i]).await
                && status.leader != 0
            {
                let leader = status.leader;
                for &j in &running {
                    if let Ok(s) = client.member_status(&self.endpoints[j]).await
                        && s.header.as_ref().is_some_and(|h| h.member_id == leader)
                    {
                        return j;
                    }
                }
                panic!("member {i} names leader {leader:x}, which no live member is");
            }
        }
        panic!("no live etcd member knows a leader");
    }

    /// SIGKILLs member `i` and waits for it to be gone.
    pub async fn kill(&self, i: usize) {
        let child = self.members()[i].child.take();
        if let Some(mut child) = child {
            child.kill().await.unwrap();
        }
    }

    /// Starts member `i` again on its data directory, and waits until it
    /// answers and knows a leader.
    pub async fn restart(&self, i: usize) {
        assert!(self.members()[i].child.is_none(), "member {i} is running");
        self.spawn(i);
        assert!(self.wait_ready().await, "etcd member {i} did not come back");
    }

    fn log_path(&self, i: usize) -> PathBuf {
        self.dir.path().join(format!("m{i}.log"))
    }

    fn spawn(&self, i: usize) {
        let dir: &Path = self.dir.path();
        let mut members = self.members();
        let member = &members[i];
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path(i))
            .unwrap();
        let mut command = Command::new(etcd_binary());
        if let Some(pki) = &self.pki {
            command
                .arg("--cert-file")
                .arg(&pki.server_cert)
                .arg("--key-file")
                .arg(&pki.server_key)
                .arg("--client-cert-auth")
                .arg("--trusted-ca-file")
                .arg(&pki.ca);
        }
        let child = command
            .arg("--name")
            .arg(&member.name)
            .arg("--data-dir")
            .arg(dir.join(&member.name))
            .arg("--listen-client-urls")
            .arg(member.client_url())
            .arg("--advertise-client-urls")
            .arg(member.client_url())
            .arg("--listen-peer-urls")
            .arg(member.peer_url())
            .arg("--initial-advertise-peer-urls")
            .arg(member.peer_url())
            .arg("--initial-cluster")
            .arg(&self.initial_cluster)
            .arg("--initial-cluster-state")
            .arg("new")
            .arg("--initial-cluster-token")
            .arg(&self.token)
            // What the registry's batches need (deploy/README.md says why).
            .arg("--max-txn-ops")
            .arg("4096")
            .arg("--max-request-bytes")
            .arg("16777216")
            .arg("--logger")
            .arg("zap")
            .arg("--log-level")
            .arg("warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run etcd: {e}"));
        members[i].child = Some(child);
    }

    /// Waits until every running member answers and knows a leader; false
    /// (with the members' logs printed) if one exited first.
    async fn wait_ready(&self) -> bool {
        let client = self.client();
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let exited = self.members().iter_mut().enumerate().find_map(|(i, m)| {
                let exit = m.child.as_mut()?.try_wait().ok()??;
                Some((i, exit))
            });
            if let Some((i, exit)) = exited {
                eprintln!(
                    "etcd member {i} exited ({exit}):\n{}",
                    std::fs::read_to_string(self.log_path(i)).unwrap_or_default()
                );
                let children: Vec<Child> = self
                    .members()
                    .iter_mut()
                    .filter_map(|m| m.child.take())
                    .collect();
                for mut child in children {
                    let _ = child.kill().await;
                }
                return false;
            }
            let mut ready = true;
            for i in self.running() {
                ready &= matches!(
                    client.member_status(&self.endpoints[i]).await,
                    Ok(s) if s.leader != 0
                );
            }
            if ready {
                return true;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the etcd cluster did not elect a leader within {PATIENCE:?}"
            );
            // Polling a condition: etcd elects within a few heartbeats.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
