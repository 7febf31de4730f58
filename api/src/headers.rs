//! Typed reading of request headers and query strings, with the error each bad value deserves.

use std::collections::HashMap;

use axum::http::HeaderMap;

use crate::error::{ApiError, ApiResult};

/// The header as visible ASCII text, if present.
pub fn optional_str<'a>(headers: &'a HeaderMap, name: &'static str) -> ApiResult<Option<&'a str>> {
    match headers.get(name) {
        None => Ok(None),
        Some(v) => v.to_str().map(|s| Some(s.trim())).map_err(|_| ApiError::InvalidHeader {
            name,
            reason: "must be visible ASCII".into(),
        }),
    }
}

pub fn required_str<'a>(headers: &'a HeaderMap, name: &'static str) -> ApiResult<&'a str> {
    optional_str(headers, name)?.ok_or(ApiError::MissingHeader(name))
}

/// A non-negative decimal integer: digits only, no sign, no spaces, fits in u64.
pub fn parse_u64(text: &str, name: &'static str) -> ApiResult<u64> {
    if text.is_empty() || text.len() > 20 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ApiError::InvalidHeader {
            name,
            reason: format!("{text:?} is not a non-negative integer"),
        });
    }
    text.parse::<u64>().map_err(|_| ApiError::InvalidHeader {
        name,
        reason: "too large".into(),
    })
}

pub fn required_u64(headers: &HeaderMap, name: &'static str) -> ApiResult<u64> {
    parse_u64(required_str(headers, name)?, name)
}

/// A lease duration within the configured bounds.
pub fn check_duration(seconds: u64, min: u64, max: u64) -> ApiResult<u64> {
    if seconds < min || seconds > max {
        return Err(ApiError::InvalidValue {
            field: "duration_seconds",
            reason: format!("{seconds} is outside the allowed range {min}..={max} seconds"),
        });
    }
    Ok(seconds)
}

/// A reserved size (a checkpoint's or a mailbox's): at least 1 (422), at most `limit` (413).
pub fn reservation(bytes: u64, field: &'static str, header: &'static str, limit: u64) -> ApiResult<u64> {
    if bytes == 0 {
        return Err(ApiError::InvalidValue {
            field,
            reason: "must be at least 1".into(),
        });
    }
    if bytes > limit {
        return Err(ApiError::TooLarge { what: header, limit });
    }
    Ok(bytes)
}

/// Parses a query string; a repeated parameter is an error rather than a silent pick.
pub fn query_map(raw: Option<&str>) -> ApiResult<HashMap<String, String>> {
    let mut out = HashMap::new();
    for (k, v) in form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
        if out.insert(k.to_string(), v.to_string()).is_some() {
            return Err(ApiError::BadRequest(format!("query parameter {k} given twice")));
        }
    }
    Ok(out)
}

/// A required non-negative integer query parameter.
pub fn query_u64(q: &HashMap<String, String>, name: &'static str) -> ApiResult<u64> {
    let text = q
        .get(name)
        .ok_or_else(|| ApiError::BadRequest(format!("missing query parameter {name}")))?;
    if text.is_empty() || text.len() > 20 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ApiError::BadRequest(format!(
            "query parameter {name}={text:?} is not a non-negative integer"
        )));
    }
    text.parse::<u64>()
        .map_err(|_| ApiError::BadRequest(format!("query parameter {name} is too large")))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Integers are digits only: signs, spaces, decimals and overflow are refused.
    #[test]
    fn integers_are_strict() {
        assert_eq!(parse_u64("42", "x").unwrap(), 42);
        for bad in [
            "",
            "-1",
            "+1",
            "1.5",
            " 1",
            "1e3",
            "0x10",
            "99999999999999999999",
            "184467440737095516160",
        ] {
            assert!(parse_u64(bad, "x").is_err(), "{bad:?} accepted");
        }
    }

    /// Repeated query parameters are refused instead of silently picking one.
    #[test]
    fn repeated_query_parameters_are_refused() {
        assert!(query_map(Some("a=1&a=2")).is_err());
        assert_eq!(query_map(Some("a=1&b=2")).unwrap().len(), 2);
    }
}
