//! `vault://` over TLS: OpenBao's `-dev-tls` (its own CA, HTTP/2 by ALPN), trusted through
//! `VAULT_CACERT`; once the server chose HTTP/2 the reads share its connection, so many more
//! are in flight than over HTTP/1.1. In CI a missing `bao` is a failure, not a skip.

mod common;

use std::time::Duration;

use common::bao::{bao_available, Bao, ROOT};
use common::{output_within, stderr_of};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vault_over_tls_reads_with_http2_in_flight() {
    if !bao_available() {
        return;
    }
    let bao = Bao::start_tls().await;
    let n = 40;
    let dir = tempfile::tempdir().unwrap();
    let mut toml = String::from("[env]\n");
    for i in 1..=n {
        let r = bao
            .http
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
        let mut cmd = bao.run(dir.path());
        cmd.env("VAULT_TOKEN", ROOT)
            .arg("-vv")
            .args(extra)
            .args(common::words("-- sh -c"))
            .arg("test \"$S_1\" = tls-value-1 && test \"$S_40\" = tls-value-40 && echo ALL");
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
