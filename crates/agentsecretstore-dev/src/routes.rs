//! The HTTP surface: the contract's routes, the dev-only admin routes, and the middleware that
//! counts, logs and applies the fault knobs. Handlers parse, authenticate, call [`Store`] and
//! render; the rules live in `state.rs` and `approvals.rs`.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::{Json, Router};
use percent_encoding::percent_decode_str;
use serde::de::DeserializeOwned;

use crate::path::Scope;
use crate::wire::{
    ApprovalState, CreateAgentRequest, CreateAgentResponse, DenyRequest, Health, ImportRequest,
    SecretWriteRequest, Timestamp, TokenRequest,
};

use super::approvals::{NewApproval, TokenOutcome};
use super::auth;
use super::conn::ConnInfo;
use super::error::{sanitize_serde_message, ApiError};
use super::faults::{FaultPatch, Faults, Verdict};
use super::state::{parse_path, GetOrList, Store};
use super::stats::Stats;

/// Shared by every handler.
#[derive(Clone, Debug)]
pub struct AppState {
    /// Secrets, agents, tokens, approvals.
    pub store: Arc<Mutex<Store>>,
    /// Test knobs.
    pub faults: Arc<Faults>,
    /// Counters.
    pub stats: Arc<Mutex<Stats>>,
    /// `http://host:port`, for the approval hint in the log.
    pub base_url: Arc<str>,
}

impl AppState {
    fn store(&self) -> MutexGuard<'_, Store> {
        // A panic while holding the lock is a bug; keep serving rather than poison every request.
        self.store.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn stats(&self) -> MutexGuard<'_, Stats> {
        self.stats.lock().unwrap_or_else(|e| e.into_inner())
    }
}

type ApiResult = Result<Response, ApiError>;

/// The whole application.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/v1/health", get(health))
        .route("/v1/tokens", post(tokens))
        .route("/v1/secrets", get(list_secrets))
        // One handler for every method: axum would answer 405 for `GET /v1/secrets/import`
        // (a namespace called `import`) if import had its own static route.
        .route("/v1/secrets/{*rest}", any(secrets))
        .route("/v1/approvals", get(list_approvals))
        .route("/v1/approvals/agent/{id}", get(approval_status))
        .route("/v1/approvals/{id}/approve", post(approve))
        .route("/v1/approvals/{id}/deny", post(deny))
        .route("/v1/agents", post(create_agent).get(list_agents))
        .route("/v1/dev/faults", get(get_faults).put(put_faults).delete(reset_faults))
        .route("/v1/dev/stats", get(get_stats))
        .route("/v1/dev/reset-stats", post(reset_stats))
        .fallback(|method: Method, uri: Uri| async move {
            ApiError::NotFound(format!("no route for {method} {}", uri.path()))
        })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .with_state(state)
}

/// Counts, applies the fault knobs (not to `/v1/dev/*`) and logs one line per request:
/// method, path (no query), status, milliseconds. Never headers or bodies.
async fn observe(
    State(st): State<AppState>,
    ConnectInfo(conn): ConnectInfo<ConnInfo>,
    req: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let dev_route = path == "/v1/dev" || path.starts_with("/v1/dev/");
    let response = if dev_route {
        next.run(req).await
    } else {
        {
            let mut stats = st.stats();
            stats.count(&method, &path);
            stats.http2_requests += u64::from(req.version() == axum::http::Version::HTTP_2);
        }
        let (verdict, latency) = st.faults.decide();
        if let Some(d) = latency {
            tokio::time::sleep(d).await;
        }
        match verdict {
            Verdict::Pass => next.run(req).await,
            Verdict::Fail(e) => {
                st.stats().faults_injected += 1;
                e.into_response()
            }
            Verdict::Drop => {
                st.stats().connections_dropped += 1;
                conn.drop_connection();
                let ms = started.elapsed().as_millis();
                tracing::info!("{method} {path} dropped (fault injection) {ms}ms");
                // Never written: the connection fails on the first byte.
                return StatusCode::SERVICE_UNAVAILABLE.into_response();
            }
        }
    };
    let ms = started.elapsed().as_millis();
    tracing::info!("{method} {path} {} {ms}ms", response.status().as_u16());
    response
}

/// Parses a JSON body; errors never quote a value.
fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::Validation("request body is empty: send a JSON object".into()));
    }
    serde_json::from_slice(body).map_err(|e| {
        ApiError::Validation(format!("invalid JSON body: {}", sanitize_serde_message(&e.to_string())))
    })
}

fn body(b: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiError> {
    b.map_err(|e| ApiError::Validation(format!("cannot read request body: {}", e.body_text())))
}

fn path_id(p: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    p.map(|Path(id)| id).map_err(|_| ApiError::Validation("invalid id in path".into()))
}

fn query_param(uri: &Uri, name: &str) -> Option<String> {
    url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into())
}

async fn health() -> Json<Health> {
    Json(Health {
        status: "ok".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        service: "vault-run-dev".into(),
    })
}

async fn tokens(
    State(st): State<AppState>,
    headers: HeaderMap,
    b: Result<Bytes, BytesRejection>,
) -> ApiResult {
    let now = Timestamp::now();
    let outcome = {
        let mut store = st.store();
        let agent_id = auth::agent_only(&store, &headers)?;
        let req: TokenRequest = parse_json(&body(b)?)?;
        store.request_token(&agent_id, req, now)?
    };
    match outcome {
        TokenOutcome::Issued { reply, approval_id } => {
            st.stats().tokens_issued += 1;
            let id = reply.token_id.as_deref().unwrap_or("");
            match approval_id {
                Some(apr) => tracing::info!("token {id} issued through approval {apr}"),
                None => tracing::debug!("token {id} issued"),
            }
            Ok(Json(reply).into_response())
        }
        TokenOutcome::Pending { reply, created } => {
            if let Some(new) = created {
                st.stats().approvals_created += 1;
                log_new_approval(&st.base_url, &new);
            }
            Ok((StatusCode::ACCEPTED, Json(reply)).into_response())
        }
    }
}

/// Tells the human at the terminal how to decide, without ever printing the admin key.
fn log_new_approval(base_url: &str, a: &NewApproval) {
    tracing::info!(
        "approval {id} needed: agent {name:?} asks for {scopes} ({tier} tier). Approve with: \
         curl -X POST -H \"Authorization: Bearer $ASS_ADMIN_KEY\" {base_url}/v1/approvals/{id}/approve \
         (or .../deny with {{\"reason\":\"...\"}})",
        id = a.id,
        name = a.agent_name,
        scopes = a.scopes,
        tier = a.tier,
    );
}

async fn list_secrets(
    State(st): State<AppState>,
    ConnectInfo(conn): ConnectInfo<ConnInfo>,
    headers: HeaderMap,
    uri: Uri,
) -> ApiResult {
    let now = Timestamp::now();
    let mut store = st.store();
    let access = auth::secrets_access(&mut store, &headers, conn.peer.ip(), now, || {
        st.stats().agent_key_on_secrets += 1
    })?;
    let ns = query_param(&uri, "namespace").ok_or_else(|| {
        ApiError::Validation(
            "the namespace query parameter is required: /v1/secrets?namespace=production".into(),
        )
    })?;
    Ok(Json(store.list(&access, &ns, now)?).into_response())
}

/// Every `/v1/secrets/{…}` request: item GET/PUT/DELETE, the raw-slash list form and import.
async fn secrets(
    State(st): State<AppState>,
    ConnectInfo(conn): ConnectInfo<ConnInfo>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    b: Result<Bytes, BytesRejection>,
) -> ApiResult {
    let raw = uri.path().strip_prefix("/v1/secrets/").unwrap_or_default();
    // Decoded here rather than by `Path` so that `%2F` namespaces, `%20` and raw slashes all
    // end up the same and a bad encoding is a JSON 400.
    let rest = percent_decode_str(raw)
        .decode_utf8()
        .map_err(|_| ApiError::Validation("secret path is not valid UTF-8 once percent-decoded".into()))?;
    let now = Timestamp::now();
    let mut store = st.store();
    let access = auth::secrets_access(&mut store, &headers, conn.peer.ip(), now, || {
        st.stats().agent_key_on_secrets += 1
    })?;
    if method == Method::POST && raw == "import" {
        let req: ImportRequest = parse_json(&body(b)?)?;
        return Ok(Json(store.import(&access, req, now)?).into_response());
    }
    match method {
        Method::GET => Ok(match store.get_or_list(&access, &rest, now)? {
            GetOrList::Secret(s) => Json(s).into_response(),
            GetOrList::List(l) => Json(l).into_response(),
        }),
        Method::PUT => {
            let path = parse_path(&rest)?;
            let req: SecretWriteRequest = parse_json(&body(b)?)?;
            let (created, reply) = store.put(&access, &path, req, now)?;
            let status = if created { StatusCode::CREATED } else { StatusCode::OK };
            Ok((status, Json(reply)).into_response())
        }
        Method::DELETE => {
            let path = parse_path(&rest)?;
            store.delete(&access, &path)?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        _ => Err(ApiError::MethodNotAllowed),
    }
}

async fn approval_status(
    State(st): State<AppState>,
    headers: HeaderMap,
    id: Result<Path<String>, PathRejection>,
) -> ApiResult {
    let store = st.store();
    let asker = auth::agent_or_admin(&store, &headers)?;
    let status = store.approval_status(&path_id(id)?, asker.as_deref(), Timestamp::now())?;
    Ok(Json(status).into_response())
}

async fn approve(
    State(st): State<AppState>,
    headers: HeaderMap,
    id: Result<Path<String>, PathRejection>,
    b: Result<Bytes, BytesRejection>,
) -> ApiResult {
    decide(st, headers, id, b, true)
}

async fn deny(
    State(st): State<AppState>,
    headers: HeaderMap,
    id: Result<Path<String>, PathRejection>,
    b: Result<Bytes, BytesRejection>,
) -> ApiResult {
    decide(st, headers, id, b, false)
}

fn decide(
    st: AppState,
    headers: HeaderMap,
    id: Result<Path<String>, PathRejection>,
    b: Result<Bytes, BytesRejection>,
    approve: bool,
) -> ApiResult {
    let mut store = st.store();
    auth::admin_only(&store, &headers)?;
    let id = path_id(id)?;
    let b = body(b)?;
    // The body is optional: `{"reason": …}` or nothing at all.
    let req: DenyRequest =
        if b.iter().all(u8::is_ascii_whitespace) { DenyRequest::default() } else { parse_json(&b)? };
    let status = store.decide(&id, approve, req.reason, Timestamp::now())?;
    tracing::info!("approval {id} {}", if approve { "approved" } else { "denied" });
    Ok(Json(status).into_response())
}

async fn list_approvals(State(st): State<AppState>, headers: HeaderMap, uri: Uri) -> ApiResult {
    let store = st.store();
    auth::admin_only(&store, &headers)?;
    let state = match query_param(&uri, "status").as_deref() {
        None | Some("") | Some("all") => None,
        Some(s) => Some(Some(ApprovalState::from(s)).filter(ApprovalState::is_known).ok_or_else(|| {
            ApiError::Validation(format!("status {s:?}: use pending, approved, denied, expired or all"))
        })?),
    };
    let items = store.approvals(state, Timestamp::now());
    Ok(Json(serde_json::json!({ "total": items.len(), "items": items })).into_response())
}

async fn create_agent(
    State(st): State<AppState>,
    headers: HeaderMap,
    b: Result<Bytes, BytesRejection>,
) -> ApiResult {
    let mut store = st.store();
    auth::admin_only(&store, &headers)?;
    let req: CreateAgentRequest = parse_json(&body(b)?)?;
    let scopes = req.allowed_scopes.unwrap_or_else(|| vec!["secrets:*:*".into()]);
    let scopes = scopes
        .iter()
        .map(|s| s.parse::<Scope>().map_err(|e| ApiError::Validation(e.to_string())))
        .collect::<Result<Vec<_>, _>>()?;
    let agent = store.add_agent(&req.name, None, scopes)?;
    tracing::info!("agent {:?} created ({})", agent.name, agent.id);
    let reply =
        CreateAgentResponse { id: agent.id.clone(), name: agent.name.clone(), api_key: agent.key.clone() };
    Ok((StatusCode::CREATED, Json(reply)).into_response())
}

async fn list_agents(State(st): State<AppState>, headers: HeaderMap) -> ApiResult {
    let store = st.store();
    auth::admin_only(&store, &headers)?;
    let items: Vec<serde_json::Value> = store
        .agents()
        .iter()
        .map(|a| serde_json::json!({ "id": a.id, "name": a.name, "allowed_scopes": a.allowed_scopes }))
        .collect();
    Ok(Json(serde_json::json!({ "total": items.len(), "items": items })).into_response())
}

async fn get_faults(State(st): State<AppState>, headers: HeaderMap) -> ApiResult {
    auth::admin_only(&st.store(), &headers)?;
    Ok(Json(st.faults.get()).into_response())
}

async fn put_faults(
    State(st): State<AppState>,
    headers: HeaderMap,
    b: Result<Bytes, BytesRejection>,
) -> ApiResult {
    auth::admin_only(&st.store(), &headers)?;
    let patch: FaultPatch = parse_json(&body(b)?)?;
    let knobs = st.faults.patch(patch).map_err(ApiError::Validation)?;
    tracing::info!("fault knobs now {}", serde_json::to_string(&knobs).unwrap_or_default());
    Ok(Json(knobs).into_response())
}

async fn reset_faults(State(st): State<AppState>, headers: HeaderMap) -> ApiResult {
    auth::admin_only(&st.store(), &headers)?;
    st.faults.reset();
    Ok(Json(st.faults.get()).into_response())
}

async fn get_stats(State(st): State<AppState>, headers: HeaderMap) -> ApiResult {
    auth::admin_only(&st.store(), &headers)?;
    let stats = st.stats().clone();
    Ok(Json(stats).into_response())
}

async fn reset_stats(State(st): State<AppState>, headers: HeaderMap) -> ApiResult {
    auth::admin_only(&st.store(), &headers)?;
    *st.stats() = Stats::default();
    Ok(Json(Stats::default()).into_response())
}
