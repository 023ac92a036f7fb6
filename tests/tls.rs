//! TLS and HTTP/2: the dev server's `--tls` with a private CA, the client trusting that CA (and
//! nothing it was not told to), ALPN choosing HTTP/2, and how many connections a launch opens.

// Starts the dev server in process: needs the crate behind the `dev-server` feature.
#![cfg(feature = "dev-server")]

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use agentsecretstore::client::Error;
use agentsecretstore::AgentVault;
use agentsecretstore_dev::{start, DevServerOptions, RunningDevServer};
use common::{bare_vault_run, output_within, stderr_of};
use serde_json::{json, Value};

async fn tls_server() -> RunningDevServer {
    start(DevServerOptions { tls: true, ..Default::default() }).await.expect("start the TLS dev server")
}

/// An admin client trusting the server's CA, keeping one connection alive, so that its own
/// requests add no connection to the server's counters after the first.
fn admin_http(server: &RunningDevServer) -> reqwest::Client {
    let mut b = reqwest::Client::builder().no_proxy();
    if let Some(pem) = server.ca_certificate_pem() {
        b = b.add_root_certificate(reqwest::Certificate::from_pem(pem.as_bytes()).unwrap());
    }
    b.build().unwrap()
}

async fn admin(
    http: &reqwest::Client,
    server: &RunningDevServer,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> Value {
    let mut req = http
        .request(method.parse().unwrap(), format!("{}{path}", server.base_url()))
        .bearer_auth(server.admin_key().expose());
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.expect("admin request");
    assert!(resp.status().is_success(), "{method} {path}: {}", resp.status());
    resp.json().await.unwrap_or(Value::Null)
}

fn client(server: &RunningDevServer, ca: Option<&str>) -> AgentVault {
    let mut b =
        AgentVault::builder().agent_key(server.agent_key().expose()).base_url(server.base_url()).retries(0);
    if let Some(pem) = ca {
        b = b.ca_certificate(pem);
    }
    b.build().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_trusts_the_private_ca_and_speaks_http2() {
    let server = tls_server().await;
    assert!(server.base_url().starts_with("https://127.0.0.1:"), "{}", server.base_url());
    let pem = server.ca_certificate_pem().expect("a CA with --tls").to_owned();
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"), "{pem}");
    let http = admin_http(&server);
    admin(&http, &server, "PUT", "/v1/secrets/tls/app/KEY", Some(json!({"value": "over-tls-1"}))).await;
    admin(&http, &server, "POST", "/v1/dev/reset-stats", None).await;

    let v = client(&server, Some(&pem));
    assert_eq!(v.get_secret("tls/app/KEY").await.unwrap().expose(), "over-tls-1");
    assert!(v.uses_http2(), "ALPN offered h2 and the client speaks it");

    let stats = admin(&http, &server, "GET", "/v1/dev/stats", None).await;
    // The token and the read, both over HTTP/2.
    assert_counts(&stats, &[("tls_handshakes", 1), ("http2_connections", 1), ("http2_requests", 2)]);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http1_still_works_over_tls() {
    let server = tls_server().await;
    let pem = server.ca_certificate_pem().unwrap();
    let h1 = reqwest::Client::builder()
        .no_proxy()
        .http1_only()
        .add_root_certificate(reqwest::Certificate::from_pem(pem.as_bytes()).unwrap())
        .build()
        .unwrap();
    let resp = h1.get(format!("{}/v1/health", server.base_url())).send().await.unwrap();
    assert_eq!(resp.version(), reqwest::Version::HTTP_11);
    assert_eq!(resp.status(), 200);
    let stats = admin(&admin_http(&server), &server, "GET", "/v1/dev/stats", None).await;
    assert_eq!(stats["tls_handshakes"], 2, "{stats}");
    assert_eq!(stats["http2_connections"], 1, "only the admin client chose h2: {stats}");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_refuses_a_server_it_was_not_told_to_trust() {
    let server = tls_server().await;
    let other = tls_server().await;
    let other_ca = other.ca_certificate_pem().unwrap().to_owned();
    for ca in [None, Some(other_ca.as_str())] {
        let err = client(&server, ca).health().await.unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, Error::Network { .. }), "{err:?}");
        assert!(msg.to_lowercase().contains("certificate"), "names the certificate problem: {msg}");
    }
    let bad = AgentVault::builder()
        .agent_key("ass_x")
        .base_url(server.base_url())
        .ca_certificate("not a certificate")
        .build()
        .unwrap_err();
    assert!(matches!(bad, Error::Config { .. }) && bad.to_string().contains("ASS_CACERT"), "{bad}");
    server.shutdown().await;
    other.shutdown().await;
}

/// Writes N secrets and a mapping for them; returns the directory.
async fn mapping(http: &reqwest::Client, server: &RunningDevServer, n: usize) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let mut toml = String::from("[env]\n");
    for i in 1..=n {
        admin(
            http,
            server,
            "PUT",
            &format!("/v1/secrets/conn/n/K{i}"),
            Some(json!({"value": format!("v-{i}")})),
        )
        .await;
        toml.push_str(&format!("S_{i} = \"conn/n/K{i}\"\n"));
    }
    std::fs::write(dir.path().join("vault-run.toml"), toml).unwrap();
    dir
}

/// Runs vault-run against `server`, checks the child saw all N values, returns the server's
/// counters for that run alone.
/// Launches vault-run for `n` secrets; the server's stats and vault-run's stderr.
async fn launch_logged(server: &RunningDevServer, n: usize, extra: &[&str]) -> (Value, String) {
    let http = admin_http(server);
    let dir = mapping(&http, server, n).await;
    let ca_path = dir.path().join("ca.pem");
    admin(&http, server, "POST", "/v1/dev/reset-stats", None).await;
    let mut cmd = bare_vault_run(dir.path());
    cmd.env("ASS_BASE_URL", server.base_url()).env("ASS_AGENT_KEY", server.agent_key().expose());
    if let Some(pem) = server.ca_certificate_pem() {
        std::fs::write(&ca_path, pem).unwrap();
        cmd.env("ASS_CACERT", &ca_path);
    }
    cmd.args(extra)
        .args(common::words("-- sh -c"))
        .arg(format!("test \"$S_1\" = v-1 && test \"$S_{n}\" = v-{n} && echo ALL-{n}"));
    let out =
        tokio::task::spawn_blocking(move || output_within(&mut cmd, Duration::from_secs(60))).await.unwrap();
    assert!(out.status.success(), "vault-run failed: {}", stderr_of(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), format!("ALL-{n}"));
    (admin(&http, server, "GET", "/v1/dev/stats", None).await, stderr_of(&out))
}

async fn launch(server: &RunningDevServer, n: usize, extra: &[&str]) -> Value {
    launch_logged(server, n, extra).await.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_http2_one_connection_carries_the_token_and_every_read() {
    let server = tls_server().await;
    let stats = launch(&server, 40, &[]).await;
    // The token and 40 reads, all over HTTP/2 on one connection.
    assert_counts(
        &stats,
        &[("connections_accepted", 1), ("tls_handshakes", 1), ("http2_requests", 41), ("total_requests", 41)],
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_http1_connections_are_reused_up_to_the_cap() {
    let server = start(DevServerOptions::default()).await.unwrap();
    let stats = launch(&server, 40, &["--concurrency", "4"]).await;
    let opened = stats["connections_accepted"].as_u64().unwrap();
    // Never more than 4 reads are in flight, so at most 4 connections carry reads; the token's
    // connection is reused when hyper has put it back in the pool before the reads start (it
    // does so from a task of its own, so on a loaded machine a fifth may open). Without reuse
    // it would be one connection per read: 41.
    assert!((1..=5).contains(&opened), "{opened} connections for 41 requests with --concurrency 4: {stats}");
    assert_counts(&stats, &[("http2_requests", 0), ("total_requests", 41)]);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_http1_on_loopback_a_few_connections_carry_the_reads() {
    let server = start(DevServerOptions::default()).await.unwrap();
    let (stats, log) = launch_logged(&server, 40, &["-vv"]).await;
    let line = log.lines().find(|l| l.contains("reading reads=40")).unwrap_or_else(|| panic!("{log}"));
    let field = |name: &str| {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(name))
            .unwrap_or_else(|| panic!("{line}"))
            .to_owned()
    };
    let in_flight: u64 = field("in_flight=").parse().unwrap();
    let round_trip = field("round_trip=");
    let ms: f64 = [("ns", 1e-6), ("µs", 1e-3), ("ms", 1.0), ("s", 1e3)]
        .iter()
        .find_map(|(unit, scale)| {
            round_trip.strip_suffix(unit).and_then(|v| v.parse::<f64>().ok()).map(|v| v * scale)
        })
        .unwrap_or_else(|| panic!("{line}"));
    // A round trip under 5 ms costs less than the connections it would take to hide it:
    // √(40 × RTT ÷ 1 ms) < 15, not one connection per read up to the cap of 16.
    if ms < 5.0 {
        assert!(in_flight < 15, "{in_flight} in flight for a {round_trip} round trip: {line}");
    }
    let opened = stats["connections_accepted"].as_u64().unwrap();
    assert!(opened <= in_flight + 1, "{opened} connections for {in_flight} reads in flight: {stats}");
    assert_counts(&stats, &[("http2_requests", 0), ("total_requests", 41)]);
    server.shutdown().await;
}

#[test]
fn an_unreadable_ass_cacert_is_one_clear_error_and_no_child() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("vault-run.toml"), "[env]\nA = \"x/y/Z\"\n").unwrap();
    let marker = dir.path().join("started");
    let out = output_within(
        bare_vault_run(dir.path())
            .env("ASS_BASE_URL", "https://127.0.0.1:9")
            .env("ASS_AGENT_KEY", "ass_unused")
            .env("ASS_CACERT", dir.path().join("missing.pem"))
            .args(["--", "touch"])
            .arg(&marker),
        Duration::from_secs(30),
    );
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(78), "{err}");
    assert!(err.contains("ASS_CACERT") && err.contains("missing.pem"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(!marker.exists());
}

/// `vault-run dev --tls` as a process: four lines, the CA file readable while it runs and gone
/// after, and the official JS SDK (Node's own TLS, through NODE_EXTRA_CA_CERTS) reading over it.
#[test]
fn dev_tls_process_announces_its_ca_and_serves_the_js_sdk() {
    let mut child = Command::new(common::bin())
        .args(common::words("dev --tls -q --listen 127.0.0.1:0"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    struct Kill(Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut child = Kill(child);
    let mut get = |prefix: &str| {
        let line = lines.next().expect("dev server exited").unwrap();
        line.strip_prefix(prefix).unwrap_or_else(|| panic!("expected {prefix}, got {line}")).to_owned()
    };
    let (base, key, admin_key, ca) =
        (get("ASS_BASE_URL="), get("ASS_AGENT_KEY="), get("ASS_ADMIN_KEY="), get("ASS_CACERT="));
    assert!(base.starts_with("https://127.0.0.1:"), "{base}");
    let pem = std::fs::read_to_string(&ca).unwrap();
    assert!(pem.contains("BEGIN CERTIFICATE") && !pem.contains("PRIVATE KEY"), "{pem}");

    js_sdk_over_tls(&base, &key, &admin_key, &ca);

    // SIGTERM: a clean stop removes the CA file.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.0.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let start = std::time::Instant::now();
    while child.0.try_wait().unwrap().is_none() {
        assert!(start.elapsed() < Duration::from_secs(10), "dev server did not stop");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!std::path::Path::new(&ca).exists(), "CA file left behind: {ca}");
}

fn js_sdk_over_tls(base: &str, key: &str, admin_key: &str, ca: &str) {
    let in_ci = std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "0" && v != "false");
    let have = |cmd: &str| Command::new(cmd).arg("--version").output().is_ok_and(|o| o.status.success());
    if !have("node") || !have("npm") {
        assert!(!in_ci, "CI is set but node/npm are missing: the JS SDK check over TLS cannot run");
        eprintln!("notice: node/npm not found; skipping the JS SDK check over TLS");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let install = Command::new("npm")
        .args(common::words("install --no-save --no-audit --no-fund --loglevel=error --prefix"))
        .arg(dir.path())
        .arg("@agentsecretstore/sdk@1.0.0")
        .output()
        .unwrap();
    if !install.status.success() {
        let msg = format!("npm install failed: {}", String::from_utf8_lossy(&install.stderr));
        assert!(!in_ci, "{msg}");
        eprintln!("notice: {msg}; skipping the JS SDK check over TLS");
        return;
    }
    let sdk = dir.path().join("node_modules/@agentsecretstore/sdk/dist/index.cjs");
    assert!(sdk.exists(), "package layout changed: {}", sdk.display());
    let script = dir.path().join("check.cjs");
    std::fs::write(&script, JS_TLS_CHECK).unwrap();
    let run = |extra_ca: Option<&str>| {
        let mut c = Command::new("node");
        c.arg(&script)
            .env("SDK_PATH", &sdk)
            .env("ASS_BASE_URL", base)
            .env("ASS_AGENT_KEY", key)
            .env("ASS_ADMIN_KEY", admin_key)
            .env_remove("NODE_EXTRA_CA_CERTS")
            .env_remove("NODE_TLS_REJECT_UNAUTHORIZED");
        if let Some(ca) = extra_ca {
            c.env("NODE_EXTRA_CA_CERTS", ca);
        }
        output_within(&mut c, Duration::from_secs(60))
    };
    let out = run(Some(ca));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && stdout.contains("JS-SDK-TLS-OK"), "node: {stdout}\n{}", stderr_of(&out));
    // Without the CA, Node refuses the server: the check above really went through TLS.
    let out = run(None);
    assert!(!out.status.success(), "node trusted a private CA it was not given");
}

const JS_TLS_CHECK: &str = r#"
const assert = require('node:assert/strict');
const { AgentVault } = require(process.env.SDK_PATH);
const v = new AgentVault({ agentKey: process.env.ASS_AGENT_KEY, baseUrl: process.env.ASS_BASE_URL, retries: 0 });
(async () => {
  const w = await v.setSecret('js/tls/KEY', 'js-tls-1');
  assert.equal(w.version, 1);
  assert.equal(await v.getSecret('js/tls/KEY'), 'js-tls-1');
  const list = await v.listSecrets('js');
  assert.equal(list.total, 1);
  console.log('JS-SDK-TLS-OK');
})().catch(e => { console.error(e); process.exit(1); });
"#;

/// Asserts each named counter of the dev server's `/v1/dev/stats` has exactly that value.
fn assert_counts(stats: &Value, expected: &[(&str, u64)]) {
    for (counter, value) in expected {
        assert_eq!(stats[*counter], *value, "{counter}: {stats}");
    }
}
