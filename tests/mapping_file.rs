//! The mapping file: found upward and named, `VAULT_RUN_FILE`, the `[store]` table, checked
//! for its owner and size, its references before any request, its errors by line.

mod common;

use std::time::Duration;

use common::{
    as_root_with_a_secret, bare_vault_run, env_of, output_within, seeded_profiles, stderr_of, stdout_of, tmp,
    vault_run, write, DevServer, T,
};

#[tokio::test]
async fn the_mapping_is_found_in_a_parent_and_named() {
    let dev = seeded_profiles().await;
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

// ---------------------------------------------------------------------------------------------
// Flags and configuration.

#[tokio::test]
async fn vault_run_file_names_the_mapping() {
    let dev = DevServer::with(&[("production/app/A", "value-from-file")]).await;
    let dir = tmp();
    let conf = tempfile::tempdir().unwrap();
    let file = conf.path().join("elsewhere.toml");
    std::fs::write(&file, "[env]\nFROM_FILE = \"production/app/A\"\n").unwrap();
    let out = output_within(
        vault_run(&dev, dir.path()).env("VAULT_RUN_FILE", &file).args(common::words("-- env -0")),
        T,
    );
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(env_of(&out.stdout).get("FROM_FILE").map(String::as_str), Some("value-from-file"));
}

// ---------------------------------------------------------------------------------------------
// ./vault-run.toml planted by another user (a shared directory, another user's checkout) chose
// the child's variables (any name off the dangerous list, set through `default`) and the
// secrets fetched, for whoever ran vault-run there. As git does for repositories, a file found
// by looking must be the caller's or root's; naming it with -f still works.

#[tokio::test]
async fn a_mapping_file_found_in_the_directory_but_owned_by_another_user_is_refused() {
    let Some((dev, dir)) = as_root_with_a_secret("cannot give a file to another user here").await else {
        return;
    };
    let file = write(
        dir.path(),
        "vault-run.toml",
        "[env]\nA = \"production/app/A\"\nPLANTED = { path = \"none/x/Y\", default = \"sh -c planted\" }\n",
    );
    std::os::unix::fs::chown(&file, Some(65534), None).unwrap();
    let out = output_within(
        vault_run(&dev, dir.path()).args(common::words("-- sh -c")).arg("echo \"$PLANTED\""),
        T,
    );
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(78), "{err}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("planted"));
    assert!(err.contains("uid 65534") && err.contains("-f"), "{err}");
    // Named explicitly, it is the caller's choice.
    let out = output_within(
        vault_run(&dev, dir.path())
            .args(common::words("-f vault-run.toml -- sh -c"))
            .arg("echo \"$PLANTED\""),
        T,
    );
    assert!(out.status.success(), "{}", stderr_of(&out));
    // `check` looks the same way.
    let out = output_within(vault_run(&dev, dir.path()).arg("check"), T);
    assert_eq!(out.status.code(), Some(78), "{}", stderr_of(&out));
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
// Large mappings: linear time, and a documented size limit.

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

// ---------------------------------------------------------------------------------------------
// `.`/`..` segments in a reference: URLs resolve them, so a mapping could send the scoped token
// (or the Vault token) to another API path than a secret read: `vault://secret/../auth/token/
// lookup-self#id` read the token's own id into the child's environment from a server that
// answered the mount lookup.

#[test]
fn references_with_dot_segments_are_refused_before_any_request() {
    let dir = tmp();
    for reference in [
        "production/../../tokens/X",
        "ass://production/./app/KEY",
        "vault://secret/../auth/token/lookup-self#id",
        "vault://secret/app/..#id",
    ] {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let out = output_within(
            common::bare_vault_run(dir.path())
                .env("ASS_BASE_URL", &url)
                .env("ASS_AGENT_KEY", "ass_review_key_0123456789")
                .env("VAULT_ADDR", &url)
                .env("VAULT_TOKEN", "hvs.review-token-0123456789")
                .args(common::words(&format!("-e A={reference} -- true"))),
            T,
        );
        let err = stderr_of(&out);
        assert_eq!(out.status.code(), Some(78), "{reference}: {err}");
        assert!(err.contains("'..' segment"), "{reference}: {err}");
        assert!(listener.accept().is_err(), "{reference}: a request was made");
    }
}

#[tokio::test]
async fn the_store_table_and_its_deprecated_name_vault() {
    let dev = seeded_profiles().await;
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
