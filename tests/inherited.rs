//! References in the inherited environment: resolved only when asked for, and `check` says
//! where a kept one came from.

mod common;

use common::{env_of, output_within, stderr_of, tmp, vault_run, write, DevServer, T};

// ---------------------------------------------------------------------------------------------
// Inherited references nobody asked for.

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
