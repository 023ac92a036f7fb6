//! The launcher as a user runs it: a real dev server, a real vault-run process, a real child.

mod common;

use std::time::Duration;

use common::{env_of, output_within, stderr_of, vault_run, DevServer};
use common::{tmp, write, T};
use serde_json::json;

async fn seeded() -> DevServer {
    let dev = DevServer::with(&[
        ("production/gemini/GEMINI_API_KEY", "gm-key-value-0001"),
        ("production/db/PASSWORD", "db-pass-value-0002"),
        ("production/app/LOG_LEVEL", "debug"),
        ("production/stripe/PUBLISHABLE", "pk-value-0003"),
        ("production/stripe/SECRET", "sk-value-0004"),
        ("production/tls/KEY", "-----TLS KEY 0005-----\n"),
    ])
    .await;
    dev
}

const MAPPING: &str = r#"
[env]
GEMINI_API_KEY = "production/gemini/GEMINI_API_KEY"
SENTRY_DSN     = { path = "production/sentry/DSN", optional = true }
LOG_LEVEL      = { path = "production/app/LOG_LEVEL", default = "info" }
MISSING_LEVEL  = { path = "production/app/NOPE", default = "info" }
DATABASE_URL   = { template = "postgres://app:{{ production/db/PASSWORD }}@db:5432/app" }
TLS_KEY_FILE   = { path = "production/tls/KEY", as = "file" }
"STRIPE_*"     = "production/stripe/*"
"#;

#[tokio::test]
async fn run_injects_every_entry_form_and_nothing_else() {
    let dev = seeded().await;
    let dir = tmp();
    write(dir.path(), "vault-run.toml", MAPPING);
    let (out, env) = common::output_and_env(
        vault_run(&dev, dir.path())
            .env("ASS_AGENT_KEY_FILE", "/nonexistent")
            .args(common::words("-- sh -c"))
            .arg("env -0; printf 'FILE=%s' \"$(cat \"$TLS_KEY_FILE\")\" >&2"),
    );
    common::assert_env(
        &env,
        &[
            ("GEMINI_API_KEY", "gm-key-value-0001"),
            ("LOG_LEVEL", "debug"),
            ("MISSING_LEVEL", "info"),
            ("DATABASE_URL", "postgres://app:db-pass-value-0002@db:5432/app"),
            ("STRIPE_PUBLISHABLE", "pk-value-0003"),
            ("STRIPE_SECRET", "sk-value-0004"),
        ],
    );
    assert!(!env.contains_key("SENTRY_DSN"), "optional and missing stays unset");
    assert!(env["TLS_KEY_FILE"].starts_with("/dev/fd/"));
    assert!(stderr_of(&out).contains("FILE=-----TLS KEY 0005-----"), "{}", stderr_of(&out));
    assert!(!env.contains_key("ASS_AGENT_KEY"), "the agent key never reaches the child");
    assert!(!env.contains_key("ASS_AGENT_KEY_FILE"));
    assert!(env.values().all(|v| !v.contains(&dev.agent_key)));
    assert!(env.contains_key("ASS_BASE_URL"), "other variables are inherited");
    // One token for the whole run, with exactly the scopes of the mapping.
    assert_eq!(dev.count("POST /v1/tokens").await, 1);
}

#[tokio::test]
async fn exec_keeps_pid_and_exit_status() {
    let dev = seeded().await;
    let dir = tmp();
    let mut cmd = vault_run(&dev, dir.path());
    cmd.args(common::words("-e K=production/app/LOG_LEVEL -- sh -c")).arg("echo $$; exit 42");
    let child = cmd.stdout(std::process::Stdio::piped()).spawn().unwrap();
    let pid = child.id();
    let out = common::output_of_within(child, T);
    assert_eq!(out.status.code(), Some(42));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), pid.to_string(), "the child is vault-run's PID");
}

#[tokio::test]
async fn flags_env_refs_and_precedence() {
    let dev = seeded().await;
    let dir = tmp();
    write(
        dir.path(),
        "m.toml",
        "[env]\nA = \"production/app/LOG_LEVEL\"\nB = \"production/app/LOG_LEVEL\"\n",
    );
    let env = common::env_after(
        vault_run(&dev, dir.path())
            .env("REF_VAR", "ass://production/db/PASSWORD")
            .env("B", "ass://production/stripe/SECRET")
            .env("PLAIN", "ass:/not-a-ref")
            .args(common::words("-f m.toml -e A=production/gemini/GEMINI_API_KEY -- env -0")),
    );
    assert_eq!(env["A"], "gm-key-value-0001", "-e wins over the file");
    assert_eq!(env["B"], "debug", "the file wins over an env reference");
    assert_eq!(env["REF_VAR"], "db-pass-value-0002", "env references are resolved");
    assert_eq!(env["PLAIN"], "ass:/not-a-ref");
}

#[tokio::test]
async fn pristine_keep_no_override_keep_agent_key() {
    let dev = seeded().await;
    let dir = tmp();
    let env = common::env_after(
        vault_run(&dev, dir.path())
            .env("KEEP_ME", "1")
            .env("DROP_ME", "1")
            .args(common::words("--pristine --keep KEEP_ME -e L=production/app/LOG_LEVEL -- env -0")),
    );
    let mut names: Vec<&String> = env.keys().collect();
    names.sort();
    assert_eq!(names, ["KEEP_ME", "L"]);

    let env = common::env_after(
        vault_run(&dev, dir.path())
            .env("L", "already")
            .args(common::words("--no-override --keep-agent-key -e L=production/app/LOG_LEVEL -- env -0")),
    );
    assert_eq!(env["L"], "already");
    assert_eq!(env["ASS_AGENT_KEY"], dev.agent_key, "--keep-agent-key passes it on");
}

#[tokio::test]
async fn failures_end_with_one_line_and_the_documented_code() {
    let dev = seeded().await;
    let dir = tmp();
    let run = |args: &[&str]| output_within(vault_run(&dev, dir.path()).args(args), T);

    let out = run(&["-e", "GEMINI=production/gemini/NOPE", "--", "true"]);
    assert_eq!(out.status.code(), Some(69), "{}", stderr_of(&out));
    let err = stderr_of(&out);
    assert!(
        err.contains("GEMINI") && err.contains("production/gemini/NOPE") && err.contains("optional"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");

    let out = run(&["-e", "S=production/stripe/NONE*", "--", "true"]);
    assert_eq!(out.status.code(), Some(78), "a glob key without * is a mapping error: {}", stderr_of(&out));
    let out = run(&["-e", "S_*=production/none/*", "--", "true"]);
    assert_eq!(out.status.code(), Some(69), "a glob matching nothing: {}", stderr_of(&out));

    let out = run(&["-e", "X=production/app/LOG_LEVEL", "--", "definitely-not-a-command-xyz"]);
    assert_eq!(out.status.code(), Some(127), "{}", stderr_of(&out));
    let script = write(dir.path(), "noexec.sh", "#!/bin/sh\necho hi\n");
    let out = run(&["-e", "X=production/app/LOG_LEVEL", "--", script.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(126), "{}", stderr_of(&out));

    let out = run(&["--bogus-flag", "--", "true"]);
    assert_eq!(out.status.code(), Some(64));
    let out = run(&["--ttl", "soon", "--", "true"]);
    assert_eq!(out.status.code(), Some(64));
    let out = run(&[]);
    assert_eq!(out.status.code(), Some(64), "no command");

    write(
        dir.path(),
        "bad.toml",
        "[env]\nA = \"production/app/LOG_LEVEL\"\nB = { path = \"x/y\", optinal = true }\n",
    );
    let out = run(&["-f", "bad.toml", "--", "true"]);
    assert_eq!(out.status.code(), Some(78));
    assert!(stderr_of(&out).contains("bad.toml:3:"), "file:line:col: {}", stderr_of(&out));

    let out = run(&["-e", "LD_PRELOAD=production/app/LOG_LEVEL", "--", "true"]);
    assert_eq!(out.status.code(), Some(78), "{}", stderr_of(&out));
    assert!(stderr_of(&out).contains("LD_PRELOAD"));
    let out = run(&["--allow-name", "LD_PRELOAD", "-e", "LD_PRELOAD=production/app/LOG_LEVEL", "--", "true"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));

    let out = run(&[
        "-e",
        "STRIPE_*=production/stripe/*",
        "-e",
        "STRIPE_SECRET=production/app/LOG_LEVEL",
        "--",
        "true",
    ]);
    assert_eq!(out.status.code(), Some(78), "colliding names: {}", stderr_of(&out));

    let out = output_within(
        vault_run(&dev, dir.path())
            .env("ASS_AGENT_KEY", "ass_wrong")
            .args(common::words("-e X=production/app/LOG_LEVEL -- true")),
        T,
    );
    assert_eq!(out.status.code(), Some(77), "{}", stderr_of(&out));
    assert!(!stderr_of(&out).contains("ass_wrong"), "the key is never printed");

    let narrow = dev.agent("narrow", &["secrets:read:public/*"]).await;
    let out = output_within(
        vault_run(&dev, dir.path())
            .env("ASS_AGENT_KEY", &narrow)
            .args(common::words("-e X=production/app/LOG_LEVEL -- true")),
        T,
    );
    assert_eq!(out.status.code(), Some(77), "scope denied: {}", stderr_of(&out));

    let out = output_within(
        vault_run(&dev, dir.path())
            .env_remove("ASS_AGENT_KEY")
            .args(common::words("-e X=production/app/LOG_LEVEL -- true")),
        T,
    );
    assert_eq!(out.status.code(), Some(78), "no agent key: {}", stderr_of(&out));
    assert!(stderr_of(&out).contains("ASS_AGENT_KEY"));
}

#[tokio::test]
async fn unreachable_server_and_deadline_are_temporary() {
    let dev = seeded().await;
    let dir = tmp();
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let out = output_within(
        vault_run(&dev, dir.path())
            .env("ASS_BASE_URL", format!("http://{closed}"))
            .args(common::words("--retries 1 -e X=production/app/LOG_LEVEL -- true")),
        T,
    );
    assert_eq!(out.status.code(), Some(75), "{}", stderr_of(&out));

    dev.faults(json!({"latency": "10s"})).await;
    let started = std::time::Instant::now();
    let out = output_within(
        vault_run(&dev, dir.path())
            .args(common::words("--deadline 1s -e X=production/app/LOG_LEVEL -- true")),
        T,
    );
    assert_eq!(out.status.code(), Some(75), "{}", stderr_of(&out));
    assert!(started.elapsed() < Duration::from_secs(5), "the deadline bounds start-up");
    assert!(stderr_of(&out).contains("deadline"), "{}", stderr_of(&out));
}

#[tokio::test]
async fn approval_is_awaited_then_the_child_starts() {
    let dev = seeded().await;
    dev.put_tier("production/pay/KEY", "pay-key-value-0009", "sensitive").await;
    let dir = tmp();
    let mut cmd = vault_run(&dev, dir.path());
    cmd.args(common::words("-e PAY=production/pay/KEY -- env -0"));
    let handle = std::thread::spawn(move || output_within(&mut cmd, T));
    let id = dev.wait_pending().await;
    dev.approve(&id).await;
    let out = handle.join().unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(env_of(&out.stdout)["PAY"], "pay-key-value-0009");
    assert!(stderr_of(&out).contains(&id), "the approval id is printed: {}", stderr_of(&out));

    let out = output_within(
        vault_run(&dev, dir.path())
            .args(common::words("--approval-timeout 0 -e PAY=production/pay/KEY -- true")),
        T,
    );
    assert_eq!(out.status.code(), Some(75), "{}", stderr_of(&out));
    assert!(stderr_of(&out).contains("apr_"), "{}", stderr_of(&out));
    // That approval, left pending, is denied: the next run says so and asks anew (issue 21).
    let stale = dev.wait_pending().await;
    dev.deny(&stale, "stale").await;

    let mut cmd = vault_run(&dev, dir.path());
    cmd.args(common::words("-e PAY=production/pay/KEY -- true"));
    let handle = std::thread::spawn(move || output_within(&mut cmd, T));
    let id = loop {
        let pending = dev.pending().await;
        if let Some(id) = pending.into_iter().find(|p| !p.is_empty()) {
            break id;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    dev.deny(&id, "no").await;
    let out = handle.join().unwrap();
    assert_eq!(out.status.code(), Some(77), "denied: {}", stderr_of(&out));
}

#[tokio::test]
async fn check_prints_the_table_and_exits_like_a_run() {
    let dev = seeded().await;
    let dir = tmp();
    write(dir.path(), "vault-run.toml", MAPPING);
    let out = output_within(vault_run(&dev, dir.path()).arg("check"), T);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let table = String::from_utf8_lossy(&out.stdout);
    let line = |name: &str| {
        table
            .lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("{name} in {table}"))
            .to_owned()
    };
    let g = line("GEMINI_API_KEY");
    assert!(
        g.contains("<- production/gemini/GEMINI_API_KEY")
            && g.contains(" 1 ")
            && g.contains("standard")
            && g.contains("required")
            && g.ends_with("ok"),
        "{g}"
    );
    // Every row that is not ok says why (issue 14).
    assert!(
        line("SENTRY_DSN").contains("optional")
            && line("SENTRY_DSN").ends_with("missing  not found; optional")
    );
    assert!(line("MISSING_LEVEL").contains("default"));
    assert!(line("STRIPE_SECRET").ends_with("ok"));
    for value in ["gm-key-value-0001", "db-pass-value-0002", "sk-value-0004", "debug"] {
        assert!(!table.contains(value), "check never prints values: {table}");
    }

    let out =
        output_within(vault_run(&dev, dir.path()).args(common::words("check -e X=production/none/X")), T);
    assert_eq!(out.status.code(), Some(69));
    assert!(String::from_utf8_lossy(&out.stdout).contains("missing"));
}

#[tokio::test]
async fn verbose_json_logs_carry_no_secret_key_or_token() {
    let dev = seeded().await;
    let dir = tmp();
    write(dir.path(), "vault-run.toml", MAPPING);
    let out =
        output_within(vault_run(&dev, dir.path()).args(common::words("-vvv --log-format json -- true")), T);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let err = stderr_of(&out);
    assert!(err.lines().any(|l| l.starts_with('{')), "json lines: {err}");
    for value in [
        "gm-key-value-0001",
        "db-pass-value-0002",
        "pk-value-0003",
        "sk-value-0004",
        "TLS KEY 0005",
        &dev.agent_key,
    ] {
        assert!(!err.contains(value), "{value} leaked into: {err}");
    }
    assert!(!err.contains("asst_"), "no token in logs");
    assert!(!dev.stderr().contains("gm-key-value-0001") && !dev.stderr().contains(&dev.agent_key));
}

#[tokio::test]
async fn systemd_status_lines_while_waiting_for_approval() {
    let dev = seeded().await;
    dev.put_tier("production/pay/KEY", "pay-key-value-0010", "critical").await;
    let dir = tmp();
    let sock_path = dir.path().join("notify.sock");
    let sock = std::os::unix::net::UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut cmd = vault_run(&dev, dir.path());
    cmd.env("NOTIFY_SOCKET", &sock_path).args(common::words("-e PAY=production/pay/KEY -- true"));
    let handle = std::thread::spawn(move || output_within(&mut cmd, T));
    let id = dev.wait_pending().await;
    let mut buf = [0u8; 512];
    let n = sock.recv(&mut buf).unwrap();
    let first = String::from_utf8_lossy(&buf[..n]).into_owned();
    assert!(first.starts_with("STATUS=") && first.contains(&id), "{first}");
    // Type=notify: the start timeout is extended by the approval wait (10m) plus a minute.
    assert!(first.contains("\nEXTEND_TIMEOUT_USEC=660000000"), "{first}");
    dev.approve(&id).await;
    let out = handle.join().unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let n = sock.recv(&mut buf).unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).contains("granted"));
}

#[tokio::test]
async fn text_logs_are_plain_lines_when_stderr_is_not_a_terminal() {
    let dev = seeded().await;
    let dir = tmp();
    let out = output_within(
        vault_run(&dev, dir.path()).args(common::words("-vv -e L=production/app/LOG_LEVEL -- true")),
        T,
    );
    assert!(out.status.success(), "{}", stderr_of(&out));
    let err = stderr_of(&out);
    assert!(!err.contains('\u{1b}'), "no terminal colour codes in a pipe: {err:?}");
    assert!(err.lines().all(|l| l.starts_with("vault-run: ")), "{err}");
}

#[tokio::test]
async fn agent_key_from_file_and_systemd_credentials() {
    let dev = seeded().await;
    let dir = tmp();
    let key_file = write(dir.path(), "agent-key", &format!("{}\n", dev.agent_key));
    let creds = dir.path().join("creds");
    std::fs::create_dir(&creds).unwrap();
    let cred = write(&creds, "ass-agent-key", &dev.agent_key);
    // Credential files must be private (vault-run refuses others).
    for f in [&key_file, &cred] {
        std::fs::set_permissions(f, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    }
    // A run without ASS_AGENT_KEY (unless `key` names one), with what `with` adds.
    let run = |key: Option<&str>, with: &dyn Fn(&mut std::process::Command)| {
        let mut cmd = vault_run(&dev, dir.path());
        match key {
            Some(k) => cmd.env("ASS_AGENT_KEY", k),
            None => cmd.env_remove("ASS_AGENT_KEY"),
        };
        with(&mut cmd);
        output_within(cmd.args(common::words("-e L=production/app/LOG_LEVEL -- env -0")), T)
    };

    let out = run(None, &|c| {
        c.arg("--agent-key-file").arg(&key_file);
    });
    assert!(out.status.success(), "--agent-key-file: {}", stderr_of(&out));
    assert_eq!(env_of(&out.stdout)["L"], "debug");

    let out = run(None, &|c| {
        c.env("ASS_AGENT_KEY_FILE", &key_file);
    });
    assert!(out.status.success(), "ASS_AGENT_KEY_FILE: {}", stderr_of(&out));
    assert!(!env_of(&out.stdout).contains_key("ASS_AGENT_KEY_FILE"), "scrubbed from the child");

    let out = run(None, &|c| {
        c.env("CREDENTIALS_DIRECTORY", &creds);
    });
    assert!(out.status.success(), "systemd credential: {}", stderr_of(&out));

    // ASS_AGENT_KEY comes first: a wrong one is used (and refused) even with a good file.
    let out = run(Some("ass_wrong"), &|c| {
        c.env("ASS_AGENT_KEY_FILE", &key_file);
    });
    assert_eq!(out.status.code(), Some(77), "{}", stderr_of(&out));
}
