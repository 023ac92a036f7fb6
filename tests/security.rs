//! Security review, second round (issue 13): each test reproduces an attack on today's code and
//! checks it is refused, through the real binary, a real dev server and a real child.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{bare_vault_run, env_of, output_within, stderr_of, vault_run, DevServer, Trap};
use common::{tmp, write, T};

// ---------------------------------------------------------------------------------------------
// 1. A mapping file cannot choose where the agent key goes.

/// A trap server and a directory whose `vault-run.toml` names it as the base URL.
fn mapping_pointing_at_a_trap() -> (Trap, tempfile::TempDir) {
    let trap = Trap::new();
    let dir = tmp();
    let mapping = format!("[store]\nbase_url = \"{}\"\n\n[env]\nA = \"production/app/A\"\n", trap.url());
    write(dir.path(), "vault-run.toml", &mapping);
    (trap, dir)
}

#[test]
fn a_mapping_file_alone_cannot_send_the_agent_key_elsewhere() {
    let (trap, dir) = mapping_pointing_at_a_trap();
    for sub in [&[][..], &["check"][..]] {
        let out = output_within(
            bare_vault_run(dir.path())
                .env("ASS_AGENT_KEY", "ass_agent_key_that_must_stay_home_0123456789")
                .args(sub)
                .args(common::words("--timeout 2s --retries 0"))
                .args(if sub.is_empty() { &["--", "true"][..] } else { &[][..] }),
            T,
        );
        let err = stderr_of(&out);
        assert_eq!(out.status.code(), Some(78), "{sub:?}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
        assert!(err.contains(&trap.url()), "{err}");
        assert!(err.contains(&format!("set ASS_BASE_URL={}", trap.url())), "{err}");
        assert!(err.contains("(or --base-url) to use it"), "{err}");
        assert!(!trap.connected(), "{sub:?}: vault-run connected to the file's URL");
    }
}

#[tokio::test]
async fn the_flag_or_environment_url_wins_over_the_files_with_a_warning() {
    let dev = DevServer::with(&[("production/app/A", "value-a")]).await;
    let (trap, dir) = mapping_pointing_at_a_trap();
    // From the environment.
    let out = output_within(vault_run(&dev, dir.path()).args(common::words("-- env -0")), T);
    let err = stderr_of(&out);
    assert!(out.status.success(), "{err}");
    assert_eq!(env_of(&out.stdout)["A"], "value-a");
    assert_eq!(err.matches("base_url").count(), 1, "one warning: {err}");
    assert!(err.contains(&trap.url()) && err.contains("ignored"), "{err}");
    // From the flag.
    let out = output_within(
        bare_vault_run(dir.path()).env("ASS_AGENT_KEY", &dev.agent_key).args([
            "--base-url",
            &dev.base_url,
            "--",
            "env",
            "-0",
        ]),
        T,
    );
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(stderr_of(&out).contains("ignored"), "{}", stderr_of(&out));
    assert!(!trap.connected());
    // The file naming the default service is no redirection: nothing to refuse or warn about
    // (the run then goes to the flag's server).
    write(
        dir.path(),
        "vault-run.toml",
        "[store]\nbase_url = \"https://api.agentsecretstore.com\"\n\n[env]\nA = \"production/app/A\"\n",
    );
    let out = output_within(vault_run(&dev, dir.path()).args(common::words("-- env -0")), T);
    assert!(out.status.success(), "{}", stderr_of(&out));
}

// ---------------------------------------------------------------------------------------------
// 2. Inherited references nobody asked for.

#[tokio::test]
async fn inherited_references_are_not_resolved_unless_asked_for() {
    let dev = DevServer::with(&[("production/app/A", "value-a")]).await;
    dev.put("production/other/PRIVATE", "private-value-99").await;
    // An agent that may read only what the mapping names: a scope asked for anything else fails.
    let narrow = dev.agent("narrow", &["secrets:read:production/app/*"]).await;
    let dir = tmp();
    write(dir.path(), "vault-run.toml", "[env]\nA = \"production/app/A\"\n");
    let run = |args: &[&str]| {
        let mut c = vault_run(&dev, dir.path());
        c.env("ASS_AGENT_KEY", &narrow).env("GREETING", "ass://production/other/PRIVATE").args(args);
        output_within(c.args(common::words("-- env -0")), T)
    };
    // --pristine: not kept, so neither read nor asked for (the narrow agent would be refused).
    let out = run(&["--pristine"]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let env = env_of(&out.stdout);
    assert_eq!(env["A"], "value-a");
    assert!(!env.contains_key("GREETING"), "{env:?}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("private-value-99"));
    // --no-env-refs: the inherited value passes through untouched, unresolved.
    let out = run(&["--no-env-refs"]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(env_of(&out.stdout)["GREETING"], "ass://production/other/PRIVATE");
    // The mapping file's setting does the same.
    write(dir.path(), "vault-run.toml", "[store]\nenv_refs = false\n\n[env]\nA = \"production/app/A\"\n");
    let out = run(&[]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(env_of(&out.stdout)["GREETING"], "ass://production/other/PRIVATE");
}

#[tokio::test]
async fn a_kept_inherited_reference_is_resolved_and_check_says_where_it_came_from() {
    let dev = DevServer::with(&[("production/app/A", "value-a")]).await;
    dev.put("production/other/GREETING", "hello-value").await;
    let dir = tmp();
    write(dir.path(), "vault-run.toml", "[env]\nA = \"production/app/A\"\n");
    let out = output_within(
        vault_run(&dev, dir.path())
            .env("GREETING", "ass://production/other/GREETING")
            .args(common::words("--pristine --keep GREETING -- env -0")),
        T,
    );
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(env_of(&out.stdout)["GREETING"], "hello-value");
    let out = output_within(
        vault_run(&dev, dir.path()).env("GREETING", "ass://production/other/GREETING").arg("check"),
        T,
    );
    assert!(out.status.success(), "{}", stderr_of(&out));
    let table = String::from_utf8_lossy(&out.stdout);
    let line = table.lines().find(|l| l.starts_with("GREETING")).expect("a GREETING row");
    assert!(line.contains("inherited reference"), "{table}");
    let line = table.lines().find(|l| l.starts_with("A ")).expect("an A row");
    assert!(!line.contains("inherited"), "{table}");
}

// ---------------------------------------------------------------------------------------------
// 3. The child's reach: CREDENTIALS_DIRECTORY and --user.

/// A world-traversable directory (as /run/credentials/UNIT is for its service) holding the agent
/// key as systemd would: `ass-agent-key`, mode 0600, owned by root.
fn credentials_dir(dev: &DevServer) -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let dir = tmp();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let key = write(dir.path(), "ass-agent-key", &dev.agent_key);
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    dir
}

fn key_from_credentials(dev: &DevServer, work: &Path, creds: &Path) -> std::process::Command {
    let mut c = bare_vault_run(work);
    c.env("ASS_BASE_URL", &dev.base_url).env("CREDENTIALS_DIRECTORY", creds);
    c
}

#[tokio::test]
async fn credentials_directory_is_removed_from_the_child_when_it_holds_the_key() {
    let dev = DevServer::with(&[("production/app/A", "value-a")]).await;
    let creds = credentials_dir(&dev);
    let work = tmp();
    write(work.path(), "vault-run.toml", "[env]\nA = \"production/app/A\"\n");
    let env = common::env_after(
        key_from_credentials(&dev, work.path(), creds.path()).args(common::words("-- env -0")),
    );
    assert_eq!(env["A"], "value-a");
    assert!(!env.contains_key("CREDENTIALS_DIRECTORY"), "{env:?}");
    let out = output_within(
        key_from_credentials(&dev, work.path(), creds.path())
            .args(common::words("--keep-credentials-directory -- env -0")),
        T,
    );
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(env_of(&out.stdout)["CREDENTIALS_DIRECTORY"], creds.path().to_str().unwrap());
}

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
// 4. --mask hides each secret that went into a template, on its own too.

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
// 5. No part of a response body reaches stderr.

#[test]
fn decoding_errors_do_not_echo_the_response() {
    let token =
        r#""token":"tok_abcdefghijklmnopqrstuvwxyz","token_id":"tok_1","expires_at":"2099-01-01T00:00:00Z""#;
    let bodies = [
        (
            format!(r#"{{{token},"namespace":"production/app","key":"A","value":987654321012,"version":1}}"#),
            "987654321012",
        ),
        (
            format!(
                r#"{{{token},"namespace":"production/app","key":"A","value":{{"nested":"canary-obj-77x"}},"version":1}}"#
            ),
            // (An unknown access_tier is no longer an error: the tolerant reader keeps it.)
            "canary-obj-77x",
        ),
        (
            format!(
                r#"{{{token},"namespace":"production/app","key":"A","value":"v","version":"canary-ver-55"}}"#
            ),
            "canary-ver-55",
        ),
    ];
    for (body, canary) in bodies {
        let url = common::raw_server(common::http_json("200 OK", &body));
        let dir = tmp();
        let (out, err) = common::run_bare_with(
            dir.path(),
            &[("ASS_BASE_URL", &url), ("ASS_AGENT_KEY", "ass_test_key_0123456789abcdef")],
            "--retries 0 -e A=production/app/A -vvv -- echo child-ran",
        );
        assert!(!out.status.success(), "{err}");
        assert!(!String::from_utf8_lossy(&out.stdout).contains("child-ran"));
        assert!(!err.contains(canary), "the response's content reached stderr: {err}");
        assert!(err.contains("invalid response"), "{err}");
    }
}

// ---------------------------------------------------------------------------------------------
// 6. The child gets stdin, stdout, stderr and its `as = "file"` descriptors, nothing else.

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

// ---------------------------------------------------------------------------------------------
// 7. --mask: a secret split between stdout and stderr going to the same place.

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
// 8. Large mappings: linear time, and a documented size limit.

#[test]
fn a_large_mapping_is_checked_quickly_and_errors_name_the_right_line() {
    let dir = tmp();
    let mut text = String::from("[env]\n");
    for i in 0..20_000 {
        text.push_str(&format!("VAR_{i} = \"production/app/KEY_{i}\"\n"));
    }
    text.push_str("BAD = 42\n");
    let bad_line = 20_002;
    write(dir.path(), "vault-run.toml", &text);
    let start = std::time::Instant::now();
    let out = output_within(bare_vault_run(dir.path()).env("ASS_AGENT_KEY", "ass_x").args(["--", "true"]), T);
    let took = start.elapsed();
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(78), "{err}");
    assert!(err.contains(&format!("vault-run.toml:{bad_line}:7")), "{err}");
    // Quadratic position lookups took half a minute here; it now takes a fraction of a second
    // (the bound leaves room for a loaded machine).
    assert!(took < Duration::from_secs(5), "took {took:?}");
}

#[test]
fn a_mapping_file_over_16_mib_is_refused() {
    let dir = tmp();
    let mut text = String::from("[env]\n");
    while text.len() <= 16 * 1024 * 1024 {
        text.push_str(&format!("# padding {}\n", "x".repeat(1000)));
    }
    write(dir.path(), "vault-run.toml", &text);
    let out = output_within(bare_vault_run(dir.path()).env("ASS_AGENT_KEY", "ass_x").args(["--", "true"]), T);
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(78), "{err}");
    assert!(err.contains("larger than 16 MiB"), "{err}");
}

// ---------------------------------------------------------------------------------------------
// 10. Names that make the child load code, trust another CA or send its traffic elsewhere.

#[tokio::test]
async fn names_that_load_code_trust_another_ca_or_redirect_traffic_are_refused() {
    let dev = DevServer::with(&[("production/app/A", "value-a")]).await;
    let dir = tmp();
    let names = [
        "OPENSSL_CONF",
        "PYTHONWARNINGS",
        "PERL5OPT",
        "PERL5LIB",
        "RUBYOPT",
        "RUBYLIB",
        "JAVA_TOOL_OPTIONS",
        "_JAVA_OPTIONS",
        "GIT_SSH_COMMAND",
        "GIT_PAGER",
        "LESSOPEN",
        "GCONV_PATH",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "http_proxy",
        "https_proxy",
        "All_Proxy",
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
        "NODE_EXTRA_CA_CERTS",
        "REQUESTS_CA_BUNDLE",
        "CURL_CA_BUNDLE",
    ];
    for name in names {
        let out = output_within(
            vault_run(&dev, dir.path()).args(common::words(&format!("-e {name}=production/app/A -- true"))),
            T,
        );
        let err = stderr_of(&out);
        assert_eq!(out.status.code(), Some(78), "{name}: {err}");
        assert!(err.contains(&format!("refusing to set {name}")), "{err}");
        assert!(err.contains(&format!("--allow-name {name}")), "{err}");
    }
    assert_eq!(dev.count("POST /v1/tokens").await, 0, "refused before any request");
    let out = output_within(
        vault_run(&dev, dir.path())
            .args(common::words("-e https_proxy=production/app/A --allow-name https_proxy -- env -0")),
        T,
    );
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(env_of(&out.stdout)["https_proxy"], "value-a");
}

// ---------------------------------------------------------------------------------------------
// 11. Credential files must be private and the caller's (or root's).

fn chmod(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[tokio::test]
async fn credential_files_readable_by_others_or_owned_by_another_user_are_refused() {
    let dev = DevServer::with(&[("production/app/A", "value-a")]).await;
    let dir = tmp();
    let key = write(dir.path(), "agent.key", &dev.agent_key);
    let link = dir.path().join("link.key");
    std::os::unix::fs::symlink(&key, &link).unwrap();
    let run = |args: &[&str], file: &Path| {
        let mut c = bare_vault_run(dir.path());
        c.env("ASS_BASE_URL", &dev.base_url).env("ASS_AGENT_KEY_FILE", file);
        output_within(c.args(["-e", "A=production/app/A"]).args(args).args(["--", "true"]), T)
    };
    for mode in [0o644, 0o640, 0o604, 0o660] {
        chmod(&key, mode);
        for file in [&key, &link] {
            let out = run(&[], file);
            let err = stderr_of(&out);
            assert_eq!(out.status.code(), Some(78), "{mode:o} {}: {err}", file.display());
            assert!(err.contains(&format!("chmod 600 {}", file.display())), "{err}");
            assert_eq!(err.trim_end().lines().count(), 1, "{err}");
        }
    }
    chmod(&key, 0o600);
    for file in [&key, &link] {
        let out = run(&[], file);
        assert!(out.status.success(), "{}", stderr_of(&out));
    }
    // Owned by someone else (only root can hand a file over; tests run as root).
    if nix::unistd::Uid::effective().is_root() {
        nix::unistd::chown(&key, Some(nix::unistd::Uid::from_raw(65534)), None).unwrap();
        let out = run(&[], &link);
        let err = stderr_of(&out);
        assert_eq!(out.status.code(), Some(78), "{err}");
        assert!(err.contains("owned by uid 65534"), "{err}");
    }
    assert_eq!(dev.count("POST /v1/tokens").await, 2, "only the two private runs asked for a token");
}

#[test]
fn vault_token_and_secret_id_files_readable_by_others_are_refused() {
    let dir = tmp();
    let token = write(dir.path(), "token", "hvs.canary-token-0123456789");
    let secret_id = write(dir.path(), "secret-id", "canary-secret-id-0123");
    chmod(&token, 0o644);
    chmod(&secret_id, 0o644);
    // Refused before any connection: the address is a closed port.
    let run = |c: &mut std::process::Command| {
        c.env("VAULT_ADDR", "http://127.0.0.1:9").args(common::words("-e P=vault://secret/app#p -- true"));
        output_within(c, T)
    };
    let out = run(bare_vault_run(dir.path()).arg("--vault-token-file").arg(&token));
    assert_eq!(out.status.code(), Some(78), "{}", stderr_of(&out));
    assert!(stderr_of(&out).contains(&format!("chmod 600 {}", token.display())), "{}", stderr_of(&out));
    let out =
        run(bare_vault_run(dir.path()).env("VAULT_ROLE_ID", "role").env("VAULT_SECRET_ID_FILE", &secret_id));
    assert_eq!(out.status.code(), Some(78), "{}", stderr_of(&out));
    assert!(stderr_of(&out).contains(&format!("chmod 600 {}", secret_id.display())), "{}", stderr_of(&out));
    for f in [&token, &secret_id] {
        assert!(!stderr_of(&out).contains("canary"));
        chmod(f, 0o600);
    }
    // Private now: past the file check, the run fails on the closed port instead (75).
    let out = run(bare_vault_run(dir.path()).arg("--vault-token-file").arg(&token));
    assert_eq!(out.status.code(), Some(75), "{}", stderr_of(&out));
}

// ---------------------------------------------------------------------------------------------
// 12. The dev server: bounded counters, a header timeout, a connection cap; ASS_ADMIN_KEY stays
// out of the child.

#[tokio::test]
async fn made_up_methods_and_paths_do_not_grow_the_dev_servers_counters() {
    let dev = DevServer::start();
    let http = reqwest::Client::new();
    for i in 0..60 {
        let method = reqwest::Method::from_bytes(format!("MADEUP{i}").as_bytes()).unwrap();
        let _ = http.request(method, format!("{}/v1/tokens", dev.base_url)).send().await.unwrap();
        let _ = http.get(format!("{}/made/up/{i}", dev.base_url)).send().await.unwrap();
    }
    let _ = http.get(format!("{}/v1/health", dev.base_url)).send().await.unwrap();
    let stats = dev.stats().await;
    let requests = stats["requests"].as_object().unwrap();
    assert!(requests.len() <= 2, "{requests:?}");
    assert_eq!(requests["(unmatched)"], 120, "{requests:?}");
    assert_eq!(requests["GET /v1/health"], 1, "{requests:?}");
}

#[test]
fn the_dev_server_closes_a_connection_whose_headers_are_too_slow() {
    use std::io::{Read, Write};
    let dev = DevServer::start_with(&["--header-timeout", "1s"]);
    let addr = dev.base_url.trim_start_matches("http://").to_owned();
    let mut s = std::net::TcpStream::connect(&addr).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    s.write_all(b"GET /v1/health HTTP/1.1\r\nHost: x\r\nX-Slow: ").unwrap();
    let start = std::time::Instant::now();
    let closed = loop {
        // A byte at a time, never finishing the head: a slow-loris client.
        if s.write_all(b"a").is_err() {
            break true;
        }
        let mut buf = [0u8; 64];
        match s.read(&mut buf) {
            Ok(0) => break true,
            Ok(_) => panic!("the server answered an unfinished request"),
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock || e.kind() == std::io::ErrorKind::TimedOut => {
            }
            Err(_) => break true,
        }
        if start.elapsed() > Duration::from_secs(10) {
            break false;
        }
    };
    assert!(closed, "the connection was still open after 10 s");
    assert!(start.elapsed() < Duration::from_secs(5), "{:?}", start.elapsed());
    // A prompt client is served as before.
    let mut s = std::net::TcpStream::connect(&addr).unwrap();
    s.write_all(b"GET /v1/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

#[test]
fn the_dev_server_caps_open_connections() {
    use std::io::{Read, Write};
    let dev = DevServer::start_with(&["--max-connections", "2", "--header-timeout", "30s"]);
    let addr = dev.base_url.trim_start_matches("http://").to_owned();
    let idle: Vec<_> = (0..2).map(|_| std::net::TcpStream::connect(&addr).unwrap()).collect();
    std::thread::sleep(Duration::from_millis(200));
    let mut third = std::net::TcpStream::connect(&addr).unwrap();
    third.set_read_timeout(Some(Duration::from_millis(700))).unwrap();
    third.write_all(b"GET /v1/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    let mut buf = [0u8; 256];
    let err = third.read(&mut buf).expect_err("served beyond the cap");
    assert!(matches!(err.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut), "{err}");
    drop(idle);
    third.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut answer = String::new();
    third.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

/// Sends `GET /v1/health` on a kept-alive connection and reads the whole answer.
fn health_kept_alive(s: &mut std::net::TcpStream) -> std::io::Result<String> {
    use std::io::{Read, Write};
    s.write_all(b"GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n")?;
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        let n = s.read(&mut buf)?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        got.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&got).into_owned();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let len: usize = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap())
                })
                .unwrap_or(0);
            if body.len() >= len {
                return Ok(text);
            }
        }
    }
}

/// Whether the server closed `s` (an end of stream) within `within`.
fn closed_within(s: &mut std::net::TcpStream, within: Duration) -> bool {
    use std::io::Read;
    s.set_read_timeout(Some(within)).unwrap();
    match s.read(&mut [0u8; 16]) {
        Ok(0) => true,
        Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
        Ok(_) => false,
    }
}

#[test]
fn at_the_cap_idle_kept_alive_connections_make_room() {
    let dev = DevServer::start_with(&["--max-connections", "2", "--header-timeout", "30s"]);
    let addr = dev.base_url.trim_start_matches("http://").to_owned();
    let mut idle: Vec<_> = (0..2).map(|_| std::net::TcpStream::connect(&addr).unwrap()).collect();
    for s in &mut idle {
        assert!(health_kept_alive(s).unwrap().starts_with("HTTP/1.1 200"));
    }
    // Both slots are held by connections idle between requests: a third is served at once,
    // not after the 30 s header timeout.
    let start = std::time::Instant::now();
    let mut third = std::net::TcpStream::connect(&addr).unwrap();
    third.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    assert!(health_kept_alive(&mut third).unwrap().starts_with("HTTP/1.1 200"));
    assert!(start.elapsed() < Duration::from_secs(3), "served after {:?}", start.elapsed());
    assert!(
        idle.iter_mut().any(|s| closed_within(s, Duration::from_secs(2))),
        "no idle connection was closed"
    );
}

#[test]
fn an_idle_kept_alive_connection_is_closed_after_the_header_timeout() {
    let dev = DevServer::start_with(&["--header-timeout", "1s"]);
    let addr = dev.base_url.trim_start_matches("http://").to_owned();
    let mut s = std::net::TcpStream::connect(&addr).unwrap();
    assert!(health_kept_alive(&mut s).unwrap().starts_with("HTTP/1.1 200"));
    let start = std::time::Instant::now();
    assert!(closed_within(&mut s, Duration::from_secs(10)), "still open after 10 s");
    assert!(start.elapsed() < Duration::from_secs(5), "closed after {:?}", start.elapsed());
}

#[test]
fn hundreds_of_simultaneous_connections_are_all_served() {
    // What the JS SDK does with `Promise.all` over 600 reads: a connection each, all at once.
    // Past the cap they wait in the accept queue; a queue that overflows drops SYNs, and the
    // client's retries come 1, 3, 7 s later.
    let dev = DevServer::start_with(&["--max-connections", "8"]);
    let addr = dev.base_url.trim_start_matches("http://").to_owned();
    let start = std::time::Instant::now();
    let addr: std::net::SocketAddr = addr.parse().unwrap();
    let streams: Vec<_> = (0..600)
        .map(|_| std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(10)).unwrap())
        .collect();
    let clients: Vec<_> = streams
        .into_iter()
        .map(|mut s| {
            std::thread::spawn(move || {
                s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
                health_kept_alive(&mut s).map(|a| a.starts_with("HTTP/1.1 200"))
            })
        })
        .collect();
    let served = clients.into_iter().filter_map(|c| c.join().ok()).filter(|r| matches!(r, Ok(true))).count();
    assert_eq!(served, 600, "{served} of 600 served");
    assert!(start.elapsed() < Duration::from_secs(6), "all served after {:?}", start.elapsed());
}

#[tokio::test]
async fn the_admin_key_is_removed_from_the_childs_environment() {
    let dev = DevServer::with(&[("production/app/A", "value-a")]).await;
    let dir = tmp();
    let (out, env) = common::output_and_env(
        vault_run(&dev, dir.path())
            .env("ASS_ADMIN_KEY", &dev.admin_key)
            .args(common::words("-e A=production/app/A -- env -0")),
    );
    assert_eq!(env["A"], "value-a");
    assert!(!env.contains_key("ASS_ADMIN_KEY"), "{env:?}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains(&dev.admin_key));
}
