//! The OpenAPI document at `/openapi.json`: a real validator (openapi-spec-validator, PyPI) accepts
//! it as OpenAPI 3.1; every operation it names is routed (none falls to the 404/405 fallbacks);
//! `/docs` renders it from this origin only; and schemathesis (PyPI), run against a live node with
//! real keys and real resources, finds no server error, no answer outside its schema and no
//! undocumented status code. `scripts/test.sh` installs both tools and sets
//! RELAY_REQUIRE_OPENAPI_TOOLS=1, so there a missing tool fails instead of skipping.

mod common;

use std::path::Path;
use std::process::Command;

use common::{client, Relay, RelayExt};
use serde_json::{json, Value};

const TOOLS_ENV: &str = "RELAY_REQUIRE_OPENAPI_TOOLS";

/// Whether `module` imports; when it does not, the test fails under `scripts/test.sh` and skips
/// (saying so) elsewhere.
fn python_has(module: &str) -> bool {
    let ok = Command::new("python3")
        .args(["-c", &format!("import {module}")])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var_os(TOOLS_ENV).is_none(),
            "python module {module} is missing (scripts/test.sh installs it)"
        );
        eprintln!("skipping: python module {module} is not installed");
    }
    ok
}

async fn spec(node: &Relay, http: &reqwest::Client) -> Value {
    let r = http.get(node.url("/openapi.json")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/json");
    r.json().await.unwrap()
}

const METHODS: [&str; 7] = ["get", "put", "post", "delete", "options", "head", "patch"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_spec_is_valid_openapi_3_1_and_names_every_route() {
    let node = Relay::start(&[]);
    let http = client();
    let doc = spec(&node, &http).await;
    assert_eq!(doc["openapi"], "3.1.0");

    // What the issue asks the spec to carry: the headers, the error shape, the schemes.
    let schemes = doc["components"]["securitySchemes"].as_object().unwrap();
    for scheme in [
        "api_key",
        "session",
        "x402",
        "admin_key",
        "cluster_secret",
        "baton_token",
    ] {
        assert!(schemes.contains_key(scheme), "security scheme {scheme}");
    }
    let params = |path: &str, method: &str| -> Vec<String> {
        doc["paths"][path][method]["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap().to_string())
            .collect()
    };
    assert!(params("/api/store", "post").contains(&"X-Size-Bytes".to_string()));
    assert!(params("/api/checkpoint", "post").contains(&"X-Workflow-Id".to_string()));
    assert_eq!(
        doc["paths"]["/api/store"]["post"]["responses"]["404"]["$ref"],
        "#/components/responses/NotFound"
    );
    assert_eq!(
        doc["components"]["schemas"]["Error"]["required"],
        json!(["status", "error"])
    );

    // Every operation in the spec reaches a handler: no 404 "route" and no 405 from the router.
    let mut operations = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        let concrete = path
            .split('/')
            .map(|seg| if seg.starts_with('{') { "x1" } else { seg })
            .collect::<Vec<_>>()
            .join("/");
        for method in METHODS.iter().filter(|m| item.get(**m).is_some()) {
            operations += 1;
            let m = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let r = http.request(m, node.url(&concrete)).send().await.unwrap();
            let status = r.status().as_u16();
            let body = r.text().await.unwrap_or_default();
            let unrouted = (status == 404 && body.contains("route not found"))
                || (status == 405 && body.contains("method_not_allowed"));
            assert!(
                !unrouted,
                "{method} {path} is in the spec but not routed: {status} {body}"
            );
        }
    }
    assert!(operations > 70, "{operations} operations");

    // A real validator, from PyPI.
    if !python_has("openapi_spec_validator") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("openapi.json");
    std::fs::write(&file, doc.to_string()).unwrap();
    let out = Command::new("python3")
        .args([
            "-c",
            "import sys, json\n\
             from openapi_spec_validator import validate\n\
             from openapi_spec_validator import OpenAPIV31SpecValidator\n\
             validate(json.load(open(sys.argv[1])), cls=OpenAPIV31SpecValidator)\n\
             print('valid')",
            file.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "openapi-spec-validator refused the spec: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The validator really refuses a broken document, so the check above can fail.
#[test]
fn the_validator_refuses_a_broken_spec() {
    if !python_has("openapi_spec_validator") {
        return;
    }
    let broken =
        r#"{"openapi": "3.1.0", "info": {"title": "x"}, "paths": {"/a": {"get": {"responses": {"200": {}}}}}}"#;
    let out = Command::new("python3")
        .args([
            "-c",
            "import sys, json\nfrom openapi_spec_validator import validate\nvalidate(json.loads(sys.argv[1]))",
            broken,
        ])
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "a spec without info.version and response descriptions passed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_docs_page_renders_the_spec_from_this_origin() {
    let node = Relay::start(&[]);
    let http = client();
    let page = http.get(node.url("/docs")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let csp = page.headers()["content-security-policy"].to_str().unwrap().to_string();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("script-src 'self'"),
        "{csp}"
    );
    let html = page.text().await.unwrap();
    assert!(html.contains("/docs/docs.js") && html.contains("/openapi.json"));
    // No CDN: the page names no other origin.
    assert!(
        !html.contains("https://") && !html.contains("http://"),
        "the page loads from elsewhere"
    );
    let js = http.get(node.url("/docs/docs.js")).send().await.unwrap();
    assert_eq!(js.status(), 200);
    let js = js.text().await.unwrap();
    assert!(js.contains("fetch(\"/openapi.json\")") && !js.contains("https://"));
}

/// A POST with the test key, asserting 201; its JSON.
async fn created(node: &Relay, http: &reqwest::Client, path: &str, headers: &[(&str, &str)], body: Vec<u8>) -> Value {
    let mut req = http.post(node.url(path)).header("authorization", node.auth());
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let r = req.body(body).send().await.unwrap();
    let status = r.status();
    let json: Value = r.json().await.unwrap();
    assert_eq!(status, 201, "POST {path}: {json}");
    json
}

/// Real resources for schemathesis to work on, as `[[operations]]` parameter blocks.
async fn resources(node: &Relay, http: &reqwest::Client) -> String {
    let lease = node.store(http, "a.bin", b"hello".to_vec(), 3600).await;
    let lease_id = lease["lease_id"].as_str().unwrap().to_string();
    let mailbox = node.mailbox(http, 1 << 20, &[]).await;
    let mailbox_id = mailbox["lease_id"].as_str().unwrap().to_string();
    let drop = mailbox["drop_url"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_string();
    let dropped = http
        .post(node.url(&format!("/api/mailbox/drop/{drop}")))
        .header("content-type", "application/json")
        .body("{\"n\":1}")
        .send()
        .await
        .unwrap();
    assert_eq!(dropped.status(), 201);
    let checkpoint_headers = [
        ("x-workflow-id", "wf-schema"),
        ("x-duration-seconds", "3600"),
        ("content-type", "application/json"),
    ];
    created(
        node,
        http,
        "/api/checkpoint",
        &checkpoint_headers,
        b"{\"step\":1}".to_vec(),
    )
    .await;
    let handoff = created(
        node,
        http,
        &format!("/api/handoff/{lease_id}"),
        &[("content-type", "application/json")],
        b"{\"max_claims\":1000}".to_vec(),
    )
    .await;
    let claim = handoff["handoff_token"].as_str().unwrap().to_string();
    let handoff_id = handoff["handoff_id"].as_str().unwrap().to_string();
    let baton_body = json!({"write": "append", "sharing": {"tokens": [{"scope": "read"}]}});
    let baton = created(
        node,
        http,
        "/v1/baton",
        &[("content-type", "application/json")],
        baton_body.to_string().into_bytes(),
    )
    .await;
    let baton_id = baton["baton_id"].as_str().unwrap().to_string();
    let token_id = baton["tokens"][0]["token_id"].as_str().unwrap().to_string();
    let blob = created(
        node,
        http,
        "/v1/baton",
        &[("content-type", "application/json")],
        json!({"write": "overwrite", "content_base64": "aGVsbG8="})
            .to_string()
            .into_bytes(),
    )
    .await;
    let blob_id = blob["baton_id"].as_str().unwrap().to_string();
    let block = |regex: &str, params: &[(&str, &str)]| {
        let list: Vec<String> = params.iter().map(|(k, v)| format!("{k} = \"{v}\"")).collect();
        format!(
            "[[operations]]\ninclude-operation-id-regex = \"{regex}\"\nparameters = {{ {} }}\n\n",
            list.join(", ")
        )
    };
    [
        block("^(store_|handoff_create)", &[("lease_id", &lease_id)]),
        block("^handoff_list$", &[("id", &lease_id)]),
        block("^handoff_revoke$", &[("id", &handoff_id)]),
        block(
            "^mailbox_(poll|pickup|delete_message|delete)$",
            &[("lease_id", &mailbox_id), ("message_id", "msg_1")],
        ),
        block("^mailbox_drop_message$", &[("token", &drop)]),
        block("^claim_", &[("token", &claim)]),
        block("^checkpoint_", &[("workflow_id", "wf-schema")]),
        block(
            "^baton_content_(entries|append|entry)$|^witness_baton_records$",
            &[("id", &baton_id), ("seq", "1")],
        ),
        block("^baton_manage_", &[("id", &baton_id), ("token_id", &token_id)]),
        block("^baton_content_(read|write)$", &[("id", &blob_id)]),
    ]
    .concat()
}

/// Runs schemathesis over one part of the API; its output when it fails.
fn schemathesis(dir: &Path, base: &str, auth: (&str, &str), operations: &str, filter: &[&str]) -> Result<(), String> {
    let config = dir.join(format!(
        "schemathesis-{}.toml",
        filter.join("").replace(['^', '/', '$'], "")
    ));
    let checks = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance";
    std::fs::write(
        &config,
        format!(
            "[headers]\n{} = \"{}\"\n\n[generation]\nmax-examples = 25\n\n{operations}",
            auth.0, auth.1
        ),
    )
    .unwrap();
    // Bounded however the generation goes: a hung run fails instead of holding CI.
    let out = Command::new("timeout")
        .args(["600", "python3"])
        .current_dir(dir)
        .env("PYTHONPATH", dir)
        .env("SCHEMATHESIS_HOOKS", "relay_hooks")
        .args(["-m", "schemathesis.cli", "--no-color", "--config-file"])
        .arg(&config)
        .args([
            "run",
            &format!("{base}/openapi.json"),
            "--checks",
            checks,
            "--seed",
            "7",
        ])
        .args(["--request-timeout", "20", "--max-failures", "20"])
        .args(filter)
        .output()
        .unwrap();
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // What ran, for the log: the phases, the operations and the cases.
    for line in text
        .lines()
        .filter(|l| l.contains("generated") || l.contains("Tested:") || l.contains("passed"))
    {
        eprintln!("schemathesis {filter:?}: {}", line.trim());
    }
    match out.status.success() {
        true => Ok(()),
        false => Err(text),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_server_error_and_no_undocumented_answer() {
    if !python_has("schemathesis") {
        return;
    }
    let node = Relay::start(&[]);
    let http = client();
    let operations = resources(&node, &http).await;
    let dir = tempfile::tempdir().unwrap();
    // tus PATCH bodies are raw bytes in their own media type.
    std::fs::write(
        dir.path().join("relay_hooks.py"),
        "import schemathesis\n\n\
         @schemathesis.serializer(\"application/offset+octet-stream\")\n\
         def offset_octets(ctx, value):\n    \
             return value if isinstance(value, bytes) else str(value).encode()\n",
    )
    .unwrap();
    let secret = std::fs::read_to_string(node.data_dir().join("cluster-secret")).unwrap();
    let agent = schemathesis(
        dir.path(),
        node.base(),
        ("Authorization", &node.auth()),
        &operations,
        &["--exclude-path-regex", "^/cluster"],
    );
    // Operators' routes with the cluster secret (membership changes included: a random join or
    // remove must be refused cleanly too).
    let admin = schemathesis(
        dir.path(),
        node.base(),
        ("X-Cluster-Secret", secret.trim()),
        "",
        &["--include-path-regex", "^/cluster"],
    );
    if let Err(out) = agent.and(admin) {
        panic!("schemathesis found problems:\n{out}\nnode log:\n{}", node.logs());
    }
    // The node is still whole: ready, and the lease made before still reads back.
    let ready = http.get(node.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
}
