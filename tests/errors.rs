//! Errors a user meets first: one line naming the real cause and how to fix it, before any
//! request when the cause is local (an empty run, a command that does not exist).

mod common;

use std::time::Duration;

use common::{
    bare_vault_run, http_json, output_within, raw_server, requests, seeded_profiles, stderr_of, stdout_of,
    tmp, vault_run, write, DevServer, T,
};

#[tokio::test]
async fn a_run_with_nothing_to_fetch_is_refused_and_starts_nothing() {
    let dev = seeded_profiles().await;
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("started");
    let out = output_within(
        vault_run(&dev, dir.path())
            .args(common::words("-- sh -c"))
            .arg(format!("touch {}", marker.display())),
        T,
    );
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(78), "{err}");
    assert!(!marker.exists(), "the command must not start");
    assert!(err.contains("nothing to fetch") && err.contains("vault-run.toml"), "{err}");
    assert!(err.contains(&dir.path().display().to_string()), "says where it looked: {err}");
    assert!(err.contains("-f FILE") && err.contains("-e NAME=REF") && err.contains("--env-file"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");

    let out = output_within(vault_run(&dev, dir.path()).arg("check"), T);
    assert_eq!(out.status.code(), Some(78), "{}", stderr_of(&out));

    // A file with no entries is the same trap.
    write(dir.path(), "vault-run.toml", "[vault]\nttl = \"5m\"\n");
    let out = output_within(vault_run(&dev, dir.path()).args(["--", "true"]), T);
    assert_eq!(out.status.code(), Some(78), "{}", stderr_of(&out));
    assert!(stderr_of(&out).contains("has no [env] entries"), "{}", stderr_of(&out));

    // Any one source of entries is enough.
    let out = output_within(
        vault_run(&dev, dir.path()).args(common::words("-e X=production/app/LOG_LEVEL -- true")),
        T,
    );
    assert!(out.status.success(), "{}", stderr_of(&out));
    let out = output_within(
        vault_run(&dev, dir.path()).env("X", "ass://production/app/LOG_LEVEL").args(["--", "true"]),
        T,
    );
    assert!(out.status.success(), "{}", stderr_of(&out));
}

#[tokio::test]
async fn the_command_is_resolved_before_any_request_so_no_approval_is_spent() {
    let dev = DevServer::start();
    // A sensitive secret: fetching it would ask a human for a one-time approval.
    dev.put_tier("myagent/STRIPE_KEY", "sk-live-0001", "sensitive").await;
    let dir = tmp();
    write(dir.path(), "noexec.sh", "#!/bin/sh\necho hi\n");
    let cases: &[(&str, i32, &str)] = &[
        ("-e S=myagent/STRIPE_KEY -- pyhton3 agent.py", 127, "command not found: pyhton3"),
        ("-e S=myagent/STRIPE_KEY -- ./noexec.sh", 126, "not executable"),
        ("-e S=myagent/STRIPE_KEY -- /tmp", 126, "not executable"),
        (
            "-e S=myagent/STRIPE_KEY -- --allow-insecure-http -- /app/agent.sh",
            64,
            "vault-run's options go before `--`",
        ),
        (
            "-e S=myagent/STRIPE_KEY check",
            127,
            "did you mean the subcommand? Put vault-run's options after it: vault-run check",
        ),
        ("-e S=myagent/STRIPE_KEY dev", 127, "vault-run dev [OPTIONS]"),
        ("-e S=myagent/STRIPE_KEY chekc", 127, "did you mean `vault-run check`?"),
        ("-e S=myagent/STRIPE_KEY import .env", 127, "did you mean `vault-run secrets import`?"),
    ];
    let before = requests(&dev).await;
    for (args, code, says) in cases {
        let started = std::time::Instant::now();
        let out = common::output_within(vault_run(&dev, dir.path()).args(common::words(args)), T);
        let err = stderr_of(&out);
        assert_eq!(out.status.code(), Some(*code), "{args}: {err}");
        assert!(err.contains(says), "{args}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{args}: one line: {err}");
        assert!(started.elapsed() < Duration::from_secs(10), "{args}: at once");
    }
    let after = requests(&dev).await;
    assert_eq!(before, after, "no request reached the server");
    assert_eq!(after["POST /v1/tokens"].as_u64().unwrap_or(0), 0, "{after}");
    assert!(dev.pending().await.is_empty(), "no approval was asked for");
}

#[tokio::test]
async fn errors_name_the_real_cause() {
    let dev = seeded_profiles().await;
    dev.put_tier("production/pay/KEY", "pay-0009", "sensitive").await;
    let dir = tempfile::tempdir().unwrap();
    let one = ["--retries", "0", "-e", "X=production/app/LOG_LEVEL", "--", "true"];

    // Nothing listens: 75, naming the URL and what to check.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let url = format!("http://{closed}");
    let out = output_within(vault_run(&dev, dir.path()).env("ASS_BASE_URL", &url).args(one), T);
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(75), "{err}");
    assert!(err.contains(&url) && err.contains("server is running") && err.contains("base URL"), "{err}");
    assert!(!err.contains(&dev.agent_key), "{err}");

    // Not an Agent Secret Store: an HTML 404, an HTML 200, a 501: 78, one line.
    let html = "<html><body>Not Found</body></html>";
    for response in [
        format!("HTTP/1.1 404 Not Found\r\ncontent-type: text/html\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{html}", html.len()).into_bytes(),
        format!("HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{html}", html.len()).into_bytes(),
        http_json("501 Not Implemented", "{}"),
    ] {
        let url = raw_server(response);
        let out = output_within(vault_run(&dev, dir.path()).env("ASS_BASE_URL", &url).args(one), T);
        let err = stderr_of(&out);
        assert_eq!(out.status.code(), Some(78), "{err}");
        assert!(err.contains(&format!("{url} does not look like an Agent Secret Store")), "{err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
    }

    // A wrong key: which source it came from, never the key.
    let wrong = "ass_wrong_key_000000000000";
    let out = output_within(vault_run(&dev, dir.path()).env("ASS_AGENT_KEY", wrong).args(one), T);
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(77), "{err}");
    assert!(err.contains("agent key from ASS_AGENT_KEY was refused"), "{err}");
    assert!(!err.contains(wrong), "{err}");
    let key_file = write(dir.path(), "key", wrong);
    std::fs::set_permissions(&key_file, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let out = output_within(
        vault_run(&dev, dir.path())
            .env_remove("ASS_AGENT_KEY")
            .env("ASS_AGENT_KEY_FILE", &key_file)
            .args(one),
        T,
    );
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(77), "{err}");
    assert!(err.contains(&format!("agent key from file {} was refused", key_file.display())), "{err}");
    assert!(!err.contains(wrong), "{err}");

    // An approval: its id, what it is for, how to approve it.
    let out = output_within(
        vault_run(&dev, dir.path())
            .args(common::words("--approval-timeout 0 -e P=production/pay/KEY -- true")),
        T,
    );
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(75), "{err}");
    let id = dev.pending().await.into_iter().next().expect("a pending approval");
    assert!(err.contains(&id) && err.contains("production/pay/KEY"), "{err}");
    let hint = format!("ASS_BASE_URL={} vault-run dev approve {id}", dev.base_url);
    assert!(err.contains(&hint), "{err}");
    // The hint works: the admin command approves it.
    let out = output_within(
        bare_vault_run(dir.path())
            .env("ASS_BASE_URL", &dev.base_url)
            .env("ASS_ADMIN_KEY", &dev.admin_key)
            .args(["dev", "approve", &id]),
        T,
    );
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(stdout_of(&out).trim(), format!("approved {id}"));
    assert!(dev.pending().await.is_empty());
    let out = output_within(
        bare_vault_run(dir.path()).env("ASS_BASE_URL", &dev.base_url).args(["dev", "approve", &id]),
        T,
    );
    assert_eq!(out.status.code(), Some(78), "no admin key: {}", stderr_of(&out));
    let out = output_within(
        bare_vault_run(dir.path())
            .env("ASS_BASE_URL", &dev.base_url)
            .env("ASS_ADMIN_KEY", "ass_admin_wrong")
            .args(["dev", "deny", &id]),
        T,
    );
    assert_eq!(out.status.code(), Some(77), "wrong admin key: {}", stderr_of(&out));
    assert!(!stderr_of(&out).contains("ass_admin_wrong"));
    assert!(!err.contains(&dev.admin_key), "{err}");
}

#[tokio::test]
async fn errors_say_how_to_fix_them() {
    let dir = tmp();
    let run = |env: &[(&str, &str)], args: &str| common::run_bare_with(dir.path(), env, args);
    // Not exported: the fix says "export"; no entry's name in front of a global problem.
    let (out, err) = run(&[], "-e OPENAI=myagent/OPENAI -e B=myagent/B -- true");
    assert_eq!(out.status.code(), Some(78), "{err}");
    assert!(err.contains("export ASS_AGENT_KEY"), "{err}");
    assert!(err.starts_with("vault-run: error: no agent key"), "no entry prefix: {err}");
    assert!(!err.contains("more;"), "one failure, not one per entry: {err}");
    // The base URL: a trailing /v1, no scheme.
    let key = ("ASS_AGENT_KEY", "ass_x");
    let (out, err) = run(&[key, ("ASS_BASE_URL", "http://127.0.0.1:9/v1")], "-e A=myagent/A -- true");
    assert_eq!(out.status.code(), Some(78), "{err}");
    assert!(err.contains("drop it: http://127.0.0.1:9 "), "{err}");
    let (out, err) = run(&[key, ("ASS_BASE_URL", "127.0.0.1:41783")], "-e A=myagent/A -- true");
    assert_eq!(out.status.code(), Some(78), "{err}");
    assert!(err.contains("http://127.0.0.1:41783"), "{err}");

    // A private CA not trusted: configuration (78), naming ASS_CACERT; http to the TLS port.
    let dev = DevServer::start_with(&["--tls"]);
    let env = [("ASS_AGENT_KEY", dev.agent_key.as_str()), ("ASS_BASE_URL", dev.base_url.as_str())];
    let (out, err) = run(&env, "-e A=myagent/A -e B=myagent/A -- true");
    assert_eq!(out.status.code(), Some(78), "{err}");
    assert!(err.contains("ASS_CACERT") && err.contains("not trusted"), "{err}");
    assert!(err.starts_with("vault-run: error: cannot reach"), "no entry prefix: {err}");
    let plain = dev.base_url.replace("https://", "http://");
    let env = [("ASS_AGENT_KEY", dev.agent_key.as_str()), ("ASS_BASE_URL", plain.as_str())];
    let (out, err) = run(&env, "--retries 0 -e A=myagent/A -- true");
    assert_eq!(out.status.code(), Some(78), "{err}");
    assert!(err.contains("may speak https"), "{err}");
}

#[test]
fn an_unreachable_vault_is_named_too() {
    let dir = tempfile::tempdir().unwrap();
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let url = format!("http://{closed}");
    let (out, err) = common::run_bare_with(
        dir.path(),
        &[("VAULT_ADDR", &url), ("VAULT_TOKEN", "hvs.not-a-real-token-0001")],
        "--retries 0 -e PG=vault://secret/app/db#password -- true",
    );
    assert_eq!(out.status.code(), Some(75), "{err}");
    assert!(
        err.contains(&format!("cannot reach Vault/OpenBao at {url}")) && err.contains("VAULT_ADDR"),
        "{err}"
    );
    assert!(!err.contains("hvs.not-a-real-token-0001"), "{err}");
}
