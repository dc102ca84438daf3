//! A real etcd cluster on loopback, for tests and benchmarks (feature
//! `cluster`): the `etcd` binary (Debian's `etcd-server`, which
//! `scripts/setup` installs; `ETCD` names another), each member with its
//! own data directory and ports, all of it stopped and removed when
//! dropped. Members can be killed and restarted while clients use the
//! cluster.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::process::{Child, Command};
use zgc_client::ClientTls;

use crate::{Client, Config};

/// How long a cluster or a member may take to come up on a loaded machine.
const PATIENCE: Duration = Duration::from_secs(90);
/// Times a cluster start is tried with new ports, in case another process
/// took one between choosing it and etcd binding it.
const START_ATTEMPTS: usize = 5;

/// Why a cluster could not start or a member could not be managed.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// No `etcd` binary.
    #[error(
        "`etcd` is not installed: run `scripts/setup` (Debian's etcd-server), or set ETCD to its path"
    )]
    NoBinary,
    /// Files or processes.
    #[error("etcd cluster: {0}")]
    Io(#[from] std::io::Error),
    /// The cluster never elected a leader.
    #[error("the etcd cluster did not come up: {0}")]
    NotReady(String),
}

/// TLS for the members' client port: the server certificate they serve,
/// the CA their clients' certificates must be signed by (etcd's
/// `--client-cert-auth`), and a client certificate for this cluster's own
/// clients.
#[derive(Debug, Clone)]
pub struct ClusterTls {
    /// The CA, trusted both ways.
    pub ca: PathBuf,
    /// The members' certificate (for `127.0.0.1`) and key.
    pub server_cert: PathBuf,
    /// The key of `server_cert`.
    pub server_key: PathBuf,
    /// A client certificate signed by `ca`, and its key.
    pub client_cert: PathBuf,
    /// The key of `client_cert`.
    pub client_key: PathBuf,
}

/// The `etcd` binary: `ETCD`, else the first `etcd` on `PATH`, else
/// Debian's.
fn etcd_binary() -> Result<PathBuf, ClusterError> {
    if let Some(path) = std::env::var_os("ETCD") {
        return Ok(PathBuf::from(path));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin")])
        .map(|dir| dir.join("etcd"))
        .find(|candidate| candidate.is_file())
        .ok_or(ClusterError::NoBinary)
}

/// One member.
struct Member {
    name: String,
    client_port: u16,
    peer_port: u16,
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
    binary: PathBuf,
    /// Behind a lock: members are killed and restarted while clients use
    /// the cluster.
    members: Mutex<Vec<Member>>,
    endpoints: Vec<String>,
    initial_cluster: String,
    token: String,
    tls: Option<ClusterTls>,
}

impl EtcdCluster {
    /// Starts `size` members and waits until they have elected a leader.
    pub async fn start(size: usize) -> Result<Self, ClusterError> {
        Self::start_with(size, None).await
    }

    /// The same, serving clients over TLS with `tls`.
    pub async fn start_tls(size: usize, tls: ClusterTls) -> Result<Self, ClusterError> {
        Self::start_with(size, Some(tls)).await
    }

    async fn start_with(size: usize, tls: Option<ClusterTls>) -> Result<Self, ClusterError> {
        let binary = etcd_binary()?;
        let mut why = String::new();
        for _ in 0..START_ATTEMPTS {
            let mut ports = Vec::new();
            let mut listeners = Vec::new();
            for _ in 0..size * 2 {
                let listener = TcpListener::bind("127.0.0.1:0").await?;
                ports.push(listener.local_addr()?.port());
                listeners.push(listener);
            }
            drop(listeners);
            let members: Vec<Member> = ports
                .chunks(2)
                .enumerate()
                .map(|(i, pair)| Member {
                    name: format!("m{i}"),
                    client_port: pair[0],
                    peer_port: pair[1],
                    tls: tls.is_some(),
                    child: None,
                })
                .collect();
            let initial_cluster = members
                .iter()
                .map(|m| format!("{}={}", m.name, m.peer_url()))
                .collect::<Vec<_>>()
                .join(",");
            let cluster = Self {
                dir: tempfile::tempdir()?,
                binary: binary.clone(),
                endpoints: members.iter().map(Member::client_url).collect(),
                members: Mutex::new(members),
                initial_cluster,
                token: uuid_like(),
                tls: tls.clone(),
            };
            for i in 0..size {
                cluster.spawn(i)?;
            }
            match cluster.wait_ready().await {
                Ok(()) => return Ok(cluster),
                Err(e) => {
                    tracing::warn!(error = %e, "etcd cluster did not come up; trying other ports");
                    why = e.to_string();
                }
            }
        }
        Err(ClusterError::NotReady(why))
    }

    fn members(&self) -> MutexGuard<'_, Vec<Member>> {
        self.members.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The process IDs of the running members (for the benchmarks'
    /// accounting of the CPU they use).
    pub fn pids(&self) -> Vec<u32> {
        self.members()
            .iter()
            .filter_map(|m| m.child.as_ref().and_then(Child::id))
            .collect()
    }

    /// The members' client URLs, in member order.
    pub fn endpoints(&self) -> Vec<String> {
        self.endpoints.clone()
    }

    /// The client URL of member `i`.
    pub fn endpoint(&self, i: usize) -> String {
        self.endpoints.get(i).cloned().unwrap_or_default()
    }

    /// The configuration of a client of every member (with the client
    /// certificate, on TLS).
    pub fn client_config(&self) -> Config {
        let mut config = Config::new(self.endpoints());
        if let Some(tls) = &self.tls {
            config.tls = ClientTls {
                ca: Some(tls.ca.clone()),
                cert: Some(tls.client_cert.clone()),
                key: Some(tls.client_key.clone()),
                server_name: None,
            };
        }
        config
    }

    /// A client of every member, member 0 first.
    pub fn client(&self) -> Result<Client, crate::EtcdError> {
        Client::new(self.client_config())
    }

    fn running(&self) -> Vec<usize> {
        self.members()
            .iter()
            .enumerate()
            .filter(|(_, m)| m.child.is_some())
            .map(|(i, _)| i)
            .collect()
    }

    /// The index of the member that leads, as the live members see it.
    pub async fn leader(&self) -> Option<usize> {
        let client = self.client().ok()?;
        let running = self.running();
        for &i in &running {
            let Ok(status) = client.member_status(&self.endpoints[i]).await else {
                continue;
            };
            if status.leader == 0 {
                continue;
            }
            for &j in &running {
                if let Ok(s) = client.member_status(&self.endpoints[j]).await
                    && s.header
                        .as_ref()
                        .is_some_and(|h| h.member_id == status.leader)
                {
                    return Some(j);
                }
            }
        }
        None
    }

    /// SIGKILLs member `i` and waits for it to be gone.
    pub async fn kill(&self, i: usize) -> Result<(), ClusterError> {
        let child = self.members().get_mut(i).and_then(|m| m.child.take());
        if let Some(mut child) = child {
            child.kill().await?;
        }
        Ok(())
    }

    /// Starts member `i` again on its data directory, and waits until it
    /// answers and knows a leader.
    pub async fn restart(&self, i: usize) -> Result<(), ClusterError> {
        self.spawn(i)?;
        self.wait_ready().await
    }

    fn log_path(&self, i: usize) -> PathBuf {
        self.dir.path().join(format!("m{i}.log"))
    }

    fn spawn(&self, i: usize) -> Result<(), ClusterError> {
        let dir: &Path = self.dir.path();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path(i))?;
        let mut members = self.members();
        let Some(member) = members.get_mut(i) else {
            return Ok(());
        };
        if member.child.is_some() {
            return Ok(());
        }
        let mut command = Command::new(&self.binary);
        if let Some(tls) = &self.tls {
            command
                .arg("--cert-file")
                .arg(&tls.server_cert)
                .arg("--key-file")
                .arg(&tls.server_key)
                .arg("--client-cert-auth")
                .arg("--trusted-ca-file")
                .arg(&tls.ca);
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
            .arg("--quota-backend-bytes")
            .arg("8589934592")
            .arg("--logger")
            .arg("zap")
            .arg("--log-level")
            .arg("warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()?;
        member.child = Some(child);
        Ok(())
    }

    /// Waits until every running member answers and knows a leader; fails
    /// (with the log of a member that exited) if one exits first.
    async fn wait_ready(&self) -> Result<(), ClusterError> {
        let client = self
            .client()
            .map_err(|e| ClusterError::NotReady(e.to_string()))?;
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let exited = self.members().iter_mut().enumerate().find_map(|(i, m)| {
                let exit = m.child.as_mut()?.try_wait().ok()??;
                Some((i, exit))
            });
            if let Some((i, exit)) = exited {
                let log = std::fs::read_to_string(self.log_path(i)).unwrap_or_default();
                let children: Vec<Child> = self
                    .members()
                    .iter_mut()
                    .filter_map(|m| m.child.take())
                    .collect();
                for mut child in children {
                    let _ = child.kill().await;
                }
                return Err(ClusterError::NotReady(format!(
                    "member {i} exited ({exit}):\n{log}"
                )));
            }
            let mut ready = true;
            for i in self.running() {
                ready &= matches!(
                    client.member_status(&self.endpoints[i]).await,
                    Ok(s) if s.leader != 0
                );
            }
            if ready {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(ClusterError::NotReady(format!(
                    "no leader within {PATIENCE:?}"
                )));
            }
            // Polling a condition: etcd elects within a few heartbeats.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// A token unique to this cluster (etcd refuses peers of another).
fn uuid_like() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("zgc-{}-{nanos:x}", std::process::id())
}
