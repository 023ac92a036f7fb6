//! Least privilege, checked rather than claimed: an independent test server
//! (`tests/fixtures/recording_ass.py`) records what the real binary asks for — the token's
//! scopes and ttl, and which credential went to which route.

mod common;

use std::time::Duration;

use common::{output_within, stderr_of, RecordingServer};
use common::{tmp, T};
use serde_json::{json, Value};

fn secrets() -> Value {
    json!({"secrets": {
        "production/app/A": "value-a", "production/app/OPT": "value-opt",
        "production/app/DEF": "value-def", "production/db/USER": "value-user",
        "production/db/PASSWORD": "value-password", "production/stripe/ONE": "value-one",
        "production/stripe/TWO": "value-two", "production/tls/KEY": "value-tls",
        "production/env/REF": "value-ref", "production/cli/X": "value-x",
        "production/other/UNUSED": "value-unused"
    }})
}

const MAPPING: &str = r#"
[env]
A    = "production/app/A"
OPT  = { path = "production/app/OPT", optional = true }
DEF  = { path = "production/app/DEF", default = "d" }
URL  = { template = "pg://{{ production/db/USER }}:{{ production/db/PASSWORD }}@h/db" }
TLS  = { path = "production/tls/KEY", as = "file" }
"S_*" = "production/stripe/*"
"#;

fn token_requests(rec: &RecordingServer) -> Vec<Value> {
    rec.log()["tokens"].as_array().unwrap().clone()
}

fn scopes_of(t: &Value) -> Vec<String> {
    let mut v: Vec<String> =
        t["scopes"].as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_owned()).collect();
    v.sort();
    v
}

#[test]
fn the_token_asks_for_exactly_the_scopes_the_mapping_implies() {
    let rec = RecordingServer::start(secrets());
    let dir = tmp();
    std::fs::write(dir.path().join("vault-run.toml"), MAPPING).unwrap();
    let out = output_within(
        rec.vault_run(dir.path())
            .env("REF", "ass://production/env/REF")
            .args(common::words("-e X=production/cli/X -- true")),
        T,
    );
    assert!(out.status.success(), "{}", stderr_of(&out));
    let tokens = token_requests(&rec);
    assert_eq!(tokens.len(), 1, "one token for the whole run: {tokens:?}");
    let mut want: Vec<String> = [
        "production/app/A",
        "production/app/OPT",
        "production/app/DEF",
        "production/db/USER",
        "production/db/PASSWORD",
        "production/tls/KEY",
        "production/stripe/*",
        "production/env/REF",
        "production/cli/X",
    ]
    .iter()
    .map(|p| format!("secrets:read:{p}"))
    .collect();
    want.sort();
    assert_eq!(scopes_of(&tokens[0]), want);
}

/// (mapping file, flags, environment, the scopes expected).
type Case<'a> = (&'a str, &'a [&'a str], &'a [(&'a str, &'a str)], &'a [&'a str]);

#[test]
fn each_kind_of_reference_alone_asks_for_its_own_scope_only() {
    let rec = RecordingServer::start(secrets());
    let cases: [Case; 4] = [
        ("[env]\nA = \"production/app/A\"\n", &[], &[], &["secrets:read:production/app/A"]),
        ("[env]\n\"S_*\" = \"production/stripe/*\"\n", &[], &[], &["secrets:read:production/stripe/*"]),
        ("", &["-e", "X=production/cli/X"], &[], &["secrets:read:production/cli/X"]),
        ("", &[], &[("REF", "ass://production/env/REF")], &["secrets:read:production/env/REF"]),
    ];
    for (i, (mapping, args, envs, want)) in cases.iter().enumerate() {
        let dir = tmp();
        std::fs::write(dir.path().join("vault-run.toml"), mapping).unwrap();
        let mut cmd = rec.vault_run(dir.path());
        cmd.envs(envs.iter().copied()).args(*args).args(["--", "true"]);
        let out = output_within(&mut cmd, T);
        assert!(out.status.success(), "case {i}: {}", stderr_of(&out));
        let tokens = token_requests(&rec);
        assert_eq!(tokens.len(), i + 1);
        assert_eq!(scopes_of(&tokens[i]), want.to_vec(), "case {i}");
    }
}

#[test]
fn the_requested_ttl_is_the_ttl_flag_and_5m_by_default() {
    let rec = RecordingServer::start(secrets());
    let dir = tmp();
    for args in [&[][..], &["--ttl", "90s"][..], &["--ttl", "1h30m"][..]] {
        let out = output_within(
            rec.vault_run(dir.path()).args(args).args(common::words("-e A=production/app/A -- true")),
            T,
        );
        assert!(out.status.success(), "{}", stderr_of(&out));
    }
    let ttls: Vec<Value> = token_requests(&rec).iter().map(|t| t["ttl"].clone()).collect();
    assert_eq!(ttls, vec![json!("5m"), json!("90s"), json!("90m")]);
}

#[test]
fn the_agent_key_goes_only_to_tokens_and_approval_status() {
    let mut config = secrets();
    config["approval"] = json!("approved");
    let rec = RecordingServer::start(config);
    let dir = tmp();
    std::fs::write(dir.path().join("vault-run.toml"), MAPPING).unwrap();
    let out = output_within(rec.vault_run(dir.path()).args(["--", "true"]), T);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let log = rec.log();
    let reqs = log["requests"].as_array().unwrap();
    let route = |r: &Value| format!("{} {}", r["method"].as_str().unwrap(), r["path"].as_str().unwrap());
    assert!(
        reqs.iter().any(|r| route(r) == "GET /v1/approvals/agent/apr_rec_1"),
        "the approval was polled: {reqs:?}"
    );
    assert!(reqs.iter().any(|r| r["path"].as_str().unwrap().starts_with("/v1/secrets")), "secrets were read");
    for r in reqs {
        let route = route(r);
        let allowed = route == "POST /v1/tokens" || route.starts_with("GET /v1/approvals/agent/");
        match r["auth"].as_str().unwrap() {
            "agent" => assert!(allowed, "agent key sent to {route}"),
            "token" => assert!(route.starts_with("GET /v1/secrets"), "token sent to {route}"),
            other => panic!("{route} carried {other} credentials"),
        }
        if allowed {
            assert_eq!(r["auth"], "agent", "{route} without the agent key");
        }
    }
}

#[test]
fn under_watch_the_agent_key_still_goes_only_to_tokens() {
    let rec = RecordingServer::start(secrets());
    let dir = tmp();
    std::fs::write(dir.path().join("vault-run.toml"), MAPPING).unwrap();
    let mut child = rec
        .vault_run(dir.path())
        .args(common::words("--watch --watch-interval 300ms -- sleep 30"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGTERM)
        .unwrap();
    common::wait_within(&mut child, T);
    let log = rec.log();
    let reqs = log["requests"].as_array().unwrap();
    let reads = reqs.iter().filter(|r| r["path"] == "/v1/secrets/production/app/A").count();
    assert!(reads >= 2, "the watch fetched again: {reads} reads");
    for r in reqs {
        let route = format!("{} {}", r["method"].as_str().unwrap(), r["path"].as_str().unwrap());
        match r["auth"].as_str().unwrap() {
            "agent" => assert_eq!(route, "POST /v1/tokens", "agent key sent to {route}"),
            "token" => assert!(route.starts_with("GET /v1/secrets"), "token sent to {route}"),
            other => panic!("{route} carried {other} credentials"),
        }
    }
    for t in log["tokens"].as_array().unwrap() {
        assert_eq!(t["ttl"], "5m");
    }
}
