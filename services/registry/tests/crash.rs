//! Crash safety of the real binary: concurrent writers, SIGKILL at an
//! arbitrary moment (20 times; set `ZGC_CRASH_CYCLES` for a soak), restart,
//! and every acknowledged write is there with exactly its acknowledged
//! content; indexes agree with a full scan; revisions never go backwards;
//! WatchChanges from revision 1 replays every acknowledged write and folds
//! to exactly the stored state; a create retried with its request ID after
//! the kill yields one company, not two; and a stats service that followed
//! the registry through every kill converges to a recount of what is
//! stored.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};

mod support;

use support::{Client, PATIENCE};
use tokio::process::Child;
use tokio::sync::watch;
use tonic::transport::Channel;
use zgc_proto::registry::v1::*;
use zgc_proto::types::v1::Location;

/// Kills in a CI run; `ZGC_CRASH_CYCLES` overrides it for a soak.
const CYCLES: usize = 20;
const WRITERS: usize = 4;
/// Acknowledged writes per cycle before the kill.
const ACKS_BEFORE_KILL: usize = 30;

/// A write that was sent but not (yet) acknowledged when the kill came.
#[derive(Debug, Clone)]
enum Pending {
    /// May or may not exist, but all of its batch or none.
    Create { batch: Vec<String> },
    /// A create with a server-assigned ID and a request ID: retried after
    /// the restart, it must answer with the one company it made.
    Retry(CreateCompanyRequest),
    /// Either still `before`, or `before` with `employees` set.
    Update { before: Company, employees: i32 },
    /// Either still `before`, or gone.
    Delete { before: Company },
}

#[derive(Default)]
struct Expectations {
    /// Acknowledged state per company name (`None`: deleted).
    acked: BTreeMap<String, Option<Company>>,
    /// Every acknowledged write: (revision, company name, state after).
    history: Vec<(u64, String, Option<Company>)>,
    /// In-flight writes, by company name (by request ID for retries).
    pending: BTreeMap<String, Pending>,
    max_acked_revision: u64,
    /// Figures for the summary.
    retried: usize,
    replayed_events: usize,
}

fn user_fields(c: &Company) -> Company {
    Company {
        revision: 0,
        etag: String::new(),
        update_time: None,
        ..c.clone()
    }
}

/// Reads what each in-flight write left behind, checks it is one of the
/// allowed outcomes, and takes it as the new expectation.
async fn settle(c: &mut Client, exp: &mut Expectations) {
    for (name, pending) in std::mem::take(&mut exp.pending) {
        if let Pending::Retry(request) = pending {
            // The client retries: the same request ID and content.
            let created = c
                .create_company(request)
                .await
                .expect("a create retried with its request ID")
                .into_inner();
            exp.retried += 1;
            exp.max_acked_revision = exp.max_acked_revision.max(created.revision);
            exp.history.push((
                created.revision,
                created.name.clone(),
                Some(created.clone()),
            ));
            exp.acked.insert(created.name.clone(), Some(created));
            continue;
        }
        let found = c
            .get_company(GetCompanyRequest { name: name.clone() })
            .await
            .ok()
            .map(|r| r.into_inner());
        match (&pending, &found) {
            (Pending::Create { batch }, _) => {
                let mut landed = 0;
                for member in batch {
                    landed += usize::from(
                        c.get_company(GetCompanyRequest {
                            name: member.clone(),
                        })
                        .await
                        .is_ok(),
                    );
                }
                assert!(
                    landed == 0 || landed == batch.len(),
                    "{landed} of the {} companies of an unacknowledged batch exist",
                    batch.len()
                );
            }
            (Pending::Retry(_), _) => {}
            (Pending::Update { before, .. }, Some(f)) if f == before => {}
            (Pending::Update { before, employees }, Some(f)) => {
                let mut want = user_fields(before);
                want.employees = *employees;
                assert_eq!(
                    user_fields(f),
                    want,
                    "{name} after an unacknowledged update"
                );
            }
            (Pending::Delete { .. }, None) => {}
            (Pending::Delete { before }, Some(f)) => {
                assert_eq!(f, before, "{name} after an unacknowledged delete")
            }
            (Pending::Update { .. }, None) => panic!("{name} vanished during an update"),
        }
        exp.acked.insert(name, found);
    }
}

async fn start(dir: &Path) -> (Child, Client, SocketAddr) {
    let r = support::start(dir).await;
    (r.child, r.client, r.addr)
}

/// A TCP forwarder with a fixed address whose upstream follows the
/// registry across restarts, so a stats service can follow it throughout.
struct Forwarder {
    addr: SocketAddr,
    upstream: Arc<Mutex<Option<SocketAddr>>>,
}

impl Forwarder {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let upstream: Arc<Mutex<Option<SocketAddr>>> = Arc::new(Mutex::new(None));
        let target = upstream.clone();
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let Some(to) = *target.lock().unwrap() else {
                    continue;
                };
                tokio::spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(to).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        });
        Self { addr, upstream }
    }

    fn point_at(&self, registry: SocketAddr) {
        *self.upstream.lock().unwrap() = Some(registry);
    }
}

fn location(i: usize) -> Option<Location> {
    let cities = [
        ("Hebei", "Baoding"),
        ("Tianjin", "Tianjin"),
        ("Hebei", "Shijiazhuang"),
    ];
    let (p, c) = cities[i % cities.len()];
    Some(Location {
        province: p.into(),
        city: c.into(),
        district: String::new(),
    })
}

use support::all_companies;

async fn verify(c: &mut Client, exp: &mut Expectations) {
    for park in ["parks/a", "parks/b"] {
        c.get_park(GetParkRequest { name: park.into() })
            .await
            .expect("an acknowledged park is gone");
    }
    settle(c, exp).await;
    let scan = all_companies(c, "").await;
    let by_name: BTreeMap<String, Company> =
        scan.iter().map(|x| (x.name.clone(), x.clone())).collect();
    for (name, want) in &exp.acked {
        assert_eq!(
            by_name.get(name),
            want.as_ref(),
            "acknowledged state of {name}"
        );
    }
    // Counters and indexes agree with the scan.
    let listed = c
        .list_companies(ListCompaniesRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.total_size as usize, scan.len(), "company counter");
    for park in ["parks/a", "parks/b"] {
        let via_index: BTreeSet<String> = all_companies(c, &format!("park = \"{park}\""))
            .await
            .into_iter()
            .map(|x| x.name)
            .collect();
        let via_scan: BTreeSet<String> = scan
            .iter()
            .filter(|x| x.park == park)
            .map(|x| x.name.clone())
            .collect();
        assert_eq!(via_index, via_scan, "park index of {park}");
    }
    for parent in scan.iter().filter(|x| x.parent_company.is_empty()).take(20) {
        let via_index: BTreeSet<String> =
            all_companies(c, &format!("parent_company = \"{}\"", parent.name))
                .await
                .into_iter()
                .map(|x| x.name)
                .collect();
        let via_scan: BTreeSet<String> = scan
            .iter()
            .filter(|x| x.parent_company == parent.name)
            .map(|x| x.name.clone())
            .collect();
        assert_eq!(via_index, via_scan, "branch index of {}", parent.name);
    }
    // Display names are unique per create: two companies with one means a
    // retried request ID created twice.
    let mut names = BTreeSet::new();
    for x in &scan {
        assert!(
            names.insert(x.display_name.as_str()),
            "{} was created twice",
            x.display_name
        );
    }
    // The revision never went backwards, and history replays densely.
    let head = listed_revision(c).await;
    assert!(
        head >= exp.max_acked_revision,
        "revision went back from {} to {head}",
        exp.max_acked_revision
    );
    let mut stream = c
        .watch_changes(WatchChangesRequest { start_revision: 1 })
        .await
        .unwrap()
        .into_inner();
    let mut expected_rev = 1;
    // The history folded into a state, and each revision's events.
    let mut folded: BTreeMap<String, Company> = BTreeMap::new();
    let mut at: BTreeMap<(u64, String), Option<Company>> = BTreeMap::new();
    let mut events = 0;
    while expected_rev <= head {
        let msg = tokio::time::timeout(PATIENCE, stream.message())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        for e in msg.events {
            assert!(
                e.revision == expected_rev || e.revision == expected_rev + 1,
                "gap before revision {}",
                e.revision
            );
            expected_rev = e.revision;
            events += 1;
            let company = |x: &Option<Entity>| match x.as_ref().and_then(|x| x.kind.as_ref()) {
                Some(entity::Kind::Company(c)) => Some(c.clone()),
                _ => None,
            };
            let Some(name) = company(&e.after)
                .or_else(|| company(&e.before))
                .map(|c| c.name)
            else {
                continue;
            };
            let after = company(&e.after);
            match &after {
                Some(c) => folded.insert(name.clone(), c.clone()),
                None => folded.remove(&name),
            };
            at.insert((e.revision, name), after);
        }
        if msg.revision >= head {
            break;
        }
    }
    exp.replayed_events = events;
    assert_eq!(
        folded, by_name,
        "the replayed history does not fold to the stored state"
    );
    for (revision, name, state) in &exp.history {
        assert_eq!(
            at.get(&(*revision, name.clone())),
            Some(state),
            "acknowledged write of {name} at revision {revision} in the replay"
        );
    }
}

async fn listed_revision(c: &mut Client) -> u64 {
    let resp = c.list_parks(ListParksRequest::default()).await.unwrap();
    support::revision_header(resp.metadata())
}

fn record(exp: &Mutex<Expectations>, name: &str, state: Option<Company>, revision: u64) {
    let mut e = exp.lock().unwrap();
    e.pending.remove(name);
    e.max_acked_revision = e.max_acked_revision.max(revision);
    e.history.push((revision, name.to_string(), state.clone()));
    e.acked.insert(name.to_string(), state);
}

/// Whether a writer goes on after a failed call: never. A failure is the
/// kill (the connection drops, and the call fails at once); a call that
/// ran into the client's deadline instead hung on a live registry, and
/// fails the test, naming it.
fn stopped(writer: &str, call: &str, e: &tonic::Status) -> bool {
    assert!(
        !(e.code() == tonic::Code::Cancelled && e.message() == "Timeout expired"),
        "writer {writer}: {call} got no answer in {PATIENCE:?} from a live registry"
    );
    false
}

/// One writer: creates (some batched, with parks and parents), updates
/// (with etags) and deletes its own companies, one call at a time,
/// recording what was acknowledged. Stops at its first failed call (the
/// registry was killed).
async fn writer(
    mut c: Client,
    id: String,
    exp: Arc<Mutex<Expectations>>,
    acks: Arc<watch::Sender<usize>>,
) {
    let mut mine: Vec<Company> = Vec::new();
    for n in 0usize.. {
        let op = n % 5;
        let ok = if op == 3 && !mine.is_empty() {
            let i = n % mine.len();
            let before = mine[i].clone();
            let employees = i32::try_from(n).unwrap();
            exp.lock().unwrap().pending.insert(
                before.name.clone(),
                Pending::Update {
                    before: before.clone(),
                    employees,
                },
            );
            let patch = Company {
                name: before.name.clone(),
                employees,
                etag: before.etag.clone(),
                ..Default::default()
            };
            match c
                .update_company(UpdateCompanyRequest {
                    company: Some(patch),
                    update_mask: None,
                })
                .await
            {
                Ok(resp) => {
                    let updated = resp.into_inner();
                    record(&exp, &updated.name, Some(updated.clone()), updated.revision);
                    mine[i] = updated;
                    true
                }
                Err(e) => stopped(&id, "UpdateCompany", &e),
            }
        } else if op == 4
            && mine.len() > 3
            && !mine.iter().any(|m| m.parent_company == mine[0].name)
        {
            let before = mine.remove(0);
            exp.lock().unwrap().pending.insert(
                before.name.clone(),
                Pending::Delete {
                    before: before.clone(),
                },
            );
            match c
                .delete_company(DeleteCompanyRequest {
                    name: before.name.clone(),
                    etag: String::new(),
                })
                .await
            {
                Ok(resp) => {
                    let rev = support::revision_header(resp.metadata());
                    record(&exp, &before.name, None, rev);
                    true
                }
                Err(e) => stopped(&id, "DeleteCompany", &e),
            }
        } else if op == 2 {
            // A server-assigned ID, made safe to retry by a request ID.
            let request_id = uuid::Uuid::new_v4().to_string();
            let request = CreateCompanyRequest {
                company: Some(Company {
                    display_name: format!("{id} {n} r"),
                    location: location(n),
                    employees: 7,
                    ..Default::default()
                }),
                company_id: String::new(),
                request_id: request_id.clone(),
            };
            exp.lock()
                .unwrap()
                .pending
                .insert(request_id.clone(), Pending::Retry(request.clone()));
            match c.create_company(request).await {
                Ok(resp) => {
                    let co = resp.into_inner();
                    exp.lock().unwrap().pending.remove(&request_id);
                    record(&exp, &co.name, Some(co.clone()), co.revision);
                    mine.push(co);
                    true
                }
                Err(e) => stopped(&id, "CreateCompany", &e),
            }
        } else {
            let size = if op == 1 { 5 } else { 1 };
            let requests: Vec<_> = (0..size)
                .map(|k| {
                    let mut co = Company {
                        display_name: format!("{id} {n} {k}"),
                        location: location(n + k),
                        employees: i32::try_from(k).unwrap(),
                        ..Default::default()
                    };
                    if (n + k) % 3 == 0 {
                        co.park = if k % 2 == 0 {
                            "parks/a".into()
                        } else {
                            "parks/b".into()
                        };
                    }
                    if k > 0 {
                        co.parent_company = format!("companies/{id}-{n}-0");
                    }
                    CreateCompanyRequest {
                        company: Some(co),
                        company_id: format!("{id}-{n}-{k}"),
                        request_id: String::new(),
                    }
                })
                .collect();
            {
                let batch: Vec<String> = requests
                    .iter()
                    .map(|r| format!("companies/{}", r.company_id))
                    .collect();
                let mut e = exp.lock().unwrap();
                for name in &batch {
                    e.pending.insert(
                        name.clone(),
                        Pending::Create {
                            batch: batch.clone(),
                        },
                    );
                }
            }
            match c
                .batch_create_companies(BatchCreateCompaniesRequest {
                    requests,
                    request_id: String::new(),
                })
                .await
            {
                Ok(resp) => {
                    for co in resp.into_inner().companies {
                        record(&exp, &co.name, Some(co.clone()), co.revision);
                        mine.push(co);
                    }
                    true
                }
                Err(e) => stopped(&id, "BatchCreateCompanies", &e),
            }
        };
        if !ok {
            return;
        }
        acks.send_modify(|a| *a += 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let exp = Arc::new(Mutex::new(Expectations::default()));
    {
        let (mut child, mut c, _) = start(dir.path()).await;
        for id in ["a", "b"] {
            let park = Park {
                display_name: format!("Park {id}"),
                kind: ParkKind::SciencePark as i32,
                location: location(0),
                ..Default::default()
            };
            c.create_park(CreateParkRequest {
                park: Some(park),
                park_id: id.into(),
                request_id: String::new(),
            })
            .await
            .unwrap();
        }
        child.kill().await.unwrap();
    }
    // A stats service follows the registry through every kill.
    let forwarder = Forwarder::start().await;
    let stats_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let stats_addr = stats_listener.local_addr().unwrap();
    let mut stats_config = zgc_stats::Config::for_registry(format!("http://{}", forwarder.addr));
    stats_config.backoff_max_ms = 200;
    tokio::spawn(zgc_stats::serve(
        stats_config,
        stats_listener,
        futures::stream::pending::<zgc_server::shutdown::Stop>(),
    ));
    let cycles = std::env::var("ZGC_CRASH_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(CYCLES);
    for cycle in 0..cycles {
        let (mut child, mut c, registry_addr) = start(dir.path()).await;
        forwarder.point_at(registry_addr);
        let mut snapshot = std::mem::take(&mut *exp.lock().unwrap());
        verify(&mut c, &mut snapshot).await;
        *exp.lock().unwrap() = snapshot;

        let (acks, mut seen) = watch::channel(0usize);
        let acks = Arc::new(acks);
        let mut tasks: tokio::task::JoinSet<()> = (0..WRITERS)
            .map(|w| {
                writer(
                    c.clone(),
                    format!("w{cycle}x{w}"),
                    exp.clone(),
                    acks.clone(),
                )
            })
            .collect();
        // Kill once enough writes were acknowledged (or every writer has
        // stopped on an error, which the next verification explains).
        tokio::time::timeout(PATIENCE, async {
            tokio::select! {
                _ = seen.wait_for(|n| *n >= ACKS_BEFORE_KILL) => {}
                _ = async { while tasks.join_next().await.is_some() {} } => {}
            }
        })
        .await
        .expect("writers made no progress");
        // SIGKILL, while the writers are mid-call.
        child.kill().await.unwrap();
        while let Some(t) = tasks.join_next().await {
            t.unwrap();
        }
    }
    let (_child, mut c, registry_addr) = start(dir.path()).await;
    forwarder.point_at(registry_addr);
    let mut last = std::mem::take(&mut *exp.lock().unwrap());
    verify(&mut c, &mut last).await;

    // The stats service, running throughout, converges to a recount.
    let head = listed_revision(&mut c).await;
    let scan = all_companies(&mut c, "").await;
    let channel = Channel::from_shared(format!("http://{stats_addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut stats = zgc_proto::stats::v1::stats_service_client::StatsServiceClient::new(channel);
    use zgc_proto::stats::v1::{GetSummaryRequest, Scope, scope};
    for (selector, filter) in [
        (scope::Selector::All(true), None),
        (scope::Selector::Park("parks/a".into()), Some("parks/a")),
        (scope::Selector::Park("parks/b".into()), Some("parks/b")),
        (scope::Selector::Province("Hebei".into()), None),
    ] {
        let hebei = matches!(selector, scope::Selector::Province(_));
        let mut req = tonic::Request::new(GetSummaryRequest {
            scope: Some(Scope {
                selector: Some(selector),
                include_affiliates: false,
            }),
            min_revision: head,
        });
        req.set_timeout(PATIENCE);
        let got = stats
            .get_summary(req)
            .await
            .expect("stats caught up")
            .into_inner();
        let members: Vec<&Company> = scan
            .iter()
            .filter(|x| filter.is_none_or(|p| x.park == p))
            .filter(|x| !hebei || x.location.as_ref().is_some_and(|l| l.province == "Hebei"))
            .collect();
        assert_eq!(
            got.company_count,
            members.len() as i64,
            "company count of {:?}",
            got.scope
        );
        assert_eq!(
            got.employees,
            members.iter().map(|x| i64::from(x.employees)).sum::<i64>()
        );
        assert_eq!(
            got.branch_count,
            members
                .iter()
                .filter(|x| !x.parent_company.is_empty())
                .count() as i64
        );
    }
    let surviving = last.acked.values().filter(|v| v.is_some()).count();
    assert!(
        surviving >= cycles * ACKS_BEFORE_KILL / 2,
        "only {surviving} companies"
    );
    // The figures RELIABILITY.md quotes (`--no-capture` shows them).
    eprintln!(
        "crash loop: {cycles} SIGKILLs survived; {} acknowledged writes verified; \
         {} creates retried by request ID; {} change events replayed; \
         {surviving} companies at the end",
        last.history.len(),
        last.retried,
        last.replayed_events,
    );
}

#[tokio::test]
async fn sigterm_drains_flushes_and_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, mut c, _) = start(dir.path()).await;
    let created = c
        .create_company(CreateCompanyRequest {
            company: Some(Company {
                display_name: "Kept".into(),
                location: location(0),
                ..Default::default()
            }),
            company_id: "kept".into(),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    let pid = child.id().unwrap().to_string();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = tokio::time::timeout(PATIENCE, child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(exit.success(), "zgc-registry exited with {exit:?}");

    let (_child, mut c, _) = start(dir.path()).await;
    let got = c
        .get_company(GetCompanyRequest {
            name: "companies/kept".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got, created);
}
