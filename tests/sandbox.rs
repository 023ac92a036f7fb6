//! `--sandbox` through the real binary: the child's only way out is vault-run. Clients that
//! ignore the proxy variables (curl --noproxy '*', a raw socket) are captured or fail at once,
//! its resolver answers only what it should, vault-run's credential files are hidden, the files
//! that configured the run are read-only, and the child cannot undo any of it. The listed host
//! is an HTTPS server of the test's own on 127.0.0.1 (its CA trusted with --upstream-ca, its
//! name pinned with --resolve HOST:443:127.0.0.1:PORT).

mod common;

use std::convert::Infallible;
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use common::vendors::{node_sdks_dir, python_sdks_installed, VendorUpstream, VENDORS};
use common::{output_within, stderr_of, vault_run, DevServer, T};
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;

const SECRET: &str = "sk-live-sandbox-4242";
const HOST: &str = "api.example.test";
const OTHER: &str = "other.example.test";

const MAPPING: &str = r#"
[env]
API_KEY = { path = "production/app/API_KEY", hosts = ["api.example.test"], placeholder = "sk-{random}" }
"#;

/// An HTTPS server on 127.0.0.1 for `HOST` and `OTHER`, recording `(path, authorization)`.
struct Upstream {
    port: u16,
    ca_file: std::path::PathBuf,
    seen: Arc<Mutex<Vec<(String, String)>>>,
}

impl Upstream {
    fn start(dir: &std::path::Path) -> Upstream {
        let ca = common::test_ca::TestCa::new("sandbox test upstream CA", &[HOST, OTHER]);
        let ca_file = ca.write_ca(&dir.join("upstream-ca.pem"));
        let cfg = ca.server_config();
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
                    let (acceptor, record) = (acceptor.clone(), record.clone());
                    tokio::spawn(async move {
                        let Ok(tls) = acceptor.accept(tcp).await else { return };
                        let svc = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                            let auth = req
                                .headers()
                                .get("authorization")
                                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                                .unwrap_or_default();
                            record.lock().unwrap().push((req.uri().path().to_owned(), auth));
                            let body = format!("upstream ok {}\n", req.uri().path());
                            async move { Ok::<_, Infallible>(hyper::Response::new(Full::new(Bytes::from(body)))) }
                        });
                        let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(tls), svc).await;
                    });
                }
            });
        });
        Upstream { port, ca_file, seen }
    }

    /// What the upstream saw at `path`: the Authorization header of each request.
    fn at(&self, path: &str) -> Vec<String> {
        self.seen.lock().unwrap().iter().filter(|(p, _)| p == path).map(|(_, a)| a.clone()).collect()
    }

    /// The flags that make vault-run reach this server under both names on port 443.
    fn flags(&self) -> Vec<String> {
        let mut f = vec!["--upstream-ca".to_owned(), self.ca_file.display().to_string()];
        for host in [HOST, OTHER] {
            f.extend(["--resolve".to_owned(), format!("{host}:443:127.0.0.1:{}", self.port)]);
        }
        f
    }
}

struct Setup {
    dev: DevServer,
    dir: tempfile::TempDir,
    up: Upstream,
    dev_port: u16,
}

async fn setup() -> Setup {
    for tool in ["curl", "python3", "getent"] {
        assert!(common::tool_runs(tool) || which(tool), "{tool} is needed by the sandbox tests");
    }
    let dev = DevServer::with(&[("production/app/API_KEY", SECRET)]).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("vault-run.toml"), MAPPING).unwrap();
    let up = Upstream::start(dir.path());
    let dev_port = dev.base_url.rsplit(':').next().unwrap().trim_end_matches('/').parse().unwrap();
    Setup { dev, dir, up, dev_port }
}

fn which(tool: &str) -> bool {
    Command::new("sh").args(["-c", &format!("command -v {tool}")]).output().is_ok_and(|o| o.status.success())
}

impl Setup {
    /// `vault-run --sandbox <flags> -- sh -c <script>`, bounded by [`T`].
    fn run(&self, flags: &str, script: &str) -> (Output, String, String) {
        let mut cmd = vault_run(&self.dev, self.dir.path());
        cmd.env("UPSTREAM_CA", &self.up.ca_file).arg("--sandbox").args(self.up.flags());
        let out = output_within(cmd.args(common::words(flags)).args(["--", "sh", "-c", script]), T);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = stderr_of(&out);
        assert!(
            !stdout.contains(SECRET) && !stderr.contains(SECRET),
            "the secret leaked:\n{stdout}\n{stderr}"
        );
        (out, stdout, stderr)
    }
}

/// A Python snippet printing `raw HOST:PORT ERRNO SECONDS` for a plain TCP connect to each.
fn raw_connects(targets: &[(&str, u16)]) -> String {
    let list: Vec<String> = targets.iter().map(|(h, p)| format!("({h:?}, {p})")).collect();
    format!(
        r#"python3 - <<'PY'
import errno, socket, time
for host, port in [{}]:
    s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    s.settimeout(20)
    t = time.monotonic()
    try:
        s.connect((host, port)); r = "connected"
    except OSError as e:
        r = errno.errorcode.get(e.errno, str(e))
    print(f"raw {{host}}:{{port}} {{r}} {{time.monotonic() - t:.3f}}")
PY
"#,
        list.join(", ")
    )
}

/// The outcome of a raw connect printed by [`raw_connects`]; asserts it came at once.
fn raw(stdout: &str, target: &str) -> String {
    let line = stdout
        .lines()
        .find(|l| l.starts_with(&format!("raw {target} ")))
        .unwrap_or_else(|| panic!("{target}:\n{stdout}"));
    let mut it = line.split_whitespace().skip(2);
    let (what, secs) = (it.next().unwrap().to_owned(), it.next().unwrap().parse::<f64>().unwrap());
    assert!(secs < 2.0, "a connect to {target} took {secs} s (it must fail at once): {line}");
    what
}

#[tokio::test]
async fn proxy_ignoring_clients_are_captured_or_fail_at_once() {
    let s = setup().await;
    let script = format!(
        r#"curl --noproxy '*' -sS --fail-with-body -H "Authorization: Bearer $API_KEY" https://{HOST}/captured
echo "other: $(curl --noproxy '*' -sS -m 20 --cacert "$UPSTREAM_CA" https://{OTHER}/denied 2>&1; echo rc=$?)"
getent hosts {OTHER} || echo "getent other: $?"
getent hosts {HOST}
echo NODE_USE_ENV_PROXY=$NODE_USE_ENV_PROXY
{}"#,
        raw_connects(&[
            ("127.0.0.1", s.dev_port),
            ("::1", s.dev_port),
            ("10.255.255.1", 80),
            ("127.0.0.1", s.up.port)
        ])
    );
    let (out, stdout, stderr) = s.run("-v --deny-other-hosts", &script);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("upstream ok /captured"), "{stdout}\n{stderr}");
    assert_eq!(
        s.up.at("/captured"),
        vec![format!("Bearer {SECRET}")],
        "the captured request got the real key"
    );
    // Under --deny-other-hosts an unlisted name does not resolve, and nothing reached the upstream.
    assert!(stdout.contains("rc=6"), "{stdout}");
    assert!(stdout.contains("getent other: 2"), "{stdout}");
    assert!(s.up.at("/denied").is_empty());
    assert!(stdout.contains(&format!("127.0.0.1       {HOST}")), "{stdout}");
    assert!(stdout.contains("NODE_USE_ENV_PROXY=1"), "{stdout}");
    assert_eq!(raw(&stdout, &format!("127.0.0.1:{}", s.dev_port)), "ECONNREFUSED");
    assert_eq!(raw(&stdout, &format!("::1:{}", s.dev_port)), "ECONNREFUSED");
    assert_eq!(raw(&stdout, &format!("127.0.0.1:{}", s.up.port)), "ECONNREFUSED");
    assert_eq!(raw(&stdout, "10.255.255.1:80"), "ENETUNREACH");
    assert!(stderr.contains("supervise mode: --sandbox"), "{stderr}");
    assert!(!stderr.contains("advisory"), "{stderr}");
}

#[tokio::test]
async fn without_deny_other_names_resolve_to_the_capture_and_are_tunnelled_untouched() {
    let s = setup().await;
    let script = format!(
        r#"getent hosts anything.example.org
curl --noproxy '*' -sS --fail-with-body --cacert "$UPSTREAM_CA" -H "Authorization: Bearer $API_KEY" https://{OTHER}/tunnelled
curl -sS --fail-with-body -H "Authorization: Bearer $API_KEY" https://{HOST}/proxied
curl --noproxy '*' -sS -o /dev/null -w 'plain %{{http_code}}\n' http://plain.example.test/v1/health
curl --noproxy '*' -sS -o /dev/null -w 'loopback-by-host %{{http_code}}\n' -H "Host: 127.0.0.1:{dev}" http://x.example.test/v1/health
curl --noproxy '' -sS -o /dev/null -w 'loopback-by-proxy %{{http_code}}\n' --proxy "$HTTPS_PROXY" http://localhost:{dev}/v1/health
curl --noproxy '' -sS -o /dev/null -w 'loopback-by-connect %{{http_code}}\n' -p --proxy "$HTTPS_PROXY" http://127.0.0.1:{dev}/v1/health
echo "API_KEY=$API_KEY"
"#,
        dev = s.dev_port
    );
    let flags = format!("--resolve plain.example.test:80:127.0.0.1:{}", s.dev_port);
    let (out, stdout, stderr) = s.run(&flags, &script);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("127.0.0.1       anything.example.org"), "{stdout}");
    let placeholder = stdout.lines().find_map(|l| l.strip_prefix("API_KEY=")).unwrap();
    assert!(placeholder.starts_with("sk-"), "{placeholder}");
    // Unlisted: the bytes went through untouched (the upstream's own certificate, the placeholder).
    assert_eq!(s.up.at("/tunnelled"), vec![format!("Bearer {placeholder}")], "{stdout}\n{stderr}");
    // The explicit proxy (HTTPS_PROXY, inside the namespace) still works.
    assert_eq!(s.up.at("/proxied"), vec![format!("Bearer {SECRET}")]);
    // Plain HTTP is captured on :80 and routed by Host.
    assert!(stdout.lines().any(|l| l.starts_with("plain ") && l != "plain 000"), "{stdout}");
    // But neither the capture nor the proxy opens the host's loopback to the child (a pinned or
    // --allow-host name does).
    for how in ["loopback-by-host", "loopback-by-proxy", "loopback-by-connect"] {
        let code = stdout.lines().find_map(|l| l.strip_prefix(&format!("{how} "))).unwrap_or("?");
        assert!(code == "502" || code == "000", "{how}: {code}\n{stdout}\n{stderr}");
    }
}

#[tokio::test]
async fn allow_host_forwards_exactly_that_port() {
    let s = setup().await;
    let script = format!(
        "curl -sS -o /dev/null -w 'allowed %{{http_code}}\\n' http://127.0.0.1:{}/v1/health\n{}",
        s.dev_port,
        raw_connects(&[("127.0.0.1", s.up.port), ("127.0.0.1", s.dev_port + 1)])
    );
    let (out, stdout, stderr) = s.run(&format!("--allow-host 127.0.0.1:{}", s.dev_port), &script);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let code = stdout.lines().find_map(|l| l.strip_prefix("allowed ")).unwrap();
    assert_ne!(code, "000", "the allowed port was not reachable:\n{stdout}\n{stderr}");
    assert_eq!(raw(&stdout, &format!("127.0.0.1:{}", s.up.port)), "ECONNREFUSED");
    assert_eq!(raw(&stdout, &format!("127.0.0.1:{}", s.dev_port + 1)), "ECONNREFUSED");
}

#[tokio::test]
async fn credential_files_are_hidden_and_configuration_is_read_only() {
    let s = setup().await;
    let d = s.dir.path();
    let key_file = d.join("agent.key");
    std::fs::write(&key_file, &s.dev.agent_key).unwrap();
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::write(d.join("app.env"), "GREETING=hello\n").unwrap();
    // A service on a filesystem socket in the runtime directory (a session bus, an agent).
    let xdg = d.join("xdg");
    std::fs::create_dir(&xdg).unwrap();
    let _service = std::os::unix::net::UnixListener::bind(xdg.join("bus")).unwrap();
    let script = r##"echo "key bytes: $(wc -c < agent.key)"
echo "# changed" >> vault-run.toml && echo "mapping writable" || echo "mapping read-only"
echo "X=1" >> app.env && echo "env file writable" || echo "env file read-only"
echo "greeting $GREETING"
python3 -c 'import os, socket; s = socket.socket(socket.AF_UNIX); s.connect(os.environ["XDG_RUNTIME_DIR"] + "/bus")' 2>/dev/null && echo "runtime socket reachable" || echo "runtime socket hidden"
env > written.txt
tr '\0' '\n' < /proc/$$/environ > environ.txt
cat /proc/$$/environ | tr '\0' '\n' | grep '^API_KEY='
"##;
    let mut cmd = vault_run(&s.dev, d);
    cmd.env_remove("ASS_AGENT_KEY").arg("--agent-key-file").arg(&key_file).args(["--env-file", "app.env"]);
    cmd.env("XDG_RUNTIME_DIR", &xdg);
    cmd.arg("--sandbox").args(s.up.flags()).args(["--", "sh", "-c", script]);
    let out = output_within(&mut cmd, T);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{stdout}\n{}", stderr_of(&out));
    assert!(stdout.contains("key bytes: 0"), "the agent key file is readable inside:\n{stdout}");
    assert!(stdout.contains("mapping read-only") && stdout.contains("env file read-only"), "{stdout}");
    assert!(stdout.contains("greeting hello"), "{stdout}");
    assert!(stdout.contains("runtime socket hidden"), "{stdout}");
    // Outside, nothing changed, and what the child wrote holds only the placeholder.
    assert_eq!(std::fs::read_to_string(d.join("vault-run.toml")).unwrap(), MAPPING);
    assert_eq!(std::fs::read_to_string(&key_file).unwrap(), s.dev.agent_key);
    for f in ["written.txt", "environ.txt"] {
        let text = std::fs::read_to_string(d.join(f)).unwrap();
        assert!(text.contains("API_KEY=sk-"), "{f}: {text}");
        assert!(
            !text.contains(SECRET) && !text.contains(&s.dev.agent_key),
            "{f} holds a credential:\n{text}"
        );
    }
    assert!(!stdout.contains(SECRET));
}

/// Tries, from inside, to get out: join the host's network namespace, unmount or remount what
/// vault-run mounted, bring loopback down. Prints `NAME RESULT` lines.
const ESCAPES: &str = r#"python3 - <<'PY'
import ctypes, errno, os
libc = ctypes.CDLL(None, use_errno=True)
def result(r):
    return "ok" if r == 0 else errno.errorcode.get(ctypes.get_errno(), "?")
for pid in (1, os.getppid()):
    try:
        fd = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY)
        print(f"setns-net-{'init' if pid == 1 else 'vault-run'}", result(libc.setns(fd, 0x40000000)))
    except OSError as e:
        print(f"setns-net-{'init' if pid == 1 else 'vault-run'}", errno.errorcode[e.errno])
print("umount", result(libc.umount2(b"/etc/resolv.conf", 2)))
print("remount", result(libc.mount(None, b"vault-run.toml", None, 0x1000 | 0x20 | 0x4000, None)))
print("unshare-mnt", result(libc.unshare(0x00020000)))
print("umount-after-unshare", result(libc.umount2(b"/etc/resolv.conf", 2)))
print("remount-after-unshare", result(libc.mount(None, b"vault-run.toml", None, 0x1000 | 0x20 | 0x4000, None)))
PY
ip link set lo down 2>/dev/null && echo "lo-down ok" || echo "lo-down refused"
grep CapEff /proc/self/status
echo "inherited-namespaces-or-sockets $(for f in /proc/$$/fd/*; do readlink "$f"; done | grep -c 'net:\|user:\|mnt:\|socket:')"
"#;

fn assert_no_escape(stdout: &str) {
    for name in [
        "setns-net-init",
        "setns-net-vault-run",
        "umount",
        "remount",
        "umount-after-unshare",
        "remount-after-unshare",
    ] {
        let line = stdout
            .lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("{name}:\n{stdout}"));
        assert!(!line.ends_with(" ok"), "the child could {name}:\n{stdout}");
    }
    assert!(stdout.contains("lo-down refused"), "{stdout}");
    // vault-run's namespace descriptors and sockets stay its own (close-on-exec).
    assert!(stdout.contains("inherited-namespaces-or-sockets 0"), "{stdout}");
}

#[tokio::test]
async fn the_child_cannot_undo_the_sandbox() {
    let s = setup().await;
    let (out, stdout, stderr) = s.run("", ESCAPES);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert_no_escape(&stdout);
}

/// The test's directory and files (root's), readable by `nobody` (the tests run as root).
fn open_to_nobody(dir: &std::path::Path) {
    for entry in std::fs::read_dir(dir).unwrap() {
        std::fs::set_permissions(entry.unwrap().path(), std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[tokio::test]
async fn works_unprivileged_and_the_child_holds_no_capability() {
    if !common::require(
        nix::unistd::Uid::effective().is_root() && which("setpriv"),
        "root and setpriv (to run vault-run as nobody)",
    ) {
        return;
    }
    let s = setup().await;
    open_to_nobody(s.dir.path());
    let script = format!(
        "id -u\ncurl --noproxy '*' -sS --fail-with-body -H \"Authorization: Bearer $API_KEY\" https://{HOST}/nobody\n{ESCAPES}"
    );
    let mut cmd = vault_run(&s.dev, s.dir.path());
    let mut setpriv = Command::new("setpriv");
    setpriv
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", common::bin()])
        .current_dir(s.dir.path());
    setpriv.envs(cmd.get_envs().filter_map(|(k, v)| Some((k.to_owned(), v?.to_owned()))));
    for (k, v) in cmd.get_envs() {
        if v.is_none() {
            setpriv.env_remove(k);
        }
    }
    let _ = &mut cmd;
    setpriv.arg("--sandbox").args(s.up.flags()).args(["--", "sh", "-c", &script]);
    let out = output_within(&mut setpriv, T);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{stdout}\n{}", stderr_of(&out));
    assert!(stdout.starts_with("65534\n"), "{stdout}");
    assert_eq!(s.up.at("/nobody"), vec![format!("Bearer {SECRET}")]);
    assert!(stdout.contains("CapEff:\t0000000000000000"), "{stdout}");
    assert_no_escape(&stdout);
}

#[tokio::test]
async fn works_with_user_and_as_pid_1() {
    if !common::require(nix::unistd::Uid::effective().is_root() && which("unshare"), "root and unshare") {
        return;
    }
    let s = setup().await;
    open_to_nobody(s.dir.path());
    let script = format!(
        "echo \"uid $(id -u)\"\ncurl --noproxy '*' -sS --fail-with-body -H \"Authorization: Bearer $API_KEY\" https://{HOST}/user\n"
    );
    let (out, stdout, stderr) = s.run("--user nobody", &script);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("uid 65534"), "{stdout}");
    assert_eq!(s.up.at("/user"), vec![format!("Bearer {SECRET}")]);

    // vault-run as PID 1 of a PID namespace (a container's entrypoint), with --mask.
    let mut cmd = vault_run(&s.dev, s.dir.path());
    let inner: Vec<String> = cmd.get_args().map(|a| a.to_string_lossy().into_owned()).collect();
    let mut unshare = Command::new("unshare");
    unshare.args(["--pid", "--fork", "--mount-proc", common::bin()]).args(inner).current_dir(s.dir.path());
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => unshare.env(k, v),
            None => unshare.env_remove(k),
        };
    }
    let _ = &mut cmd;
    let script = format!("echo \"parent $PPID\"\ncurl --noproxy '*' -sS --fail-with-body -H \"Authorization: Bearer $API_KEY\" https://{HOST}/pid1\n");
    unshare.args(["--sandbox", "--mask", "--supervise"]).args(s.up.flags()).args(["--", "sh", "-c", &script]);
    let out = output_within(&mut unshare, T);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{stdout}\n{}", stderr_of(&out));
    assert!(stdout.contains("parent 1\n"), "vault-run was not PID 1:\n{stdout}");
    assert_eq!(s.up.at("/pid1"), vec![format!("Bearer {SECRET}")]);
}

#[tokio::test]
async fn refused_namespaces_exit_78_before_fetching_with_the_way_out() {
    if !common::require(
        nix::unistd::Uid::effective().is_root(),
        "root (to make a user namespace that allows no other)",
    ) {
        return;
    }
    let s = setup().await;
    open_to_nobody(s.dir.path());
    let fixture = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/no_userns.py");
    let marker = s.dir.path().join("started");
    let mut cmd = Command::new("python3");
    cmd.args([fixture, "65534", common::bin(), "--sandbox"]).current_dir(s.dir.path());
    cmd.env("ASS_BASE_URL", &s.dev.base_url).env("ASS_AGENT_KEY", &s.dev.agent_key).env_remove("RUST_LOG");
    cmd.arg("--").args(common::marker_child(&marker));
    let out = output_within(&mut cmd, T);
    let stderr = stderr_of(&out);
    assert_eq!(out.status.code(), Some(78), "{stderr}");
    assert!(!marker.exists(), "the child ran");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line:\n{stderr}");
    let line = lines[0];
    for part in [
        "--sandbox",
        "refused the user namespace",
        "user.max_user_namespaces = 0",
        "sysctl",
        "as root",
        "CAP_SYS_ADMIN",
    ] {
        assert!(line.contains(part), "{part:?} missing in: {line}");
    }
    assert_eq!(s.dev.count("POST /v1/tokens").await, 0, "vault-run fetched before refusing");
}

/// Each vendor's official `lang` SDK, unchanged, under `--sandbox`: it calls the vendor's real
/// host name (resolved by the sandbox, captured or proxied, pinned to the stand-in), streams
/// its answer chunk by chunk with the real key upstream, and holds only the placeholder.
async fn sdks_stream_in_the_sandbox(lang: &str) {
    for vendor in &VENDORS {
        let dir = common::tmp();
        let dev = DevServer::with(&[(&vendor.path(), &vendor.key())]).await;
        let upstream = VendorUpstream::start(dir.path());
        std::fs::write(dir.path().join("vault-run.toml"), format!("[env]\n{}\n", vendor.mapping_line()))
            .unwrap();
        let client: Vec<String> = vendor.client(lang).iter().map(|w| format!("'{w}'")).collect();
        let script = format!("{} && env && tr '\\0' '\\n' < /proc/$$/environ", client.join(" "));
        let mut cmd = vault_run(&dev, dir.path());
        cmd.arg("--sandbox").arg("--deny-other-hosts").args(upstream.flags()).envs(upstream.client_env());
        let out = output_within(cmd.args(["--", "sh", "-c", &script]), T);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = stderr_of(&out);
        assert!(out.status.success(), "{lang} {}: {:?}\n{stdout}\n{stderr}", vendor.name, out.status);
        upstream.assert_streamed(vendor, &stdout);
        let key = vendor.key();
        assert!(
            !stdout.contains(&key) && !stderr.contains(&key),
            "{lang} {}: the real key reached the child",
            vendor.name
        );
        let held =
            stdout.lines().find_map(|l| l.strip_prefix(&format!("{}=", vendor.var))).unwrap_or_default();
        assert!(!held.is_empty() && held != key, "{}: the child held {held:?}", vendor.var);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn node_sdks_stream_in_the_sandbox_though_node_20_ignores_https_proxy() {
    if !common::require(
        node_sdks_dir().is_some() && which("node"),
        "node and the vendors' Node SDKs (scripts/test installs them)",
    ) {
        return;
    }
    sdks_stream_in_the_sandbox("node").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn python_sdks_stream_in_the_sandbox() {
    if !common::require(
        python_sdks_installed(),
        "the vendors' Python SDKs (pip install openai anthropic google-genai)",
    ) {
        return;
    }
    sdks_stream_in_the_sandbox("python").await;
}

#[tokio::test]
async fn as_root_without_user_namespaces_the_child_gives_up_every_capability() {
    if !common::require(
        nix::unistd::Uid::effective().is_root(),
        "root (to make a user namespace that allows no other)",
    ) {
        return;
    }
    let s = setup().await;
    let fixture = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/no_userns.py");
    let script = format!(
        "id -u\ncurl --noproxy '*' -sS --fail-with-body -H \"Authorization: Bearer $API_KEY\" https://{HOST}/direct\n{}{ESCAPES}",
        raw_connects(&[("127.0.0.1", s.dev_port)])
    );
    let mut cmd = Command::new("python3");
    cmd.args([fixture, "0", common::bin(), "--sandbox"]).args(s.up.flags()).current_dir(s.dir.path());
    cmd.env("ASS_BASE_URL", &s.dev.base_url).env("ASS_AGENT_KEY", &s.dev.agent_key).env_remove("RUST_LOG");
    let out = output_within(cmd.args(["--", "sh", "-c", &script]), T);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{stdout}\n{}", stderr_of(&out));
    assert!(stdout.starts_with("0\n"), "{stdout}");
    assert_eq!(s.up.at("/direct"), vec![format!("Bearer {SECRET}")]);
    assert_eq!(raw(&stdout, &format!("127.0.0.1:{}", s.dev_port)), "ECONNREFUSED");
    assert!(stdout.contains("CapEff:\t0000000000000000"), "{stdout}");
    assert_no_escape(&stdout);
}

#[tokio::test]
async fn the_resolver_answers_over_tcp_too() {
    let s = setup().await;
    // A DNS query for HOST over TCP (RFC 1035 §4.2.2), straight to the sandbox's resolver.
    let script = format!(
        r#"python3 - <<'PY'
import socket, struct
name = b"".join(bytes([len(p)]) + p for p in b"{HOST}".split(b".")) + b"\0"
q = struct.pack(">HHHHHH", 0x1234, 0x0100, 1, 0, 0, 0) + name + struct.pack(">HH", 1, 1)
s = socket.create_connection(("127.0.0.1", 53), timeout=5)
s.sendall(struct.pack(">H", len(q)) + q)
n = struct.unpack(">H", s.recv(2))[0]
r = b""
while len(r) < n:
    r += s.recv(n - len(r))
ident, flags, _, answers = struct.unpack(">HHHH", r[:8])
print("tcp-dns", hex(ident), flags & 0xF, answers, ".".join(str(b) for b in r[-4:]))
PY
"#
    );
    let (out, stdout, stderr) = s.run("--deny-other-hosts", &script);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("tcp-dns 0x1234 0 1 127.0.0.1"), "{stdout}");
}

#[tokio::test]
async fn on_a_terminal_and_with_watch_the_child_stays_in_the_sandbox() {
    if !common::require(which("script"), "script (util-linux), for a terminal") {
        return;
    }
    let s = setup().await;
    // A pseudo-terminal for vault-run (script), --mask (so a pty for the child) and --watch.
    let inner = format!(
        "{} --sandbox --mask --watch --watch-interval 1s {} -- sh -c 'test -t 1 && echo on-a-tty; getent hosts {HOST}; cat /proc/net/dev | grep -c :'",
        common::bin(),
        s.up.flags().join(" ")
    );
    let mut cmd = vault_run(&s.dev, s.dir.path());
    let mut script = Command::new("script");
    script.args(["-qec", &inner, "/dev/null"]).current_dir(s.dir.path());
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => script.env(k, v),
            None => script.env_remove(k),
        };
    }
    let _ = &mut cmd;
    let out = output_within(&mut script, T);
    let stdout = String::from_utf8_lossy(&out.stdout).replace('\r', "");
    assert!(out.status.success(), "{stdout}\n{}", stderr_of(&out));
    assert!(stdout.contains("on-a-tty"), "{stdout}");
    assert!(stdout.contains(&format!("127.0.0.1       {HOST}")), "{stdout}");
    // Only the loopback interface in /proc/net/dev.
    assert!(stdout.lines().any(|l| l.trim() == "1"), "{stdout}");
}

#[tokio::test]
async fn without_sandbox_agent_safe_mode_says_it_is_advisory() {
    let s = setup().await;
    let mut cmd = vault_run(&s.dev, s.dir.path());
    let out = output_within(cmd.args(s.up.flags()).args(["-v", "--", "true"]), T);
    let stderr = stderr_of(&out);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(stderr.matches("advisory without --sandbox").count(), 1, "{stderr}");
    let mut check = vault_run(&s.dev, s.dir.path());
    let out = output_within(check.arg("check"), T);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{stdout}\n{}", stderr_of(&out));
    assert!(stdout.contains("advisory without --sandbox"), "{stdout}");
    let mut check = vault_run(&s.dev, s.dir.path());
    let out = output_within(check.args(["check", "--sandbox"]), T);
    assert!(out.status.success(), "{out:?}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("advisory"), "{out:?}");
}

#[tokio::test]
async fn a_watch_restart_starts_the_new_child_in_the_sandbox_too() {
    let s = setup().await;
    s.dev.put("production/app/PLAIN", "v1").await;
    let mut cmd = vault_run(&s.dev, s.dir.path());
    cmd.args(["--sandbox", "--watch", "--watch-interval", "1s", "-e", "PLAIN=production/app/PLAIN"])
        .args(s.up.flags());
    cmd.args([
        "--",
        "sh",
        "-c",
        "echo \"start $PLAIN $(grep -c : /proc/net/dev) $(getent hosts anything.test)\"; exec sleep 60",
    ]);
    let mut run = common::Running::start(&mut cmd);
    let first = run.expect(|l| l.starts_with("start v1"), T);
    s.dev.put("production/app/PLAIN", "v2").await;
    let second = run.expect(|l| l.starts_with("start v2"), T);
    for line in [first, second] {
        assert!(line.ends_with(" 1 127.0.0.1       anything.test"), "not in the sandbox: {line}");
    }
    run.signal(nix::sys::signal::Signal::SIGTERM);
    run.wait(T);
}

#[tokio::test]
async fn as_root_in_a_container_user_namespace_the_nested_namespaces_map_only_its_ids() {
    if !common::require(
        nix::unistd::Uid::effective().is_root(),
        "root (to make a container-like user namespace)",
    ) {
        return;
    }
    let s = setup().await;
    open_to_nobody(s.dir.path());
    let fixture = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/no_userns.py");
    let script = format!(
        "cat /proc/self/uid_map\ncurl --noproxy '*' -sS --fail-with-body -H \"Authorization: Bearer $API_KEY\" https://{HOST}/container\n{ESCAPES}"
    );
    let mut cmd = Command::new("python3");
    cmd.args([fixture, "--allow-nested", "0", common::bin(), "--sandbox", "--user", "nobody"])
        .args(s.up.flags());
    cmd.current_dir(s.dir.path()).env("ASS_BASE_URL", &s.dev.base_url).env("ASS_AGENT_KEY", &s.dev.agent_key);
    let out = output_within(cmd.env_remove("RUST_LOG").args(["--", "sh", "-c", &script]), T);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{stdout}\n{}", stderr_of(&out));
    let map: Vec<&str> = stdout.lines().next().unwrap_or_default().split_whitespace().collect();
    assert_eq!(map, ["0", "0", "65536"], "{stdout}");
    assert_eq!(s.up.at("/container"), vec![format!("Bearer {SECRET}")]);
    assert_no_escape(&stdout);
}
