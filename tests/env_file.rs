//! `--env-file` and `${VAR}` expansion: references resolved, literals passed as written,
//! profiles expanded, and never a credential vault-run removes from the child.

mod common;

use common::{
    assert_not_started, env_of, marker_child, output_within, seeded_profiles_with, stderr_of, stdout_of, tmp,
    vault_run, write, DevServer, Trap, T,
};

#[tokio::test]
async fn env_files_resolve_references_and_pass_literals() {
    let text = "# comment\nexport LEVEL=ass://production/app/LOG_LEVEL\nPLAIN='hello world'\nDB=ass://production/dev/PASSWORD\nOVER=from-file\n";
    let (dev, dir) = seeded_profiles_with("app.env", text).await;
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

// ---------------------------------------------------------------------------------------------
// `$` in env files is kept; only ${VAR} and ${VAR:-default}
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

#[tokio::test]
async fn profiles_expand_variables_in_references() {
    let text = "[vault]\nbase_url = \"${DEV_URL}\"\n[env]\nDB = \"production/${APP_ENV:-dev}/PASSWORD\"\nURL = { template = \"pg://${USER_NOT_EXPANDED}:{{ production/${APP_ENV:-dev}/PASSWORD }}@h\" }\n";
    let (dev, dir) = seeded_profiles_with("vault-run.toml", text).await;
    let run = |app_env: Option<&str>| {
        let mut c = vault_run(&dev, dir.path());
        // The file's base_url expands to the same URL the environment names: no warning. (A
        // file alone may not choose where the key goes, expanded or not: see tests/credentials.rs.)
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

// ---------------------------------------------------------------------------------------------
// `${VAR}` expansion never reads a credential vault-run removes from the child.

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
