//! Agent-safe mode through the real binary: the child (curl, Python's urllib) holds a
//! placeholder, vault-run's proxy puts the real value on the wire to an upstream HTTPS server of
//! the test's own (its own CA, trusted with --upstream-ca, its name pinned with --resolve).

mod common;

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::upstream::{plain_recorder, require_tools, var, KillOnDrop, Upstream, HOST, OTHER};
use common::T;
use common::{output_within, stderr_of, vault_run, DevServer};

/// Characters that need care in a header, a query string and JSON.
const SECRET: &str = "sk-live-Ab/3+x?y&z=q~0042";
const BODY_SECRET: &str = "body-secret-7f3e";

/// API_KEY in headers and the query; BODY_KEY with the older `body = true` (headers and body).
fn mapping(host: &str) -> String {
    format!(
        r#"
[env]
API_KEY = {{ path = "production/app/API_KEY", hosts = ["{host}"], placeholder = "sk-{{random}}", inject = ["header", "query"] }}
BODY_KEY = {{ path = "production/app/BODY_KEY", hosts = ["{host}"], body = true }}
"#
    )
}

async fn setup() -> (DevServer, tempfile::TempDir) {
    let dev =
        DevServer::with(&[("production/app/API_KEY", SECRET), ("production/app/BODY_KEY", BODY_SECRET)])
            .await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("vault-run.toml"), mapping(HOST)).unwrap();
    (dev, dir)
}

/// [`setup`] and an upstream speaking `alpn`, listed with its port, for tests that need curl
/// and python3.
async fn setup_with_upstream(alpn: &[&[u8]]) -> (DevServer, tempfile::TempDir, Upstream) {
    require_tools();
    let (dev, dir) = setup().await;
    let up = Upstream::start(dir.path(), alpn);
    std::fs::write(dir.path().join("vault-run.toml"), mapping(&format!("{HOST}:{}", up.port))).unwrap();
    (dev, dir, up)
}

#[tokio::test]
async fn child_holds_placeholders_and_the_upstream_gets_the_values() {
    let (dev, dir, up) = setup_with_upstream(&[b"h2", b"http/1.1"]).await;
    let port = up.port;
    let script = format!(
        r#"set -e
curl -sS --fail-with-body -D - -H "Authorization: Bearer $API_KEY" "https://{HOST}:{port}/curl?key=$API_KEY"
curl -sS --fail-with-body -H "Authorization: Bearer $API_KEY" -H 'content-type: application/json' \
  --data "{{\"a\":\"$API_KEY\",\"b\":\"$BODY_KEY\"}}" "https://{HOST}:{port}/body"
python3 - <<'PY'
import os, urllib.request
r = urllib.request.Request("https://{HOST}:{port}/python", headers={{"Authorization": "Bearer " + os.environ["API_KEY"]}})
with urllib.request.urlopen(r) as resp:
    print("python", resp.status, resp.headers.get("x-echo"), resp.read().decode().strip())
PY
curl -sS --fail-with-body --cacert "$UPSTREAM_CA" -H "Authorization: Bearer $API_KEY" "https://{OTHER}:{port}/other"
echo "--- env"
env
echo "--- environ"
tr '\0' '\n' < /proc/$$/environ
echo "--- bundle"
head -c 100 "$SSL_CERT_FILE"; echo
"#
    );
    let (out, stdout) = up.run(&dev, dir.path(), "-v -- sh -c", &script);
    let stderr = stderr_of(&out);
    assert!(out.status.success(), "stdout:\n{stdout}\nstderr:\n{stderr}");
    // -v says why vault-run stayed.
    assert!(stderr.contains("supervise mode: an entry with hosts"), "{stderr}");

    let placeholder = var(&stdout, "API_KEY").to_owned();
    let body_placeholder = var(&stdout, "BODY_KEY").to_owned();
    assert!(placeholder.starts_with("sk-") && placeholder.len() >= 3 + 22, "{placeholder}");
    assert_ne!(placeholder, SECRET);
    // Nothing the child printed (env, /proc/<child>/environ, responses) holds a value.
    for (what, text) in [("stdout", &stdout), ("stderr", &stderr)] {
        assert!(!text.contains(SECRET), "the secret leaked into the child's {what}:\n{text}");
        assert!(!text.contains(BODY_SECRET), "the body secret leaked into the child's {what}:\n{text}");
    }
    let environ = stdout.split("--- environ").nth(1).unwrap();
    assert!(environ.contains(&format!("API_KEY={placeholder}")), "{environ}");
    assert!(environ.contains("HTTPS_PROXY=http://vault-run:"), "{environ}");
    assert!(var(&stdout, "NO_PROXY").contains("127.0.0.1"), "{stdout}");
    assert!(var(&stdout, "SSL_CERT_FILE").starts_with("/proc/"), "{stdout}");
    assert!(
        stdout.contains("-----BEGIN CERTIFICATE-----"),
        "the bundle is not readable in the child:\n{stdout}"
    );
    // The response header echoing the value came back to the child as the placeholder.
    assert!(
        stdout.to_ascii_lowercase().contains(&format!("x-echo: bearer {}", placeholder.to_ascii_lowercase())),
        "{stdout}"
    );
    assert!(stdout.contains(&format!("python 200 Bearer {placeholder} upstream ok /python")), "{stdout}");

    let curl = up.at("/curl");
    assert_eq!(curl.len(), 1, "{:?}", up.seen());
    assert_eq!(curl[0].authorization, format!("Bearer {SECRET}"));
    assert_eq!(curl[0].query, format!("key={SECRET}"));
    assert_eq!(curl[0].host, HOST);
    let body = up.at("/body");
    assert_eq!(
        body[0].body,
        format!("{{\"a\":\"{placeholder}\",\"b\":\"{BODY_SECRET}\"}}"),
        "only body = true entries change in a body"
    );
    let python = up.at("/python");
    assert_eq!(python.len(), 1, "{:?}", up.seen());
    assert_eq!(python[0].authorization, format!("Bearer {SECRET}"));
    // The proxy speaks HTTP/2 to an upstream that offers it, whatever the child spoke.
    assert_eq!(python[0].version, "HTTP/2.0");
    // An unlisted host is tunnelled untouched: it gets the (useless) placeholder.
    let other = up.at("/other");
    assert_eq!(other.len(), 1, "{:?}", up.seen());
    assert_eq!(other[0].authorization, format!("Bearer {placeholder}"));
    let _ = body_placeholder;
}

#[tokio::test]
async fn http2_child_to_an_http1_only_upstream() {
    let (dev, dir, up) = setup_with_upstream(&[b"http/1.1"]).await;
    let script = format!(
        r#"curl -sS --fail-with-body -o /dev/null -w '%{{http_version}}\n' --http2 -H "Authorization: Bearer $API_KEY" "https://{HOST}:{}/h2""#,
        up.port
    );
    let (out, stdout) = up.run(&dev, dir.path(), "-- sh -c", &script);
    assert!(out.status.success(), "{stdout}\n{}", stderr_of(&out));
    let seen = up.at("/h2");
    assert_eq!(seen.len(), 1, "{:?}", up.seen());
    assert_eq!(seen[0].version, "HTTP/1.1");
    assert_eq!(seen[0].authorization, format!("Bearer {SECRET}"));
    let curl_has_h2 =
        Command::new("curl").arg("-V").output().unwrap().stdout.windows(5).any(|w| w == b"HTTP2");
    if curl_has_h2 {
        assert_eq!(stdout.trim(), "2", "curl should have spoken HTTP/2 to the proxy");
    }
}

#[tokio::test]
async fn without_the_proxy_password_the_answer_is_407() {
    let (dev, dir, up) = setup_with_upstream(&[b"http/1.1"]).await;
    // The proxy URL without its user:password, and with a wrong password.
    let script = format!(
        r#"bare=$(echo "$HTTPS_PROXY" | sed 's#//[^@]*@#//#')
wrong=$(echo "$HTTPS_PROXY" | sed 's#//\([^:]*\):[^@]*@#//\1:wrong@#')
curl -s -o /dev/null -w 'none %{{http_connect}}\n' -x "$bare" "https://{HOST}:{port}/noauth"
curl -s -o /dev/null -w 'wrong %{{http_connect}}\n' -x "$wrong" "https://{HOST}:{port}/noauth"
curl -s -o /dev/null -w 'plain %{{http_code}}\n' --noproxy '' -x "$bare" "http://127.0.0.1:{port}/noauth"
curl -s -o /dev/null -w 'right %{{http_code}}\n' "https://{HOST}:{port}/auth"
true"#,
        port = up.port
    );
    let (out, stdout) = up.run(&dev, dir.path(), "-- sh -c", &script);
    assert!(out.status.success(), "{stdout}\n{}", stderr_of(&out));
    for line in ["none 407", "wrong 407", "plain 407", "right 200"] {
        assert!(stdout.lines().any(|l| l == line), "expected {line:?} in:\n{stdout}");
    }
    assert!(up.at("/noauth").is_empty(), "a request without the password reached the upstream");
}

#[tokio::test]
async fn deny_other_hosts_refuses_unlisted_hosts_with_403() {
    let (dev, dir, up) = setup_with_upstream(&[b"http/1.1"]).await;
    let script = format!(
        r#"curl -s -o /dev/null -w 'other %{{http_connect}}\n' --cacert "$UPSTREAM_CA" -H "Authorization: Bearer $API_KEY" "https://{OTHER}:{port}/other"
curl -s -o /dev/null -w 'listed %{{http_code}}\n' -H "Authorization: Bearer $API_KEY" "https://{HOST}:{port}/listed"
true"#,
        port = up.port
    );
    let (out, stdout) = up.run(&dev, dir.path(), "--deny-other-hosts -- sh -c", &script);
    assert!(stdout.lines().any(|l| l == "other 403"), "{stdout}\n{}", stderr_of(&out));
    assert!(stdout.lines().any(|l| l == "listed 200"), "{stdout}\n{}", stderr_of(&out));
    assert!(up.at("/other").is_empty());
    assert_eq!(up.at("/listed")[0].authorization, format!("Bearer {SECRET}"));

    // --allow-host opens the allow-list for one more host, tunnelled untouched.
    let (out, stdout) = up.run(
        &dev,
        dir.path(),
        &format!("--deny-other-hosts --allow-host {OTHER}:{} -- sh -c", up.port),
        &script,
    );
    assert!(stdout.lines().any(|l| l == "other 200"), "{stdout}\n{}", stderr_of(&out));
    assert!(up.at("/other")[0].authorization.starts_with("Bearer sk-"), "{:?}", up.at("/other"));
}

#[tokio::test]
async fn watch_rotation_reaches_the_wire_without_a_restart() {
    let (dev, dir, up) = setup_with_upstream(&[b"h2", b"http/1.1"]).await;
    let script = format!(
        r#"echo "START $$"
i=0
while [ $i -lt 200 ]; do
  curl -s -o /dev/null -H "Authorization: Bearer $API_KEY" "https://{HOST}:{}/tick"
  sleep 0.2
  i=$((i+1))
done"#,
        up.port
    );
    let mut cmd = up.vault_run(&dev, dir.path());
    cmd.args(common::words("--watch --watch-interval 1s -- sh -c"))
        .arg(&script)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = KillOnDrop(cmd.spawn().unwrap());
    let child = &mut child.0;
    let wait_for = |value: &str| {
        let start = Instant::now();
        while !up.at("/tick").iter().any(|s| s.authorization == format!("Bearer {value}")) {
            assert!(start.elapsed() < T, "the upstream never saw {value:?}: {:?}", up.at("/tick").last());
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    wait_for(SECRET);
    dev.put("production/app/API_KEY", "rotated-value-2").await;
    wait_for("rotated-value-2");
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGTERM)
        .unwrap();
    let _ = child.wait();
    let mut stdout = String::new();
    child.stdout.take().unwrap().read_to_string(&mut stdout).unwrap();
    let mut stderr = String::new();
    child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    assert_eq!(stdout.matches("START").count(), 1, "the child was restarted:\n{stdout}\n{stderr}");
    assert!(!stdout.contains("rotated-value-2") && !stderr.contains("rotated-value-2"));
}

#[tokio::test]
async fn check_shows_the_proxied_hosts() {
    let (dev, dir) = setup().await;
    let mut cmd = vault_run(&dev, dir.path());
    cmd.arg("check");
    let out = output_within(&mut cmd, T);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{stdout}\n{}", stderr_of(&out));
    let line = stdout.lines().find(|l| l.starts_with("API_KEY")).unwrap();
    assert!(line.contains("proxy → api.example.test (inject header, query)"), "{stdout}");
    let line = stdout.lines().find(|l| l.starts_with("BODY_KEY")).unwrap();
    assert!(line.contains("proxy → api.example.test (inject header, body)"), "{stdout}");
}

#[tokio::test]
async fn hosts_on_a_glob_or_file_entry_is_a_config_error() {
    let dev = DevServer::start();
    let dir = tempfile::tempdir().unwrap();
    for (entry, expect) in [
        (r#"K = { path = "a/b", hosts = ["api.example.test"], as = "file" }"#, "hosts works only"),
        (r#"K = { path = "a/b", hosts = ["https://api.example.test/"] }"#, "not a host name"),
        (r#"K = { path = "a/b", placeholder = "x-{random}" }"#, "need hosts"),
        (r#"K = { path = "a/b", hosts = ["h.test"], placeholder = "fixed" }"#, "{random}"),
    ] {
        std::fs::write(dir.path().join("vault-run.toml"), format!("[env]\n{entry}\n")).unwrap();
        let out = output_within(vault_run(&dev, dir.path()).args(["--", "true"]), T);
        assert_eq!(out.status.code(), Some(78), "{entry}: {}", stderr_of(&out));
        assert!(stderr_of(&out).contains(expect), "{entry}: {}", stderr_of(&out));
    }
}

#[tokio::test]
async fn plain_http_gets_the_value_only_for_a_listed_loopback_host() {
    require_tools();
    let dev = DevServer::with(&[("production/app/API_KEY", SECRET)]).await;
    let dir = tempfile::tempdir().unwrap();
    let (port, heads) = plain_recorder();
    std::fs::write(
        dir.path().join("vault-run.toml"),
        format!("[env]\nAPI_KEY = {{ path = \"production/app/API_KEY\", hosts = [\"localhost:{port}\", \"api.example.test:{port}\"] }}\n"),
    )
    .unwrap();
    // localhost is listed, so it is left out of NO_PROXY and goes through the proxy; the
    // listed but non-loopback api.example.test (pinned to the same server) gets the placeholder.
    let script = format!(
        r#"echo "NO_PROXY=$NO_PROXY"
curl -sS --fail -H "Authorization: Bearer $API_KEY" "http://localhost:{port}/loopback"
curl -sS --fail -H "Authorization: Bearer $API_KEY" "http://api.example.test:{port}/remote""#
    );
    let mut cmd = vault_run(&dev, dir.path());
    cmd.args(common::words(&format!("--resolve api.example.test:{port}:127.0.0.1 -- sh -c"))).arg(&script);
    let out = output_within(&mut cmd, T);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{stdout}\n{}", stderr_of(&out));
    assert!(!var(&stdout, "NO_PROXY").split(',').any(|h| h == "localhost"), "{stdout}");
    let heads = heads.lock().unwrap().clone();
    let loopback = heads.iter().find(|h| h.starts_with("GET /loopback ")).expect("loopback request");
    assert!(loopback.contains(&format!("Bearer {SECRET}")), "{loopback}");
    assert!(
        !loopback.to_ascii_lowercase().contains("proxy-authorization"),
        "the proxy password leaked upstream: {loopback}"
    );
    let remote = heads.iter().find(|h| h.starts_with("GET /remote ")).expect("remote request");
    assert!(!remote.contains(SECRET), "the value went over plain http to a non-loopback host: {remote}");
    assert!(remote.contains("Bearer vault-run-placeholder-"), "{remote}");
}

#[tokio::test]
async fn the_bundle_is_the_run_ca_plus_the_childs_own_ssl_cert_file() {
    let (dev, dir) = setup().await;
    let up = Upstream::start(dir.path(), &[b"http/1.1"]);
    let own = std::fs::read_to_string(&up.ca_file).unwrap();
    let mut cmd = up.vault_run(&dev, dir.path());
    cmd.env("SSL_CERT_FILE", &up.ca_file).args([
        "--",
        "sh",
        "-c",
        r#"for v in SSL_CERT_FILE REQUESTS_CA_BUNDLE CURL_CA_BUNDLE NODE_EXTRA_CA_CERTS; do eval "echo $v=\$$v"; done; cat "$SSL_CERT_FILE""#,
    ]);
    let out = output_within(&mut cmd, T);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{stdout}\n{}", stderr_of(&out));
    assert_eq!(stdout.matches("-----BEGIN CERTIFICATE-----").count(), 2, "{stdout}");
    assert!(stdout.ends_with(&own), "the child's own SSL_CERT_FILE is not in the bundle:\n{stdout}");
    for name in ["SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "NODE_EXTRA_CA_CERTS"] {
        assert!(var(&stdout, name).starts_with("/proc/"), "{name}: {stdout}");
    }
    assert!(!stdout.contains("PRIVATE KEY"));
}

#[tokio::test]
async fn a_tool_the_child_starts_with_its_descriptors_closed_still_gets_through() {
    let (dev, dir, up) = setup_with_upstream(&[b"http/1.1"]).await;
    // Python's subprocess closes every descriptor but stdio (close_fds=True), as agents'
    // tool runners do: the bundle path must not depend on an inherited descriptor.
    let script = format!(
        r#"import subprocess
subprocess.run(["sh", "-c", 'curl -sS --fail -H "Authorization: Bearer $API_KEY" https://{HOST}:{}/grandchild'], check=True)"#,
        up.port
    );
    let (out, _) = up.run(&dev, dir.path(), "-- python3 -c", &script);
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(up.at("/grandchild")[0].authorization, format!("Bearer {SECRET}"));
}

#[tokio::test]
async fn the_host_header_cannot_steer_the_value_elsewhere() {
    require_tools();
    // HTTP/1.1 only, so that the upstream sees the Host header itself.
    let (dev, dir, up) = setup_with_upstream(&[b"http/1.1"]).await;
    let port = up.port;
    // Behind a shared front end, Host picks the site: the child must not pick another one
    // while its request carries the value meant for the listed host.
    let script = format!(
        r#"curl -sS --fail --http1.1 -o /dev/null -H "Host: {OTHER}:{port}" -H "Authorization: Bearer $API_KEY" "https://{HOST}:{port}/fronting""#
    );
    let (out, _) = up.run(&dev, dir.path(), "-- sh -c", &script);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let seen = up.at("/fronting");
    assert_eq!(seen[0].host, format!("{HOST}:{port}"), "{seen:?}");
    assert_eq!(seen[0].authorization, format!("Bearer {SECRET}"));
}

/// A child that opens a WebSocket-like upgrade to the listed host, prints the first frame the
/// host sends after the switch (its `auth:<authorization>`), then an echo.
fn websocket_child(port: u16) -> String {
    format!(
        r#"import base64, http.client, os, ssl, urllib.parse
p = urllib.parse.urlsplit(os.environ["HTTPS_PROXY"])
c = http.client.HTTPSConnection(p.hostname, p.port, context=ssl.create_default_context())
auth = base64.b64encode(f"{{p.username}}:{{p.password}}".encode()).decode()
c.set_tunnel("{HOST}", {port}, headers={{"Proxy-Authorization": "Basic " + auth}})
c.putrequest("GET", "/ws")
c.putheader("Connection", "Upgrade")
c.putheader("Upgrade", "websocket")
c.putheader("Authorization", "Bearer " + os.environ["API_KEY"])
c.endheaders()
r = c.getresponse()
print("status", r.status, r.headers.get("x-echo"))
print("first", r.fp.readline().decode().strip())
c.sock.sendall(b"hello")
print("got", r.fp.read1(100).decode())"#
    )
}

#[tokio::test]
async fn a_websocket_handshake_gets_the_value_and_the_stream_flows() {
    let (dev, dir, up) = setup_with_upstream(&[b"h2", b"http/1.1"]).await;
    let (out, stdout) = up.run(&dev, dir.path(), "-- python3 -c", &websocket_child(up.port));
    assert!(out.status.success(), "{stdout}\n{}", stderr_of(&out));
    assert!(stdout.contains("status 101 Bearer sk-"), "{stdout}");
    assert!(stdout.contains("got echo:hello"), "{stdout}");
    assert_eq!(up.at("/ws")[0].authorization, format!("Bearer {SECRET}"));
    // After the switch the frames pass untouched (README says so): what the host sends there
    // reaches the child as it is.
    assert!(stdout.contains(&format!("first auth:Bearer {SECRET}")), "{stdout}");
}

/// `--mask` masks proxied values too: a value a listed host hands back where the proxy does
/// not scrub (here, WebSocket frames) is not printed.
#[tokio::test]
async fn mask_also_hides_a_proxied_value_the_child_prints() {
    let (dev, dir, up) = setup_with_upstream(&[b"h2", b"http/1.1"]).await;
    let (out, stdout) = up.run(&dev, dir.path(), "--mask -- python3 -c", &websocket_child(up.port));
    assert!(out.status.success(), "{stdout}\n{}", stderr_of(&out));
    assert!(stdout.contains("first auth:Bearer [REDACTED:API_KEY]"), "{stdout}");
    assert!(!stdout.contains(SECRET), "{stdout}");
}

#[tokio::test]
async fn an_unreadable_upstream_ca_is_a_config_error() {
    let (dev, dir) = setup().await;
    let missing = dir.path().join("missing.pem");
    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "not a certificate\n").unwrap();
    for file in [&missing, &empty] {
        let mut cmd = vault_run(&dev, dir.path());
        cmd.args(["--upstream-ca", &file.display().to_string(), "--", "true"]);
        let out = output_within(&mut cmd, T);
        let stderr = stderr_of(&out);
        assert_eq!(out.status.code(), Some(78), "{stderr}");
        assert!(stderr.contains("--upstream-ca") && stderr.lines().count() == 1, "{stderr}");
    }
}
