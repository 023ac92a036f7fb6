//! A new user's first minutes, through the real binary: an empty run refused, the mapping found
//! upward, `--env-file`, `${VAR}` profiles, `check` for people and programs, errors that name
//! the real cause.

mod common;

use std::time::Duration;

use common::{bare_vault_run, env_of, http_json, output_within, raw_server, stderr_of, vault_run, DevServer};
use common::{write, T};
use serde_json::Value;

async fn seeded() -> DevServer {
    let dev = DevServer::with(&[
        ("production/app/LOG_LEVEL", "debug-0001"),
        ("production/dev/PASSWORD", "dev-pass-0002"),
        ("production/prod/PASSWORD", "prod-pass-0003"),
    ])
    .await;
    dev
}

/// A seeded server and a fresh directory holding the file `name` with `text`.
async fn seeded_with(name: &str, text: &str) -> (DevServer, tempfile::TempDir) {
    let dev = seeded().await;
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), name, text);
    (dev, dir)
}

fn stdout_of(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[tokio::test]
async fn a_run_with_nothing_to_fetch_is_refused_and_starts_nothing() {
    let dev = seeded().await;
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
async fn the_mapping_is_found_in_a_parent_and_named() {
    let dev = seeded().await;
    let root = tempfile::tempdir().unwrap();
    let root_path = root.path().canonicalize().unwrap();
    let file = write(&root_path, "proj/vault-run.toml", "[env]\nLEVEL = \"production/app/LOG_LEVEL\"\n");
    let deep = root_path.join("proj/src/bin");
    std::fs::create_dir_all(&deep).unwrap();

    let out = output_within(vault_run(&dev, &deep).args(common::words("-v -- env -0")), T);
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(env_of(&out.stdout).get("LEVEL").map(String::as_str), Some("debug-0001"));
    assert!(stderr_of(&out).contains(&format!("mapping file: {}", file.display())), "{}", stderr_of(&out));

    let out = output_within(vault_run(&dev, &deep).arg("check"), T);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let first = stdout_of(&out).lines().next().unwrap_or_default().to_owned();
    assert_eq!(first, format!("mapping file: {}", file.display()));

    // A file found upward that belongs to another user is refused (anyone can write /tmp/x).
    let foreign = root_path.join("shared");
    let foreign_file = write(&foreign, "vault-run.toml", "[env]\nLEVEL = \"production/app/LOG_LEVEL\"\n");
    std::fs::create_dir_all(foreign.join("sub")).unwrap();
    let other = if nix::unistd::geteuid().is_root() { 65534 } else { 0 };
    if std::os::unix::fs::chown(&foreign_file, Some(other), None).is_ok() {
        let out = output_within(vault_run(&dev, &foreign.join("sub")).args(["--", "true"]), T);
        assert_eq!(out.status.code(), Some(78), "{}", stderr_of(&out));
        assert!(stderr_of(&out).contains("belongs to another user"), "{}", stderr_of(&out));
        let out = output_within(
            vault_run(&dev, &foreign.join("sub")).args(common::words("-f ../vault-run.toml -- true")),
            T,
        );
        assert!(out.status.success(), "-f uses it: {}", stderr_of(&out));
    } else {
        eprintln!("cannot chown a file to another user here: the foreign-owner refusal is not exercised");
    }

    // The search stops at $HOME: a file above it is not used.
    let home = root_path.join("proj/src");
    let out = output_within(vault_run(&dev, &deep).env("HOME", &home).args(["--", "true"]), T);
    assert_eq!(out.status.code(), Some(78), "{}", stderr_of(&out));
    assert!(stderr_of(&out).contains(&format!("up to {}", home.display())), "{}", stderr_of(&out));
}

#[tokio::test]
async fn env_files_resolve_references_and_pass_literals() {
    let text = "# comment\nexport LEVEL=ass://production/app/LOG_LEVEL\nPLAIN='hello world'\nDB=ass://production/dev/PASSWORD\nOVER=from-file\n";
    let (dev, dir) = seeded_with("app.env", text).await;
    write(dir.path(), "later.env", "OVER=from-later\n");
    write(dir.path(), "vault-run.toml", "[env]\nDB = \"production/prod/PASSWORD\"\n");
    let env = common::env_after(
        vault_run(&dev, dir.path())
            .env("PLAIN", "inherited")
            .args(common::words("--env-file app.env --env-file later.env -- env -0")),
    );
    assert_eq!(env["LEVEL"], "debug-0001");
    assert_eq!(env["PLAIN"], "hello world", "an env file wins over the inherited environment");
    assert_eq!(env["DB"], "prod-pass-0003", "the mapping file wins over an env file");
    assert_eq!(env["OVER"], "from-later", "a later env file wins");

    // -e wins over everything; --no-override keeps an inherited value; --pristine keeps literals.
    let env =
        common::env_after(vault_run(&dev, dir.path()).env("PLAIN", "inherited").args(common::words(
            "--env-file app.env -e LEVEL=production/dev/PASSWORD --no-override -- env -0",
        )));
    assert_eq!(env["LEVEL"], "dev-pass-0002");
    assert_eq!(env["PLAIN"], "inherited");
    let out = output_within(
        vault_run(&dev, dir.path()).args(common::words("--env-file app.env --pristine -- env -0")),
        T,
    );
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(env_of(&out.stdout)["PLAIN"], "hello world");

    // An env file alone is enough, even with only literals; check lists the literal, no value.
    std::fs::remove_file(dir.path().join("vault-run.toml")).unwrap();
    let out = output_within(vault_run(&dev, dir.path()).args(common::words("check --env-file later.env")), T);
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(
        stdout_of(&out).contains("OVER") && !stdout_of(&out).contains("from-later"),
        "{}",
        stdout_of(&out)
    );

    // ${VAR} and ${VAR:-default} are vault-run's in env files too: never silently empty.
    write(
        dir.path(),
        "profile.env",
        "DB=\"ass://production/${APP_ENV:-dev}/PASSWORD\"\nGREETING=hi-${WHO:-there}\nRAW='${WHO:-x}'\n",
    );
    let env = common::env_after(
        vault_run(&dev, dir.path()).args(common::words("--env-file profile.env -- env -0")),
    );
    assert_eq!(env["DB"], "dev-pass-0002");
    assert_eq!(env["GREETING"], "hi-there");
    let out = output_within(
        vault_run(&dev, dir.path())
            .env("APP_ENV", "prod")
            .env("WHO", "you")
            .args(common::words("--env-file profile.env -- env -0")),
        T,
    );
    let env = env_of(&out.stdout);
    assert_eq!((env["DB"].as_str(), env["GREETING"].as_str()), ("prod-pass-0003", "hi-you"));
    write(dir.path(), "unset.env", "A=ass://production/${NOT_SET_X}/PASSWORD\n");
    let out =
        output_within(vault_run(&dev, dir.path()).args(common::words("--env-file unset.env -- true")), T);
    assert_eq!(out.status.code(), Some(78), "{}", stderr_of(&out));
    assert!(
        stderr_of(&out).contains("NOT_SET_X") && stderr_of(&out).contains("unset.env (A)"),
        "{}",
        stderr_of(&out)
    );
    write(dir.path(), "unset2.env", "B=plain-${NOT_SET_Y}\n");
    let out =
        output_within(vault_run(&dev, dir.path()).args(common::words("--env-file unset2.env -- true")), T);
    assert_eq!(out.status.code(), Some(78), "{}", stderr_of(&out));
    assert!(stderr_of(&out).contains("NOT_SET_Y") && stderr_of(&out).contains("(B)"), "{}", stderr_of(&out));

    // A syntax error names the file and line, never the line's text.
    write(dir.path(), "bad.env", "A=1\nSECRET_LINE=\"sk-live-0007\n");
    let out = output_within(vault_run(&dev, dir.path()).args(common::words("--env-file bad.env -- true")), T);
    assert_eq!(out.status.code(), Some(78), "{}", stderr_of(&out));
    assert!(stderr_of(&out).contains("bad.env"), "{}", stderr_of(&out));
    assert!(!stderr_of(&out).contains("sk-live-0007"), "{}", stderr_of(&out));
    let out =
        output_within(vault_run(&dev, dir.path()).args(common::words("--env-file none.env -- true")), T);
    assert_eq!(out.status.code(), Some(78), "{}", stderr_of(&out));
    assert!(stderr_of(&out).contains("none.env"), "{}", stderr_of(&out));
}

#[tokio::test]
async fn profiles_expand_variables_in_references() {
    let text = "[vault]\nbase_url = \"${DEV_URL}\"\n[env]\nDB = \"production/${APP_ENV:-dev}/PASSWORD\"\nURL = { template = \"pg://${USER_NOT_EXPANDED}:{{ production/${APP_ENV:-dev}/PASSWORD }}@h\" }\n";
    let (dev, dir) = seeded_with("vault-run.toml", text).await;
    let run = |app_env: Option<&str>| {
        let mut c = vault_run(&dev, dir.path());
        // The file's base_url expands to the same URL the environment names: no warning. (A
        // file alone may not choose where the key goes, expanded or not: see tests/security.rs.)
        c.env("ASS_BASE_URL", &dev.base_url).env("DEV_URL", &dev.base_url).args(common::words("-- env -0"));
        if let Some(v) = app_env {
            c.env("APP_ENV", v);
        }
        output_within(&mut c, T)
    };
    let out = run(None);
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(
        !stderr_of(&out).contains("base_url"),
        "the file's base_url expanded to the same URL: {}",
        stderr_of(&out)
    );
    let env = env_of(&out.stdout);
    assert_eq!(env["DB"], "dev-pass-0002");
    assert_eq!(env["URL"], "pg://${USER_NOT_EXPANDED}:dev-pass-0002@h", "literal text is not expanded");
    let out = run(Some("prod"));
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(env_of(&out.stdout)["DB"], "prod-pass-0003");

    // check shows the expanded reference; -e and environment references expand too.
    let out = output_within(
        vault_run(&dev, dir.path())
            .env("DEV_URL", &dev.base_url)
            .env("APP_ENV", "prod")
            .env("FROM_ENV", "ass://production/${APP_ENV}/PASSWORD")
            .args(common::words("check -e FLAG=production/${APP_ENV}/PASSWORD")),
        T,
    );
    assert!(out.status.success(), "{}", stderr_of(&out));
    let table = stdout_of(&out);
    assert!(table.contains("<- production/prod/PASSWORD"), "{table}");
    assert!(!table.contains("${APP_ENV"), "{table}");

    // An unset variable without a default: 78, naming the variable and the entry.
    let out = output_within(
        vault_run(&dev, dir.path())
            .env("DEV_URL", &dev.base_url)
            .args(common::words("-e X=production/${NOPE_VAR}/A -- true")),
        T,
    );
    assert_eq!(out.status.code(), Some(78), "{}", stderr_of(&out));
    let err = stderr_of(&out);
    assert!(err.contains("NOPE_VAR") && err.contains("X:") && err.contains("-e #1"), "{err}");
    let out = output_within(vault_run(&dev, dir.path()).args(["--", "true"]), T);
    assert_eq!(out.status.code(), Some(78), "{}", stderr_of(&out));
    assert!(
        stderr_of(&out).contains("DEV_URL") && stderr_of(&out).contains("base_url"),
        "{}",
        stderr_of(&out)
    );
}

#[tokio::test]
async fn check_has_a_header_reasons_and_json() {
    let dev = seeded().await;
    dev.put_tier("production/pay/KEY", "pay-0009", "sensitive").await;
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "vault-run.toml",
        "[env]\nLEVEL = \"production/app/LOG_LEVEL\"\nGONE = \"production/app/GONE\"\nOPT = { path = \"production/app/OPT\", optional = true }\n",
    );
    let out = output_within(vault_run(&dev, dir.path()).arg("check"), T);
    assert_eq!(out.status.code(), Some(69), "{}", stderr_of(&out));
    let table = stdout_of(&out);
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].starts_with("mapping file: "), "{table}");
    let header: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(header, ["NAME", "REFERENCE", "VERSION", "TIER", "REQUIREMENT", "STATUS", "REASON"]);
    let row = |name: &str| *lines.iter().find(|l| l.starts_with(&format!("{name} "))).unwrap();
    assert!(row("LEVEL").trim_end().ends_with(" ok"), "{table}");
    assert!(row("GONE").ends_with("missing  not found"), "{table}");
    assert!(row("OPT").ends_with("not found; optional"), "{table}");
    assert!(!table.contains("debug-0001"), "{table}");

    let out = output_within(vault_run(&dev, dir.path()).args(common::words("check --format json")), T);
    assert_eq!(out.status.code(), Some(69));
    let doc: Value = serde_json::from_slice(&out.stdout).expect("one JSON document");
    assert_eq!(doc["would_start"], false);
    assert_eq!(doc["exit_code"], 69);
    assert!(doc["file"].as_str().unwrap().ends_with("vault-run.toml"));
    let vars = doc["variables"].as_array().unwrap();
    let level = vars.iter().find(|v| v["name"] == "LEVEL").unwrap();
    assert_eq!(level["reference"], "production/app/LOG_LEVEL");
    assert_eq!(level["backend"], "ass");
    assert_eq!(level["version"], 1);
    assert_eq!(level["tier"], "standard");
    assert_eq!(level["requirement"], "required");
    assert_eq!(level["status"], "ok");
    assert!(level["reason"].is_null());
    let gone = vars.iter().find(|v| v["name"] == "GONE").unwrap();
    assert_eq!(gone["status"], "missing");
    assert_eq!(gone["reason"], "not found");
    assert!(!stdout_of(&out).contains("debug-0001"));

    // The run would start: exit 0 and would_start true.
    let out = output_within(
        vault_run(&dev, dir.path())
            .args(common::words("check --format json -f /dev/null -e A=production/app/LOG_LEVEL")),
        T,
    );
    assert!(out.status.success(), "{}", stderr_of(&out));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["would_start"], true);
    assert_eq!(doc["exit_code"], 0);

    // No agent key, and a pending approval: said in the reason column.
    let out = output_within(
        bare_vault_run(dir.path())
            .env("ASS_BASE_URL", &dev.base_url)
            .args(common::words("check -f /dev/null -e A=production/app/LOG_LEVEL")),
        T,
    );
    assert_eq!(out.status.code(), Some(78), "{}", stderr_of(&out));
    assert!(stdout_of(&out).contains("no agent key"), "{}", stdout_of(&out));
    let out = output_within(
        vault_run(&dev, dir.path()).args(common::words(
            "check --format json --approval-timeout 0 -f /dev/null -e P=production/pay/KEY",
        )),
        T,
    );
    assert_eq!(out.status.code(), Some(75), "{}", stderr_of(&out));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let reason = doc["variables"][0]["reason"].as_str().unwrap().to_owned();
    assert!(reason.starts_with("approval ") && reason.ends_with(" pending"), "{reason}");
    assert_eq!(doc["exit_code"], 75);

    // A configuration error before anything is fetched is still one JSON document.
    let out = output_within(
        vault_run(&dev, dir.path()).args(common::words("check --format json -f /nonexistent.toml")),
        T,
    );
    assert_eq!(out.status.code(), Some(78));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["exit_code"], 78);
    assert!(doc["error"].as_str().unwrap().contains("/nonexistent.toml"));
}

#[tokio::test]
async fn errors_name_the_real_cause() {
    let dev = seeded().await;
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
async fn the_store_table_and_its_deprecated_name_vault() {
    let dev = seeded().await;
    let dir = tempfile::tempdir().unwrap();
    let entries = "[env]\nL = \"production/app/LOG_LEVEL\"\n";
    // An inherited reference makes the mapping be built twice: still one warning.
    let run = || {
        output_within(
            vault_run(&dev, dir.path()).env("R", "ass://production/app/LOG_LEVEL").args(["--", "env", "-0"]),
            T,
        )
    };
    write(dir.path(), "vault-run.toml", &format!("[store]\nretries = 1\n{entries}"));
    let out = run();
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(env_of(&out.stdout)["L"], "debug-0001");
    assert!(!stderr_of(&out).contains("[vault]"), "{}", stderr_of(&out));

    write(dir.path(), "vault-run.toml", &format!("[vault]\nretries = 1\n{entries}"));
    let out = run();
    let err = stderr_of(&out);
    assert!(out.status.success(), "{err}");
    assert_eq!(env_of(&out.stdout)["L"], "debug-0001");
    assert_eq!(err.matches("[vault] table is now called [store]").count(), 1, "one warning: {err}");

    write(dir.path(), "vault-run.toml", &format!("[store]\nretries = 1\n[vault]\nretries = 2\n{entries}"));
    let out = run();
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(78), "{err}");
    assert!(err.contains("both [store] and [vault]"), "{err}");
}

#[tokio::test]
async fn durations_people_write_are_accepted() {
    let (dev, dir) = seeded_with(
        "vault-run.toml",
        "[vault]\nttl = \"10 minutes\"\n[env]\nL = \"production/app/LOG_LEVEL\"\n",
    )
    .await;
    for args in [
        ["--deadline", "5min"],
        ["--timeout", "1m 30s"],
        ["--approval-timeout", "1h 30m"],
        ["--ttl", "90 seconds"],
        ["--deadline", "2m"],
        ["--timeout", "120"],
    ] {
        let out = output_within(vault_run(&dev, dir.path()).args(args).args(common::words("-- env -0")), T);
        assert!(out.status.success(), "{args:?}: {}", stderr_of(&out));
        assert_eq!(env_of(&out.stdout)["L"], "debug-0001");
    }
    let out = output_within(vault_run(&dev, dir.path()).args(["--ttl", "5 fortnights", "--", "true"]), T);
    assert_eq!(out.status.code(), Some(64), "{}", stderr_of(&out));
    assert!(stderr_of(&out).contains("5min"), "the hint shows the forms: {}", stderr_of(&out));
}

#[test]
fn completions_and_man_page_come_from_the_flags() {
    let dir = tempfile::tempdir().unwrap();
    for (shell, marker) in [
        ("bash", "complete -F"),
        ("zsh", "#compdef vault-run"),
        ("fish", "complete -c vault-run"),
        ("powershell", "Register-ArgumentCompleter"),
        ("elvish", "edit:completion:arg-completer"),
    ] {
        let out = output_within(bare_vault_run(dir.path()).args(["completions", shell]), T);
        assert!(out.status.success(), "{shell}: {}", stderr_of(&out));
        let script = stdout_of(&out);
        assert!(script.contains(marker), "{shell}: {script}");
        for flag in ["--env-file", "--approval-timeout", "--format"] {
            assert!(script.contains(flag.trim_start_matches('-')), "{shell} lacks {flag}");
        }
    }
    if std::process::Command::new("bash").arg("--version").output().is_ok() {
        let out = output_within(bare_vault_run(dir.path()).args(["completions", "bash"]), T);
        std::fs::write(dir.path().join("c.bash"), &out.stdout).unwrap();
        let check =
            std::process::Command::new("bash").arg("-n").arg(dir.path().join("c.bash")).output().unwrap();
        assert!(check.status.success(), "bash -n: {}", String::from_utf8_lossy(&check.stderr));
    }
    let out = output_within(bare_vault_run(dir.path()).args(["completions", "tcsh"]), T);
    assert_eq!(out.status.code(), Some(64));

    let out = output_within(bare_vault_run(dir.path()).arg("man"), T);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let page = stdout_of(&out);
    assert!(page.starts_with(".ie") || page.contains(".TH vault-run"), "{page}");
    assert!(page.contains("env\\-file") && page.contains("completions"), "{page}");
}

/// Waits for a human on a terminal: one live line (what, elapsed, left), redrawn in place and
/// erased when the approval comes; nothing of it when stderr is a pipe.
#[tokio::test]
async fn waiting_for_an_approval_shows_a_live_line_on_a_terminal_only() {
    use std::io::Read;
    let dev = seeded().await;
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
