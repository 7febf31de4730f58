//! `relay serve --config FILE`: the same settings as the flags, in TOML, each key named like its
//! flag without the dashes (`rate_micros_per_gb_day = 2000` for `--rate-micros-per-gb-day`). A
//! flag, or its `RELAY_*` variable, overrides the file; the file overrides the defaults. Every key
//! is checked by the flag's own parser, so a bad value is refused with its key named.

use std::ffi::OsString;
use std::path::Path;

use clap::parser::ValueSource;
use clap::{ArgAction, ArgMatches, Command};

/// The largest config file read, bytes.
const FILE_MAX_BYTES: u64 = 1 << 20;

/// Why a config file cannot be used: names the file and, where there is one, the key.
#[derive(Debug, thiserror::Error)]
#[error("config file {file}: {message}")]
pub struct FileError {
    pub file: String,
    pub message: String,
}

/// The flags the file at `path` adds to `serve` (after the flags given, which win): `--key value`
/// for each key that neither a flag nor its environment variable set.
pub fn flags_from(path: &Path, serve: &Command, given: &ArgMatches) -> Result<Vec<OsString>, FileError> {
    let fail = |message: String| FileError {
        file: path.display().to_string(),
        message,
    };
    let size = std::fs::metadata(path).map_err(|e| fail(e.to_string()))?.len();
    if size > FILE_MAX_BYTES {
        return Err(fail(format!("larger than {FILE_MAX_BYTES} bytes")));
    }
    let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| fail(e.to_string()))?;
    let mut flags = Vec::new();
    for (key, value) in &table {
        let arg = serve
            .get_arguments()
            .find(|a| a.get_id().as_str() == key && a.get_long().is_some() && !a.is_hide_set())
            .filter(|_| key != "config")
            .ok_or_else(|| {
                fail(format!(
                    "unknown key `{key}` (keys are the flags of `relay serve` without dashes, with underscores)"
                ))
            })?;
        let long = format!("--{}", arg.get_long().unwrap_or_default());
        // Every value is checked, even one a flag overrides: a bad file is refused whole.
        let overridden = matches!(
            given.value_source(key),
            Some(ValueSource::CommandLine | ValueSource::EnvVariable)
        );
        let mut these = Vec::new();
        let values: Vec<&toml::Value> = match value {
            toml::Value::Array(items) if matches!(arg.get_action(), ArgAction::Append) => items.iter().collect(),
            other => vec![other],
        };
        for v in values {
            let text = match v {
                toml::Value::String(s) => s.clone(),
                toml::Value::Integer(i) => i.to_string(),
                toml::Value::Float(f) => f.to_string(),
                toml::Value::Boolean(b) => b.to_string(),
                other => {
                    return Err(fail(format!(
                        "`{key}`: a {} is not a value of {long}",
                        other.type_str()
                    )))
                }
            };
            if matches!(arg.get_action(), ArgAction::SetTrue) {
                match v {
                    toml::Value::Boolean(true) => these.push(OsString::from(&long)),
                    toml::Value::Boolean(false) => {}
                    _ => return Err(fail(format!("`{key}` must be true or false"))),
                }
                continue;
            }
            // The flag's own parser judges the value, on its own.
            serve
                .clone()
                .try_get_matches_from(["serve", long.as_str(), text.as_str()])
                .map_err(|e| fail(format!("`{key}` = {v}: {}", first_line(&e.to_string()))))?;
            these.push(OsString::from(&long));
            these.push(OsString::from(text));
        }
        if !overridden {
            flags.extend(these);
        }
    }
    Ok(flags)
}

/// clap's message without its "error: " prefix and usage lines.
fn first_line(message: &str) -> String {
    let line = message.lines().next().unwrap_or_default();
    line.strip_prefix("error: ").unwrap_or(line).to_string()
}
