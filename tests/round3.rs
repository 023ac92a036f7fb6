//! Security review, third round (issue 20, and the file checks of issues 21 and 24): each test
//! reproduces a finding against the real binary, a real dev server and a real child, and fails
//! on the code before its fix.

mod common;

use common::{assert_not_started, marker_child, output_within, stderr_of, vault_run, DevServer, Trap};
use common::{tmp, write, T};

// ---------------------------------------------------------------------------------------------
// 20.1: `${VAR}` expansion never reads a credential vault-run removes from the child.

#[tokio::test]
async fn expansion_refuses_every_credential_in_env_files_references_and_vault_paths() {
    let dev = DevServer::with(&[("production/plain/TOKEN", "plain-token-value")]).await;
    let dir = tmp();
    let marker = dir.path().join("started");
    let trap = Trap::new();
    // The Vault token and AppRole secret id, and the admin key, the same way as the agent key.
    let creds = [
        ("ASS_AGENT_KEY", dev.agent_key.clone()),
        ("ASS_ADMIN_KEY", "ass_admin_canary_4242424242".to_owned()),
        ("VAULT_TOKEN", "hvs.vault_token_canary_777".to_owned()),
        ("VAULT_SECRET_ID", "secret-id-canary-31337".to_owned()),
    ];
    for (var, value) in &creds {
        let env_file = write(dir.path(), "leak.env", &format!("HARMLESS_LOOKING=${{{var}}}\n"));
        let ref_env = write(dir.path(), "ref.env", &format!("X=ass://production/plain/${{{var}:-TOKEN}}\n"));
        let mapping =
            write(dir.path(), "leak.toml", &format!("[env]\nX = \"production/plain/${{{var}}}\"\n"));
        let vault =
            write(dir.path(), "vault.toml", &format!("[env]\nDB = \"vault://secret/app/${{{var}}}#pw\"\n"));
        let runs: [Vec<String>; 5] = [
            vec![
                "--env-file".into(),
                env_file.display().to_string(),
                "-e".into(),
                "A=production/plain/TOKEN".into(),
            ],
            vec!["--env-file".into(), ref_env.display().to_string()],
            vec!["-f".into(), mapping.display().to_string()],
            vec!["-e".into(), format!("X=production/plain/${{{var}}}")],
            vec!["-f".into(), vault.display().to_string()],
        ];
        for args in &runs {
            for check in [false, true] {
                let mut cmd = vault_run(&dev, dir.path());
                cmd.env(var, value).env("VAULT_ADDR", trap.url());
                if *var != "VAULT_TOKEN" {
                    cmd.env("VAULT_TOKEN", "hvs.other");
                }
                if check {
                    cmd.arg("check").args(args);
                } else {
                    cmd.args(args).arg("--").args(marker_child(&marker));
                }
                let out = output_within(&mut cmd, T);
                let err = stderr_of(&out);
                let stdout = String::from_utf8_lossy(&out.stdout);
                assert_not_started(&out, 78, &marker);
                assert!(err.contains(&format!("refusing to expand ${{{var}}}")), "{var} {args:?}: {err}");
                assert!(
                    !err.contains(value.as_str()) && !stdout.contains(value.as_str()),
                    "{var} {args:?}: {err}{stdout}"
                );
            }
        }
    }
    assert!(!trap.connected(), "a vault:// reference reached VAULT_ADDR");
    assert!(!dev.stderr().contains(&dev.agent_key), "the agent key reached the server's log");
    // An ordinary variable still expands.
    let mut cmd = vault_run(&dev, dir.path());
    cmd.env("APP_ENV", "plain").args(["-e", "X=production/${APP_ENV}/TOKEN", "--", "printenv", "X"]);
    let out = output_within(&mut cmd, T);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "plain-token-value\n", "{}", stderr_of(&out));
}

// ---------------------------------------------------------------------------------------------
// 20.4: env-file literals go through the dangerous-names list, with --allow-name as the way out.

#[tokio::test]
async fn env_file_literals_with_dangerous_names_are_refused_before_any_fetch() {
    let dev = DevServer::with(&[("production/plain/TOKEN", "plain-token-value")]).await;
    let dir = tmp();
    let marker = dir.path().join("started");
    for line in [
        "LD_PRELOAD=/tmp/evil.so",
        "NODE_OPTIONS=\"--require /tmp/evil.js\"",
        "GIT_SSH_COMMAND=\"touch /tmp/pwned\"",
        "HTTPS_PROXY=http://attacker.example:8080",
        "https_proxy=http://attacker.example:8080",
        "SSL_CERT_FILE=/tmp/ca.pem",
    ] {
        let name = line.split('=').next().unwrap();
        let env_file = write(dir.path(), "danger.env", &format!("{line}\n"));
        let mut cmd = vault_run(&dev, dir.path());
        cmd.arg("--env-file")
            .arg(&env_file)
            .args(["-e", "A=production/plain/TOKEN", "--"])
            .args(marker_child(&marker));
        let out = output_within(&mut cmd, T);
        let err = stderr_of(&out);
        assert_not_started(&out, 78, &marker);
        assert!(err.contains(&format!("refusing to set {name}")) && err.contains("--allow-name"), "{err}");
        assert!(err.contains("danger.env"), "names the file: {err}");
    }
    assert_eq!(dev.count("POST /v1/tokens").await, 0, "nothing was fetched");
    // --allow-name lets it through.
    let env_file = write(dir.path(), "danger.env", "NODE_OPTIONS=\"--max-old-space-size=64\"\n");
    let mut cmd = vault_run(&dev, dir.path());
    cmd.arg("--env-file").arg(&env_file).args([
        "--allow-name",
        "NODE_OPTIONS",
        "--",
        "printenv",
        "NODE_OPTIONS",
    ]);
    let out = output_within(&mut cmd, T);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "--max-old-space-size=64\n", "{}", stderr_of(&out));
}

// ---------------------------------------------------------------------------------------------
// 20.5: a FIFO or a device given as a file vault-run reads is refused at once (78).

#[tokio::test]
async fn fifos_and_devices_as_env_file_or_ca_files_are_refused_at_once() {
    let dev = DevServer::with(&[("production/plain/TOKEN", "plain-token-value")]).await;
    let dir = tmp();
    let marker = dir.path().join("started");
    let fifo = dir.path().join("fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let fifo = fifo.display().to_string();
    let proxied = write(
        dir.path(),
        "api.toml",
        "[env]\nK = { path = \"production/plain/TOKEN\", hosts = [\"api.test\"] }\n",
    )
    .display()
    .to_string();
    // (what the error names, flags, an environment variable)
    type Case<'a> = (&'a str, Vec<String>, Option<(&'a str, &'a str)>);
    let cases: [Case; 5] = [
        ("--env-file", vec!["--env-file".into(), fifo.clone()], None),
        ("--env-file", vec!["--env-file".into(), "/dev/zero".into()], None),
        ("--upstream-ca", vec!["-f".into(), proxied.clone(), "--upstream-ca".into(), fifo.clone()], None),
        ("ASS_CACERT", vec![], Some(("ASS_CACERT", fifo.as_str()))),
        ("SSL_CERT_FILE", vec!["-f".into(), proxied.clone()], Some(("SSL_CERT_FILE", fifo.as_str()))),
    ];
    for (what, args, env) in cases {
        let started = std::time::Instant::now();
        let mut cmd = vault_run(&dev, dir.path());
        cmd.envs(env)
            .args(["-e", "A=production/plain/TOKEN"])
            .args(&args)
            .arg("--")
            .args(marker_child(&marker));
        let out = output_within(&mut cmd, T);
        let err = stderr_of(&out);
        assert_not_started(&out, 78, &marker);
        assert!(err.contains(what) && err.contains("not a regular file"), "{what}: {err}");
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "{what}: took {:?}",
            started.elapsed()
        );
    }
    // A descriptor handed over on purpose (process substitution) is still read.
    let out = output_within(
        std::process::Command::new("bash")
            .current_dir(dir.path())
            .env("ASS_BASE_URL", &dev.base_url)
            .env("ASS_AGENT_KEY", &dev.agent_key)
            .args([
                "-c",
                &format!("{} --env-file <(printf 'LIT=from-a-pipe\\n') -- printenv LIT", common::bin()),
            ]),
        T,
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "from-a-pipe\n", "{}", stderr_of(&out));
}

// ---------------------------------------------------------------------------------------------
// Issue 21 item 2 (and 20's "Also"): `$` in env files is kept; only ${VAR} and ${VAR:-default}
// expand; single quotes are literal; parse errors name the line and the reason.

#[tokio::test]
async fn dollars_in_env_files_reach_the_child_as_written() {
    let dev = DevServer::start();
    let dir = tmp();
    let env_file = write(
        dir.path(),
        "app.env",
        concat!(
            "P=p$ssw0rd\n",
            "Q=abc$\n",
            "R=sk-$$-x\n",
            "S=\"p$ss w0rd\"\n",
            "T='${APP_ENV} $MY_VAR'\n",
            "U=${APP_ENV}/x\n",
            "V=\"${NOPE:-dflt}\"\n",
            "W=$MY_VAR\n",
            "export X=\"line1\\nline2\" # comment\n",
        ),
    );
    let mut cmd = vault_run(&dev, dir.path());
    cmd.env("APP_ENV", "prod")
        .env("MY_VAR", "hello")
        .arg("--env-file")
        .arg(&env_file)
        .args(["--", "env", "-0"]);
    let env = common::env_after(&mut cmd);
    common::assert_env(
        &env,
        &[
            ("P", "p$ssw0rd"),
            ("Q", "abc$"),
            ("R", "sk-$$-x"),
            ("S", "p$ss w0rd"),
            ("T", "${APP_ENV} $MY_VAR"),
            ("U", "prod/x"),
            ("V", "dflt"),
            ("W", "$MY_VAR"),
            ("X", "line1\nline2"),
        ],
    );
    // An unset ${VAR} without a default is an error naming it; a parse error names the line and why.
    for (text, expect) in [
        ("A=${NOPE}\n", vec!["${NOPE} is not set", "set NOPE"]),
        ("A=1\nB=\"p$ssw0rd-unclosed\n", vec!["bad.env:2:", "never closed"]),
        ("A=1\n\nB='x' y\n", vec!["bad.env:3:", "after the closing"]),
    ] {
        let bad = write(dir.path(), "bad.env", text);
        let mut cmd = vault_run(&dev, dir.path());
        cmd.arg("--env-file").arg(&bad).args(["--", "true"]);
        let out = output_within(&mut cmd, T);
        let err = stderr_of(&out);
        assert_eq!(out.status.code(), Some(78), "{text:?}: {err}");
        for e in expect {
            assert!(err.contains(e), "{text:?}: expected {e:?} in {err}");
        }
        assert!(!err.contains("p$ssw0rd"), "the line's text is not quoted: {err}");
    }
}

// ---------------------------------------------------------------------------------------------
// 20.3 (and issue 24's --user point): under --user, what names the files root reads must be
// root's alone: the mapping file (named or discovered) and the env files.

fn is_root_else_say(what_cannot_run: &str) -> bool {
    let root = nix::unistd::Uid::effective().is_root();
    if !root {
        eprintln!("not root: {what_cannot_run}");
    }
    root
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

// ---------------------------------------------------------------------------------------------
// 20.2: a --user child on a terminal gets a pseudo-terminal of its own. A grandchild that
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
