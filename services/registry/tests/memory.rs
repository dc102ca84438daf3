//! Memory stays bounded under abuse, measured on the real binary as its
//! peak resident set (VmHWM): a burst of large requests far beyond the
//! limit of calls in flight, and a watcher that never reads while writers
//! carry on.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use support::PATIENCE;
use tonic::Code;
use zgc_proto::registry::v1::*;

const MIB: u64 = 1024 * 1024;

/// The process's peak resident set, in bytes.
fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/pid/status");
    kib * 1024
}

use support::large_company as company;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_large_requests_beyond_the_limit_keeps_memory_bounded() {
    const CONNECTIONS: usize = 8;
    const PER_CONNECTION: usize = 32;
    const REQUEST_BYTES: usize = MIB as usize;
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = support::command(dir.path());
    cmd.args(["--max-concurrent-calls", "4", "--cache-mb", "16"]);
    let r = support::spawn(cmd).await;
    let mut c = r.client.clone();
    c.create_company(CreateCompanyRequest {
        company: Some(company(0, 4)),
        company_id: "warm-up".into(),
        request_id: String::new(),
    })
    .await
    .unwrap();
    let before = peak_rss(r.pid());

    // 256 calls of 1 MiB each in flight at once: 256 MiB offered. Each is
    // decoded and refused (its name is far too long) or shed.
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..CONNECTIONS {
        let channel = tonic::transport::Channel::from_shared(format!("http://{}", r.addr))
            .unwrap()
            .connect()
            .await
            .unwrap();
        for _ in 0..PER_CONNECTION {
            let mut client =
                zgc_proto::registry::v1::registry_service_client::RegistryServiceClient::new(
                    channel.clone(),
                )
                .max_encoding_message_size(usize::MAX);
            tasks.spawn(async move {
                let mut huge = company(1, 0);
                huge.display_name = "y".repeat(REQUEST_BYTES);
                client
                    .create_company(CreateCompanyRequest {
                        company: Some(huge),
                        company_id: String::new(),
                        request_id: String::new(),
                    })
                    .await
                    .unwrap_err()
                    .code()
            });
        }
    }
    let mut codes = Vec::new();
    while let Some(code) = tasks.join_next().await {
        codes.push(code.unwrap());
    }
    assert!(
        codes
            .iter()
            .all(|c| matches!(c, Code::InvalidArgument | Code::Unavailable)),
        "{codes:?}"
    );
    let growth = peak_rss(r.pid()).saturating_sub(before);
    let shed = codes.iter().filter(|c| **c == Code::Unavailable).count();
    eprintln!(
        "burst: 256 calls of 1 MiB, {shed} shed; peak RSS grew by {} MiB",
        growth / MIB
    );
    assert!(
        growth < 96 * MIB,
        "the registry's peak memory grew by {} MiB for 256 MiB offered",
        growth / MIB
    );
    // And it still serves.
    c.get_company(GetCompanyRequest {
        name: "companies/warm-up".into(),
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watcher_that_never_reads_neither_blocks_writers_nor_grows_memory() {
    const WRITES: usize = 2_000;
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = support::command(dir.path());
    cmd.args(["--cache-mb", "16"]);
    let r = support::spawn(cmd).await;
    let mut c = r.client.clone();

    // A watcher on its own connection that reads nothing after the start.
    let channel = tonic::transport::Channel::from_shared(format!("http://{}", r.addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut stuck =
        zgc_proto::registry::v1::registry_service_client::RegistryServiceClient::new(channel)
            .watch_changes(WatchChangesRequest { start_revision: 1 })
            .await
            .unwrap()
            .into_inner();
    let before = peak_rss(r.pid());

    // About 8 MiB of changes, four writers at a time: all acknowledged.
    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..4 {
        let mut c = c.clone();
        tasks.spawn(async move {
            for n in (w..WRITES).step_by(4) {
                c.create_company(CreateCompanyRequest {
                    company: Some(company(n, 16)),
                    company_id: format!("c{n}"),
                    request_id: String::new(),
                })
                .await
                .unwrap();
            }
        });
    }
    while let Some(t) = tasks.join_next().await {
        t.unwrap();
    }
    let growth = peak_rss(r.pid()).saturating_sub(before);
    eprintln!(
        "stuck watcher: {WRITES} writes acknowledged; peak RSS grew by {} MiB",
        growth / MIB
    );
    assert!(
        growth < 64 * MIB,
        "a stuck watcher let the registry's peak memory grow by {} MiB",
        growth / MIB
    );

    // The watcher, reading at last, gets every change in order.
    let head = c
        .list_companies(ListCompaniesRequest::default())
        .await
        .unwrap()
        .into_inner()
        .total_size as u64;
    let mut seen = 0u64;
    tokio::time::timeout(PATIENCE, async {
        while seen < head {
            let msg = stuck.message().await.unwrap().unwrap();
            for e in msg.events {
                seen += 1;
                assert_eq!(e.revision, seen, "the stream skipped or repeated");
            }
        }
    })
    .await
    .expect("the watcher never caught up");
    assert_eq!(seen, WRITES as u64);
}
