//! The Vault/OpenBao backend against a real `bao server -dev` on loopback.
//! Under CI these tests fail (not skip) when `bao` is missing: `scripts/test` installs it.

mod common;

use common::bao::{bao_available, Bao, ROOT};
use common::T;
use common::{bare_vault_run, env_of, output_within, stderr_of, DevServer};
use serde_json::json;

/// A seeded server, or `None` (the test skipped) when `bao` is not installed outside CI.
async fn seeded() -> Option<Bao> {
    if !bao_available() {
        return None;
    }
    let bao = Bao::start().await;
    bao.kv2("app/db", json!({"username": "app", "password": "pg-pass-0001", "port": 5432})).await;
    bao.api("POST", "sys/mounts/kv1", Some(json!({"type": "kv", "options": {"version": "1"}}))).await;
    bao.api("POST", "kv1/legacy", Some(json!({"api_key": "legacy-key-0002"}))).await;
    Some(bao)
}

/// Seeds `secret/other/x` and returns a token that may read `secret/app/*` only (and may not
/// create child tokens).
async fn narrow_token(bao: &Bao) -> String {
    bao.kv2("other/x", json!({"v": "other-0003"})).await;
    bao.api(
        "PUT",
        "sys/policies/acl/narrow",
        Some(json!({"policy": "path \"secret/data/app/*\" { capabilities = [\"read\"] }"})),
    )
    .await;
    bao.api("POST", "auth/token/create", Some(json!({"policies": ["narrow"], "ttl": "10m"}))).await["auth"]
        ["client_token"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn reads_kv_v1_v2_fields_and_globs_with_a_revoked_child_token() {
    let Some(bao) = seeded().await else { return };
    let dir = tempfile::tempdir().unwrap();
    let before = bao.accessors().await;
    let (out, env) = common::output_and_env(
        bao.run(dir.path())
            .env("VAULT_TOKEN", ROOT)
            .args(common::words(
                "-vv -e PG_PASS=vault://secret/app/db#password -e LEGACY=vault://kv1/legacy#api_key",
            ))
            .args(common::words("-e DB_*=vault://secret/app/db#* -- env -0")),
    );
    common::assert_env(
        &env,
        &[
            ("PG_PASS", "pg-pass-0001"),
            ("LEGACY", "legacy-key-0002"),
            ("DB_username", "app"),
            ("DB_password", "pg-pass-0001"),
            ("DB_port", "5432"),
        ],
    );
    assert!(!env.contains_key("VAULT_TOKEN"), "the Vault token never reaches the child");
    assert!(stderr_of(&out).contains("child token"), "{}", stderr_of(&out));
    assert!(!stderr_of(&out).contains(ROOT));
    assert_eq!(bao.accessors().await, before, "the child token is revoked before the exec");
}

#[tokio::test]
async fn approle_token_files_and_env_references() {
    let Some(bao) = seeded().await else { return };
    let (role_id, secret_id) = bao
        .approle("path \"secret/data/app/*\" { capabilities = [\"read\"] }\npath \"auth/token/create\" { capabilities = [\"update\"] }")
        .await;
    let dir = tempfile::tempdir().unwrap();

    let env = common::env_after(
        bao.run(dir.path())
            .env("VAULT_ROLE_ID", &role_id)
            .env("VAULT_SECRET_ID", &secret_id)
            .env("PG", "vault://secret/app/db#password")
            .args(common::words("-- env -0")),
    );
    assert_eq!(env["PG"], "pg-pass-0001", "env reference resolved through AppRole");
    assert!(!env.contains_key("VAULT_SECRET_ID") && !env.contains_key("VAULT_ROLE_ID"));

    let secret_file = dir.path().join("secret-id");
    std::fs::write(&secret_file, format!("{secret_id}\n")).unwrap();
    private(&secret_file);
    let out = output_within(
        bao.run(dir.path())
            .env("VAULT_ROLE_ID", &role_id)
            .env("VAULT_SECRET_ID_FILE", &secret_file)
            .args(common::words("-e PG=vault://secret/app/db#password -- true")),
        T,
    );
    assert!(out.status.success(), "_FILE form: {}", stderr_of(&out));

    let token_file = dir.path().join("tok");
    std::fs::write(&token_file, ROOT).unwrap();
    private(&token_file);
    let out = output_within(
        bao.run(dir.path()).args([
            "--vault-token-file",
            token_file.to_str().unwrap(),
            "-e",
            "PG=vault://secret/app/db#password",
            "--",
            "env",
            "-0",
        ]),
        T,
    );
    assert!(out.status.success(), "--vault-token-file: {}", stderr_of(&out));
    assert_eq!(env_of(&out.stdout)["PG"], "pg-pass-0001");

    std::fs::write(dir.path().join(".vault-token"), ROOT).unwrap();
    private(&dir.path().join(".vault-token"));
    let out = output_within(
        bao.run(dir.path()).args(common::words("-e PG=vault://secret/app/db#password -- true")),
        T,
    );
    assert!(out.status.success(), "~/.vault-token: {}", stderr_of(&out));
}

#[tokio::test]
async fn denied_missing_sealed_and_no_create_fallback() {
    let Some(bao) = seeded().await else { return };
    let narrow = narrow_token(&bao).await;
    let dir = tempfile::tempdir().unwrap();
    let run = |token: &str, args: &[&str]| {
        output_within(bao.run(dir.path()).env("VAULT_TOKEN", token).args(args), T)
    };

    let out = run(&narrow, &["-e", "PG=vault://secret/app/db#password", "--", "env", "-0"]);
    assert!(out.status.success(), "a token that may not create children still reads: {}", stderr_of(&out));
    assert!(stderr_of(&out).contains("child tokens"), "one warning: {}", stderr_of(&out));
    assert_eq!(env_of(&out.stdout)["PG"], "pg-pass-0001");

    let out = run(&narrow, &["-e", "X=vault://secret/other/x#v", "--", "true"]);
    assert_eq!(out.status.code(), Some(77), "policy denies the path: {}", stderr_of(&out));

    let out = run(ROOT, &["-e", "X=vault://secret/app/db#nope", "--", "true"]);
    assert_eq!(out.status.code(), Some(69), "missing field: {}", stderr_of(&out));
    assert!(stderr_of(&out).contains("nope"));
    let out = run(ROOT, &["-e", "X=vault://secret/app/none#v", "--", "true"]);
    assert_eq!(out.status.code(), Some(69), "missing path: {}", stderr_of(&out));

    let out = run(
        ROOT,
        &["check", "-e", "PG=vault://secret/app/db#password", "-e", "X=vault://secret/app/db#nope"],
    );
    assert_eq!(out.status.code(), Some(69));
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.lines().any(|l| l.starts_with("PG ") && l.ends_with("ok")), "{table}");
    assert!(table.lines().any(|l| l.starts_with("X ") && l.ends_with("missing  not found")), "{table}");
    assert!(!table.contains("pg-pass-0001"));

    bao.api("PUT", "sys/seal", None).await;
    let out = run(ROOT, &["--retries", "0", "-e", "PG=vault://secret/app/db#password", "--", "true"]);
    assert_eq!(out.status.code(), Some(75), "sealed: {}", stderr_of(&out));
}

#[tokio::test]
async fn one_mapping_mixes_both_backends() {
    let Some(bao) = seeded().await else { return };
    let dev = DevServer::with(&[("production/app/TOKEN", "ass-token-value-0004")]).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("vault-run.toml"),
        "[env]\nFROM_ASS = \"production/app/TOKEN\"\nFROM_BAO = \"vault://secret/app/db#password\"\nURL = { template = \"postgres://{{ vault://secret/app/db#username }}:{{ vault://secret/app/db#password }}@db/{{ ass://production/app/TOKEN }}\" }\n",
    )
    .unwrap();
    let env = common::env_after(
        bao.run(dir.path())
            .env("VAULT_TOKEN", ROOT)
            .env("ASS_BASE_URL", &dev.base_url)
            .env("ASS_AGENT_KEY", &dev.agent_key)
            .args(common::words("-- env -0")),
    );
    assert_eq!(env["FROM_ASS"], "ass-token-value-0004");
    assert_eq!(env["FROM_BAO"], "pg-pass-0001");
    assert_eq!(env["URL"], "postgres://app:pg-pass-0001@db/ass-token-value-0004");
    assert!(!env.contains_key("VAULT_TOKEN") && !env.contains_key("ASS_AGENT_KEY"));
}

/// A Vault 403 is a token or policy refusal, told in Vault's terms: it once went through Agent
/// Secret Store's error table (its `SCOPE_DENIED`) and lost Vault's own message.
#[tokio::test]
async fn a_vault_denial_speaks_vaults_terms_not_the_stores() {
    let Some(bao) = seeded().await else { return };
    let narrow = narrow_token(&bao).await;
    let dir = tempfile::tempdir().unwrap();
    for args in [
        &["-e", "X=vault://secret/other/x#v", "--", "true"][..],
        &["check", "-e", "X=vault://secret/other/x#v"],
    ] {
        let out = output_within(bao.run(dir.path()).env("VAULT_TOKEN", &narrow).args(args), T);
        let said = format!("{}{}", stderr_of(&out), String::from_utf8_lossy(&out.stdout));
        assert_eq!(out.status.code(), Some(77), "{args:?}: {said}");
        assert!(said.contains("vault://secret/other/x"), "names the reference: {said}");
        assert!(
            said.contains("permission denied by Vault (403: permission denied"),
            "Vault's own words: {said}"
        );
        assert!(!said.to_lowercase().contains("scope"), "a Vault policy is not a store scope: {said}");
        assert!(!said.contains(&narrow), "the token is never printed: {said}");
    }
}

#[tokio::test]
async fn bao_addr_and_bao_token_work_like_the_vault_names() {
    let Some(bao) = seeded().await else { return };
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = bare_vault_run(dir.path());
    cmd.env("HOME", dir.path())
        .env("BAO_ADDR", &bao.addr)
        .env("BAO_TOKEN", ROOT)
        .args(common::words("-e PG=vault://secret/app/db#password -- env -0"));
    let env = common::env_after(&mut cmd);
    assert_eq!(env["PG"], "pg-pass-0001");
    assert!(!env.contains_key("BAO_TOKEN"), "BAO_TOKEN is removed from the child's environment");
}

/// The child token vault-run creates has a use count that covers its reads and no more than
/// the reads and its own revocation need; it is revoked, and so is an AppRole login token.
/// Seen through a recording proxy in front of the real server.
#[tokio::test]
async fn the_child_token_use_count_and_the_approle_login_token_is_revoked() {
    let Some(bao) = seeded().await else { return };
    let proxy = common::RecordingProxy::start(&bao.addr);
    let dir = tempfile::tempdir().unwrap();
    let run = |envs: &[(&str, &str)]| {
        let mut cmd = bao.run(dir.path());
        cmd.env("VAULT_ADDR", &proxy.url)
            .envs(envs.iter().copied())
            .args(common::words("-e PG=vault://secret/app/db#password -e LEGACY=vault://kv1/legacy#api_key"))
            .args(common::words("-e U=vault://secret/app/db#username -- true"));
        output_within(&mut cmd, T)
    };
    let out = run(&[("VAULT_TOKEN", ROOT)]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let log = proxy.log();
    let created = log
        .iter()
        .find(|e| e["path"] == "/v1/auth/token/create")
        .unwrap_or_else(|| panic!("no child token created: {log:?}"));
    let num_uses = created["body"]["num_uses"].as_u64().expect("a use count is set");
    let child = created["response"]["auth"]["client_token"].as_str().unwrap();
    let used: Vec<String> = log
        .iter()
        .filter(|e| e["token"] == child)
        .map(|e| format!("{} {}", e["method"].as_str().unwrap(), e["path"].as_str().unwrap()))
        .collect();
    assert!(
        used.iter().any(|u| u.contains("/v1/secret/data/app/db")),
        "reads with the child token: {used:?}"
    );
    assert!(num_uses as usize >= used.len(), "{num_uses} uses for {} requests: {used:?}", used.len());
    assert!(
        num_uses as usize <= used.len() + 1,
        "{num_uses} uses for only {} requests: {used:?}",
        used.len()
    );

    // AppRole: the login token and the child token are both gone after the run.
    let (role_id, secret_id) = bao
        .approle("path \"secret/data/app/*\" { capabilities = [\"read\"] }\npath \"kv1/*\" { capabilities = [\"read\"] }\npath \"auth/token/create\" { capabilities = [\"update\"] }")
        .await;
    let before = bao.accessors().await;
    let out = run(&[("VAULT_ROLE_ID", &role_id), ("VAULT_SECRET_ID", &secret_id)]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let log = proxy.log();
    let login = log.iter().rev().find(|e| e["path"] == "/v1/auth/approle/login").expect("an AppRole login");
    let login_token = login["response"]["auth"]["client_token"].as_str().unwrap();
    let lookup = bao.api_status("POST", "auth/token/lookup", Some(json!({ "token": login_token }))).await;
    assert!(!(200..300).contains(&lookup), "the AppRole login token still works after the run ({lookup})");
    assert_eq!(bao.accessors().await, before, "a token (login or child) was left alive");
}

/// Credential files must be private: vault-run refuses one that group or others can read.
fn private(path: &std::path::Path) {
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
}
