//! Signals in supervise mode: to the child's whole group without a terminal, which are forwarded
//! and which not, and a child that dies with vault-run.

mod common;

use std::time::{Duration, Instant};

use common::{tmp, vault_run, DevServer, Running, T};
use nix::sys::signal::Signal;
use nix::unistd::Pid;

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|s| s.rfind(')').is_some_and(|i| !s[i + 2..].starts_with('Z')))
}

/// Caught signals of `pid`, from /proc/PID/status.
fn caught(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let hex = status.lines().find_map(|l| l.strip_prefix("SigCgt:")).unwrap().trim();
    u64::from_str_radix(hex, 16).unwrap()
}

const HELPERS: &str = r#"
helper() { trap 'echo helper-got-TERM; exit 0' TERM; echo helper-ready; while :; do sleep 0.1; done; }
helper &
trap 'echo main-got-TERM' TERM
echo "main-pid $$"
wait; wait
exit 3
"#;

#[tokio::test]
async fn without_a_tty_signals_go_to_the_childs_whole_group() {
    let dev = DevServer::with(&[("production/app/A", "value-a")]).await;
    let dir = tmp();
    let mut cmd = vault_run(&dev, dir.path());
    cmd.args(common::words("--supervise -e A=production/app/A -- sh -c")).arg(HELPERS);
    let mut run = Running::start(&mut cmd);
    let mut seen = [run.next(T), run.next(T)];
    seen.sort();
    assert!(seen[1].starts_with("main-pid "), "{seen:?}");
    let main: i32 = seen[1].trim_start_matches("main-pid ").parse().unwrap();
    assert_eq!(seen[0], "helper-ready");
    let pgid = nix::unistd::getpgid(Some(Pid::from_raw(main))).unwrap();
    assert_eq!(pgid.as_raw(), main, "the child leads a process group of its own");
    assert_ne!(pgid, nix::unistd::getpgid(Some(run.pid())).unwrap());
    run.signal(Signal::SIGTERM);
    let mut got = [run.next(T), run.next(T)];
    got.sort();
    assert_eq!(got, ["helper-got-TERM", "main-got-TERM"], "{}", run.stderr());
    assert_eq!(run.wait(T).code(), Some(3));
}

#[tokio::test]
async fn quit_usr1_winch_are_forwarded_and_fault_signals_are_not() {
    let dev = DevServer::with(&[("production/app/A", "value-a")]).await;
    let dir = tmp();
    let script = "for s in QUIT USR1 WINCH SEGV; do trap \"echo got-$s\" $s; done; echo ready; \
                  while :; do sleep 0.1; done";
    let mut cmd = vault_run(&dev, dir.path());
    cmd.args(common::words("--supervise -e A=production/app/A -- sh -c")).arg(script);
    let mut run = Running::start(&mut cmd);
    run.line("ready");
    for (sig, name) in [(Signal::SIGQUIT, "QUIT"), (Signal::SIGUSR1, "USR1"), (Signal::SIGWINCH, "WINCH")] {
        run.signal(sig);
        assert_eq!(run.next(Duration::from_secs(10)), format!("got-{name}"));
    }
    // A signal vault-run does not catch cannot be forwarded; the forwarded ones are caught.
    let mask = caught(run.child.id());
    let bit = |s: Signal| 1u64 << (s as i32 - 1);
    for s in [Signal::SIGQUIT, Signal::SIGUSR1, Signal::SIGWINCH] {
        assert_ne!(mask & bit(s), 0, "{s} is not caught, so not forwarded");
    }
    // SIGSEGV and SIGBUS are left out: Rust's runtime catches them to report stack overflows
    // (and re-raises any other fault); the SEGV sent below checks them by behaviour.
    for s in [Signal::SIGFPE, Signal::SIGILL, Signal::SIGTRAP, Signal::SIGSYS, Signal::SIGABRT] {
        assert_eq!(mask & bit(s), 0, "{s} is caught (and could be forwarded)");
    }
    // A SEGV sent with kill(2) is not passed on: the child never reports it. (Rust's runtime
    // handler, there for stack overflows, swallows this first one: vault-run goes on.)
    run.signal(Signal::SIGSEGV);
    while let Ok(l) = run.lines.recv_timeout(Duration::from_millis(700)) {
        assert_ne!(l, "got-SEGV", "a fault signal was forwarded");
    }
    run.signal(Signal::SIGUSR1);
    assert_eq!(run.next(Duration::from_secs(10)), "got-USR1", "still forwarding afterwards");
    run.signal(Signal::SIGTERM);
    run.wait(T);
}

#[tokio::test]
async fn the_child_dies_with_vault_run() {
    let dev = DevServer::with(&[("production/app/A", "value-a")]).await;
    let dir = tmp();
    let mut cmd = vault_run(&dev, dir.path());
    cmd.args(common::words("--supervise -e A=production/app/A -- sh -c")).arg("echo $$; exec sleep 60");
    let mut run = Running::start(&mut cmd);
    let child: u32 = run.next(T).parse().unwrap();
    assert!(alive(child));
    run.signal(Signal::SIGKILL);
    run.wait(T);
    let until = Instant::now() + Duration::from_secs(5);
    while alive(child) {
        assert!(Instant::now() < until, "the child outlived vault-run (no PDEATHSIG)");
        std::thread::sleep(Duration::from_millis(20));
    }
}
