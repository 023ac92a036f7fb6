//! `vault-run check`: a header, a row per variable with its reason, denied and approval-bound
//! secrets, and one JSON document for programs.

mod common;

use common::{
    bare_vault_run, output_within, seeded_profiles, stderr_of, stdout_of, tmp, vault_run, write, DevServer, T,
};
use serde_json::Value;

#[tokio::test]
async fn check_has_a_header_reasons_and_json() {
    let dev = seeded_profiles().await;
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

// ---------------------------------------------------------------------------------------------
// `vault-run check`.

#[tokio::test]
async fn check_shows_denied_and_approval() {
    let dev = DevServer::with(&[("production/app/A", "value-a"), ("production/other/B", "value-b")]).await;
    let key = dev.agent("narrow", &["secrets:read:production/app/*"]).await;
    let dir = tmp();
    let out = output_within(
        vault_run(&dev, dir.path())
            .env("ASS_AGENT_KEY", &key)
            .args(common::words("check -e A=production/app/A -e B=production/other/B")),
        T,
    );
    let table = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(77), "as the run would: {table}{}", stderr_of(&out));
    let b = table.lines().find(|l| l.starts_with("B ")).unwrap_or_else(|| panic!("no B line: {table}"));
    assert!(b.split_whitespace().any(|w| w == "denied"), "{table}");
    assert!(!table.contains("value-"), "{table}");

    dev.put_tier("production/pay/KEY", "value-pay", "sensitive").await;
    let out = output_within(
        vault_run(&dev, dir.path()).args(common::words(
            "check --approval-timeout 0 -e A=production/app/A -e PAY=production/pay/KEY",
        )),
        T,
    );
    let table = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(75), "as the run would: {table}{}", stderr_of(&out));
    let pay = table.lines().find(|l| l.starts_with("PAY ")).unwrap_or_else(|| panic!("no PAY line: {table}"));
    assert!(pay.split_whitespace().any(|w| w == "approval"), "{table}");
}
