//! Disk trouble, with the real binary: a data directory that cannot be
//! created or written at start, and a disk that fills up during writes.
//!
//! "Disk full" is made with the process's file-size limit (RLIMIT_FSIZE,
//! set with util-linux `prlimit`): past it, writes fail with EFBIG exactly
//! where a full disk fails them with ENOSPC, without needing privileges to
//! mount a small filesystem. The registry handles SIGXFSZ so the limit
//! surfaces as an I/O error rather than killing it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeMap;

use support::Client;
use tonic::Code;
use zgc_proto::registry::v1::*;

/// A company of about 4 KiB, so the disk fills in a few hundred writes.
fn company(n: usize) -> Company {
    support::large_company(n, 16)
}

/// Creates company `n` with a server-assigned ID and a request ID of its
/// own, the same on every retry.
async fn create(c: &mut Client, n: usize) -> Result<Company, tonic::Status> {
    c.create_company(CreateCompanyRequest {
        company: Some(company(n)),
        company_id: String::new(),
        request_id: format!("00000000-0000-4000-8000-{n:012}"),
    })
    .await
    .map(|r| r.into_inner())
}

fn db_size(dir: &std::path::Path) -> u64 {
    std::fs::metadata(dir.join("db")).unwrap().len()
}

async fn all_companies(c: &mut Client) -> Vec<Company> {
    support::all_companies(c, "").await
}

/// Every acknowledged company is stored exactly as acknowledged, and
/// nothing else is.
async fn verify(c: &mut Client, acked: &BTreeMap<usize, Company>) {
    let stored = all_companies(c).await;
    let by_name: BTreeMap<&str, &Company> = stored.iter().map(|x| (x.name.as_str(), x)).collect();
    for (n, want) in acked {
        assert_eq!(
            by_name.get(want.name.as_str()),
            Some(&want),
            "acknowledged company {n}"
        );
    }
    assert_eq!(
        stored.len(),
        acked.len(),
        "companies stored besides the acknowledged ones (a retried request_id created twice?)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_fails_writes_clearly_loses_nothing_and_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let mut r = support::start(dir.path()).await;
    let mut acked: BTreeMap<usize, Company> = BTreeMap::new();
    for n in 0..20 {
        acked.insert(n, create(&mut r.client, n).await.unwrap());
    }

    // The disk fills up: at most 1 MiB more.
    support::set_file_size_limit(r.pid(), Some(db_size(dir.path()) + 1024 * 1024));
    let mut failed = Vec::new();
    let mut n = acked.len();
    while failed.len() < 5 {
        assert!(n < 5_000, "writes never failed on a full disk");
        match create(&mut r.client, n).await {
            // Acknowledged (there was room left after all): it must last.
            Ok(c) => {
                acked.insert(n, c);
            }
            Err(status) => {
                assert_eq!(status.code(), Code::Unavailable, "{status:?}");
                let message = status.message();
                assert!(
                    message.contains("File too large") || message.contains("reopening its store"),
                    "unclear error: {message}"
                );
                failed.push(n);
            }
        }
        n += 1;
    }
    // Reads of acknowledged data keep working or fail as UNAVAILABLE: never
    // a wrong answer.
    match r
        .client
        .get_company(GetCompanyRequest {
            name: acked[&0].name.clone(),
        })
        .await
    {
        Ok(got) => assert_eq!(got.into_inner(), acked[&0]),
        Err(status) => assert_eq!(status.code(), Code::Unavailable, "{status:?}"),
    }

    // Space returns: every failed write, retried with its request ID,
    // lands exactly once.
    support::set_file_size_limit(r.pid(), None);
    for n in failed {
        let mut attempts = 0;
        let created = loop {
            r.wait_serving().await;
            match create(&mut r.client, n).await {
                Ok(c) => break c,
                Err(status) => {
                    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
                    attempts += 1;
                    assert!(attempts < 10, "the registry never recovered: {status:?}");
                }
            }
        };
        let again = create(&mut r.client, n).await.unwrap();
        assert_eq!(again.name, created.name, "a retry created a second company");
        acked.insert(n, created);
    }
    // And new writes work again.
    for n in n..n + 20 {
        acked.insert(n, create(&mut r.client, n).await.unwrap());
    }
    verify(&mut r.client, &acked).await;

    // All of it is durable.
    r.child.kill().await.unwrap();
    let mut r = support::start(dir.path()).await;
    verify(&mut r.client, &acked).await;
}

#[tokio::test]
async fn a_full_disk_at_start_is_a_clear_error_and_a_later_start_works() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("registry");
    let mut cmd = tokio::process::Command::new("prlimit");
    cmd.arg("--fsize=0:unlimited")
        .arg(env!("CARGO_BIN_EXE_zgc-registry"))
        .args(["--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data);
    let (ok, stderr) = support::run_to_exit(cmd).await;
    assert!(!ok, "started on a full disk");
    assert!(
        stderr.contains(&format!(
            "cannot open the data directory {}",
            data.display()
        )) && stderr.contains("File too large"),
        "unclear error: {stderr}"
    );

    // Once there is space, the same directory opens and takes writes.
    let mut r = support::start(&data).await;
    let created = create(&mut r.client, 1).await.unwrap();
    r.child.kill().await.unwrap();
    let mut r = support::start(&data).await;
    let got = r
        .client
        .get_company(GetCompanyRequest { name: created.name })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got.display_name, "Large company 1");
}

#[tokio::test]
async fn an_unwritable_data_directory_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"not a directory").unwrap();
    let data = file.join("registry");
    let (ok, stderr) = support::run_to_exit(support::command(&data)).await;
    assert!(!ok, "started on an unwritable data directory");
    assert!(
        stderr.contains(&format!(
            "cannot open the data directory {}",
            data.display()
        )) && stderr.contains("Not a directory"),
        "unclear error: {stderr}"
    );
}
