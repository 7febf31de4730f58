//! A baton's shape as a client writes it (JSON, every group optional, a preconfig to prefill
//! them), resolved against the defaults and the node's ceilings into one [`Resolved`] value that
//! quotes and creates share.

use relay_raft::baton::{self, Disposal, Scope, Shape, WriteKind};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::{ApiError, ApiResult};
use crate::headers::check_duration;
use crate::state::AppState;

/// The five preconfigs, by name.
pub const PRECONFIGS: &[&str] = &["drop", "pass", "scratchpad", "checkpoint", "ledger"];
/// When no capacity says otherwise.
const DEFAULT_SIZE_BYTES: u64 = 1 << 20;
const DEFAULT_DURATION_SECONDS: u64 = 86_400;
/// The read budget by default: ten full reads of the size.
const DEFAULT_EGRESS_READS: u64 = 10;
const DEFAULT_GRACE_SECONDS: u64 = 3600;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShapeBody {
    pub preconfig: Option<String>,
    pub write: Option<String>,
    pub capacity: Option<Capacity>,
    pub sharing: Option<Sharing>,
    pub lifecycle: Option<Lifecycle>,
    pub trust: Option<Trust>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Capacity {
    pub size_bytes: Option<u64>,
    pub duration_seconds: Option<u64>,
    pub egress_bytes: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sharing {
    pub tokens: Vec<TokenSpec>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenSpec {
    pub scope: String,
    pub read_cap: Option<u32>,
    pub ttl_seconds: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lifecycle {
    pub burn_after_reading: Option<bool>,
    pub disposal: Option<String>,
    pub grace_seconds: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Trust {
    pub witness: Option<bool>,
}

/// A token to issue, checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TokenShape {
    pub scope: Scope,
    pub read_cap: Option<u32>,
    pub ttl_seconds: Option<u64>,
}

/// Every value of a shape, resolved and checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolved {
    pub preconfig: Option<String>,
    pub shape: Shape,
    pub tokens: Vec<TokenShape>,
}

fn invalid(field: &'static str, reason: impl Into<String>) -> ApiError {
    ApiError::InvalidValue {
        field,
        reason: reason.into(),
    }
}

/// Resolves `body` by its preconfig, then every value given, then the defaults; checks every
/// value against the node's ceilings.
pub fn resolve(state: &AppState, body: ShapeBody) -> ApiResult<Resolved> {
    let cfg = &state.config;
    let limits = &cfg.baton;
    // The preconfig's prefill: write kind, tokens, burn, witness.
    let (mut write, mut tokens, mut burn, mut witness) = (WriteKind::Single, Vec::new(), false, None);
    if let Some(name) = &body.preconfig {
        match name.as_str() {
            "drop" => {}
            "pass" => {
                tokens.push(TokenShape {
                    scope: Scope::Read,
                    read_cap: Some(1),
                    ttl_seconds: None,
                });
                burn = true;
            }
            "scratchpad" => {
                write = WriteKind::Append;
                tokens.push(TokenShape {
                    scope: Scope::ReadWrite,
                    read_cap: None,
                    ttl_seconds: None,
                });
            }
            "checkpoint" => write = WriteKind::Overwrite,
            "ledger" => {
                write = WriteKind::AppendChained;
                witness = Some(true);
            }
            other => {
                return Err(invalid(
                    "preconfig",
                    format!("unknown preconfig {other:?}; one of {}", PRECONFIGS.join(", ")),
                ))
            }
        }
    }
    if let Some(name) = &body.write {
        write = WriteKind::parse(name).ok_or_else(|| {
            invalid(
                "write",
                format!("unknown write kind {name:?}; one of single, append, append_chained, overwrite"),
            )
        })?;
    }
    let capacity = body.capacity.unwrap_or_default();
    let size_bytes = capacity.size_bytes.unwrap_or(DEFAULT_SIZE_BYTES);
    if !(1..=limits.max_size_bytes).contains(&size_bytes) {
        return Err(invalid(
            "capacity.size_bytes",
            format!("must be 1 to {}", limits.max_size_bytes),
        ));
    }
    let duration_seconds = capacity.duration_seconds.unwrap_or(DEFAULT_DURATION_SECONDS);
    check_duration(duration_seconds, cfg.min_duration_seconds, cfg.max_duration_seconds)?;
    let egress_bytes = capacity.egress_bytes.unwrap_or(
        size_bytes
            .saturating_mul(DEFAULT_EGRESS_READS)
            .min(limits.max_egress_bytes),
    );
    if egress_bytes > limits.max_egress_bytes {
        return Err(invalid(
            "capacity.egress_bytes",
            format!("must be at most {}", limits.max_egress_bytes),
        ));
    }
    if let Some(sharing) = body.sharing {
        tokens = token_shapes(state, &sharing.tokens)?;
    }
    let lifecycle = body.lifecycle.unwrap_or_default();
    if let Some(b) = lifecycle.burn_after_reading {
        burn = b;
    }
    let disposal = disposal(lifecycle.disposal.as_deref(), lifecycle.grace_seconds)?.unwrap_or(Disposal::Soft {
        grace_seconds: DEFAULT_GRACE_SECONDS,
    });
    if let Some(w) = body.trust.and_then(|t| t.witness) {
        witness = Some(w);
    }
    let witness = match (write, witness) {
        (WriteKind::AppendChained, Some(false)) => {
            return Err(invalid("trust.witness", "an append_chained baton is always witnessed"))
        }
        (WriteKind::AppendChained, _) => true,
        (_, w) => w.unwrap_or(false),
    };
    Ok(Resolved {
        preconfig: body.preconfig,
        shape: Shape {
            write,
            size_bytes,
            duration_seconds,
            egress_bytes,
            burn_after_reading: burn,
            disposal,
            witness,
        },
        tokens,
    })
}

/// A disposal as asked: `soft` (with `grace_seconds`, one hour by default), `hard` (no grace), or
/// `None` when neither is given.
pub fn disposal(name: Option<&str>, grace: Option<u64>) -> ApiResult<Option<Disposal>> {
    let grace_seconds = match (name, grace) {
        (None, None) => return Ok(None),
        (Some("hard"), None) => return Ok(Some(Disposal::Hard)),
        (Some("hard"), Some(_)) => return Err(invalid("lifecycle.grace_seconds", "applies to a soft disposal only")),
        (None | Some("soft"), grace) => grace.unwrap_or(DEFAULT_GRACE_SECONDS),
        (Some(other), _) => {
            return Err(invalid(
                "lifecycle.disposal",
                format!("unknown disposal {other:?}; soft or hard"),
            ))
        }
    };
    if !(1..=baton::GRACE_MAX_SECONDS).contains(&grace_seconds) {
        return Err(invalid(
            "lifecycle.grace_seconds",
            format!("must be 1 to {}", baton::GRACE_MAX_SECONDS),
        ));
    }
    Ok(Some(Disposal::Soft { grace_seconds }))
}

/// Checks token requests against the node's ceilings.
pub fn token_shapes(state: &AppState, specs: &[TokenSpec]) -> ApiResult<Vec<TokenShape>> {
    let max = state.config.baton.max_tokens;
    if specs.len() > max as usize {
        return Err(invalid("sharing.tokens", format!("at most {max} tokens per baton")));
    }
    specs
        .iter()
        .map(|t| {
            let scope = Scope::parse(&t.scope).ok_or_else(|| {
                invalid(
                    "scope",
                    format!("unknown scope {:?}; read, write or read_write", t.scope),
                )
            })?;
            if t.read_cap == Some(0) {
                return Err(invalid("read_cap", "must be at least 1"));
            }
            if t.read_cap.is_some() && !scope.reads() {
                return Err(invalid("read_cap", "a write token makes no reads"));
            }
            if let Some(ttl) = t.ttl_seconds {
                if !(1..=state.config.max_duration_seconds).contains(&ttl) {
                    return Err(invalid(
                        "ttl_seconds",
                        format!("must be 1 to {}", state.config.max_duration_seconds),
                    ));
                }
            }
            Ok(TokenShape {
                scope,
                read_cap: t.read_cap,
                ttl_seconds: t.ttl_seconds,
            })
        })
        .collect()
}

/// The price of a shape by the prices this node has applied.
pub fn price(state: &AppState, shape: &Shape) -> ApiResult<u64> {
    let reader = state.ledger.reader();
    Ok(baton::price(&reader.pricing()?, &reader.baton_rates()?, shape))
}

/// A shape as answers show it.
pub fn render(preconfig: Option<&str>, shape: &Shape, tokens: &[Value]) -> Value {
    let (disposal, grace) = match shape.disposal {
        Disposal::Soft { grace_seconds } => ("soft", Some(grace_seconds)),
        Disposal::Hard => ("hard", None),
    };
    json!({
        "preconfig": preconfig,
        "write": shape.write.name(),
        "capacity": {
            "size_bytes": shape.size_bytes,
            "duration_seconds": shape.duration_seconds,
            "egress_bytes": shape.egress_bytes,
        },
        "sharing": {"tokens": tokens},
        "lifecycle": {
            "burn_after_reading": shape.burn_after_reading,
            "disposal": disposal,
            "grace_seconds": grace,
        },
        "trust": {"witness": shape.witness},
    })
}

pub fn render_token_shape(t: &TokenShape) -> Value {
    json!({"scope": t.scope.name(), "read_cap": t.read_cap, "ttl_seconds": t.ttl_seconds})
}
