//! The SDK's idioms against the dev server started in process (`agentsecretstore_dev::serve`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use agentsecretstore::{AccessTier, AgentVault, Error, ImportOptions, WriteOptions};
use agentsecretstore_dev::{serve, DevServerOptions, RunningDevServer};
use serde_json::{json, Value};

async fn dev() -> RunningDevServer {
    serve(DevServerOptions::default()).await.expect("dev server")
}

fn client(dev: &RunningDevServer) -> agentsecretstore::AgentVaultBuilder {
    AgentVault::builder()
        .agent_key(dev.agent_key().expose())
        .base_url(dev.base_url())
        .approval_poll_interval(Duration::from_millis(50))
}

async fn admin(dev: &RunningDevServer, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
    let mut req = reqwest::Client::new()
        .request(method, format!("{}{path}", dev.base_url()))
        .bearer_auth(dev.admin_key().expose());
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.unwrap();
    assert!(resp.status().is_success(), "{path}: {}", resp.status());
    resp.json().await.unwrap_or(Value::Null)
}

async fn token_requests(dev: &RunningDevServer) -> u64 {
    admin(dev, reqwest::Method::GET, "/v1/dev/stats", None).await["requests"]["POST /v1/tokens"]
        .as_u64()
        .unwrap_or(0)
}

fn assert_send<T: Send>(t: T) -> T {
    t
}

#[tokio::test]
async fn futures_are_send_and_spawnable() {
    let dev = dev().await;
    let v = client(&dev).build().unwrap();
    // Compile-time: every future can move to another worker thread.
    let w = v.clone();
    let set = tokio::spawn(assert_send(async move { w.set_secret("prod/app/K", "value-1").await }));
    set.await.unwrap().unwrap();
    let w = v.clone();
    let got = tokio::spawn(assert_send(async move { w.get_secret("prod/app/K").await }));
    assert_eq!(got.await.unwrap().unwrap().expose(), "value-1");
    drop(assert_send(v.get_secret_with_metadata("prod/app/K")));
    drop(assert_send(v.list_secrets("prod")));
    drop(assert_send(v.import_env("A=1", "prod/x", ImportOptions::new())));
    drop(assert_send(v.request_token(["secrets:read:prod/*"], "5m")));
    drop(assert_send(v.delete_secret("prod/app/K")));
    drop(assert_send(v.wait_for_approval("apr_x", Duration::ZERO)));
    dev.shutdown().await;
}

#[tokio::test]
async fn one_token_per_scope_set_is_kept_while_valid() {
    let dev = dev().await;
    let v = client(&dev).build().unwrap();
    for p in ["a/x/ONE", "b/y/TWO"] {
        v.set_secret(p, "v-0001").await.unwrap();
    }
    let before = token_requests(&dev).await;
    for _ in 0..2 {
        assert_eq!(v.get_secret("a/x/ONE").await.unwrap().expose(), "v-0001");
        assert_eq!(v.get_secret("b/y/TWO").await.unwrap().expose(), "v-0001");
    }
    assert_eq!(token_requests(&dev).await, before + 2, "two paths, two tokens, each asked once");
    // A write (its token cached since the first write) does not throw the read tokens away.
    v.set_secret("a/x/ONE", "v-0002").await.unwrap();
    assert_eq!(v.get_secret("a/x/ONE").await.unwrap().expose(), "v-0002");
    assert_eq!(v.get_secret("b/y/TWO").await.unwrap().expose(), "v-0001");
    assert_eq!(token_requests(&dev).await, before + 2);
    dev.shutdown().await;
}

#[tokio::test]
async fn reads_wait_for_approvals_when_asked_to() {
    let dev = dev().await;
    let setup = client(&dev).build().unwrap();
    setup
        .set_secret_with(
            "prod/pay/STRIPE",
            "sk-approved-0001",
            WriteOptions::new().access_tier(AccessTier::Sensitive),
        )
        .await
        .unwrap();
    // Without the opt-in, the read fails with the approval to wait for.
    let e = client(&dev).build().unwrap().get_secret("prod/pay/STRIPE").await.unwrap_err();
    assert!(matches!(e, Error::ApprovalRequired { .. }), "{e:?}");

    let seen = Arc::new(Mutex::new(Vec::<String>::new()));
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let log = seen.clone();
    let v = client(&dev)
        .wait_for_approvals(Duration::from_secs(20))
        .on_approval(move |id| {
            log.lock().unwrap().push(id.to_owned());
            let _ = tx.send(id.to_owned());
        })
        .build()
        .unwrap();
    let read = tokio::spawn(async move { v.get_secret("prod/pay/STRIPE").await });
    let id = tokio::time::timeout(Duration::from_secs(10), rx.recv()).await.unwrap().unwrap();
    assert!(id.starts_with("apr_"), "{id}");
    admin(&dev, reqwest::Method::POST, &format!("/v1/approvals/{id}/approve"), None).await;
    let value = tokio::time::timeout(Duration::from_secs(10), read).await.unwrap().unwrap().unwrap();
    assert_eq!(value.expose(), "sk-approved-0001");
    assert_eq!(seen.lock().unwrap().len(), 1, "the callback runs once per wait");
    dev.shutdown().await;
}

#[tokio::test]
async fn options_take_strings_maps_and_durations() {
    let dev = dev().await;
    let v = client(&dev).default_ttl("15m").build().unwrap();
    let meta: HashMap<&str, &str> = [("owner", "team-a")].into();
    let opts = WriteOptions::new().metadata(meta).ttl(Duration::from_secs(3600)).unwrap();
    v.set_secret_with("prod/app/M", "m-value", opts).await.unwrap();
    let full = v.get_secret_with_metadata("prod/app/M").await.unwrap();
    assert_eq!(full.metadata["owner"], "team-a");
    assert!(full.expires_at.is_some());

    let e =
        v.set_secret_with("prod/app/M", "x", WriteOptions::new().metadata(json!([1, 2]))).await.unwrap_err();
    assert!(matches!(&e, Error::Validation { message } if message.contains("JSON object")), "{e:?}");
    assert!(matches!(WriteOptions::new().ttl("soon"), Err(Error::Validation { .. })));
    let e = v.request_token(["not a scope"], None).await.unwrap_err();
    assert_eq!(e.code(), "VALIDATION_ERROR");
    assert!(!e.is_retryable());
    let t = v.request_token(vec!["secrets:read:prod/*".to_owned()], "5m").await.unwrap();
    assert!(t.expires_at.remaining() <= Duration::from_secs(300));
    dev.shutdown().await;
}

#[tokio::test]
async fn errors_keep_their_source_and_say_if_retrying_helps() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let v = AgentVault::builder()
        .agent_key("ass_test")
        .base_url(format!("http://{closed}"))
        .retries(0)
        .build()
        .unwrap();
    let e = v.get_secret("a/b/C").await.unwrap_err();
    assert!(matches!(e, Error::Network { .. }), "{e:?}");
    assert!(e.is_retryable());
    assert!(std::error::Error::source(&e).is_some(), "the transport error is kept");

    let dev = dev().await;
    let e = client(&dev).build().unwrap().get_secret("a/b/MISSING").await.unwrap_err();
    assert!(matches!(e, Error::NotFound { .. }) && !e.is_retryable(), "{e:?}");
    dev.shutdown().await;
}

#[test]
fn a_private_ca_must_be_pem() {
    let e = AgentVault::builder().agent_key("ass_x").ca_certificate("not a certificate").build().unwrap_err();
    assert!(matches!(e, Error::Config { .. }), "{e:?}");
}

#[test]
fn blocking_client_clones_and_refuses_to_run_inside_a_runtime() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dev = rt.block_on(dev());
    let v = agentsecretstore::blocking::AgentVault::builder()
        .agent_key(dev.agent_key().expose())
        .base_url(dev.base_url())
        .build()
        .unwrap();
    let w = v.clone();
    v.set_secret("dev/app/B", "blocking-1").unwrap();
    assert_eq!(
        std::thread::spawn(move || w.get_secret("dev/app/B").unwrap().expose().to_owned()).join().unwrap(),
        "blocking-1"
    );

    let inside = v.clone();
    let panic = rt
        .block_on(
            async move { tokio::spawn(async move { inside.get_secret("dev/app/B").map(|_| ()) }).await },
        )
        .unwrap_err();
    let msg = panic.into_panic();
    let msg = msg
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| msg.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_default();
    assert!(
        msg.contains("inside an async runtime") && msg.contains("async agentsecretstore::AgentVault"),
        "{msg}"
    );
    rt.block_on(dev.shutdown());
}
