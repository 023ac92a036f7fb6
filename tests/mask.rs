//! `--mask`: secrets printed by the child are redacted in what it writes, on a terminal or
//! through pipes, and the pseudo-terminal's master never reaches the child.

mod common;

use std::io::Read;
use std::time::Duration;

use common::{env_of, output_within, stderr_of, tmp, vault_run, write, DevServer, T};

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
// --mask hides each secret that went into a template, on its own too.

#[tokio::test]
async fn mask_hides_a_template_secret_printed_alone() {
    let dev = DevServer::with(&[("production/db/PASSWORD", "db-pass-value-0002")]).await;
    let dir = tmp();
    write(
        dir.path(),
        "vault-run.toml",
        "[env]\nDATABASE_URL = { template = \"postgres://app:{{ production/db/PASSWORD }}@db/app\" }\n",
    );
    let script = r#"echo "url=$DATABASE_URL"; p=${DATABASE_URL#postgres://app:}; echo "alone=${p%@db/app}""#;
    let out =
        output_within(vault_run(&dev, dir.path()).args(common::words("--mask -- sh -c")).arg(script), T);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(!stdout.contains("db-pass-value-0002"), "{stdout}");
    assert_eq!(stdout, "url=[REDACTED:DATABASE_URL]\nalone=[REDACTED:DATABASE_URL]\n");
}

// ---------------------------------------------------------------------------------------------
// --mask: a secret split between stdout and stderr going to the same place.

#[tokio::test]
async fn mask_sees_a_secret_split_between_stdout_and_stderr_sent_to_one_file() {
    let dev = DevServer::with(&[("production/app/A", "split-secret-value-0042")]).await;
    let dir = tmp();
    write(dir.path(), "vault-run.toml", "[env]\nA = \"production/app/A\"\n");
    let log = dir.path().join("log");
    let file = std::fs::File::create(&log).unwrap();
    let script = r#"printf '%s' "${A%%-value-0042}"; printf '%s\n' "-value-0042" >&2; echo done"#;
    let status = vault_run(&dev, dir.path())
        .args(common::words("--mask -q -- sh -c"))
        .arg(script)
        .stdout(file.try_clone().unwrap())
        .stderr(file)
        .status()
        .unwrap();
    assert!(status.success());
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(!text.contains("split-secret"), "{text}");
    assert_eq!(text, "[REDACTED:A]\ndone\n");
}

// ---------------------------------------------------------------------------------------------
// The child gets stdin, stdout, stderr and its `as = "file"` descriptors, nothing else.

#[tokio::test]
async fn the_pseudo_terminal_master_does_not_leak_into_the_child() {
    let dev =
        DevServer::with(&[("production/app/A", "value-a-0001"), ("production/tls/KEY", "tls-key-0002")])
            .await;
    let dir = tmp();
    write(
        dir.path(),
        "vault-run.toml",
        "[env]\nA = \"production/app/A\"\nTLS = { path = \"production/tls/KEY\", as = \"file\" }\n",
    );
    // vault-run's stdout is a terminal: --mask then runs the child on a pseudo-terminal.
    let pty = nix::pty::openpty(None, None).unwrap();
    let mut cmd = vault_run(&dev, dir.path());
    cmd.args(common::words("--mask -- sleep 30"))
        .stdout(std::process::Stdio::from(pty.slave.try_clone().unwrap()))
        .stderr(std::process::Stdio::piped());
    // vault-run starts with 0, 1 and 2 only (the harness's own descriptors, which vault-run
    // rightly passes on, would blur the picture).
    // SAFETY: only close(2) between fork and exec.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut cmd, || {
            for fd in 3..4096 {
                libc::close(fd);
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().unwrap();
    drop(cmd);
    drop(pty.slave);
    // Drain the terminal so nothing vault-run writes can block.
    let master = std::fs::File::from(pty.master);
    std::thread::spawn(move || std::io::copy(&mut &master, &mut std::io::sink()));
    let children = format!("/proc/{0}/task/{0}/children", child.id());
    let start = std::time::Instant::now();
    let grandchild = loop {
        let text = std::fs::read_to_string(&children).unwrap_or_default();
        if let Some(pid) = text.split_whitespace().next() {
            let pid = pid.to_owned();
            // Past the exec: the command line is sleep's.
            if std::fs::read_to_string(format!("/proc/{pid}/cmdline"))
                .unwrap_or_default()
                .starts_with("sleep")
            {
                break pid;
            }
        }
        assert!(start.elapsed() < T, "the child did not start");
        std::thread::sleep(Duration::from_millis(20));
    };
    let env = std::fs::read(format!("/proc/{grandchild}/environ")).unwrap();
    let tls_fd = env_of(&env)["TLS"].strip_prefix("/dev/fd/").expect("a /dev/fd path").to_owned();
    let mut fds = Vec::new();
    for e in std::fs::read_dir(format!("/proc/{grandchild}/fd")).unwrap() {
        let e = e.unwrap();
        let target = std::fs::read_link(e.path()).map(|p| p.display().to_string()).unwrap_or_default();
        fds.push((e.file_name().to_string_lossy().into_owned(), target));
    }
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGTERM)
        .unwrap();
    let _ = child.wait();
    for (fd, target) in &fds {
        assert!(
            ["0", "1", "2", tls_fd.as_str()].contains(&fd.as_str()),
            "descriptor {fd} -> {target} leaked into the child: {fds:?}"
        );
    }
    assert!(fds.iter().any(|(fd, _)| *fd == tls_fd), "{fds:?}");
}
