//! `vault-run secrets set|import|list|rm` through the binary, against `vault-run dev`: values
//! from standard input only, the `.env` import with its ready mapping, the listing, deletes,
//! approvals for sensitive writes, exit codes, and the official JS SDK reading back what was
//! written.

mod common;

use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::{stderr_of, tmp, vault_run, write, DevServer, T};
use serde_json::Value;

/// Runs `cmd` with `input` on its standard input (bounded by [`T`]).
fn with_stdin(cmd: &mut Command, input: &[u8]) -> Output {
    let mut child =
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn");
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(input).unwrap();
    drop(stdin);
    common::output_of_within(child, T)
}

/// A secret's value and metadata, read with the admin key.
async fn stored(dev: &DevServer, path: &str) -> Value {
    let (status, body) = dev.admin("GET", &format!("/v1/secrets/{path}"), None).await;
    assert_eq!(status, 200, "{path}: {body}");
    body
}

const DOTENV: &str = "# the agent's keys\nOPENAI_API_KEY=sk-openai-0001\nexport DB_PASSWORD=\"p@ss w0rd=x\"\nLOG_LEVEL='debug'\n\nSTRIPE_KEY=sk_test_0002\n";
const VALUES: [&str; 4] = ["sk-openai-0001", "p@ss w0rd=x", "debug", "sk_test_0002"];

#[tokio::test]
async fn import_with_print_mapping_takes_a_dotenv_to_a_running_agent() {
    let dev = DevServer::start();
    let dir = tmp();
    write(dir.path(), ".env", DOTENV);
    let out = common::output_within(
        vault_run(&dev, dir.path())
            .args(common::words("secrets import .env --namespace myagent --print-mapping")),
        T,
    );
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout).into_owned(), stderr_of(&out));
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    // The summary: how many and which names, never a value, on stderr; stdout is the mapping.
    assert!(stderr.contains("imported 4 secrets into myagent"), "{stderr}");
    for name in ["OPENAI_API_KEY", "DB_PASSWORD", "LOG_LEVEL", "STRIPE_KEY"] {
        assert!(stderr.contains(name), "{name} not named: {stderr}");
        assert!(stdout.contains(&format!("{name} = \"myagent/{name}\"")), "{stdout}");
    }
    for v in VALUES {
        assert!(!stdout.contains(v) && !stderr.contains(v), "value {v} shown:\n{stdout}\n{stderr}");
    }
    let table: toml::Table = stdout.parse().expect("the mapping is TOML");
    assert_eq!(table["env"].as_table().unwrap().len(), 4);
    // The same parser as --env-file: quotes and `export` handled, `=` inside a value kept.
    assert_eq!(stored(&dev, "myagent/DB_PASSWORD").await["value"], "p@ss w0rd=x");
    assert_eq!(stored(&dev, "myagent/LOG_LEVEL").await["value"], "debug");

    // The quick start: the printed mapping as vault-run.toml, then a plain run.
    write(dir.path(), "vault-run.toml", &stdout);
    let env = common::env_after(vault_run(&dev, dir.path()).args(["--", "env", "-0"]));
    common::assert_env(
        &env,
        &[
            ("OPENAI_API_KEY", VALUES[0]),
            ("DB_PASSWORD", VALUES[1]),
            ("LOG_LEVEL", VALUES[2]),
            ("STRIPE_KEY", VALUES[3]),
        ],
    );
}

#[tokio::test]
async fn import_applies_type_tier_and_metadata_and_refuses_an_empty_file_before_any_request() {
    let dev = DevServer::start();
    let dir = tmp();
    write(dir.path(), "a.env", "A=alpha-1\nB=beta-2\n");
    let out = common::output_within(
        vault_run(&dev, dir.path())
            .args(common::words("secrets import a.env -n team/app --type api_key --tier sensitive"))
            .args(["--meta", "owner=payments", "--meta", "source=a.env"]),
        T,
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    assert!(out.stdout.is_empty(), "no mapping unless asked: {:?}", out.stdout);
    let b = stored(&dev, "team/app/B").await;
    assert_eq!((b["secret_type"].as_str(), b["access_tier"].as_str()), (Some("api_key"), Some("sensitive")));
    assert_eq!(b["metadata"], serde_json::json!({"owner": "payments", "source": "a.env"}));

    write(dir.path(), "empty.env", "# nothing here\n\n");
    let before = dev.count("POST /v1/tokens").await;
    let out = common::output_within(
        vault_run(&dev, dir.path()).args(common::words("secrets import empty.env -n team/app")),
        T,
    );
    assert_eq!(out.status.code(), Some(78), "{}", stderr_of(&out));
    assert!(stderr_of(&out).contains("nothing to import"), "{}", stderr_of(&out));
    let out = common::output_within(
        vault_run(&dev, dir.path()).args(common::words("secrets import missing.env -n team/app")),
        T,
    );
    assert_eq!(out.status.code(), Some(78), "{}", stderr_of(&out));
    assert_eq!(dev.count("POST /v1/tokens").await, before, "nothing was asked for");
}

#[tokio::test]
async fn set_reads_standard_input_drops_one_newline_and_prints_the_version() {
    let dev = DevServer::start();
    let dir = tmp();
    let set = |input: &'static [u8]| {
        let mut cmd = vault_run(&dev, dir.path());
        cmd.args(common::words("secrets set myagent/TOKEN --type oauth_token --meta by=test"));
        with_stdin(&mut cmd, input)
    };
    let out = set(b"first-value-0001\n");
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "myagent/TOKEN version 1\n");
    assert!(!stderr_of(&out).contains("first-value"), "{}", stderr_of(&out));
    let got = stored(&dev, "myagent/TOKEN").await;
    assert_eq!(got["value"], "first-value-0001");
    assert_eq!(
        (got["secret_type"].as_str(), got["metadata"]["by"].as_str()),
        (Some("oauth_token"), Some("test"))
    );

    // Only one trailing newline goes; inner and other trailing whitespace is the value's.
    let out = set(b" two  words\n\n");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "myagent/TOKEN version 2\n", "{}", stderr_of(&out));
    assert_eq!(stored(&dev, "myagent/TOKEN").await["value"], " two  words\n");
    let out = set(b"crlf-value\r\n");
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(stored(&dev, "myagent/TOKEN").await["value"], "crlf-value");

    // Nothing on stdin is a usage error, and nothing is asked of the server.
    let before = dev.count("POST /v1/tokens").await;
    let out = set(b"\n");
    assert_eq!(out.status.code(), Some(64), "{}", stderr_of(&out));
    assert!(stderr_of(&out).contains("no value for myagent/TOKEN"), "{}", stderr_of(&out));
    assert_eq!(dev.count("POST /v1/tokens").await, before);
}

#[tokio::test]
async fn set_on_a_terminal_reads_without_echo() {
    if !common::require(common::tool_runs("python3"), "python3") {
        return;
    }
    let dev = DevServer::start();
    let args = [common::bin(), "secrets", "set", "myagent/TYPED"];
    let envs = [("ASS_BASE_URL", dev.base_url.as_str()), ("ASS_AGENT_KEY", dev.agent_key.as_str())];
    let (shown, code) =
        common::on_a_terminal(&args, &envs, "Value for myagent/TYPED", b"typed-secret-0003\n");
    assert_eq!(code, 0, "{shown}");
    assert!(!shown.contains("typed-secret-0003"), "the value was echoed: {shown}");
    assert!(shown.contains("myagent/TYPED version 1"), "{shown}");
    assert_eq!(stored(&dev, "myagent/TYPED").await["value"], "typed-secret-0003");
}

#[tokio::test]
async fn list_shows_every_column_never_values_as_a_table_and_as_json() {
    let dev = DevServer::with(&[
        ("myagent/A", "value-a-0001"),
        ("myagent/sub/B", "value-b-0002"),
        ("other/C", "c"),
    ])
    .await;
    let dir = tmp();
    let out = common::output_within(vault_run(&dev, dir.path()).args(["secrets", "list", "myagent"]), T);
    let table = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(common::words(lines[0]), ["PATH", "VERSION", "TYPE", "TIER", "UPDATED", "EXPIRED"], "{table}");
    assert_eq!(lines.len(), 3, "{table}");
    let row = common::words(lines[1]);
    assert_eq!(
        (row[0], row[1], row[2], row[3], row[5]),
        ("myagent/A", "1", "custom", "standard", "no"),
        "{table}"
    );
    assert!(row[4].starts_with("20") && row[4].ends_with('Z'), "updated: {table}");
    assert!(lines[2].starts_with("myagent/sub/B "), "recursive: {table}");
    assert!(!table.contains("value-a") && !table.contains("other/C"), "{table}");

    let out = common::output_within(
        vault_run(&dev, dir.path()).args(common::words("secrets list myagent --format json")),
        T,
    );
    let doc: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(doc["total"], 2);
    let a = &doc["items"][0];
    assert_eq!((a["path"].as_str(), a["version"].as_u64()), (Some("myagent/A"), Some(1)));
    assert_eq!((a["secret_type"].as_str(), a["access_tier"].as_str()), (Some("custom"), Some("standard")));
    assert_eq!(a["expired"], false);
    assert!(a["updated_at"].is_string());
    assert!(!String::from_utf8_lossy(&out.stdout).contains("value-"), "{doc}");

    let out = common::output_within(vault_run(&dev, dir.path()).args(["secrets", "list"]), T);
    assert_eq!(out.status.code(), Some(64), "{}", stderr_of(&out));
    assert!(stderr_of(&out).contains("vault-run secrets list myagent"), "{}", stderr_of(&out));
}

#[tokio::test]
async fn rm_deletes_standard_secrets_and_explains_the_others() {
    let dev = DevServer::with(&[("myagent/OLD", "old-value")]).await;
    dev.put_tier("myagent/GUARDED", "guarded-value", "sensitive").await;
    let dir = tmp();
    let rm = |path: &str| common::output_within(vault_run(&dev, dir.path()).args(["secrets", "rm", path]), T);
    let out = rm("myagent/OLD");
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    assert!(stderr_of(&out).contains("deleted myagent/OLD"));
    assert_eq!(dev.admin("GET", "/v1/secrets/myagent/OLD", None).await.0, 404);
    let out = rm("myagent/OLD");
    assert_eq!(out.status.code(), Some(69), "{}", stderr_of(&out));
    let out = rm("myagent/GUARDED");
    assert_eq!(out.status.code(), Some(77), "{}", stderr_of(&out));
    assert!(stderr_of(&out).contains("needs a human"), "{}", stderr_of(&out));
    assert_eq!(dev.admin("GET", "/v1/secrets/myagent/GUARDED", None).await.0, 200);
    let out = rm("no-namespace");
    assert_eq!(out.status.code(), Some(64), "{}", stderr_of(&out));
}

#[tokio::test]
async fn overwriting_a_sensitive_secret_waits_for_an_approval_shown_like_a_read() {
    let dev = DevServer::start();
    dev.put_tier("prod/stripe/SECRET_KEY", "sk-live-old", "sensitive").await;
    let dir = tmp();
    let mut cmd = vault_run(&dev, dir.path());
    cmd.args(common::words("secrets set prod/stripe/SECRET_KEY --approval-timeout 30s"));
    let mut child =
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn");
    child.stdin.take().unwrap().write_all(b"sk-live-new\n").unwrap();
    let id = dev.wait_pending().await;
    dev.approve(&id).await;
    let out = common::output_of_within(child, T);
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains(&format!("approval {id} required")) && err.contains("vault-run dev approve"),
        "{err}"
    );
    assert_eq!(stored(&dev, "prod/stripe/SECRET_KEY").await["value"], "sk-live-new");

    // Not waiting: the id and how to approve, exit 75, nothing written.
    let mut cmd = vault_run(&dev, dir.path());
    cmd.args(common::words("secrets set prod/stripe/SECRET_KEY --approval-timeout 0"));
    let out = with_stdin(&mut cmd, b"sk-live-newer\n");
    assert_eq!(out.status.code(), Some(75), "{}", stderr_of(&out));
    assert!(stderr_of(&out).contains("vault-run dev approve apr_"), "{}", stderr_of(&out));
    assert_eq!(stored(&dev, "prod/stripe/SECRET_KEY").await["value"], "sk-live-new");
}

#[tokio::test]
async fn the_token_is_scoped_to_exactly_the_writes() {
    let dev = DevServer::start();
    // An agent allowed only these two writes can import exactly them.
    let key = dev.agent("writer", &["secrets:write:myagent/A", "secrets:write:myagent/B"]).await;
    let dir = tmp();
    write(dir.path(), ".env", "A=1\nB=2\n");
    let out = common::output_within(
        vault_run(&dev, dir.path())
            .env("ASS_AGENT_KEY", &key)
            .args(common::words("secrets import .env -n myagent")),
        T,
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    // A third name is outside its scopes: refused (77), saying which scope it needs.
    write(dir.path(), ".env", "A=1\nB=2\nC=3\n");
    let out = common::output_within(
        vault_run(&dev, dir.path())
            .env("ASS_AGENT_KEY", &key)
            .args(common::words("secrets import .env -n myagent")),
        T,
    );
    assert_eq!(out.status.code(), Some(77), "{}", stderr_of(&out));
    assert!(stderr_of(&out).contains("secrets:write"), "{}", stderr_of(&out));
}

#[test]
fn secrets_commands_fail_like_a_launch() {
    let dir = tmp();
    // No agent key: 78, and what to export.
    let out =
        common::output_within(common::bare_vault_run(dir.path()).args(["secrets", "list", "myagent"]), T);
    assert_eq!(out.status.code(), Some(78), "{}", stderr_of(&out));
    assert!(stderr_of(&out).contains("ASS_AGENT_KEY"), "{}", stderr_of(&out));
    // Unreachable: 75 (after the retries).
    let out = common::output_within(
        common::bare_vault_run(dir.path())
            .env("ASS_AGENT_KEY", "ass_x")
            .env("ASS_BASE_URL", "http://127.0.0.1:1")
            .args(common::words("secrets list myagent --retries 0")),
        T,
    );
    assert_eq!(out.status.code(), Some(75), "{}", stderr_of(&out));
    // Plain http to a non-loopback host: refused before anything is sent (78).
    let out = common::output_within(
        common::bare_vault_run(dir.path())
            .env("ASS_AGENT_KEY", "ass_x")
            .env("ASS_BASE_URL", "http://10.255.255.1:8200")
            .args(common::words("secrets rm myagent/K")),
        T,
    );
    assert_eq!(out.status.code(), Some(78), "{}", stderr_of(&out));
    assert!(stderr_of(&out).contains("--allow-insecure-http"), "{}", stderr_of(&out));
}

#[test]
fn a_program_named_secrets_runs_after_a_double_dash() {
    let dir = tmp();
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let prog = write(&bin, "secrets", "#!/bin/sh\necho ran-the-program \"$@\"\n");
    std::os::unix::fs::PermissionsExt::set_mode(&mut std::fs::metadata(&prog).unwrap().permissions(), 0o755);
    std::fs::set_permissions(&prog, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    write(dir.path(), "app.env", "GREETING=hello\n");
    let out = common::output_within(
        common::bare_vault_run(dir.path())
            .env("PATH", path)
            .args(common::words("--env-file app.env -- secrets list")),
        T,
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "ran-the-program list\n");
}

/// The official JS SDK reads back, unchanged, what `vault-run secrets set` and `import` wrote.
#[tokio::test]
async fn the_official_js_sdk_reads_what_secrets_set_wrote() {
    let Some(sdk) = common::js_sdk() else { return };
    let dev = DevServer::start();
    let dir = tmp();
    let mut cmd = vault_run(&dev, dir.path());
    cmd.args(common::words("secrets set js/app/API_KEY --type api_key --meta by=vault-run"));
    let out = with_stdin(&mut cmd, b"sk-js-0001\n");
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    write(dir.path(), ".env", "PLAIN=\"plain value\"\n");
    let out = common::output_within(
        vault_run(&dev, dir.path()).args(common::words("secrets import .env -n js/env")),
        T,
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    let script = write(
        dir.path(),
        "read.cjs",
        r#"
const assert = require('node:assert/strict');
const { AgentVault } = require(process.env.SDK_PATH);
const v = new AgentVault({ agentKey: process.env.ASS_AGENT_KEY, baseUrl: process.env.ASS_BASE_URL, retries: 0 });
(async () => {
  assert.equal(await v.getSecret('js/env/PLAIN'), 'plain value');
  const list = await v.listSecrets('js/app');
  assert.equal(list.items.length, 1);
  const item = list.items[0];
  assert.equal(item.key, 'API_KEY');
  assert.equal(item.secret_type, 'api_key');
  assert.equal(item.access_tier, 'standard');
  assert.equal(await v.getSecret('js/app/API_KEY'), 'sk-js-0001');
  assert.equal(item.metadata.by, 'vault-run');
  assert.equal(item.version, 1);
  console.log('JS-READ-OK');
})().catch(e => { console.error(e); process.exit(1); });
"#,
    );
    let mut node = Command::new("node");
    node.arg(&script)
        .env("SDK_PATH", &sdk)
        .env("ASS_BASE_URL", &dev.base_url)
        .env("ASS_AGENT_KEY", &dev.agent_key);
    let out = common::output_within(&mut node, Duration::from_secs(120));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("JS-READ-OK"),
        "node: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        stderr_of(&out)
    );
}

/// A value typed on the command line by mistake is refused with one line that does not repeat
/// it (a CI log would keep it), and nothing is sent.
#[tokio::test]
async fn set_never_takes_the_value_from_the_command_line() {
    let dev = DevServer::start();
    let dir = tmp();
    let before = dev.count("POST /v1/tokens").await;
    let out = common::output_within(
        vault_run(&dev, dir.path()).args(["secrets", "set", "team/app/KEY", "sk-ARGV-VALUE-42"]),
        T,
    );
    let stderr = stderr_of(&out);
    assert_eq!(out.status.code(), Some(64), "{stderr}");
    assert!(!stderr.contains("sk-ARGV-VALUE-42"), "the value was echoed: {stderr}");
    assert!(stderr.contains("standard input"), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert_eq!(dev.count("POST /v1/tokens").await, before, "nothing was asked for");
}

/// `--base-url` and `--agent-key-file` (the store backend's own declared flags) reach the store:
/// with neither variable set, the flags alone list what was written; a flag naming a port where
/// nothing listens fails as the launch would (75), not by falling back to the default URL.
#[tokio::test]
async fn the_store_flags_alone_reach_the_store() {
    let dev = DevServer::with(&[("myagent/FLAGGED", "value-flag-0001")]).await;
    let dir = tmp();
    let key = write(dir.path(), "agent-key", &dev.agent_key);
    std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let list = |url: &str| {
        common::output_within(
            common::bare_vault_run(dir.path())
                .args(["secrets", "list", "myagent", "--retries", "0", "--base-url", url, "--agent-key-file"])
                .arg(&key),
            T,
        )
    };
    let out = list(&dev.base_url);
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("myagent/FLAGGED"), "{}", stderr_of(&out));
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let out = list(&url);
    assert_eq!(out.status.code(), Some(75), "{}", stderr_of(&out));
    assert!(!stderr_of(&out).contains(&dev.agent_key), "the key in an error line");
}
