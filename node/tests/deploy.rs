//! The files in `deploy/`, each checked by the real tool for its kind where the package
//! registries have one (`scripts/test.sh` installs them and sets RELAY_REQUIRE_DEPLOY_TOOLS=1, so
//! a missing tool fails there instead of skipping): `systemd-analyze verify`, `docker-compose
//! config`, `promtool check rules`, `kubernetes-validate --strict` (also on the Helm chart,
//! rendered by Go's text/template). Every metric the alert rules and the dashboard name must be
//! one a live node serves.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{client, Relay, RelayExt};

const RELAY_BIN: &str = env!("CARGO_BIN_EXE_relay");

fn deploy(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy").join(file)
}

/// Runs `tool`; `None` when it is not installed and the suite does not require it.
fn run(tool: &str, args: &[&str], env: &[(&str, &str)]) -> Option<Output> {
    let mut command = Command::new(tool);
    command.args(args);
    for (k, v) in env {
        command.env(k, v);
    }
    match command.output() {
        Ok(out) => Some(out),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            assert!(
                std::env::var_os("RELAY_REQUIRE_DEPLOY_TOOLS").is_none(),
                "{tool} is required (scripts/test.sh installs it)"
            );
            eprintln!("skipping: {tool} is not installed");
            None
        }
        Err(e) => panic!("{tool}: {e}"),
    }
}

fn show(out: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn systemd_unit_verifies_clean() {
    // The unit names /usr/local/bin/relay; point it at the binary just built.
    let unit = std::fs::read_to_string(deploy("systemd/relay.service")).unwrap();
    assert!(unit.contains("ExecStart=/usr/local/bin/relay serve"));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("relay.service");
    std::fs::write(&path, unit.replace("/usr/local/bin/relay", RELAY_BIN)).unwrap();
    let Some(out) = run("systemd-analyze", &["verify", "--man=no", path.to_str().unwrap()], &[]) else {
        return;
    };
    // verify exits 0 on an unknown key, with a warning: any output is a finding.
    assert!(
        out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "{}",
        show(&out)
    );
    for hardening in [
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "CapabilityBoundingSet=",
        "ExecReload=/bin/kill -HUP",
    ] {
        assert!(unit.contains(hardening), "{hardening}");
    }
}

#[test]
fn compose_file_is_valid_and_needs_a_secret() {
    let file = deploy("compose.yaml");
    let file = file.to_str().unwrap();
    let env = [("RELAY_CLUSTER_SECRET", "compose-check-secret-0123456789")];
    let Some(out) = run("docker-compose", &["-f", file, "config"], &env) else {
        return;
    };
    assert!(out.status.success(), "{}", show(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    for needed in [
        "relay1:",
        "relay2:",
        "relay3:",
        "minio:",
        "RELAY_RAFT_TLS_CA: /certs/ca.pem",
        "RELAY_RAFT_TLS_CERT: /certs/relay2.pem",
        "--join",
        "compose-check-secret-0123456789",
    ] {
        assert!(text.contains(needed), "{needed} missing from:\n{text}");
    }
    // Without a cluster secret the file refuses to start anything.
    let out = run("docker-compose", &["-f", file, "config", "-q"], &[]).unwrap();
    assert!(!out.status.success(), "{}", show(&out));
}

#[test]
fn kubernetes_manifests_validate_against_the_schemas() {
    let file = deploy("k8s/relay.yaml");
    let Some(out) = run("kubernetes-validate", &["--strict", file.to_str().unwrap()], &[]) else {
        return;
    };
    assert!(out.status.success(), "{}", show(&out));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    for kind in ["statefulset/relay", "service/relay-peers", "poddisruptionbudget/relay"] {
        assert!(text.contains(&format!("passed for resource {kind}")), "{text}");
    }
    assert!(!text.contains("ERROR"), "{text}");
    let yaml = std::fs::read_to_string(&file).unwrap();
    for needed in [
        "path: /readyz",
        "volumeClaimTemplates",
        "clusterIP: None",
        "runAsNonRoot: true",
    ] {
        assert!(yaml.contains(needed), "{needed}");
    }
}

#[test]
fn dockerfile_builds_one_binary_for_a_non_root_user_with_a_readiness_check() {
    let text = std::fs::read_to_string(deploy("Dockerfile")).unwrap();
    let froms = text.lines().filter(|l| l.starts_with("FROM ")).count();
    assert_eq!(froms, 2, "multi-stage: a build stage and a run stage");
    let user = text.lines().find(|l| l.starts_with("USER ")).expect("a USER line");
    assert!(!user.contains("root") && !user.contains(" 0"), "{user}");
    assert!(text.contains("HEALTHCHECK") && text.contains("/readyz"));
    assert!(text.contains("--bin relay"));
}

/// The metric names a PromQL text uses (`relay_…`), without histogram and counter suffixes.
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for (i, _) in text.match_indices("relay_") {
        if i > 0 && text.as_bytes()[i - 1].is_ascii_alphanumeric() {
            continue;
        }
        let name: String = text[i..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        names.insert(name);
    }
    names
}

#[tokio::test]
async fn alert_rules_check_and_every_metric_they_name_is_served() {
    let rules = deploy("prometheus/relay-rules.yaml");
    if let Some(out) = run("promtool", &["check", "rules", rules.to_str().unwrap()], &[]) {
        assert!(out.status.success(), "{}", show(&out));
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("SUCCESS: 9 rules found"),
            "{}",
            show(&out)
        );
    }
    let dashboard: serde_json::Value =
        serde_json::from_slice(&std::fs::read(deploy("grafana/relay-dashboard.json")).unwrap()).unwrap();
    let exprs: Vec<String> = dashboard["panels"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["targets"].as_array().unwrap().iter())
        .map(|t| t["expr"].as_str().unwrap().to_string())
        .collect();
    assert!(exprs.len() >= 9);

    let node = Relay::start(&[]);
    let http = client();
    // One request of each outcome so the labelled families have a sample.
    let _ = http.get(node.url("/healthz")).send().await.unwrap();
    let scrape = http
        .get(node.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let served: BTreeSet<String> = scrape
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split(['{', ' ']).next())
        .map(str::to_string)
        .collect();
    let mut named = metric_names(&std::fs::read_to_string(&rules).unwrap());
    for expr in &exprs {
        named.extend(metric_names(expr));
    }
    assert!(named.len() >= 10, "{named:?}");
    for name in &named {
        assert!(
            served.contains(name) || served.iter().any(|s| s.starts_with(&format!("{name}_"))),
            "{name} is not served; served: {served:?}"
        );
    }
}

/// The Helm chart rendered with Go's text/template (Helm's engine; `tests/go/helmrender`), for
/// the default values and for five voters with two learners, validates against the schemas and
/// carries the values through.
#[test]
fn helm_chart_renders_and_validates() {
    let have_go = Command::new("go")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !have_go {
        assert!(
            std::env::var_os("RELAY_REQUIRE_GO").is_none(),
            "go is required (scripts/test.sh installs it)"
        );
        eprintln!("skipping: go is not installed");
        return;
    }
    let program = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/go/helmrender/main.go");
    let chart = deploy("helm/relay");
    let work = tempfile::tempdir().unwrap();
    for (settings, replicas, voters, max_unavailable) in [(vec![], 3, 3, 1), (vec!["voters=5", "learners=2"], 7, 5, 2)]
    {
        let mut args = vec![
            "run",
            program.to_str().unwrap(),
            chart.to_str().unwrap(),
            "rel",
            "relay",
        ];
        args.extend(settings.iter().copied());
        let out = Command::new("go")
            .args(&args)
            .env("GO111MODULE", "off")
            .env("GOPATH", work.path().join("gopath"))
            .env("GOCACHE", work.path().join("gocache"))
            .env("GOFLAGS", "")
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", show(&out));
        let rendered = String::from_utf8(out.stdout).unwrap();
        for needed in [
            format!("replicas: {replicas}"),
            format!("--voters {voters}"),
            format!("maxUnavailable: {max_unavailable}"),
            "scheme: HTTPS".to_string(),
            "name: rel-peers".to_string(),
        ] {
            assert!(rendered.contains(&needed), "{needed} missing from:\n{rendered}");
        }
        let file = work.path().join("rendered.yaml");
        std::fs::write(&file, &rendered).unwrap();
        let Some(out) = run("kubernetes-validate", &["--strict", file.to_str().unwrap()], &[]) else {
            return;
        };
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success() && !text.contains("ERROR"), "{text}\n{rendered}");
        assert_eq!(text.matches("passed for resource").count(), 4, "{text}");
    }
}
