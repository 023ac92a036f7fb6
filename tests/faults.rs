//! Faults: vault-run either starts the child with every required secret or does not start it,
//! and then says why in one line, with the documented exit code, within `--deadline`.
//!
//! Two kinds of misbehaving server: the dev server's fault knobs (429 in both `Retry-After`
//! forms, 5xx, dropped connections, latency) and small loopback servers written here for what
//! the dev server cannot do (silence, stalled bodies, resets, broken JSON, huge bodies,
//! redirects). Nothing here talks to anything but 127.0.0.1.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Output;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{bare_vault_run, http_json, output_within, stderr_of, vault_run, DevServer};
use serde_json::json;

/// Hard bound on any one vault-run in this file; a hang fails the test instead of stalling CI.
const HANG: Duration = Duration::from_secs(60);
/// Slack over `--deadline` for process start-up and exit on a loaded 2-core machine.
const SLACK: Duration = Duration::from_secs(3);

const PATH: &str = "prod/app/KEY";
const VALUE: &str = "fault-secret-value-7f3a";
/// A made-up key for the hand-written servers; it must never be echoed anywhere.
const KEY: &str = "ass_faultagentkey_0123456789abcdef";
/// Printed by the child: its presence means the child started.
const STARTED: &str = "CHILD-STARTED";

/// The child checks its secret itself, so "started" always means "started with the secret".
fn child_args() -> Vec<String> {
    vec![
        "-e".into(),
        format!("K={PATH}"),
        "--".into(),
        "sh".into(),
        "-c".into(),
        format!("test \"$K\" = '{VALUE}' && echo {STARTED}"),
    ]
}

async fn seeded() -> DevServer {
    DevServer::with(&[(PATH, VALUE)]).await
}

/// A seeded server with the fault `knobs` set.
async fn faulty(knobs: serde_json::Value) -> DevServer {
    let dev = seeded().await;
    dev.faults(knobs).await;
    dev
}

/// Runs vault-run against `dev` with `flags`; returns the output and the elapsed time.
fn run_dev(dev: &DevServer, flags: &[&str]) -> (Output, Duration) {
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let out = output_within(vault_run(dev, dir.path()).args(flags).args(child_args()), HANG);
    (out, started.elapsed())
}

/// Runs vault-run against the server at `url` (with a made-up agent key) with `flags`.
fn run_url(url: &str, flags: &[&str]) -> (Output, Duration) {
    run_url_with(url, &[], flags)
}

/// [`run_url`] with the variables `env` set too.
fn run_url_with(url: &str, env: &[(&str, &str)], flags: &[&str]) -> (Output, Duration) {
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let out = output_within(
        bare_vault_run(dir.path())
            .env("ASS_BASE_URL", url)
            .env("ASS_AGENT_KEY", KEY)
            .envs(env.iter().copied())
            .args(flags)
            .args(child_args()),
        HANG,
    );
    (out, started.elapsed())
}

/// The child ran and saw its secret.
#[track_caller]
fn assert_started(out: &Output) {
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(out));
    assert!(String::from_utf8_lossy(&out.stdout).contains(STARTED), "{}", stderr_of(out));
}

/// The child did not start; vault-run exited `code` with exactly one line on stderr that
/// contains every word of `says`, within `bound`; and the agent key was not printed.
#[track_caller]
fn assert_refused(out: &Output, elapsed: Duration, code: i32, bound: Duration, says: &[&str]) -> String {
    let err = stderr_of(out);
    assert_eq!(out.status.code(), Some(code), "{err}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains(STARTED), "the child must not start: {err}");
    assert_eq!(err.trim().lines().count(), 1, "exactly one line: {err}");
    assert!(err.starts_with("vault-run: error:") || err.contains("\"level\""), "{err}");
    assert!(err.contains(&format!("(exit {code})")), "{err}");
    for word in says {
        assert!(err.to_lowercase().contains(&word.to_lowercase()), "{word:?} in {err}");
    }
    assert!(!err.contains(KEY), "the agent key is never printed: {err}");
    assert!(elapsed < bound, "took {elapsed:?}, bound {bound:?}: {err}");
    err
}

// ---------------------------------------------------------------------------------------------
// Hand-written misbehaving servers.

/// A loopback server that hands each accepted connection to `handle` on its own thread.
/// Returns the base URL and a count of accepted connections.
struct Misbehaving {
    url: String,
    connections: Arc<AtomicUsize>,
}

impl Misbehaving {
    fn start(handle: impl Fn(TcpStream) + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let connections = Arc::new(AtomicUsize::new(0));
        let count = connections.clone();
        let handle = Arc::new(handle);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                count.fetch_add(1, Ordering::SeqCst);
                let handle = handle.clone();
                std::thread::spawn(move || handle(stream));
            }
        });
        Self { url, connections }
    }

    fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

/// Keeps the connection open, reading and discarding, for up to `d` (or until the peer leaves).
fn linger(mut stream: TcpStream, d: Duration) {
    let _ = stream.set_read_timeout(Some(d));
    let mut sink = [0u8; 1024];
    let until = Instant::now() + d;
    while Instant::now() < until {
        match stream.read(&mut sink) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock || e.kind() == std::io::ErrorKind::TimedOut =>
            {
                return
            }
            Err(_) => return,
        }
    }
}

/// Closes with a TCP RST instead of a FIN: SO_LINGER with a zero timeout, then close.
fn reset(stream: TcpStream) {
    use nix::sys::socket::{setsockopt, sockopt::Linger};
    let off = libc::linger { l_onoff: 1, l_linger: 0 };
    setsockopt(&stream, Linger, &off).expect("SO_LINGER");
    drop(stream);
}

// ---------------------------------------------------------------------------------------------
// Rate limiting: 429 with Retry-After, in seconds and as an HTTP date.

/// With the fault `knobs` (some 429s, then service) and `--retries retries`, the child starts,
/// after waiting at least `waited` (what the Retry-After `honoured` asked), in `attempts` token
/// requests.
async fn served_after_rate_limits(
    knobs: serde_json::Value,
    retries: &str,
    waited: u64,
    honoured: &str,
    attempts: u64,
) {
    let dev = faulty(knobs).await;
    let (out, elapsed) = run_dev(&dev, &["--retries", retries, "--deadline", "20s"]);
    assert_started(&out);
    assert!(elapsed >= Duration::from_secs(waited), "{honoured} was honoured: {elapsed:?}");
    assert_eq!(dev.count("POST /v1/tokens").await, attempts);
}

#[tokio::test]
async fn rate_limited_with_retry_after_seconds_then_served() {
    // The token request was answered 429 twice, then served: three attempts, one token.
    let knobs = json!({"fail_next": 2, "fail_status": 429, "retry_after": 1});
    served_after_rate_limits(knobs, "3", 2, "Retry-After: 1, twice,", 3).await;
}

#[tokio::test]
async fn rate_limited_with_retry_after_http_date_then_served() {
    let knobs =
        json!({"fail_next": 1, "fail_status": 429, "retry_after": 1, "retry_after_format": "http-date"});
    served_after_rate_limits(knobs, "2", 1, "the HTTP date", 2).await;
}

#[tokio::test]
async fn rate_limited_for_good_is_temporary_at_the_deadline() {
    // 429s are waited out past --retries (the server is pacing a crowd), but never past
    // --deadline: a server that never lets us in ends the run at the deadline.
    let dev = faulty(json!({"error_rate": 1.0, "error_status": 429, "retry_after": 1})).await;
    let (out, elapsed) = run_dev(&dev, &["--retries", "2", "--deadline", "4s"]);
    assert_refused(&out, elapsed, 75, Duration::from_secs(4) + SLACK, &["deadline"]);
    assert!(elapsed >= Duration::from_secs(3), "kept trying until the deadline: {elapsed:?}");
    let tries = dev.count("POST /v1/tokens").await;
    assert!((3..=8).contains(&tries), "paced by Retry-After, not hammering: {tries}");

    dev.faults(json!({"retry_after_format": "http-date"})).await;
    let (out, elapsed) = run_dev(&dev, &["--retries", "1", "--deadline", "3s"]);
    assert_refused(&out, elapsed, 75, Duration::from_secs(3) + SLACK, &["deadline"]);
}

#[tokio::test]
async fn retry_after_beyond_the_deadline_ends_at_the_deadline() {
    // A server asking for 30 s of patience gets it only as far as --deadline allows.
    let body = r#"{"error":{"code":"RATE_LIMITED","message":"slow down"}}"#;
    let server = answering(with_header(http_json("429 Too Many Requests", body), "retry-after: 30"));
    let (out, elapsed) = run_url(&server.url, &["--retries", "5", "--deadline", "2s"]);
    assert_refused(&out, elapsed, 75, Duration::from_secs(2) + SLACK, &["deadline"]);

    // A Retry-After far beyond any reasonable wait is not slept through at all.
    let date = httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(3600));
    let far = answering(
        format!("HTTP/1.1 429 Too Many Requests\r\nretry-after: {date}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
            .into_bytes(),
    );
    let (out, elapsed) = run_url(&far.url, &["--retries", "5", "--deadline", "30s"]);
    assert_refused(&out, elapsed, 75, Duration::from_secs(5), &["rate"]);
    assert_eq!(far.connections(), 1, "no retry when told to come back in an hour");
}

// ---------------------------------------------------------------------------------------------
// Server errors.

#[tokio::test]
async fn bad_gateway_unavailable_and_gateway_timeout_are_retried() {
    let dev = seeded().await;
    for status in [502, 503, 504] {
        dev.admin("POST", "/v1/dev/reset-stats", None).await;
        dev.faults(json!({"fail_next": 2, "fail_status": status, "error_rate": 0.0})).await;
        let (out, _) = run_dev(&dev, &["--retries", "3", "--deadline", "20s"]);
        assert_started(&out);
        assert_eq!(dev.count("POST /v1/tokens").await, 3, "{status}: two failures, then served");

        dev.admin("POST", "/v1/dev/reset-stats", None).await;
        dev.faults(json!({"error_rate": 1.0, "error_status": status})).await;
        let (out, elapsed) = run_dev(&dev, &["--retries", "2", "--deadline", "20s"]);
        assert_refused(&out, elapsed, 75, Duration::from_secs(20) + SLACK, &[&status.to_string()]);
        assert_eq!(dev.count("POST /v1/tokens").await, 3, "{status}: first attempt plus two retries");
        dev.faults(json!({"error_rate": 0.0})).await;
    }
}

#[tokio::test]
async fn internal_server_error_is_temporary_and_not_retried() {
    let dev = faulty(json!({"error_rate": 1.0, "error_status": 500})).await;
    let (out, elapsed) = run_dev(&dev, &["--retries", "3", "--deadline", "20s"]);
    assert_refused(&out, elapsed, 75, Duration::from_secs(20) + SLACK, &["500"]);
    assert_eq!(dev.count("POST /v1/tokens").await, 1, "500 is not retried");

    // The same from a hand-written server whose error body is not JSON at all.
    let body = "<html><body>Internal Server Error</body></html>";
    let html = answering(
        format!(
            "HTTP/1.1 500 Internal Server Error\r\ncontent-type: text/html\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        )
        .into_bytes(),
    );
    let (out, elapsed) = run_url(&html.url, &["--retries", "3", "--deadline", "10s"]);
    assert_refused(&out, elapsed, 75, Duration::from_secs(10) + SLACK, &["500"]);
    assert_eq!(html.connections(), 1);
}

#[tokio::test]
async fn unauthorized_is_auth_and_not_retried() {
    let server = Misbehaving::start(|mut s| {
        if common::read_head(&mut s).is_some() {
            let body = r#"{"error":{"code":"UNAUTHORIZED","message":"invalid agent key"}}"#;
            let _ = s.write_all(&http_json("401 Unauthorized", body));
        }
    });
    let (out, elapsed) = run_url(&server.url, &["--retries", "3", "--deadline", "10s"]);
    assert_refused(&out, elapsed, 77, Duration::from_secs(10) + SLACK, &["agent key"]);
    assert_eq!(server.connections(), 1);
}

// ---------------------------------------------------------------------------------------------
// Connections: refused, reset, dropped, silent, stalled.

#[tokio::test]
async fn connection_refused_is_temporary() {
    let closed = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let (out, elapsed) = run_url(&format!("http://{closed}"), &["--retries", "2", "--deadline", "10s"]);
    assert_refused(&out, elapsed, 75, Duration::from_secs(10) + SLACK, &["connect"]);
}

#[tokio::test]
async fn connection_reset_is_retried_then_temporary() {
    let server = Misbehaving::start(|mut s| {
        let _ = common::read_head(&mut s);
        reset(s);
    });
    let (out, elapsed) = run_url(&server.url, &["--retries", "2", "--deadline", "10s"]);
    assert_refused(&out, elapsed, 75, Duration::from_secs(10) + SLACK, &[]);
    assert!(server.connections() >= 3, "reset connections are retried: {}", server.connections());
}

#[tokio::test]
async fn dropped_connections_are_retried_then_served() {
    let dev = faulty(json!({"drop_next": 2})).await;
    let (out, _) = run_dev(&dev, &["--retries", "3", "--deadline", "20s"]);
    assert_started(&out);
}

#[tokio::test]
async fn server_that_never_answers_times_out() {
    let server = Misbehaving::start(|mut s| {
        let _ = common::read_head(&mut s);
        linger(s, Duration::from_secs(60));
    });
    // Per-request timeout and retries end it...
    let (out, elapsed) = run_url(&server.url, &["--timeout", "500ms", "--retries", "1", "--deadline", "10s"]);
    assert_refused(&out, elapsed, 75, Duration::from_secs(10) + SLACK, &["timed out"]);
    assert_eq!(server.connections(), 2, "first attempt plus one retry");
    // ...and when they would take longer, --deadline does.
    let (out, elapsed) = run_url(&server.url, &["--timeout", "30s", "--retries", "3", "--deadline", "2s"]);
    assert_refused(&out, elapsed, 75, Duration::from_secs(2) + SLACK, &["deadline"]);
}

#[tokio::test]
async fn server_that_stalls_the_body_times_out() {
    let server = Misbehaving::start(|mut s| {
        if common::read_head(&mut s).is_some() {
            let _ = s.write_all(
                b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 500\r\n\r\n{\"token\": \"",
            );
            let _ = s.flush();
            linger(s, Duration::from_secs(60));
        }
    });
    let (out, elapsed) = run_url(&server.url, &["--timeout", "500ms", "--retries", "1", "--deadline", "10s"]);
    assert_refused(&out, elapsed, 75, Duration::from_secs(10) + SLACK, &[]);
    let (out, elapsed) = run_url(&server.url, &["--timeout", "30s", "--retries", "3", "--deadline", "2s"]);
    assert_refused(&out, elapsed, 75, Duration::from_secs(2) + SLACK, &["deadline"]);
}

#[tokio::test]
async fn slow_dev_server_is_bounded_by_the_deadline() {
    let dev = faulty(json!({"latency": "20s"})).await;
    let (out, elapsed) = run_dev(&dev, &["--deadline", "2s"]);
    assert_refused(&out, elapsed, 75, Duration::from_secs(2) + SLACK, &["deadline"]);
}

// ---------------------------------------------------------------------------------------------
// Bodies: truncated, malformed, incomplete, huge.

/// `response` with `header` added right after its status line.
fn with_header(response: Vec<u8>, header: &str) -> Vec<u8> {
    let end_of_status = response.windows(2).position(|w| w == b"\r\n").expect("a status line") + 2;
    [&response[..end_of_status], header.as_bytes(), b"\r\n", &response[end_of_status..]].concat()
}

/// A server answering every request with `response`, then closing.
fn answering(response: Vec<u8>) -> Misbehaving {
    Misbehaving::start(move |mut s| {
        if common::read_head(&mut s).is_some() {
            let _ = s.write_all(&response);
            let _ = s.flush();
        }
    })
}

#[tokio::test]
async fn truncated_json_is_an_invalid_response() {
    // A complete HTTP message whose JSON stops half way.
    let server = answering(http_json("200 OK", r#"{"token": "asst_abc", "token_id": "#));
    let (out, elapsed) = run_url(&server.url, &["--retries", "2", "--deadline", "10s"]);
    assert_refused(&out, elapsed, 75, Duration::from_secs(10) + SLACK, &["invalid"]);
    assert_eq!(server.connections(), 1, "a bad body is not retried");

    // A body cut short of its Content-Length by a closed connection: a network failure.
    let cut = answering(
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 400\r\nconnection: close\r\n\r\n{\"token\": \"as"
            .to_vec(),
    );
    let (out, elapsed) = run_url(&cut.url, &["--retries", "1", "--deadline", "10s"]);
    assert_refused(&out, elapsed, 75, Duration::from_secs(10) + SLACK, &[]);
}

#[tokio::test]
async fn malformed_json_is_an_invalid_response() {
    // JSON of the wrong shape: an invalid response, temporary.
    for body in ["null", "[]", "{\"token\": 12}"] {
        let server = answering(http_json("200 OK", body));
        let (out, elapsed) = run_url(&server.url, &["--retries", "2", "--deadline", "10s"]);
        assert_refused(&out, elapsed, 75, Duration::from_secs(10) + SLACK, &["invalid"]);
    }
    // Not JSON at all (HTML, garbage): the URL is not an Agent Secret Store, a configuration
    // error (78) since issue 14; before, it was a temporary failure (75).
    for body in ["<html>hello</html>", "\u{0}\u{1}garbage"] {
        let server = answering(http_json("200 OK", body));
        let (out, elapsed) = run_url(&server.url, &["--retries", "2", "--deadline", "10s"]);
        let err = assert_refused(
            &out,
            elapsed,
            78,
            Duration::from_secs(10) + SLACK,
            &["does not look like an Agent Secret Store"],
        );
        assert!(!err.contains("garbage") && !err.contains("hello"), "bodies are not echoed: {err}");
    }
}

#[tokio::test]
async fn ok_without_the_expected_fields_is_an_invalid_response() {
    // No token at all.
    let server = answering(http_json("200 OK", r#"{"token_id": "tok_1"}"#));
    let (out, elapsed) = run_url(&server.url, &["--deadline", "10s"]);
    assert_refused(&out, elapsed, 75, Duration::from_secs(10) + SLACK, &["invalid"]);

    // A good token answer, then the same body for the secret read: no "value".
    let body = r#"{"token":"asst_fake_token_for_faults","token_id":"tok_1","expires_at":"2099-01-01T00:00:00Z","scopes":["secrets:read:prod/app/KEY"]}"#;
    let server = answering(http_json("200 OK", body));
    let (out, elapsed) = run_url(&server.url, &["--deadline", "10s"]);
    let err = assert_refused(&out, elapsed, 75, Duration::from_secs(10) + SLACK, &[]);
    assert!(!err.contains("asst_fake_token_for_faults"), "the token is never printed: {err}");
    assert!(server.connections() >= 2, "token, then the read: {}", server.connections());
}

#[tokio::test]
async fn oversized_body_is_capped_with_a_clear_error() {
    // Declared up front: refused before reading.
    let huge = format!("{{\"token\":\"{}\"}}", "x".repeat(9 * 1024 * 1024));
    let declared = answering(http_json("200 OK", &huge));
    let (out, elapsed) = run_url(&declared.url, &["--deadline", "20s"]);
    assert_refused(&out, elapsed, 75, Duration::from_secs(20) + SLACK, &["larger than", "MiB"]);

    // Not declared (read until close): the reader stops at the cap.
    let streamed = Misbehaving::start(|mut s| {
        if common::read_head(&mut s).is_some() {
            let _ = s.write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nconnection: close\r\n\r\n{\"token\":\"");
            let chunk = vec![b'x'; 64 * 1024];
            // Up to 64 MiB; the client hangs up long before.
            for _ in 0..1024 {
                if s.write_all(&chunk).is_err() {
                    return;
                }
            }
        }
    });
    let (out, elapsed) = run_url(&streamed.url, &["--deadline", "20s"]);
    assert_refused(&out, elapsed, 75, Duration::from_secs(20) + SLACK, &["larger than", "MiB"]);
}

// ---------------------------------------------------------------------------------------------
// Redirects and plain http.

#[tokio::test]
async fn redirects_are_not_followed_and_credentials_not_sent_on() {
    // The target records every byte it is sent: it must see nothing.
    let seen = Arc::new(std::sync::Mutex::new(Vec::<u8>::new()));
    let sink = seen.clone();
    let target = Misbehaving::start(move |mut s| {
        let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
        let mut buf = [0u8; 4096];
        while let Ok(n) = s.read(&mut buf) {
            if n == 0 {
                break;
            }
            sink.lock().unwrap().extend_from_slice(&buf[..n]);
        }
    });
    for status in [
        "301 Moved Permanently",
        "302 Found",
        "303 See Other",
        "307 Temporary Redirect",
        "308 Permanent Redirect",
    ] {
        let location = format!("{}/v1/tokens", target.url);
        let server = answering(
            format!(
                "HTTP/1.1 {status}\r\nlocation: {location}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
            )
            .into_bytes(),
        );
        let (out, elapsed) = run_url(&server.url, &["--retries", "3", "--deadline", "10s"]);
        assert_refused(&out, elapsed, 75, Duration::from_secs(10) + SLACK, &["redirect", "not followed"]);
        assert_eq!(server.connections(), 1, "{status}: not retried");
    }
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(target.connections(), 0, "nothing ever connected to the redirect target");
    assert!(!String::from_utf8_lossy(&seen.lock().unwrap()).contains(KEY));
}

#[tokio::test]
async fn plain_http_to_a_remote_host_is_refused_without_traffic() {
    // Every proxy variable points at a listener of ours: if vault-run sent anything anywhere
    // (even through a proxy, even a DNS-free CONNECT), it would arrive here.
    let trap = Misbehaving::start(|mut s| {
        let _ = common::read_head(&mut s);
    });
    for url in
        ["http://example.invalid", "http://10.255.255.1:8080", "http://[2001:db8::1]/", "ftp://127.0.0.1/"]
    {
        let proxies =
            ["http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "ALL_PROXY"].map(|v| (v, &*trap.url));
        let (out, elapsed) = run_url_with(url, &proxies, &[]);
        let err = assert_refused(&out, elapsed, 78, Duration::from_secs(5), &["https://"]);
        assert!(err.contains("base URL"), "{err}");
    }
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(trap.connections(), 0, "nothing left the process");
}

#[tokio::test]
async fn plain_http_to_loopback_never_goes_through_a_proxy() {
    // The agent key travels in clear over http to loopback; a proxy variable must not send it
    // off the machine.
    let dev = seeded().await;
    let trap = Misbehaving::start(|mut s| {
        let _ = common::read_head(&mut s);
    });
    let dir = tempfile::tempdir().unwrap();
    let out = output_within(
        vault_run(&dev, dir.path())
            .env("http_proxy", &trap.url)
            .env("HTTP_PROXY", &trap.url)
            .env("ALL_PROXY", &trap.url)
            .env_remove("no_proxy")
            .env_remove("NO_PROXY")
            .args(common::words("--retries 0 --deadline 10s"))
            .args(child_args()),
        HANG,
    );
    assert_started(&out);
    assert_eq!(trap.connections(), 0, "the proxy saw the agent key");
}

#[tokio::test]
async fn base_url_with_credentials_is_refused() {
    let dev = seeded().await;
    let url = dev.base_url.replace("http://", "http://user:pass@");
    let (out, elapsed) = run_url(&url, &["--deadline", "10s"]);
    let err = assert_refused(&out, elapsed, 78, Duration::from_secs(5), &["credentials"]);
    assert!(!err.contains("pass@"), "{err}");
    assert_eq!(dev.count("POST /v1/tokens").await, 0);
}
