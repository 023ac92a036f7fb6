//! `--user`: the child runs as another user, who can read neither the key nor root's
//! terminal, and whose files cannot choose what root reads.

mod common;

use std::path::Path;

use common::{
    as_root_with_a_secret, credentials_dir, is_root_else_say, key_from_credentials, marker_child,
    output_within, stderr_of, tmp, vault_run, write, DevServer, T,
};

// ---------------------------------------------------------------------------------------------
// A --user child on a terminal gets a pseudo-terminal of its own. A grandchild that
// outlives it (its own process group, SIGHUP ignored) must not be able to take the foreground
// of root's terminal (TIOCSPGRP) or read from it.

const HIJACK: &str = r#"
import os, signal, sys, time
out, go, root_tty = sys.argv[1], sys.argv[2], sys.argv[3]
def report(line):
    with open(out, "a") as f:
        f.write(line + "\n")
names = [os.ttyname(fd) if os.isatty(fd) else "-" for fd in (0, 1, 2)]
report("child " + " ".join(names))
if os.fork() == 0:
    os.setpgid(0, 0)
    for s in (signal.SIGHUP, signal.SIGTTOU, signal.SIGTTIN):
        signal.signal(s, signal.SIG_IGN)
    for _ in range(400):
        if os.path.exists(go):
            break
        time.sleep(0.05)
    got = []
    fds = [0, 1, 2]
    try:
        fds.append(os.open("/dev/tty", os.O_RDWR | os.O_NONBLOCK))
    except OSError as e:
        got.append("devtty:errno%d" % e.errno)
    for fd in fds:
        try:
            name = os.ttyname(fd)
        except OSError:
            name = "-"
        try:
            os.tcsetpgrp(fd, os.getpgrp())
            got.append("fd%d:%s:TOOK" % (fd, name))
        except OSError as e:
            got.append("fd%d:%s:errno%d" % (fd, name, e.errno))
        try:
            os.set_blocking(fd, False)
            data = os.read(fd, 100)
            got.append("fd%d:READ:%r" % (fd, data) if data else "fd%d:eof" % fd)
        except OSError as e:
            got.append("fd%d:read-errno%d" % (fd, e.errno))
    report("grandchild " + " ".join(got))
    os._exit(0)
time.sleep(0.3)
sys.exit(7)
"#;

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

fn running_as_root() -> bool {
    nix::unistd::Uid::effective().is_root()
}

const WHO: &str = r#"echo "$(id -u):$(id -g):$(id -G):$HOME:$USER:$LOGNAME:$A"; if cat "$KEY" >/dev/null 2>&1; then echo KEY-READ; else echo KEY-DENIED; fi; if cat /proc/$PPID/environ >/dev/null 2>&1; then echo PARENT-READ; else echo PARENT-DENIED; fi; echo "file=$(cat "$TLS")""#;

#[tokio::test]
async fn user_runs_the_child_as_another_user_who_cannot_read_the_key() {
    if !running_as_root() {
        // Switching users needs root; the non-root refusal is tested below.
        eprintln!("not root: --user switching cannot be exercised here");
        return;
    }
    let dev = DevServer::with(&[("production/app/A", "value-a")]).await;
    dev.put("production/tls/KEY", "tls-key-0002").await;
    let creds = credentials_dir(&dev);
    let key = creds.path().join("ass-agent-key");
    let work = tmp();
    let mapping = "[env]\nA = \"production/app/A\"\nTLS = { path = \"production/tls/KEY\", as = \"file\" }\n";
    write(work.path(), "vault-run.toml", mapping);
    for (user, mode) in
        [("nobody", None), ("65534:65534", None), ("nobody", Some("--supervise")), ("nobody", Some("--mask"))]
    {
        let mut c = key_from_credentials(&dev, work.path(), creds.path());
        c.env("KEY", &key).env("HOME", "/root").env("USER", "root").env("LOGNAME", "root");
        c.args(["--keep-credentials-directory", "--user", user]).args(mode);
        let out = output_within(c.args(common::words("-- sh -c")).arg(WHO), T);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{user} {mode:?}: {}{stdout}", stderr_of(&out));
        let mut lines = stdout.lines();
        let shown = if mode == Some("--mask") { "[REDACTED:A]" } else { "value-a" };
        assert_eq!(
            lines.next().unwrap(),
            format!("65534:65534:65534:/nonexistent:nobody:nobody:{shown}"),
            "{user} {mode:?}"
        );
        assert_eq!(lines.next().unwrap(), "KEY-DENIED", "{user} {mode:?}");
        // Supervising, vault-run is the parent: root's and non-dumpable, out of the child's reach.
        assert_eq!(lines.next().unwrap(), "PARENT-DENIED", "{user} {mode:?}");
        // The in-memory files are still the child's to read.
        let tls = if mode == Some("--mask") { "[REDACTED:TLS]" } else { "tls-key-0002" };
        assert_eq!(lines.next().unwrap(), format!("file={tls}"), "{user} {mode:?}");
    }
    // The mapping wins over the user's HOME.
    write(work.path(), "vault-run.toml", &format!("{mapping}HOME = \"production/app/A\"\n"));
    let out = output_within(
        key_from_credentials(&dev, work.path(), creds.path())
            .env("KEY", &key)
            .args(common::words("--user nobody -- sh -c"))
            .arg(WHO),
        T,
    );
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("65534:65534:65534:value-a:nobody"));
}

#[tokio::test]
async fn user_refuses_an_unknown_user_and_a_switch_without_root() {
    let dev = DevServer::with(&[("production/app/A", "value-a")]).await;
    let work = tmp();
    write(work.path(), "vault-run.toml", "[env]\nA = \"production/app/A\"\n");
    for spec in ["no-such-user-xyz", "nobody:no-such-group-xyz"] {
        let out = output_within(vault_run(&dev, work.path()).args(["--user", spec, "--", "true"]), T);
        let err = stderr_of(&out);
        assert_eq!(out.status.code(), Some(78), "{spec}: {err}");
        assert!(err.contains("no such"), "{err}");
    }
    assert_eq!(dev.count("POST /v1/tokens").await, 0, "nothing fetched before the refusal");
    if !running_as_root() {
        return;
    }
    // vault-run itself started as nobody: switching to root is refused, naming itself is fine.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(work.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(work.path().join("vault-run.toml"), std::fs::Permissions::from_mode(0o644))
        .unwrap();
    for (spec, code) in [("root", 78), ("0", 78), ("nobody", 0)] {
        use std::os::unix::process::CommandExt;
        let mut c = vault_run(&dev, work.path());
        c.uid(65534).gid(65534);
        let out = output_within(c.args(["--user", spec, "--", "true"]), T);
        assert_eq!(out.status.code(), Some(code), "{spec}: {}", stderr_of(&out));
        if code == 78 {
            assert!(stderr_of(&out).contains("not running as root"), "{}", stderr_of(&out));
        }
    }
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

#[tokio::test]
async fn a_user_childs_descendants_cannot_take_roots_terminal() {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::PermissionsExt;
    if !is_root_else_say("--user switching cannot be exercised here") {
        return;
    }
    let Some(python) = ["/usr/bin/python3", "/bin/python3", "/usr/local/bin/python3"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
    else {
        assert!(!common::under_ci(), "python3 is required under CI");
        return;
    };
    let dev = DevServer::with(&[("production/plain/TOKEN", "plain-token-value")]).await;
    for mode in [None, Some("--supervise"), Some("--mask")] {
        let dir = tmp();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        let out_file = dir.path().join("out");
        let go = dir.path().join("go");
        let script = write(dir.path(), "hijack.py", HIJACK);
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o644)).unwrap();
        // Root's terminal: vault-run's stdin, stdout, stderr and controlling terminal.
        let ws = libc::winsize { ws_row: 33, ws_col: 111, ws_xpixel: 0, ws_ypixel: 0 };
        let pty = nix::pty::openpty(Some(&ws), None).unwrap();
        let root_tty = std::fs::read_link(format!("/proc/self/fd/{}", pty.slave.as_raw_fd())).unwrap();
        let mut cmd = vault_run(&dev, dir.path());
        cmd.args(["--user", "nobody"]).args(mode).args(["-e", "A=production/plain/TOKEN", "--", python]);
        cmd.arg(&script).arg(&out_file).arg(&go).arg(&root_tty);
        let slave = pty.slave.as_raw_fd();
        cmd.stdin(pty.slave.try_clone().unwrap()).stdout(pty.slave.try_clone().unwrap());
        cmd.stderr(pty.slave.try_clone().unwrap());
        // SAFETY: only setsid(2) and ioctl(2) between fork and exec.
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(&mut cmd, move || {
                if libc::setsid() < 0 || libc::ioctl(slave, libc::TIOCSCTTY, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut child = cmd.spawn().unwrap();
        drop(cmd);
        let output = common::drain(std::fs::File::from(pty.master.try_clone().unwrap()));
        let status = common::wait_within(&mut child, T);
        let before = nix::unistd::tcgetpgrp(&pty.master).ok();
        // What root types next at its shell prompt.
        nix::unistd::write(&pty.master, b"root-typed-this\n").unwrap();
        std::fs::write(&go, "").unwrap();
        let until = std::time::Instant::now() + std::time::Duration::from_secs(20);
        let read = || std::fs::read_to_string(&out_file).unwrap_or_default();
        while !read().contains("grandchild") {
            assert!(std::time::Instant::now() < until, "{mode:?}: no grandchild report: {}", read());
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let report = read();
        let after = nix::unistd::tcgetpgrp(&pty.master).ok();
        drop(pty);
        let shown = String::from_utf8_lossy(&output.join().unwrap()).into_owned();
        assert_eq!(status.code(), Some(7), "{mode:?}: the child's status passes through: {shown}");
        let root = root_tty.display().to_string();
        let child_line = report.lines().find(|l| l.starts_with("child ")).unwrap();
        assert!(!child_line.contains(&root), "{mode:?}: the child holds root's terminal: {child_line}");
        assert!(
            child_line.contains("/dev/pts/"),
            "{mode:?}: the child has a terminal of its own: {child_line}"
        );
        assert!(!report.contains("TOOK"), "{mode:?}: a descendant took root's terminal: {report}");
        assert!(!report.contains("root-typed"), "{mode:?}: a descendant read what root typed: {report}");
        assert!(
            !report.contains(&format!("{root}:")),
            "{mode:?}: a descendant holds root's terminal: {report}"
        );
        assert_eq!(before, after, "{mode:?}: root's terminal's foreground group changed");
    }
}

#[tokio::test]
async fn a_user_child_on_a_terminal_gets_the_window_size_and_its_own_tty() {
    use std::os::fd::AsRawFd;
    if !is_root_else_say("--user switching cannot be exercised here") {
        return;
    }
    let dev = DevServer::with(&[("production/plain/TOKEN", "plain-token-value")]).await;
    let dir = tmp();
    let ws = libc::winsize { ws_row: 33, ws_col: 111, ws_xpixel: 0, ws_ypixel: 0 };
    let pty = nix::pty::openpty(Some(&ws), None).unwrap();
    let root_tty = std::fs::read_link(format!("/proc/self/fd/{}", pty.slave.as_raw_fd())).unwrap();
    let mut cmd = vault_run(&dev, dir.path());
    cmd.args(["--user", "nobody", "-e", "A=production/plain/TOKEN", "--", "sh", "-c"]);
    cmd.arg("stty size; tty; id -u; exit 5");
    cmd.stdin(pty.slave.try_clone().unwrap()).stdout(pty.slave.try_clone().unwrap());
    cmd.stderr(pty.slave.try_clone().unwrap());
    let mut child = cmd.spawn().unwrap();
    drop(cmd);
    drop(pty.slave);
    let output = common::drain(std::fs::File::from(pty.master));
    let status = common::wait_within(&mut child, T);
    let shown = String::from_utf8_lossy(&output.join().unwrap()).into_owned();
    assert_eq!(status.code(), Some(5), "{shown}");
    let lines: Vec<&str> = shown.lines().map(str::trim_end).collect();
    assert_eq!(lines.first(), Some(&"33 111"), "{shown}");
    assert!(
        lines.get(1).is_some_and(|t| t.starts_with("/dev/pts/") && *t != root_tty.to_str().unwrap()),
        "{shown}"
    );
    assert_eq!(lines.get(2), Some(&"65534"), "{shown}");
}

#[tokio::test]
async fn under_user_a_mapping_or_env_file_the_target_user_could_write_is_refused() {
    use std::os::unix::fs::{chown, PermissionsExt};
    if !is_root_else_say("--user switching cannot be exercised here") {
        return;
    }
    let dev = DevServer::with(&[("production/plain/TOKEN", "plain-token-value")]).await;
    let nobody = nix::unistd::User::from_name("nobody").unwrap().unwrap().uid.as_raw();
    let mode = |p: &std::path::Path, m: u32| {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap()
    };
    // A root-only file the child must never get through a file:// reference.
    let secret_dir = tmp();
    let secret = write(secret_dir.path(), "root-only.key", "root-only-private-key-material");
    mode(&secret, 0o600);
    let mapping_text = format!("[env]\nSTOLEN = \"file://{}\"\n", secret.display());
    let env_text = format!("STOLEN=file://{}\nLIT=x\n", secret.display());
    let run = |dir: &std::path::Path, args: &[&str]| {
        let marker = dir.join("started");
        let _ = std::fs::remove_file(&marker);
        let mut cmd = vault_run(&dev, dir);
        cmd.args(["--user", "nobody"]).args(args).arg("--").args(marker_child(&marker));
        (output_within(&mut cmd, T), marker)
    };
    // (how the file is made unsafe, what the message must name)
    type Setup = fn(&std::path::Path, &std::path::Path, u32);
    let cases: [(&str, Setup, &str); 4] = [
        ("owned by the user", |f, _, u| chown(f, Some(u), None).unwrap(), "chown root:root"),
        (
            "writable by others",
            |f, _, _| std::fs::set_permissions(f, std::fs::Permissions::from_mode(0o666)).unwrap(),
            "chmod go-w",
        ),
        (
            "writable by group",
            |f, _, _| std::fs::set_permissions(f, std::fs::Permissions::from_mode(0o664)).unwrap(),
            "chmod go-w",
        ),
        ("in a directory the user owns", |_, d, u| chown(d, Some(u), None).unwrap(), "chown root:root"),
    ];
    for (how, setup, fix) in cases {
        for (kind, flag) in [("mapping", "-f"), ("env", "--env-file"), ("discovered", "")] {
            let dir = tmp();
            mode(dir.path(), 0o755);
            let sub = dir.path().join("app");
            std::fs::create_dir(&sub).unwrap();
            mode(&sub, 0o755);
            let name = if kind == "env" { "app.env" } else { "vault-run.toml" };
            let file = write(&sub, name, if kind == "env" { &env_text } else { &mapping_text });
            mode(&file, 0o644);
            setup(&file, &sub, nobody);
            let shown = file.display().to_string();
            let args: Vec<&str> = if flag.is_empty() { vec![] } else { vec![flag, &shown] };
            let (out, marker) = run(&sub, &args);
            let err = stderr_of(&out);
            assert_eq!(out.status.code(), Some(78), "{kind} file {how}: {err}");
            assert!(!marker.exists(), "{kind} file {how}: the child was started");
            assert!(err.contains("--user") && err.contains(fix), "{kind} file {how}: {err}");
            assert!(!err.contains("root-only-private"), "{err}");
        }
    }
    // Control: root's own files, in root's own directories, are used.
    let dir = tmp();
    mode(dir.path(), 0o755);
    let mapping = write(dir.path(), "m.toml", "[env]\nA = \"production/plain/TOKEN\"\n");
    let env_file = write(dir.path(), "app.env", "LIT=x\n");
    mode(&mapping, 0o644);
    mode(&env_file, 0o644);
    let mut cmd = vault_run(&dev, dir.path());
    cmd.args(["--user", "nobody", "-f"]).arg(&mapping).arg("--env-file").arg(&env_file);
    cmd.args(["--", "sh", "-c", "echo $A $LIT"]);
    let out = output_within(&mut cmd, T);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "plain-token-value x\n", "{}", stderr_of(&out));
}
