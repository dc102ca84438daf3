//! The scenario dataset from five articles about Zhongguancun's parks
//! (`articles`, by title and date), and a seeded generator at any scale.
//!
//! [`scenario()`] is every park and named company the articles mention,
//! with what they say about them (labelled `source = <article>`), plus
//! synthetic companies (labelled `source = synthetic`) calibrated so the
//! stats service reproduces the articles' published figures. It is checked
//! in as JSON Lines ([`SCENARIO_JSONL`], one canonical-JSON
//! `zgc.registry.v1.Entity` per line, parents before children); a test keeps
//! the file equal to the generator's output.
//!
//! [`generate`] streams the parks and any number of synthetic companies for
//! benchmarks (`zgc gen`).
//!
//! Pure: no I/O.

pub mod articles;
mod build;
mod generator;
mod regions;
pub mod scenario;

pub use generator::{Generator, generate, generated_display_name, generated_id, generated_name};
pub use scenario::{SCENARIO_SEED, scenario};

/// The checked-in scenario, `data/scenario.jsonl`.
pub const SCENARIO_JSONL: &str = include_str!("../data/scenario.jsonl");

/// Renders entities as JSON Lines.
pub fn to_jsonl(
    entities: impl IntoIterator<Item = zgc_proto::registry::v1::Entity>,
) -> Result<String, zgc_proto::json::JsonError> {
    let mut out = String::new();
    for e in entities {
        out.push_str(&zgc_proto::json::to_string(&e)?);
        out.push('\n');
    }
    Ok(out)
}
