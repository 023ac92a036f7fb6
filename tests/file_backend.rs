//! The third backend, `file:///PATH`, through the real binary: a registered backend that the
//! mapping, resolve and `check` know only through the registry. It needs no server.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{assert_not_started, bare_vault_run, env_of, marker_child, output_within, stderr_of};

const T: Duration = Duration::from_secs(60);

/// A secret file only its owner can read.
fn secret(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
    p
}

fn mapping(dir: &Path, text: &str) {
    std::fs::write(dir.join("vault-run.toml"), text).unwrap();
}

#[test]
fn file_references_fill_variables_templates_and_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let db = secret(dir.path(), "db", "db-pass-file-0001\n");
    let api = secret(dir.path(), "api", "api-key-file-0002");
    let gone = dir.path().join("gone");
    mapping(
        dir.path(),
        &format!(
            "[env]\nDB_PASSWORD = \"file://{db}\"\n\
             DATABASE_URL = {{ template = \"postgres://app:{{{{ file://{db} }}}}@db/app\" }}\n\
             MAYBE = {{ path = \"file://{gone}\", optional = true }}\n\
             LEVEL = {{ path = \"file://{gone}\", default = \"info\" }}\n",
            db = db.display(),
            gone = gone.display()
        ),
    );
    let flag = format!("API_KEY=file://{}", api.display());
    let out = output_within(bare_vault_run(dir.path()).args(["-e", &flag, "--", "env", "-0"]), T);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let env = env_of(&out.stdout);
    // One trailing newline is the file's, not the secret's.
    assert_eq!(env["DB_PASSWORD"], "db-pass-file-0001");
    assert_eq!(env["DATABASE_URL"], "postgres://app:db-pass-file-0001@db/app");
    assert_eq!(env["API_KEY"], "api-key-file-0002");
    assert_eq!(env["LEVEL"], "info");
    assert!(!env.contains_key("MAYBE"));
}

#[test]
fn check_names_the_file_backend_and_never_the_value() {
    let dir = tempfile::tempdir().unwrap();
    let db = secret(dir.path(), "db", "db-pass-file-0003");
    let gone = dir.path().join("gone");
    mapping(
        dir.path(),
        &format!(
            "[env]\nDB_PASSWORD = \"file://{}\"\nMAYBE = {{ path = \"file://{}\", optional = true }}\n",
            db.display(),
            gone.display()
        ),
    );
    let out = output_within(bare_vault_run(dir.path()).args(["check", "--format", "json"]), T);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains("db-pass-file-0003"), "check never prints values: {text}");
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let vars = doc["variables"].as_array().unwrap();
    assert_eq!(vars[0]["name"], "DB_PASSWORD");
    assert_eq!(vars[0]["backend"], "file");
    assert_eq!(vars[0]["status"], "ok");
    assert_eq!(vars[0]["reference"], format!("file://{}", db.display()));
    assert_eq!(vars[1]["status"], "missing");
    assert_eq!(vars[1]["reason"], "not found; optional");
}

#[test]
fn a_file_others_can_read_or_a_missing_one_stops_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("started");
    let open = secret(dir.path(), "open", "shared-value-0004");
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o644)).unwrap();
    let flag = format!("DB=file://{}", open.display());
    let out =
        output_within(bare_vault_run(dir.path()).args(["-e", &flag, "--"]).args(marker_child(&marker)), T);
    assert_not_started(&out, 78, &marker);
    let err = stderr_of(&out);
    assert!(err.contains("chmod 600") && err.contains("DB"), "{err}");
    assert!(!err.contains("shared-value-0004"), "{err}");

    let flag = format!("DB=file://{}", dir.path().join("gone").display());
    let out =
        output_within(bare_vault_run(dir.path()).args(["-e", &flag, "--"]).args(marker_child(&marker)), T);
    assert_not_started(&out, 69, &marker);
    assert!(stderr_of(&out).contains("no such file"), "{}", stderr_of(&out));
}

#[test]
fn bad_file_references_are_refused_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("started");
    for (flag, says) in [
        ("DB=file://relative/db", "needs an absolute path"),
        ("DB=file:///run/../etc/shadow", "'.' or '..'"),
        ("DB_*=file:///run/secrets/*", "glob entry cannot use file://"),
    ] {
        let out =
            output_within(bare_vault_run(dir.path()).args(["-e", flag, "--"]).args(marker_child(&marker)), T);
        assert_not_started(&out, 78, &marker);
        assert!(stderr_of(&out).contains(says), "{flag}: {}", stderr_of(&out));
    }
}
