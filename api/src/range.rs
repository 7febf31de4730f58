//! `Range: bytes=…` for downloads: one range is served as 206; anything this server does not
//! support (several ranges, other units, bad syntax) is ignored and the whole object is served,
//! as RFC 9110 allows.

use std::ops::Range;

use crate::error::ApiError;

/// `Ok(None)`: serve the whole object. `Ok(Some(r))`: serve `r`. `Err`: 416.
pub fn parse(header: Option<&str>, size: u64) -> Result<Option<Range<u64>>, ApiError> {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return Ok(None);
    };
    if spec.contains(',') || size == 0 {
        return Ok(None);
    }
    let Some((start, end)) = spec.trim().split_once('-') else {
        return Ok(None);
    };
    let num = |s: &str| -> Option<u64> {
        (!s.is_empty() && s.len() <= 20 && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    let range = match (start.trim(), end.trim()) {
        ("", suffix) => match num(suffix) {
            Some(0) => return Err(ApiError::RangeNotSatisfiable { size }),
            Some(n) => size.saturating_sub(n)..size,
            None => return Ok(None),
        },
        (first, "") => match num(first) {
            Some(first) if first < size => first..size,
            Some(_) => return Err(ApiError::RangeNotSatisfiable { size }),
            None => return Ok(None),
        },
        (first, last) => match (num(first), num(last)) {
            (Some(first), Some(last)) if first <= last => {
                if first >= size {
                    return Err(ApiError::RangeNotSatisfiable { size });
                }
                first..last.saturating_add(1).min(size)
            }
            _ => return Ok(None),
        },
    };
    Ok(Some(range))
}

/// The single range a header asks for, unresolved (the ledger resolves it against the content as
/// it stands at the read); `None` for no header or a form served whole, as [`parse`] ignores it.
pub fn spec(header: Option<&str>) -> Option<relay_raft::ops::RangeSpec> {
    use relay_raft::ops::RangeSpec;
    let spec = header?.trim().strip_prefix("bytes=")?;
    if spec.contains(',') {
        return None;
    }
    let (start, end) = spec.trim().split_once('-')?;
    let num = |s: &str| -> Option<u64> {
        (!s.is_empty() && s.len() <= 20 && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    match (start.trim(), end.trim()) {
        ("", suffix) => num(suffix).map(RangeSpec::Suffix),
        (first, "") => num(first).map(RangeSpec::From),
        (first, last) => match (num(first), num(last)) {
            (Some(first), Some(last)) if first <= last => Some(RangeSpec::FromTo(first, last)),
            _ => None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The three single-range forms, clamped to the object.
    #[test]
    fn single_ranges() {
        assert_eq!(parse(Some("bytes=0-9"), 100).unwrap(), Some(0..10));
        assert_eq!(parse(Some("bytes=90-"), 100).unwrap(), Some(90..100));
        assert_eq!(parse(Some("bytes=-5"), 100).unwrap(), Some(95..100));
        assert_eq!(parse(Some("bytes=-500"), 100).unwrap(), Some(0..100));
        assert_eq!(parse(Some("bytes=50-5000"), 100).unwrap(), Some(50..100));
    }

    /// Ranges past the end are 416; unsupported or malformed ones fall back to the whole object.
    #[test]
    fn unsatisfiable_and_ignored() {
        assert!(parse(Some("bytes=100-"), 100).is_err());
        assert!(parse(Some("bytes=100-200"), 100).is_err());
        assert!(parse(Some("bytes=-0"), 100).is_err());
        for ignored in [
            "items=0-1",
            "bytes=0-1,5-6",
            "bytes=5-1",
            "bytes=a-b",
            "bytes=",
            "bytes=--1",
        ] {
            assert_eq!(parse(Some(ignored), 100).unwrap(), None, "{ignored}");
        }
        assert_eq!(parse(None, 100).unwrap(), None);
        assert_eq!(parse(Some("bytes=0-1"), 0).unwrap(), None);
    }

    /// An unresolved range ignores exactly what `parse` ignores, and resolves as `parse` does.
    #[test]
    fn specs_agree_with_parse() {
        use relay_raft::sm::baton_reads::resolve;
        for h in [
            "bytes=0-9",
            "bytes=90-",
            "bytes=-5",
            "bytes=-500",
            "bytes=50-5000",
            "bytes=100-",
            "bytes=-0",
            "items=0-1",
            "bytes=0-1,5-6",
            "bytes=5-1",
            "bytes=a-b",
            "bytes=",
            "bytes=--1",
        ] {
            let parsed = parse(Some(h), 100).map(|r| r.map(|r| (r.start, r.end))).ok();
            let resolved = match spec(Some(h)) {
                None => Some(None),
                Some(s) => resolve(Some(s), 100).ok().map(Some),
            };
            assert_eq!(parsed, resolved, "{h}");
        }
    }
}
