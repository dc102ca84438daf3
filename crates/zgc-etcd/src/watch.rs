//! A watch that outlives the member it is on. When its stream breaks, it
//! opens again on the next member from the first revision it has not
//! delivered, so its caller sees every revision once, in order, across
//! member failures.
//!
//! The watch asks etcd to fragment its responses: a watcher catching up
//! on history gets up to a thousand revisions per response, which for
//! revisions of a thousand companies each is hundreds of megabytes, past
//! what a client should take in one message. Fragmented, no message is
//! larger than the member's `--max-request-bytes`. A fragment can end in
//! the middle of a revision, so the events of its last revision are held
//! back until the revision is whole: the caller only ever sees whole
//! revisions, and resuming after the last one delivered repeats and loses
//! nothing (what was held back is dropped with the stream, and read
//! again).

use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Streaming;
use tonic::metadata::AsciiMetadataValue;

use crate::client::{Client, Pauses};
use crate::error::{EtcdError, Failure, classify};
use crate::pb::etcdserverpb::watch_client::WatchClient;
use crate::pb::etcdserverpb::watch_request::RequestUnion;
use crate::pb::etcdserverpb::{WatchCreateRequest, WatchRequest, WatchResponse};
use crate::pb::mvccpb::Event;

/// Metadata that makes a member end the watch when it loses its leader,
/// instead of serving a stale one from behind a partition.
const REQUIRE_LEADER: (&str, &str) = ("hasleader", "true");

/// What to watch.
#[derive(Debug, Clone, Default)]
pub struct WatchOptions {
    /// The first key.
    pub key: Vec<u8>,
    /// The end of the range, exclusive (empty: `key` alone).
    pub range_end: Vec<u8>,
    /// The first revision to deliver; 0 for "from now".
    pub start_revision: i64,
    /// Whether events carry the value before them.
    pub prev_kv: bool,
}

/// What a watch delivers.
#[derive(Debug, Clone, PartialEq)]
pub struct WatchBatch {
    /// Every event of one or more whole revisions, in order; empty for a
    /// progress report.
    pub events: Vec<Event>,
    /// Every revision up to this one has been delivered: the last event's
    /// revision, or for a progress report, the cluster's revision when it
    /// was made.
    pub revision: i64,
}

/// A watch on one range of keys. See the module's documentation.
pub struct Watch {
    client: Client,
    options: WatchOptions,
    /// The first revision not delivered yet (0 until the first open, when
    /// watching from now).
    next_revision: i64,
    /// The member it is on, or will try next.
    member: usize,
    open: Option<Open>,
    /// Events of a revision a fragment ended in the middle of, held back
    /// until the rest of it arrives: at most one revision's.
    partial: Vec<Event>,
}

struct Open {
    /// Held so the request stream stays open: ending it ends the watch.
    _requests: mpsc::Sender<WatchRequest>,
    responses: Streaming<WatchResponse>,
}

impl Client {
    /// A watch of `options`, opened by the first [`Watch::next`].
    pub fn watch(&self, options: WatchOptions) -> Watch {
        Watch {
            client: self.clone(),
            next_revision: options.start_revision,
            member: self.preferred(),
            options,
            open: None,
            partial: Vec::new(),
        }
    }
}

impl Watch {
    /// The first revision not delivered yet.
    pub fn next_revision(&self) -> i64 {
        self.next_revision
    }

    /// The next batch of events or progress report. Moves to another
    /// member when the current one fails; fails as
    /// [`EtcdError::Unavailable`] when none answers within the client's
    /// `retry_for` (calling again tries again, from the same revision),
    /// and as [`EtcdError::Compacted`] when the revision it needs is gone.
    pub async fn next(&mut self) -> Result<WatchBatch, EtcdError> {
        let mut pauses = Pauses::new(self.client.retry_for(), self.client.members().len());
        loop {
            let open = match &mut self.open {
                Some(open) => open,
                None => match self.open().await {
                    Ok(open) => self.open.insert(open),
                    Err(why) => {
                        self.member += 1;
                        pauses.failed(&why).await?;
                        continue;
                    }
                },
            };
            let why = match open.responses.message().await {
                Ok(Some(response)) => match self.take(response)? {
                    Some(batch) => {
                        self.client
                            .set_preferred(self.member % self.client.members().len());
                        return Ok(batch);
                    }
                    None => {
                        pauses.reset(self.client.retry_for());
                        continue;
                    }
                },
                Ok(None) => "the member ended the watch".to_string(),
                Err(status) => {
                    if classify(&status) == Failure::Final {
                        return Err(EtcdError::Refused(status));
                    }
                    status.message().to_string()
                }
            };
            tracing::debug!(%why, next_revision = self.next_revision, "etcd watch moves to the next member");
            self.open = None;
            self.member += 1;
            pauses.failed(&why).await?;
        }
    }

    /// Opens the watch on the current member, from `next_revision`.
    async fn open(&mut self) -> Result<Open, String> {
        let members = self.client.members();
        let member = &members[self.member % members.len()];
        // From `next_revision`: what was held back is sent again.
        self.partial.clear();
        let (requests, receiver) = mpsc::channel(4);
        let create = WatchRequest {
            request_union: Some(RequestUnion::CreateRequest(WatchCreateRequest {
                key: self.options.key.clone(),
                range_end: self.options.range_end.clone(),
                start_revision: self.next_revision,
                prev_kv: self.options.prev_kv,
                fragment: true,
                ..Default::default()
            })),
        };
        requests
            .send(create)
            .await
            .map_err(|_| "the watch's request stream closed".to_string())?;
        let mut request = tonic::Request::new(ReceiverStream::new(receiver));
        request.metadata_mut().insert(
            REQUIRE_LEADER.0,
            AsciiMetadataValue::from_static(REQUIRE_LEADER.1),
        );
        self.client
            .authorize(&mut request)
            .await
            .map_err(|e| e.to_string())?;
        let responses = WatchClient::new(member.channel.clone())
            .max_decoding_message_size(crate::client::MAX_RESPONSE_BYTES)
            .watch(request)
            .await
            .map_err(|status| format!("{}: {}", member.endpoint, status.message()))?
            .into_inner();
        Ok(Open {
            _requests: requests,
            responses,
        })
    }

    /// What `response` means for the caller: a batch to deliver, nothing
    /// (the watch was created), or the end of the watch.
    fn take(&mut self, response: WatchResponse) -> Result<Option<WatchBatch>, EtcdError> {
        let revision = response.header.as_ref().map_or(0, |h| h.revision);
        if response.compact_revision > 0 {
            self.open = None;
            return Err(EtcdError::Compacted {
                requested: self.next_revision,
                compact_revision: response.compact_revision,
            });
        }
        if response.canceled {
            self.open = None;
            let status = tonic::Status::unavailable(response.cancel_reason);
            return match classify(&status) {
                // The member lost its leader: resume on another.
                Failure::NotApplied | Failure::Unknown => {
                    self.member += 1;
                    Ok(None)
                }
                Failure::Token | Failure::Final => Err(EtcdError::Refused(status)),
            };
        }
        if !response.events.is_empty() {
            let mut events = std::mem::take(&mut self.partial);
            events.extend(response.events);
            if response.fragment {
                // More of this response follows: its last revision may not
                // be whole yet.
                let last = revision_of(events.last(), revision);
                let whole = events.partition_point(|e| revision_of(Some(e), revision) < last);
                self.partial = events.split_off(whole);
            }
            let Some(last) = events.last() else {
                return Ok(None);
            };
            let last = revision_of(Some(last), revision);
            self.next_revision = last + 1;
            return Ok(Some(WatchBatch {
                events,
                revision: last,
            }));
        }
        if response.created {
            if self.next_revision == 0 {
                self.next_revision = revision + 1;
            }
            return Ok(None);
        }
        // A progress report: nothing before `revision` is undelivered.
        self.next_revision = self.next_revision.max(revision + 1);
        Ok(Some(WatchBatch {
            events: Vec::new(),
            revision,
        }))
    }
}

/// The revision `event` was made at (`otherwise` without one).
fn revision_of(event: Option<&Event>, otherwise: i64) -> i64 {
    event
        .and_then(|e| e.kv.as_ref())
        .map_or(otherwise, |kv| kv.mod_revision)
}
