//! The dev server's tier rules decided at read time, and its approvals bounded (issue 20.6),
//! driven over HTTP against `vault-run dev` as a real process.

mod common;

use std::time::Duration;

use serde_json::{json, Value};

use common::DevServer;

/// `METHOD path` with `bearer` and a JSON body: (status, body).
async fn call(dev: &DevServer, method: &str, path: &str, bearer: &str, body: Option<Value>) -> (u16, Value) {
    let mut req =
        dev.http.request(method.parse().unwrap(), format!("{}{path}", dev.base_url)).bearer_auth(bearer);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, serde_json::from_str(&resp.text().await.unwrap()).unwrap_or(Value::Null))
}

async fn token(dev: &DevServer, scopes: &[&str]) -> (u16, Value) {
    call(dev, "POST", "/v1/tokens", &dev.agent_key, Some(json!({ "scopes": scopes, "ttl": "24h" }))).await
}

#[tokio::test]
async fn a_standard_token_cannot_read_a_secret_created_or_raised_above_standard_after_it_was_issued() {
    let dev = DevServer::with(&[("team/STD", "std-value"), ("team/OTHER", "other-value")]).await;
    let (status, body) = token(&dev, &["secrets:read:team/*"]).await;
    assert_eq!(status, 200, "{body}");
    let tok = body["token"].as_str().unwrap().to_owned();
    dev.put_tier("team/PAYROLL", "sensitive-payroll-secret", "sensitive").await;
    dev.put_tier("team/STD", "std-now-critical", "critical").await;
    for path in ["team/PAYROLL", "team/STD"] {
        let (status, body) = call(&dev, "GET", &format!("/v1/secrets/{path}"), &tok, None).await;
        assert_eq!(status, 403, "{path}: {body}");
        assert_eq!(body["error"]["code"], "HUMAN_AUTH_REQUIRED", "{path}: {body}");
        let text = body.to_string();
        assert!(!text.contains("payroll-secret") && !text.contains("std-now"), "{body}");
    }
    // Still standard: still readable with the same token.
    let (status, body) = call(&dev, "GET", "/v1/secrets/team/OTHER", &tok, None).await;
    assert_eq!((status, body["value"].as_str()), (200, Some("other-value")), "{body}");
    // A token approved for sensitive reads the sensitive secret, not the critical one.
    let (status, body) = token(&dev, &["secrets:read:team/PAYROLL"]).await;
    assert_eq!(status, 202, "{body}");
    dev.approve(body["approval_id"].as_str().unwrap()).await;
    let (status, body) = token(&dev, &["secrets:read:team/PAYROLL"]).await;
    assert_eq!(status, 200, "{body}");
    let sensitive = body["token"].as_str().unwrap().to_owned();
    let (status, body) = call(&dev, "GET", "/v1/secrets/team/PAYROLL", &sensitive, None).await;
    assert_eq!((status, body["value"].as_str()), (200, Some("sensitive-payroll-secret")), "{body}");
    // Raised again after that token was issued: refused again.
    dev.put_tier("team/PAYROLL", "now-critical", "critical").await;
    let (status, body) = call(&dev, "GET", "/v1/secrets/team/PAYROLL", &sensitive, None).await;
    assert_eq!((status, body["error"]["code"].as_str()), (403, Some("HUMAN_AUTH_REQUIRED")), "{body}");
}

#[tokio::test]
async fn pending_approvals_per_agent_and_scopes_per_request_are_bounded() {
    let dev = DevServer::with(&[]).await;
    dev.put_tier("team/SEN", "s", "sensitive").await;
    let mut statuses = Vec::new();
    for i in 0..40 {
        let other = format!("secrets:read:other/K{i}");
        statuses.push(token(&dev, &["secrets:read:team/SEN", &other]).await.0);
    }
    assert!(statuses[..32].iter().all(|s| *s == 202), "{statuses:?}");
    assert!(statuses[32..].iter().all(|s| *s == 429), "{statuses:?}");
    assert_eq!(dev.pending().await.len(), 32);
    let many: Vec<String> = (0..1025).map(|i| format!("secrets:read:team/K{i}")).collect();
    let (status, body) =
        call(&dev, "POST", "/v1/tokens", &dev.agent_key, Some(json!({ "scopes": many }))).await;
    assert_eq!((status, body["error"]["code"].as_str()), (400, Some("VALIDATION_ERROR")), "{body}");
}

#[tokio::test]
async fn expired_approvals_are_pruned_after_one_more_lifetime() {
    let dev = DevServer::start_with(&["--approval-ttl", "1s"]);
    dev.put_tier("team/SEN", "s", "sensitive").await;
    let (status, body) = token(&dev, &["secrets:read:team/SEN"]).await;
    assert_eq!(status, 202, "{body}");
    let id = body["approval_id"].as_str().unwrap().to_owned();
    tokio::time::sleep(Duration::from_millis(1300)).await;
    // Expired, and still there to say so.
    let (status, body) = call(&dev, "GET", &format!("/v1/approvals/agent/{id}"), &dev.agent_key, None).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("expired")), "{body}");
    tokio::time::sleep(Duration::from_millis(1200)).await;
    // Any token request prunes it.
    let (status, _) = token(&dev, &["secrets:read:team/OTHER"]).await;
    assert_eq!(status, 200);
    let (status, body) = call(&dev, "GET", &format!("/v1/approvals/agent/{id}"), &dev.agent_key, None).await;
    assert_eq!(status, 404, "{body}");
    let (_, all) = dev.admin("GET", "/v1/approvals", None).await;
    assert!(!all.to_string().contains(&id), "{all}");
}
