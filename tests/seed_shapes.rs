//! The SDK and the launcher against a server that answers in the seed (Python) SDK's response
//! shapes, which are narrower than what our dev server sends (contract §3, "Tolerant reader"):
//! `SecretResponse` is `{value, secret_type, access_tier, metadata, version}` (no namespace, no
//! key, no timestamps), `TokenResponse` dumps every optional field (`null` where unset), list
//! items carry no namespace, and the import answer is a bare count. Errors come FastAPI-style.

mod common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use agentsecretstore::wire::{AccessTier, SecretType};
use agentsecretstore::{AgentVault, Error};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

use common::{bare_vault_run, env_of, output_within, stderr_of};

const AGENT_KEY: &str = "ass_seed_shape_agent_key";

#[derive(Clone)]
struct Secret {
    value: String,
    secret_type: &'static str,
    access_tier: &'static str,
    metadata: Value,
    version: u64,
}

#[derive(Default)]
struct Seedish {
    secrets: HashMap<String, Secret>,
    tokens: Vec<String>,
    token_requests: u32,
    /// Each token request's scopes, in order.
    scopes: Vec<Vec<String>>,
}

type Shared = Arc<Mutex<Seedish>>;

fn detail(status: StatusCode, msg: &str) -> Response {
    (status, Json(json!({ "detail": msg }))).into_response()
}

fn bearer(h: &HeaderMap) -> Option<String> {
    h.get("authorization")?.to_str().ok()?.strip_prefix("Bearer ").map(str::to_owned)
}

fn has_token(st: &Shared, h: &HeaderMap) -> bool {
    bearer(h).is_some_and(|t| st.lock().unwrap().tokens.contains(&t))
}

async fn tokens(State(st): State<Shared>, h: HeaderMap, Json(body): Json<Value>) -> Response {
    if bearer(&h).as_deref() != Some(AGENT_KEY) {
        return detail(StatusCode::UNAUTHORIZED, "Invalid API key");
    }
    let scopes: Vec<String> = serde_json::from_value(body["scopes"].clone()).unwrap_or_default();
    let mut s = st.lock().unwrap();
    s.token_requests += 1;
    s.scopes.push(scopes.clone());
    if scopes.iter().any(|sc| sc.contains("needs-approval/")) {
        return Json(json!({"token": null, "token_id": null, "expires_at": null,
            "requires_approval": true, "approval_id": "apr_seed_1"}))
        .into_response();
    }
    let token = format!("seed_tok_{}", s.token_requests);
    s.tokens.push(token.clone());
    // Python's datetime.isoformat(): no zone.
    Json(json!({"token": token, "token_id": format!("tok_{}", s.token_requests),
        "expires_at": "2099-01-01T00:00:00.000001", "requires_approval": false, "approval_id": null}))
    .into_response()
}

async fn read(State(st): State<Shared>, h: HeaderMap, Path(path): Path<String>) -> Response {
    if !has_token(&st, &h) {
        return detail(StatusCode::UNAUTHORIZED, "Invalid token");
    }
    let s = st.lock().unwrap();
    match s.secrets.get(&path) {
        Some(sec) => Json(json!({"value": sec.value, "secret_type": sec.secret_type,
            "access_tier": sec.access_tier, "metadata": sec.metadata, "version": sec.version}))
        .into_response(),
        None => detail(StatusCode::NOT_FOUND, "Secret not found"),
    }
}

async fn write(
    State(st): State<Shared>,
    h: HeaderMap,
    Path(path): Path<String>,
    Json(b): Json<Value>,
) -> Response {
    if !has_token(&st, &h) {
        return detail(StatusCode::UNAUTHORIZED, "Invalid token");
    }
    let mut s = st.lock().unwrap();
    let version = s.secrets.get(&path).map_or(1, |o| o.version + 1);
    let tier = match b["access_tier"].as_str() {
        Some("sensitive") => "sensitive",
        Some("critical") => "critical",
        _ => "standard",
    };
    let sec = Secret {
        value: b["value"].as_str().unwrap_or_default().to_owned(),
        secret_type: "custom",
        access_tier: tier,
        metadata: b.get("metadata").cloned().unwrap_or(Value::Null),
        version,
    };
    let answer = json!({"secret_type": sec.secret_type, "access_tier": sec.access_tier,
        "metadata": sec.metadata, "version": version});
    s.secrets.insert(path, sec);
    Json(answer).into_response()
}

async fn delete(State(st): State<Shared>, h: HeaderMap, Path(path): Path<String>) -> Response {
    if !has_token(&st, &h) {
        return detail(StatusCode::UNAUTHORIZED, "Invalid token");
    }
    let mut s = st.lock().unwrap();
    match s.secrets.get(&path).map(|sec| sec.access_tier) {
        None => detail(StatusCode::NOT_FOUND, "Secret not found"),
        Some("standard") => {
            s.secrets.remove(&path);
            StatusCode::NO_CONTENT.into_response()
        }
        Some(_) => (
            StatusCode::FORBIDDEN,
            Json(json!({"error": {"code": "HUMAN_AUTH_REQUIRED", "message": "a human must delete this"}})),
        )
            .into_response(),
    }
}

async fn list(State(st): State<Shared>, h: HeaderMap, Query(q): Query<HashMap<String, String>>) -> Response {
    if !has_token(&st, &h) {
        return detail(StatusCode::UNAUTHORIZED, "Invalid token");
    }
    let ns = q.get("namespace").cloned().unwrap_or_default();
    let s = st.lock().unwrap();
    let mut items: Vec<Value> = s
        .secrets
        .iter()
        .filter_map(|(p, sec)| {
            let (n, k) = p.rsplit_once('/')?;
            (n == ns).then(|| {
                json!({"key": k, "secret_type": sec.secret_type, "access_tier": sec.access_tier,
                    "version": sec.version, "metadata": sec.metadata})
            })
        })
        .collect();
    items.sort_by(|a, b| a["key"].as_str().cmp(&b["key"].as_str()));
    Json(json!({ "items": items })).into_response()
}

async fn import(State(st): State<Shared>, h: HeaderMap, Json(b): Json<Value>) -> Response {
    if !has_token(&st, &h) {
        return detail(StatusCode::UNAUTHORIZED, "Invalid token");
    }
    let ns = b["namespace"].as_str().unwrap_or_default().to_owned();
    let tier = if b["access_tier"] == "sensitive" { "sensitive" } else { "standard" };
    let mut s = st.lock().unwrap();
    let mut n = 0;
    for line in b["content"].as_str().unwrap_or_default().lines() {
        if let Some((k, v)) = line.split_once('=') {
            let sec = Secret {
                value: v.trim().to_owned(),
                secret_type: "custom",
                access_tier: tier,
                metadata: Value::Null,
                version: 1,
            };
            s.secrets.insert(format!("{ns}/{}", k.trim()), sec);
            n += 1;
        }
    }
    Json(json!({ "imported": n })).into_response()
}

async fn approval(Path(id): Path<String>) -> Response {
    Json(json!({"approval_id": id, "status": "approved"})).into_response()
}

/// Starts the seed-shaped server on its own runtime thread; returns its base URL and state.
fn start() -> (String, Shared) {
    let shared: Shared = Arc::default();
    {
        let mut s = shared.lock().unwrap();
        let mut put = |p: &str, v: &str, t: &'static str, tier: &'static str| {
            let sec = Secret {
                value: v.into(),
                secret_type: t,
                access_tier: tier,
                metadata: Value::Null,
                version: 1,
            };
            s.secrets.insert(p.into(), sec);
        };
        put("production/db/PASSWORD", "pg-pass-seed-0001", "db_credential", "standard");
        put("production/app/API_KEY", "sk-seed-0002", "api_key", "standard");
        put("production/app/LOG_LEVEL", "debug", "custom", "standard");
        put("production/stripe/SECRET", "stripe-seed-0003", "api_key", "standard");
        put("production/stripe/PUBLISHABLE", "pk-seed-0004", "api_key", "standard");
        put("production/vault/ROOT", "root-seed-0005", "custom", "critical");
    }
    let app = Router::new()
        .route("/v1/health", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/v1/tokens", post(tokens))
        .route("/v1/secrets", get(list))
        .route("/v1/secrets/import", post(import))
        .route("/v1/secrets/{*path}", get(read).put(write).delete(delete))
        .route("/v1/approvals/agent/{id}", get(approval))
        .with_state(shared.clone());
    let (tx, rx) = std::sync::mpsc::channel::<SocketAddr>();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            axum::serve(listener, app).await.unwrap();
        });
    });
    let addr = rx.recv().unwrap();
    (format!("http://{addr}"), shared)
}

#[tokio::test]
async fn the_whole_sdk_surface_reads_seed_shapes() {
    let (base, state) = start();
    let vault = AgentVault::builder().agent_key(AGENT_KEY).base_url(&base).build().unwrap();

    assert_eq!(vault.health().await.unwrap().status, "ok");
    assert_eq!(vault.get_secret("production/db/PASSWORD").await.unwrap().expose(), "pg-pass-seed-0001");
    let full = vault.get_secret_with_metadata("production/app/API_KEY").await.unwrap();
    assert_eq!(full.value.expose(), "sk-seed-0002");
    assert_eq!((full.namespace.as_str(), full.key.as_str(), full.version), ("production/app", "API_KEY", 1));
    assert_eq!((full.secret_type, full.access_tier), (SecretType::ApiKey, AccessTier::Standard));
    assert!(full.metadata.is_empty(), "null metadata reads as empty");

    let opts = agentsecretstore::WriteOptions::new()
        .access_tier(AccessTier::Sensitive)
        .metadata(json!({"owner": "payments"}));
    let written = vault.set_secret_with("staging/app/NEW_KEY", "new-value-0006", opts).await.unwrap();
    assert_eq!((written.version, written.access_tier.clone()), (1, AccessTier::Sensitive));
    assert_eq!((written.namespace.as_str(), written.key.as_str()), ("staging/app", "NEW_KEY"));
    assert_eq!(vault.get_secret("staging/app/NEW_KEY").await.unwrap().expose(), "new-value-0006");

    let listed = vault.list_secrets("production/stripe").await.unwrap();
    let paths: Vec<String> = listed.items.iter().map(|i| format!("{}/{}", i.namespace, i.key)).collect();
    assert_eq!(paths, ["production/stripe/PUBLISHABLE", "production/stripe/SECRET"]);
    assert_eq!(listed.total, 2);

    let imported = vault.import_env("A=1\nB=2\n", "staging/env", Default::default()).await.unwrap();
    assert_eq!((imported.imported_count, imported.namespace.as_str()), (2, "staging/env"));
    assert_eq!(vault.get_secret("staging/env/B").await.unwrap().expose(), "2");

    let token = vault.request_token(["secrets:read:production/*"], "5m").await.unwrap();
    assert!(!token.expires_at.is_past(), "a zone-less Python timestamp reads as UTC");

    vault.delete_secret("staging/env/A").await.unwrap();
    let e = vault.delete_secret("production/vault/ROOT").await.unwrap_err();
    assert!(matches!(e, Error::HumanAuthRequired { .. }), "{e:?}");
    assert_eq!(e.code(), "HUMAN_AUTH_REQUIRED");
    let e = vault.get_secret("production/app/NOPE").await.unwrap_err();
    assert_eq!(e.code(), "SECRET_NOT_FOUND", "{e}");

    let e = vault.request_token(["secrets:read:needs-approval/X"], None).await.unwrap_err();
    let Error::ApprovalRequired { approval_id, .. } = e else { panic!("{e:?}") };
    let status = vault.wait_for_approval(&approval_id, Duration::from_secs(5)).await.unwrap();
    assert_eq!(status.status, agentsecretstore::wire::ApprovalState::Approved);
    assert!(state.lock().unwrap().token_requests >= 2);
}

#[test]
fn a_launcher_run_reads_several_secrets_from_seed_shapes() {
    let (base, _state) = start();
    let dir = tempfile::tempdir().unwrap();
    let out = output_within(
        bare_vault_run(dir.path())
            .env("ASS_BASE_URL", &base)
            .env("ASS_AGENT_KEY", AGENT_KEY)
            .args(common::words("-e DB_PASSWORD=production/db/PASSWORD -e API_KEY=production/app/API_KEY"))
            .args(common::words(
                "-e LOG_LEVEL=production/app/LOG_LEVEL -e STRIPE_*=production/stripe/* -- env -0",
            )),
        Duration::from_secs(30),
    );
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr_of(&out));
    let env = env_of(&out.stdout);
    assert_eq!(env["DB_PASSWORD"], "pg-pass-seed-0001");
    assert_eq!(env["API_KEY"], "sk-seed-0002");
    assert_eq!(env["LOG_LEVEL"], "debug");
    assert_eq!(env["STRIPE_SECRET"], "stripe-seed-0003");
    assert_eq!(env["STRIPE_PUBLISHABLE"], "pk-seed-0004");
}

/// `vault-run secrets` against the seed shapes: a write answer without namespace, key or
/// timestamps, list items without namespace, updated or expired, and FastAPI-style errors.
#[test]
fn the_secrets_commands_read_seed_shapes() {
    let (base, state) = start();
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &str, stdin: &[u8]| {
        use std::io::Write;
        let mut cmd = bare_vault_run(dir.path());
        cmd.env("ASS_BASE_URL", &base).env("ASS_AGENT_KEY", AGENT_KEY).args(common::words(args));
        let mut child = cmd
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(stdin).unwrap();
        common::output_of_within(child, Duration::from_secs(30))
    };
    let out = run("secrets set staging/app/NEW --tier sensitive", b"seed-new-0007\n");
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "staging/app/NEW version 1\n");
    assert_eq!(state.lock().unwrap().secrets["staging/app/NEW"].value, "seed-new-0007");

    std::fs::write(dir.path().join(".env"), "A=one\nB=two\n").unwrap();
    let out = run("secrets import .env --namespace staging/env --print-mapping", b"");
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("B = \"staging/env/B\""));
    let last = state.lock().unwrap().scopes.last().cloned().unwrap();
    assert_eq!(last, ["secrets:write:staging/env/A", "secrets:write:staging/env/B"], "exactly the writes");

    let out = run("secrets list production/stripe", b"");
    let table = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    let rows: Vec<Vec<&str>> = table.lines().skip(1).map(common::words).collect();
    assert_eq!(rows.len(), 2, "{table}");
    assert_eq!(rows[0], ["production/stripe/PUBLISHABLE", "1", "api_key", "standard", "-", "no"], "{table}");
    let out = run("secrets list production/stripe --format json", b"");
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["items"][1]["path"], "production/stripe/SECRET");
    assert_eq!(doc["items"][1]["updated_at"], Value::Null);

    let out = run("secrets rm production/vault/ROOT", b"");
    assert_eq!(out.status.code(), Some(77), "{}", stderr_of(&out));
    let out = run("secrets rm production/app/NOPE", b"");
    assert_eq!(out.status.code(), Some(69), "{}", stderr_of(&out));
    let out = run("secrets rm staging/env/A", b"");
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
}
