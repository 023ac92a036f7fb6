//! Human approvals: the wait shown (a live line on a terminal only), approve and deny from the
//! command line, expiry asked anew, the exit codes, and a server's ids that cannot forge lines.

mod common;

use std::time::{Duration, Instant};

use common::{
    output_within, seeded_profiles, stderr_of, tmp, vault_run, write, DevServer, RecordingServer, T,
};
use serde_json::json;

/// Runs `cmd` with stderr on a fresh pseudo-terminal; returns its status and what it wrote there.
fn on_a_terminal(mut cmd: std::process::Command) -> (std::process::ExitStatus, String) {
    let size = nix::pty::Winsize { ws_row: 24, ws_col: 200, ws_xpixel: 0, ws_ypixel: 0 };
    let pty = nix::pty::openpty(Some(&size), None).unwrap();
    cmd.stdout(std::process::Stdio::null()).stderr(std::process::Stdio::from(pty.slave));
    let mut child = cmd.spawn().unwrap();
    drop(cmd);
    let reader = common::drain(std::fs::File::from(pty.master));
    let status = child.wait().unwrap();
    (status, String::from_utf8_lossy(&reader.join().unwrap()).into_owned())
}

/// Waits for a human on a terminal: one live line (what, elapsed, left), redrawn in place and
/// erased when the approval comes; nothing of it when stderr is a pipe.
#[tokio::test]
async fn waiting_for_an_approval_shows_a_live_line_on_a_terminal_only() {
    use std::io::Read;
    let dev = seeded_profiles().await;
    dev.put_tier("production/pay/KEY", "pay-0009", "sensitive").await;
    let dir = tempfile::tempdir().unwrap();

    let size = nix::pty::Winsize { ws_row: 24, ws_col: 200, ws_xpixel: 0, ws_ypixel: 0 };
    let pty = nix::pty::openpty(Some(&size), None).unwrap();
    let mut cmd = vault_run(&dev, dir.path());
    cmd.args(common::words("-e P=production/pay/KEY -- true"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::from(pty.slave));
    let mut child = cmd.spawn().unwrap();
    drop(cmd); // closes our copy of the slave: the master reads EOF/EIO once the child is gone
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::<u8>::new()));
    let sink = seen.clone();
    let mut master = std::fs::File::from(pty.master);
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = master.read(&mut buf) {
            if n == 0 {
                break;
            }
            sink.lock().unwrap().extend_from_slice(&buf[..n]);
        }
    });
    let id = dev.wait_pending().await;
    // Two redraws at least (one per second).
    let start = std::time::Instant::now();
    loop {
        let text = String::from_utf8_lossy(&seen.lock().unwrap()).into_owned();
        if text.matches("\r\x1b[2Kvault-run: waiting for approval").count() >= 2 {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "no live line: {text:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    dev.approve(&id).await;
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap()).await.unwrap();
    assert!(status.success());
    reader.join().unwrap();
    let text = String::from_utf8_lossy(&seen.lock().unwrap()).into_owned();
    let last = text.rfind("waiting for approval").unwrap();
    let line = &text[last..];
    assert!(line.contains(&id) && line.contains("production/pay/KEY"), "{line:?}");
    assert!(line.contains("elapsed") && line.contains("left"), "{line:?}");
    assert!(line.contains("\r\x1b[2K"), "the line is erased when the wait ends: {line:?}");
    assert!(!text.contains("pay-0009"));

    // A pipe: plain log lines only.
    let mut cmd = vault_run(&dev, dir.path());
    cmd.args(common::words("-e P=production/pay/KEY -- true"));
    let handle = std::thread::spawn(move || output_within(&mut cmd, T));
    let id = loop {
        if let Some(id) = dev.pending().await.into_iter().next() {
            break id;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    tokio::time::sleep(Duration::from_millis(1500)).await;
    dev.approve(&id).await;
    let out = tokio::task::spawn_blocking(move || handle.join().unwrap()).await.unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let err = stderr_of(&out);
    assert!(!err.contains('\r') && !err.contains("\x1b[") && !err.contains("elapsed"), "{err:?}");
    assert!(err.contains(&id), "{err}");
}

#[test]
fn waiting_out_a_rate_limit_shows_a_live_line_on_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let seed =
        write(dir.path(), "seed.toml", "[[secret]]\npath = \"production/app/K\"\nvalue = \"k-0001\"\n");
    // One request per 3 s: the read after the token request waits out a 429.
    let dev = DevServer::start_with(&["--rate-limit", "20/m", "--seed", &seed.display().to_string()]);
    let mut cmd = vault_run(&dev, dir.path());
    cmd.args(common::words("-e K=production/app/K -- true"));
    let (status, text) = on_a_terminal(cmd);
    assert!(status.success(), "{text}");
    let last =
        text.rfind("waiting for the server's rate limit").unwrap_or_else(|| panic!("no line: {text:?}"));
    let line = &text[last..];
    assert!(line.contains("elapsed") && line.contains("left"), "{line:?}");
    assert!(line.contains("\r\x1b[2K"), "erased when the request goes through: {line:?}");

    // A pipe: no live line.
    let out =
        output_within(vault_run(&dev, dir.path()).args(common::words("-e K=production/app/K -- true")), T);
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(
        !stderr_of(&out).contains("rate limit") && !stderr_of(&out).contains('\r'),
        "{}",
        stderr_of(&out)
    );
}

#[tokio::test]
async fn without_a_terminal_a_wait_says_it_goes_on() {
    let dev = DevServer::start();
    dev.put_tier("myagent/K", "k-value", "sensitive").await;
    let dir = tmp();
    let out = common::output_within(
        vault_run(&dev, dir.path())
            .env("VAULT_RUN_WAIT_LINE_EVERY", "1s")
            .args(common::words("--approval-timeout 3s -e K=myagent/K -- true")),
        T,
    );
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(75), "{err}");
    let still: Vec<&str> = err.lines().filter(|l| l.contains("still waiting for approval apr_")).collect();
    assert!(still.len() >= 2, "a line a second: {err}");
    assert!(still[0].contains("left"), "{err}");
    assert!(!err.contains('\r'), "no live line off a terminal: {err:?}");
}

#[tokio::test]
async fn dev_approve_and_deny_show_the_servers_words() {
    let dev = DevServer::start();
    dev.put_tier("myagent/K", "k-value", "sensitive").await;
    let dir = tmp();
    let admin = |args: &[&str], key: &str| {
        let mut cmd = common::bare_vault_run(dir.path());
        cmd.env("ASS_BASE_URL", &dev.base_url).env("ASS_ADMIN_KEY", key).args(["dev"]).args(args);
        common::output_within(&mut cmd, T)
    };
    let ask = || {
        common::output_within(
            vault_run(&dev, dir.path()).args(common::words("--approval-timeout 0 -e K=myagent/K -- true")),
            T,
        )
    };
    assert_eq!(ask().status.code(), Some(75));
    let id = dev.wait_pending().await;
    let out = admin(&["deny", &id], &dev.admin_key);
    assert_eq!(String::from_utf8_lossy(&out.stdout), format!("denied {id}\n"), "{}", stderr_of(&out));
    let out = admin(&["approve", &id], &dev.admin_key);
    assert_eq!(out.status.code(), Some(69));
    assert!(
        stderr_of(&out).contains("already denied") && stderr_of(&out).contains("409"),
        "{}",
        stderr_of(&out)
    );
    let out = admin(&["approve", "apr_nosuch"], &dev.admin_key);
    assert!(stderr_of(&out).contains("not found"), "{}", stderr_of(&out));
    let out = admin(&["approve", &id], "ass_admin_wrong");
    assert_eq!(out.status.code(), Some(77));
    assert!(!stderr_of(&out).ends_with("HTTP 401 (exit 77)\n"), "the server's words: {}", stderr_of(&out));

    // The run after the denial says so and asks anew (a new id), instead of failing at once.
    let out = ask();
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(75), "{err}");
    assert!(err.contains("ended") && err.contains("asking anew"), "{err}");
    let again = dev.wait_pending().await;
    assert_ne!(again, id, "{err}");
    assert!(err.contains(&again), "{err}");
}

#[tokio::test]
async fn an_expired_approval_is_said_and_asked_anew() {
    let dev = DevServer::start_with(&["--approval-ttl", "1s"]);
    dev.put_tier("myagent/K", "k-value", "sensitive").await;
    let dir = tmp();
    let ask = || {
        common::output_within(
            vault_run(&dev, dir.path()).args(common::words("--approval-timeout 0 -e K=myagent/K -- true")),
            T,
        )
    };
    assert_eq!(ask().status.code(), Some(75));
    let first = dev.wait_pending().await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let out = ask();
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(75), "asked anew, not refused: {err}");
    assert!(err.contains("expired") && err.contains("asking anew"), "{err}");
    assert!(!err.contains(&format!("approval {first} required")), "{err}");
}

// ---------------------------------------------------------------------------------------------
// Approvals, expiry and the child's environment: documented exit codes, child never started.

#[test]
fn approval_timeout_is_75_and_an_expired_approval_77() {
    for (status, args, code) in [
        ("pending", &["--approval-timeout", "1s"][..], 75),
        ("expired", &[][..], 77),
        ("denied", &[][..], 77),
    ] {
        let rec = RecordingServer::start(json!({"secrets": {"production/app/A": "v"}, "approval": status}));
        let dir = tmp();
        let start = Instant::now();
        let mut cmd = rec.vault_run(dir.path());
        cmd.args(args).args(common::words("-e A=production/app/A --"));
        let out = common::refused_before_start(&mut cmd, code);
        assert!(start.elapsed() < Duration::from_secs(15), "{status}: took {:?}", start.elapsed());
        assert!(
            stderr_of(&out).contains("apr_rec_1"),
            "{status}: the approval id is named: {}",
            stderr_of(&out)
        );
    }
}

// ---------------------------------------------------------------------------------------------
// A hostile server's approval id went unfiltered into log lines and systemd's STATUS=: with a
// newline it forged vault-run log lines and sd_notify assignments (`READY=1`, `MAINPID=`).

#[test]
fn a_servers_approval_id_cannot_forge_log_lines_or_notify_systemd() {
    let forged = r#"{"requires_approval":true,"approval_id":"apr_1\nvault-run: error: FORGED\nREADY=1\nMAINPID=1","expires_at":"2030-01-01T00:00:00Z"}"#;
    let url = common::raw_server(common::http_json("202 Accepted", forged));
    let dir = tmp();
    let socket_path = dir.path().join("notify.sock");
    let notify = std::os::unix::net::UnixDatagram::bind(&socket_path).unwrap();
    notify.set_nonblocking(true).unwrap();
    let out = output_within(
        common::bare_vault_run(dir.path())
            .env("ASS_BASE_URL", &url)
            .env("ASS_AGENT_KEY", "ass_review_key_0123456789")
            .env("NOTIFY_SOCKET", &socket_path)
            .args(common::words("--approval-timeout 0 --retries 0 -e A=production/app/A -- true")),
        T,
    );
    let err = stderr_of(&out);
    assert!(!out.status.success(), "{err}");
    assert!(!err.contains("FORGED"), "{err}");
    assert!(err.lines().all(|l| l.starts_with("vault-run: ")), "{err}");
    let mut buf = [0u8; 4096];
    while let Ok(n) = notify.recv(&mut buf) {
        let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
        assert!(!msg.contains('\n'), "forged sd_notify message: {msg:?}");
    }
}
