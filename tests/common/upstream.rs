//! An HTTPS "listed host" for the agent-safe tests: its own CA, a certificate for [`HOST`] and
//! [`OTHER`], every request recorded ([`Seen`]). What it answers depends on the path:
//!
//! - `/hdr`: the request's `Authorization` and query handed back in response headers, as
//!   received and in other encodings (`x-echo-query`, `x-echo-b64`: base64 of the bearer token);
//! - `/redir`: `301` to `/redir/?<query as received>` (a trailing-slash redirect);
//! - `/trailer`: a chunked body with the trailer `x-t: <authorization>`;
//! - `/echo`: the request (authorization, query, body) in a JSON body;
//! - `/sse`: five `data:` events 200 ms apart, the third holding the bearer token split across
//!   two writes 150 ms apart;
//! - anything else: `upstream ok <path>` with `x-echo: <authorization>`.
//!
//! A WebSocket-like upgrade (`upgrade` header) gets `101`, then `auth:<authorization>` and an echo.

use std::convert::Infallible;
use std::pin::Pin;
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Frame;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};

use super::{output_within, vault_run, DevServer, T};

type Body = http_body_util::combinators::BoxBody<Bytes, Infallible>;

fn full(data: impl Into<Bytes>) -> Body {
    http_body_util::Full::new(data.into()).boxed()
}

/// A body whose frames come from a channel, as the test's task writes them.
struct Channel(tokio::sync::mpsc::Receiver<Frame<Bytes>>);

impl hyper::body::Body for Channel {
    type Data = Bytes;
    type Error = Infallible;
    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0.poll_recv(cx).map(|f| f.map(Ok))
    }
}

/// A streamed body: `frames` written in order, each after its delay.
fn streamed(frames: Vec<(Duration, Frame<Bytes>)>) -> Body {
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tokio::spawn(async move {
        for (wait, frame) in frames {
            tokio::time::sleep(wait).await;
            if tx.send(frame).await.is_err() {
                return;
            }
        }
    });
    Channel(rx).boxed()
}

fn respond(parts: &http::request::Parts, authorization: &str, body: &[u8]) -> hyper::Response<Body> {
    let token = authorization.strip_prefix("Bearer ").unwrap_or(authorization);
    let query = parts.uri.query().unwrap_or_default();
    let ms = Duration::from_millis;
    let builder = hyper::Response::builder();
    let resp = match parts.uri.path() {
        "/hdr" => builder
            .header("x-echo", authorization)
            .header("x-echo-query", query)
            .header("x-echo-b64", base64::engine::general_purpose::STANDARD.encode(token))
            .body(full("hdr\n")),
        "/redir" => builder.status(301).header("location", format!("/redir/?{query}")).body(full("")),
        "/trailer" => {
            let mut trailers = http::HeaderMap::new();
            trailers.insert("x-t", http::HeaderValue::from_str(authorization).unwrap());
            builder.header("trailer", "x-t").body(streamed(vec![
                (ms(0), Frame::data(Bytes::from_static(b"trailer body\n"))),
                (ms(0), Frame::trailers(trailers)),
            ]))
        }
        "/echo" => {
            let echoed = serde_json::json!({
                "authorization": authorization,
                "query": query,
                "body": String::from_utf8_lossy(body),
            });
            builder.header("content-type", "application/json").body(full(echoed.to_string()))
        }
        "/sse" => {
            let (a, b) = token.split_at(token.len() / 2);
            let event = |n: u32| (ms(200), Frame::data(Bytes::from(format!("data: event {n}\n\n"))));
            builder.header("content-type", "text/event-stream").body(streamed(vec![
                event(1),
                event(2),
                (ms(200), Frame::data(Bytes::from(format!("data: token {a}")))),
                (ms(150), Frame::data(Bytes::from(format!("{b} end\n\n")))),
                event(4),
                event(5),
            ]))
        }
        path => builder.header("x-echo", authorization).body(full(format!("upstream ok {path}\n"))),
    };
    resp.unwrap()
}

pub const HOST: &str = "api.example.test";
pub const OTHER: &str = "other.example.test";

/// What the upstream received.
#[derive(Clone, Debug)]
pub struct Seen {
    pub host: String,
    pub version: String,
    pub path: String,
    pub query: String,
    pub authorization: String,
    pub body: String,
}

/// An HTTPS server on 127.0.0.1 for `HOST` and `OTHER`, with a CA of its own; it records every
/// request and answers `x-echo: <authorization>` so that the response path is tested too.
pub struct Upstream {
    pub port: u16,
    pub ca_file: std::path::PathBuf,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Upstream {
    pub fn start(dir: &std::path::Path, alpn: &[&[u8]]) -> Upstream {
        let ca = super::test_ca::TestCa::new("test upstream CA", &[HOST, OTHER]);
        let ca_file = ca.write_ca(&dir.join("upstream-ca.pem"));
        let mut cfg = ca.server_config();
        cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = seen.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                loop {
                    let Ok((tcp, _)) = listener.accept().await else { continue };
                    let acceptor = acceptor.clone();
                    let record = record.clone();
                    tokio::spawn(async move {
                        let Ok(tls) = acceptor.accept(tcp).await else { return };
                        let svc = service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
                            let record = record.clone();
                            async move {
                                let upgrade = req
                                    .headers()
                                    .contains_key("upgrade")
                                    .then(|| hyper::upgrade::on(&mut req));
                                let (parts, body) = req.into_parts();
                                let body = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
                                let authorization = parts
                                    .headers
                                    .get("authorization")
                                    .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                                    .unwrap_or_default();
                                let host = parts
                                    .uri
                                    .host()
                                    .map(str::to_owned)
                                    .or_else(|| {
                                        parts
                                            .headers
                                            .get("host")
                                            .and_then(|h| h.to_str().ok())
                                            .map(str::to_owned)
                                    })
                                    .unwrap_or_default();
                                let query = parts.uri.query().unwrap_or_default();
                                let query = percent_encoding::percent_decode_str(query)
                                    .decode_utf8_lossy()
                                    .into_owned();
                                record.lock().unwrap().push(Seen {
                                    host,
                                    version: format!("{:?}", parts.version),
                                    path: parts.uri.path().to_owned(),
                                    query,
                                    authorization: authorization.clone(),
                                    body: String::from_utf8_lossy(&body).into_owned(),
                                });
                                if let Some(upgrade) = upgrade {
                                    // A WebSocket-like echo: whatever comes after the switch goes back prefixed.
                                    let hello = format!("auth:{authorization}\n");
                                    tokio::spawn(async move {
                                        use tokio::io::{AsyncReadExt, AsyncWriteExt};
                                        let Ok(up) = upgrade.await else { return };
                                        let mut io = TokioIo::new(up);
                                        // After the switch the proxy sees only frames: this one
                                        // hands the child the value it was given.
                                        let hello = hello;
                                        if io.write_all(hello.as_bytes()).await.is_err() {
                                            return;
                                        }
                                        let mut buf = [0u8; 1024];
                                        while let Ok(n @ 1..) = io.read(&mut buf).await {
                                            let mut out = b"echo:".to_vec();
                                            out.extend_from_slice(&buf[..n]);
                                            if io.write_all(&out).await.is_err() {
                                                break;
                                            }
                                        }
                                    });
                                    let resp = hyper::Response::builder()
                                        .status(101)
                                        .header("connection", "upgrade")
                                        .header("upgrade", "websocket")
                                        .header("x-echo", authorization.as_str())
                                        .body(full(""))
                                        .unwrap();
                                    return Ok::<_, Infallible>(resp);
                                }
                                Ok::<_, Infallible>(respond(&parts, &authorization, &body))
                            }
                        });
                        let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                            .serve_connection_with_upgrades(TokioIo::new(tls), svc)
                            .await;
                    });
                }
            });
        });
        Upstream { port, ca_file, seen }
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    pub fn at(&self, path: &str) -> Vec<Seen> {
        self.seen().into_iter().filter(|s| s.path == path).collect()
    }

    /// A vault-run command with the flags that make its proxy reach this server under its
    /// names; the child gets the test CA's path (for tunnelled, untouched hosts) in UPSTREAM_CA.
    pub fn vault_run(&self, dev: &DevServer, dir: &std::path::Path) -> Command {
        let mut cmd = vault_run(dev, dir);
        cmd.env("UPSTREAM_CA", &self.ca_file).args(self.flags());
        cmd
    }

    /// Runs `vault-run <line> <last>` (see [`super::words`]) through this upstream's proxy
    /// flags, bounded by [`T`]: its output and its stdout.
    pub fn run(&self, dev: &DevServer, dir: &std::path::Path, line: &str, last: &str) -> (Output, String) {
        let out = output_within(self.vault_run(dev, dir).args(super::words(line)).arg(last), T);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        (out, stdout)
    }

    pub fn flags(&self) -> Vec<String> {
        vec![
            "--upstream-ca".into(),
            self.ca_file.display().to_string(),
            "--resolve".into(),
            format!("{HOST}:{}:127.0.0.1", self.port),
            "--resolve".into(),
            format!("{OTHER}:{}:127.0.0.1", self.port),
        ]
    }
}

/// Kills vault-run (and so its child) if the test fails half-way.
pub struct KillOnDrop(pub std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn require_tools() {
    for tool in ["curl", "python3"] {
        let ok =
            Command::new("sh").args(["-c", &format!("command -v {tool}")]).output().unwrap().status.success();
        assert!(ok, "{tool} is needed by the agent-safe tests (install it)");
    }
}

/// `KEY=value` from `env` output lines.
pub fn var<'a>(out: &'a str, name: &str) -> &'a str {
    let prefix = format!("{name}=");
    out.lines()
        .find_map(|l| l.strip_prefix(prefix.as_str()))
        .unwrap_or_else(|| panic!("{name} not in:\n{out}"))
}

/// A plain HTTP server on 127.0.0.1 that records each request head and answers 200.
pub fn plain_recorder() -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let heads = Arc::new(Mutex::new(Vec::new()));
    let record = heads.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            // A peer that hangs up before the end of its head is recorded as an empty head.
            let head = super::read_head(&mut stream).unwrap_or_default();
            record.lock().unwrap().push(String::from_utf8_lossy(&head).into_owned());
            let _ = std::io::Write::write_all(
                &mut stream,
                b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\nconnection: close\r\n\r\nok\n",
            );
        }
    });
    (port, heads)
}
