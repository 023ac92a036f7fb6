//! Test harness: real processes on loopback. Each test starts its own dev server.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

pub mod aws;
pub mod bao;
pub mod bao_cluster;
pub mod test_ca;
pub mod upstream;
pub mod vendors;

/// The vault-run binary under test.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_vault-run")
}

/// A `vault-run dev` process, killed on drop.
pub struct DevServer {
    pub child: Child,
    pub base_url: String,
    pub agent_key: String,
    pub admin_key: String,
    stderr: Arc<Mutex<String>>,
    /// A plain client (15 s timeout) for requests a test makes itself.
    pub http: reqwest::Client,
}

impl DevServer {
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    pub fn start_with(args: &[&str]) -> Self {
        let mut child = Command::new(bin())
            .args(["dev", "--listen", "127.0.0.1:0"])
            .args(args)
            // Its log level is the test's to choose (with -v), not the environment's.
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start vault-run dev");
        let stderr = collect(child.stderr.take().unwrap());
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut get = |prefix: &str| {
            let line = lines
                .next()
                .unwrap_or_else(|| panic!("dev server exited; stderr: {}", stderr.lock().unwrap()))
                .unwrap();
            line.strip_prefix(prefix).unwrap_or_else(|| panic!("expected {prefix}, got {line}")).to_owned()
        };
        let base_url = get("ASS_BASE_URL=");
        let agent_key = get("ASS_AGENT_KEY=");
        let admin_key = get("ASS_ADMIN_KEY=");
        std::thread::spawn(move || for _ in lines.by_ref() {});
        // Idle connections are dropped before the server's 10 s header timeout closes them: a
        // test that blocks its runtime would not see that close and would reuse a dead socket.
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(15))
            .pool_idle_timeout(Duration::from_secs(5))
            .build()
            .unwrap();
        Self { child, base_url, agent_key, admin_key, stderr, http }
    }

    /// A server holding `pairs` (path, value), written with the admin key.
    pub async fn with(pairs: &[(&str, &str)]) -> Self {
        let dev = Self::start();
        for (p, v) in pairs {
            dev.put(p, v).await;
        }
        dev
    }

    /// Everything the server wrote to stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// An admin-key request; returns (status, JSON body or Null).
    pub async fn admin(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = self
            .http
            .request(method.parse().unwrap(), format!("{}{path}", self.base_url))
            .bearer_auth(&self.admin_key);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("admin request");
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// Writes a secret with the admin key.
    pub async fn put(&self, path: &str, value: &str) {
        self.put_tier(path, value, "standard").await;
    }

    pub async fn put_tier(&self, path: &str, value: &str, tier: &str) {
        let (status, body) = self
            .admin("PUT", &format!("/v1/secrets/{path}"), Some(json!({"value": value, "access_tier": tier})))
            .await;
        assert!(status == 200 || status == 201, "put {path}: {status} {body}");
    }

    pub async fn approve(&self, id: &str) {
        let (status, body) = self.admin("POST", &format!("/v1/approvals/{id}/approve"), None).await;
        assert_eq!(status, 200, "approve: {body}");
    }

    pub async fn deny(&self, id: &str, reason: &str) {
        let (status, body) =
            self.admin("POST", &format!("/v1/approvals/{id}/deny"), Some(json!({ "reason": reason }))).await;
        assert_eq!(status, 200, "deny: {body}");
    }

    /// Pending approval ids.
    pub async fn pending(&self) -> Vec<String> {
        let (_, body) = self.admin("GET", "/v1/approvals?status=pending", None).await;
        let items = body.get("items").or(Some(&body)).and_then(Value::as_array).cloned().unwrap_or_default();
        items.iter().filter_map(|a| a["id"].as_str().map(str::to_owned)).collect()
    }

    /// Waits for a pending approval to appear.
    pub async fn wait_pending(&self) -> String {
        let start = Instant::now();
        loop {
            if let Some(id) = self.pending().await.into_iter().next() {
                return id;
            }
            assert!(start.elapsed() < Duration::from_secs(20), "no approval appeared");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn faults(&self, knobs: Value) {
        let (status, body) = self.admin("PUT", "/v1/dev/faults", Some(knobs)).await;
        assert_eq!(status, 200, "faults: {body}");
    }

    pub async fn stats(&self) -> Value {
        self.admin("GET", "/v1/dev/stats", None).await.1
    }

    /// Requests per "METHOD /route" from the server's counters.
    pub async fn count(&self, route: &str) -> u64 {
        let stats = self.stats().await;
        stats["requests"][route].as_u64().unwrap_or(0)
    }

    /// Creates an agent with `scopes`; returns its key.
    pub async fn agent(&self, name: &str, scopes: &[&str]) -> String {
        let (status, body) =
            self.admin("POST", "/v1/agents", Some(json!({"name": name, "allowed_scopes": scopes}))).await;
        assert!(status == 200 || status == 201, "create agent: {status} {body}");
        body["api_key"].as_str().unwrap().to_owned()
    }
}

impl Drop for DevServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Everything `pipe` yields, gathered by a thread into a string that grows as it is written.
pub fn collect(mut pipe: impl Read + Send + 'static) -> Arc<Mutex<String>> {
    let text = Arc::new(Mutex::new(String::new()));
    let sink = text.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = pipe.read(&mut buf) {
            if n == 0 {
                break;
            }
            sink.lock().unwrap().push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    text
}

/// A one-trick HTTP server on loopback: answers every connection with `response` (raw bytes,
/// headers included) after reading the request head. For answers the dev server cannot give.
pub fn raw_server(response: Vec<u8>) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let response = response.clone();
            std::thread::spawn(move || {
                use std::io::Write;
                if read_head(&mut stream).is_none() {
                    return;
                }
                let _ = stream.write_all(&response);
                let _ = stream.flush();
            });
        }
    });
    format!("http://{addr}")
}

/// Reads an HTTP request head byte by byte (nothing past it); `None` if the peer hung up first
/// or sent more than 64 KiB without ending it.
pub fn read_head(stream: &mut impl Read) -> Option<Vec<u8>> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => return None,
        }
        if head.len() > 64 * 1024 {
            return None;
        }
    }
    Some(head)
}

/// An HTTP response with a JSON body.
pub fn http_json(status: &str, body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// A `vault-run` command pointed at `dev`, in a fresh working directory, with no ambient
/// vault-run, Agent Secret Store or Vault variables.
pub fn vault_run(dev: &DevServer, dir: &std::path::Path) -> Command {
    let mut c = bare_vault_run(dir);
    c.env("ASS_BASE_URL", &dev.base_url).env("ASS_AGENT_KEY", &dev.agent_key);
    c
}

/// A `vault-run` command with no credentials at all.
pub fn bare_vault_run(dir: &std::path::Path) -> Command {
    let mut c = Command::new(bin());
    c.current_dir(dir).stdin(Stdio::null());
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy();
        if k.starts_with("ASS_")
            || k.starts_with("VAULT_")
            || k.starts_with("BAO_")
            || k.starts_with("AWS_")
            || k == "CREDENTIALS_DIRECTORY"
            || k == "NOTIFY_SOCKET"
        {
            c.env_remove(&*k);
        }
    }
    c
}

/// Asserts each `(name, value)` is in the child's environment with exactly that value (a missing
/// name fails like indexing the map would).
pub fn assert_env(env: &std::collections::HashMap<String, String>, expected: &[(&str, &str)]) {
    for (name, value) in expected {
        let got = env.get(*name).unwrap_or_else(|| panic!("{name} is not in the child's environment"));
        assert_eq!(got, value, "{name}");
    }
}

/// Runs `vault-run` with no credentials but `env`, in `dir`, with the argument line `args`
/// (see [`words`]), bounded by [`T`]: its output and its stderr.
pub fn run_bare_with(
    dir: &std::path::Path,
    env: &[(&str, &str)],
    args: &str,
) -> (std::process::Output, String) {
    let out = output_within(bare_vault_run(dir).envs(env.iter().copied()).args(words(args)), T);
    let err = stderr_of(&out);
    (out, err)
}

/// Parses `env -0` output into a map.
pub fn env_of(stdout: &[u8]) -> std::collections::HashMap<String, String> {
    stdout
        .split(|&b| b == 0)
        .filter(|e| !e.is_empty())
        .filter_map(|e| {
            let s = String::from_utf8_lossy(e);
            let (k, v) = s.split_once('=')?;
            Some((k.to_owned(), v.to_owned()))
        })
        .collect()
}

/// Runs `cmd` with a bound on its run time; panics if it hangs.
pub fn output_within(cmd: &mut Command, limit: Duration) -> std::process::Output {
    let child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn vault-run");
    output_of_within(child, limit)
}

/// Stdout as text.
pub fn stdout_of(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Stderr as text.
pub fn stderr_of(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Waits for `child` at most `limit`; kills it and panics if it is still running then, so no
/// test can hang on a process.
pub fn wait_within(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(s) = child.try_wait().expect("wait for a child process") {
            return s;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("process {} did not exit within {limit:?}", child.id());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Whether the tests run under CI (`CI` set to anything but empty, `0` or `false`).
pub fn under_ci() -> bool {
    std::env::var("CI").map(|v| !v.is_empty() && v != "0" && v != "false").unwrap_or(false)
}

/// The one skip rule for tests that need something outside cargo (a tool, a kernel feature):
/// under CI a missing requirement fails the test; elsewhere the test is skipped with a line
/// saying why. Returns whether the test should go on.
pub fn require(available: bool, what: &str) -> bool {
    if available {
        return true;
    }
    assert!(!under_ci(), "{what} is required under CI (scripts/test installs what it can)");
    eprintln!("SKIPPED (not under CI): {what} is not available");
    false
}

/// Whether `tool` runs (`tool --version` or `tool version` exits 0).
pub fn tool_runs(tool: &str) -> bool {
    ["--version", "version"].iter().any(|arg| {
        Command::new(tool)
            .arg(arg)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .is_ok_and(|mut c| wait_within(&mut c, Duration::from_secs(30)).success())
    })
}

/// Starts `python3 tests/fixtures/SCRIPT ARG`; the process and the URL it prints on its first line.
fn python_fixture(script: &str, arg: &std::ffi::OsStr) -> (Child, String) {
    let path = format!("{}/tests/fixtures/{script}", env!("CARGO_MANIFEST_DIR"));
    let mut child = Command::new("python3")
        .arg(&path)
        .arg(arg)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("start python3 {path}: {e}"));
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    assert!(line.starts_with("http://127.0.0.1:"), "{script} did not start: {line:?}");
    (child, line.trim().to_owned())
}

/// `tests/fixtures/recording_ass.py`: an Agent Secret Store written apart from the dev server,
/// with per-path failures, that records token scopes, ttl and the credential on every request.
/// Killed on drop.
pub struct RecordingServer {
    child: Child,
    pub base_url: String,
    pub agent_key: String,
    _config: tempfile::NamedTempFile,
}

impl RecordingServer {
    pub fn start(config: Value) -> Self {
        use std::io::Write;
        let mut config = config;
        let agent_key = "ass_rec_agent_key_0123456789".to_owned();
        config["agent_key"] = json!(agent_key);
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(config.to_string().as_bytes()).unwrap();
        let (child, base_url) = python_fixture("recording_ass.py", file.path().as_os_str());
        Self { child, base_url, agent_key, _config: file }
    }

    /// What the server recorded so far (see the script's docstring).
    pub fn log(&self) -> Value {
        get_json(&self.base_url, "/_log")
    }

    /// How many requests went to `path` so far.
    pub fn requests_to(&self, path: &str) -> usize {
        let log = self.log();
        log["requests"].as_array().unwrap().iter().filter(|r| r["path"] == path).count()
    }

    /// A `vault-run` command pointed at this server.
    pub fn vault_run(&self, dir: &std::path::Path) -> Command {
        let mut c = bare_vault_run(dir);
        c.env("ASS_BASE_URL", &self.base_url).env("ASS_AGENT_KEY", &self.agent_key);
        c
    }
}

impl Drop for RecordingServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A command line that proves whether the child ran: it creates `marker`. Use with
/// `assert_not_started`.
pub fn marker_child(marker: &std::path::Path) -> Vec<String> {
    vec!["sh".into(), "-c".into(), format!("touch '{}'", marker.display())]
}

/// The run ended with `code` and the child never ran.
pub fn assert_not_started(out: &std::process::Output, code: i32, marker: &std::path::Path) {
    let err = stderr_of(out);
    assert_eq!(out.status.code(), Some(code), "exit code; stderr: {err}");
    assert!(!marker.exists(), "the child was started; stderr: {err}");
}

/// `Child::wait_with_output` with a bound: panics (after killing it) if `child` runs longer.
pub fn output_of_within(mut child: Child, limit: Duration) -> std::process::Output {
    let out = child.stdout.take().map(drain);
    let err = child.stderr.take().map(drain);
    let status = wait_within(&mut child, limit);
    let bytes =
        |t: Option<std::thread::JoinHandle<Vec<u8>>>| t.map(|t| t.join().unwrap()).unwrap_or_default();
    std::process::Output { status, stdout: bytes(out), stderr: bytes(err) }
}

/// Reads `r` on a thread to its end, or to its first error (a pty master answers EIO once every
/// slave descriptor is closed); the bytes read.
pub fn drain(mut r: impl Read + Send + 'static) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = r.read_to_end(&mut v);
        v
    })
}

/// `Command::status` with a bound (output discarded unless the caller set it).
pub fn status_within(cmd: &mut Command, limit: Duration) -> std::process::ExitStatus {
    let mut child = cmd.spawn().expect("spawn");
    wait_within(&mut child, limit)
}

/// `GET base/path` over plain HTTP on loopback, as JSON (for the fixtures' `/_log`).
pub fn get_json(base_url: &str, path: &str) -> Value {
    use std::io::Write;
    let addr = base_url.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(addr).expect("connect to the test server");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).expect("read the answer");
    let body = text.split_once("\r\n\r\n").expect("HTTP response").1;
    serde_json::from_str(body).expect("JSON")
}

/// `tests/fixtures/recording_proxy.py` in front of `upstream`: records every request and
/// answer. Killed on drop.
pub struct RecordingProxy {
    child: Child,
    pub url: String,
}

impl RecordingProxy {
    pub fn start(upstream: &str) -> Self {
        let (child, url) = python_fixture("recording_proxy.py", upstream.as_ref());
        Self { child, url }
    }

    /// Every request so far, oldest first.
    pub fn log(&self) -> Vec<Value> {
        get_json(&self.url, "/_log").as_array().cloned().unwrap_or_default()
    }
}

impl Drop for RecordingProxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A running vault-run whose stdout lines arrive on a channel; killed on drop.
pub struct Running {
    pub child: Child,
    /// Stdout lines not taken yet.
    pub lines: std::sync::mpsc::Receiver<String>,
    stderr: Arc<Mutex<String>>,
    /// Every stdout line taken so far.
    pub seen: Vec<String>,
}

impl Running {
    pub fn start(cmd: &mut Command) -> Self {
        let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn vault-run");
        let (tx, lines) = std::sync::mpsc::channel();
        let out = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        let stderr = collect(child.stderr.take().unwrap());
        Self { child, lines, stderr, seen: Vec::new() }
    }

    pub fn pid(&self) -> nix::unistd::Pid {
        nix::unistd::Pid::from_raw(self.child.id() as i32)
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// The next stdout line, within `limit`.
    pub fn next(&mut self, limit: Duration) -> String {
        let line = self
            .lines
            .recv_timeout(limit)
            .unwrap_or_else(|_| panic!("no line within {limit:?}; stderr: {}", self.stderr()));
        self.seen.push(line.clone());
        line
    }

    /// Waits for a stdout line satisfying `want`; panics with what was seen after `limit`.
    pub fn expect(&mut self, want: impl Fn(&str) -> bool, limit: Duration) -> String {
        let until = Instant::now() + limit;
        loop {
            let left = until.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if want(&line) {
                        return line;
                    }
                }
                Err(_) => {
                    panic!("no expected line; stdout so far: {:?}; stderr: {}", self.seen, self.stderr())
                }
            }
        }
    }

    /// Waits (60 s at most) until vault-run's stderr holds `needle`: stderr is read by its own
    /// thread, so a log line written just before a stdout line may arrive after it.
    pub fn stderr_shows(&self, needle: &str) {
        let until = Instant::now() + Duration::from_secs(60);
        while !self.stderr().contains(needle) {
            assert!(Instant::now() < until, "stderr never showed {needle:?}: {}", self.stderr());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits (60 s at most: a loaded machine is slow) for the line `exact`.
    pub fn line(&mut self, exact: &str) {
        self.expect(|l| l == exact, Duration::from_secs(60));
    }

    pub fn signal(&self, s: nix::sys::signal::Signal) {
        nix::sys::signal::kill(self.pid(), s).unwrap();
    }

    /// Waits for vault-run to exit; panics with its stderr after `limit`.
    pub fn wait(&mut self, limit: Duration) -> std::process::ExitStatus {
        let until = Instant::now() + limit;
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            assert!(Instant::now() < until, "vault-run did not exit; stderr: {}", self.stderr());
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Remaining stdout lines until EOF.
    pub fn rest(&mut self) -> Vec<String> {
        let mut v = Vec::new();
        while let Ok(l) = self.lines.recv_timeout(Duration::from_secs(10)) {
            v.push(l);
        }
        v
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The bound on one vault-run run in tests: generous, for a loaded machine.
pub const T: Duration = Duration::from_secs(60);

/// A fresh temporary directory, removed on drop.
pub fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

/// Writes `text` to `dir/name` (creating folders on the way); its path.
pub fn write(dir: &std::path::Path, name: &str, text: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    if let Some(parent) = p.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(&p, text).unwrap();
    p
}

/// An argument list written as one line: `words("-e A=production/app/A -- env -0")`. For
/// arguments without spaces; a script goes after it with `.arg(script)`.
pub fn words(line: &str) -> Vec<&str> {
    line.split_whitespace().collect()
}

/// Runs `cmd` (bounded by [`T`]), which must succeed, and parses its `env -0` output.
pub fn env_after(cmd: &mut Command) -> std::collections::HashMap<String, String> {
    output_and_env(cmd).1
}

/// [`env_after`], keeping the output too (for its stderr).
pub fn output_and_env(
    cmd: &mut Command,
) -> (std::process::Output, std::collections::HashMap<String, String>) {
    let out = output_within(cmd, T);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let env = env_of(&out.stdout);
    (out, env)
}

/// Runs `cmd` with a child that would leave a marker appended: it must end with `code` (within
/// [`T`]) and the child must never have started. Its output.
pub fn refused_before_start(cmd: &mut Command, code: i32) -> std::process::Output {
    let dir = tmp();
    let marker = dir.path().join("started");
    let out = output_within(cmd.args(marker_child(&marker)), T);
    assert_not_started(&out, code, &marker);
    out
}

/// Runs `args` on a fresh pseudo-terminal (its stdin, stdout and stderr, and controlling
/// terminal, as in an interactive shell); once `ready` appears, types `keys`; returns everything
/// the terminal showed and the exit code.
pub fn on_a_terminal(args: &[&str], envs: &[(&str, &str)], ready: &str, keys: &[u8]) -> (String, i32) {
    let harness = r#"
import os, pty, sys, time, json, select
args, ready, keys = json.loads(sys.argv[1]), sys.argv[2].encode(), bytes.fromhex(sys.argv[3])
pid, fd = pty.fork()
if pid == 0:
    os.execvp(args[0], args)
out = b""
sent = False
deadline = time.time() + 30
while time.time() < deadline:
    r, _, _ = select.select([fd], [], [], 0.1)
    if r:
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    if not sent and ready in out:
        time.sleep(0.2)
        os.write(fd, keys)
        sent = True
_, status = os.waitpid(pid, 0)
sys.stdout.write(out.decode(errors="replace"))
sys.exit(os.waitstatus_to_exitcode(status) & 0xff)
"#;
    let mut cmd = Command::new("python3");
    cmd.args(["-c", harness, &serde_json::to_string(args).unwrap(), ready])
        .arg(keys.iter().map(|b| format!("{b:02x}")).collect::<String>());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let out = output_within(&mut cmd, T);
    (String::from_utf8_lossy(&out.stdout).into_owned(), out.status.code().unwrap_or(-1))
}

/// The official JS SDK's CommonJS entry (`scripts/test` installs it into `target/js-sdk` and
/// exports `JS_SDK_DIR`), and `node` to run it; `None` (a skip) only outside CI.
pub fn js_sdk() -> Option<std::path::PathBuf> {
    let dir = std::env::var_os("JS_SDK_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/js-sdk"));
    let sdk = dir.join("node_modules/@agentsecretstore/sdk/dist/index.cjs");
    let ok = require(tool_runs("node"), "node (scripts/test installs it)")
        && require(sdk.exists(), "the official JS SDK (scripts/test installs it into target/js-sdk)");
    ok.then_some(sdk)
}

/// A listener standing in for an attacker's server; `connected` tells whether anyone came.
pub struct Trap(std::net::TcpListener);

impl Trap {
    pub fn new() -> Self {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.set_nonblocking(true).unwrap();
        Self(l)
    }

    /// `http://ADDR` of the listener.
    pub fn url(&self) -> String {
        format!("http://{}", self.0.local_addr().unwrap())
    }

    /// Whether a connection came (and was taken) since the last call.
    pub fn connected(&self) -> bool {
        match self.0.accept() {
            Ok(_) => true,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => false,
            Err(e) => panic!("accept: {e}"),
        }
    }
}

/// Whether the test runs as root; when not, says on stderr what cannot be exercised, so the
/// early return is visible in the output.
pub fn is_root_else_say(what_cannot_run: &str) -> bool {
    let root = nix::unistd::Uid::effective().is_root();
    if !root {
        eprintln!("not root: {what_cannot_run}");
    }
    root
}

/// As root only: a dev server holding `production/app/A` and a fresh directory to run in.
pub async fn as_root_with_a_secret(what_cannot_run: &str) -> Option<(DevServer, tempfile::TempDir)> {
    if !is_root_else_say(what_cannot_run) {
        return None;
    }
    Some((DevServer::with(&[("production/app/A", "value-a-0001")]).await, tmp()))
}

/// A directory (0755) holding the dev server's agent key as `ass-agent-key` (0600), as systemd's
/// `LoadCredential=` leaves it in `CREDENTIALS_DIRECTORY`.
pub fn credentials_dir(dev: &DevServer) -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let dir = tmp();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let key = write(dir.path(), "ass-agent-key", &dev.agent_key);
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    dir
}

/// vault-run in `work`, with the agent key only in the credentials directory `creds`.
pub fn key_from_credentials(dev: &DevServer, work: &std::path::Path, creds: &std::path::Path) -> Command {
    let mut c = bare_vault_run(work);
    c.env("ASS_BASE_URL", &dev.base_url).env("CREDENTIALS_DIRECTORY", creds);
    c
}

/// A dev server with a log level and a dev and a prod password (for `${VAR}` profiles).
pub async fn seeded_profiles() -> DevServer {
    DevServer::with(&[
        ("production/app/LOG_LEVEL", "debug-0001"),
        ("production/dev/PASSWORD", "dev-pass-0002"),
        ("production/prod/PASSWORD", "prod-pass-0003"),
    ])
    .await
}

/// [`seeded_profiles`] and a fresh directory holding the file `name` with `text`.
pub async fn seeded_profiles_with(name: &str, text: &str) -> (DevServer, tempfile::TempDir) {
    let dev = seeded_profiles().await;
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), name, text);
    (dev, dir)
}

/// Every request the dev server has counted, by route.
pub async fn requests(dev: &DevServer) -> Value {
    dev.stats().await["requests"].clone()
}
