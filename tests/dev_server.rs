//! `vault-run dev` as a real process, driven over HTTP: every endpoint, every error code, the
//! approval flow, the test knobs, the log hygiene, and the official JS SDK against it.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::header::HeaderMap;
use serde_json::{json, Value};

use common::{bin, DevServer};

/// A running `vault-run dev` (the shared harness), with requests that keep the headers.
struct Dev(DevServer);

impl std::ops::Deref for Dev {
    type Target = DevServer;
    fn deref(&self) -> &DevServer {
        &self.0
    }
}

impl std::ops::DerefMut for Dev {
    fn deref_mut(&mut self) -> &mut DevServer {
        &mut self.0
    }
}

/// One answer: status, headers, JSON body (`Null` when empty or not JSON).
struct Answer {
    status: u16,
    headers: HeaderMap,
    body: Value,
}

impl Answer {
    fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }
}

impl Dev {
    fn start() -> Self {
        Dev(DevServer::start())
    }

    fn start_with(args: &[&str]) -> Self {
        Dev(DevServer::start_with(args))
    }

    async fn send(&self, method: &str, path: &str, bearer: Option<&str>, body: Option<String>) -> Answer {
        let mut req = self.http.request(method.parse().unwrap(), format!("{}{path}", self.base_url));
        if let Some(b) = bearer {
            req = req.bearer_auth(b);
        }
        if let Some(b) = body {
            req = req.header("content-type", "application/json").body(b);
        }
        let resp = req.send().await.unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap();
        Answer { status, headers, body: serde_json::from_str(&text).unwrap_or(Value::Null) }
    }

    async fn call(&self, method: &str, path: &str, bearer: Option<&str>, body: Option<Value>) -> Answer {
        self.send(method, path, bearer, body.map(|b| b.to_string())).await
    }

    async fn admin(&self, method: &str, path: &str, body: Option<Value>) -> Answer {
        self.call(method, path, Some(&self.admin_key.clone()), body).await
    }

    async fn token_request(&self, key: &str, body: Value) -> Answer {
        self.call("POST", "/v1/tokens", Some(key), Some(body)).await
    }

    /// A token for `scopes` with the default agent; panics unless 200.
    async fn token(&self, scopes: &[&str]) -> String {
        let key = self.agent_key.clone();
        let a = self.token_request(&key, json!({ "scopes": scopes })).await;
        assert_eq!(a.status, 200, "token for {scopes:?}: {}", a.body);
        a.body["token"].as_str().unwrap().to_owned()
    }

    async fn new_agent(&self, name: &str, scopes: &[&str]) -> String {
        let a = self.admin("POST", "/v1/agents", Some(json!({"name": name, "allowed_scopes": scopes}))).await;
        assert_eq!(a.status, 201, "{}", a.body);
        assert!(a.body["id"].as_str().unwrap().starts_with("agt_"));
        assert_eq!(a.body["name"], name);
        a.body["api_key"].as_str().unwrap().to_owned()
    }
}

fn assert_error(a: &Answer, status: u16, code: &str) {
    assert_eq!((a.status, a.code()), (status, code), "body: {}", a.body);
    let ct = a.headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("");
    assert!(ct.starts_with("application/json"), "content-type {ct:?}");
    let msg = a.body["error"]["message"].as_str().unwrap_or("");
    assert!(!msg.is_empty(), "message: {}", a.body);
    assert_eq!(a.body["detail"].as_str(), Some(msg), "detail repeats the message");
}

/// Runs `vault-run dev ARGS` expecting it to fail quickly; returns (exit code, stderr).
fn run_failing(args: &[&str]) -> (i32, String) {
    let out = common::output_within(
        Command::new(bin()).arg("dev").args(args).stdin(Stdio::null()),
        Duration::from_secs(30),
    );
    assert!(out.stdout.is_empty(), "nothing on stdout: {}", String::from_utf8_lossy(&out.stdout));
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[tokio::test]
async fn prints_three_lines_and_serves_health() {
    let dev = Dev::start();
    let port = dev.base_url.strip_prefix("http://127.0.0.1:").expect("loopback base url");
    assert!(port.parse::<u16>().unwrap() > 0);
    let hex = |s: &str| s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit());
    assert!(dev.agent_key.strip_prefix("ass_").is_some_and(hex), "{}", dev.agent_key);
    assert!(dev.admin_key.strip_prefix("ass_admin_").is_some_and(hex));
    let a = dev.call("GET", "/v1/health", None, None).await;
    assert_eq!(a.status, 200);
    assert_eq!(
        a.body,
        json!({"status": "ok", "version": env!("CARGO_PKG_VERSION"), "service": "vault-run-dev"})
    );
    assert!(a.headers["content-type"].to_str().unwrap().starts_with("application/json"));
    // Two servers never share keys.
    let other = Dev::start();
    assert_ne!(other.agent_key, dev.agent_key);
    assert_ne!(other.admin_key, dev.admin_key);
}

#[test]
fn sigterm_exits_zero() {
    let mut dev = Dev::start();
    let pid = dev.child.id() as i32;
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let start = Instant::now();
    loop {
        if let Some(status) = dev.child.try_wait().unwrap() {
            assert_eq!(status.code(), Some(0), "stderr: {}", dev.stderr());
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "did not exit on SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn bad_configuration_exit_codes() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let (code, err) = run_failing(&["--listen", &addr]);
    assert_eq!(code, 75, "{err}");
    assert_eq!(err.lines().filter(|l| l.contains("error")).count(), 1, "{err}");
    assert!(err.contains(&addr), "{err}");

    let (code, err) = run_failing(&["--seed", "/nonexistent/seed.toml"]);
    assert_eq!(code, 78, "{err}");
    assert!(err.contains("/nonexistent/seed.toml"), "{err}");

    let dir = tempfile::tempdir().unwrap();
    let seed = dir.path().join("seed.toml");
    std::fs::write(
        &seed,
        "[[secret]]\npath = \"a/OK\"\nvalue = \"fine\"\n\n[[secret]]\npath = \"a/B\"\nvalue = 9876543\n",
    )
    .unwrap();
    let (code, err) = run_failing(&["--seed", seed.to_str().unwrap()]);
    assert_eq!(code, 78, "{err}");
    assert!(err.contains("line 7") && err.contains("[[secret]] #2"), "{err}");
    assert!(!err.contains("9876543"), "the value is never echoed: {err}");
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");

    std::fs::write(&seed, "[[agent]]\nname = \"x\"\nallowed_scopes = [\"secrets:read\"]\n").unwrap();
    let (code, err) = run_failing(&["--seed", seed.to_str().unwrap()]);
    assert_eq!(code, 78, "{err}");
    assert!(err.contains("[[agent]] #1") && err.contains("allowed_scopes"), "{err}");

    let (code, err) = run_failing(&["--approval-ttl", "0"]);
    assert_eq!(code, 78, "{err}");
    let (code, _) = run_failing(&["--rate-limit", "fast"]);
    assert_ne!(code, 0, "clap refuses a bad rate");
}

#[tokio::test]
async fn seed_file_sets_keys_agents_and_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let seed = dir.path().join("seed.toml");
    std::fs::write(
        &seed,
        r#"
[admin]
key = "ass_admin_seeded_0001"

[[agent]]
name = "reader"
key = "ass_seeded_reader_0001"
allowed_scopes = ["secrets:read:production/*"]

[[agent]]
name = "writer"
key = "ass_seeded_writer_0002"

[[secret]]
path = "production/db/PASSWORD"
value = "seeded-db-password"
secret_type = "db_credential"
metadata = { owner = "team-a", rotation = 30 }

[[secret]]
path = "production/pay/KEY"
value = "seeded-pay-key"
access_tier = "critical"

[[secret]]
path = "production/tmp/SHORT"
value = "seeded-short"
ttl = "1s"
"#,
    )
    .unwrap();
    let dev = Dev::start_with(&["--seed", seed.to_str().unwrap()]);
    assert_eq!(dev.agent_key, "ass_seeded_reader_0001", "the first agent is printed");
    assert_eq!(dev.admin_key, "ass_admin_seeded_0001");

    let t = dev.token(&["secrets:read:production/db/*"]).await;
    let a = dev.call("GET", "/v1/secrets/production/db/PASSWORD", Some(&t), None).await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.body["value"], "seeded-db-password");
    assert_eq!(a.body["secret_type"], "db_credential");
    assert_eq!(a.body["metadata"], json!({"owner": "team-a", "rotation": 30}));
    assert_eq!(a.body["version"], 1);

    // The reader may not ask for write scopes.
    let a =
        dev.token_request("ass_seeded_reader_0001", json!({"scopes": ["secrets:write:production/x"]})).await;
    assert_error(&a, 403, "SCOPE_DENIED");
    assert!(a.body["error"]["message"].as_str().unwrap().contains("secrets:write:production/x"));
    // The second agent has the default secrets:*:*.
    let a =
        dev.token_request("ass_seeded_writer_0002", json!({"scopes": ["secrets:write:anything/x"]})).await;
    assert_eq!(a.status, 200, "{}", a.body);
    // Seeded tiers count.
    let a = dev
        .token_request("ass_seeded_reader_0001", json!({"scopes": ["secrets:read:production/pay/KEY"]}))
        .await;
    assert_eq!(a.status, 202, "{}", a.body);
    // Seeded ttl counts from start.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let a = dev.admin("GET", "/v1/secrets/production/tmp/SHORT", None).await;
    assert_error(&a, 410, "SECRET_EXPIRED");
}

#[tokio::test]
async fn token_requests_validate_and_enforce_limits() {
    let dev = Dev::start();
    dev.put_tier("prod/app/K", "value-k-000", "standard").await;
    let key = dev.agent_key.clone();

    for (body, what) in [
        (json!({"scopes": []}), "empty scopes"),
        (json!({"scopes": ["secrets:list:x"]}), "bad scope"),
        (json!({"scopes": ["secrets:read:prod/*"], "ttl": "25h"}), "ttl above 24h"),
        (json!({"scopes": ["secrets:read:prod/*"], "ttl": "soon"}), "bad ttl"),
        (json!({"scopes": ["secrets:read:prod/*"], "ttl": 0}), "zero ttl"),
        (json!({"scopes": ["secrets:read:prod/*"], "max_uses": 0}), "zero max_uses"),
        (json!({"scopes": ["secrets:read:prod/*"], "ip_allowlist": ["not-an-ip"]}), "bad ip"),
        (json!({"nothing": true}), "no scopes field"),
    ] {
        let a = dev.token_request(&key, body).await;
        assert_eq!((a.status, a.code()), (400, "VALIDATION_ERROR"), "{what}: {}", a.body);
    }
    let a = dev.send("POST", "/v1/tokens", Some(&key), Some("{\"scopes\": [".into())).await;
    assert_error(&a, 400, "VALIDATION_ERROR");

    let got = dev.token_request("ass_unknown", json!({"scopes": ["secrets:read:prod/*"]})).await;
    assert_error(&got, 401, "UNAUTHORIZED");
    let got = dev.call("POST", "/v1/tokens", None, Some(json!({"scopes": ["*"]}))).await;
    assert_error(&got, 401, "UNAUTHORIZED");
    let t = dev.token(&["secrets:read:prod/*"]).await;
    let got = dev.token_request(&t, json!({"scopes": ["secrets:read:prod/*"]})).await;
    assert_error(&got, 401, "UNAUTHORIZED");

    // A fresh token: 200 {token, token_id, expires_at}, default ttl 1h.
    let a = dev.token_request(&key, json!({"scopes": ["secrets:read:prod/*"]})).await;
    assert_eq!(a.status, 200);
    assert!(a.body["token"].as_str().unwrap().starts_with("asst_"));
    assert!(a.body["token_id"].as_str().unwrap().starts_with("tok_"));
    let exp = time::OffsetDateTime::parse(
        a.body["expires_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let left = exp - time::OffsetDateTime::now_utc();
    assert!(left > time::Duration::minutes(59) && left <= time::Duration::hours(1), "{left}");

    // max_uses counts every /v1/secrets request, failed ones too.
    let a = dev.token_request(&key, json!({"scopes": ["secrets:read:prod/*"], "max_uses": 2})).await;
    let t = a.body["token"].as_str().unwrap().to_owned();
    assert_eq!(dev.call("GET", "/v1/secrets/prod/app/K", Some(&t), None).await.status, 200);
    assert_eq!(dev.call("GET", "/v1/secrets/prod/app/NOPE", Some(&t), None).await.status, 404);
    assert_error(&dev.call("GET", "/v1/secrets/prod/app/K", Some(&t), None).await, 401, "UNAUTHORIZED");

    // Expiry.
    let a = dev.token_request(&key, json!({"scopes": ["secrets:read:prod/*"], "ttl": "1s"})).await;
    let t = a.body["token"].as_str().unwrap().to_owned();
    assert_eq!(dev.call("GET", "/v1/secrets/prod/app/K", Some(&t), None).await.status, 200);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_error(&dev.call("GET", "/v1/secrets/prod/app/K", Some(&t), None).await, 401, "UNAUTHORIZED");

    // ip_allowlist against the peer address.
    let a = dev
        .token_request(&key, json!({"scopes": ["secrets:read:prod/*"], "ip_allowlist": ["127.0.0.1"]}))
        .await;
    let t = a.body["token"].as_str().unwrap().to_owned();
    assert_eq!(dev.call("GET", "/v1/secrets/prod/app/K", Some(&t), None).await.status, 200);
    let a = dev
        .token_request(&key, json!({"scopes": ["secrets:read:prod/*"], "ip_allowlist": ["10.9.8.7"]}))
        .await;
    let t = a.body["token"].as_str().unwrap().to_owned();
    assert_error(&dev.call("GET", "/v1/secrets/prod/app/K", Some(&t), None).await, 401, "UNAUTHORIZED");

    // Agents: created by the admin key only, scopes enforced.
    let narrow = dev.new_agent("narrow", &["secrets:read:public/*"]).await;
    let got = dev.token_request(&narrow, json!({"scopes": ["secrets:read:prod/*"]})).await;
    assert_error(&got, 403, "SCOPE_DENIED");
    assert_eq!(dev.token_request(&narrow, json!({"scopes": ["secrets:read:public/a/b"]})).await.status, 200);
    let a = dev.call("POST", "/v1/agents", Some(&key), Some(json!({"name": "x"}))).await;
    assert_error(&a, 401, "UNAUTHORIZED");
    let a = dev.admin("POST", "/v1/agents", Some(json!({"name": "bad", "allowed_scopes": ["nope"]}))).await;
    assert_error(&a, 400, "VALIDATION_ERROR");
    let default_scopes = dev.admin("POST", "/v1/agents", Some(json!({"name": "wide"}))).await;
    let wide = default_scopes.body["api_key"].as_str().unwrap().to_owned();
    assert_eq!(dev.token_request(&wide, json!({"scopes": ["secrets:*:*"]})).await.status, 200);
}

#[tokio::test]
async fn secret_crud_versions_tiers_and_expiry() {
    let dev = Dev::start();
    let t = dev.token(&["secrets:*:prod/*"]).await;

    let req =
        json!({"value": "v-one-111", "secret_type": "api_key", "metadata": {"owner": "a"}, "unknown": 1});
    let a = dev.call("PUT", "/v1/secrets/prod/app/API_KEY", Some(&t), Some(req)).await;
    assert_eq!(a.status, 201, "{}", a.body);
    let id = a.body["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("sec_"));
    assert_eq!(
        (a.body["version"].as_u64(), a.body["namespace"].as_str(), a.body["key"].as_str()),
        (Some(1), Some("prod/app"), Some("API_KEY"))
    );
    assert!(a.body.get("value").is_none(), "writes never echo the value");
    // JS SDK style: metadata null keeps the metadata.
    let req = json!({"value": "v-two-222", "metadata": null});
    let a = dev.call("PUT", "/v1/secrets/prod/app/API_KEY", Some(&t), Some(req)).await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!((a.body["version"].as_u64(), a.body["id"].as_str()), (Some(2), Some(id.as_str())));
    let a = dev.call("GET", "/v1/secrets/prod/app/API_KEY", Some(&t), None).await;
    assert_eq!(a.status, 200);
    assert_eq!(a.body["value"], "v-two-222");
    assert_eq!(a.body["secret_type"], "api_key", "omitted fields keep their values");
    assert_eq!(a.body["metadata"], json!({"owner": "a"}));
    assert_eq!(a.body["access_tier"], "standard");
    for f in ["created_at", "updated_at"] {
        assert!(a.body[f].is_string(), "{f}");
    }
    assert!(a.body["expires_at"].is_null());

    // Errors.
    let got = dev.call("GET", "/v1/secrets/prod/app/NOPE", Some(&t), None).await;
    assert_error(&got, 404, "SECRET_NOT_FOUND");
    let got = dev.call("GET", "/v1/secrets/other/app/API_KEY", Some(&t), None).await;
    assert_error(&got, 403, "SCOPE_DENIED");
    dev.put_tier("other/app/EXISTS", "x-value", "standard").await;
    // Scope is checked before existence: the same answer whether the secret exists or not.
    assert_error(&dev.call("GET", "/v1/secrets/other/app/EXISTS", Some(&t), None).await, 403, "SCOPE_DENIED");
    let got = dev.call("GET", "/v1/secrets/other/app/MISSING", Some(&t), None).await;
    assert_error(&got, 403, "SCOPE_DENIED");
    let a = dev.call("PUT", "/v1/secrets/prod/app/X", Some(&t), Some(json!({"secret_type": "custom"}))).await;
    assert_error(&a, 400, "VALIDATION_ERROR");
    let a = dev.call("PUT", "/v1/secrets/prod/app/X", Some(&t), Some(json!({"value": 5}))).await;
    assert_error(&a, 400, "VALIDATION_ERROR");
    let a = dev
        .call("PUT", "/v1/secrets/prod/app/X", Some(&t), Some(json!({"value": "v", "access_tier": "secret"})))
        .await;
    assert_error(&a, 400, "VALIDATION_ERROR");
    assert_error(&dev.call("PUT", "/v1/secrets/prod/app/X", Some(&t), None).await, 400, "VALIDATION_ERROR");
    assert_error(&dev.call("GET", "/v1/secrets/prod/app/API_KEY", None, None).await, 401, "UNAUTHORIZED");
    let got = dev.call("GET", "/v1/secrets/prod/app/API_KEY", Some("asst_forged"), None).await;
    assert_error(&got, 401, "UNAUTHORIZED");

    // The agent key itself is refused on /v1/secrets, with a hint, and counted.
    let key = dev.agent_key.clone();
    let a = dev.call("GET", "/v1/secrets/prod/app/API_KEY", Some(&key), None).await;
    assert_error(&a, 401, "UNAUTHORIZED");
    assert!(a.body["error"]["message"].as_str().unwrap().contains("POST /v1/tokens"));
    assert_eq!(dev.stats().await["agent_key_on_secrets"], 1);

    // Tiers (contract §4 "Writes"): a standard token creates secrets of any tier, as the seed
    // SDK's example does, but overwrites only standard ones; the admin key writes anything.
    let req = json!({"value": "v", "access_tier": "sensitive"});
    let a = dev.call("PUT", "/v1/secrets/prod/app/NEW_SENSITIVE", Some(&t), Some(req)).await;
    assert_eq!((a.status, a.body["access_tier"].as_str()), (201, Some("sensitive")), "{}", a.body);
    let a = dev
        .call("PUT", "/v1/secrets/prod/app/NEW_SENSITIVE", Some(&t), Some(json!({"value": "overwrite"})))
        .await;
    assert_error(&a, 403, "HUMAN_AUTH_REQUIRED");
    dev.put_tier("prod/app/S", "sensitive-v", "sensitive").await;
    let req = json!({"value": "v", "access_tier": "standard"});
    let a = dev.call("PUT", "/v1/secrets/prod/app/S", Some(&t), Some(req)).await;
    assert_error(&a, 403, "HUMAN_AUTH_REQUIRED");
    let a = dev.call("DELETE", "/v1/secrets/prod/app/S", Some(&t), None).await;
    assert_error(&a, 403, "HUMAN_AUTH_REQUIRED");
    let a = dev.admin("DELETE", "/v1/secrets/prod/app/S", None).await;
    assert_eq!(a.status, 204);
    assert!(
        a.headers.get("content-type").is_none(),
        "204 has no JSON content-type (the JS SDK would parse it)"
    );

    // Delete standard with a delete scope; delete scopes never wait for approval.
    dev.put_tier("prod/app/C", "crit-v", "critical").await;
    let del = dev.token(&["secrets:delete:prod/*"]).await;
    assert_eq!(dev.call("DELETE", "/v1/secrets/prod/app/API_KEY", Some(&del), None).await.status, 204);
    let got = dev.call("DELETE", "/v1/secrets/prod/app/API_KEY", Some(&del), None).await;
    assert_error(&got, 404, "SECRET_NOT_FOUND");
    let got = dev.call("DELETE", "/v1/secrets/prod/app/C", Some(&del), None).await;
    assert_error(&got, 403, "HUMAN_AUTH_REQUIRED");
    let got = dev.call("DELETE", "/v1/secrets/other/app/EXISTS", Some(&del), None).await;
    assert_error(&got, 403, "SCOPE_DENIED");

    // Expiry: PUT with ttl.
    let a = dev
        .call("PUT", "/v1/secrets/prod/tmp/SHORT", Some(&t), Some(json!({"value": "short-v", "ttl": "1s"})))
        .await;
    assert_eq!(a.status, 201);
    assert!(a.body["expires_at"].is_string());
    assert_eq!(dev.call("GET", "/v1/secrets/prod/tmp/SHORT", Some(&t), None).await.status, 200);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_error(&dev.call("GET", "/v1/secrets/prod/tmp/SHORT", Some(&t), None).await, 410, "SECRET_EXPIRED");
    let list = dev.call("GET", "/v1/secrets?namespace=prod/tmp", Some(&t), None).await;
    assert_eq!(list.body["items"][0]["expired"], true);
    // Writing again without a ttl makes it permanent again.
    let a = dev.call("PUT", "/v1/secrets/prod/tmp/SHORT", Some(&t), Some(json!({"value": "long-v"}))).await;
    assert_eq!((a.status, a.body["version"].as_u64()), (200, Some(2)));
    assert_eq!(dev.call("GET", "/v1/secrets/prod/tmp/SHORT", Some(&t), None).await.body["value"], "long-v");
}

#[tokio::test]
async fn listing_paths_and_encodings() {
    let dev = Dev::start();
    for p in ["prod/b/K", "prod/a/K", "prod/ROOT", "production/X", "prod/a/deep/er/K"] {
        dev.put_tier(p, &format!("value-of-{p}"), "standard").await;
    }
    let t = dev.token(&["secrets:read:prod/*"]).await;
    let a = dev.call("GET", "/v1/secrets?namespace=prod", Some(&t), None).await;
    assert_eq!(a.status, 200, "{}", a.body);
    let names: Vec<String> = a.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| format!("{}/{}", i["namespace"].as_str().unwrap(), i["key"].as_str().unwrap()))
        .collect();
    assert_eq!(
        names,
        ["prod/ROOT", "prod/a/K", "prod/a/deep/er/K", "prod/b/K"],
        "recursive, sorted, not production/"
    );
    assert_eq!(a.body["total"], 4);
    assert_eq!(a.body["namespace"], "prod");
    assert!(!a.body.to_string().contains("value-of-"), "listings never carry values");
    assert_eq!(a.body["items"][0]["expired"], false);

    let a = dev.call("GET", "/v1/secrets?namespace=prod/none", Some(&t), None).await;
    assert_eq!((a.status, a.body["total"].as_u64()), (200, Some(0)));
    let got = dev.call("GET", "/v1/secrets?namespace=production", Some(&t), None).await;
    assert_error(&got, 403, "SCOPE_DENIED");
    assert_error(&dev.call("GET", "/v1/secrets", Some(&t), None).await, 400, "VALIDATION_ERROR");
    let sub = dev.token(&["secrets:read:prod/a/*"]).await;
    assert_error(&dev.call("GET", "/v1/secrets?namespace=prod", Some(&sub), None).await, 403, "SCOPE_DENIED");
    assert_eq!(dev.call("GET", "/v1/secrets?namespace=prod%2Fa", Some(&sub), None).await.body["total"], 2);

    // Raw-slash list form (JS SDK): a secret at that path, else the listing, else 404.
    let a = dev.call("GET", "/v1/secrets/prod", Some(&t), None).await;
    assert_eq!((a.status, a.body["total"].as_u64()), (200, Some(4)));
    let a = dev.call("GET", "/v1/secrets/prod/a", Some(&t), None).await;
    assert_eq!(a.body["total"], 2);
    let a = dev.call("GET", "/v1/secrets/prod/a/K", Some(&t), None).await;
    assert_eq!(a.body["value"], "value-of-prod/a/K");
    assert_error(&dev.call("GET", "/v1/secrets/prod/zzz", Some(&t), None).await, 404, "SECRET_NOT_FOUND");
    assert_error(&dev.call("GET", "/v1/secrets/production", Some(&t), None).await, 403, "SCOPE_DENIED");

    // %2F-encoded namespaces and encoded characters.
    let a = dev.call("GET", "/v1/secrets/prod%2Fa%2Fdeep%2Fer/K", Some(&t), None).await;
    assert_eq!(a.body["value"], "value-of-prod/a/deep/er/K");
    let a = dev.call("GET", "/v1/secrets/prod%2Fa%2FK", Some(&t), None).await;
    assert_eq!(a.body["value"], "value-of-prod/a/K");
    let w = dev.token(&["secrets:*:team a/*"]).await;
    let a = dev
        .call("PUT", "/v1/secrets/team%20a%2Fsub%20ns/KEY%251", Some(&w), Some(json!({"value": "spaced"})))
        .await;
    assert_eq!(a.status, 201, "{}", a.body);
    assert_eq!(
        (a.body["namespace"].as_str(), a.body["key"].as_str()),
        (Some("team a/sub ns"), Some("KEY%1"))
    );
    let a = dev.call("GET", "/v1/secrets/team%20a/sub%20ns/KEY%251", Some(&w), None).await;
    assert_eq!(a.body["value"], "spaced");
    let a = dev.call("GET", "/v1/secrets?namespace=team%20a", Some(&w), None).await;
    assert_eq!(a.body["items"][0]["namespace"], "team a/sub ns");

    // Bad paths.
    let got = dev.admin("PUT", "/v1/secrets/JUSTAKEY", Some(json!({"value": "v"}))).await;
    assert_error(&got, 400, "VALIDATION_ERROR");
    let got = dev.admin("PUT", "/v1/secrets/a//b", Some(json!({"value": "v"}))).await;
    assert_error(&got, 400, "VALIDATION_ERROR");
    let got = dev.admin("PUT", "/v1/secrets/a/b*", Some(json!({"value": "v"}))).await;
    assert_error(&got, 400, "VALIDATION_ERROR");
    assert_error(&dev.admin("GET", "/v1/secrets/a/%FF", None).await, 400, "VALIDATION_ERROR");
}

#[tokio::test]
async fn import_dotenv() {
    let dev = Dev::start();
    let t = dev.token(&["secrets:write:env/*", "secrets:read:env/*"]).await;
    let content = "# comment\nexport DB_HOST=db.internal\nDB_PASS='p@ss w0rd'\n\nnot a pair\nDB_HOST=db2\n";
    let req =
        json!({"namespace": "env/app", "content": content, "secret_type": "db_credential", "metadata": null});
    let a = dev.call("POST", "/v1/secrets/import", Some(&t), Some(req)).await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(
        a.body,
        json!({"namespace": "env/app", "imported": ["DB_HOST", "DB_PASS"], "imported_count": 2})
    );
    let a = dev.call("GET", "/v1/secrets/env/app/DB_PASS", Some(&t), None).await;
    assert_eq!(
        (a.body["value"].as_str(), a.body["secret_type"].as_str()),
        (Some("p@ss w0rd"), Some("db_credential"))
    );
    assert_eq!(dev.call("GET", "/v1/secrets/env/app/DB_HOST", Some(&t), None).await.body["value"], "db2");

    let req = json!({"namespace": "env", "content": "GOOD=1\nBAD*KEY=2\n"});
    let a = dev.call("POST", "/v1/secrets/import", Some(&t), Some(req)).await;
    assert_error(&a, 400, "VALIDATION_ERROR");
    assert!(a.body["error"]["message"].as_str().unwrap().contains("BAD*KEY"));
    assert_error(&dev.call("GET", "/v1/secrets/env/GOOD", Some(&t), None).await, 404, "SECRET_NOT_FOUND");
    let a = dev
        .call("POST", "/v1/secrets/import", Some(&t), Some(json!({"namespace": "other", "content": "A=1"})))
        .await;
    assert_error(&a, 403, "SCOPE_DENIED");
    let req = json!({"namespace": "env/new", "content": "A=1", "access_tier": "critical"});
    let a = dev.call("POST", "/v1/secrets/import", Some(&t), Some(req)).await;
    assert_eq!(
        (a.status, a.body["imported_count"].as_u64()),
        (200, Some(1)),
        "new secrets of any tier: {}",
        a.body
    );
    let a = dev
        .call("POST", "/v1/secrets/import", Some(&t), Some(json!({"namespace": "env/new", "content": "A=2"})))
        .await;
    assert_error(&a, 403, "HUMAN_AUTH_REQUIRED");
    let a = dev.call("POST", "/v1/secrets/import", Some(&t), Some(json!({"content": "A=1"}))).await;
    assert_error(&a, 400, "VALIDATION_ERROR");
    let a = dev
        .admin(
            "POST",
            "/v1/secrets/import",
            Some(json!({"namespace": "env/crit", "content": "A=1", "access_tier": "critical"})),
        )
        .await;
    assert_eq!(a.status, 200, "the admin key imports any tier");
}

async fn pending_ids(dev: &Dev) -> Vec<String> {
    let a = dev.admin("GET", "/v1/approvals?status=pending", None).await;
    assert_eq!(a.status, 200, "{}", a.body);
    a.body["items"].as_array().unwrap().iter().map(|i| i["id"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn approval_flow_end_to_end() {
    let dev = Dev::start();
    dev.put_tier("prod/pay/STRIPE", "sk-stripe-0042", "critical").await;
    dev.put_tier("prod/pay/PUBLIC", "pk-public-0042", "standard").await;
    let key = dev.agent_key.clone();
    let req = json!({"scopes": ["secrets:read:prod/pay/STRIPE", "secrets:write:prod/pay/*"]});

    let a = dev.token_request(&key, req.clone()).await;
    assert_eq!(a.status, 202, "{}", a.body);
    assert_eq!(a.body["requires_approval"], true);
    assert!(a.body["expires_at"].is_string());
    assert!(a.body.get("token").is_none());
    let id = a.body["approval_id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("apr_"));
    // Same agent, same set in another order: the same approval, not a new one.
    let a = dev
        .token_request(&key, json!({"scopes": ["secrets:write:prod/pay/*", "secrets:read:prod/pay/STRIPE"]}))
        .await;
    assert_eq!(a.body["approval_id"], id.as_str());
    assert_eq!(pending_ids(&dev).await, vec![id.clone()]);
    assert_eq!(dev.stats().await["approvals_created"], 1);
    // The log tells the human how to approve, without the admin key.
    let log = dev.stderr();
    assert!(log.contains(&format!("/v1/approvals/{id}/approve")) && log.contains("$ASS_ADMIN_KEY"), "{log}");

    // Polling: the asking agent sees it, others do not.
    let a = dev.call("GET", &format!("/v1/approvals/agent/{id}"), Some(&key), None).await;
    assert_eq!(a.status, 200);
    assert_eq!((a.body["id"].as_str(), a.body["status"].as_str()), (Some(id.as_str()), Some("pending")));
    assert_eq!(a.body["access_tier"], "critical");
    assert_eq!(a.body["scopes"], json!(["secrets:read:prod/pay/STRIPE", "secrets:write:prod/pay/*"]));
    let other = dev.new_agent("other", &["secrets:*:*"]).await;
    let got = dev.call("GET", &format!("/v1/approvals/agent/{id}"), Some(&other), None).await;
    assert_error(&got, 404, "NOT_FOUND");
    assert_error(&dev.call("GET", "/v1/approvals/agent/apr_nope", Some(&key), None).await, 404, "NOT_FOUND");
    // Only the admin key decides.
    let got = dev.call("POST", &format!("/v1/approvals/{id}/approve"), Some(&key), None).await;
    assert_error(&got, 401, "UNAUTHORIZED");
    assert_error(&dev.admin("POST", "/v1/approvals/apr_nope/approve", None).await, 404, "NOT_FOUND");

    let a = dev.admin("POST", &format!("/v1/approvals/{id}/approve"), None).await;
    assert_eq!((a.status, a.body["status"].as_str()), (200, Some("approved")), "{}", a.body);
    let got = dev.admin("POST", &format!("/v1/approvals/{id}/deny"), None).await;
    assert_error(&got, 409, "APPROVAL_ALREADY_DECIDED");
    let a = dev.call("GET", &format!("/v1/approvals/agent/{id}"), Some(&key), None).await;
    assert_eq!(a.body["status"], "approved");
    assert!(pending_ids(&dev).await.is_empty());

    // The same request now gets the token, once.
    let a = dev.token_request(&key, req.clone()).await;
    assert_eq!(a.status, 200, "{}", a.body);
    let t = a.body["token"].as_str().unwrap().to_owned();
    assert_eq!(
        dev.call("GET", "/v1/secrets/prod/pay/STRIPE", Some(&t), None).await.body["value"],
        "sk-stripe-0042"
    );
    // A token approved for critical may write critical secrets.
    let w = dev
        .call("PUT", "/v1/secrets/prod/pay/STRIPE", Some(&t), Some(json!({"value": "sk-stripe-0043"})))
        .await;
    assert_eq!(w.status, 200, "{}", w.body);
    let a = dev.token_request(&key, req.clone()).await;
    assert_eq!(a.status, 202, "the approval was usable once");
    assert_ne!(a.body["approval_id"], id.as_str());
    // Another agent with the same scopes needs its own approval.
    let a = dev.token_request(&other, req).await;
    assert_eq!(a.status, 202);
    // A delete scope on the critical secret never waits (and the delete itself is refused).
    let a = dev.token_request(&key, json!({"scopes": ["secrets:delete:prod/pay/*"]})).await;
    assert_eq!(a.status, 200);
}

#[tokio::test]
async fn denial_is_reported_once() {
    let dev = Dev::start();
    dev.put_tier("prod/x/S", "sensitive-x", "sensitive").await;
    let key = dev.agent_key.clone();
    let req = json!({"scopes": ["secrets:read:prod/x/S"]});
    let id = dev.token_request(&key, req.clone()).await.body["approval_id"].as_str().unwrap().to_owned();
    let a =
        dev.admin("POST", &format!("/v1/approvals/{id}/deny"), Some(json!({"reason": "not today"}))).await;
    assert_eq!((a.status, a.body["status"].as_str()), (200, Some("denied")));
    let a = dev.call("GET", &format!("/v1/approvals/agent/{id}"), Some(&key), None).await;
    assert_eq!((a.body["status"].as_str(), a.body["reason"].as_str()), (Some("denied"), Some("not today")));
    let a = dev.token_request(&key, req.clone()).await;
    assert_error(&a, 403, "APPROVAL_DENIED");
    let a = dev.token_request(&key, req.clone()).await;
    assert_eq!(a.status, 202, "later requests start a new approval");
    assert_ne!(a.body["approval_id"], id.as_str());
    // Deny with an empty body works too.
    let id2 = a.body["approval_id"].as_str().unwrap().to_owned();
    let a = dev
        .send("POST", &format!("/v1/approvals/{id2}/deny"), Some(&dev.admin_key.clone()), Some(String::new()))
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
}

#[tokio::test]
async fn approvals_expire() {
    let dev = Dev::start_with(&["--approval-ttl", "1s"]);
    dev.put_tier("prod/y/S", "sensitive-y", "sensitive").await;
    let key = dev.agent_key.clone();
    let req = json!({"scopes": ["secrets:read:prod/y/*"]});
    let id = dev.token_request(&key, req.clone()).await.body["approval_id"].as_str().unwrap().to_owned();
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let a = dev.call("GET", &format!("/v1/approvals/agent/{id}"), Some(&key), None).await;
    assert_eq!(a.body["status"], "expired");
    let got = dev.admin("POST", &format!("/v1/approvals/{id}/approve"), None).await;
    assert_error(&got, 410, "APPROVAL_EXPIRED");
    assert_error(&dev.token_request(&key, req.clone()).await, 410, "APPROVAL_EXPIRED");
    let a = dev.token_request(&key, req).await;
    assert_eq!(a.status, 202);
    assert_ne!(a.body["approval_id"], id.as_str());
    let a = dev.admin("GET", "/v1/approvals?status=expired", None).await;
    assert_eq!(a.body["items"][0]["id"], id.as_str());
    assert_error(&dev.admin("GET", "/v1/approvals?status=maybe", None).await, 400, "VALIDATION_ERROR");
}

#[tokio::test]
async fn routing_errors_are_json() {
    let dev = Dev::start();
    assert_error(&dev.call("GET", "/v1/nope", None, None).await, 404, "NOT_FOUND");
    assert_error(&dev.call("GET", "/", None, None).await, 404, "NOT_FOUND");
    assert_error(&dev.call("DELETE", "/v1/health", None, None).await, 405, "METHOD_NOT_ALLOWED");
    assert_error(&dev.admin("PATCH", "/v1/secrets/a/b", None).await, 405, "METHOD_NOT_ALLOWED");
    let a = dev.send("PUT", "/v1/secrets/a/b", Some(&dev.admin_key.clone()), Some("{not json".into())).await;
    assert_error(&a, 400, "VALIDATION_ERROR");
    // Dev routes need the admin key.
    let got = dev.call("GET", "/v1/dev/stats", Some(&dev.agent_key.clone()), None).await;
    assert_error(&got, 401, "UNAUTHORIZED");
    assert_error(&dev.call("PUT", "/v1/dev/faults", None, Some(json!({}))).await, 401, "UNAUTHORIZED");
    let got = dev.admin("PUT", "/v1/dev/faults", Some(json!({"error_rate": 3}))).await;
    assert_error(&got, 400, "VALIDATION_ERROR");
    let got = dev.admin("PUT", "/v1/dev/faults", Some(json!({"bogus": 1}))).await;
    assert_error(&got, 400, "VALIDATION_ERROR");
}

#[tokio::test]
async fn rate_limit_answers_429_with_retry_after() {
    let dev = Dev::start_with(&["--rate-limit", "2/s"]);
    let mut limited = None;
    for _ in 0..10 {
        let a = dev.call("GET", "/v1/health", None, None).await;
        if a.status == 429 {
            limited = Some(a);
            break;
        }
    }
    let a = limited.expect("rate limited within 10 quick requests");
    assert_error(&a, 429, "RATE_LIMITED");
    let secs: u64 = a.headers["retry-after"].to_str().unwrap().parse().expect("seconds");
    assert!((1..=2).contains(&secs));
    // Dev routes are never limited.
    for _ in 0..5 {
        assert_eq!(dev.admin("GET", "/v1/dev/faults", None).await.status, 200);
    }
    dev.faults(json!({"retry_after_format": "http-date", "rate_limit": "1/s"})).await;
    let mut date = None;
    for _ in 0..5 {
        let a = dev.call("GET", "/v1/health", None, None).await;
        if a.status == 429 {
            date = Some(a.headers["retry-after"].to_str().unwrap().to_owned());
            break;
        }
    }
    let date = date.expect("limited again");
    let at = httpdate::parse_http_date(&date).expect("an HTTP date");
    assert!(at > std::time::SystemTime::now(), "{date}");
    let knobs = dev.admin("GET", "/v1/dev/faults", None).await.body;
    assert_eq!(
        (knobs["rate_limit"].as_str(), knobs["retry_after_format"].as_str()),
        (Some("1/s"), Some("http-date"))
    );
    dev.faults(json!({"rate_limit": null})).await;
    for _ in 0..5 {
        assert_eq!(dev.call("GET", "/v1/health", None, None).await.status, 200);
    }
}

#[tokio::test]
async fn injected_failures_latency_drops_and_stats() {
    let dev = Dev::start();
    dev.put_tier("prod/a/K", "value-k-777", "standard").await;
    let t = dev.token(&["secrets:read:prod/*"]).await;
    assert_eq!(dev.admin("POST", "/v1/dev/reset-stats", None).await.status, 200);

    dev.faults(json!({"fail_next": 2, "fail_status": 503})).await;
    assert_error(&dev.call("GET", "/v1/secrets/prod/a/K", Some(&t), None).await, 503, "SERVICE_UNAVAILABLE");
    assert_eq!(dev.call("GET", "/v1/secrets/prod/a/K", Some(&t), None).await.status, 503);
    assert_eq!(dev.call("GET", "/v1/secrets/prod/a/K", Some(&t), None).await.status, 200);

    dev.faults(json!({"fail_next": 1, "fail_status": 429})).await;
    let a = dev.call("GET", "/v1/secrets/prod/a/K", Some(&t), None).await;
    assert_error(&a, 429, "RATE_LIMITED");
    assert_eq!(a.headers["retry-after"], "1");
    dev.faults(
        json!({"fail_next": 1, "fail_status": 429, "retry_after_format": "http-date", "retry_after": 3}),
    )
    .await;
    let a = dev.call("GET", "/v1/health", None, None).await;
    assert!(httpdate::parse_http_date(a.headers["retry-after"].to_str().unwrap()).is_ok());
    dev.faults(json!({"fail_next": 1, "fail_status": 500})).await;
    assert_error(&dev.call("GET", "/v1/health", None, None).await, 500, "INTERNAL_ERROR");

    dev.faults(json!({"error_rate": 1.0, "error_status": 502})).await;
    assert_eq!(dev.call("GET", "/v1/health", None, None).await.status, 502);
    assert_eq!(dev.admin("GET", "/v1/dev/faults", None).await.status, 200, "knobs never apply to /v1/dev/*");
    dev.faults(json!({"error_rate": 0})).await;

    dev.faults(json!({"latency": "300ms"})).await;
    let started = Instant::now();
    assert_eq!(dev.call("GET", "/v1/health", None, None).await.status, 200);
    assert!(started.elapsed() >= Duration::from_millis(300));
    dev.faults(json!({"latency": null})).await;

    // A dropped connection is a transport error, not an HTTP answer.
    dev.faults(json!({"drop_next": 1})).await;
    let e = dev
        .http
        .get(format!("{}/v1/secrets/prod/a/K", dev.base_url))
        .bearer_auth(&t)
        .send()
        .await
        .unwrap_err();
    assert!(e.status().is_none() && (e.is_request() || e.is_connect()), "{e:?}");
    assert_eq!(dev.call("GET", "/v1/secrets/prod/a/K", Some(&t), None).await.status, 200, "next one is fine");
    dev.faults(json!({"drop_rate": 1.0})).await;
    assert!(dev.http.get(format!("{}/v1/health", dev.base_url)).send().await.is_err());
    assert_eq!(dev.admin("DELETE", "/v1/dev/faults", None).await.body["drop_rate"], 0.0);

    let stats = dev.stats().await;
    assert_eq!(stats["requests"]["GET /v1/secrets"], 6, "{stats}");
    assert_eq!(stats["faults_injected"], 6, "{stats}");
    assert_eq!(stats["connections_dropped"], 2, "{stats}");
    assert!(stats["requests"].as_object().unwrap().keys().all(|k| !k.contains("/v1/dev")), "{stats}");
    dev.token(&["secrets:read:prod/*"]).await;
    let stats = dev.stats().await;
    assert_eq!(
        (stats["requests"]["POST /v1/tokens"].as_u64(), stats["token_requests"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(stats["tokens_issued"], 1);
    let a = dev.admin("POST", "/v1/dev/reset-stats", None).await;
    assert_eq!(a.body["total_requests"], 0);
    assert_eq!(dev.stats().await["requests"], json!({}));
}

#[tokio::test]
async fn logs_show_requests_but_never_values_keys_or_tokens() {
    let dev = Dev::start();
    let key = dev.agent_key.clone();
    let admin = dev.admin_key.clone();
    dev.put_tier("prod/a/K", "very-secret-value-1234", "standard").await;
    dev.put_tier("prod/a/S", "sensitive-value-5678", "sensitive").await;
    let t = dev.token(&["secrets:*:prod/a/K"]).await;
    dev.call("GET", "/v1/secrets/prod/a/K", Some(&t), None).await;
    dev.call("PUT", "/v1/secrets/prod/a/K", Some(&t), Some(json!({"value": "second-secret-value-9"}))).await;
    dev.call("PUT", "/v1/secrets/prod/a/K", Some(&t), Some(json!({"value": 424242424}))).await;
    dev.call(
        "POST",
        "/v1/secrets/import",
        Some(&dev.admin_key.clone()),
        Some(json!({"namespace": "e", "content": "X=imported-secret-3"})),
    )
    .await;
    dev.call("GET", "/v1/secrets/prod/a/K", Some(&key), None).await;
    let id = dev.token_request(&key, json!({"scopes": ["secrets:read:prod/a/S"]})).await.body["approval_id"]
        .as_str()
        .unwrap()
        .to_owned();
    dev.admin("POST", &format!("/v1/approvals/{id}/approve"), None).await;
    let approved = dev.token_request(&key, json!({"scopes": ["secrets:read:prod/a/S"]})).await;
    let t2 = approved.body["token"].as_str().unwrap().to_owned();
    let created = dev.new_agent("logged", &["secrets:*:*"]).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let log = dev.stderr();
    for needle in [
        "very-secret-value-1234",
        "sensitive-value-5678",
        "second-secret-value-9",
        "424242424",
        "imported-secret-3",
        &key,
        &admin,
        &t,
        &t2,
        &created,
    ] {
        assert!(!log.contains(needle), "log leaks {needle:?}:\n{log}");
    }
    assert!(!log.to_lowercase().contains("authorization: bearer ass"), "{log}");
    for line in ["GET /v1/secrets/prod/a/K 200", "PUT /v1/secrets/prod/a/K 200", "POST /v1/tokens 202"] {
        assert!(log.contains(line), "missing request log {line:?}:\n{log}");
    }
    assert!(log.lines().any(|l| l.contains("PUT /v1/secrets/prod/a/K 400") && l.ends_with("ms")), "{log}");
}

/// The official JS SDK, unchanged, against the dev server. Needs `node` and the SDK:
/// `scripts/test` installs them into `JS_SDK_DIR`; without it the test installs the SDK with
/// `npm`. Under CI a missing tool fails the test; elsewhere it is skipped with a line saying why.
#[test]
fn official_js_sdk_works_unchanged() {
    let have = common::tool_runs;
    if !common::require(have("node"), "node (scripts/test installs it)") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = match std::env::var_os("JS_SDK_DIR") {
        Some(d) => std::path::PathBuf::from(d),
        None => {
            if !common::require(have("npm"), "npm, to install the JS SDK") {
                return;
            }
            let mut npm = Command::new("npm");
            npm.args(common::words("install --no-save --no-audit --no-fund --prefix"))
                .arg(tmp.path())
                .arg("@agentsecretstore/sdk@1.0.0");
            let install = common::output_within(&mut npm, Duration::from_secs(300));
            let ok = install.status.success();
            let why = format!(
                "the JS SDK (npm install failed: {})",
                String::from_utf8_lossy(&install.stderr).trim()
            );
            if !common::require(ok, &why) {
                return;
            }
            tmp.path().to_owned()
        }
    };
    let dir = dir.as_path();
    let script_dir = tmp.path();
    let sdk = dir.join("node_modules/@agentsecretstore/sdk/dist/index.cjs");
    assert!(sdk.exists(), "package layout changed: {}", sdk.display());
    let script = script_dir.join("check.cjs");
    std::fs::write(&script, JS_CHECK).unwrap();

    let dev = Dev::start();
    let mut node = Command::new("node");
    node.arg(&script)
        .env("SDK_PATH", &sdk)
        .env("ASS_BASE_URL", &dev.base_url)
        .env("ASS_AGENT_KEY", &dev.agent_key)
        .env("ASS_ADMIN_KEY", &dev.admin_key);
    let out = common::output_within(&mut node, Duration::from_secs(120));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("JS-SDK-OK"),
        "node failed:\nstdout: {stdout}\nstderr: {}\nserver: {}",
        String::from_utf8_lossy(&out.stderr),
        dev.stderr()
    );
}

const JS_CHECK: &str = r#"
const assert = require('node:assert/strict');
const { AgentVault, ApprovalRequiredError } = require(process.env.SDK_PATH);
const base = process.env.ASS_BASE_URL;
const v = new AgentVault({ agentKey: process.env.ASS_AGENT_KEY, baseUrl: base, retries: 0 });
(async () => {
  const w = await v.setSecret('js/app/API_KEY', 'js-value-1', { secretType: 'api_key', metadata: { by: 'js' } });
  assert.equal(w.version, 1);
  assert.equal(w.namespace, 'js/app');
  assert.equal(await v.getSecret('js/app/API_KEY'), 'js-value-1');
  const w2 = await v.setSecret('js/app/API_KEY', 'js-value-2');
  assert.equal(w2.version, 2);
  const full = await v.getSecretWithMetadata('js/app/API_KEY');
  assert.equal(full.value, 'js-value-2');
  assert.equal(full.version, 2);
  const imp = await v.importEnv('A=1\nB="two"\n', 'js/env');
  assert.equal(imp.imported_count, 2);
  assert.deepEqual(imp.imported, ['A', 'B']);
  const list = await v.listSecrets('js');
  assert.equal(list.total, 3);
  assert.ok(list.items.every(i => i.value === undefined));
  await v.deleteSecret('js/env/A');
  await assert.rejects(v.getSecret('js/env/A'), e => e.code === 'SECRET_NOT_FOUND');
  const t = await v.requestToken({ scopes: ['secrets:read:js/*'], ttl: '5m' });
  assert.ok(t.token && t.token_id && t.expires_at);
  await assert.rejects(v.requestToken({ scopes: ['secrets:read:elsewhere/*'], ttl: '25h' }), e => e.status === 400);
  const put = await fetch(`${base}/v1/secrets/js/vip/KEY`, {
    method: 'PUT',
    headers: { Authorization: `Bearer ${process.env.ASS_ADMIN_KEY}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ value: 'vip', access_tier: 'sensitive' }),
  });
  assert.equal(put.status, 201);
  // A fresh client: `v` caches a read token for js/* issued before the secret was sensitive,
  // and tiers are decided when a token is issued.
  const fresh = new AgentVault({ agentKey: process.env.ASS_AGENT_KEY, baseUrl: base, retries: 0 });
  await assert.rejects(fresh.getSecret('js/vip/KEY'), e => e instanceof ApprovalRequiredError && e.approvalId.startsWith('apr_'));
  console.log('JS-SDK-OK');
})().catch(e => { console.error(e); process.exit(1); });
"#;
