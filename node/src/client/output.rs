//! What people read: tables and `key: value` lines; and the sizes and durations they type.

use serde_json::Value;

use super::http::CliError;

/// `90s`, `30m`, `1h`, `7d`, `2w`, or plain seconds.
pub fn parse_duration(text: &str) -> Result<u64, CliError> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (n, unit) = t.split_at(split);
    let n: u64 = n
        .parse()
        .map_err(|_| CliError::Usage(format!("{text:?}: a duration is a number and a unit: 90s, 30m, 1h, 7d")))?;
    let scale = match unit.trim() {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        "w" => 604_800,
        other => {
            return Err(CliError::Usage(format!(
                "{text:?}: unknown unit {other:?} (s, m, h, d, w)"
            )))
        }
    };
    n.checked_mul(scale)
        .ok_or_else(|| CliError::Usage(format!("{text:?}: too long")))
}

/// `1024`, `64KiB`, `1MiB`, `2GiB`, `500MB`, `1kB`.
pub fn parse_size(text: &str) -> Result<u64, CliError> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (n, unit) = t.split_at(split);
    let n: u64 = n.parse().map_err(|_| {
        CliError::Usage(format!(
            "{text:?}: a size is a number and a unit: 1024, 64KiB, 1MiB, 1GB"
        ))
    })?;
    let scale: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" | "k" => 1_000,
        "mb" | "m" => 1_000_000,
        "gb" | "g" => 1_000_000_000,
        "tb" | "t" => 1_000_000_000_000,
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        "tib" => 1 << 40,
        other => return Err(CliError::Usage(format!("{text:?}: unknown unit {other:?}"))),
    };
    n.checked_mul(scale)
        .ok_or_else(|| CliError::Usage(format!("{text:?}: too big")))
}

/// `1.5 MiB`.
pub fn human_bytes(n: u64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < units.len() {
        v /= 1024.0;
        unit += 1;
    }
    match unit {
        0 => format!("{n} B"),
        _ => format!("{v:.1} {}", units[unit]),
    }
}

/// A JSON value as a table cell: strings bare, null as `-`.
pub fn cell_str(v: &Value) -> String {
    cell(v)
}

fn cell(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => super::http::printable(s),
        other => other.to_string(),
    }
}

/// A table: a header row and aligned columns.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let padded: Vec<String> = cells.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
        padded.join("  ").trim_end().to_string()
    };
    let mut out = vec![line(headers.iter().map(|h| h.to_string()).collect())];
    out.extend(rows.iter().map(|r| line(r.clone())));
    out.join("\n")
}

/// The objects in `v[key]` as a table: one column per `(header, field)`.
pub fn list(v: &Value, key: &str, columns: &[(&str, &str)]) -> String {
    let rows: Vec<Vec<String>> = v[key]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[])
        .iter()
        .map(|item| columns.iter().map(|(_, field)| cell(&item[*field])).collect())
        .collect();
    let headers: Vec<&str> = columns.iter().map(|(h, _)| *h).collect();
    table(&headers, &rows)
}

/// The caller's leases as a table.
pub fn leases(leases: &[Value]) -> String {
    let rows: Vec<Vec<String>> = leases
        .iter()
        .map(|l| {
            let size = l["size_bytes"].as_u64().or(l["capacity_bytes"].as_u64());
            let name = match l["kind"].as_str() {
                Some("storage") => cell(&l["file_name"]),
                Some("checkpoint") => cell(&l["workflow_id"]),
                Some("mailbox") => format!("{} messages", l["message_count"].as_u64().unwrap_or(0)),
                _ => cell(&l["write"]),
            };
            vec![
                cell(&l["lease_id"]),
                cell(&l["kind"]),
                cell(&l["status"]),
                size.map(human_bytes).unwrap_or_else(|| "-".into()),
                cell(&l["expires_at"]),
                name,
            ]
        })
        .collect();
    table(&["LEASE", "KIND", "STATUS", "SIZE", "EXPIRES", "NAME"], &rows)
}

/// An object's fields, one per line, in the API's order; nested values as compact JSON.
pub fn fields(v: &Value) -> String {
    match v.as_object() {
        Some(map) => {
            let width = map.keys().map(|k| k.len()).max().unwrap_or(0);
            map.iter()
                .filter(|(k, _)| k.as_str() != "status")
                .map(|(k, v)| format!("{k:<width$}  {}", cell(v)))
                .collect::<Vec<_>>()
                .join("\n")
        }
        None => cell(v),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_sizes_parse_as_people_write_them() {
        assert_eq!(parse_duration("90s").unwrap(), 90);
        assert_eq!(parse_duration("1h").unwrap(), 3600);
        assert_eq!(parse_duration("7d").unwrap(), 604_800);
        assert_eq!(parse_duration("120").unwrap(), 120);
        assert!(parse_duration("1y").is_err());
        assert!(parse_duration("h").is_err());
        assert!(parse_duration("99999999999999999999w").is_err());
        assert_eq!(parse_size("1MiB").unwrap(), 1 << 20);
        assert_eq!(parse_size("500MB").unwrap(), 500_000_000);
        assert_eq!(parse_size("2gib").unwrap(), 2 << 30);
        assert!(parse_size("1PB").is_err());
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(12), "12 B");
    }

    #[test]
    fn server_text_cannot_drive_the_terminal() {
        let hostile = Value::from("\u{1b}]0;PWNED\u{7}\u{1b}[31mok\r\n");
        let shown = cell_str(&hostile);
        assert!(!shown.chars().any(char::is_control), "{shown:?}");
        assert!(shown.contains("ok"));
    }

    #[test]
    fn tables_align() {
        let t = table(&["A", "LONGER"], &[vec!["xyz".into(), "1".into()]]);
        assert_eq!(t, "A    LONGER\nxyz  1");
    }
}
