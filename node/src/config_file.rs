//! `relay serve --config FILE`: the same settings as the flags, in TOML, each key named like its
//! flag without the dashes (`rate_micros_per_gb_day = 2000` for `--rate-micros-per-gb-day`). A
//! flag, or its `RELAY_*` variable, overrides the file; the file overrides the defaults. Every key
//! is checked by the flag's own parser, so a bad value is refused with its key named.

use std::ffi::OsString;
use std::path::Path;

use clap::parser::ValueSource;
use clap::{ArgAction, ArgMatches, Command};

/// Keys whose values never appear in an error.
const SECRET_KEYS: &[&str] = &["cluster_secret", "bootstrap_api_key", "admin_api_key"];

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
    // Read at most one byte past the cap, whatever the file claims to be (a device, a pipe).
    let meta = std::fs::metadata(path).map_err(|e| fail(e.to_string()))?;
    if !meta.is_file() {
        return Err(fail("not a regular file".into()));
    }
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| std::io::Read::read_to_end(&mut std::io::Read::take(f, FILE_MAX_BYTES + 1), &mut bytes))
        .map_err(|e| fail(e.to_string()))?;
    if bytes.len() as u64 > FILE_MAX_BYTES {
        return Err(fail(format!("larger than {FILE_MAX_BYTES} bytes")));
    }
    let text = String::from_utf8(bytes).map_err(|_| fail("not UTF-8".into()))?;
    // The parser's message and line, not its quote of the file (which may hold a secret).
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
        let line = e.span().map(|s| {
            let upto = s.start.min(text.len());
            text.as_bytes()[..upto].iter().filter(|b| **b == b'\n').count() + 1
        });
        let at = line.map(|l| format!(" at line {l}")).unwrap_or_default();
        fail(format!("not valid TOML{at}: {}", e.message().trim()))
    })?;
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
        let secret = SECRET_KEYS.contains(&key.as_str());
        for v in values {
            if matches!(arg.get_action(), ArgAction::SetTrue) {
                match v {
                    toml::Value::Boolean(true) => these.push(OsString::from(&long)),
                    toml::Value::Boolean(false) => {}
                    _ => return Err(fail(format!("`{key}` must be true or false"))),
                }
                continue;
            }
            // Strings and whole numbers, as the flag would take them; a float or a boolean is not
            // quietly turned into something else.
            let text = match v {
                toml::Value::String(s) => s.clone(),
                toml::Value::Integer(i) => i.to_string(),
                other => {
                    return Err(fail(format!(
                        "`{key}`: a {} is not a value of {long} (give a string or a whole number)",
                        other.type_str()
                    )))
                }
            };
            // `--flag=value`, so a value starting with `-` is a value; the flag's own parser
            // judges it, on its own. A secret's value never appears in the error.
            let flag = format!("{long}={text}");
            serve
                .clone()
                .try_get_matches_from(["serve", flag.as_str()])
                .map_err(|e| match secret {
                    true => fail(format!("`{key}`: not a valid value")),
                    false => fail(format!("`{key}` = {v}: {}", first_line(&e.to_string()))),
                })?;
            these.push(OsString::from(flag));
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
