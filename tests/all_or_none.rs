//! The central promise, through the real binary: the child gets every required secret or is not
//! started at all. Each case maps several required secrets of which exactly one fails in a
//! different way; the command is a marker child (it creates a file), and the test asserts the
//! documented exit code and that the file does not exist. Every case runs in exec mode, under
//! `--supervise` and under `--watch` (its first fetch).

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{marker_child, output_within, stderr_of, vault_run, wait_within, DevServer, RecordingServer};
use common::{tmp, T};
use serde_json::json;

const MODES: [&[&str]; 3] = [&[], &["--supervise"], &["--watch", "--watch-interval", "1s"]];

/// Runs `cmd` (already pointed at a server) with `args`, a mapping file and a marker child, in
/// every mode; asserts `code` and that no child ran.
fn refused_in_every_mode(mut make: impl FnMut(&Path) -> Command, mapping: &str, args: &[&str], code: i32) {
    for mode in MODES {
        let dir = tmp();
        std::fs::write(dir.path().join("vault-run.toml"), mapping).unwrap();
        let mut cmd = make(dir.path());
        cmd.args(mode).args(args).arg("--");
        let out = common::refused_before_start(&mut cmd, code);
        let err = stderr_of(&out);
        assert!(!err.contains("value-"), "a secret value in the error output ({mode:?}): {err}");
    }
}

/// The same mapping with every secret present does start the child, so each refusal below is
/// caused by the one failing secret and not by the mapping or the harness.
fn starts_when_all_present(mut cmd: Command, marker: &Path) {
    cmd.arg("--").args(marker_child(marker));
    let out = output_within(&mut cmd, T);
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    assert!(marker.exists(), "the control run did not start the child");
}

const THREE: &str = r#"
[env]
A = "production/app/A"
B = "production/app/B"
C = "production/app/C"
"#;

async fn dev_with(paths: &[&str]) -> DevServer {
    let dev = DevServer::start();
    for p in paths {
        dev.put(p, &format!("value-{}", p.rsplit('/').next().unwrap())).await;
    }
    dev
}

#[tokio::test]
async fn one_missing_secret_out_of_three() {
    let dev = dev_with(&["production/app/A", "production/app/C"]).await;
    refused_in_every_mode(|d| vault_run(&dev, d), THREE, &[], 69);
    dev.put("production/app/B", "value-B").await;
    let dir = tmp();
    std::fs::write(dir.path().join("vault-run.toml"), THREE).unwrap();
    starts_when_all_present(vault_run(&dev, dir.path()), &dir.path().join("started"));
}

fn recording_three() -> serde_json::Value {
    json!({"secrets": {"production/app/A": "value-A", "production/app/B": "value-B", "production/app/C": "value-C"}})
}

/// The three secrets with B answering `status`: refused in every mode (one retry each); the
/// server, for its log.
fn b_failing_with(status: u16) -> RecordingServer {
    let mut config = recording_three();
    config["fail"] = json!({ "production/app/B": status });
    let rec = RecordingServer::start(config);
    refused_in_every_mode(|d| rec.vault_run(d), THREE, &["--retries", "1"], 75);
    rec
}

#[test]
fn one_read_failing_with_500_while_the_others_succeed() {
    let rec = b_failing_with(500);
    let reads = rec.requests_to("/v1/secrets/production/app/A");
    assert!(reads >= 3, "the other reads were made (and succeeded) in every mode: {reads}");
}

#[test]
fn one_read_failing_with_503_after_the_retries() {
    let rec = b_failing_with(503);
    let b_reads = rec.requests_to("/v1/secrets/production/app/B");
    assert_eq!(b_reads, 6, "one retry per mode, three modes");
}

#[test]
fn one_read_denied_by_scope() {
    let mut config = recording_three();
    config["denied"] = json!(["production/app/C"]);
    let rec = RecordingServer::start(config);
    refused_in_every_mode(|d| rec.vault_run(d), THREE, &[], 77);
}

#[tokio::test]
async fn one_secret_outside_the_agents_scopes() {
    let dev = dev_with(&["production/app/A", "production/app/B", "production/app/C"]).await;
    let key = dev.agent("narrow", &["secrets:read:production/app/A", "secrets:read:production/app/B"]).await;
    refused_in_every_mode(
        |d| {
            let mut c = vault_run(&dev, d);
            c.env("ASS_AGENT_KEY", &key);
            c
        },
        THREE,
        &[],
        77,
    );
}

#[tokio::test]
async fn a_template_with_one_missing_reference_among_present_ones() {
    let dev = dev_with(&["production/app/A", "production/app/C"]).await;
    let mapping = r#"
[env]
URL = { template = "x://{{ production/app/A }}:{{ production/app/B }}@{{ production/app/C }}" }
"#;
    refused_in_every_mode(|d| vault_run(&dev, d), mapping, &[], 69);
    dev.put("production/app/B", "value-B").await;
    let dir = tmp();
    std::fs::write(dir.path().join("vault-run.toml"), mapping).unwrap();
    starts_when_all_present(vault_run(&dev, dir.path()), &dir.path().join("started"));
}

/// Which value would win is not for vault-run to guess: a glob whose expansion lands on a name
/// another entry sets refuses the run (78), naming both entries.
#[tokio::test]
async fn a_glob_expanding_onto_a_name_another_entry_sets() {
    let dev = dev_with(&["production/app/A", "production/other/A"]).await;
    let mapping = r#"
[env]
APP_A = "production/other/A"
"APP_*" = "production/app/*"
"#;
    refused_in_every_mode(|d| vault_run(&dev, d), mapping, &[], 78);
    let dir = tmp();
    std::fs::write(dir.path().join("vault-run.toml"), mapping).unwrap();
    let mut cmd = vault_run(&dev, dir.path());
    let out = common::refused_before_start(cmd.arg("--"), 78);
    let err = stderr_of(&out);
    assert!(err.contains("APP_A: set by both") && err.contains("vault-run.toml:"), "{err}");
    let fixed = mapping.replace("APP_A =", "OTHER_A =");
    std::fs::write(dir.path().join("vault-run.toml"), fixed).unwrap();
    starts_when_all_present(vault_run(&dev, dir.path()), &dir.path().join("started"));
}

#[test]
fn a_glob_whose_listing_succeeds_but_one_read_fails() {
    let mut config = json!({"secrets": {
        "production/stripe/KEY_ONE": "value-1", "production/stripe/KEY_TWO": "value-2",
        "production/stripe/KEY_THREE": "value-3", "production/app/A": "value-A"}});
    config["fail"] = json!({"production/stripe/KEY_TWO": 500});
    let rec = RecordingServer::start(config);
    let mapping = "[env]\nA = \"production/app/A\"\n\"S_*\" = \"production/stripe/*\"\n";
    refused_in_every_mode(|d| rec.vault_run(d), mapping, &["--retries", "0"], 75);
    let log = rec.log();
    let reqs = log["requests"].as_array().unwrap();
    assert!(
        reqs.iter().any(|r| r["path"] == "/v1/secrets" || r["path"] == "/v1/secrets/production/stripe"),
        "listed"
    );
    assert!(
        reqs.iter().any(|r| r["path"] == "/v1/secrets/production/stripe/KEY_ONE"),
        "read the other matches"
    );
}

#[tokio::test]
async fn an_approval_denied_for_one_of_them() {
    for mode in MODES {
        // A fresh server each time: a denial is remembered for that agent and set of scopes.
        let dev = dev_with(&["production/app/A", "production/app/C"]).await;
        dev.put_tier("production/app/B", "value-B", "sensitive").await;
        let dir = tmp();
        std::fs::write(dir.path().join("vault-run.toml"), THREE).unwrap();
        let marker = dir.path().join("started");
        let mut cmd = vault_run(&dev, dir.path());
        cmd.args(mode).arg("--").args(marker_child(&marker)).stdout(Stdio::null()).stderr(Stdio::null());
        let mut child = cmd.spawn().unwrap();
        let id = dev.wait_pending().await;
        dev.deny(&id, "not today").await;
        let status = wait_within(&mut child, T);
        assert_eq!(status.code(), Some(77), "{mode:?}");
        assert!(!marker.exists(), "the child was started ({mode:?})");
    }
}

#[test]
fn the_deadline_passing_while_some_reads_are_done() {
    let mut config = recording_three();
    config["delay"] = json!({"production/app/C": 30});
    let rec = RecordingServer::start(config);
    let start = Instant::now();
    refused_in_every_mode(|d| rec.vault_run(d), THREE, &["--deadline", "1s"], 75);
    assert!(start.elapsed() < Duration::from_secs(20), "the deadline did not bound the start-up");
    let reqs = rec.log()["requests"].as_array().unwrap().clone();
    assert!(
        reqs.iter().any(|r| r["path"] == "/v1/secrets/production/app/A"),
        "A was read before the deadline"
    );
}

/// A refresh where one value changed and another went missing must not restart the child (it
/// would start without the missing one); once the secret is back, the restart happens.
#[tokio::test]
async fn watch_never_restarts_the_child_with_a_missing_secret() {
    let dev = dev_with(&["production/app/A", "production/app/B", "production/app/C"]).await;
    let dir = tmp();
    std::fs::write(dir.path().join("vault-run.toml"), THREE).unwrap();
    let starts = dir.path().join("starts");
    let script = format!("echo \"A=$A B=${{B-unset}} C=$C\" >> '{}'; exec sleep 60", starts.display());
    let mut cmd = vault_run(&dev, dir.path());
    cmd.args(common::words("--watch --watch-interval 300ms --retries 0 -- sh -c")).arg(&script);
    cmd.stdout(Stdio::null()).stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let read = || std::fs::read_to_string(&starts).unwrap_or_default();
    let until = Instant::now() + T;
    while read().lines().count() < 1 {
        assert!(Instant::now() < until, "the child never started");
        std::thread::sleep(Duration::from_millis(50));
    }
    // One value changes, another disappears: a restart would start the child without B.
    dev.put("production/app/A", "value-A2").await;
    let (status, body) = dev.admin("DELETE", "/v1/secrets/production/app/B", None).await;
    assert_eq!(status, 204, "{body}");
    std::thread::sleep(Duration::from_secs(2));
    assert!(child.try_wait().unwrap().is_none(), "vault-run ended during the failed refreshes");
    assert_eq!(read(), "A=value-A B=value-B C=value-C\n", "restarted during failed refreshes");
    dev.put("production/app/B", "value-B2").await;
    while read().lines().count() < 2 {
        assert!(Instant::now() < until, "no restart once every secret was back: {}", read());
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(read().lines().nth(1), Some("A=value-A2 B=value-B2 C=value-C"));
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    wait_within(&mut child, T);
}
