//! Fail-closed, guarded (issue 20.7): an `optional` or `default` entry treats only "not found"
//! as missing. A server error after the retries, or a denial, stops the run with the documented
//! exit code and nothing started, in exec mode, under `--supervise` and under `--watch`. Each
//! refusal has a control run (the same mapping with the secret simply absent) that does start
//! the child, so the refusal is caused by the failure and not by the mapping.

mod common;

use std::path::Path;

use common::{marker_child, output_within, stderr_of, RecordingServer};
use common::{tmp, T};
use serde_json::{json, Value};

const MODES: [&[&str]; 3] = [&[], &["--supervise"], &["--watch", "--watch-interval", "1s"]];

const OPTIONAL: &str =
    "[env]\nA = \"production/app/A\"\nB = { path = \"production/app/B\", optional = true }\n";
const DEFAULT: &str =
    "[env]\nA = \"production/app/A\"\nB = { path = \"production/app/B\", default = \"dflt\" }\n";
const GLOB: &str = "[env]\nA = \"production/app/A\"\n\"S_*\" = \"production/stripe/*\"\n";
const OPTIONAL_GLOB: &str =
    "[env]\nA = \"production/app/A\"\n\"S_*\" = { path = \"production/stripe/*\", optional = true }\n";

fn secrets() -> Value {
    json!({
        "production/app/A": "value-A", "production/app/B": "value-B",
        "production/stripe/KEY_ONE": "value-1", "production/stripe/KEY_TWO": "value-2",
    })
}

/// A recording server with `secrets()` and `extra` merged into its config.
fn server(extra: Value) -> RecordingServer {
    let mut config = json!({ "secrets": secrets() });
    for (k, v) in extra.as_object().unwrap() {
        config[k] = v.clone();
    }
    RecordingServer::start(config)
}

/// Runs `mapping` against `rec` in every mode with `args`; asserts `code`, that nothing started,
/// and that no value reached the output.
fn refused(rec: &RecordingServer, mapping: &str, args: &[&str], code: i32) {
    for mode in MODES {
        let dir = tmp();
        std::fs::write(dir.path().join("vault-run.toml"), mapping).unwrap();
        let marker = dir.path().join("started");
        let mut cmd = rec.vault_run(dir.path());
        cmd.args(mode).args(args).arg("--").args(marker_child(&marker));
        let out = output_within(&mut cmd, T);
        let err = stderr_of(&out);
        assert_eq!(out.status.code(), Some(code), "{mode:?} {mapping}: {err}");
        assert!(!marker.exists(), "the child was started ({mode:?}): {err}");
        assert!(!err.contains("value-"), "a value in the output ({mode:?}): {err}");
    }
}

/// The child starts; its environment (`env -0`).
fn started(rec: &RecordingServer, mapping: &str, dir: &Path) -> std::collections::HashMap<String, String> {
    std::fs::write(dir.join("vault-run.toml"), mapping).unwrap();
    common::env_after(rec.vault_run(dir).args(["--retries", "0", "--", "env", "-0"]))
}

#[test]
fn optional_with_a_server_error_after_the_retries_is_75() {
    let rec = server(json!({"fail": {"production/app/B": 503}}));
    refused(&rec, OPTIONAL, &["--retries", "1"], 75);
    assert_eq!(rec.requests_to("/v1/secrets/production/app/B"), 6, "one retry in each of three modes");
    // Control: simply absent, it starts without B.
    let absent = server(json!({"secrets": {"production/app/A": "value-A"}}));
    let env = started(&absent, OPTIONAL, tmp().path());
    assert_eq!(env.get("A").map(String::as_str), Some("value-A"));
    assert!(!env.contains_key("B"));
}

#[test]
fn optional_with_a_denial_is_77() {
    let rec = server(json!({"denied": ["production/app/B"]}));
    refused(&rec, OPTIONAL, &[], 77);
}

#[test]
fn default_with_a_server_error_after_the_retries_is_75() {
    let rec = server(json!({"fail": {"production/app/B": 500}}));
    refused(&rec, DEFAULT, &["--retries", "1"], 75);
    // Control: simply absent, the default is used.
    let absent = server(json!({"secrets": {"production/app/A": "value-A"}}));
    let env = started(&absent, DEFAULT, tmp().path());
    assert_eq!(env.get("B").map(String::as_str), Some("dflt"));
}

#[test]
fn default_with_a_denial_is_77() {
    let rec = server(json!({"denied": ["production/app/B"]}));
    refused(&rec, DEFAULT, &[], 77);
}

#[test]
fn an_expired_secret_with_a_default_gets_the_default_and_optional_leaves_it_unset() {
    // Expired is "missing" (69 when required), so optional and default apply: the documented
    // counterpart of the refusals above.
    let rec = server(json!({"expired": ["production/app/B"]}));
    let dir = tmp();
    assert_eq!(started(&rec, DEFAULT, dir.path()).get("B").map(String::as_str), Some("dflt"));
    assert!(!started(&rec, OPTIONAL, dir.path()).contains_key("B"));
    refused(&rec, "[env]\nB = \"production/app/B\"\n", &[], 69);
}

#[test]
fn a_glob_with_a_denial_on_one_match_is_77_optional_or_not() {
    let rec = server(json!({"denied": ["production/stripe/KEY_TWO"]}));
    refused(&rec, GLOB, &[], 77);
    refused(&rec, OPTIONAL_GLOB, &[], 77);
}

#[test]
fn an_optional_glob_with_a_server_error_on_one_match_is_75() {
    let rec = server(json!({"fail": {"production/stripe/KEY_TWO": 503}}));
    refused(&rec, OPTIONAL_GLOB, &["--retries", "0"], 75);
    // Control: every match readable, both are set.
    let ok = server(json!({}));
    let env = started(&ok, OPTIONAL_GLOB, tmp().path());
    assert_eq!(env.get("S_KEY_ONE").map(String::as_str), Some("value-1"));
    assert_eq!(env.get("S_KEY_TWO").map(String::as_str), Some("value-2"));
}

/// What the child starts with is checked before the exec: a value too large for one variable,
/// or an environment over execve's limit, stops the run (78) with nothing started, instead of an
/// exec failing half-way (or a child started without its secrets).
#[tokio::test]
async fn an_environment_execve_would_refuse_stops_the_run_before_the_start() {
    let big = "x".repeat(140 * 1024);
    let mid = "y".repeat(120 * 1024);
    let dev = common::DevServer::start();
    dev.put("production/app/BIG", &big).await;
    for i in 0..24 {
        dev.put(&format!("production/many/K{i:02}"), &mid).await;
    }
    let cases = [
        (vec!["-e", "BIG=production/app/BIG"], "larger than one environment variable"),
        (vec!["-e", "M_*=production/many/*"], "more than execve allows"),
    ];
    for (args, expect) in cases {
        for mode in MODES {
            let dir = tmp();
            let marker = dir.path().join("started");
            let mut cmd = common::vault_run(&dev, dir.path());
            cmd.args(mode).args(&args).arg("--").args(marker_child(&marker));
            let out = output_within(&mut cmd, T);
            let err = stderr_of(&out);
            assert_eq!(out.status.code(), Some(78), "{args:?} {mode:?}: {err}");
            assert!(!marker.exists(), "{args:?} {mode:?}: started");
            assert!(err.contains(expect), "{args:?} {mode:?}: {err}");
        }
    }
    // As a file it fits.
    let dir = tmp();
    std::fs::write(
        dir.path().join("vault-run.toml"),
        "[env]\nBIG = { path = \"production/app/BIG\", as = \"file\" }\n",
    )
    .unwrap();
    let out = output_within(common::vault_run(&dev, dir.path()).args(["--", "sh", "-c", "wc -c < $BIG"]), T);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), (140 * 1024).to_string(), "{}", stderr_of(&out));
}

/// The run's last word on each failure: only a missing secret gets the "mark it optional" /
/// "templates need every secret" hint; a server error says what it is (and is 75, not 69).
#[test]
fn only_a_missing_secret_gets_the_missing_hints() {
    let rec = server(json!({"fail": {"production/app/B": 503}}));
    let cases = [
        ("[env]\nX = \"production/app/NOPE\"\n", 69, Some("mark it optional = true")),
        ("[env]\nX = \"production/app/B\"\n", 75, None),
        (
            "[env]\nX = { template = \"{{ production/app/A }}:{{ production/app/NOPE }}\" }\n",
            69,
            Some("templates need every secret they name"),
        ),
        ("[env]\nX = { template = \"{{ production/app/A }}:{{ production/app/B }}\" }\n", 75, None),
    ];
    for (mapping, code, hint) in cases {
        let dir = tmp();
        std::fs::write(dir.path().join("vault-run.toml"), mapping).unwrap();
        let marker = dir.path().join("started");
        let out = output_within(
            rec.vault_run(dir.path()).args(["--retries", "0", "--"]).args(marker_child(&marker)),
            T,
        );
        let err = stderr_of(&out);
        assert_eq!(out.status.code(), Some(code), "{mapping}: {err}");
        assert!(!marker.exists(), "{mapping}: started");
        match hint {
            Some(h) => assert!(err.contains(h), "{mapping}: {err}"),
            None => assert!(
                !err.contains("optional = true") && !err.contains("templates need"),
                "{mapping}: {err}"
            ),
        }
    }
}

#[test]
fn a_glob_that_matches_nothing_is_69_unless_optional() {
    let rec = server(json!({"secrets": {"production/app/A": "value-A"}}));
    refused(&rec, GLOB, &[], 69);
    let env = started(&rec, OPTIONAL_GLOB, tmp().path());
    assert_eq!(env.get("A").map(String::as_str), Some("value-A"));
    assert!(!env.keys().any(|k| k.starts_with("S_")), "{env:?}");
}

#[test]
fn no_override_keeps_an_inherited_variable_a_glob_would_set() {
    let rec = server(json!({}));
    let dir = tmp();
    std::fs::write(dir.path().join("vault-run.toml"), GLOB).unwrap();
    let env = common::env_after(rec.vault_run(dir.path()).env("S_KEY_ONE", "inherited").args([
        "--no-override",
        "--",
        "env",
        "-0",
    ]));
    assert_eq!(env.get("S_KEY_ONE").map(String::as_str), Some("inherited"));
    assert_eq!(env.get("S_KEY_TWO").map(String::as_str), Some("value-2"));
    let env =
        common::env_after(rec.vault_run(dir.path()).env("S_KEY_ONE", "inherited").args(["--", "env", "-0"]));
    assert_eq!(env.get("S_KEY_ONE").map(String::as_str), Some("value-1"));
}

#[test]
fn a_glob_expanding_onto_a_fixed_name_is_refused() {
    let rec = server(json!({}));
    let mapping = "[env]\nS_KEY_ONE = \"production/app/A\"\n\"S_*\" = \"production/stripe/*\"\n";
    refused(&rec, mapping, &[], 78);
}

/// `check`'s version column for a template: the secret's version when it names one secret, none
/// when it names several (no single version describes the value).
#[tokio::test]
async fn check_shows_a_templates_version_only_for_one_secret() {
    let dev = common::DevServer::start();
    dev.put("production/app/A", "a1").await;
    dev.put("production/app/A", "a2").await;
    dev.put("production/app/B", "b1").await;
    let dir = tmp();
    let mapping = "[env]\nONE = { template = \"x{{ production/app/A }}\" }\nTWO = { template = \"{{ production/app/A }}{{ production/app/B }}\" }\n";
    std::fs::write(dir.path().join("vault-run.toml"), mapping).unwrap();
    let out = output_within(common::vault_run(&dev, dir.path()).args(["check", "--format", "json"]), T);
    let doc: Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", stderr_of(&out)));
    let version = |name: &str| {
        doc["variables"].as_array().unwrap().iter().find(|v| v["name"] == name).unwrap()["version"].clone()
    };
    assert_eq!(version("ONE"), json!(2), "{doc}");
    assert_eq!(version("TWO"), Value::Null, "{doc}");
}
