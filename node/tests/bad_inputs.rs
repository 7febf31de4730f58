//! A battery of bad requests: every one is a 4xx JSON error, and none stores or charges anything.

mod common;

use common::{client, Relay, KEY};
use futures::stream;
use serde_json::Value;

struct Case {
    name: &'static str,
    method: &'static str,
    path: String,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
    status: u16,
    code: &'static str,
}

fn store_case(
    name: &'static str,
    headers: &[(&'static str, &str)],
    body: &[u8],
    status: u16,
    code: &'static str,
) -> Case {
    Case {
        name,
        method: "POST",
        path: "/api/store".into(),
        headers: headers.iter().map(|(k, v)| (*k, v.to_string())).collect(),
        body: body.to_vec(),
        status,
        code,
    }
}

fn get_case(name: &'static str, path: &str, auth: bool, status: u16, code: &'static str) -> Case {
    let headers = if auth {
        vec![("authorization", format!("Bearer {KEY}"))]
    } else {
        vec![]
    };
    Case {
        name,
        method: "GET",
        path: path.into(),
        headers,
        body: vec![],
        status,
        code,
    }
}

fn admin(
    name: &'static str,
    method: &'static str,
    path: &str,
    secret: Option<&str>,
    body: &str,
    status: u16,
    code: &'static str,
) -> Case {
    let headers = secret
        .map(|s| vec![("x-cluster-secret", s.to_string())])
        .unwrap_or_default();
    Case {
        name,
        method,
        path: path.into(),
        headers,
        body: body.as_bytes().to_vec(),
        status,
        code,
    }
}

fn cases() -> Vec<Case> {
    let auth = format!("Bearer {KEY}");
    let ok = |extra: &[(&'static str, &'static str)]| -> Vec<(&'static str, String)> {
        let mut h: Vec<(&'static str, String)> = vec![
            ("authorization", auth.clone()),
            ("x-file-name", "f.txt".into()),
            ("x-size-bytes", "5".into()),
            ("x-duration-seconds", "60".into()),
        ];
        for (k, v) in extra {
            h.retain(|(hk, _)| hk != k);
            if !v.is_empty() {
                h.push((k, v.to_string()));
            }
        }
        h
    };
    let with = |name, extra: &[(&'static str, &'static str)], status, code| Case {
        name,
        method: "POST",
        path: "/api/store".into(),
        headers: ok(extra),
        body: b"hello".to_vec(),
        status,
        code,
    };
    vec![
        store_case("no credentials", &[("x-file-name", "f"), ("x-size-bytes", "5"), ("x-duration-seconds", "60")], b"hello", 401, "unauthorized"),
        with("basic auth", &[("authorization", "Basic dXNlcjpwYXNz")], 401, "unauthorized"),
        with("malformed key", &[("authorization", "Bearer nope")], 401, "unauthorized"),
        with("unknown key", &[("authorization", "Bearer rs_live_00000000000000000000000000")], 401, "unauthorized"),
        with("missing size", &[("x-size-bytes", "")], 400, "missing_header"),
        with("size not a number", &[("x-size-bytes", "five")], 400, "invalid_header"),
        with("negative size", &[("x-size-bytes", "-5")], 400, "invalid_header"),
        with("fractional size", &[("x-size-bytes", "5.0")], 400, "invalid_header"),
        with("absurd size", &[("x-size-bytes", "99999999999999999999999999")], 400, "invalid_header"),
        with("size over the maximum", &[("x-size-bytes", "1048577")], 413, "payload_too_large"),
        with("size larger than body", &[("x-size-bytes", "10")], 400, "size_mismatch"),
        with("size smaller than body", &[("x-size-bytes", "3")], 400, "size_mismatch"),
        with("missing duration", &[("x-duration-seconds", "")], 400, "missing_header"),
        with("zero duration", &[("x-duration-seconds", "0")], 422, "invalid_value"),
        with("duration over the maximum", &[("x-duration-seconds", "999999999999")], 422, "invalid_value"),
        with("duration not a number", &[("x-duration-seconds", "1h")], 400, "invalid_header"),
        with("missing file name", &[("x-file-name", "")], 400, "missing_header"),
        with("path in file name", &[("x-file-name", "../etc/passwd")], 400, "invalid_header"),
        with("dot-dot file name", &[("x-file-name", "..")], 400, "invalid_header"),
        with("bad content type", &[("content-type", "not a type")], 400, "invalid_header"),
        with("overlong idempotency key", &[("idempotency-key", "kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk")], 400, "invalid_header"),
        get_case("download without credentials", "/api/download/lse_01HX0000000000000000000000", false, 401, "unauthorized"),
        get_case("download of malformed id", "/api/download/lse_bogus", true, 404, "not_found"),
        get_case("download of traversal id", "/api/download/..%2F..%2Fetc%2Fpasswd", true, 404, "not_found"),
        get_case("download of unknown id", "/api/download/lse_01HX0000000000000000000000", true, 404, "not_found"),
        get_case("list limit zero", "/api/leases?limit=0", true, 422, "invalid_value"),
        get_case("list limit not a number", "/api/leases?limit=ten", true, 422, "invalid_value"),
        get_case("list limit over the page maximum", "/api/leases?limit=100000", true, 422, "invalid_value"),
        get_case("list cursor garbage", "/api/leases?cursor=zz", true, 400, "bad_request"),
        get_case("list repeated parameter", "/api/leases?limit=1&limit=2", true, 400, "bad_request"),
        get_case("quote without parameters", "/api/quote", false, 400, "bad_request"),
        get_case("quote negative size", "/api/quote?size_bytes=-1&duration_seconds=60", false, 400, "bad_request"),
        get_case("quote zero duration", "/api/quote?size_bytes=1&duration_seconds=0", false, 422, "invalid_value"),
        get_case("quote absurd size", "/api/quote?size_bytes=18446744073709551615&duration_seconds=60", false, 413, "payload_too_large"),
        get_case("unknown route", "/api/nope", false, 404, "not_found"),
        Case { name: "wrong method", method: "PUT", path: "/api/store".into(), headers: vec![], body: vec![], status: 405, code: "method_not_allowed" },
        admin("cluster status without a secret", "GET", "/cluster/status", None, "", 401, "unauthorized"),
        admin("cluster status with a wrong secret", "GET", "/cluster/status", Some("wrong-secret"), "", 401, "unauthorized"),
        admin("promote with malformed JSON", "POST", "/cluster/promote", Some(common::SECRET), "{", 400, "bad_request"),
        admin("promote an unknown node", "POST", "/cluster/promote", Some(common::SECRET), r#"{"node_id":9}"#, 404, "not_found"),
        admin("remove an unknown node", "POST", "/cluster/remove", Some(common::SECRET), r#"{"node_id":9}"#, 404, "not_found"),
        admin("join with node id zero", "POST", "/cluster/join", Some(common::SECRET), r#"{"node_id":0,"raft_addr":"127.0.0.1:1","http_addr":"x"}"#, 422, "invalid_value"),
        admin("join with a bad address", "POST", "/cluster/join", Some(common::SECRET), r#"{"node_id":2,"raft_addr":"nowhere","http_addr":"x"}"#, 422, "invalid_value"),
        Case {
            name: "delete unknown lease",
            method: "DELETE",
            path: "/api/store/lse_01HX0000000000000000000000".into(),
            headers: vec![("authorization", auth.clone())],
            body: vec![],
            status: 404,
            code: "not_found",
        },
    ]
}

async fn assert_nothing_stored(relay: &Relay, http: &reqwest::Client) {
    let list = relay.leases(&http).await;
    assert_eq!(list["count"], 0, "a bad request stored a lease: {list}");
    assert!(
        common::files_under(&relay.objects_dir()).is_empty(),
        "a bad request left bytes behind"
    );
}

/// Every case answers its status with the JSON error shape and a stable code.
#[tokio::test]
async fn bad_requests_are_clear_4xx_json_and_store_nothing() {
    let relay = Relay::start(&[
        "--max-object-bytes",
        "1048576",
        "--max-duration-seconds",
        "86400",
        "--cluster-secret",
        common::SECRET,
    ]);
    let http = client();
    let mut failures = Vec::new();
    for case in cases() {
        let mut req = http.request(case.method.parse().unwrap(), relay.url(&case.path));
        for (k, v) in &case.headers {
            req = req.header(*k, v);
        }
        let resp = req.body(case.body.clone()).send().await.unwrap();
        let status = resp.status().as_u16();
        let is_json = resp
            .headers()
            .get("content-type")
            .is_some_and(|v| v.to_str().unwrap().starts_with("application/json"));
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        let has_message = body["error"]["message"].as_str().is_some_and(|m| !m.is_empty());
        if status != case.status
            || !is_json
            || !has_message
            || body["status"] != "error"
            || body["error"]["code"] != case.code
        {
            failures.push(format!(
                "{}: got {status} {body}, want {} {}",
                case.name, case.status, case.code
            ));
        }
    }
    assert!(failures.is_empty(), "failures:\n{}", failures.join("\n"));
    assert_nothing_stored(&relay, &http).await;
}

/// A chunked body (no Content-Length) that runs past X-Size-Bytes is cut off mid-stream, and one
/// that falls short is refused at the end; neither leaves bytes or a lease.
#[tokio::test]
async fn streamed_size_lies_are_caught() {
    let relay = Relay::start(&[]);
    let http = client();
    for (declared, chunks) in [
        (10u64, vec![vec![1u8; 8], vec![2u8; 8]]),
        (100, vec![vec![3u8; 8], vec![4u8; 8]]),
    ] {
        let body = reqwest::Body::wrap_stream(stream::iter(chunks.into_iter().map(Ok::<_, std::io::Error>)));
        let resp = http
            .post(relay.url("/api/store"))
            .header("authorization", relay.auth())
            .header("x-file-name", "lie.bin")
            .header("x-size-bytes", declared.to_string())
            .header("x-duration-seconds", "60")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400, "declared {declared}");
        let json: Value = resp.json().await.unwrap();
        assert_eq!(json["error"]["code"], "size_mismatch");
    }
    assert_nothing_stored(&relay, &http).await;
}
