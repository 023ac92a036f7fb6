//! Agent-safe proxy cost: per-request latency added, time to the first byte of a streamed answer
//! and throughput on a large response, a client straight to a local HTTPS upstream vs. the same
//! client through vault-run's proxy. Run by `bench/proxy`.
//!
//! `proxy_bench VAULT_RUN_BINARY [REQUESTS] [MIB] [JUDGE]` prints a Markdown table on stdout and,
//! unless JUDGE is 0 (a smoke run under load proves nothing), exits 1 when the download through
//! the proxy is under [`THROUGHPUT_TARGET`] of direct.

use std::convert::Infallible;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Frame;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};

const HOST: &str = "api.bench.test";
const SECRET: &str = "sk-bench-0123456789abcdef";

/// The download rate through the proxy, as a share of direct, that the bench requires.
const THROUGHPUT_TARGET: f64 = 0.8;

/// Chunks of a streamed answer (`/stream`), and the pause between them: a model's tokens.
const STREAM_CHUNKS: usize = 10;
const STREAM_PAUSE_MS: u64 = 5;

/// A Python client (http.client, so it is the same code both ways): `REQUESTS` streamed answers
/// on one kept-alive connection, each line the ms from sending the request to its first body
/// byte. Through the proxy when `HTTPS_PROXY` is set (the child of vault-run), else straight.
const TTFB_CLIENT: &str = r#"
import base64, http.client, os, ssl, sys, time, urllib.parse
host, port, n, ca = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
proxy = os.environ.get("HTTPS_PROXY")
if proxy:
    p = urllib.parse.urlsplit(proxy)
    c = http.client.HTTPSConnection(p.hostname, p.port, context=ssl.create_default_context())
    auth = base64.b64encode(f"{p.username}:{p.password}".encode()).decode()
    c.set_tunnel(host, port, headers={"Proxy-Authorization": "Basic " + auth})
else:
    ctx = ssl.create_default_context(cafile=ca)
    ctx.check_hostname = False  # 127.0.0.1 for the host name; the chain is still verified
    c = http.client.HTTPSConnection("127.0.0.1", port, context=ctx)
for _ in range(n):
    t0 = time.perf_counter()
    c.request("GET", "/stream", headers={"Authorization": "Bearer " + os.environ["KEY"]})
    r = c.getresponse()
    r.read(1)
    t1 = time.perf_counter()
    r.read()
    print((t1 - t0) * 1000)
"#;

type Body = http_body_util::combinators::BoxBody<Bytes, Infallible>;

fn upstream(dir: &std::path::Path) -> (u16, std::path::PathBuf) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    // Not rcgen's default name, which the leaf also gets: curl would take the leaf for self-signed.
    ca_params.distinguished_name.push(rcgen::DnType::CommonName, "proxy bench CA");
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let leaf =
        rcgen::CertificateParams::new(vec![HOST.to_owned()]).unwrap().signed_by(&leaf_key, &issuer).unwrap();
    let ca_file = dir.join("bench-ca.pem");
    std::fs::write(&ca_file, ca_cert.pem()).unwrap();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into());
    let mut cfg =
        rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![leaf.der().clone()], key)
            .unwrap();
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            loop {
                let Ok((tcp, _)) = listener.accept().await else { continue };
                let _ = tcp.set_nodelay(true);
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else { return };
                    let svc = service_fn(|req: hyper::Request<hyper::body::Incoming>| async move {
                        let mib: usize = req
                            .uri()
                            .query()
                            .and_then(|q| q.strip_prefix("mib="))
                            .and_then(|n| n.parse().ok())
                            .unwrap_or(0);
                        let body: Body = if req.uri().path() == "/stream" {
                            let frames = futures_util::stream::unfold(0, |i| async move {
                                if i == STREAM_CHUNKS {
                                    return None;
                                }
                                if i > 0 {
                                    tokio::time::sleep(std::time::Duration::from_millis(STREAM_PAUSE_MS))
                                        .await;
                                }
                                let chunk = Bytes::from(format!("data: token {i}\n\n"));
                                Some((Ok::<_, Infallible>(Frame::data(chunk)), i + 1))
                            });
                            StreamBody::new(frames).boxed()
                        } else if mib == 0 {
                            Full::new(Bytes::from_static(b"ok\n")).boxed()
                        } else {
                            let chunk = Bytes::from(vec![b'x'; 64 * 1024]);
                            let frames = futures_util::stream::iter(
                                (0..mib * 16).map(move |_| Ok::<_, Infallible>(Frame::data(chunk.clone()))),
                            );
                            StreamBody::new(frames).boxed()
                        };
                        Ok::<_, Infallible>(hyper::Response::new(body))
                    });
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(tls), svc)
                        .await;
                });
            }
        });
    });
    (port, ca_file)
}

fn tail(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    text.lines().rev().take(5).collect::<Vec<_>>().join("\n")
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let bin = std::fs::canonicalize(args.get(1).map_or("target/release/vault-run", String::as_str))
        .expect("the vault-run binary (first argument)");
    let requests: usize = args.get(2).and_then(|n| n.parse().ok()).unwrap_or(200);
    let mib: usize = args.get(3).and_then(|n| n.parse().ok()).unwrap_or(256);
    let judge = args.get(4).map_or(true, |j| j != "0");
    let dir = tempfile::tempdir().unwrap();
    let (port, ca_file) = upstream(dir.path());

    let mut dev = Command::new(&bin)
        .args(["dev", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start vault-run dev");
    let mut lines = BufReader::new(dev.stdout.take().unwrap()).lines();
    let mut get = |p: &str| lines.next().unwrap().unwrap().strip_prefix(p).unwrap().to_owned();
    let (base, agent, admin) = (get("ASS_BASE_URL="), get("ASS_AGENT_KEY="), get("ASS_ADMIN_KEY="));
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let r = reqwest::Client::new()
            .put(format!("{base}/v1/secrets/bench/proxy/KEY"))
            .bearer_auth(&admin)
            .json(&serde_json::json!({"value": SECRET, "access_tier": "standard"}))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "seeding the dev server failed: {}", r.status());
    });
    std::fs::write(
        dir.path().join("vault-run.toml"),
        format!("[env]\nKEY = {{ path = \"bench/proxy/KEY\", hosts = [\"{HOST}:{port}\"] }}\n"),
    )
    .unwrap();

    let url = format!("https://{HOST}:{port}/small");
    let urls = vec![url.as_str(); requests].join(" ");
    let resolve = format!("{HOST}:{port}:127.0.0.1");
    let latency_script = format!(
        "curl -sS --fail -o /dev/null -w '%{{time_total}}\\n' -H \"Authorization: Bearer $KEY\" {urls}"
    );
    let big_script = format!(
        "curl -sS --fail -o /dev/null -w '%{{speed_download}}\\n' \"https://{HOST}:{port}/big?mib={mib}\""
    );

    let ttfb_script = format!(
        "python3 -c '{}' {HOST} {port} {requests} {}",
        TTFB_CLIENT.replace('\'', "'\\''"),
        ca_file.display()
    );

    let direct = |script: &str| -> String {
        let o = Command::new("sh")
            .args([
                "-c",
                &format!("{} --noproxy '*' --cacert {} --resolve {resolve}", script, ca_file.display()),
            ])
            .env("KEY", SECRET)
            .output()
            .unwrap();
        assert!(o.status.success(), "direct curl failed: {}", tail(&o.stderr));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let direct_plain = |script: &str| -> String {
        let o = Command::new("sh").args(["-c", script]).env("KEY", SECRET).output().unwrap();
        assert!(o.status.success(), "direct client failed: {}", tail(&o.stderr));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let proxied = |script: &str| -> String {
        let o = Command::new(&bin)
            .current_dir(dir.path())
            .env("ASS_BASE_URL", &base)
            .env("ASS_AGENT_KEY", &agent)
            .args([
                "-q",
                "--upstream-ca",
                &ca_file.display().to_string(),
                "--resolve",
                &resolve,
                "--",
                "sh",
                "-c",
                script,
            ])
            .output()
            .unwrap();
        assert!(o.status.success(), "proxied curl failed: {}", tail(&o.stderr));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    // The Python client prints ms already.
    let times_ms = |out: String| -> (f64, f64) {
        let mut v: Vec<f64> = out.lines().filter_map(|l| l.trim().parse().ok()).collect();
        let first = v.remove(0);
        (first, median(&mut v))
    };
    let times = |out: String| -> (f64, f64) {
        let mut v: Vec<f64> = out.lines().filter_map(|l| l.trim().parse().ok()).collect();
        let first = v.remove(0);
        (first * 1000.0, median(&mut v) * 1000.0)
    };
    let (d_first, d_med) = times(direct(&latency_script));
    let (p_first, p_med) = times(proxied(&latency_script));
    let speed = |out: String| out.trim().parse::<f64>().unwrap() / (1024.0 * 1024.0);
    let (d_ttfb_first, d_ttfb) = times_ms(direct_plain(&ttfb_script));
    let (p_ttfb_first, p_ttfb) = times_ms(proxied(&ttfb_script));
    let d_speed = speed(direct(&big_script));
    let p_speed = speed(proxied(&big_script));
    let _ = dev.kill();
    let _ = dev.wait();

    println!("| agent-safe proxy | direct | through vault-run's proxy | added |");
    println!("|---|---|---|---|");
    println!(
        "| first request (TCP + TLS handshakes), ms | {d_first:.2} | {p_first:.2} | {:.2} |",
        p_first - d_first
    );
    println!(
        "| request on a kept-alive connection, median of {}, ms | {d_med:.3} | {p_med:.3} | {:.3} |",
        requests - 1,
        p_med - d_med
    );
    println!(
        "| first byte of a streamed answer, first request, ms | {d_ttfb_first:.2} | {p_ttfb_first:.2} | {:.2}× direct |",
        p_ttfb_first / d_ttfb_first
    );
    println!(
        "| first byte of a streamed answer, kept-alive, median of {}, ms | {d_ttfb:.3} | {p_ttfb:.3} | {:.2}× direct |",
        requests - 1,
        p_ttfb / d_ttfb
    );
    let ratio = p_speed / d_speed;
    let verdict = if ratio >= THROUGHPUT_TARGET { "met" } else { "MISSED" };
    println!(
        "| {mib} MiB response, MiB/s (target ≥ {THROUGHPUT_TARGET}× direct: {verdict}) | {d_speed:.0} | {p_speed:.0} | {ratio:.2}× direct |"
    );
    if judge && ratio < THROUGHPUT_TARGET {
        std::process::exit(1);
    }
}
