//! `zgc watch`: the registry's change stream, one line per event.

use zgc_proto::json;
use zgc_proto::registry::v1::{ChangeType, Entity, WatchChangesRequest, entity};

use crate::cli::{Global, Output, Watch};
use crate::connect;
use crate::error::CliError;

fn name(e: &Option<Entity>) -> String {
    match e.as_ref().and_then(|e| e.kind.as_ref()) {
        Some(entity::Kind::Park(p)) => format!("{} ({})", p.name, p.display_name),
        Some(entity::Kind::Company(c)) => format!("{} ({})", c.name, c.display_name),
        None => String::new(),
    }
}

/// Runs until interrupted, the stream ends, or `--limit` events.
pub async fn run(w: Watch, g: &Global) -> Result<(), CliError> {
    let mut r = connect::registry(&g.registry, &g.connection).await?;
    let mut stream = r
        .watch_changes(zgc_client::idempotent(WatchChangesRequest {
            start_revision: w.from,
        }))
        .await?
        .into_inner();
    let mut seen = 0u64;
    while let Some(msg) = stream.message().await? {
        for e in &msg.events {
            match g.output {
                Output::Json => println!(
                    "{}",
                    json::to_string(e).map_err(|x| CliError::Input(x.to_string()))?
                ),
                Output::Table => {
                    let kind = ChangeType::try_from(e.r#type)
                        .map_or("?", |t| t.as_str_name())
                        .trim_start_matches("CHANGE_TYPE_");
                    let subject = if e.after.is_some() {
                        name(&e.after)
                    } else {
                        name(&e.before)
                    };
                    println!("{:>8}  {:<8} {subject}", e.revision, kind.to_lowercase());
                }
            }
            seen += 1;
            if w.limit.is_some_and(|l| seen >= l) {
                return Ok(());
            }
        }
        if msg.events.is_empty() && g.output == Output::Table {
            eprintln!("-- up to date through revision {}", msg.revision);
        }
    }
    Ok(())
}
