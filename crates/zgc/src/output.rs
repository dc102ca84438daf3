//! Printing an answer: canonical proto3 JSON, or a rendering for people.

use zgc_proto::json;

use crate::cli::Output;
use crate::error::CliError;

/// `message` as pretty-printed canonical proto3 JSON (as grpcurl prints it).
pub fn json<M: json::Named>(message: &M) -> Result<String, CliError> {
    let value = json::to_value(message).map_err(|e| CliError::Input(e.to_string()))?;
    serde_json::to_string_pretty(&value).map_err(|e| CliError::Input(e.to_string()))
}

/// Prints `message` in the chosen output: JSON, or `render`'s text.
pub fn emit<M: json::Named>(
    output: Output,
    message: &M,
    render: impl FnOnce(&M) -> String,
) -> Result<(), CliError> {
    match output {
        Output::Json => println!("{}", json(message)?),
        Output::Table => print!("{}", render(message)),
    }
    Ok(())
}
