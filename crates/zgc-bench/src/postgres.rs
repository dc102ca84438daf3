//! The baseline a user would otherwise pick: PostgreSQL from the
//! machine's packages, started on loopback in a scratch directory, loaded
//! with the same companies through `COPY`, and asked the `GROUP BY`
//! queries that compute what `GetSummary` answers.
//!
//! The schema is what a careful user would write: one row per company
//! with the summed columns, the sectors and annual figures in their own
//! tables, an index on every column a scope filters by, `ANALYZE`d after
//! loading, with enough shared buffers to hold the data.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use bytes::{BufMut, BytesMut};
use futures::SinkExt;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio_postgres::{NoTls, SimpleQueryMessage};
use zgc_proto::registry::v1::{Company, Park, entity};

/// Why the PostgreSQL baseline could not run.
#[derive(Debug, thiserror::Error)]
pub enum PgError {
    /// No server binaries on this machine.
    #[error(
        "PostgreSQL not found under /usr/lib/postgresql/*/bin (install Debian's `postgresql` \
         package, or set ZGC_BENCH_PG_BIN to the directory holding initdb and postgres)"
    )]
    NotInstalled,
    /// initdb or the server failed.
    #[error("PostgreSQL: {0}")]
    Server(String),
    /// A query failed.
    #[error("PostgreSQL query: {}", describe(.0))]
    Query(#[from] tokio_postgres::Error),
    /// Files or processes.
    #[error("PostgreSQL: {0}")]
    Io(#[from] std::io::Error),
}

/// A PostgreSQL server of our own, removed when dropped.
pub struct Postgres {
    _server: Child,
    _dir: tempfile::TempDir,
    client: tokio_postgres::Client,
}

/// The figures `GetSummary` also answers, as PostgreSQL computed them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Figures {
    /// Companies in scope.
    pub companies: i64,
    /// Their summed employees.
    pub employees: i64,
}

/// The server's own message where there is one: `db error` alone says
/// nothing.
fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {}", db.severity(), db.message()),
        None => e.to_string(),
    }
}

fn bin_dir() -> Result<PathBuf, PgError> {
    if let Some(dir) = std::env::var_os("ZGC_BENCH_PG_BIN") {
        return Ok(PathBuf::from(dir));
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .map_err(|_| PgError::NotInstalled)?
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("postgres").exists().then_some((v, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, b)| b).ok_or(PgError::NotInstalled)
}

/// PostgreSQL refuses to run as root: as root, run it as `postgres`.
fn command(program: &Path, owner: Option<&str>) -> Command {
    match owner {
        Some(user) => {
            let mut c = Command::new("runuser");
            c.args(["-u", user, "--"]).arg(program);
            c
        }
        None => Command::new(program),
    }
}

async fn user_id(user: &str) -> Result<(u32, u32), PgError> {
    let id = |flag: &'static str| async move {
        let out = Command::new("id").args([flag, user]).output().await?;
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse::<u32>()
            .map_err(|_| PgError::Server(format!("no user {user} to run PostgreSQL as")))
    };
    Ok((id("-u").await?, id("-g").await?))
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .map(|v| v.split_whitespace().next() == Some("0"))
        })
        .unwrap_or(false)
}

impl Postgres {
    /// initdb in a scratch directory, then start the server on a free
    /// loopback port and connect.
    pub async fn start() -> Result<Self, PgError> {
        let bin = bin_dir()?;
        let dir = tempfile::Builder::new().prefix("zgc-bench-pg-").tempdir()?;
        let owner = is_root().then_some("postgres");
        if let Some(user) = owner {
            let (uid, gid) = user_id(user).await?;
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid))?;
        }
        let data = dir.path().join("data");
        let init = command(&bin.join("initdb"), owner)
            .args([
                "--auth=trust",
                "--username=zgc",
                "--encoding=UTF8",
                // Text compares bytewise, as the registry orders names.
                "--locale=C",
                "--no-sync",
            ])
            .arg("-D")
            .arg(&data)
            .output()
            .await?;
        if !init.status.success() {
            return Err(PgError::Server(format!(
                "initdb failed: {}",
                String::from_utf8_lossy(&init.stderr)
            )));
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let mut server = command(&bin.join("postgres"), owner)
            .arg("-D")
            .arg(&data)
            .args(["-c", "listen_addresses=127.0.0.1", "-p", &port.to_string()])
            .arg("-c")
            .arg(format!("unix_socket_directories={}", dir.path().display()))
            .args(["-c", "shared_buffers=1GB", "-c", "work_mem=64MB"])
            .args(["-c", "maintenance_work_mem=256MB", "-c", "max_wal_size=4GB"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()?;
        let stderr = server
            .stderr
            .take()
            .ok_or_else(|| PgError::Server("no stderr".into()))?;
        let mut lines = BufReader::new(stderr).lines();
        let mut log = Vec::new();
        let ready = tokio::time::timeout(Duration::from_secs(60), async {
            while let Ok(Some(line)) = lines.next_line().await {
                if line.contains("ready to accept connections") {
                    return true;
                }
                log.push(line);
            }
            false
        })
        .await
        .unwrap_or(false);
        if !ready {
            return Err(PgError::Server(format!(
                "the server did not start: {}",
                log.join("\n")
            )));
        }
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let (client, connection) = tokio_postgres::connect(
            &format!("host=127.0.0.1 port={port} user=zgc dbname=postgres"),
            NoTls,
        )
        .await?;
        tokio::spawn(connection);
        Ok(Self {
            _server: server,
            _dir: dir,
            client,
        })
    }

    /// Loads the dataset `zgc_dataset::generate(companies, seed)` (the one
    /// the registry holds), indexes it (the summaries' indexes and
    /// `indexes`), and analyzes it; returns the time it took.
    pub async fn load(
        &self,
        companies: u64,
        seed: u64,
        indexes: &[&str],
    ) -> Result<Duration, PgError> {
        let started = Instant::now();
        self.client.batch_execute(SCHEMA).await?;
        let (mut parks, mut sectors, mut figures) =
            (BytesMut::new(), BytesMut::new(), BytesMut::new());
        let sink = self.client.copy_in(COPY_COMPANIES).await?;
        futures::pin_mut!(sink);
        let mut rows = BytesMut::with_capacity(1 << 20);
        // The registry gives a company without a location its park's: so
        // does the table. Parks come first in the dataset.
        let mut park_locations = std::collections::HashMap::new();
        for e in zgc_dataset::generate(companies, seed) {
            match e.kind {
                Some(entity::Kind::Park(p)) => {
                    park_row(&mut parks, &p);
                    park_locations.insert(p.name.clone(), p.location.clone());
                }
                Some(entity::Kind::Company(mut c)) => {
                    if c.location.is_none() {
                        c.location = park_locations.get(&c.park).cloned().flatten();
                    }
                    company_rows(&mut rows, &mut sectors, &mut figures, &c);
                    if rows.len() >= 1 << 20 {
                        sink.send(rows.split().freeze()).await?;
                    }
                }
                None => {}
            }
        }
        sink.send(rows.freeze()).await?;
        sink.finish().await?;
        for (statement, data) in [
            (COPY_PARKS, parks),
            (COPY_SECTORS, sectors),
            (COPY_FIGURES, figures),
        ] {
            let sink = self.client.copy_in(statement).await?;
            futures::pin_mut!(sink);
            sink.send(data.freeze()).await?;
            sink.finish().await?;
        }
        self.client.batch_execute(INDEXES).await?;
        for index in indexes {
            self.client.batch_execute(index).await?;
        }
        // On its own: VACUUM cannot run in the implicit transaction of a
        // multi-statement batch.
        self.client.batch_execute("VACUUM ANALYZE").await?;
        Ok(started.elapsed())
    }

    /// Runs the summary queries for `park` (`None`: everything) once;
    /// returns how long they took and the headline figures.
    pub async fn summary(&self, park: Option<&str>) -> Result<(Duration, Figures), PgError> {
        let sql = summary_sql(park);
        let started = Instant::now();
        let answer = self.client.simple_query(&sql).await?;
        let took = started.elapsed();
        // The second statement's row: company count, branches, employees, ...
        let row = answer
            .iter()
            .filter_map(|m| match m {
                SimpleQueryMessage::Row(r) => Some(r),
                _ => None,
            })
            .nth(1)
            .ok_or_else(|| PgError::Server("the summary query returned no figures".into()))?;
        let number = |i: usize| {
            row.get(i)
                .and_then(|v| v.parse::<i64>().ok())
                .unwrap_or_default()
        };
        Ok((
            took,
            Figures {
                companies: number(0),
                employees: number(2),
            },
        ))
    }

    /// Runs a listing's count and page (`Shape::sql`) once; returns how
    /// long they took, the names on the page and the count.
    pub async fn list(&self, sql: &str) -> Result<(Duration, Vec<String>, i64), PgError> {
        let started = Instant::now();
        let answer = self.client.simple_query(sql).await?;
        let took = started.elapsed();
        let mut rows = answer.iter().filter_map(|m| match m {
            SimpleQueryMessage::Row(r) => Some(r),
            _ => None,
        });
        let count = rows
            .next()
            .and_then(|r| r.get(0))
            .and_then(|v| v.parse::<i64>().ok())
            .ok_or_else(|| PgError::Server("the count returned no row".into()))?;
        let names = rows.filter_map(|r| r.get(0).map(str::to_string)).collect();
        Ok((took, names, count))
    }
}

const SCHEMA: &str = "
CREATE TABLE parks (
    name text PRIMARY KEY, parent_park text, province text, city text);
CREATE TABLE companies (
    name text PRIMARY KEY, display_name text NOT NULL, park text, province text, city text,
    parent_company text, employees integer NOT NULL, investment_cny bigint NOT NULL,
    high_tech boolean NOT NULL, listed boolean NOT NULL, founded_year integer,
    relocated_from_province text);
CREATE TABLE company_sectors (company text NOT NULL, sector text NOT NULL);
CREATE TABLE annual_figures (
    company text NOT NULL, year integer NOT NULL,
    revenue_cny bigint NOT NULL, output_value_cny bigint NOT NULL);
";

const COPY_PARKS: &str = "COPY parks FROM STDIN";
const COPY_COMPANIES: &str = "COPY companies FROM STDIN";
const COPY_SECTORS: &str = "COPY company_sectors FROM STDIN";
const COPY_FIGURES: &str = "COPY annual_figures FROM STDIN";

const INDEXES: &str = "
CREATE INDEX ON companies (park);
CREATE INDEX ON companies (province, city);
CREATE INDEX ON company_sectors (company);
CREATE INDEX ON company_sectors (sector);
CREATE INDEX ON annual_figures (company);
";

/// The statements that compute a summary: parks, the summed figures,
/// relocation origins, sectors, foundings by year and annual figures by
/// year. One round trip, like one `GetSummary`.
pub fn summary_sql(park: Option<&str>) -> String {
    let (parks, companies, join) = match park {
        None => (String::new(), String::new(), String::new()),
        Some(p) => {
            let p = p.replace('\'', "''");
            (
                format!(" WHERE name = '{p}'"),
                format!(" WHERE park = '{p}'"),
                format!(" JOIN companies c ON c.name = t.company WHERE c.park = '{p}'"),
            )
        }
    };
    let and = if companies.is_empty() {
        " WHERE"
    } else {
        " AND"
    };
    format!(
        "SELECT count(*) FROM parks{parks};
SELECT count(*), count(parent_company), coalesce(sum(employees), 0),
       coalesce(sum(investment_cny), 0), count(*) FILTER (WHERE high_tech),
       count(*) FILTER (WHERE listed), count(relocated_from_province)
  FROM companies{companies};
SELECT relocated_from_province, count(*) FROM companies{companies}{and} relocated_from_province IS NOT NULL
  GROUP BY 1 ORDER BY 2 DESC, 1;
SELECT t.sector, count(*) FROM company_sectors t{join} GROUP BY 1 ORDER BY 2 DESC, 1;
SELECT founded_year, count(*) FROM companies{companies}{and} founded_year IS NOT NULL
  GROUP BY 1 ORDER BY 1;
SELECT t.year, sum(t.revenue_cny), sum(t.output_value_cny) FROM annual_figures t{join}
  GROUP BY 1 ORDER BY 1;"
    )
}

/// One field of a `COPY ... FROM STDIN` text row.
fn field(out: &mut BytesMut, value: Option<&str>) {
    match value {
        None => out.put_slice(b"\\N"),
        Some(v) => {
            for b in v.bytes() {
                match b {
                    b'\\' => out.put_slice(b"\\\\"),
                    b'\t' => out.put_slice(b"\\t"),
                    b'\n' => out.put_slice(b"\\n"),
                    b'\r' => out.put_slice(b"\\r"),
                    _ => out.put_u8(b),
                }
            }
        }
    }
}

fn row(out: &mut BytesMut, fields: &[Option<&str>]) {
    for (i, f) in fields.iter().enumerate() {
        if i > 0 {
            out.put_u8(b'\t');
        }
        field(out, *f);
    }
    out.put_u8(b'\n');
}

fn non_empty(s: &str) -> Option<&str> {
    (!s.is_empty()).then_some(s)
}

fn park_row(out: &mut BytesMut, p: &Park) {
    let loc = p.location.clone().unwrap_or_default();
    row(
        out,
        &[
            Some(&p.name),
            non_empty(&p.parent_park),
            Some(&loc.province),
            Some(&loc.city),
        ],
    );
}

fn company_rows(out: &mut BytesMut, sectors: &mut BytesMut, figures: &mut BytesMut, c: &Company) {
    let loc = c.location.clone().unwrap_or_default();
    let founded = c
        .founded
        .as_ref()
        .filter(|d| d.year > 0)
        .map(|d| d.year.to_string());
    let relocated_from = c
        .relocations
        .last()
        .map(|r| r.from.clone().unwrap_or_default().province);
    row(
        out,
        &[
            Some(&c.name),
            Some(&c.display_name),
            non_empty(&c.park),
            Some(&loc.province),
            Some(&loc.city),
            non_empty(&c.parent_company),
            Some(&c.employees.to_string()),
            Some(&c.investment_cny.to_string()),
            Some(if c.high_tech { "t" } else { "f" }),
            Some(if c.listed { "t" } else { "f" }),
            founded.as_deref(),
            relocated_from.as_deref(),
        ],
    );
    for s in &c.sectors {
        row(sectors, &[Some(&c.name), Some(s)]);
    }
    for f in &c.annual_figures {
        row(
            figures,
            &[
                Some(&c.name),
                Some(&f.year.to_string()),
                Some(&f.revenue_cny.to_string()),
                Some(&f.output_value_cny.to_string()),
            ],
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_fields_escape_what_copy_text_format_reserves() {
        let mut out = BytesMut::new();
        row(&mut out, &[Some("a\tb\\c\nd"), None, Some("")]);
        assert_eq!(&out[..], b"a\\tb\\\\c\\nd\t\\N\t\n");
    }

    #[test]
    fn a_park_scope_filters_every_statement_and_quotes_the_name() {
        let all = summary_sql(None);
        assert!(!all.contains("park ="));
        let one = summary_sql(Some("parks/o'brien"));
        assert_eq!(one.matches("park = 'parks/o''brien'").count(), 5);
        assert!(one.contains("name = 'parks/o''brien'"));
    }
}
