//! Request counters for tests (`GET /v1/dev/stats`): how many requests each route got (faulted
//! ones included), how often an agent key was sent where a token belongs, tokens issued.

use std::collections::BTreeMap;

use axum::http::Method;
use serde::Serialize;

/// The counters (also the `GET /v1/dev/stats` body).
#[derive(Clone, Debug, Default, Serialize)]
pub struct Stats {
    /// Requests per `"METHOD /route"`; every `/v1/secrets…` item or list request counts as
    /// `/v1/secrets`, import as `/v1/secrets/import`.
    pub requests: BTreeMap<String, u64>,
    /// All API requests (not `/v1/dev/*`).
    pub total_requests: u64,
    /// Requests to `/v1/secrets…` that carried an agent key (a client bug: it must use a token).
    pub agent_key_on_secrets: u64,
    /// `POST /v1/tokens` requests.
    pub token_requests: u64,
    /// Tokens actually issued.
    pub tokens_issued: u64,
    /// Approvals created.
    pub approvals_created: u64,
    /// Requests answered by an injected error or the rate limit.
    pub faults_injected: u64,
    /// Connections dropped on purpose.
    pub connections_dropped: u64,
    /// TCP connections accepted (`/v1/dev/*` ones too): what a client's connection reuse saves.
    pub connections_accepted: u64,
    /// TLS handshakes completed (`--tls`).
    pub tls_handshakes: u64,
    /// Of those, connections that chose HTTP/2 by ALPN.
    pub http2_connections: u64,
    /// API requests (not `/v1/dev/*`) that arrived over HTTP/2.
    pub http2_requests: u64,
}

impl Stats {
    /// Counts one request.
    pub fn count(&mut self, method: &Method, path: &str) {
        // Only known methods on known routes get a counter of their own: anything a client
        // makes up lands in one, so requests cannot grow the map without bound.
        let template = route_template(method, path);
        let known = [Method::GET, Method::POST, Method::PUT, Method::DELETE, Method::PATCH, Method::HEAD];
        let key = if template == UNMATCHED || !known.contains(method) {
            UNMATCHED.to_owned()
        } else {
            format!("{method} {template}")
        };
        *self.requests.entry(key).or_default() += 1;
        self.total_requests += 1;
        if *method == Method::POST && path == "/v1/tokens" {
            self.token_requests += 1;
        }
    }
}

/// The route a raw path belongs to, with ids replaced by placeholders.
pub fn route_template(method: &Method, path: &str) -> &'static str {
    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match segs.as_slice() {
        ["v1", "health"] => "/v1/health",
        ["v1", "tokens"] => "/v1/tokens",
        ["v1", "agents"] => "/v1/agents",
        ["v1", "secrets", "import"] if method == Method::POST => "/v1/secrets/import",
        ["v1", "secrets", ..] => "/v1/secrets",
        ["v1", "approvals"] => "/v1/approvals",
        ["v1", "approvals", "agent", _] => "/v1/approvals/agent/{id}",
        ["v1", "approvals", _, "approve"] => "/v1/approvals/{id}/approve",
        ["v1", "approvals", _, "deny"] => "/v1/approvals/{id}/deny",
        _ => UNMATCHED,
    }
}

/// The counter for requests to no known route, or with a method the API does not use.
pub const UNMATCHED: &str = "(unmatched)";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates() {
        assert_eq!(route_template(&Method::GET, "/v1/secrets/a/b/K"), "/v1/secrets");
        assert_eq!(route_template(&Method::GET, "/v1/secrets"), "/v1/secrets");
        assert_eq!(route_template(&Method::POST, "/v1/secrets/import"), "/v1/secrets/import");
        assert_eq!(route_template(&Method::GET, "/v1/secrets/import"), "/v1/secrets");
        assert_eq!(route_template(&Method::GET, "/v1/approvals/agent/apr_1"), "/v1/approvals/agent/{id}");
        assert_eq!(route_template(&Method::POST, "/v1/approvals/apr_1/deny"), "/v1/approvals/{id}/deny");
        assert_eq!(route_template(&Method::GET, "/nope"), "(unmatched)");
        let mut s = Stats::default();
        s.count(&Method::POST, "/v1/tokens");
        s.count(&Method::GET, "/v1/secrets/a/K");
        assert_eq!(s.requests["POST /v1/tokens"], 1);
        assert_eq!(s.requests["GET /v1/secrets"], 1);
        assert_eq!((s.token_requests, s.total_requests), (1, 2));
    }
}
