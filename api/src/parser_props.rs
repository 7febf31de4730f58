//! Every parser of client input, fed arbitrary bytes: none may panic, and each either accepts or
//! answers a 4xx error (never a 5xx).

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use proptest::prelude::*;

use crate::error::ApiError;
use crate::{checkpoint, handoff, headers, idempotency, ids, range, store, webhook};

/// Header names the API reads.
const NAMES: &[&str] = &[
    "authorization",
    "content-type",
    "content-length",
    "x-file-name",
    "x-size-bytes",
    "x-duration-seconds",
    "x-workflow-id",
    "x-max-body-bytes",
    "x-capacity-bytes",
    "x-max-message-bytes",
    "x-max-messages",
    "x-keep-on-read",
    "x-webhook-url",
    "x-webhook-secret",
    "idempotency-key",
    "if-match",
    "if-none-match",
    "range",
];

fn client_error(e: &ApiError) -> bool {
    e.status().is_client_error()
}

/// Bytes that may travel in a header value (what the HTTP parser lets through).
fn header_values() -> impl Strategy<Value = HeaderValue> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..300),
        "[ -~]{0,80}".prop_map(String::into_bytes),
        "[0-9]{0,30}".prop_map(String::into_bytes),
        "\\PC{0,40}".prop_map(String::into_bytes),
    ]
    .prop_filter_map("not a header value", |b| HeaderValue::from_bytes(&b).ok())
}

fn header_maps() -> impl Strategy<Value = HeaderMap> {
    proptest::collection::vec((proptest::sample::select(NAMES), header_values()), 0..8).prop_map(|pairs| {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(HeaderName::from_static(name), value);
        }
        map
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Header parsers: values of any bytes give a value or a 4xx error.
    #[test]
    fn header_parsers_never_panic(map in header_maps(), size in any::<u64>()) {
        for name in NAMES {
            if let Err(e) = headers::optional_str(&map, name) {
                prop_assert!(client_error(&e));
            }
            if let Err(e) = headers::required_u64(&map, name) {
                prop_assert!(client_error(&e));
            }
        }
        for r in [
            store::file_name(&map).map(|_| ()),
            store::content_type(&map).map(|_| ()),
            checkpoint::if_match(&map).map(|_| ()),
            checkpoint::workflow_id_header(&map).map(|_| ()),
            idempotency::header(&map).map(|_| ()),
            range::parse(headers::optional_str(&map, "range").ok().flatten(), size).map(|_| ()),
        ] {
            if let Err(e) = r {
                prop_assert!(client_error(&e), "{e:?}");
            }
        }
        let _ = checkpoint::if_none_match(&map, size);
    }

    /// Query strings of any text parse to a map or a 4xx, and numbers in them likewise.
    #[test]
    fn query_parsers_never_panic(raw in "\\PC{0,200}", bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let lossy = String::from_utf8_lossy(&bytes).into_owned();
        for q in [raw.as_str(), lossy.as_str()] {
            match headers::query_map(Some(q)) {
                Ok(map) => {
                    for name in ["limit", "cursor", "size_bytes", "duration_seconds", "consume"] {
                        if let Err(e) = headers::query_u64(&map, name) {
                            prop_assert!(client_error(&e));
                        }
                    }
                }
                Err(e) => prop_assert!(client_error(&e)),
            }
        }
    }

    /// Path parameters and tokens of any text are judged by shape alone.
    #[test]
    fn path_shapes_never_panic(text in "\\PC{0,120}") {
        let _ = ids::is_lease_id(&text);
        let _ = checkpoint::is_workflow_id(&text);
        let _ = handoff::is_token(&text);
        let _ = handoff::is_handoff_id(&text);
        let _ = crate::auth::is_well_formed_key(&text);
        let _ = crate::auth::is_well_formed_admin_key(&text);
        let _ = webhook::secret_key(&text);
        let _ = webhook::host_of(&text);
        let _ = text.parse::<crate::ssrf::Cidr>();
    }
}
