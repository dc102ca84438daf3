//! `zgc import` and `zgc export`: JSON Lines of `zgc.registry.v1.Entity`.
//!
//! Import is safe to re-run after an interruption. Every park and every
//! batch of companies carries a `request_id` derived from its content, so a
//! batch the registry already committed is answered from its idempotency
//! record instead of being created again; such answers (their revision is
//! not newer than the registry's revision when the import started) count as
//! skipped. Entities that exist already under another batch are found one
//! by one and skipped too. A record the registry rejects is reported with
//! its line number and reason, and the rest of its batch still goes in.

use std::collections::HashMap;
use std::io::{BufRead, Write};

use indicatif::{ProgressBar, ProgressStyle};
use sha2::{Digest, Sha256};
use tonic::Code;
use tonic_types::StatusExt;
use zgc_client::pipeline::Pipeline;
use zgc_proto::json;
use zgc_proto::registry::v1::*;

use crate::error::{CliError, render_status};

type Client = crate::connect::Registry;

/// What an import did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    /// Entities created by this run.
    pub created: u64,
    /// Entities that were already there.
    pub skipped: u64,
    /// Lines that failed, with why.
    pub failed: Vec<(usize, String)>,
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (line, reason) in &self.failed {
            writeln!(f, "line {line}: {reason}")?;
        }
        write!(
            f,
            "created {}, skipped {}, failed {}",
            self.created,
            self.skipped,
            self.failed.len()
        )
    }
}

/// A UUID made from content, so the same content always gets the same one.
fn content_request_id(parts: &[&[u8]]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_be_bytes());
        h.update(p);
    }
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&h.finalize()[..16]);
    uuid::Builder::from_sha1_bytes(bytes)
        .into_uuid()
        .to_string()
}

fn id_of(name: &str, collection: &str) -> Option<String> {
    name.strip_prefix(collection)?
        .strip_prefix('/')
        .map(str::to_owned)
}

/// One company line waiting for its batch.
struct Pending {
    line: usize,
    text: String,
    request: CreateCompanyRequest,
}

struct Importer {
    client: Client,
    /// The registry's revision when the import started: anything answered
    /// at or below it existed before this run.
    start_revision: u64,
    report: Report,
    /// Batches sent and not yet answered.
    in_flight: Pipeline<Result<Report, CliError>>,
}

fn revision_of(metadata: &tonic::metadata::MetadataMap) -> u64 {
    zgc_proto::wire::revision(metadata).unwrap_or(0)
}

/// The batch entry a store error names (`requests[3].…`), if any.
fn failing_entry(status: &tonic::Status) -> Option<(usize, String)> {
    if let Some(bad) = status.get_details_bad_request() {
        let first = bad.field_violations.first()?;
        let index = first
            .field
            .strip_prefix("requests[")?
            .split(']')
            .next()?
            .parse()
            .ok()?;
        let reasons: Vec<String> = bad
            .field_violations
            .iter()
            .filter(|v| v.field.starts_with(&format!("requests[{index}]")))
            .map(|v| {
                format!(
                    "{}: {}",
                    v.field.split_once('.').map_or(v.field.as_str(), |x| x.1),
                    v.description
                )
            })
            .collect();
        return Some((index, reasons.join("; ")));
    }
    let message = status.message();
    let index = message
        .strip_prefix("requests[")?
        .split(']')
        .next()?
        .parse()
        .ok()?;
    let reason = message.split_once("].").map_or(message, |x| x.1);
    Some((index, format!("{}: {reason}", code_name(status.code()))))
}

fn code_name(code: Code) -> String {
    render_status(&tonic::Status::new(code, ""))
        .trim_end_matches(": ")
        .to_string()
}

impl Importer {
    async fn park(&mut self, line: usize, text: &str, park: Park) {
        let Some(id) = id_of(&park.name, "parks") else {
            self.report
                .failed
                .push((line, "name must be parks/{id}".into()));
            return;
        };
        let request = CreateParkRequest {
            request_id: content_request_id(&[b"park", text.as_bytes()]),
            park_id: id,
            park: Some(park),
        };
        // It carries a request ID: safe to send again.
        match self
            .client
            .create_park(zgc_client::idempotent(request))
            .await
        {
            Ok(resp) if resp.get_ref().revision <= self.start_revision => self.report.skipped += 1,
            Ok(_) => self.report.created += 1,
            Err(s) if s.code() == Code::AlreadyExists => self.report.skipped += 1,
            Err(s) => self
                .report
                .failed
                .push((line, render_status(&s).replace('\n', ";"))),
        }
    }

    /// Starts sending a batch once the batches creating its companies'
    /// parents were answered; merges the reports of batches that finished.
    async fn start_batch(&mut self, batch: Vec<Pending>) -> Result<(), CliError> {
        if batch.is_empty() {
            return Ok(());
        }
        let provides = batch
            .iter()
            .map(|p| format!("companies/{}", p.request.company_id))
            .collect();
        let needs: Vec<String> = batch
            .iter()
            .filter_map(|p| p.request.company.as_ref())
            .map(|c| c.parent_company.clone())
            .collect();
        let task = send_batch(self.client.clone(), self.start_revision, batch);
        let finished = self
            .in_flight
            .start(provides, needs, task)
            .await
            .map_err(joined)?;
        self.merge(finished)
    }

    /// Waits for every batch in flight.
    async fn drain(&mut self) -> Result<(), CliError> {
        let finished = self.in_flight.finish().await.map_err(joined)?;
        self.merge(finished)
    }

    fn merge(&mut self, finished: Vec<Result<Report, CliError>>) -> Result<(), CliError> {
        for report in finished {
            let report = report?;
            self.report.created += report.created;
            self.report.skipped += report.skipped;
            self.report.failed.extend(report.failed);
        }
        Ok(())
    }
}

fn joined(e: tokio::task::JoinError) -> CliError {
    CliError::Internal(format!("an import batch's task failed: {e}"))
}

/// Sends a batch, dropping (and reporting) entries the registry rejects
/// and skipping entries that exist, until the rest goes in.
async fn send_batch(
    mut client: Client,
    start_revision: u64,
    mut batch: Vec<Pending>,
) -> Result<Report, CliError> {
    let mut report = Report::default();
    while !batch.is_empty() {
        let texts: Vec<&[u8]> = batch.iter().map(|p| p.text.as_bytes()).collect();
        let request_id = content_request_id(&texts);
        let requests = batch.iter().map(|p| p.request.clone()).collect();
        match client
            .batch_create_companies(zgc_client::idempotent(BatchCreateCompaniesRequest {
                requests,
                request_id,
            }))
            .await
        {
            Ok(resp) => {
                let n = batch.len() as u64;
                if resp
                    .get_ref()
                    .companies
                    .first()
                    .is_some_and(|c| c.revision <= start_revision)
                {
                    report.skipped += n;
                } else {
                    report.created += n;
                }
                break;
            }
            Err(s) if s.code() == Code::AlreadyExists => {
                // Some exist (from another run's batches): skip those.
                let mut rest = Vec::with_capacity(batch.len());
                for p in batch {
                    let name = format!("companies/{}", p.request.company_id);
                    match client
                        .get_company(zgc_client::idempotent(GetCompanyRequest { name }))
                        .await
                    {
                        Ok(_) => report.skipped += 1,
                        Err(e) if e.code() == Code::NotFound => rest.push(p),
                        Err(e) => return Err(e.into()),
                    }
                }
                batch = rest;
            }
            Err(s) => match failing_entry(&s) {
                Some((i, reason)) if i < batch.len() => {
                    let bad = batch.remove(i);
                    report.failed.push((bad.line, reason));
                }
                _ => return Err(s.into()),
            },
        }
    }
    Ok(report)
}

/// Imports JSON Lines from `reader` (of `size` bytes, for progress), in
/// batches of `batch_size` companies with up to `in_flight` batches sent
/// at once. Parks go in one at a time, in order with the batches around
/// them; a batch naming a parent company is sent only once the batch
/// creating that parent was answered.
pub async fn import(
    client: Client,
    reader: impl BufRead,
    size: Option<u64>,
    batch_size: usize,
    in_flight: usize,
) -> Result<Report, CliError> {
    let mut client = client;
    let head = client
        .list_parks(zgc_client::idempotent(ListParksRequest {
            page_size: 1,
            ..Default::default()
        }))
        .await?;
    let mut importer = Importer {
        start_revision: revision_of(head.metadata()),
        client,
        report: Report::default(),
        in_flight: Pipeline::new(in_flight),
    };
    let progress = match size {
        Some(n) => ProgressBar::new(n),
        None => ProgressBar::new_spinner(),
    };
    progress.set_style(
        ProgressStyle::with_template("{spinner} [{bar:40}] {bytes}/{total_bytes} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut batch: Vec<Pending> = Vec::with_capacity(batch_size);
    for (i, line) in reader.lines().enumerate() {
        let line_no = i + 1;
        let text = line?;
        progress.inc(text.len() as u64 + 1);
        if text.trim().is_empty() {
            continue;
        }
        let entity: Entity = match json::from_str(&text) {
            Ok(e) => e,
            Err(e) => {
                importer
                    .report
                    .failed
                    .push((line_no, format!("not an Entity in canonical JSON: {e}")));
                continue;
            }
        };
        match entity.kind {
            Some(entity::Kind::Park(p)) => {
                // Parks go in order with the companies around them.
                importer.start_batch(std::mem::take(&mut batch)).await?;
                importer.drain().await?;
                importer.park(line_no, &text, p).await;
            }
            Some(entity::Kind::Company(c)) => {
                let Some(id) = id_of(&c.name, "companies") else {
                    importer
                        .report
                        .failed
                        .push((line_no, "name must be companies/{id}".into()));
                    continue;
                };
                batch.push(Pending {
                    line: line_no,
                    text,
                    request: CreateCompanyRequest {
                        company: Some(c),
                        company_id: id,
                        request_id: String::new(),
                    },
                });
                if batch.len() >= batch_size {
                    importer.start_batch(std::mem::take(&mut batch)).await?;
                    progress.set_message(format!(
                        "{} created, {} skipped",
                        importer.report.created, importer.report.skipped
                    ));
                }
            }
            None => importer
                .report
                .failed
                .push((line_no, "neither a park nor a company".into())),
        }
    }
    importer.start_batch(batch).await?;
    importer.drain().await?;
    progress.finish_and_clear();
    // Batches finish in any order; failures are reported by line.
    importer.report.failed.sort_by_key(|(line, _)| *line);
    Ok(importer.report)
}

/// Writes every park and company as JSON Lines, parents before children,
/// without the fields the registry assigns (so the file imports anywhere).
pub async fn export(mut client: Client, out: &mut impl Write) -> Result<u64, CliError> {
    let mut parks = Vec::new();
    let mut token = String::new();
    loop {
        let page = client
            .list_parks(zgc_client::idempotent(ListParksRequest {
                page_size: 1000,
                page_token: token,
                ..Default::default()
            }))
            .await?
            .into_inner();
        parks.extend(page.parks);
        token = page.next_page_token;
        if token.is_empty() {
            break;
        }
    }
    let mut companies = Vec::new();
    loop {
        let page = client
            .list_companies(zgc_client::idempotent(ListCompaniesRequest {
                page_size: 1000,
                page_token: token,
                ..Default::default()
            }))
            .await?
            .into_inner();
        companies.extend(page.companies);
        token = page.next_page_token;
        if token.is_empty() {
            break;
        }
    }
    let parks = parents_first(parks, |p| &p.name, |p| &p.parent_park);
    let companies = parents_first(companies, |c| &c.name, |c| &c.parent_company);
    let mut n = 0;
    let write = |out: &mut dyn Write, e: Entity| -> Result<(), CliError> {
        let text = json::to_string(&e).map_err(|e| CliError::Input(e.to_string()))?;
        writeln!(out, "{text}")?;
        Ok(())
    };
    for mut p in parks {
        p.uid.clear();
        p.create_time = None;
        p.update_time = None;
        p.revision = 0;
        p.etag.clear();
        write(
            out,
            Entity {
                kind: Some(entity::Kind::Park(p)),
            },
        )?;
        n += 1;
    }
    for mut c in companies {
        c.uid.clear();
        c.create_time = None;
        c.update_time = None;
        c.revision = 0;
        c.etag.clear();
        write(
            out,
            Entity {
                kind: Some(entity::Kind::Company(c)),
            },
        )?;
        n += 1;
    }
    Ok(n)
}

/// Orders items so each comes after its parent (by depth, then name).
fn parents_first<T>(
    items: Vec<T>,
    name: impl Fn(&T) -> &String,
    parent: impl Fn(&T) -> &String,
) -> Vec<T> {
    let parents: HashMap<String, String> = items
        .iter()
        .map(|i| (name(i).clone(), parent(i).clone()))
        .collect();
    let depth = |start: &str| {
        let mut d = 0usize;
        let mut cur = parents.get(start).cloned().unwrap_or_default();
        while !cur.is_empty() && d < parents.len() {
            d += 1;
            cur = parents.get(&cur).cloned().unwrap_or_default();
        }
        d
    };
    let mut keyed: Vec<(usize, String, T)> = items
        .into_iter()
        .map(|i| (depth(name(&i)), name(&i).clone(), i))
        .collect();
    keyed.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
    keyed.into_iter().map(|(_, _, i)| i).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_uuids_from_content() {
        let a = content_request_id(&[b"x"]);
        assert_eq!(a, content_request_id(&[b"x"]));
        assert_ne!(a, content_request_id(&[b"y"]));
        assert_ne!(
            content_request_id(&[b"ab", b"c"]),
            content_request_id(&[b"a", b"bc"])
        );
        assert!(uuid::Uuid::parse_str(&a).is_ok());
    }

    #[test]
    fn parents_come_first() {
        let items = vec![("c", "b"), ("b", "a"), ("a", ""), ("d", "")];
        let items: Vec<(String, String)> = items
            .into_iter()
            .map(|(a, b)| (a.into(), b.into()))
            .collect();
        let sorted = parents_first(items, |i| &i.0, |i| &i.1);
        let names: Vec<&str> = sorted.iter().map(|i| i.0.as_str()).collect();
        assert_eq!(names, ["a", "d", "b", "c"]);
    }
}
