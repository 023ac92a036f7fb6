//! `--watch`: restarts spread by `--splay`, an ending signal that cancels a restart, old values
//! still masked, and a supervisor whose own environment holds no credential.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{tmp, vault_run, DevServer, Running, T};
use nix::sys::signal::Signal;

// ---------------------------------------------------------------------------------------------
// Supervise mode.

const V_PATH: &str = "production/app/ROTATING";

async fn rotating(first: &str) -> DevServer {
    DevServer::with(&[(V_PATH, first)]).await
}

fn watch_cmd(dev: &DevServer, dir: &std::path::Path, extra: &[&str], script: &str) -> Command {
    let mut cmd = vault_run(dev, dir);
    cmd.args(common::words("--watch --watch-interval 300ms"))
        .args(extra)
        .args(common::words(&format!("-e V={V_PATH} -- sh -c")))
        .arg(script);
    cmd
}

/// Milliseconds in a duration as vault-run prints it (`1234ms`, `3s`).
fn printed_ms(d: &str) -> u64 {
    match d.strip_suffix("ms") {
        Some(ms) => ms.parse().unwrap(),
        None => d.strip_suffix('s').unwrap().parse::<u64>().unwrap() * 1000,
    }
}

#[tokio::test]
async fn splay_delays_the_restart_by_at_most_splay() {
    let dev = rotating("value-one").await;
    let dir = tmp();
    let mut run = Running::start(&mut watch_cmd(
        &dev,
        dir.path(),
        &["-v", "--splay", "3s"],
        "echo \"start $V\"; exec sleep 60",
    ));
    run.line("start value-one");
    dev.put(V_PATH, "value-two").await;
    let until = Instant::now() + T;
    let (announced, delay) = loop {
        let err = run.stderr();
        if let Some(rest) = err.split("applying the change in ").nth(1) {
            let d = rest.split(|c: char| !c.is_ascii_alphanumeric()).next().unwrap();
            break (Instant::now(), printed_ms(d));
        }
        // A delay of exactly 0 (one chance in 3001) is applied at once and not announced.
        assert!(!err.contains("restarting the child"), "restarted without a splay: {err}");
        assert!(Instant::now() < until, "no splay announced: {err}");
        std::thread::sleep(Duration::from_millis(10));
    };
    assert!(delay <= 3000, "a splay over --splay: {delay}ms");
    run.line("start value-two");
    let waited = announced.elapsed().as_millis() as u64;
    assert!(waited + 500 >= delay, "restarted after {waited}ms, before the {delay}ms splay");
    assert!(waited <= delay + 5000, "restarted after {waited}ms, long after the {delay}ms splay");
    run.signal(Signal::SIGTERM);
    run.wait(T);
}

#[tokio::test]
async fn an_ending_signal_during_a_restart_cancels_it() {
    let dev = rotating("value-one").await;
    let dir = tmp();
    // The child takes its time to exit on the restart signal, so the restart is in progress.
    let script = "trap 'echo term; sleep 1.5; exit 0' TERM; echo \"start $V\"; while :; do sleep 0.1; done";
    let mut run = Running::start(&mut watch_cmd(&dev, dir.path(), &["--kill-timeout", "10s"], script));
    run.line("start value-one");
    dev.put(V_PATH, "value-two").await;
    run.line("term");
    run.signal(Signal::SIGTERM);
    let status = run.wait(T);
    let mut rest = Vec::new();
    while let Ok(l) = run.lines.try_recv() {
        rest.push(l);
    }
    assert!(!rest.iter().any(|l| l.starts_with("start value-two")), "restarted anyway: {rest:?}");
    assert!(status.code() == Some(0) || status.code().is_none(), "{status:?}: {}", run.stderr());
}

#[tokio::test]
async fn mask_with_watch_keeps_old_values_masked() {
    let dev = rotating("value-one-rotating").await;
    let dir = tmp();
    // The old value is written into the command itself, so the restarted child prints it.
    let script = "echo \"cur=$V\"; echo old=value-one-rotating; exec sleep 60";
    let mut run = Running::start(&mut watch_cmd(&dev, dir.path(), &["--mask"], script));
    assert_eq!(run.next(T), "cur=[REDACTED:V]");
    assert_eq!(run.next(T), "old=[REDACTED:V]");
    dev.put(V_PATH, "value-two-rotating").await;
    assert_eq!(run.next(T), "cur=[REDACTED:V]", "the new value is masked");
    assert_eq!(run.next(T), "old=[REDACTED:V]", "the old value stays masked after the rotation");
    run.signal(Signal::SIGTERM);
}

#[tokio::test]
async fn under_watch_the_supervisors_environ_holds_no_credential_or_reference() {
    let dev = DevServer::with(&[("production/app/A", "value-a-secret")]).await;
    let dir = tmp();
    let mut cmd = vault_run(&dev, dir.path());
    cmd.env("REF", "ass://production/app/A")
        .args(common::words("--watch --watch-interval 300ms -- sh -c"))
        .arg("echo \"ref=$REF\"; exec sleep 60");
    let mut run = Running::start(&mut cmd);
    assert_eq!(run.next(T), "ref=value-a-secret");
    // Read as the test's (root) user, which non-dumpability does not stop: the block itself
    // must hold nothing.
    std::thread::sleep(Duration::from_millis(700));
    let environ = std::fs::read(format!("/proc/{}/environ", run.child.id())).unwrap();
    let text = String::from_utf8_lossy(&environ);
    assert!(!text.contains(&dev.agent_key), "the agent key is in the supervisor's environ");
    assert!(!text.contains("ass://"), "the reference is in the supervisor's environ");
    assert!(!text.contains("value-a-secret"), "a secret is in the supervisor's environ");
    assert!(text.contains("ASS_BASE_URL="), "not the real environment block: {text}");
    run.signal(Signal::SIGTERM);
}
