//! Leaks: no secret value, agent key or token in vault-run's or the dev server's output (at
//! `-vvv`, text and JSON), in argv, on disk, in the child's environment (key and token), or in
//! a core file; and while vault-run holds secrets other same-uid processes cannot read its
//! memory or environment.

mod common;

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{bare_vault_run, output_within, stderr_of, vault_run, DevServer};
use common::{tmp, write, T};
use serde_json::json;

/// Every value stored in the dev server by these tests: none may show up where it should not.
const SECRETS: [(&str, &str); 5] = [
    ("leak/app/API_KEY", "canary-api-key-5a1f9c"),
    ("leak/db/PASSWORD", "canary-db-pass-77e0b2"),
    ("leak/tls/KEY", "canary-tls-key-c3d4e5"),
    ("leak/stripe/SECRET", "canary-stripe-sk-0b9d"),
    ("leak/stripe/PUBLIC", "canary-stripe-pk-81aa"),
];

const MAPPING: &str = r#"
[env]
API_KEY      = "leak/app/API_KEY"
DATABASE_URL = { template = "postgres://app:{{ leak/db/PASSWORD }}@db/app" }
TLS_KEY_FILE = { path = "leak/tls/KEY", as = "file" }
OPTIONAL     = { path = "leak/app/NOPE", optional = true }
"STRIPE_*"   = "leak/stripe/*"
"#;

async fn seeded(args: &[&str]) -> DevServer {
    let dev = DevServer::start_with(args);
    for (path, value) in SECRETS {
        dev.put(path, value).await;
    }
    dev.put_tier("leak/pay/KEY", "canary-sensitive-pay-42", "sensitive").await;
    dev
}

/// A scoped token of the dev server's own making, to learn the shape of tokens (their prefix):
/// vault-run's token is never shown to the test, so its shape is what is searched for.
async fn token_prefix(dev: &DevServer) -> String {
    let resp: serde_json::Value = reqwest::Client::new()
        .post(format!("{}/v1/tokens", dev.base_url))
        .bearer_auth(&dev.agent_key)
        .json(&json!({"scopes": ["secrets:read:leak/app/API_KEY"], "ttl": "1m"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = resp["token"].as_str().expect("a token").to_owned();
    let cut = token.find('_').expect("tokens have a prefix") + 1;
    assert!(token.len() > cut + 16, "{token}");
    token[..cut].to_owned()
}

/// Whether `text` holds `prefix` followed by at least 16 characters of a credential body.
fn has_credential_shape(text: &str, prefix: &str) -> Option<String> {
    let mut from = 0;
    while let Some(i) = text[from..].find(prefix) {
        let start = from + i;
        let body: String = text[start + prefix.len()..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
            .collect();
        if body.len() >= 16 {
            return Some(format!("{prefix}{body}"));
        }
        from = start + prefix.len();
    }
    None
}

/// No secret value, no agent key, no admin key and nothing shaped like a token in `text`.
#[track_caller]
fn assert_clean(what: &str, text: &str, dev: &DevServer, token_prefix: &str) {
    for (_, value) in SECRETS {
        assert!(!text.contains(value), "{what}: secret {value} leaked:\n{text}");
    }
    assert!(!text.contains("canary-sensitive-pay-42"), "{what}: sensitive secret leaked:\n{text}");
    assert!(!text.contains(&dev.agent_key), "{what}: the agent key leaked:\n{text}");
    assert!(!text.contains(&dev.admin_key), "{what}: the admin key leaked:\n{text}");
    if let Some(t) = has_credential_shape(text, token_prefix) {
        panic!("{what}: something shaped like a token ({t}) leaked:\n{text}");
    }
    // The agent key's own shape, whatever key it is.
    let key_prefix = &dev.agent_key[..=dev.agent_key.find('_').unwrap()];
    if let Some(k) = has_credential_shape(text, key_prefix) {
        panic!("{what}: something shaped like an agent key ({k}) leaked:\n{text}");
    }
}

// ---------------------------------------------------------------------------------------------
// Logs and output.

#[tokio::test]
async fn logs_at_the_highest_verbosity_carry_no_secret_key_or_token() {
    let dev = seeded(&["-vv"]).await;
    let prefix = token_prefix(&dev).await;
    let narrow = dev.agent("narrow", &["secrets:read:public/*"]).await;
    let files = tmp();
    let mapping = write(files.path(), "vault-run.toml", MAPPING);
    let mapping = mapping.to_str().unwrap();

    let scenarios: Vec<(&str, Vec<&str>, Option<&str>, i32)> = vec![
        ("a run with every entry form", vec!["-f", mapping, "--", "true"], None, 0),
        ("check", vec!["check", "-f", mapping], None, 0),
        ("supervised", vec!["--supervise", "-f", mapping, "--", "true"], None, 0),
        ("masked", vec!["--mask", "-f", mapping, "--", "sh", "-c", "echo \"$API_KEY\""], None, 0),
        ("a missing secret", vec!["-e", "X=leak/app/NOPE", "--", "true"], None, 69),
        ("a denied scope", vec!["-f", mapping, "--", "true"], Some(narrow.as_str()), 77),
        (
            "a wrong key",
            vec!["-e", "X=leak/app/API_KEY", "--", "true"],
            Some("ass_0123456789abcdef0123456789abcdef"),
            77,
        ),
        (
            "an approval not waited for",
            vec!["--approval-timeout", "0", "-e", "P=leak/pay/KEY", "--", "true"],
            None,
            75,
        ),
        ("a command not found", vec!["-f", mapping, "--", "no-such-command-xyz"], None, 127),
    ];
    for format in ["json", "text"] {
        for (what, args, key, code) in &scenarios {
            let dir = tmp();
            let mut cmd = vault_run(&dev, dir.path());
            if let Some(k) = key {
                cmd.env("ASS_AGENT_KEY", k);
            }
            // A subcommand comes first (after options, `check` would be the command to run).
            let (sub, rest) = match args.split_first() {
                Some((&"check", rest)) => (Some("check"), rest),
                _ => (None, &args[..]),
            };
            let out = output_within(cmd.args(sub).args(["-vvv", "--log-format", format]).args(rest), T);
            assert_eq!(out.status.code(), Some(*code), "{what}: {}", stderr_of(&out));
            let err = stderr_of(&out);
            if format == "json" && *code == 0 && *what != "check" {
                assert!(err.lines().any(|l| l.starts_with('{')), "{what}: JSON log lines: {err}");
            }
            if *what == "masked" {
                assert!(String::from_utf8_lossy(&out.stdout).contains("[REDACTED"), "{what}: masked");
            }
            if *what != "check" && *what != "masked" {
                assert!(out.stdout.is_empty(), "{what}: vault-run itself prints nothing on stdout");
            }
            let all = format!("{}{err}", String::from_utf8_lossy(&out.stdout));
            assert_clean(&format!("{what} ({format})"), &all, &dev, &prefix);
            if let Some(k) = key {
                assert!(!all.contains(k), "{what}: the agent key given leaked: {all}");
            }
        }
    }
    // The dev server logged every request above at -vv: none of it may leak either.
    let server = dev.stderr();
    assert!(server.contains("POST /v1/tokens"), "the dev server logs requests: {server}");
    assert_clean("dev server stderr", &server, &dev, &prefix);
}

// ---------------------------------------------------------------------------------------------
// argv and environments.

fn proc_file(pid: u32, name: &str) -> Option<String> {
    std::fs::read(format!("/proc/{pid}/{name}")).ok().map(|b| String::from_utf8_lossy(&b).replace('\0', "\n"))
}

/// Spawns `cmd`, reads the first line of its stdout (the child's `$$`) and returns it with the
/// process.
fn spawn_reporting_pid(cmd: &mut Command) -> (Child, u32, BufReader<std::process::ChildStdout>) {
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let pid = line.trim().parse().unwrap_or_else(|_| panic!("child pid, got {line:?}"));
    (child, pid, out)
}

#[tokio::test]
async fn no_key_or_token_in_argv_or_the_childs_environment() {
    let dev = seeded(&[]).await;
    let prefix = token_prefix(&dev).await;
    let files = tmp();
    let key_file = write(files.path(), "agent.key", &dev.agent_key);
    std::fs::set_permissions(&key_file, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let mapping = write(files.path(), "vault-run.toml", MAPPING);
    let child_script = "echo $$; exec sleep 30";

    for mode in [None, Some("--supervise")] {
        for key_by_file in [false, true] {
            let dir = tmp();
            let mut cmd = vault_run(&dev, dir.path());
            if key_by_file {
                cmd.env_remove("ASS_AGENT_KEY").env("ASS_AGENT_KEY_FILE", &key_file);
            }
            cmd.args(["-f", mapping.to_str().unwrap()])
                .args(mode)
                .args(common::words("-- sh -c"))
                .arg(child_script);
            let vault_pid;
            let (mut proc, child_pid, _out) = {
                let spawned = spawn_reporting_pid(&mut cmd);
                vault_pid = spawned.0.id();
                spawned
            };
            let what = format!("{mode:?}, key by file: {key_by_file}");
            if mode.is_none() {
                assert_eq!(child_pid, vault_pid, "exec keeps the PID");
            } else {
                assert_ne!(child_pid, vault_pid, "supervised: a separate child");
                let argv = proc_file(vault_pid, "cmdline").unwrap();
                assert_clean(&format!("supervisor argv, {what}"), &argv, &dev, &prefix);
                let env = proc_file(vault_pid, "environ").unwrap();
                for (_, value) in SECRETS {
                    assert!(!env.contains(value), "{what}: the supervisor's environ holds no secret");
                }
                // The supervisor wipes the credential variables in its own initial environment
                // block before starting the child (README, "Secrets stay in the child").
                assert_clean(&format!("supervisor environ, {what}"), &env, &dev, &prefix);
            }
            // Read the child once it has settled into `sleep` (not in the middle of an exec).
            let start = Instant::now();
            while !proc_file(child_pid, "comm").is_some_and(|c| c.trim() == "sleep") {
                assert!(start.elapsed() < T, "{what}: the child never reached sleep");
                std::thread::sleep(Duration::from_millis(5));
            }
            let argv = proc_file(child_pid, "cmdline").unwrap();
            assert_clean(&format!("child argv, {what}"), &argv, &dev, &prefix);
            let env = proc_file(child_pid, "environ").unwrap();
            // The child holds its own secrets by design; never the key nor the token.
            assert!(env.contains("API_KEY=canary-api-key-5a1f9c"), "{what}: the child got its secret: {env}");
            assert!(!env.contains(&dev.agent_key), "{what}: the agent key is in the child's environ");
            assert!(!env.contains("ASS_AGENT_KEY"), "{what}: no credential variable in the child's environ");
            if let Some(t) = has_credential_shape(&env, &prefix) {
                panic!("{what}: a token ({t}) is in the child's environ");
            }
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(child_pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
            let _ = proc.kill();
            let _ = proc.wait();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Disk.

/// Every file and directory under `dir`.
fn entries(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            if e.file_type().unwrap().is_dir() {
                todo.push(e.path());
            }
            out.push(e.path());
        }
    }
    out
}

#[tokio::test]
async fn nothing_is_written_to_disk() {
    let dev = seeded(&[]).await;
    let files = tmp();
    let mapping = write(files.path(), "vault-run.toml", MAPPING);
    let mapping = mapping.to_str().unwrap();
    let (home, tmpdir, runtime, cwd) = (tmp(), tmp(), tmp(), tmp());
    let runs: Vec<(Vec<&str>, i32)> = vec![
        // The file delivery goes through a sealed memfd: the child reads it, nothing is on disk.
        (
            vec![
                "-f",
                mapping,
                "--",
                "sh",
                "-c",
                "test \"$(cat \"$TLS_KEY_FILE\")\" = canary-tls-key-c3d4e5",
            ],
            0,
        ),
        (vec!["-vvv", "-f", mapping, "--supervise", "--", "sh", "-c", "cat \"$TLS_KEY_FILE\" >/dev/null"], 0),
        (vec!["-vvv", "--mask", "-f", mapping, "--", "sh", "-c", "echo \"$API_KEY\""], 0),
        (vec!["check", "-vvv", "-f", mapping], 0),
        (vec!["-e", "X=leak/app/NOPE", "--", "true"], 69),
    ];
    for (args, code) in runs {
        let out = output_within(
            vault_run(&dev, cwd.path())
                .env("HOME", home.path())
                .env("TMPDIR", tmpdir.path())
                .env("XDG_RUNTIME_DIR", runtime.path())
                .env("XDG_CACHE_HOME", home.path().join(".cache"))
                .env("XDG_CONFIG_HOME", home.path().join(".config"))
                .env("XDG_DATA_HOME", home.path().join(".local/share"))
                .args(&args),
            T,
        );
        assert_eq!(out.status.code(), Some(code), "{args:?}: {}", stderr_of(&out));
        for (name, dir) in
            [("HOME", &home), ("TMPDIR", &tmpdir), ("XDG_RUNTIME_DIR", &runtime), ("cwd", &cwd)]
        {
            let found = entries(dir.path());
            assert!(found.is_empty(), "{args:?}: vault-run wrote into {name}: {found:?}");
        }
    }
    assert_eq!(entries(files.path()).len(), 1, "only the mapping file, untouched");
}

// ---------------------------------------------------------------------------------------------
// Core dumps and ptrace.

/// Waits until `pid` is vault-run itself (before its exec), then hands over its /proc files.
fn while_vault_run(pid: u32) -> bool {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(10) {
        if proc_file(pid, "comm").is_some_and(|c| c.trim() == "vault-run") {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    false
}

/// Waits until vault-run (`pid`, not yet exec'd into the child) has turned core dumps off and
/// returns its core limits then; `None` if it exec'd or ended first with them still on.
fn locked_down(pid: u32) -> Option<(String, String)> {
    assert!(while_vault_run(pid), "vault-run did not start");
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(10) {
        let limits = core_limit(pid);
        if !proc_file(pid, "comm").is_some_and(|c| c.trim() == "vault-run") {
            return None;
        }
        if limits.0 == "0" {
            // lock_down() marks the process non-dumpable right after setting the limit.
            std::thread::sleep(Duration::from_millis(20));
            return Some(limits);
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    None
}

/// "Max core file size" soft and hard limits from /proc/PID/limits.
fn core_limit(pid: u32) -> (String, String) {
    let limits = proc_file(pid, "limits").unwrap();
    let line = limits.lines().find(|l| l.starts_with("Max core file size")).unwrap().to_owned();
    let cols: Vec<&str> = line["Max core file size".len()..].split_whitespace().collect();
    (cols[0].to_owned(), cols[1].to_owned())
}

#[tokio::test]
async fn core_dumps_are_off_while_secrets_are_held_and_restored_for_the_child() {
    let dev = seeded(&[]).await;
    // Slow answers keep vault-run in its fetching phase long enough to look at it.
    dev.faults(json!({"latency": "1500ms"})).await;
    let dir = tmp();
    let mut cmd = Command::new("sh");
    cmd.current_dir(dir.path())
        .env("ASS_BASE_URL", &dev.base_url)
        .env("ASS_AGENT_KEY", &dev.agent_key)
        .args([
            "-c",
            r#"ulimit -c unlimited || exit 99; exec "$0" -e API_KEY=leak/app/API_KEY -- sh -c 'echo "core=$(ulimit -c)"; cat /proc/self/limits | grep "Max core"'"#,
            common::bin(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = cmd.spawn().unwrap();
    let pid = child.id();
    // Seen from outside while it waits on the server (it holds the agent key already).
    let (soft, hard) = locked_down(pid).expect("core dumps are off while secrets are held");
    assert_eq!(soft, "0");
    assert_eq!(hard, "unlimited", "the hard limit is left alone, so the child can get it back");
    let out = common::output_of_within(child, Duration::from_secs(60));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("core=unlimited"), "the child gets the caller's core limit back: {stdout}");
}

/// Runs `cmd` (and later readers) as an unprivileged uid when the tests run as root, so that
/// "another process of the same user" is a real, unprivileged one.
fn unprivileged() -> Option<u32> {
    nix::unistd::geteuid().is_root().then_some(65534)
}

fn readable_by(uid: Option<u32>, path: &str) -> bool {
    let mut cat = Command::new("cat");
    cat.arg(path).stdout(Stdio::null()).stderr(Stdio::null());
    if let Some(uid) = uid {
        cat.uid(uid).gid(uid);
    }
    common::status_within(&mut cat, Duration::from_secs(30)).success()
}

/// Whether a process running as `uid` can read `pid`'s memory with `process_vm_readv`, which
/// the kernel allows exactly when it would allow a ptrace attach (dumpability decides for the
/// same uid). Reading `/proc/PID/mem` from offset 0 proves nothing: it fails for every process
/// because address 0 is not mapped. The address is the first mapping, read as root.
fn memory_readable_by(uid: Option<u32>, pid: u32) -> bool {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).expect("maps, read as the test's user");
    let line =
        maps.lines().find(|l| l.split_whitespace().nth(1).is_some_and(|p| p.starts_with('r'))).unwrap();
    let addr = line.split('-').next().unwrap();
    let script = r#"
import ctypes, os, sys
class Iov(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]
libc = ctypes.CDLL(None, use_errno=True)
f = libc.process_vm_readv
f.restype = ctypes.c_ssize_t
f.argtypes = [ctypes.c_int, ctypes.POINTER(Iov), ctypes.c_ulong, ctypes.POINTER(Iov), ctypes.c_ulong, ctypes.c_ulong]
buf = ctypes.create_string_buffer(16)
local = Iov(ctypes.cast(buf, ctypes.c_void_p), 16)
remote = Iov(int(sys.argv[2], 16), 16)
n = f(int(sys.argv[1]), ctypes.byref(local), 1, ctypes.byref(remote), 1, 0)
if n <= 0:
    print(os.strerror(ctypes.get_errno()), file=sys.stderr)
sys.exit(0 if n > 0 else 1)
"#;
    let mut py = Command::new("python3");
    py.args(["-c", script, &pid.to_string(), addr]).stdout(Stdio::null()).stderr(Stdio::null());
    if let Some(uid) = uid {
        py.uid(uid).gid(uid);
    }
    common::status_within(&mut py, Duration::from_secs(30)).success()
}

#[tokio::test]
async fn same_uid_processes_cannot_read_vault_runs_memory_or_environment() {
    let dev = seeded(&[]).await;
    dev.faults(json!({"latency": "1500ms"})).await;
    let uid = unprivileged();
    let dir = tmp();
    // The unprivileged vault-run must be able to enter its working directory.
    std::fs::set_permissions(dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    let mut cmd = bare_vault_run(dir.path());
    cmd.env("ASS_BASE_URL", &dev.base_url)
        .env("ASS_AGENT_KEY", &dev.agent_key)
        .args(common::words("--supervise -e API_KEY=leak/app/API_KEY -- sh -c"))
        .arg("echo $$; exec sleep 30");
    if let Some(uid) = uid {
        cmd.uid(uid).gid(uid);
    }
    let mut proc = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let pid = proc.id();
    locked_down(pid).expect("vault-run locks itself down while it fetches");
    for file in ["environ", "maps"] {
        let path = format!("/proc/{pid}/{file}");
        assert!(!readable_by(uid, &path), "{path} is readable by a same-uid process while the key is held");
    }
    assert!(!memory_readable_by(uid, pid), "vault-run's memory is readable by a same-uid process");
    // Supervising: the supervisor stays non-dumpable for the child's whole life, so its
    // environment (which holds ASS_AGENT_KEY) stays closed; the child, after exec, is an
    // ordinary process whose environment (its secrets) its own user can read: the documented
    // limit.
    let mut out = BufReader::new(proc.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let child_pid: u32 = line.trim().parse().unwrap_or_else(|_| panic!("child pid, got {line:?}"));
    assert!(!readable_by(uid, &format!("/proc/{pid}/environ")), "supervisor environ after the start");
    assert!(readable_by(uid, &format!("/proc/{child_pid}/environ")), "the child is an ordinary process");
    // The control: the same check does read an ordinary process of that uid.
    assert!(memory_readable_by(uid, child_pid), "the memory check cannot succeed: it proves nothing");
    assert!(!memory_readable_by(uid, pid), "the supervisor's memory after the start");
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child_pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    );
    let _ = proc.kill();
    let _ = proc.wait();
}

#[tokio::test]
async fn the_childs_environment_never_holds_the_token_even_when_keeping_variables() {
    // --pristine with --keep of everything vault-run might have set: still no key or token.
    let dev = seeded(&[]).await;
    let prefix = token_prefix(&dev).await;
    let dir = tmp();
    let env = common::env_after(
        vault_run(&dev, dir.path())
            .args(common::words("--pristine --keep ASS_AGENT_KEY --keep ASS_TOKEN --keep ASS_BASE_URL"))
            .args(common::words("-e API_KEY=leak/app/API_KEY -- env -0")),
    );
    assert_eq!(env["API_KEY"], "canary-api-key-5a1f9c");
    assert!(!env.contains_key("ASS_AGENT_KEY"), "--keep does not bring the key back: {env:?}");
    let all: String = env.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
    assert!(has_credential_shape(&all, &prefix).is_none(), "{all}");
    assert!(!all.contains(&dev.agent_key));
}
