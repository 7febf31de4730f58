//! A battery of bad requests: every one is a 4xx JSON error, and none stores or charges anything.

mod common;

use common::{client, Relay, RelayExt, KEY};
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

/// `POST /v1/baton` (or another baton route) with the agents' key and a JSON body.
fn baton_case(
    name: &'static str,
    method: &'static str,
    path: &str,
    body: &str,
    status: u16,
    code: &'static str,
) -> Case {
    Case {
        name,
        method,
        path: path.into(),
        headers: vec![("authorization", format!("Bearer {KEY}"))],
        body: body.as_bytes().to_vec(),
        status,
        code,
    }
}

// One case a line: a table reads better than rustfmt's one argument a line.
#[rustfmt::skip]
fn baton_cases() -> Vec<Case> {
    let create = |name, body: &str, status, code| baton_case(name, "POST", "/v1/baton", body, status, code);
    let quote = |name, body: &str, status, code| Case {
        headers: vec![],
        ..baton_case(name, "POST", "/v1/baton/quote", body, status, code)
    };
    let tokens101 = format!(
        r#"{{"sharing":{{"tokens":[{}]}}}}"#,
        vec![r#"{"scope":"read"}"#; 101].join(",")
    );
    let unknown = "btn_01HX0000000000000000000000";
    vec![
        create("baton: not JSON", "{", 400, "invalid_json"),
        create("baton: not an object", "[1]", 400, "invalid_json"),
        create("baton: an unknown field", r#"{"colour":"red"}"#, 400, "invalid_json"),
        create("baton: unknown preconfig", r#"{"preconfig":"vault"}"#, 422, "invalid_value"),
        create("baton: unknown write kind", r#"{"write":"prepend"}"#, 422, "invalid_value"),
        create("baton: negative size", r#"{"capacity":{"size_bytes":-1}}"#, 400, "invalid_json"),
        create("baton: zero size", r#"{"capacity":{"size_bytes":0}}"#, 422, "invalid_value"),
        create("baton: huge size", r#"{"capacity":{"size_bytes":18446744073709551615}}"#, 422, "invalid_value"),
        create("baton: size past u64", r#"{"capacity":{"size_bytes":99999999999999999999999}}"#, 400, "invalid_json"),
        create("baton: fractional duration", r#"{"capacity":{"duration_seconds":1.5}}"#, 400, "invalid_json"),
        create("baton: zero duration", r#"{"capacity":{"duration_seconds":0}}"#, 422, "invalid_value"),
        create("baton: duration past the maximum", r#"{"capacity":{"duration_seconds":999999999}}"#, 422, "invalid_value"),
        create("baton: huge egress", r#"{"capacity":{"egress_bytes":18446744073709551615}}"#, 422, "invalid_value"),
        create("baton: 101 tokens", &tokens101, 422, "invalid_value"),
        create("baton: unknown scope", r#"{"sharing":{"tokens":[{"scope":"admin"}]}}"#, 422, "invalid_value"),
        create("baton: zero read cap", r#"{"sharing":{"tokens":[{"scope":"read","read_cap":0}]}}"#, 422, "invalid_value"),
        create("baton: read cap on a write token", r#"{"sharing":{"tokens":[{"scope":"write","read_cap":2}]}}"#, 422, "invalid_value"),
        create("baton: negative token ttl", r#"{"sharing":{"tokens":[{"scope":"read","ttl_seconds":-5}]}}"#, 400, "invalid_json"),
        create("baton: unknown disposal", r#"{"lifecycle":{"disposal":"shred"}}"#, 422, "invalid_value"),
        create("baton: grace on a hard disposal", r#"{"lifecycle":{"disposal":"hard","grace_seconds":5}}"#, 422, "invalid_value"),
        create("baton: zero grace", r#"{"lifecycle":{"grace_seconds":0}}"#, 422, "invalid_value"),
        create("baton: an unwitnessed ledger", r#"{"preconfig":"ledger","trust":{"witness":false}}"#, 422, "invalid_value"),
        create("baton: content not base64", r#"{"content_base64":"***"}"#, 422, "invalid_value"),
        create("baton: content larger than its size", r#"{"capacity":{"size_bytes":2},"content_base64":"aGVsbG8="}"#, 413, "payload_too_large"),
        create("baton: binary in a text log", r#"{"write":"append","content_base64":"//79"}"#, 422, "invalid_value"),
        create("baton: a first write over 3 MiB", r#"{"content_size_bytes":3145729}"#, 413, "payload_too_large"),
        create("baton: a size that disagrees with the content", r#"{"content_base64":"aGVsbG8=","content_size_bytes":4}"#, 422, "invalid_value"),
        create("baton: a content type with a newline", r#"{"content_type":"a\nb"}"#, 422, "invalid_value"),
        Case { headers: vec![], ..create("baton: no credentials", r#"{"preconfig":"drop"}"#, 401, "unauthorized") },
        quote("baton quote: unknown preconfig", r#"{"preconfig":"vault"}"#, 422, "invalid_value"),
        quote("baton quote: content is not a shape", r#"{"content_base64":"aGk="}"#, 400, "invalid_json"),
        quote("baton quote: 101 tokens", &tokens101, 422, "invalid_value"),
        baton_case("baton: read an unknown baton", "GET", &format!("/v1/baton/{unknown}"), "", 404, "not_found"),
        baton_case("baton: a baton id of the wrong shape", "GET", "/v1/baton/lse_01HX0000000000000000000000", "", 404, "not_found"),
        baton_case("baton: append to an unknown baton", "POST", &format!("/v1/baton/{unknown}/entries"), "x", 404, "not_found"),
        baton_case("baton: an entry that is not a number", "GET", &format!("/v1/baton/{unknown}/entries/first"), "", 404, "not_found"),
        baton_case("baton: entries limit zero", "GET", &format!("/v1/baton/{unknown}/entries?limit=0"), "", 422, "invalid_value"),
        baton_case("baton: entries after not a number", "GET", &format!("/v1/baton/{unknown}/entries?after=x"), "", 422, "invalid_value"),
        baton_case("baton: extend nothing", "POST", &format!("/v1/baton/{unknown}/extend"), r#"{"add_seconds":-1}"#, 400, "invalid_json"),
        baton_case("baton: hard=maybe", "DELETE", &format!("/v1/baton/{unknown}?hard=maybe"), "", 422, "invalid_value"),
        baton_case("baton: tokens without a scope", "POST", &format!("/v1/baton/{unknown}/tokens"), "{}", 422, "invalid_value"),
        Case {
            headers: vec![("authorization", format!("Bearer bt_{}", "0".repeat(40)))],
            ..baton_case("baton: an unknown baton token", "GET", &format!("/v1/baton/{unknown}"), "", 401, "unauthorized")
        },
        Case {
            headers: vec![("authorization", "Bearer bt_short".into())],
            ..baton_case("baton: a malformed baton token", "PUT", &format!("/v1/baton/{unknown}"), "x", 401, "unauthorized")
        },
        baton_case("baton: listing limit zero", "GET", "/v1/batons?limit=0", "", 422, "invalid_value"),
        baton_case("baton: listing cursor garbage", "GET", "/v1/batons?cursor=zz", "", 422, "invalid_value"),
        baton_case("baton: PATCH is not a method", "PATCH", &format!("/v1/baton/{unknown}"), "", 405, "method_not_allowed"),
    ]
}

/// Presigned creates, completion, node-signed PUTs, tus and scratch: refused before anything is
/// stored.
#[rustfmt::skip]
fn upload_cases() -> Vec<Case> {
    let auth = || ("authorization", format!("Bearer {KEY}"));
    let tus = || ("tus-resumable", "1.0.0".to_string());
    let case = |name, method, path: &str, headers: Vec<(&'static str, String)>, body: &str, status, code| Case {
        name, method, path: path.into(), headers, body: body.as_bytes().to_vec(), status, code,
    };
    let store = |extra: Vec<(&'static str, String)>| {
        let mut h = vec![auth(), ("x-file-name", "f.bin".to_string()), ("x-duration-seconds", "60".to_string())];
        h.extend(extra);
        h
    };
    let up = "upl_01HX0000000000000000000000";
    let b64 = |s: &str| { use base64::Engine; base64::engine::general_purpose::STANDARD.encode(s) };
    vec![
        case("presigned create with a body", "POST", "/api/store", store(vec![("x-upload", "presigned".into()), ("x-size-bytes", "5".into())]), "hello", 400, "bad_request"),
        case("unknown upload mode", "POST", "/api/store", store(vec![("x-upload", "carrier-pigeon".into()), ("x-size-bytes", "5".into())]), "", 400, "invalid_header"),
        case("checksum not hex", "POST", "/api/store", store(vec![("x-upload", "presigned".into()), ("x-size-bytes", "5".into()), ("x-content-sha256", "zz".into())]), "", 400, "invalid_header"),
        case("presigned and an input key", "POST", "/api/store", store(vec![("x-upload", "presigned".into()), ("x-input-key", "scratch/a/b".into()), ("x-size-bytes", "5".into())]), "", 400, "bad_request"),
        case("presigned past the object limit", "POST", "/api/store", store(vec![("x-upload", "presigned".into()), ("x-size-bytes", "2000000".into())]), "", 413, "payload_too_large"),
        case("unknown input key", "POST", "/api/store", store(vec![("x-input-key", "scratch/acct_bootstrap/nope".into())]), "", 404, "not_found"),
        case("input key outside scratch", "POST", "/api/store", store(vec![("x-input-key", "blobs/x".into())]), "", 404, "not_found"),
        case("scratch without credentials", "POST", "/v1/scratch/upload-url", vec![], r#"{"size_bytes": 5}"#, 401, "unauthorized"),
        case("scratch of zero bytes", "POST", "/v1/scratch/upload-url", vec![auth()], r#"{"size_bytes": 0}"#, 422, "invalid_value"),
        case("scratch too large", "POST", "/v1/scratch/upload-url", vec![auth()], r#"{"size_bytes": 999999999999}"#, 413, "payload_too_large"),
        case("scratch without a size", "POST", "/v1/scratch/upload-url", vec![auth()], "", 400, "missing_header"),
        case("scratch with a bad checksum", "POST", "/v1/scratch/upload-url", vec![auth()], r#"{"size_bytes": 5, "sha256": "x"}"#, 422, "invalid_value"),
        case("scratch with an unknown field", "POST", "/v1/scratch/upload-url", vec![auth()], r#"{"size_bytes": 5, "nope": 1}"#, 400, "invalid_json"),
        case("complete an unknown upload", "POST", &format!("/api/uploads/{up}/complete"), vec![auth()], "", 404, "not_found"),
        case("complete a malformed id", "POST", "/api/uploads/upl_x/complete", vec![auth()], "", 404, "not_found"),
        case("complete without credentials", "POST", &format!("/api/uploads/{up}/complete"), vec![], "", 401, "unauthorized"),
        case("status of an unknown upload", "GET", &format!("/api/uploads/{up}"), vec![auth()], "", 404, "not_found"),
        case("signed PUT without a signature", "PUT", &format!("/uploads/{up}"), vec![], "hello", 403, "forbidden"),
        case("signed PUT with a forged signature", "PUT", &format!("/uploads/{up}?expires=99999999999&sig={}", "0".repeat(64)), vec![], "hello", 403, "forbidden"),
        case("signed PUT with a junk expiry", "PUT", &format!("/uploads/{up}?expires=soon&sig=00"), vec![], "hello", 403, "forbidden"),
        case("signed PUT to a malformed id", "PUT", "/uploads/../../etc?expires=1&sig=00", vec![], "hello", 404, "not_found"),
        case("tus without Tus-Resumable", "POST", "/api/uploads/tus", vec![auth(), ("upload-length", "5".into())], "", 412, "tus_version"),
        case("tus of another version", "POST", "/api/uploads/tus", vec![auth(), ("tus-resumable", "0.2.2".into()), ("upload-length", "5".into())], "", 412, "tus_version"),
        case("tus without a length", "POST", "/api/uploads/tus", vec![auth(), tus()], "", 400, "missing_header"),
        case("tus of zero bytes", "POST", "/api/uploads/tus", vec![auth(), tus(), ("upload-length", "0".into())], "", 400, "invalid_header"),
        case("tus deferred length", "POST", "/api/uploads/tus", vec![auth(), tus(), ("upload-defer-length", "1".into())], "", 400, "bad_request"),
        case("tus metadata not base64", "POST", "/api/uploads/tus", vec![auth(), tus(), ("upload-length", "5".into()), ("upload-metadata", "duration_seconds !!!".into())], "", 400, "invalid_header"),
        case("tus without a duration", "POST", "/api/uploads/tus", vec![auth(), tus(), ("upload-length", "5".into()), ("upload-metadata", format!("filename {}", b64("a.bin")))], "", 400, "invalid_header"),
        case("tus file name with a slash", "POST", "/api/uploads/tus", vec![auth(), tus(), ("upload-length", "5".into()), ("upload-metadata", format!("filename {},duration_seconds {}", b64("a/b"), b64("60")))], "", 400, "invalid_header"),
        case("tus too long", "POST", "/api/uploads/tus", vec![auth(), tus(), ("upload-length", "2000000".into()), ("upload-metadata", format!("duration_seconds {}", b64("60")))], "", 413, "payload_too_large"),
        case("tus too short a lease", "POST", "/api/uploads/tus", vec![auth(), tus(), ("upload-length", "5".into()), ("upload-metadata", format!("duration_seconds {}", b64("999999999")))], "", 422, "invalid_value"),
        case("tus filling an unknown upload", "POST", "/api/uploads/tus", vec![auth(), tus(), ("upload-length", "5".into()), ("upload-metadata", format!("upload_id {}", b64(up)))], "", 404, "not_found"),
        case("tus filling a malformed upload id", "POST", "/api/uploads/tus", vec![auth(), tus(), ("upload-length", "5".into()), ("upload-metadata", format!("upload_id {}", b64("../x")))], "", 404, "not_found"),
        case("tus filling and buying at once", "POST", "/api/uploads/tus", vec![auth(), tus(), ("upload-length", "5".into()), ("upload-metadata", format!("upload_id {},duration_seconds {}", b64(up), b64("60")))], "", 400, "invalid_header"),
        case("tus with a body at creation", "POST", "/api/uploads/tus", vec![auth(), tus(), ("upload-length", "5".into())], "hello", 400, "bad_request"),
        case("tus without credentials", "POST", "/api/uploads/tus", vec![tus(), ("upload-length", "5".into())], "", 401, "unauthorized"),
        case("tus PATCH of another type", "PATCH", &format!("/api/uploads/tus/{up}"), vec![auth(), tus(), ("upload-offset", "0".into())], "hello", 415, "unsupported_media_type"),
        case("tus PATCH without an offset", "PATCH", &format!("/api/uploads/tus/{up}"), vec![auth(), tus(), ("content-type", "application/offset+octet-stream".into())], "hello", 400, "missing_header"),
        case("tus PATCH with a negative offset", "PATCH", &format!("/api/uploads/tus/{up}"), vec![auth(), tus(), ("content-type", "application/offset+octet-stream".into()), ("upload-offset", "-1".into())], "hello", 400, "invalid_header"),
        case("tus PATCH with an unknown checksum", "PATCH", &format!("/api/uploads/tus/{up}"), vec![auth(), tus(), ("content-type", "application/offset+octet-stream".into()), ("upload-offset", "0".into()), ("upload-checksum", "md5 AAAA".into())], "hello", 400, "invalid_header"),
        case("tus PATCH of an unknown upload", "PATCH", &format!("/api/uploads/tus/{up}"), vec![auth(), tus(), ("content-type", "application/offset+octet-stream".into()), ("upload-offset", "0".into())], "hello", 404, "not_found"),
        case("tus DELETE of an unknown upload", "DELETE", &format!("/api/uploads/tus/{up}"), vec![auth(), tus()], "", 404, "not_found"),
    ]
}

/// The witness log's routes: bad sizes and pages, strangers, and rotation without the admin.
#[rustfmt::skip]
fn witness_cases() -> Vec<Case> {
    let auth = || ("authorization", format!("Bearer {KEY}"));
    let case = |name, method, path: &str, headers: Vec<(&'static str, String)>, status, code| Case {
        name, method, path: path.into(), headers, body: Vec::new(), status, code,
    };
    let btn = "btn_01HX0000000000000000000000";
    vec![
        case("consistency without sizes", "GET", "/v1/witness/consistency", vec![], 400, "bad_request"),
        case("consistency without to", "GET", "/v1/witness/consistency?from=1", vec![], 400, "bad_request"),
        case("consistency from zero", "GET", "/v1/witness/consistency?from=0&to=0", vec![], 422, "invalid_value"),
        case("consistency backwards", "GET", "/v1/witness/consistency?from=2&to=1", vec![], 422, "invalid_value"),
        case("consistency past the checkpoint", "GET", "/v1/witness/consistency?from=1&to=18446744073709551615", vec![], 422, "invalid_value"),
        case("consistency past u64", "GET", "/v1/witness/consistency?from=1&to=99999999999999999999999", vec![], 422, "invalid_value"),
        case("consistency negative", "GET", "/v1/witness/consistency?from=-1&to=2", vec![], 422, "invalid_value"),
        case("consistency repeated", "GET", "/v1/witness/consistency?from=1&from=2&to=2", vec![], 400, "bad_request"),
        case("consistency unknown parameter", "GET", "/v1/witness/consistency?from=1&to=1&x=1", vec![], 400, "bad_request"),
        case("baton witness without credentials", "GET", &format!("/v1/baton/{btn}/witness"), vec![], 401, "unauthorized"),
        case("baton witness of an unknown baton", "GET", &format!("/v1/baton/{btn}/witness"), vec![auth()], 404, "not_found"),
        case("baton witness of a malformed id", "GET", "/v1/baton/..%2F/witness", vec![auth()], 404, "not_found"),
        case("baton witness with a forged token", "GET", &format!("/v1/baton/{btn}/witness"), vec![("authorization", format!("Bearer bt_{}", "0".repeat(40)))], 401, "unauthorized"),
        case("baton witness limit zero", "GET", &format!("/v1/baton/{btn}/witness?limit=0"), vec![auth()], 422, "invalid_value"),
        case("baton witness after junk", "GET", &format!("/v1/baton/{btn}/witness?after=x"), vec![auth()], 422, "invalid_value"),
        case("witness rotation by an agent", "POST", "/cluster/witness/rotate", vec![auth()], 403, "forbidden"),
        case("witness rotation anonymous", "POST", "/cluster/witness/rotate", vec![], 401, "unauthorized"),
    ]
}

fn mailbox_case(name: &'static str, webhook_url: &str) -> Case {
    Case {
        name,
        method: "POST",
        path: "/api/mailbox".into(),
        headers: vec![
            ("authorization", format!("Bearer {KEY}")),
            ("x-capacity-bytes", "1024".into()),
            ("x-duration-seconds", "60".into()),
            ("x-webhook-url", webhook_url.into()),
        ],
        body: vec![],
        status: 422,
        code: "invalid_value",
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
        admin("pricing without a secret", "POST", "/cluster/pricing", None, r#"{"rate_micros_per_gb_day":1}"#, 401, "unauthorized"),
        admin("pricing with malformed JSON", "POST", "/cluster/pricing", Some(common::SECRET), "{", 400, "bad_request"),
        admin("pricing with nothing to change", "POST", "/cluster/pricing", Some(common::SECRET), "{}", 400, "bad_request"),
        admin("pricing with a negative rate", "POST", "/cluster/pricing", Some(common::SECRET), r#"{"rate_micros_per_gb_day":-5}"#, 400, "bad_request"),
        admin("pricing with an unknown field", "POST", "/cluster/pricing", Some(common::SECRET), r#"{"min_charge_micros":1,"currency":"EUR"}"#, 400, "bad_request"),
        admin("pricing beyond the cap", "POST", "/cluster/pricing", Some(common::SECRET), r#"{"min_charge_micros":1000000000001}"#, 422, "invalid_value"),
        admin("backup without a secret", "GET", "/cluster/backup", None, "", 401, "unauthorized"),
        admin("backup with a wrong secret", "GET", "/cluster/backup", Some("wrong-secret"), "", 401, "unauthorized"),
        admin("backup object without a key", "GET", "/cluster/backup/object", Some(common::SECRET), "", 400, "bad_request"),
        admin("backup object with an unknown parameter", "GET", "/cluster/backup/object?key=a&x=1", Some(common::SECRET), "", 400, "bad_request"),
        admin("backup object with an empty key", "GET", "/cluster/backup/object?key=", Some(common::SECRET), "", 422, "invalid_value"),
        admin("backup object with a huge key", "GET", &format!("/cluster/backup/object?key={}", "k".repeat(1100)), Some(common::SECRET), "", 422, "invalid_value"),
        admin("backup object nobody references", "GET", "/cluster/backup/object?key=..%2F..%2Fetc%2Fpasswd", Some(common::SECRET), "", 404, "not_found"),
        admin("backup object without a secret", "GET", "/cluster/backup/object?key=blobs%2Fx", None, "", 401, "unauthorized"),
        admin("join with a bad region", "POST", "/cluster/join", Some(common::SECRET), r#"{"node_id":2,"raft_addr":"127.0.0.1:1","http_addr":"http://x","region":"eu west"}"#, 422, "invalid_value"),
        admin("sign-in with malformed JSON", "POST", "/api/auth/siwe", None, "{", 400, "invalid_json"),
        admin("sign-in with an array", "POST", "/api/auth/siwe", None, "[1]", 400, "bad_request"),
        admin("sign-in without a signature", "POST", "/api/auth/siwe", None, r#"{"message":"m"}"#, 400, "bad_request"),
        admin("sign-in with no message at all", "POST", "/api/auth/siwe", None, r#"{"message":"hello","signature":"0x00"}"#, 400, "bad_request"),
        admin("sign-in with a body too large", "POST", "/api/auth/siwe", None, &format!(r#"{{"message":"{}","signature":"0x"}}"#, "m".repeat(9000)), 413, "payload_too_large"),
        admin("a session without credentials", "POST", "/api/auth/session", None, "", 401, "unauthorized"),
        Case { name: "ending a session with an API key", method: "DELETE", path: "/api/auth/session".into(), headers: vec![("authorization", auth.clone())], body: vec![], status: 400, code: "bad_request" },
        Case { name: "a forged session token", method: "GET", path: "/api/leases".into(), headers: vec![("authorization", "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJhIn0.".into())], body: vec![], status: 401, code: "unauthorized" },
        get_case("billing without credentials", "/api/billing", false, 401, "unauthorized"),
        get_case("billing with a zero limit", "/api/billing?limit=0", true, 422, "invalid_value"),
        get_case("billing with a malformed cursor", "/api/billing?cursor=zz", true, 400, "bad_request"),
        admin("accounts without a secret", "POST", "/cluster/accounts", None, "{}", 401, "unauthorized"),
        admin("an account id shaped like a wallet", "POST", "/cluster/accounts", Some(common::SECRET), r#"{"account_id":"0xabc"}"#, 422, "invalid_value"),
        admin("an account with a negative balance", "POST", "/cluster/accounts", Some(common::SECRET), r#"{"balance_micros":-1}"#, 400, "bad_request"),
        admin("an account with an unknown field", "POST", "/cluster/accounts", Some(common::SECRET), r#"{"owner":"x"}"#, 400, "bad_request"),
        admin("top-up of an unknown account", "POST", "/cluster/accounts/acct_nobody/topup", Some(common::SECRET), r#"{"amount_micros":1}"#, 404, "not_found"),
        admin("top-up of nothing", "POST", "/cluster/accounts/acct_bootstrap/topup", Some(common::SECRET), r#"{"amount_micros":0}"#, 422, "invalid_value"),
        admin("top-up that is not an object", "POST", "/cluster/accounts/acct_bootstrap/topup", Some(common::SECRET), "7", 400, "bad_request"),
        admin("balance of an unknown account", "GET", "/cluster/accounts/acct_nobody", Some(common::SECRET), "", 404, "not_found"),
        admin("revoke a key that is not an id", "DELETE", "/cluster/accounts/acct_bootstrap/keys/nothex", Some(common::SECRET), "", 404, "not_found"),
        admin("revoke an unknown key", "DELETE", "/cluster/accounts/acct_bootstrap/keys/0123456789abcdef", Some(common::SECRET), "", 404, "not_found"),
        admin("rotate session keys without a secret", "POST", "/cluster/session-keys/rotate", None, "", 401, "unauthorized"),
        with("bidi override in file name", &[("x-file-name", "invoice\u{202e}fdp.exe")], 400, "invalid_header"),
        with("zero-width space in file name", &[("x-file-name", "a\u{200b}.txt")], 400, "invalid_header"),
        with("admin key on an agent route", &[("authorization", "ADMIN")], 403, "forbidden"),
        mailbox_case("webhook to NAT64 of the metadata address", "http://[64:ff9b::a9fe:a9fe]/hook"),
        mailbox_case("webhook to 6to4 of loopback", "http://[2002:7f00:1::1]/hook"),
        mailbox_case("webhook to Teredo", "http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/hook"),
        mailbox_case("webhook to the benchmarking range", "http://198.18.0.1/hook"),
        mailbox_case("webhook to the reserved range", "http://240.0.0.1/hook"),
        mailbox_case("webhook to the limited broadcast address", "http://255.255.255.255/hook"),
        mailbox_case("webhook to an IPv4-compatible address", "http://[::127.0.0.1]/hook"),
        Case {
            name: "idempotency key with a space on a claim",
            method: "GET",
            path: "/api/claim/hof_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".into(),
            headers: vec![("idempotency-key", "a b".into())],
            body: vec![],
            status: 400,
            code: "invalid_header",
        },
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
    let list = relay.leases(http).await;
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
    for case in cases()
        .into_iter()
        .chain(baton_cases())
        .chain(upload_cases())
        .chain(witness_cases())
    {
        let mut req = http.request(case.method.parse().unwrap(), relay.url(&case.path));
        for (k, v) in &case.headers {
            let v = if v == "ADMIN" { relay.admin_auth() } else { v.clone() };
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

/// Headers every route might read, for the hostile sweep.
const API_HEADERS: &[&str] = &[
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
    "x-payment",
    "payment-signature",
    "if-match",
    "if-none-match",
    "range",
    "content-type",
    "x-cluster-secret",
    "x-upload",
    "x-input-key",
    "x-content-sha256",
    "tus-resumable",
    "upload-length",
    "upload-offset",
    "upload-metadata",
    "upload-checksum",
    "upload-defer-length",
];

/// Every route, every kind of caller, junk in every header, the query and the body: never a 5xx,
/// and every refusal in the JSON error shape.
#[tokio::test]
async fn no_route_answers_a_5xx_to_anything() {
    use reqwest::header::HeaderValue;
    let relay = Relay::start(&["--cluster-secret", common::SECRET]);
    let http = client();
    // Real things for ids to name, so requests reach past the shape checks.
    let lease = relay.store(&http, "a.txt", common::bytes(10, 1), 600).await;
    let lease = lease["lease_id"].as_str().unwrap().to_string();
    let mb = relay.mailbox(&http, 4096, &[]).await;
    let mailbox = mb["lease_id"].as_str().unwrap().to_string();
    let drop = mb["drop_url"].as_str().unwrap().rsplit('/').next().unwrap().to_string();
    let h: Value = http
        .post(relay.url(&format!("/api/handoff/{lease}")))
        .header("authorization", relay.auth())
        .json(&serde_json::json!({"max_claims": 1000}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let claim = h["handoff_token"].as_str().unwrap().to_string();
    let handoff = h["handoff_id"].as_str().unwrap().to_string();
    let ids = |real: &str| {
        vec![
            real.to_string(),
            "lse_01HX0000000000000000000000".into(),
            "x".repeat(2000),
            "%00%ff..".into(),
        ]
    };
    let mut targets: Vec<(&str, String)> = vec![
        ("POST", "/api/store".into()),
        ("GET", "/api/leases?limit=-1&cursor=%ff".into()),
        ("POST", "/api/mailbox".into()),
        ("POST", "/api/checkpoint".into()),
        ("GET", "/api/pricing".into()),
        ("GET", "/api/quote?size_bytes=x&duration_seconds=1e9".into()),
        ("GET", "/healthz".into()),
        ("GET", "/readyz".into()),
        ("GET", "/metrics".into()),
        ("GET", "/openapi.json?x=%ff".into()),
        ("GET", "/docs?x=%00".into()),
        ("GET", "/docs/docs.js".into()),
        ("GET", "/api/account?x=%ff".into()),
        ("GET", "/dashboard?x=%00".into()),
        ("GET", "/dashboard/app.js".into()),
        ("GET", "/dashboard/app.css".into()),
        ("GET", "/cluster/status".into()),
        ("GET", "/cluster/backup".into()),
        ("GET", "/cluster/backup/object".into()),
        ("POST", "/cluster/join".into()),
        ("POST", "/cluster/promote".into()),
        ("POST", "/cluster/remove".into()),
        ("POST", "/cluster/pricing".into()),
        ("GET", "/.well-known/x402".into()),
        ("GET", "/.well-known/x402.json".into()),
        ("POST", "/api/auth/siwe/nonce".into()),
        ("POST", "/api/auth/siwe".into()),
        ("POST", "/api/auth/session".into()),
        ("GET", "/api/billing?limit=x&cursor=%ff".into()),
        ("POST", "/cluster/accounts".into()),
        ("POST", "/cluster/session-keys/rotate".into()),
        ("POST", "/cluster/witness/rotate".into()),
        ("GET", "/.well-known/relay-witness".into()),
        ("GET", "/v1/witness/checkpoint".into()),
        ("GET", "/v1/witness/consistency?from=1&to=%ff".into()),
        (
            "GET",
            "/v1/witness/consistency?from=18446744073709551615&to=18446744073709551615".into(),
        ),
    ];
    for id in ["acct_bootstrap", "acct_nobody", &"a".repeat(300), "%00%ff"] {
        targets.push(("GET", format!("/cluster/accounts/{id}")));
        targets.push(("POST", format!("/cluster/accounts/{id}/topup")));
        targets.push(("GET", format!("/cluster/accounts/{id}/keys")));
        targets.push(("DELETE", format!("/cluster/accounts/{id}/keys/0123456789abcdef")));
    }
    for id in ids(&lease) {
        targets.push(("GET", format!("/api/download/{id}")));
        targets.push(("HEAD", format!("/api/download/{id}")));
        targets.push(("POST", format!("/api/handoff/{id}")));
        targets.push(("GET", format!("/api/handoffs/{id}")));
    }
    for id in ids(&mailbox) {
        targets.push(("GET", format!("/api/mailbox/{id}/messages")));
        targets.push(("GET", format!("/api/mailbox/{id}/messages/msg_1")));
        targets.push((
            "HEAD",
            format!("/api/mailbox/{id}/messages/msg_99999999999999999999999"),
        ));
        targets.push(("DELETE", format!("/api/mailbox/{id}/messages/msg_1")));
    }
    for id in ids(&drop) {
        targets.push(("POST", format!("/api/mailbox/drop/{id}")));
    }
    for id in ids(&claim) {
        targets.push(("GET", format!("/api/claim/{id}")));
        targets.push(("POST", format!("/api/claim/{id}")));
        targets.push(("HEAD", format!("/api/claim/{id}")));
    }
    for id in ids(&handoff) {
        targets.push(("DELETE", format!("/api/handoffs/{id}")));
    }
    for id in ["wf", "w%2Ff", &"w".repeat(300)] {
        targets.push(("GET", format!("/api/checkpoint/{id}?consume=maybe")));
        targets.push(("PUT", format!("/api/checkpoint/{id}")));
    }
    let baton: Value = http
        .post(relay.url("/v1/baton"))
        .header("authorization", relay.auth())
        .json(&serde_json::json!({"preconfig": "scratchpad", "content_base64": "aGk="}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let baton_id = baton["baton_id"].as_str().unwrap().to_string();
    targets.push(("POST", "/v1/baton".into()));
    targets.push(("POST", "/v1/baton/quote".into()));
    targets.push(("GET", "/v1/batons?limit=x&cursor=%ff".into()));
    for id in [
        baton_id.clone(),
        "btn_01HX0000000000000000000000".into(),
        "x".repeat(2000),
        "%00%ff..".into(),
    ] {
        targets.push(("GET", format!("/v1/baton/{id}")));
        targets.push(("HEAD", format!("/v1/baton/{id}")));
        targets.push((
            "GET",
            format!("/v1/baton/{id}/witness?after=18446744073709551615&limit=100"),
        ));
        targets.push(("PUT", format!("/v1/baton/{id}")));
        targets.push(("POST", format!("/v1/baton/{id}/entries")));
        targets.push((
            "GET",
            format!("/v1/baton/{id}/entries?after=-1&limit=99999999999999999999"),
        ));
        targets.push(("GET", format!("/v1/baton/{id}/entries/18446744073709551615")));
        targets.push(("GET", format!("/v1/baton/{id}/meta")));
        targets.push(("GET", format!("/v1/baton/{id}/tokens")));
        targets.push(("POST", format!("/v1/baton/{id}/tokens")));
        targets.push(("DELETE", format!("/v1/baton/{id}/tokens/tok_x")));
        targets.push(("POST", format!("/v1/baton/{id}/extend")));
        targets.push(("POST", format!("/v1/baton/{id}/lifecycle")));
        targets.push(("POST", format!("/v1/baton/{id}/restore")));
    }
    let presigned: Value = http
        .post(relay.url("/api/store"))
        .header("authorization", relay.auth())
        .header("x-upload", "presigned")
        .header("x-file-name", "p.bin")
        .header("x-size-bytes", "100")
        .header("x-duration-seconds", "600")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let upload_id = presigned["upload"]["upload_id"].as_str().unwrap().to_string();
    let signed = presigned["upload"]["url"].as_str().unwrap().to_string();
    let tus = http
        .post(relay.url("/api/uploads/tus"))
        .header("authorization", relay.auth())
        .header("tus-resumable", "1.0.0")
        .header("upload-length", "100")
        .header("upload-metadata", "duration_seconds NjAw")
        .send()
        .await
        .unwrap();
    let tus_path = common::api_path(tus.headers()["location"].to_str().unwrap());
    targets.push(("POST", "/v1/scratch/upload-url".into()));
    targets.push(("POST", "/api/uploads/tus".into()));
    targets.push(("OPTIONS", "/api/uploads/tus".into()));
    let signed_path = signed.splitn(4, '/').nth(3).map(|p| format!("/{p}")).unwrap();
    targets.push(("PUT", signed_path));
    for method in ["HEAD", "PATCH", "OPTIONS"] {
        targets.push((method, tus_path.clone()));
    }
    for id in [
        upload_id.clone(),
        "upl_01HX0000000000000000000000".into(),
        "x".repeat(2000),
        "%00%ff..".into(),
    ] {
        targets.push(("GET", format!("/api/uploads/{id}")));
        targets.push(("POST", format!("/api/uploads/{id}/complete")));
        targets.push(("PUT", format!("/uploads/{id}?expires=1&sig=%ff")));
        targets.push(("HEAD", format!("/api/uploads/tus/{id}")));
        targets.push(("PATCH", format!("/api/uploads/tus/{id}")));
        targets.push(("DELETE", format!("/api/uploads/tus/{id}")));
    }
    // Destructive routes last, so the others reach live things.
    targets.push(("DELETE", tus_path.clone()));
    targets.push(("DELETE", format!("/v1/baton/{baton_id}?hard=maybe")));
    targets.push(("DELETE", format!("/v1/baton/{baton_id}")));
    for id in ids(&mailbox) {
        targets.push(("DELETE", format!("/api/mailbox/{id}")));
    }
    for id in ids(&lease) {
        targets.push(("DELETE", format!("/api/store/{id}")));
    }
    targets.push(("DELETE", "/api/checkpoint/wf".into()));
    targets.push(("DELETE", "/api/auth/session".into()));

    let long = format!("Bearer rs_live_{}", "a".repeat(4000));
    let auths: Vec<Option<String>> = vec![
        None,
        Some(relay.auth()),
        Some(relay.admin_auth()),
        Some("Bearer rs_live_00000000000000000000".into()),
        Some(long),
        Some("Basic dXNlcjpwYXNz".into()),
        Some(format!("Bearer bt_{}", "f".repeat(40))),
    ];
    let junk_values: Vec<HeaderValue> = vec![
        HeaderValue::from_bytes(b"\xff\xfe\x80").unwrap(),
        HeaderValue::from_static("-1"),
        HeaderValue::from_static("99999999999999999999999999999"),
        HeaderValue::from_static(""),
        HeaderValue::from_static("W/\"*\", \"x"),
        HeaderValue::from_static("bytes=5-1,-0,99999999999999999999-"),
    ];
    let bodies: Vec<Vec<u8>> = vec![
        vec![],
        common::bytes(2048, 7),
        br#"{"max_claims":"x","node_id":-1,"raft_addr":7}"#.to_vec(),
        b"\xff\xfe{[".to_vec(),
    ];
    let mut failures = Vec::new();
    let mut requests = 0;
    for (method, path) in &targets {
        for (a, auth) in auths.iter().enumerate() {
            for (j, junk) in junk_values.iter().enumerate() {
                // Every body once per route and caller; junk headers on the first three callers.
                if j > 0 && a > 2 {
                    continue;
                }
                let body = bodies[(a + j) % bodies.len()].clone();
                let mut req = http.request(method.parse().unwrap(), relay.url(path));
                if let Some(auth) = auth {
                    req = req.header("authorization", auth);
                }
                for name in API_HEADERS {
                    req = req.header(*name, junk.clone());
                }
                let resp = req.body(body).send().await.unwrap();
                requests += 1;
                let status = resp.status().as_u16();
                let is_json = resp
                    .headers()
                    .get("content-type")
                    .is_some_and(|v| v.to_str().unwrap_or("").starts_with("application/json"));
                let text = resp.text().await.unwrap_or_default();
                let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                let shaped =
                    *method == "HEAD" || (is_json && body["status"] == "error" && body["error"]["code"].is_string());
                if status >= 500 || (status >= 400 && !shaped) {
                    failures.push(format!("{method} {path} (auth {a}, junk {j}): {status} {text:.200}"));
                }
            }
        }
    }
    assert!(requests > 1000, "{requests} requests");
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
