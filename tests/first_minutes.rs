//! A new user's first minutes, continued (issue 21): the command resolved before anything is
//! fetched, errors that say how to fix them, approvals a person can act on, help and completion.

mod common;

use std::time::Duration;

use common::{stderr_of, tmp, vault_run, write, DevServer, T};
use serde_json::Value;

/// Every request the dev server has counted, by route.
async fn requests(dev: &DevServer) -> Value {
    dev.stats().await["requests"].clone()
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

/// bash completion inside subcommands (clap_complete's script never matched them for a
/// hyphenated name) and after `--` (commands on PATH), by sourcing the script in bash.
#[test]
fn bash_completes_inside_subcommands_and_commands_after_the_double_dash() {
    if !common::require(common::tool_runs("bash"), "bash") {
        return;
    }
    let dir = tmp();
    let out = common::output_within(common::bare_vault_run(dir.path()).args(["completions", "bash"]), T);
    assert!(out.status.success());
    let script = write(dir.path(), "vault-run.bash", &String::from_utf8_lossy(&out.stdout));
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let prog = write(&bin, "my-agent-tool", "#!/bin/sh\n");
    std::fs::set_permissions(&prog, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let complete = |words: &str| {
        let harness = format!(
            r#"source {}
COMP_WORDS=({words}); COMP_CWORD=$(( ${{#COMP_WORDS[@]}} - 1 ))
_vault__run vault-run "${{COMP_WORDS[COMP_CWORD]}}" "${{COMP_WORDS[COMP_CWORD-1]}}"
printf '%s\n' "${{COMPREPLY[@]}}""#,
            script.display()
        );
        let out = common::output_within(
            std::process::Command::new("bash")
                .args(["--norc", "-c", &harness])
                .env("PATH", format!("{}:/usr/bin:/bin", bin.display())),
            T,
        );
        String::from_utf8_lossy(&out.stdout).lines().map(str::to_owned).collect::<Vec<_>>()
    };
    assert!(complete("vault-run check --fo").contains(&"--format".to_owned()));
    assert!(complete("vault-run dev --se").contains(&"--seed".to_owned()));
    assert!(complete("vault-run completions ''").contains(&"zsh".to_owned()));
    assert_eq!(complete("vault-run secrets im"), ["import"]);
    assert!(complete("vault-run secrets import --print").contains(&"--print-mapping".to_owned()));
    assert_eq!(complete("vault-run -e A=b -- my-agent-to"), ["my-agent-tool"]);
    assert_eq!(complete("vault-run ch"), ["check"]);
}

#[test]
fn the_man_page_has_the_mapping_file_and_no_missing_pages() {
    let dir = tmp();
    let out = common::output_within(common::bare_vault_run(dir.path()).arg("man"), T);
    let page = String::from_utf8_lossy(&out.stdout);
    for section in
        [".SH SUBCOMMANDS", ".SH THE MAPPING FILE", ".SH ENVIRONMENT", ".SH FILES", ".SH EXIT STATUS"]
    {
        assert!(page.contains(section), "{section}");
    }
    assert!(!page.contains(".SH EXTRA"), "exit codes under EXIT STATUS");
    // No reference to a page that is not generated (vault-run-check(1), …).
    assert!(!page.contains("vault\\-run\\-check(") && !page.contains("(1)\n"), "{page}");
    assert!(page.contains("ASS_CACERT") && page.contains("secrets"), "{page}");
}
