//! Agent-safe mode against an attacker's review (review round 3: H1, M1, M2, M3, M5, L1, L4, L5,
//! L6), through the real binary: the child tries to get the value back, and must not.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Stdio;
use std::time::{Duration, Instant};

use base64::Engine;
use common::upstream::{plain_recorder, require_tools, KillOnDrop, Upstream, HOST};
use common::{output_within, stderr_of, vault_run, DevServer, T};

/// Characters that need care in a header, a query string and JSON: every encoding differs.
const SECRET: &str = "sk-live-Ab/3+x?y&z=q~0042";

async fn with_mapping(mapping: &str) -> (DevServer, tempfile::TempDir) {
    require_tools();
    let dev = DevServer::with(&[("production/app/API_KEY", SECRET)]).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("vault-run.toml"), mapping).unwrap();
    (dev, dir)
}

/// An upstream, and the mapping `API_KEY = { path, hosts = [HOST:port], <extra> }` for it.
async fn listed_upstream(extra: &str) -> (DevServer, tempfile::TempDir, Upstream) {
    let (dev, dir) = with_mapping("").await;
    let up = Upstream::start(dir.path(), &[b"h2", b"http/1.1"]);
    let mapping = format!(
        "[env]\nAPI_KEY = {{ path = \"production/app/API_KEY\", hosts = [\"{HOST}:{}\"]{extra} }}\n",
        up.port
    );
    std::fs::write(dir.path().join("vault-run.toml"), mapping).unwrap();
    (dev, dir, up)
}

fn percent(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// The forms of [`SECRET`] that must not reach the child.
fn forms() -> Vec<String> {
    let b64 = base64::engine::general_purpose::STANDARD.encode(SECRET);
    vec![SECRET.to_owned(), percent(SECRET), percent(SECRET).to_ascii_lowercase(), b64]
}

fn assert_no_value(what: &str, text: &str) {
    for f in forms() {
        assert!(!text.contains(&f), "{what} holds the value as {f:?}:\n{text}");
    }
}

/// H1: with `localhost` listed, a plain-http request to another loopback port (the child's own
/// listener) gets the placeholder; `localhost:PORT` names the one port that gets the value. A
/// listed name without a port is not intercepted on another port either. L6: no false warning
/// that NO_PROXY covers the loopback host.
#[tokio::test]
async fn a_listed_host_is_host_and_port() {
    let (port, heads) = plain_recorder();
    let (dev, dir) = with_mapping(&format!(
        "[env]\nLOCAL_KEY = {{ path = \"production/app/API_KEY\", hosts = [\"localhost\", \"{HOST}\"] }}\n"
    ))
    .await;
    let up = Upstream::start(dir.path(), &[b"http/1.1"]);
    let script = format!(
        r#"curl -sS --fail -H "Authorization: Bearer $LOCAL_KEY" "http://localhost:{port}/steal"
curl -sS --fail --cacert "$UPSTREAM_CA" -H "Authorization: Bearer $LOCAL_KEY" "https://{HOST}:{up_port}/otherport"
python3 - <<'PY'
import base64, os, socket, urllib.parse
p = urllib.parse.urlsplit(os.environ["HTTPS_PROXY"])
auth = base64.b64encode(f"{{p.username}}:{{p.password}}".encode()).decode()
for target in ["{HOST}:65536", "{HOST}:0", "{HOST}:x"]:
    s = socket.create_connection((p.hostname, p.port))
    s.sendall(f"CONNECT {{target}} HTTP/1.1\r\nHost: {{target}}\r\nProxy-Authorization: Basic {{auth}}\r\n\r\n".encode())
    print("connect", target, s.recv(100).split(b"\r\n")[0].decode())
PY"#,
        up_port = up.port
    );
    let (out, stdout) = up.run(&dev, dir.path(), "-- sh -c", &script);
    let stderr = stderr_of(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let seen = heads.lock().unwrap().clone();
    let steal = seen.iter().find(|h| h.starts_with("GET /steal ")).expect("the request reached the listener");
    assert!(!steal.contains(SECRET), "another loopback port got the value: {steal}");
    assert!(steal.contains("Bearer vault-run-placeholder-"), "{steal}");
    // HOST means HOST:443: on another port it is tunnelled untouched (the test CA verifies).
    let other = up.at("/otherport");
    assert!(other[0].authorization.starts_with("Bearer vault-run-placeholder-"), "{other:?}");
    for target in ["65536", "0", "x"] {
        assert!(stdout.contains(&format!("connect {HOST}:{target} HTTP/1.1 400")), "{stdout}");
    }
    assert!(!stderr.contains("NO_PROXY covers"), "a false NO_PROXY warning: {stderr}");

    // With the port, that port gets it; the user's own NO_PROXY covering it is still warned about.
    std::fs::write(
        dir.path().join("vault-run.toml"),
        format!(
            "[env]\nLOCAL_KEY = {{ path = \"production/app/API_KEY\", hosts = [\"localhost:{port}\"] }}\n"
        ),
    )
    .unwrap();
    let script =
        format!(r#"curl -sS --fail -H "Authorization: Bearer $LOCAL_KEY" "http://localhost:{port}/mine""#);
    let out = output_within(vault_run(&dev, dir.path()).args(["--", "sh", "-c", &script]), T);
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(!stderr_of(&out).contains("NO_PROXY covers"), "{}", stderr_of(&out));
    let heads = heads.lock().unwrap().clone();
    let mine = heads.iter().find(|h| h.starts_with("GET /mine ")).expect("the listed port got a request");
    assert!(mine.contains(&format!("Bearer {SECRET}")), "{mine}");
    let out = output_within(vault_run(&dev, dir.path()).env("NO_PROXY", "localhost").args(["--", "true"]), T);
    assert!(stderr_of(&out).contains("NO_PROXY covers a listed host"), "{}", stderr_of(&out));
}

/// M1, M2: response headers, a redirect's Location and trailers hand back only placeholders,
/// whatever the encoding the value came back in; and a body echoing the request too.
#[tokio::test]
async fn responses_from_a_listed_host_hold_only_placeholders() {
    let (dev, dir, up) = listed_upstream(r#", inject = ["header", "query"]"#).await;
    let port = up.port;
    let script = format!(
        r#"A="Authorization: Bearer $API_KEY"
echo "PLACEHOLDER=$API_KEY"
curl -sS --http2 -i -H "$A" "https://{HOST}:{port}/hdr?key=$API_KEY"
curl -sS --http2 -i -H "$A" "https://{HOST}:{port}/redir?key=$API_KEY"
curl -sS --http2 -i -H "TE: trailers" -H "$A" "https://{HOST}:{port}/trailer"
curl -sS --http1.1 -i -H "$A" "https://{HOST}:{port}/echo?key=$API_KEY""#
    );
    let (out, stdout) = up.run(&dev, dir.path(), "-- sh -c", &script);
    assert!(out.status.success(), "{stdout}\n{}", stderr_of(&out));
    assert_no_value("the child's output", &stdout);
    // The upstream did get the value, and handed it back: each form became the placeholder.
    assert_eq!(up.at("/hdr")[0].authorization, format!("Bearer {SECRET}"));
    assert_eq!(up.at("/redir")[0].query, format!("key={SECRET}"));
    let ph = stdout.lines().find_map(|l| l.strip_prefix("PLACEHOLDER=")).unwrap();
    let lower = stdout.to_ascii_lowercase();
    for want in [
        format!("x-echo-query: key={ph}"),
        format!("x-echo-b64: {ph}"),
        format!("location: /redir/?key={ph}"),
        format!("x-t: bearer {ph}"),
    ] {
        assert!(lower.contains(&want.to_ascii_lowercase()), "{want:?} not in:\n{stdout}");
    }
    assert!(stdout.contains(&format!("\"authorization\":\"Bearer {ph}\"")), "{stdout}");
}

/// A streamed answer (SSE) arrives event by event, and a value split across two writes is
/// still replaced whole.
#[tokio::test]
async fn a_streamed_body_is_scrubbed_across_chunks_and_not_buffered() {
    let (dev, dir, up) = listed_upstream("").await;
    let script = format!(
        r#"import os, time, urllib.request
r = urllib.request.Request("https://{HOST}:{}/sse", headers={{"Authorization": "Bearer " + os.environ["API_KEY"]}})
print("PLACEHOLDER=" + os.environ["API_KEY"])
start = time.monotonic()
with urllib.request.urlopen(r) as resp:
    for line in resp:
        if line.strip():
            print(int((time.monotonic() - start) * 1000), line.decode().strip(), flush=True)"#,
        up.port
    );
    let (out, stdout) = up.run(&dev, dir.path(), "-- python3 -c", &script);
    assert!(out.status.success(), "{stdout}\n{}", stderr_of(&out));
    assert_no_value("the streamed body", &stdout);
    let (a, b) = SECRET.split_at(SECRET.len() / 2);
    assert!(!stdout.contains(a) && !stdout.contains(b), "half the value got through:\n{stdout}");
    let ph = stdout.lines().find_map(|l| l.strip_prefix("PLACEHOLDER=")).unwrap();
    let events: Vec<(u64, &str)> = stdout
        .lines()
        .filter_map(|l| l.split_once(' '))
        .filter_map(|(ms, rest)| Some((ms.parse().ok()?, rest)))
        .collect();
    assert_eq!(events.len(), 5, "{stdout}");
    assert_eq!(events[2].1, format!("data: token {ph} end"), "{stdout}");
    // The upstream spaces them 200 ms apart: buffered, they would arrive together.
    assert!(events[4].0 - events[0].0 >= 600, "the events arrived together:\n{stdout}");
}

/// M3: the value goes only where `inject` says; the default is request headers.
#[tokio::test]
async fn the_value_goes_only_where_the_entry_says() {
    let send = |port: u16, path: &str| {
        format!(
            r#"curl -sS --fail -o /dev/null -H "Authorization: Bearer $API_KEY" --data "k=$API_KEY" "https://{HOST}:{port}/{path}?k=$API_KEY""#
        )
    };
    for (extra, path, header, query, body) in [
        ("", "default", true, false, false),
        (r#", inject = ["query", "body"]"#, "qb", false, true, true),
        (r#", body = true"#, "legacy", true, false, true),
    ] {
        let (dev, dir, up) = listed_upstream(extra).await;
        let (out, stdout) = up.run(&dev, dir.path(), "-- sh -c", &send(up.port, path));
        assert!(out.status.success(), "{extra}: {stdout}\n{}", stderr_of(&out));
        let seen = &up.at(&format!("/{path}"))[0];
        let real = |got: &str, wanted: bool, what: &str| {
            assert_eq!(got.contains(SECRET), wanted, "{extra}: {what} = {got:?}");
            assert_eq!(got.contains("vault-run-placeholder-"), !wanted, "{extra}: {what} = {got:?}");
        };
        real(&seen.authorization, header, "header");
        real(&seen.query, query, "query");
        real(&percent_encoding::percent_decode_str(&seen.body).decode_utf8_lossy(), body, "body");
    }
}

#[tokio::test]
async fn a_bad_inject_is_a_config_error() {
    let dev = DevServer::start();
    let dir = tempfile::tempdir().unwrap();
    for (entry, expect) in [
        (r#"inject = ["cookie"]"#, "inject in entry K names \"cookie\""),
        (r#"inject = []"#, "inject in entry K is empty"),
        (r#"inject = "header""#, "inject in entry K must be a list"),
        (r#"inject = ["header"], body = true"#, "remove body and list \"body\" in inject"),
    ] {
        let text = format!("[env]\nK = {{ path = \"a/b\", hosts = [\"h.test\"], {entry} }}\n");
        std::fs::write(dir.path().join("vault-run.toml"), text).unwrap();
        let out = output_within(vault_run(&dev, dir.path()).args(["--", "true"]), T);
        let stderr = stderr_of(&out);
        assert_eq!(out.status.code(), Some(78), "{entry}: {stderr}");
        assert!(stderr.contains(expect) && stderr.contains("vault-run.toml:2:"), "{entry}: {stderr}");
    }
    std::fs::write(
        dir.path().join("vault-run.toml"),
        "[env]\nK = { path = \"a/b\", inject = [\"query\"] }\n",
    )
    .unwrap();
    let out = output_within(vault_run(&dev, dir.path()).args(["--", "true"]), T);
    assert_eq!(out.status.code(), Some(78), "{}", stderr_of(&out));
    assert!(stderr_of(&out).contains("need hosts"), "{}", stderr_of(&out));
}

/// M5: requests without the password are logged once per interval, not once each, and each
/// such connection is closed after its 407.
#[tokio::test]
async fn requests_without_the_password_are_logged_once_per_interval() {
    let (dev, dir, up) = listed_upstream("").await;
    let script = r#"import os, socket, urllib.parse
p = urllib.parse.urlsplit(os.environ["HTTPS_PROXY"])
codes = set()
for i in range(300):
    s = socket.create_connection((p.hostname, p.port))
    s.sendall(b"GET http://127.0.0.1:9/ HTTP/1.1\r\nHost: 127.0.0.1:9\r\n\r\n")
    data = b""
    while True:
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    codes.add(data.split(b" ")[1].decode())
print("codes", sorted(codes))"#;
    let (out, stdout) = up.run(&dev, dir.path(), "-- python3 -c", script);
    let stderr = stderr_of(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    // Reading to EOF above proves the proxy closed each connection after its answer.
    assert!(stdout.contains("codes ['407']"), "{stdout}");
    let lines = stderr.lines().filter(|l| l.contains("without the proxy password")).count();
    assert_eq!(lines, 1, "{stderr}");
}

/// M5: another local process holding more idle connections than vault-run has descriptors
/// does not lock the child out: at the cap, connections that never sent the password go first.
#[tokio::test]
async fn a_flood_of_idle_connections_does_not_lock_the_child_out() {
    let (dev, dir, up) = listed_upstream("").await;
    let go = dir.path().join("go");
    let script = format!(
        r#"echo "$HTTPS_PROXY" | sed 's#.*@##'
while [ ! -e '{go}' ]; do sleep 0.05; done
curl -sS -m 10 -o /dev/null -w 'child %{{http_code}}\n' -H "Authorization: Bearer $API_KEY" "https://{HOST}:{port}/after-flood""#,
        go = go.display(),
        port = up.port
    );
    let mut cmd = up.vault_run(&dev, dir.path());
    cmd.args(["--", "sh", "-c", &script]).stdout(Stdio::piped()).stderr(Stdio::piped());
    // As a systemd service's default soft limit, smaller: 256 descriptors.
    // SAFETY: setrlimit(2) only, between fork and exec.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut cmd, || {
            let limit = libc::rlimit { rlim_cur: 256, rlim_max: 256 };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = KillOnDrop(cmd.spawn().unwrap());
    let mut stdout = child.0.stdout.take().unwrap();
    let mut first = Vec::new();
    let mut byte = [0u8; 1];
    while stdout.read(&mut byte).unwrap() == 1 && byte[0] != b'\n' {
        first.push(byte[0]);
    }
    let addr = String::from_utf8(first).unwrap();
    // 400 connections that send nothing, from a process that is not the child.
    let flood: Vec<TcpStream> = (0..400).filter_map(|_| TcpStream::connect(addr.trim()).ok()).collect();
    assert!(flood.len() >= 300, "only {} connections opened", flood.len());
    std::thread::sleep(Duration::from_millis(500));
    std::fs::write(&go, "").unwrap();
    let start = Instant::now();
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    let status = child.0.wait().unwrap();
    let mut stderr = String::new();
    child.0.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    assert!(status.success() && rest.contains("child 200"), "{rest}\n{stderr}");
    assert!(start.elapsed() < Duration::from_secs(8), "took {:?}", start.elapsed());
    assert!(!stderr.contains("Too many open files"), "{stderr}");
    drop(flood);
}

/// M5: a request head that never ends (slowloris) is cut off.
#[tokio::test]
async fn a_request_head_that_never_ends_is_cut_off() {
    let (dev, dir, up) = listed_upstream("").await;
    let script = r#"echo "$HTTPS_PROXY" | sed 's#.*@##'; sleep 30"#;
    let mut cmd = up.vault_run(&dev, dir.path());
    cmd.args(["--", "sh", "-c", script]).stdout(Stdio::piped()).stderr(Stdio::null());
    let mut child = KillOnDrop(cmd.spawn().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(child.0.stdout.take().unwrap()), &mut line)
        .unwrap();
    let mut slow = TcpStream::connect(line.trim()).unwrap();
    slow.write_all(b"GET http://127.0.0.1:9/ HTTP/1.1\r\nHost: 127.0.0.1:9\r\n").unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let start = Instant::now();
    let mut buf = [0u8; 64];
    let n = slow.read(&mut buf).unwrap_or(usize::MAX);
    assert!(n == 0 || n == usize::MAX, "an answer without a whole head: {:?}", &buf[..n.min(64)]);
    assert!(start.elapsed() < Duration::from_secs(15), "still open after {:?}", start.elapsed());
    assert_eq!(n, 0, "not closed within 20 s");
}

/// L1: a body whose rewrite would grow past the cap gets a clear 413, and vault-run's memory
/// stays bounded (a 2 MB body of placeholders for a 4 KiB value made a 512 MB peak).
#[tokio::test]
async fn a_body_too_large_once_rewritten_is_413_without_a_memory_peak() {
    require_tools();
    let long = "v".repeat(4096);
    let dev = DevServer::with(&[("production/app/API_KEY", long.as_str())]).await;
    let dir = tempfile::tempdir().unwrap();
    let up = Upstream::start(dir.path(), &[b"h2", b"http/1.1"]);
    let mapping = format!(
        "[env]\nAPI_KEY = {{ path = \"production/app/API_KEY\", hosts = [\"{HOST}:{}\"], placeholder = \"{{random}}\", inject = [\"header\", \"body\"] }}\n",
        up.port
    );
    std::fs::write(dir.path().join("vault-run.toml"), mapping).unwrap();
    let script = format!(
        r#"import os, urllib.request, urllib.error
ph = os.environ["API_KEY"].encode()
data = ph * (2_000_000 // len(ph))
try:
    urllib.request.urlopen(urllib.request.Request("https://{HOST}:{}/big", data=data))
    print("status 200")
except urllib.error.HTTPError as e:
    print("status", e.code, e.read().decode().strip())
for line in open(f"/proc/{{os.getppid()}}/status"):
    if line.startswith("VmHWM"):
        print("peak", int(line.split()[1]) // 1024, "MiB")"#,
        up.port
    );
    let (out, stdout) = up.run(&dev, dir.path(), "-- python3 -c", &script);
    assert!(out.status.success(), "{stdout}\n{}", stderr_of(&out));
    assert!(stdout.contains("status 413") && stdout.contains("too large to rewrite"), "{stdout}");
    let peak: u64 = stdout
        .lines()
        .find_map(|l| l.strip_prefix("peak "))
        .and_then(|l| l.split(' ').next()?.parse().ok())
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(peak < 128, "vault-run peaked at {peak} MiB:\n{stdout}");
    assert!(up.at("/big").is_empty());
}

/// L5 (M7's second half): under `--user`, the root proxy is no relay to hosts or ports nobody
/// listed; `--allow-host HOST:PORT` opens exactly that one.
#[tokio::test]
async fn under_user_the_proxy_is_no_open_relay() {
    if !nix::unistd::Uid::effective().is_root() {
        eprintln!("not root: --user switching cannot be exercised here");
        return;
    }
    let (port, heads) = plain_recorder();
    let (dev, dir) = with_mapping(
        "[env]\nAPI_KEY = { path = \"production/app/API_KEY\", hosts = [\"api.example.test\"] }\n",
    )
    .await;
    let script = format!(
        r#"curl -s -o /dev/null -w 'plain %{{http_code}}\n' --noproxy '' -x "$HTTP_PROXY" "http://127.0.0.1:{port}/plain"
curl -s -o /dev/null -w 'tunnel %{{http_connect}}\n' --noproxy '' -p -x "$HTTP_PROXY" "http://127.0.0.1:{port}/tunnel"
curl -s -o /dev/null -w 'port %{{http_connect}}\n' --noproxy '' -p -x "$HTTP_PROXY" "http://api.example.test:22/"
true"#
    );
    let out =
        output_within(vault_run(&dev, dir.path()).args(["--user", "nobody", "--", "sh", "-c", &script]), T);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{stdout}\n{}", stderr_of(&out));
    for want in ["plain 403", "tunnel 403", "port 403"] {
        assert!(stdout.lines().any(|l| l == want), "{want:?} not in:\n{stdout}\n{}", stderr_of(&out));
    }
    assert!(heads.lock().unwrap().is_empty(), "the relay reached the host");

    let allow = format!("127.0.0.1:{port}");
    let out = output_within(
        vault_run(&dev, dir.path()).args([
            "--user",
            "nobody",
            "--deny-other-hosts",
            "--allow-host",
            &allow,
            "--",
            "sh",
            "-c",
            &script,
        ]),
        T,
    );
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    for want in ["plain 200", "tunnel 200", "port 403"] {
        assert!(stdout.lines().any(|l| l == want), "{want:?} not in:\n{stdout}\n{}", stderr_of(&out));
    }
}
