//! The client: a lazily connected channel per member. A call goes to the
//! member that answered last; when that member cannot take it, the call
//! moves on to the next, round after round with a growing pause, until it
//! is answered or its time is up. etcd's own Go client does this through
//! gRPC's balancer; tonic's balancing channel does not move a failed call
//! (the `etcd-client` crate's issue #39), so it is done here, per call.
//!
//! Whether a failed call may go to another member depends on what it
//! does. A read may always be sent again. A write may be sent again only
//! when it certainly did not take effect (the member could not be reached,
//! or had no leader to propose it to); otherwise it fails as
//! [`EtcdError::Ambiguous`] and the caller finds out by reading.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::time::Instant;
use tonic::Status;
use tonic::metadata::AsciiMetadataValue;
use tonic::transport::Channel;
use zgc_client::ClientTls;

use crate::error::{EtcdError, Failure, classify};
use crate::pb::etcdserverpb::auth_client::AuthClient;
use crate::pb::etcdserverpb::kv_client::KvClient;
use crate::pb::etcdserverpb::maintenance_client::MaintenanceClient;
use crate::pb::etcdserverpb::{
    AuthenticateRequest, CompactionRequest, CompactionResponse, RangeRequest, RangeResponse,
    StatusRequest, StatusResponse, TxnRequest, TxnResponse,
};

/// The metadata key etcd reads the auth token from.
const TOKEN_KEY: &str = "token";
/// The first pause after every member failed a call; it doubles up to
/// [`MAX_PAUSE`]. An election takes about a second with etcd's defaults.
const FIRST_PAUSE: Duration = Duration::from_millis(25);
const MAX_PAUSE: Duration = Duration::from_millis(800);
/// HTTP/2 pings on every connection, so that a member that vanished
/// without closing its connections (a partition, a power loss) is noticed
/// and its calls and watches move on. Only while calls or watches are in
/// flight, and well above etcd's `--grpc-keepalive-min-time` (5 s): etcd
/// sends a client that pings more often, or on an idle connection, away
/// with GOAWAY `too_many_pings`, and its calls in flight with it.
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(30);
const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(10);

/// How to reach an etcd cluster.
#[derive(Debug, Clone)]
pub struct Config {
    /// The members' client URLs (`http://host:port`, or `https://` for
    /// TLS).
    pub endpoints: Vec<String>,
    /// TLS to the members: a CA to trust, a client certificate for mutual
    /// TLS (etcd's `--client-cert-auth`).
    pub tls: ClientTls,
    /// A user and password, when etcd's auth is enabled.
    pub credentials: Option<Credentials>,
    /// How long one member has to answer one attempt.
    pub attempt_timeout: Duration,
    /// How long a call keeps trying members before it fails as
    /// [`EtcdError::Unavailable`]: longer than an election.
    pub retry_for: Duration,
}

impl Config {
    /// The members at `endpoints`, in plaintext, without auth.
    pub fn new(endpoints: impl IntoIterator<Item = impl Into<String>>) -> Self {
        Self {
            endpoints: endpoints.into_iter().map(Into::into).collect(),
            tls: ClientTls::default(),
            credentials: None,
            attempt_timeout: Duration::from_secs(5),
            retry_for: Duration::from_secs(15),
        }
    }
}

/// An etcd user's name and password.
#[derive(Clone)]
pub struct Credentials {
    /// The user.
    pub user: String,
    /// The password.
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// A member of the cluster, as this client reaches it.
pub(crate) struct Member {
    pub(crate) endpoint: String,
    pub(crate) channel: Channel,
}

/// Whether a call may be sent again after a failure that leaves its
/// effect unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Reads, and writes whose repetition does no harm.
    Repeatable,
    /// Writes that must take effect at most once.
    Once,
}

/// The largest response accepted from etcd. A watch response carries up
/// to a thousand revisions and a range page a thousand values, well past
/// tonic's default of 4 MiB; this still bounds what a member can make the
/// client hold.
pub(crate) const MAX_RESPONSE_BYTES: usize = 256 << 20;

/// A KV client on `channel` that takes etcd's large responses; requests
/// are bounded by etcd (`--max-request-bytes`).
fn kv(channel: Channel) -> KvClient<Channel> {
    KvClient::new(channel)
        .max_decoding_message_size(MAX_RESPONSE_BYTES)
        .max_encoding_message_size(usize::MAX)
}

/// An etcd cluster. Cheap to clone; clones share the connections.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    members: Vec<Member>,
    /// The member that answered last.
    preferred: AtomicUsize,
    credentials: Option<Credentials>,
    token: RwLock<Option<AsciiMetadataValue>>,
    attempt_timeout: Duration,
    retry_for: Duration,
}

impl Client {
    /// A client of the cluster at `config.endpoints`. Connects lazily: a
    /// member that is down now is tried when a call needs it.
    pub fn new(config: Config) -> Result<Self, EtcdError> {
        if config.endpoints.is_empty() {
            return Err(EtcdError::Config("no etcd endpoints given".into()));
        }
        let mut members = Vec::with_capacity(config.endpoints.len());
        for endpoint in &config.endpoints {
            let channel = zgc_client::endpoint(endpoint, &config.tls)
                .map_err(|e| EtcdError::Config(e.to_string()))?
                .connect_timeout(config.attempt_timeout)
                .tcp_nodelay(true)
                .http2_keep_alive_interval(KEEPALIVE_INTERVAL)
                .keep_alive_timeout(KEEPALIVE_TIMEOUT)
                .keep_alive_while_idle(false)
                .connect_lazy();
            members.push(Member {
                endpoint: endpoint.clone(),
                channel,
            });
        }
        Ok(Self {
            inner: Arc::new(Inner {
                members,
                preferred: AtomicUsize::new(0),
                credentials: config.credentials,
                token: RwLock::new(None),
                attempt_timeout: config.attempt_timeout,
                retry_for: config.retry_for,
            }),
        })
    }

    /// The members' endpoints, as configured.
    pub fn endpoints(&self) -> impl Iterator<Item = &str> {
        self.inner.members.iter().map(|m| m.endpoint.as_str())
    }

    /// Reads keys (linearizable unless `serializable` is set).
    pub async fn range(&self, request: RangeRequest) -> Result<RangeResponse, EtcdError> {
        self.unary(Kind::Repeatable, request, |channel, request| async move {
            kv(channel).range(request).await
        })
        .await
    }

    /// Applies a transaction: one revision for all of its writes. A failure
    /// that leaves its effect unknown is [`EtcdError::Ambiguous`].
    pub async fn txn(&self, request: TxnRequest) -> Result<TxnResponse, EtcdError> {
        self.unary(Kind::Once, request, |channel, request| async move {
            kv(channel).txn(request).await
        })
        .await
    }

    /// Discards the history before `revision`. Compacting to a revision
    /// that already is is not an error.
    pub async fn compact(&self, revision: i64) -> Result<CompactionResponse, EtcdError> {
        let request = CompactionRequest {
            revision,
            physical: false,
        };
        let answer = self
            .unary(Kind::Repeatable, request, |channel, request| async move {
                kv(channel).compact(request).await
            })
            .await;
        match answer {
            Err(EtcdError::Refused(status))
                if status
                    .message()
                    .contains("required revision has been compacted") =>
            {
                Ok(CompactionResponse::default())
            }
            other => other,
        }
    }

    /// The status of whichever member answers: its header carries the
    /// cluster's ID and the current revision.
    pub async fn status(&self) -> Result<StatusResponse, EtcdError> {
        self.unary(
            Kind::Repeatable,
            StatusRequest {},
            |channel, request| async move { MaintenanceClient::new(channel).status(request).await },
        )
        .await
    }

    /// The status of the member at `endpoint` (one of [`Self::endpoints`]),
    /// asked once: which member leads, as that member sees it.
    pub async fn member_status(&self, endpoint: &str) -> Result<StatusResponse, EtcdError> {
        let member = self
            .inner
            .members
            .iter()
            .find(|m| m.endpoint == endpoint)
            .ok_or_else(|| EtcdError::Config(format!("{endpoint} is not one of the endpoints")))?;
        let mut request = tonic::Request::new(StatusRequest {});
        request.set_timeout(self.inner.attempt_timeout);
        let answer = tokio::time::timeout(
            self.inner.attempt_timeout,
            MaintenanceClient::new(member.channel.clone()).status(request),
        )
        .await
        .map_err(|_| EtcdError::Unavailable(format!("{endpoint} did not answer")))?;
        answer
            .map(tonic::Response::into_inner)
            .map_err(|status| EtcdError::Unavailable(format!("{endpoint}: {}", status.message())))
    }

    pub(crate) fn members(&self) -> &[Member] {
        &self.inner.members
    }

    pub(crate) fn preferred(&self) -> usize {
        self.inner.preferred.load(Ordering::Relaxed)
    }

    pub(crate) fn set_preferred(&self, index: usize) {
        self.inner.preferred.store(index, Ordering::Relaxed);
    }

    pub(crate) fn retry_for(&self) -> Duration {
        self.inner.retry_for
    }

    /// Adds the auth token to `request`, authenticating first if there is
    /// none yet.
    pub(crate) async fn authorize<T>(
        &self,
        request: &mut tonic::Request<T>,
    ) -> Result<(), EtcdError> {
        if self.inner.credentials.is_none() {
            return Ok(());
        }
        let token = self.token();
        let token = match token {
            Some(token) => token,
            None => self.authenticate().await?,
        };
        request.metadata_mut().insert(TOKEN_KEY, token);
        Ok(())
    }

    fn token(&self) -> Option<AsciiMetadataValue> {
        self.inner
            .token
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Gets a new auth token from whichever member answers.
    pub(crate) async fn authenticate(&self) -> Result<AsciiMetadataValue, EtcdError> {
        let Some(credentials) = &self.inner.credentials else {
            return Err(EtcdError::Auth(
                "etcd asks for a token and no user is configured".into(),
            ));
        };
        let request = AuthenticateRequest {
            name: credentials.user.clone(),
            password: credentials.password.clone(),
        };
        let mut pauses = Pauses::new(self.inner.retry_for, self.inner.members.len());
        let mut index = self.preferred();
        loop {
            let member = &self.inner.members[index % self.inner.members.len()];
            let mut auth = AuthClient::new(member.channel.clone());
            let call = auth.authenticate(request.clone());
            let failure = match tokio::time::timeout(self.inner.attempt_timeout, call).await {
                Ok(Ok(response)) => {
                    let token = AsciiMetadataValue::try_from(response.into_inner().token).map_err(
                        |_| EtcdError::Auth("etcd gave a token that is not ASCII".into()),
                    )?;
                    *self
                        .inner
                        .token
                        .write()
                        .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(token.clone());
                    return Ok(token);
                }
                Ok(Err(status)) => match classify(&status) {
                    Failure::NotApplied | Failure::Unknown => status.message().to_string(),
                    Failure::Token | Failure::Final => {
                        return Err(EtcdError::Auth(status.message().to_string()));
                    }
                },
                Err(_) => format!("{} did not answer", member.endpoint),
            };
            index += 1;
            pauses.failed(&failure).await?;
        }
    }

    /// Sends `request` with `call` to one member after another until one
    /// answers, as [`Kind`] allows.
    async fn unary<Req, Resp, F, Fut>(
        &self,
        kind: Kind,
        request: Req,
        call: F,
    ) -> Result<Resp, EtcdError>
    where
        Req: Clone,
        F: Fn(Channel, tonic::Request<Req>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<Resp>, Status>>,
    {
        let members = &self.inner.members;
        let mut pauses = Pauses::new(self.inner.retry_for, members.len());
        let mut index = self.preferred();
        let mut renewed = false;
        loop {
            let member = &members[index % members.len()];
            let mut attempt = tonic::Request::new(request.clone());
            attempt.set_timeout(self.inner.attempt_timeout);
            self.authorize(&mut attempt).await?;
            let answer = tokio::time::timeout(
                self.inner.attempt_timeout,
                call(member.channel.clone(), attempt),
            )
            .await;
            let (failure, why) = match answer {
                Ok(Ok(response)) => {
                    self.set_preferred(index % members.len());
                    return Ok(response.into_inner());
                }
                Ok(Err(status)) => {
                    let failure = classify(&status);
                    if failure == Failure::Final {
                        return Err(EtcdError::Refused(status));
                    }
                    (
                        failure,
                        format!("{}: {}", member.endpoint, status.message()),
                    )
                }
                Err(_) => (
                    Failure::Unknown,
                    format!(
                        "{} did not answer within {:?}",
                        member.endpoint, self.inner.attempt_timeout
                    ),
                ),
            };
            match failure {
                Failure::Token if !renewed => {
                    renewed = true;
                    self.authenticate().await?;
                    continue;
                }
                Failure::Token => return Err(EtcdError::Auth(why)),
                Failure::Unknown if kind == Kind::Once => return Err(EtcdError::Ambiguous(why)),
                Failure::NotApplied | Failure::Unknown | Failure::Final => {}
            }
            tracing::debug!(%why, "etcd call moves to the next member");
            index += 1;
            pauses.failed(&why).await?;
        }
    }
}

/// The pauses between rounds of attempts over every member, and the
/// deadline after which a call gives up.
pub(crate) struct Pauses {
    deadline: Instant,
    members: usize,
    failures: usize,
    next: Duration,
}

impl Pauses {
    pub(crate) fn new(retry_for: Duration, members: usize) -> Self {
        Self {
            deadline: Instant::now() + retry_for,
            members: members.max(1),
            failures: 0,
            next: FIRST_PAUSE,
        }
    }

    /// Counts a failed attempt; after a whole round of them, waits before
    /// the next, or fails with `why` once the time is up.
    pub(crate) async fn failed(&mut self, why: &str) -> Result<(), EtcdError> {
        self.failures += 1;
        if Instant::now() >= self.deadline {
            return Err(EtcdError::Unavailable(why.to_string()));
        }
        if self.failures.is_multiple_of(self.members) {
            let pause = self
                .next
                .min(self.deadline.saturating_duration_since(Instant::now()));
            tokio::time::sleep(pause).await;
            self.next = (self.next * 2).min(MAX_PAUSE);
        }
        Ok(())
    }

    /// Starts over after a success.
    pub(crate) fn reset(&mut self, retry_for: Duration) {
        *self = Self::new(retry_for, self.members);
    }
}
