//! Supervise mode as a user runs it: a real dev server, a real vault-run process, real children
//! receiving real signals.

mod common;

use std::io::Read;
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{on_a_terminal, tmp, T};
use common::{output_within, stderr_of, vault_run, DevServer, Running};
use nix::sys::signal::Signal;
use serde_json::json;

const SECRET: &str = "sk-live-Ab/3+x?y&z=\"q\"~0042";
const SECRET_PATH: &str = "production/app/API_KEY";

async fn seeded() -> DevServer {
    DevServer::with(&[(SECRET_PATH, SECRET)]).await
}

/// A Python child that reports each signal it gets, and exits 7 after `last`.
fn py_signals(last: &str) -> Vec<String> {
    let script = format!(
        r#"
import signal, sys, time
def h(n, f):
    print("got", signal.Signals(n).name, flush=True)
    if signal.Signals(n).name == "{last}":
        sys.exit(7)
for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2):
    signal.signal(s, h)
print("ready", flush=True)
while True:
    time.sleep(0.05)
"#
    );
    vec!["--".into(), "python3".into(), "-c".into(), script]
}

#[tokio::test]
async fn signals_are_forwarded_and_the_exit_code_kept() {
    let dev = seeded().await;
    let dir = tmp();
    let mut cmd = vault_run(&dev, dir.path());
    cmd.args(common::words(&format!("--supervise -e K={SECRET_PATH}"))).args(py_signals("SIGTERM"));
    let mut run = Running::start(&mut cmd);
    run.line("ready");
    for (s, name) in [
        (Signal::SIGUSR1, "SIGUSR1"),
        (Signal::SIGUSR2, "SIGUSR2"),
        (Signal::SIGHUP, "SIGHUP"),
        (Signal::SIGINT, "SIGINT"),
        (Signal::SIGTERM, "SIGTERM"),
    ] {
        run.signal(s);
        run.line(&format!("got {name}"));
    }
    let status = run.wait(T);
    assert_eq!(status.code(), Some(7), "{}", run.stderr());
}

#[tokio::test]
async fn exit_code_and_death_by_signal_propagate() {
    let dev = seeded().await;
    let dir = tmp();
    let k = format!("K={SECRET_PATH}");
    let out = output_within(
        vault_run(&dev, dir.path()).args(["--supervise", "-e", &k, "--", "sh", "-c", "exit 42"]),
        T,
    );
    assert_eq!(out.status.code(), Some(42), "{}", stderr_of(&out));
    let out = output_within(
        vault_run(&dev, dir.path()).args(["--supervise", "-e", &k, "--", "sh", "-c", "kill -TERM $$"]),
        T,
    );
    assert_eq!(out.status.signal(), Some(libc::SIGTERM), "{}", stderr_of(&out));
    assert!(!out.status.core_dumped());
    let out = output_within(
        vault_run(&dev, dir.path()).args(["--supervise", "-e", &k, "--", "sh", "-c", "kill -USR1 $$"]),
        T,
    );
    assert_eq!(out.status.signal(), Some(libc::SIGUSR1), "{}", stderr_of(&out));
    // Command errors keep the exec codes.
    let out = output_within(
        vault_run(&dev, dir.path()).args(["--supervise", "-e", &k, "--", "no-such-command-xyz"]),
        T,
    );
    assert_eq!(out.status.code(), Some(127), "{}", stderr_of(&out));
    // The child is exec'd from vault-run's own environment block: its errno still comes back.
    let script = dir.path().join("not-executable.sh");
    std::fs::write(&script, "#!/bin/sh\n").unwrap();
    let out =
        output_within(vault_run(&dev, dir.path()).args(["--supervise", "-e", &k, "--"]).arg(&script), T);
    assert_eq!(out.status.code(), Some(126), "{}", stderr_of(&out));
}

#[tokio::test]
async fn secrets_only_in_the_child_and_memfds_closed() {
    let dev = seeded().await;
    dev.put("production/tls/KEY", "-----TLS KEY 0005-----").await;
    let dir = tmp();
    std::fs::write(
        dir.path().join("vault-run.toml"),
        format!("[env]\nK = \"{SECRET_PATH}\"\nTLS = {{ path = \"production/tls/KEY\", as = \"file\" }}\n"),
    )
    .unwrap();
    let mut cmd = vault_run(&dev, dir.path());
    cmd.env("REF", format!("ass://{SECRET_PATH}"))
        .args(common::words("--supervise -- sh -c"))
        .arg("echo \"k=$K ref=$REF tls=$(cat $TLS)\"; echo ready; sleep 30");
    let mut run = Running::start(&mut cmd);
    let line = run.expect(|l| l.starts_with("k="), Duration::from_secs(20));
    assert_eq!(line, format!("k={SECRET} ref={SECRET} tls=-----TLS KEY 0005-----"));
    run.line("ready");
    let environ = std::fs::read(format!("/proc/{}/environ", run.pid())).unwrap();
    let text = String::from_utf8_lossy(&environ);
    assert!(!text.contains(&dev.agent_key), "the agent key is in vault-run's environ");
    assert!(!text.contains(SECRET), "a secret is in vault-run's environ");
    assert!(!text.contains("ass://"), "an env reference is in vault-run's environ");
    assert!(text.contains("ASS_BASE_URL="), "other variables stay");
    let fds: Vec<String> = std::fs::read_dir(format!("/proc/{}/fd", run.pid()))
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    assert!(!fds.iter().any(|f| f.contains("memfd:")), "vault-run keeps a memfd: {fds:?}");
    run.signal(Signal::SIGTERM);
    assert_eq!(run.wait(T).signal(), Some(libc::SIGTERM));
}

/// Zombie children of `pid` (from the host's /proc).
fn zombies_of(pid: u32) -> Vec<u32> {
    let mut v = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else { continue };
        let Some(after) = stat.rfind(')').map(|i| &stat[i + 2..]) else { continue };
        let f: Vec<&str> = after.split(' ').collect();
        if f.len() > 1 && f[0] == "Z" && f[1] == pid.to_string() {
            v.push(e.file_name().to_string_lossy().parse().unwrap_or(0));
        }
    }
    v
}

fn children_of(pid: u32) -> Vec<u32> {
    let mut v = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else { continue };
        let Some(after) = stat.rfind(')').map(|i| &stat[i + 2..]) else { continue };
        if after.split(' ').nth(1) == Some(&pid.to_string()) {
            v.push(e.file_name().to_string_lossy().parse().unwrap_or(0));
        }
    }
    v
}

/// `unshare --pid --fork` running the same vault-run command (so it is PID 1 there).
fn in_new_pid_namespace(vr: &Command) -> Command {
    let mut u = Command::new("unshare");
    u.args(common::words("--pid --fork --map-root-user --kill-child"))
        .arg(vr.get_program())
        .args(vr.get_args());
    for (k, v) in vr.get_envs() {
        match v {
            Some(v) => u.env(k, v),
            None => u.env_remove(k),
        };
    }
    if let Some(d) = vr.get_current_dir() {
        u.current_dir(d);
    }
    u.stdin(Stdio::null());
    u
}

fn unshare_works() -> bool {
    let mut u = Command::new("unshare");
    u.args(common::words("--pid --fork --map-root-user true")).stdout(Stdio::null()).stderr(Stdio::null());
    u.spawn().is_ok_and(|mut c| common::wait_within(&mut c, T).success())
}

/// The parent pid of `pid`, from /proc.
fn ppid_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat[stat.rfind(')')? + 2..].split(' ').nth(1)?.parse().ok()
}

/// Outside a PID namespace vault-run is a child subreaper: an orphaned grandchild is
/// re-parented to vault-run itself (not to init), and reaped by it when it exits.
#[tokio::test]
async fn orphans_are_reparented_to_vault_run_and_reaped_as_subreaper() {
    let dev = seeded().await;
    let dir = tmp();
    // The subshell exits at once, leaving its `sleep` an orphan; its pid is printed.
    let script = "(sleep 3 & echo orphan=$!); echo ready; exec sleep 60";
    let mut cmd = vault_run(&dev, dir.path());
    cmd.args(common::words(&format!("--supervise -e K={SECRET_PATH} -- sh -c"))).arg(script);
    let mut run = Running::start(&mut cmd);
    let orphan: u32 = run.expect(|l| l.starts_with("orphan="), Duration::from_secs(20))[7..].parse().unwrap();
    run.line("ready");
    let vault_run_pid = run.child.id();
    let until = Instant::now() + Duration::from_secs(10);
    let mut last = None;
    loop {
        let Some(ppid) = ppid_of(orphan) else {
            panic!("the orphan ended (and was reaped) under parent {last:?}, not vault-run ({vault_run_pid})")
        };
        last = Some(ppid);
        if ppid == vault_run_pid {
            break;
        }
        // The subshell may not have exited yet; any other parent is a failure once it has.
        assert!(Instant::now() < until, "the orphan's parent is {ppid}, not vault-run ({vault_run_pid})");
        std::thread::sleep(Duration::from_millis(20));
    }
    // Reaped by vault-run: gone from /proc (not a zombie) while vault-run is still its parent.
    let until = Instant::now() + Duration::from_secs(15);
    while ppid_of(orphan).is_some() {
        assert!(Instant::now() < until, "the orphan was not reaped: zombies {:?}", zombies_of(vault_run_pid));
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(run.child.try_wait().unwrap().is_none(), "vault-run ended before the orphan was reaped");
    run.signal(Signal::SIGTERM);
    assert_eq!(run.wait(T).signal(), Some(libc::SIGTERM), "{}", run.stderr());
}

/// As PID 1 of a new PID namespace, vault-run reaps every orphan, like tini.
#[tokio::test]
async fn orphans_are_reaped_as_pid_1() {
    if !common::require(unshare_works(), "unprivileged PID namespaces (unshare --pid --map-root-user)") {
        return;
    }
    let dev = seeded().await;
    let dir = tmp();
    // Orphans: each subshell exits at once, its `sleep` is re-parented to vault-run and exits.
    let script = "echo ppid=$PPID; for i in 1 2 3 4; do (sleep 0.2 &); done; echo ready; sleep 3; exit 5";
    let mut cmd = in_new_pid_namespace(&vault_run(&dev, dir.path()));
    cmd.arg("--supervise");
    cmd.args(common::words(&format!("-e K={SECRET_PATH} -- sh -c"))).arg(script);
    let mut run = Running::start(&mut cmd);
    let ppid = run.expect(|l| l.starts_with("ppid="), Duration::from_secs(20));
    run.line("ready");
    std::thread::sleep(Duration::from_millis(1200));
    assert_eq!(ppid, "ppid=1", "vault-run is PID 1 in the new namespace");
    let vault_run_pid = *children_of(run.child.id()).first().expect("vault-run under unshare");
    assert_eq!(zombies_of(vault_run_pid), Vec::<u32>::new(), "zombies left under vault-run");
    assert_eq!(run.wait(T).code(), Some(5), "{}", run.stderr());
}

#[tokio::test]
async fn mask_redacts_every_form_across_chunk_boundaries() {
    let dev = seeded().await;
    let dir = tmp();
    let script = r#"
import base64, json, sys, time, urllib.parse, os
v = os.environ["K"]
print("plain", v, flush=True)
print("b64", base64.b64encode(v.encode()).decode(), flush=True)
print("url", urllib.parse.quote(v, safe=""), flush=True)
print("json", json.dumps({"k": v}), flush=True)
sys.stdout.write("slow ")
for ch in v:
    sys.stdout.write(ch); sys.stdout.flush(); time.sleep(0.005)
print(" end", flush=True)
print("err", v, file=sys.stderr, flush=True)
print("short", os.environ["S"], flush=True)
"#;
    let out = output_within(
        vault_run(&dev, dir.path())
            .args(common::words(&format!(
                "--mask -e K={SECRET_PATH} -e S=production/app/SHORT -- python3 -c"
            )))
            .arg(script),
        T,
    );
    // SHORT is missing: put it and run again.
    assert!(!out.status.success());
    dev.put("production/app/SHORT", "abc").await;
    let out = output_within(
        vault_run(&dev, dir.path())
            .args(common::words(&format!(
                "--mask -e K={SECRET_PATH} -e S=production/app/SHORT -- python3 -c"
            )))
            .arg(script),
        T,
    );
    assert!(out.status.success(), "{}", stderr_of(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = stderr_of(&out);
    assert_eq!(
        stdout,
        "plain [REDACTED:K]\nb64 [REDACTED:K]\nurl [REDACTED:K]\njson {\"k\": \"[REDACTED:K]\"}\nslow [REDACTED:K] end\nshort abc\n"
    );
    assert!(stderr.contains("err [REDACTED:K]"), "{stderr}");
    assert!(!stderr.contains(SECRET));
}

#[tokio::test]
async fn mask_flushes_a_partial_line_after_a_pause() {
    let flags = format!("--mask -e K={SECRET_PATH}");
    let (_dev, _dir, mut cmd) = seeded_sh(&flags, "printf 'prompt> '; sleep 3; echo done").await;
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
    let mut out = child.stdout.take().unwrap();
    let start = Instant::now();
    let mut buf = [0u8; 64];
    let n = out.read(&mut buf).unwrap();
    let elapsed = start.elapsed();
    assert_eq!(&buf[..n], b"prompt> ");
    assert!(elapsed < Duration::from_millis(2500), "the partial line waited for the child: {elapsed:?}");
    let mut rest = String::new();
    out.read_to_string(&mut rest).unwrap();
    assert_eq!(rest, "done\n");
    assert!(common::wait_within(&mut child, T).success());
}

#[tokio::test]
async fn mask_on_a_terminal_runs_the_child_on_a_pty() {
    let dev = seeded().await;
    let dir = tmp();
    let inner = format!(
        "{} --mask -e K={SECRET_PATH} -- sh -c 'test -t 0 && test -t 1 && echo TTY-YES; echo \"v=$K\"; exit 3'",
        common::bin()
    );
    let mut cmd = Command::new("script");
    cmd.args(["-qfec", &inner, "/dev/null"]).current_dir(dir.path());
    cmd.env("ASS_BASE_URL", &dev.base_url).env("ASS_AGENT_KEY", &dev.agent_key);
    let out = output_within(&mut cmd, T);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("TTY-YES"), "{stdout} {}", stderr_of(&out));
    assert!(stdout.contains("v=[REDACTED:K]"), "{stdout}");
    assert!(!stdout.contains(SECRET), "{stdout}");
    assert_eq!(out.status.code(), Some(3), "{stdout}");
}

#[tokio::test]
async fn ctrl_c_on_a_shared_terminal_reaches_the_child_once() {
    let dev = seeded().await;
    let script = r#"
import signal, sys, time
n = 0
def h(s, f):
    global n
    n += 1
    print("got SIGINT", n, flush=True)
signal.signal(signal.SIGINT, h)
print("ready", flush=True)
t = time.time()
while n == 0 or time.time() - t < 1.0:
    if n == 0: t = time.time()
    time.sleep(0.02)
sys.exit(10 + n)
"#;
    let k = format!("K={SECRET_PATH}");
    let args = [common::bin(), "--supervise", "-e", &k, "--", "python3", "-c", script];
    let envs = [("ASS_BASE_URL", dev.base_url.as_str()), ("ASS_AGENT_KEY", dev.agent_key.as_str())];
    let (shown, code) = on_a_terminal(&args, &envs, "ready", b"\x03");
    assert!(shown.contains("got SIGINT 1"), "{shown}");
    assert!(!shown.contains("got SIGINT 2"), "delivered twice: {shown}");
    assert_eq!(code, 11, "{shown}");
}

#[tokio::test]
async fn as_pid_1_a_signal_death_becomes_128_plus_n() {
    let dev = seeded().await;
    let dir = tmp();
    if !common::require(unshare_works(), "unprivileged PID namespaces (unshare --pid --map-root-user)") {
        return;
    }
    let mut vr = vault_run(&dev, dir.path());
    vr.args(common::words(&format!("--supervise -e K={SECRET_PATH} -- sh -c"))).arg("kill -TERM $$");
    let out = output_within(&mut in_new_pid_namespace(&vr), T);
    assert_eq!(out.status.code(), Some(128 + libc::SIGTERM), "{}", stderr_of(&out));
}

#[tokio::test]
async fn watch_restarts_the_child_with_new_values() {
    let (dev, _dir, mut run) = watching_versioned("", "echo \"start $V\"; exec sleep 30").await;
    dev.put("production/app/VERSIONED", "value-two").await;
    run.line("start value-two");
    run.signal(Signal::SIGTERM);
    assert_eq!(run.wait(T).signal(), Some(libc::SIGTERM), "{}", run.stderr());
}

#[tokio::test]
async fn watch_restart_kills_a_child_that_ignores_the_signal() {
    let flags = "--restart-signal USR1 --kill-timeout 1s";
    let script = "trap 'echo ignored' USR1; echo \"start $V\"; while :; do sleep 0.1; done";
    let (dev, _dir, mut run) = watching_versioned(flags, script).await;
    dev.put("production/app/VERSIONED", "value-two").await;
    run.line("ignored");
    run.line("start value-two");
    run.stderr_shows("sending SIGKILL");
}

#[tokio::test]
async fn watch_renews_the_token_before_it_expires() {
    let flags = format!("--watch --watch-interval 1s --ttl 12s -e K={SECRET_PATH}");
    let (dev, _dir, mut cmd) = seeded_sh(&flags, "echo start; exec sleep 30").await;
    let mut run = Running::start(&mut cmd);
    run.line("start");
    // Tokens are reused while more than 10 s remain: with a 12 s TTL, new ones within seconds.
    let until = Instant::now() + Duration::from_secs(20);
    while dev.count("POST /v1/tokens").await < 3 {
        assert!(Instant::now() < until, "no renewal; stderr: {}", run.stderr());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(run.lines.try_recv().is_err(), "the child was restarted");
    assert!(!run.stderr().contains("fetch failed"), "{}", run.stderr());
    run.signal(Signal::SIGTERM);
    assert_eq!(run.wait(T).signal(), Some(libc::SIGTERM));
}

#[tokio::test]
async fn watch_reload_signals_instead_of_restarting() {
    let script =
        "trap 'echo \"reload $V\"' HUP; trap 'exit 9' TERM; echo \"start $V\"; while :; do sleep 0.1; done";
    let (dev, _dir, mut run) = watching_versioned("--reload-signal hup", script).await;
    dev.put("production/app/VERSIONED", "value-two").await;
    run.line("reload value-one");
    run.signal(Signal::SIGTERM);
    assert_eq!(run.wait(T).code(), Some(9), "{}", run.stderr());
    let rest = run.rest();
    assert!(!run.seen.iter().chain(&rest).any(|l| l.starts_with("start value-two")), "restarted: {rest:?}");
}

#[tokio::test]
async fn watch_keeps_the_child_when_a_fetch_fails() {
    let (dev, _dir, mut run) = watching_versioned("--retries 0", "echo \"start $V\"; exec sleep 30").await;
    // Every API request fails (the admin API too, so the value changes once they pass again).
    dev.faults(json!({"fail_next": 1000, "fail_status": 503})).await;
    let until = Instant::now() + Duration::from_secs(20);
    while !run.stderr().contains("fetch failed") {
        assert!(Instant::now() < until, "no warning; stderr: {}", run.stderr());
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(1500));
    assert!(run.child.try_wait().unwrap().is_none(), "vault-run ended: {}", run.stderr());
    assert!(run.lines.try_recv().is_err(), "the child was restarted during the failure");
    assert!(!run.stderr().contains("value-one"), "a value in a log line");
    dev.faults(json!({"fail_next": 0})).await;
    dev.put("production/app/VERSIONED", "value-two").await;
    run.line("start value-two");
}

#[tokio::test]
async fn notify_ready_after_the_child_starts() {
    let dev = seeded().await;
    let dir = tmp();
    let sock_path = dir.path().join("notify.sock");
    let sock = std::os::unix::net::UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut cmd = vault_run(&dev, dir.path());
    cmd.env("NOTIFY_SOCKET", &sock_path)
        .args(common::words(&format!("--notify-ready -v -e K={SECRET_PATH} -- sh -c")))
        .arg("echo \"socket=$NOTIFY_SOCKET\"; sleep 1");
    let mut run = Running::start(&mut cmd);
    let mut buf = [0u8; 256];
    let n = sock.recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"READY=1");
    run.line(&format!("socket={}", sock_path.display()));
    assert!(run.wait(T).success());
    run.stderr_shows("supervise mode: --notify-ready");
}

#[tokio::test]
async fn bad_supervise_flags_are_usage_errors() {
    let dev = seeded().await;
    let dir = tmp();
    for args in [
        &["--watch", "--restart-signal", "SIGNOPE", "--", "true"][..],
        &["--watch", "--watch-interval", "0s", "--", "true"],
        &["--watch-interval", "5s", "--", "true"],
        &["--reload-signal", "HUP", "--", "true"],
    ] {
        let out = output_within(vault_run(&dev, dir.path()).args(args), T);
        assert_eq!(out.status.code(), Some(64), "{args:?}: {}", stderr_of(&out));
    }
    let out = output_within(
        vault_run(&dev, dir.path()).args(common::words("--watch --restart-signal nope -- true")),
        T,
    );
    assert!(stderr_of(&out).contains("unknown signal"), "{}", stderr_of(&out));
}

/// A seeded dev server, a fresh directory, and `vault-run <flags> -- sh -c <script>` against
/// them (not started yet).
async fn seeded_sh(flags: &str, script: &str) -> (DevServer, tempfile::TempDir, Command) {
    let dev = seeded().await;
    let dir = tmp();
    let mut cmd = vault_run(&dev, dir.path());
    cmd.args(common::words(flags)).args(["--", "sh", "-c", script]);
    (dev, dir, cmd)
}

/// `vault-run --watch --watch-interval 1s <flags> -e V=production/app/VERSIONED -- sh -c <script>`
/// running against a seeded dev server where V is `value-one`, after the child said
/// `start value-one`.
async fn watching_versioned(flags: &str, script: &str) -> (DevServer, tempfile::TempDir, Running) {
    let flags = format!("--watch --watch-interval 1s {flags} -e V=production/app/VERSIONED");
    let (dev, dir, mut cmd) = seeded_sh(&flags, script).await;
    dev.put("production/app/VERSIONED", "value-one").await;
    let mut run = Running::start(&mut cmd);
    run.line("start value-one");
    (dev, dir, run)
}
