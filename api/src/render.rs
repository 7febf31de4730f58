//! How ledger values look in JSON: timestamps, durations, money, leases.

use chrono::{DateTime, SecondsFormat, Utc};
use relay_raft::{Lease, LeaseKind, LeaseState};
use serde_json::{json, Value};

/// `2026-04-19T22:00:00.000Z`.
pub fn timestamp(ms: u64) -> String {
    let ms = i64::try_from(ms).unwrap_or(i64::MAX);
    DateTime::<Utc>::from_timestamp_millis(ms)
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
        .to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// `1.0 hour`, `2.5 days`, `90.0 seconds` → the largest unit that is at least one.
pub fn duration_human(seconds: u64) -> String {
    let units = [(86_400u64, "day"), (3_600, "hour"), (60, "minute"), (1, "second")];
    let (size, name) = units
        .iter()
        .copied()
        .find(|(size, _)| seconds >= *size)
        .unwrap_or((1, "second"));
    let value = seconds as f64 / size as f64;
    let plural = if (value - 1.0).abs() < f64::EPSILON { "" } else { "s" };
    format!("{value:.1} {name}{plural}")
}

/// `item` (a JSON object) with a message's bytes added: as `data` when they are one JSON value
/// (copied as they are, never parsed into a tree, which would take many times their size), else
/// as `data_base64`; nothing is added for `None`.
pub fn with_data(item: Value, bytes: Option<&[u8]>) -> String {
    let mut out = item.to_string();
    let Some(bytes) = bytes else {
        return out;
    };
    debug_assert!(out.ends_with('}'));
    out.pop();
    let sep = if out.len() > 1 { "," } else { "" };
    if serde_json::from_slice::<serde::de::IgnoredAny>(bytes).is_ok() {
        out.push_str(sep);
        out.push_str("\"data\":");
        // A valid JSON text is UTF-8; a lossy copy changes nothing.
        out.push_str(&String::from_utf8_lossy(bytes));
    } else {
        use base64::Engine;
        out.push_str(sep);
        out.push_str("\"data_base64\":\"");
        out.push_str(&base64::engine::general_purpose::STANDARD.encode(bytes));
        out.push('"');
    }
    out.push('}');
    out
}

pub fn usdc(micros: u64) -> f64 {
    micros as f64 / 1_000_000.0
}

/// A lease as its owner sees it in listings.
pub fn lease(lease: &Lease, now_ms: u64) -> Value {
    let mut v = json!({
        "lease_id": lease.lease_id,
        "ledger_id": lease.ledger_id,
        "kind": lease.kind.name(),
        "status": lease.status_at(now_ms),
        "created_at": timestamp(lease.created_at_ms),
        "expires_at": timestamp(lease.expires_at_ms),
        "duration_seconds": lease.duration_seconds,
        "duration_human": duration_human(lease.duration_seconds),
        "cost_micros": lease.cost_micros.to_string(),
        "paid_usdc": usdc(lease.cost_micros),
        "access_count": lease.access_count,
        "access_history": lease.recent_access.iter().map(|a| json!({
            "at": timestamp(a.at_ms),
            "actor": a.actor,
        })).collect::<Vec<_>>(),
    });
    match lease.state {
        LeaseState::Deleted { at_ms } => v["deleted_at"] = json!(timestamp(at_ms)),
        LeaseState::Expired { at_ms } => v["expired_at"] = json!(timestamp(at_ms)),
        LeaseState::Active if now_ms >= lease.expires_at_ms => v["expired_at"] = json!(timestamp(lease.expires_at_ms)),
        LeaseState::Active => {}
    }
    match &lease.kind {
        LeaseKind::Storage {
            object_key,
            file_name,
            content_type,
            size_bytes,
            blake3_hex,
        } => {
            v["object_key"] = json!(object_key);
            v["file_name"] = json!(file_name);
            v["content_type"] = json!(content_type);
            v["size_bytes"] = json!(size_bytes);
            v["blake3"] = json!(blake3_hex);
        }
        LeaseKind::Checkpoint(c) => {
            v["workflow_id"] = json!(c.workflow_id);
            v["max_body_bytes"] = json!(c.max_body_bytes);
            v["version"] = json!(c.version);
            v["size_bytes"] = json!(c.body.size_bytes);
            v["updated_at"] = json!(timestamp(c.updated_at_ms));
        }
        // The drop token and webhook secret were shown once, at create, and never again.
        LeaseKind::Mailbox(mb) => {
            v["capacity_bytes"] = json!(mb.capacity_bytes);
            v["used_bytes"] = json!(mb.used_bytes);
            v["message_count"] = json!(mb.message_count);
            v["max_message_bytes"] = json!(mb.max_message_bytes);
            v["max_messages"] = json!(mb.max_messages);
            v["keep_on_read"] = json!(mb.keep_on_read);
            v["webhook_url"] = json!(mb.webhook.as_ref().map(|w| &w.url));
        }
        LeaseKind::Baton(b) => {
            v["write"] = json!(b.write.name());
            v["size_bytes"] = json!(b.size_bytes);
            v["used_bytes"] = json!(b.used_bytes);
            v["version"] = json!(b.version);
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reference's receipt examples: one hour reads "1.0 hour".
    #[test]
    fn durations_read_like_the_reference() {
        assert_eq!(duration_human(3600), "1.0 hour");
        assert_eq!(duration_human(7200), "2.0 hours");
        assert_eq!(duration_human(60), "1.0 minute");
        assert_eq!(duration_human(90), "1.5 minutes");
        assert_eq!(duration_human(86_400 * 7), "7.0 days");
        assert_eq!(duration_human(1), "1.0 second");
        assert_eq!(duration_human(0), "0.0 seconds");
    }

    /// Timestamps are UTC with milliseconds and a Z.
    #[test]
    fn timestamps_have_milliseconds() {
        assert_eq!(timestamp(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(timestamp(1_776_636_000_123), "2026-04-19T22:00:00.123Z");
        assert!(!timestamp(u64::MAX).is_empty());
    }

    /// Messages ride as their own JSON, or base64, and the result is one valid JSON object.
    #[test]
    fn data_is_spliced_not_parsed() {
        let item = json!({"id": "msg_1"});
        let v: Value = serde_json::from_str(&with_data(item.clone(), Some(br#" {"a": [1, 2]} "#))).unwrap();
        assert_eq!(v, json!({"id": "msg_1", "data": {"a": [1, 2]}}));
        let v: Value = serde_json::from_str(&with_data(item.clone(), Some(b"\xff{"))).unwrap();
        assert_eq!(v, json!({"id": "msg_1", "data_base64": "/3s="}));
        let v: Value = serde_json::from_str(&with_data(item.clone(), Some(b"1 2"))).unwrap();
        assert_eq!(v["data_base64"], "MSAy");
        assert_eq!(with_data(item, None), r#"{"id":"msg_1"}"#);
    }
}
