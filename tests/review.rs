//! Security review, third round: each test reproduces an attack found by trying vault-run as an
//! attacker would, through the real binary, a real dev server (or a hostile one) and a real child.

mod common;

use std::io::Read;
use std::path::Path;
use std::time::Duration;

use common::{output_within, stderr_of, vault_run, DevServer};
use common::{tmp, write, T};

// ---------------------------------------------------------------------------------------------
// --mask on a terminal: the pseudo-terminal turns each "\n" the child writes into "\r\n", so a
// multi-line secret (a PEM key) no longer matched its value and went through in full.

#[tokio::test]
async fn mask_on_a_terminal_hides_a_multi_line_secret() {
    let dev = DevServer::start();
    let pem = "-----BEGIN KEY-----\nMIIEsecretline1abcdef\nMIIEsecretline2ghijkl\n-----END KEY-----";
    dev.put("production/tls/KEY", pem).await;
    let dir = tmp();
    write(dir.path(), "vault-run.toml", "[env]\nK = \"production/tls/KEY\"\n");
    let pty = nix::pty::openpty(None, None).unwrap();
    let mut cmd = vault_run(&dev, dir.path());
    cmd.args(["--mask", "--", "sh", "-c", r#"printf '%s\n' "$K""#])
        .stdout(std::process::Stdio::from(pty.slave.try_clone().unwrap()))
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    drop(cmd);
    drop(pty.slave);
    // EIO once every slave descriptor is closed: vault-run and its child are gone.
    let reader = common::drain(std::fs::File::from(pty.master));
    let status = common::wait_within(&mut child, T);
    let mut err = String::new();
    child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    assert!(status.success(), "{err}");
    let seen = String::from_utf8_lossy(&reader.join().unwrap()).into_owned();
    for line in ["MIIEsecretline1abcdef", "MIIEsecretline2ghijkl"] {
        assert!(!seen.contains(line), "the secret reached the terminal: {seen:?}");
    }
    assert!(seen.contains("[REDACTED:K]"), "{seen:?}");
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

// ---------------------------------------------------------------------------------------------
// --user: the child, dropped to an unprivileged user, shared root's terminal and could push
// input into it with ioctl(TIOCSTI), which root's shell would read and run after vault-run
// exits (the su/runuser TIOCSTI class).

const STI: &str = r#"
import fcntl, termios
try:
    with open("/dev/tty", "rb") as tty:
        for c in b"echo INJECTED\n":
            fcntl.ioctl(tty, termios.TIOCSTI, bytes([c]))
    print("sti-allowed")
except OSError as e:
    print("sti-refused", e.errno)
"#;

#[tokio::test]
async fn user_child_cannot_type_into_the_terminal_it_shares_with_root() {
    if !is_root_else_say("--user switching cannot be exercised here") {
        return;
    }
    let python = ["/usr/bin/python3", "/bin/python3", "/usr/local/bin/python3"]
        .into_iter()
        .find(|p| Path::new(p).exists());
    if !common::require(python.is_some(), "python3 in /usr/bin, /bin or /usr/local/bin") {
        return;
    }
    let python = python.unwrap();
    let dev = DevServer::with(&[("production/app/A", "value-a-0001")]).await;
    let dir = tmp();
    for mode in [None, Some("--supervise")] {
        let pty = nix::pty::openpty(None, None).unwrap();
        let mut cmd = vault_run(&dev, dir.path());
        cmd.args(["--user", "nobody"]).args(mode).args(["-e", "A=production/app/A", "--", python, "-c", STI]);
        let slave = std::os::fd::AsRawFd::as_raw_fd(&pty.slave);
        // vault-run runs with the terminal as its controlling terminal, as from a root shell.
        // SAFETY: only setsid(2) and ioctl(2) between fork and exec.
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(&mut cmd, move || {
                if libc::setsid() < 0 || libc::ioctl(slave, libc::TIOCSCTTY, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let out = output_within(&mut cmd, T);
        drop(pty);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{mode:?}: {}{stdout}", stderr_of(&out));
        assert!(
            stdout.starts_with("sti-refused"),
            "{mode:?}: the child typed into root's terminal: {stdout}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// A credential "file" that is a FIFO made vault-run wait forever in open(2), past --deadline.

#[test]
fn an_agent_key_file_that_is_a_fifo_is_refused_at_once() {
    let dir = tmp();
    let fifo = dir.path().join("agent-key");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let out = output_within(
        common::bare_vault_run(dir.path())
            .env("ASS_BASE_URL", "http://127.0.0.1:9")
            .env("ASS_AGENT_KEY_FILE", &fifo)
            .args(common::words("--deadline 5s -e A=production/app/A -- true")),
        Duration::from_secs(20),
    );
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(78), "{err}");
    assert!(err.contains("not a regular file"), "{err}");
}

// ---------------------------------------------------------------------------------------------
// ./vault-run.toml planted by another user (a shared directory, another user's checkout) chose
// the child's variables (any name off the dangerous list, set through `default`) and the
// secrets fetched, for whoever ran vault-run there. As git does for repositories, a file found
// by looking must be the caller's or root's; naming it with -f still works.

#[tokio::test]
async fn a_mapping_file_found_in_the_directory_but_owned_by_another_user_is_refused() {
    let Some((dev, dir)) = as_root_with_a_secret("cannot give a file to another user here").await else {
        return;
    };
    let file = write(
        dir.path(),
        "vault-run.toml",
        "[env]\nA = \"production/app/A\"\nPLANTED = { path = \"none/x/Y\", default = \"sh -c planted\" }\n",
    );
    std::os::unix::fs::chown(&file, Some(65534), None).unwrap();
    let out = output_within(
        vault_run(&dev, dir.path()).args(common::words("-- sh -c")).arg("echo \"$PLANTED\""),
        T,
    );
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(78), "{err}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("planted"));
    assert!(err.contains("uid 65534") && err.contains("-f"), "{err}");
    // Named explicitly, it is the caller's choice.
    let out = output_within(
        vault_run(&dev, dir.path())
            .args(common::words("-f vault-run.toml -- sh -c"))
            .arg("echo \"$PLANTED\""),
        T,
    );
    assert!(out.status.success(), "{}", stderr_of(&out));
    // `check` looks the same way.
    let out = output_within(vault_run(&dev, dir.path()).arg("check"), T);
    assert_eq!(out.status.code(), Some(78), "{}", stderr_of(&out));
}

// ---------------------------------------------------------------------------------------------
// Names missing from the dangerous list: editors and askpass helpers name commands programs run
// (`git commit` runs $GIT_EDITOR), and some variables turn TLS verification off or write TLS
// keys out. A `default` in a mapping sets any of them to a chosen command.

/// Variables whose value is a command some program runs, or that switch TLS checks off.
const NAMES_THAT_RUN_OR_UNCHECK: [&str; 12] = [
    "EDITOR",
    "VISUAL",
    "GIT_EDITOR",
    "GIT_SEQUENCE_EDITOR",
    "SUDO_ASKPASS",
    "MANPAGER",
    "SYSTEMD_PAGER",
    "BROWSER",
    "NODE_TLS_REJECT_UNAUTHORIZED",
    "GIT_SSL_NO_VERIFY",
    "PYTHONHTTPSVERIFY",
    "SSLKEYLOGFILE",
];

#[test]
fn names_that_run_a_command_or_turn_tls_checks_off_are_refused() {
    let dir = tmp();
    for name in NAMES_THAT_RUN_OR_UNCHECK {
        write(
            dir.path(),
            "vault-run.toml",
            &format!("[env]\n{name} = {{ path = \"none/x/Y\", default = \"sh -c planted\" }}\n"),
        );
        let out = output_within(
            common::bare_vault_run(dir.path())
                .env("ASS_BASE_URL", "http://127.0.0.1:9")
                .env("ASS_AGENT_KEY", "ass_review_key_0123456789")
                .args(["--", "true"]),
            T,
        );
        let err = stderr_of(&out);
        assert_eq!(out.status.code(), Some(78), "{name}: {err}");
        assert!(err.contains(&format!("refusing to set {name}")), "{err}");
    }
}

// ---------------------------------------------------------------------------------------------
// VAULT_CACERT was read whole with no bound: a FIFO hung the start past --deadline, and
// /dev/zero ate memory until the process died.

#[test]
fn a_vault_cacert_that_is_not_a_regular_file_is_refused_at_once() {
    let dir = tmp();
    let fifo = dir.path().join("ca.pem");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    for ca in [fifo.as_path(), Path::new("/dev/zero")] {
        let out = output_within(
            common::bare_vault_run(dir.path())
                .env("VAULT_ADDR", "http://127.0.0.1:9")
                .env("VAULT_TOKEN", "hvs.review-token-0123456789")
                .env("VAULT_CACERT", ca)
                .args(common::words("--deadline 5s -e A=vault://secret/app#a -- true")),
            Duration::from_secs(20),
        );
        let err = stderr_of(&out);
        assert_eq!(out.status.code(), Some(78), "{}: {err}", ca.display());
        assert!(err.contains("VAULT_CACERT") && err.contains("regular file"), "{err}");
    }
}

// ---------------------------------------------------------------------------------------------
// `.`/`..` segments in a reference: URLs resolve them, so a mapping could send the scoped token
// (or the Vault token) to another API path than a secret read: `vault://secret/../auth/token/
// lookup-self#id` read the token's own id into the child's environment from a server that
// answered the mount lookup.

#[test]
fn references_with_dot_segments_are_refused_before_any_request() {
    let dir = tmp();
    for reference in [
        "production/../../tokens/X",
        "ass://production/./app/KEY",
        "vault://secret/../auth/token/lookup-self#id",
        "vault://secret/app/..#id",
    ] {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let out = output_within(
            common::bare_vault_run(dir.path())
                .env("ASS_BASE_URL", &url)
                .env("ASS_AGENT_KEY", "ass_review_key_0123456789")
                .env("VAULT_ADDR", &url)
                .env("VAULT_TOKEN", "hvs.review-token-0123456789")
                .args(common::words(&format!("-e A={reference} -- true"))),
            T,
        );
        let err = stderr_of(&out);
        assert_eq!(out.status.code(), Some(78), "{reference}: {err}");
        assert!(err.contains("'..' segment"), "{reference}: {err}");
        assert!(listener.accept().is_err(), "{reference}: a request was made");
    }
}

// ---------------------------------------------------------------------------------------------
// A server (or a gateway before it) whose error message repeats the credential it was sent put
// the agent key or the Vault token on stderr with the message.

#[test]
fn a_server_error_that_echoes_the_credential_does_not_print_it() {
    let dir = tmp();
    // A hostile server at `url` answers `status` with `body`; vault-run ends with 77 and its
    // stderr never holds `credential`.
    let refused =
        |url_var: &str, credential_var: &str, credential: &str, reference: &str, status: &str, body: &str| {
            let url = common::raw_server(common::http_json(status, body));
            let out =
                output_within(
                    common::bare_vault_run(dir.path())
                        .env(url_var, &url)
                        .env(credential_var, credential)
                        .args(["-e", &format!("A={reference}"), "--", "true"]),
                    T,
                );
            let err = stderr_of(&out);
            assert_eq!(out.status.code(), Some(77), "{err}");
            assert!(!err.contains(credential), "{err}");
            err
        };
    let key = "ass_review_key_SECRET_0123456789";
    let body = format!(
        r#"{{"error":{{"code":"UNAUTHORIZED","message":"invalid agent key {key} for this tenant"}}}}"#
    );
    let err = refused("ASS_BASE_URL", "ASS_AGENT_KEY", key, "production/app/A", "401 Unauthorized", &body);
    assert!(err.contains("invalid agent key [REDACTED] for this tenant"), "{err}");

    let token = "hvs.review-token-SECRET-0123456789";
    let body = format!(r#"{{"errors":["permission denied for token {token}"]}}"#);
    refused("VAULT_ADDR", "VAULT_TOKEN", token, "vault://secret/app#a", "403 Forbidden", &body);
}

// ---------------------------------------------------------------------------------------------
// --user --supervise: vault-run (root) looked the command up on PATH before the fork, so a PATH
// entry only root can enter (`/root/.local/bin`, a pyenv shim) won, and the child, as the user,
// failed with 126 where exec mode (which searches after switching) ran the next one.

#[tokio::test]
async fn user_supervised_command_is_looked_up_as_the_user() {
    let Some((dev, dir)) = as_root_with_a_secret("--user switching cannot be exercised here").await else {
        return;
    };
    let private = dir.path().join("root-only");
    std::fs::create_dir(&private).unwrap();
    write(&private, "sh", "#!/bin/sh\necho root-only-sh\n");
    std::fs::set_permissions(private.join("sh"), std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .unwrap();
    std::fs::set_permissions(&private, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    std::fs::set_permissions(dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let path = format!("{}:/usr/bin:/bin", private.display());
    for mode in [None, Some("--supervise")] {
        let out = output_within(
            vault_run(&dev, dir.path())
                .env("PATH", &path)
                .args(["--user", "nobody"])
                .args(mode)
                .args(common::words("-e A=production/app/A -- sh -c"))
                .arg("echo ran-as-$(id -u)"),
            T,
        );
        assert!(out.status.success(), "{mode:?}: {}", stderr_of(&out));
        assert_eq!(String::from_utf8_lossy(&out.stdout), "ran-as-65534\n", "{mode:?}");
    }
}

/// Whether the test runs as root; when not, says on stderr what cannot be exercised, so the
/// early return is visible in the output.
fn is_root_else_say(what_cannot_run: &str) -> bool {
    let root = nix::unistd::Uid::effective().is_root();
    if !root {
        eprintln!("not root: {what_cannot_run}");
    }
    root
}

/// As root only: a dev server holding `production/app/A` and a fresh directory to run in.
async fn as_root_with_a_secret(what_cannot_run: &str) -> Option<(DevServer, tempfile::TempDir)> {
    if !is_root_else_say(what_cannot_run) {
        return None;
    }
    Some((DevServer::with(&[("production/app/A", "value-a-0001")]).await, tmp()))
}
