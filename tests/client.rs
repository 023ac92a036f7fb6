//! The client library against a real dev server process: every method, every error class, the
//! approval flow, retries, and the blocking twin.

mod common;

use std::time::Duration;

use agentsecretstore::client::{Error, RetryPolicy, WriteOptions};
use agentsecretstore::duration::HumanDuration;
use agentsecretstore::wire::{AccessTier, SecretType};
use agentsecretstore::AgentVault;
use common::{http_json, raw_server, DevServer};
use serde_json::json;

fn client(dev: &DevServer) -> AgentVault {
    client_with_key(dev, &dev.agent_key)
}

/// A client that does not retry, and waits out 429s for `patience` in all.
fn no_retries(dev: &DevServer, patience: Duration) -> AgentVault {
    let builder = AgentVault::builder().agent_key(dev.agent_key.as_str()).base_url(&dev.base_url);
    builder.retries(0).rate_limit_patience(patience).build().unwrap()
}

fn client_with_key(dev: &DevServer, key: &str) -> AgentVault {
    AgentVault::builder()
        .agent_key(key)
        .base_url(&dev.base_url)
        .retry_policy(RetryPolicy {
            retries: 3,
            base: Duration::from_millis(20),
            cap: Duration::from_millis(200),
            ..RetryPolicy::default()
        })
        .approval_poll_interval(Duration::from_millis(50))
        .build()
        .unwrap()
}

#[tokio::test]
async fn every_method_round_trips() {
    let dev = DevServer::start();
    let v = client(&dev);

    let health = v.health().await.unwrap();
    assert_eq!(health.status, "ok");

    let mut meta = serde_json::Map::new();
    meta.insert("owner".into(), json!("team-a"));
    let written = v
        .set_secret_with(
            "production/app/API_KEY",
            "sk-live-123456",
            WriteOptions::new().secret_type(SecretType::ApiKey).metadata(meta),
        )
        .await
        .unwrap();
    assert_eq!(written.version, 1);
    assert_eq!(written.key, "API_KEY");
    assert_eq!(written.namespace, "production/app");

    assert_eq!(v.get_secret("production/app/API_KEY").await.unwrap().expose(), "sk-live-123456");
    let again = v.set_secret("production/app/API_KEY", "sk-live-654321").await.unwrap();
    assert_eq!(again.version, 2);
    let full = v.get_secret_with_metadata("production/app/API_KEY").await.unwrap();
    assert_eq!(full.value.expose(), "sk-live-654321");
    assert_eq!(full.version, 2);
    assert_eq!(full.secret_type, SecretType::ApiKey, "omitted fields keep their values on update");
    assert_eq!(full.metadata["owner"], "team-a");
    assert_eq!(full.access_tier, AccessTier::Standard);

    let imported = v
        .import_env(
            "# comment\nexport DB_HOST=db.internal\nDB_PASS='p@ss w0rd'\n\nnot a pair\n",
            "production/db",
            Default::default(),
        )
        .await
        .unwrap();
    assert_eq!(imported.imported_count, 2);
    assert_eq!(v.get_secret("production/db/DB_PASS").await.unwrap().expose(), "p@ss w0rd");

    let list = v.list_secrets("production").await.unwrap();
    let mut names: Vec<String> = list.items.iter().map(|i| format!("{}/{}", i.namespace, i.key)).collect();
    names.sort();
    assert_eq!(names, ["production/app/API_KEY", "production/db/DB_HOST", "production/db/DB_PASS"]);
    assert_eq!(list.total, 3);

    v.delete_secret("production/db/DB_HOST").await.unwrap();
    assert!(matches!(v.get_secret("production/db/DB_HOST").await, Err(Error::NotFound { .. })));
}

#[tokio::test]
async fn paths_with_special_characters_survive_encoding() {
    let dev = DevServer::start();
    let v = client(&dev);
    v.set_secret("team a/sub ns/KEY%1", "x-value-1").await.unwrap();
    assert_eq!(v.get_secret("team a/sub ns/KEY%1").await.unwrap().expose(), "x-value-1");
    let list = v.list_secrets("team a").await.unwrap();
    assert_eq!(list.items.len(), 1);
    assert_eq!(list.items[0].namespace, "team a/sub ns");
}

#[tokio::test]
async fn token_is_cached_while_it_covers_the_request() {
    let dev = DevServer::with(&[("prod/a/ONE", "one-value"), ("prod/a/TWO", "two-value")]).await;
    let v = client(&dev);
    v.request_token(["secrets:read:prod/a/*"], Some(HumanDuration::from_secs(120))).await.unwrap();
    let before = dev.count("POST /v1/tokens").await;
    assert_eq!(v.get_secret("prod/a/ONE").await.unwrap().expose(), "one-value");
    assert_eq!(v.get_secret("prod/a/TWO").await.unwrap().expose(), "two-value");
    assert_eq!(dev.count("POST /v1/tokens").await, before, "covered reads reuse the token");
    // A write is not covered by a read token: exactly one new token, for exactly that scope.
    v.set_secret("prod/a/THREE", "three-value").await.unwrap();
    assert_eq!(dev.count("POST /v1/tokens").await, before + 1);
    let stats = dev.stats().await;
    assert_eq!(
        stats["agent_key_on_secrets"].as_u64().unwrap_or(0),
        0,
        "agent key never sent to /v1/secrets: {stats}"
    );
}

#[tokio::test]
async fn error_classes_map_to_variants_with_codes() {
    let dev = DevServer::start();
    let v = client(&dev);

    let e = v.get_secret("prod/app/NOPE").await.unwrap_err();
    assert!(matches!(e, Error::NotFound { .. }), "{e:?}");
    assert_eq!(e.code(), "SECRET_NOT_FOUND");

    let e = v.get_secret("JUSTAKEY").await.unwrap_err();
    assert_eq!(e.code(), "VALIDATION_ERROR");
    let e = v.request_token(["secrets:read:a/b"], Some(HumanDuration::from_secs(90_000))).await.unwrap_err();
    assert!(matches!(e, Error::Validation { .. }), "server refuses a TTL above 24h: {e:?}");

    let bad = client_with_key(&dev, "ass_not_a_real_key");
    let e = bad.get_secret("prod/app/X").await.unwrap_err();
    assert!(matches!(e, Error::Unauthorized { .. }), "{e:?}");
    assert_eq!(e.code(), "UNAUTHORIZED");

    let narrow_key = dev.agent("narrow", &["secrets:read:public/*"]).await;
    let narrow = client_with_key(&dev, &narrow_key);
    let e = narrow.get_secret("prod/app/X").await.unwrap_err();
    assert!(matches!(e, Error::ScopeDenied { .. }), "{e:?}");
    assert_eq!(e.code(), "SCOPE_DENIED");

    dev.put_tier("prod/app/SENSITIVE", "s3nsitive-value", "sensitive").await;
    let e = v.delete_secret("prod/app/SENSITIVE").await.unwrap_err();
    assert!(matches!(e, Error::HumanAuthRequired { .. }), "{e:?}");
    assert_eq!(e.code(), "HUMAN_AUTH_REQUIRED");

    let e = v.get_secret("prod/app/SENSITIVE").await.unwrap_err();
    let Error::ApprovalRequired { approval_id, .. } = &e else { panic!("{e:?}") };
    assert!(approval_id.starts_with("apr_"));
    assert_eq!(e.code(), "APPROVAL_REQUIRED");

    v.set_secret_with("prod/tmp/SHORT", "short-lived", WriteOptions::new().ttl("1s").unwrap()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let e = v.get_secret("prod/tmp/SHORT").await.unwrap_err();
    assert!(matches!(e, Error::SecretExpired { .. }), "{e:?}");
    assert_eq!(e.code(), "SECRET_EXPIRED");
    let list = v.list_secrets("prod/tmp").await.unwrap();
    assert!(list.items.iter().any(|i| i.key == "SHORT" && i.expired));

    dev.faults(json!({"fail_next": 1, "fail_status": 500})).await;
    let e = v.get_secret("prod/app/X").await.unwrap_err();
    assert!(matches!(e, Error::Server { status: 500, .. }), "500 is not retried: {e:?}");

    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let gone = AgentVault::builder()
        .agent_key("ass_x")
        .base_url(format!("http://{closed}"))
        .retry_policy(RetryPolicy {
            retries: 1,
            base: Duration::from_millis(10),
            cap: Duration::from_millis(10),
            ..RetryPolicy::default()
        })
        .build()
        .unwrap();
    let e = gone.health().await.unwrap_err();
    assert!(matches!(e, Error::Network { .. }), "{e:?}");
    assert_eq!(e.code(), "NETWORK_ERROR");
}

#[tokio::test]
async fn rate_limit_after_retries_carries_retry_after() {
    let dev = DevServer::with(&[("prod/a/K", "value-k")]).await;
    let v = no_retries(&dev, Duration::ZERO);
    dev.faults(json!({"fail_next": 5, "fail_status": 429})).await;
    let e = v.get_secret("prod/a/K").await.unwrap_err();
    let Error::RateLimited { retry_after, .. } = &e else { panic!("{e:?}") };
    assert!(retry_after.is_some(), "Retry-After is passed on");
    assert_eq!(e.code(), "RATE_LIMITED");
}

#[tokio::test]
async fn rate_limits_are_waited_out_within_the_patience() {
    let dev = DevServer::with(&[("prod/a/K", "value-k")]).await;
    let v = no_retries(&dev, Duration::from_secs(20));
    dev.faults(json!({"fail_next": 3, "fail_status": 429, "retry_after": 1})).await;
    let started = std::time::Instant::now();
    assert_eq!(v.get_secret("prod/a/K").await.unwrap().expose(), "value-k");
    assert!(started.elapsed() >= Duration::from_secs(3), "each Retry-After was honoured");
}

#[tokio::test]
async fn retries_503_429_and_dropped_connections() {
    let dev = DevServer::with(&[("prod/a/K", "value-k")]).await;
    let v = client(&dev);

    dev.faults(json!({"fail_next": 2, "fail_status": 503})).await;
    assert_eq!(v.get_secret("prod/a/K").await.unwrap().expose(), "value-k");

    dev.faults(json!({"fail_next": 2, "fail_status": 429, "retry_after_format": "seconds"})).await;
    let started = std::time::Instant::now();
    assert_eq!(v.get_secret("prod/a/K").await.unwrap().expose(), "value-k");
    assert!(started.elapsed() >= Duration::from_secs(1), "Retry-After is honoured");

    dev.faults(json!({"fail_next": 1, "fail_status": 429, "retry_after_format": "http-date"})).await;
    assert_eq!(v.get_secret("prod/a/K").await.unwrap().expose(), "value-k");

    dev.faults(json!({"drop_next": 2})).await;
    assert_eq!(v.get_secret("prod/a/K").await.unwrap().expose(), "value-k");

    // More failures than retries: the error comes back, after exactly 1 + retries attempts.
    dev.faults(json!({"fail_next": 10, "fail_status": 503})).await;
    let before = dev.count("GET /v1/secrets").await;
    let e = v.get_secret("prod/a/K").await.unwrap_err();
    assert!(matches!(e, Error::Server { status: 503, .. }), "{e:?}");
    assert_eq!(dev.count("GET /v1/secrets").await - before, 4);
    dev.faults(json!({"fail_next": 0})).await;
}

#[tokio::test]
async fn approval_flow_end_to_end() {
    let dev = DevServer::start();
    dev.put_tier("prod/pay/STRIPE_KEY", "sk-stripe-999", "critical").await;
    let v = client(&dev);
    let scopes = ["secrets:read:prod/pay/STRIPE_KEY"];

    let Err(Error::ApprovalRequired { approval_id, .. }) = v.request_token(&scopes, None).await else {
        panic!("critical secret needs approval")
    };
    let e = v.wait_for_approval(&approval_id, Duration::ZERO).await.unwrap_err();
    assert!(matches!(e, Error::ApprovalTimeout { .. }), "{e:?}");

    let waiter = {
        let v = v.clone();
        let id = approval_id.clone();
        tokio::spawn(async move { v.wait_for_approval(&id, Duration::from_secs(20)).await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    dev.approve(&approval_id).await;
    let status = waiter.await.unwrap().unwrap();
    assert_eq!(status.status, agentsecretstore::wire::ApprovalState::Approved);

    v.request_token(&scopes, None).await.unwrap();
    assert_eq!(v.get_secret("prod/pay/STRIPE_KEY").await.unwrap().expose(), "sk-stripe-999");

    // The approval was usable once: a fresh client asking again waits again.
    let other = client(&dev);
    assert!(matches!(other.request_token(&scopes, None).await, Err(Error::ApprovalRequired { .. })));
}

#[tokio::test]
async fn denied_and_expired_approvals() {
    let dev = DevServer::start_with(&["--approval-ttl", "1s"]);
    dev.put_tier("prod/x/S", "sensitive-value", "sensitive").await;
    dev.put_tier("prod/y/S", "sensitive-value", "sensitive").await;
    let v = client(&dev);

    let x = ["secrets:read:prod/x/S"];
    let Err(Error::ApprovalRequired { approval_id, .. }) = v.request_token(&x, None).await else { panic!() };
    dev.deny(&approval_id, "not today").await;
    let e = v.wait_for_approval(&approval_id, Duration::from_secs(5)).await.unwrap_err();
    let Error::ApprovalDenied { reason, .. } = &e else { panic!("{e:?}") };
    assert_eq!(reason.as_deref(), Some("not today"));
    let e = v.request_token(&x, None).await.unwrap_err();
    assert!(matches!(e, Error::ApprovalDenied { .. }), "re-request after denial: {e:?}");
    assert_eq!(e.code(), "APPROVAL_DENIED");

    let y = ["secrets:read:prod/y/S"];
    let Err(Error::ApprovalRequired { approval_id, .. }) = v.request_token(&y, None).await else { panic!() };
    let e = v.wait_for_approval(&approval_id, Duration::from_secs(10)).await.unwrap_err();
    assert!(matches!(e, Error::ApprovalExpired { .. }), "{e:?}");
    let e = v.request_token(&y, None).await.unwrap_err();
    assert!(matches!(e, Error::ApprovalExpired { .. }), "re-request after expiry: {e:?}");
    assert_eq!(e.code(), "APPROVAL_EXPIRED");
}

#[tokio::test]
async fn malformed_redirecting_and_oversized_answers() {
    let garbage = raw_server(http_json("200 OK", "{\"token\": "));
    let v = AgentVault::builder().agent_key("ass_k").base_url(&garbage).build().unwrap();
    let e = v.get_secret("a/b/C").await.unwrap_err();
    assert!(matches!(e, Error::InvalidResponse { .. }), "{e:?}");
    assert_eq!(e.code(), "INVALID_RESPONSE");

    let no_token = raw_server(http_json("200 OK", "{\"token_id\": \"tok_1\"}"));
    let v = AgentVault::builder().agent_key("ass_k").base_url(&no_token).build().unwrap();
    assert!(matches!(v.get_secret("a/b/C").await, Err(Error::InvalidResponse { .. })));

    let redirect = raw_server(
        b"HTTP/1.1 307 Temporary Redirect\r\nlocation: http://127.0.0.1:1/v1/tokens\r\ncontent-length: 0\r\n\r\n".to_vec(),
    );
    let v = AgentVault::builder().agent_key("ass_k").base_url(&redirect).build().unwrap();
    let e = v.get_secret("a/b/C").await.unwrap_err();
    assert!(matches!(e, Error::InvalidResponse { .. }) && e.to_string().contains("redirect"), "{e}");

    let huge = format!("{{\"token\":\"{}\"}}", "x".repeat(9 * 1024 * 1024));
    let big = raw_server(http_json("200 OK", &huge));
    let v = AgentVault::builder().agent_key("ass_k").base_url(&big).build().unwrap();
    let e = v.get_secret("a/b/C").await.unwrap_err();
    assert!(e.to_string().contains("larger than"), "{e}");
}

fn blocking_client(dev: &DevServer) -> agentsecretstore::blocking::AgentVault {
    let builder = agentsecretstore::blocking::AgentVault::builder().agent_key(dev.agent_key.as_str());
    builder.base_url(&dev.base_url).approval_poll_interval(Duration::from_millis(50)).build().unwrap()
}

#[test]
fn blocking_twin_has_the_same_surface() {
    let dev = DevServer::start();
    let v = blocking_client(&dev);
    assert_eq!(v.health().unwrap().status, "ok");
    v.set_secret("dev/app/TOKEN", "blocking-value").unwrap();
    assert_eq!(v.get_secret("dev/app/TOKEN").unwrap().expose(), "blocking-value");
    assert_eq!(v.get_secret_with_metadata("dev/app/TOKEN").unwrap().version, 1);
    assert_eq!(v.import_env("A=1\nB=2\n", "dev/env", Default::default()).unwrap().imported_count, 2);
    assert_eq!(v.list_secrets("dev").unwrap().total, 3);
    v.delete_secret("dev/env/A").unwrap();
    assert!(matches!(v.get_secret("dev/env/A"), Err(Error::NotFound { .. })));
    let t = v.request_token(["secrets:read:dev/*"], None).unwrap();
    assert!(!t.token_id.is_empty());
    assert!(matches!(v.approval_status("apr_unknown"), Err(Error::NotFound { .. })));
    assert!(matches!(v.wait_for_approval("apr_unknown", Duration::ZERO), Err(Error::NotFound { .. })));
}

#[test]
fn debug_output_never_shows_credentials_or_values() {
    let dev = DevServer::start();
    let v = blocking_client(&dev);
    v.set_secret("dev/app/PW", "pw-1234567890").unwrap();
    let secret = v.get_secret_with_metadata("dev/app/PW").unwrap();
    let t = v.request_token(["secrets:read:dev/*"], None).unwrap();
    let shown = format!("{v:?} {secret:?} {t:?} {}", secret.value);
    assert!(!shown.contains("pw-1234567890"), "{shown}");
    assert!(!shown.contains(&dev.agent_key), "{shown}");
    assert!(!shown.contains(t.token.expose()), "{shown}");
}
