//! A launch's options and their exit codes: `--ttl`, `--concurrency`, `--quiet`, plain http,
//! and the values an environment cannot hold (expired 69, NUL byte 78, over `execve`'s limits 78).

mod common;

use std::time::Duration;

use common::{
    assert_not_started, env_of, marker_child, output_within, stderr_of, tmp, vault_run, DevServer,
    RecordingServer, T,
};
use serde_json::json;

#[test]
fn ttl_from_the_file_and_the_flag_wins() {
    let rec = RecordingServer::start(json!({"secrets": {"production/app/A": "value-a"}}));
    let dir = tmp();
    std::fs::write(
        dir.path().join("vault-run.toml"),
        "[vault]\nttl = \"2m\"\n[env]\nA = \"production/app/A\"\n",
    )
    .unwrap();
    for args in [&[][..], &["--ttl", "45s"][..]] {
        let out = output_within(rec.vault_run(dir.path()).args(args).args(["--", "true"]), T);
        assert!(out.status.success(), "{}", stderr_of(&out));
    }
    let ttls: Vec<_> = rec.log()["tokens"].as_array().unwrap().iter().map(|t| t["ttl"].clone()).collect();
    assert_eq!(ttls, vec![json!("2m"), json!("45s")]);
}

#[test]
fn reads_in_flight_never_exceed_concurrency() {
    let secrets: serde_json::Map<String, serde_json::Value> =
        (0..9).map(|i| (format!("production/app/K{i}"), json!(format!("value-{i}")))).collect();
    for (limit, want) in [(3, 3), (1, 1)] {
        let rec = RecordingServer::start(json!({"secrets": secrets, "read_delay": 0.3}));
        let dir = tmp();
        let mapping: String = (0..9).map(|i| format!("K{i} = \"production/app/K{i}\"\n")).collect();
        std::fs::write(dir.path().join("vault-run.toml"), format!("[env]\n{mapping}")).unwrap();
        let out = output_within(
            rec.vault_run(dir.path()).args(["--concurrency", &limit.to_string(), "--", "true"]),
            T,
        );
        assert!(out.status.success(), "{}", stderr_of(&out));
        // Equal, not just at most: the limit is reached, so reads do run concurrently.
        assert_eq!(rec.log()["max_in_flight"], json!(want), "--concurrency {limit}");
    }
}

#[test]
fn a_globs_matches_are_read_concurrently_by_default() {
    // A glob counts as one read until it is listed; its 40 matches must still share the pool,
    // not be read one at a time (each read here takes 0.3 s).
    let secrets: serde_json::Map<String, serde_json::Value> =
        (0..40).map(|i| (format!("production/app/K{i}"), json!(format!("value-{i}")))).collect();
    let rec = RecordingServer::start(json!({"secrets": secrets, "read_delay": 0.3}));
    let dir = tmp();
    std::fs::write(dir.path().join("vault-run.toml"), "[env]\n\"K*\" = \"production/app/*\"\n").unwrap();
    let start = std::time::Instant::now();
    let out = output_within(rec.vault_run(dir.path()).args(["--", "true"]), T);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let in_flight = rec.log()["max_in_flight"].as_u64().unwrap();
    // √(40 reads × a round trip of 1 ms or more ÷ 1 ms per connection): at least 7 in flight.
    assert!(in_flight >= 4, "the 40 matches were read {in_flight} at a time");
    assert!(start.elapsed() < Duration::from_secs(6), "{:?} for 40 reads of 0.3 s", start.elapsed());
}

#[test]
fn quiet_leaves_only_the_error_line() {
    let rec = RecordingServer::start(json!({"secrets": {"production/app/A": "v"}, "approval": "pending"}));
    let dir = tmp();
    let run = |quiet: bool| {
        let mut cmd = rec.vault_run(dir.path());
        if quiet {
            cmd.arg("-q");
        }
        cmd.args(common::words("--approval-timeout 0 -e A=production/app/A -- true"));
        output_within(&mut cmd, T)
    };
    let loud = run(false);
    assert_eq!(loud.status.code(), Some(75), "{}", stderr_of(&loud));
    assert!(stderr_of(&loud).contains("not waiting"), "the warning shows without -q: {}", stderr_of(&loud));
    let quiet = run(true);
    assert_eq!(quiet.status.code(), Some(75), "{}", stderr_of(&quiet));
    let err = stderr_of(&quiet);
    assert!(!err.contains("not waiting"), "-q hides warnings: {err}");
    assert_eq!(err.lines().count(), 1, "-q keeps the one error line: {err}");
}

#[test]
fn plain_http_to_a_non_loopback_host_needs_allow_insecure_http() {
    let rec = RecordingServer::start(json!({"secrets": {"production/app/A": "value-a"}}));
    // An IPv4-mapped IPv6 address is not a loopback address by vault-run's rule, yet the
    // connection lands on 127.0.0.1: the test stays on loopback.
    let port = rec.base_url.rsplit(':').next().unwrap();
    let url = format!("http://[::ffff:127.0.0.1]:{port}");
    let dir = tmp();
    let mut cmd = rec.vault_run(dir.path());
    cmd.env("ASS_BASE_URL", &url).args(common::words("-e A=production/app/A --"));
    let out = common::refused_before_start(&mut cmd, 78);
    assert!(stderr_of(&out).contains("--allow-insecure-http"), "the fix is named: {}", stderr_of(&out));
    assert_eq!(rec.log()["requests"], json!([]), "nothing was sent before refusing");

    // A proxy from the environment would take a non-loopback request elsewhere.
    let mut cmd = rec.vault_run(dir.path());
    for k in ["HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"] {
        cmd.env_remove(k);
    }
    cmd.env("ASS_BASE_URL", &url)
        .args(common::words("--allow-insecure-http -e A=production/app/A -- env -0"));
    let out = output_within(&mut cmd, T);
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(env_of(&out.stdout)["A"], "value-a");
}

#[tokio::test]
async fn an_expired_secret_is_69() {
    let dev = DevServer::with(&[("production/app/A", "value-a")]).await;
    let (status, body) = dev
        .admin("PUT", "/v1/secrets/production/app/OLD", Some(json!({"value": "value-old", "ttl": "1s"})))
        .await;
    assert!(status == 200 || status == 201, "{body}");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let dir = tmp();
    let mut cmd = vault_run(&dev, dir.path());
    cmd.args(common::words("-e A=production/app/A -e OLD=production/app/OLD --"));
    let out = common::refused_before_start(&mut cmd, 69);
    assert!(stderr_of(&out).contains("expired"), "{}", stderr_of(&out));
}

#[tokio::test]
async fn a_value_with_a_nul_byte_is_78() {
    let dev = DevServer::with(&[("production/app/A", "value-a"), ("production/app/NUL", "abc\0def")]).await;
    let dir = tmp();
    let mut cmd = vault_run(&dev, dir.path());
    cmd.args(common::words("-e A=production/app/A -e N=production/app/NUL --"));
    let out = common::refused_before_start(&mut cmd, 78);
    let err = stderr_of(&out);
    assert!(err.contains("NUL") || err.contains("nul"), "{err}");
    assert!(!err.contains("abc"), "the value is not shown: {err}");
}

#[tokio::test]
async fn an_environment_too_large_for_execve_is_78() {
    // One value over Linux's per-string limit (128 KiB), and, separately, many values that
    // together pass the total limit.
    let big = "x".repeat(200 * 1024);
    let dev = DevServer::with(&[("production/app/A", "value-a"), ("production/app/BIG", &big)]).await;
    let dir = tmp();
    let marker = dir.path().join("started");
    let mut cmd = vault_run(&dev, dir.path());
    cmd.args(common::words("-e A=production/app/A -e BIG=production/app/BIG --")).args(marker_child(&marker));
    let out = output_within(&mut cmd, T);
    assert_not_started(&out, 78, &marker);
    assert!(!stderr_of(&out).contains("xxxxxxxx"), "the value is not shown");

    let chunk = "y".repeat(120 * 1024);
    let mut args = vec![];
    for i in 0..40 {
        dev.put(&format!("production/many/K{i}"), &chunk).await;
        args.push("-e".to_owned());
        args.push(format!("K{i}=production/many/K{i}"));
    }
    for mode in [&[][..], &["--supervise"][..]] {
        let mut cmd = vault_run(&dev, dir.path());
        cmd.args(mode).args(&args).arg("--").args(marker_child(&marker));
        let out = output_within(&mut cmd, T);
        assert_not_started(&out, 78, &marker);
    }
}
