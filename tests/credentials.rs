//! Where vault-run's credentials come from and go: only to the server whoever supplied them
//! named, never to the child, a log or an error line; the files holding them (and CA files)
//! checked before they are read.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{
    assert_not_started, bare_vault_run, credentials_dir, env_of, key_from_credentials, marker_child,
    output_within, stderr_of, tmp, vault_run, write, DevServer, Trap, T,
};

// ---------------------------------------------------------------------------------------------
// Credential files must be private and the caller's (or root's).

fn chmod(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

// ---------------------------------------------------------------------------------------------
// A mapping file cannot choose where the agent key goes.

/// A trap server and a directory whose `vault-run.toml` names it as the base URL.
fn mapping_pointing_at_a_trap() -> (Trap, tempfile::TempDir) {
    let trap = Trap::new();
    let dir = tmp();
    let mapping = format!("[store]\nbase_url = \"{}\"\n\n[env]\nA = \"production/app/A\"\n", trap.url());
    write(dir.path(), "vault-run.toml", &mapping);
    (trap, dir)
}

#[test]
fn a_mapping_file_alone_cannot_send_the_agent_key_elsewhere() {
    let (trap, dir) = mapping_pointing_at_a_trap();
    for sub in [&[][..], &["check"][..]] {
        let out = output_within(
            bare_vault_run(dir.path())
                .env("ASS_AGENT_KEY", "ass_agent_key_that_must_stay_home_0123456789")
                .args(sub)
                .args(common::words("--timeout 2s --retries 0"))
                .args(if sub.is_empty() { &["--", "true"][..] } else { &[][..] }),
            T,
        );
        let err = stderr_of(&out);
        assert_eq!(out.status.code(), Some(78), "{sub:?}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
        assert!(err.contains(&trap.url()), "{err}");
        assert!(err.contains(&format!("set ASS_BASE_URL={}", trap.url())), "{err}");
        assert!(err.contains("(or --base-url) to use it"), "{err}");
        assert!(!trap.connected(), "{sub:?}: vault-run connected to the file's URL");
    }
}

#[tokio::test]
async fn the_flag_or_environment_url_wins_over_the_files_with_a_warning() {
    let dev = DevServer::with(&[("production/app/A", "value-a")]).await;
    let (trap, dir) = mapping_pointing_at_a_trap();
    // From the environment.
    let out = output_within(vault_run(&dev, dir.path()).args(common::words("-- env -0")), T);
    let err = stderr_of(&out);
    assert!(out.status.success(), "{err}");
    assert_eq!(env_of(&out.stdout)["A"], "value-a");
    assert_eq!(err.matches("base_url").count(), 1, "one warning: {err}");
    assert!(err.contains(&trap.url()) && err.contains("ignored"), "{err}");
    // From the flag.
    let out = output_within(
        bare_vault_run(dir.path()).env("ASS_AGENT_KEY", &dev.agent_key).args([
            "--base-url",
            &dev.base_url,
            "--",
            "env",
            "-0",
        ]),
        T,
    );
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(stderr_of(&out).contains("ignored"), "{}", stderr_of(&out));
    assert!(!trap.connected());
    // The file naming the default service is no redirection: nothing to refuse or warn about
    // (the run then goes to the flag's server).
    write(
        dir.path(),
        "vault-run.toml",
        "[store]\nbase_url = \"https://api.agentsecretstore.com\"\n\n[env]\nA = \"production/app/A\"\n",
    );
    let out = output_within(vault_run(&dev, dir.path()).args(common::words("-- env -0")), T);
    assert!(out.status.success(), "{}", stderr_of(&out));
}

#[tokio::test]
async fn credentials_directory_is_removed_from_the_child_when_it_holds_the_key() {
    let dev = DevServer::with(&[("production/app/A", "value-a")]).await;
    let creds = credentials_dir(&dev);
    let work = tmp();
    write(work.path(), "vault-run.toml", "[env]\nA = \"production/app/A\"\n");
    let env = common::env_after(
        key_from_credentials(&dev, work.path(), creds.path()).args(common::words("-- env -0")),
    );
    assert_eq!(env["A"], "value-a");
    assert!(!env.contains_key("CREDENTIALS_DIRECTORY"), "{env:?}");
    let out = output_within(
        key_from_credentials(&dev, work.path(), creds.path())
            .args(common::words("--keep-credentials-directory -- env -0")),
        T,
    );
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(env_of(&out.stdout)["CREDENTIALS_DIRECTORY"], creds.path().to_str().unwrap());
}

#[tokio::test]
async fn the_admin_key_is_removed_from_the_childs_environment() {
    let dev = DevServer::with(&[("production/app/A", "value-a")]).await;
    let dir = tmp();
    let (out, env) = common::output_and_env(
        vault_run(&dev, dir.path())
            .env("ASS_ADMIN_KEY", &dev.admin_key)
            .args(common::words("-e A=production/app/A -- env -0")),
    );
    assert_eq!(env["A"], "value-a");
    assert!(!env.contains_key("ASS_ADMIN_KEY"), "{env:?}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains(&dev.admin_key));
}

#[tokio::test]
async fn credential_files_readable_by_others_or_owned_by_another_user_are_refused() {
    let dev = DevServer::with(&[("production/app/A", "value-a")]).await;
    let dir = tmp();
    let key = write(dir.path(), "agent.key", &dev.agent_key);
    let link = dir.path().join("link.key");
    std::os::unix::fs::symlink(&key, &link).unwrap();
    let run = |args: &[&str], file: &Path| {
        let mut c = bare_vault_run(dir.path());
        c.env("ASS_BASE_URL", &dev.base_url).env("ASS_AGENT_KEY_FILE", file);
        output_within(c.args(["-e", "A=production/app/A"]).args(args).args(["--", "true"]), T)
    };
    for mode in [0o644, 0o640, 0o604, 0o660] {
        chmod(&key, mode);
        for file in [&key, &link] {
            let out = run(&[], file);
            let err = stderr_of(&out);
            assert_eq!(out.status.code(), Some(78), "{mode:o} {}: {err}", file.display());
            assert!(err.contains(&format!("chmod 600 {}", file.display())), "{err}");
            assert_eq!(err.trim_end().lines().count(), 1, "{err}");
        }
    }
    chmod(&key, 0o600);
    for file in [&key, &link] {
        let out = run(&[], file);
        assert!(out.status.success(), "{}", stderr_of(&out));
    }
    // Owned by someone else (only root can hand a file over; tests run as root).
    if nix::unistd::Uid::effective().is_root() {
        nix::unistd::chown(&key, Some(nix::unistd::Uid::from_raw(65534)), None).unwrap();
        let out = run(&[], &link);
        let err = stderr_of(&out);
        assert_eq!(out.status.code(), Some(78), "{err}");
        assert!(err.contains("owned by uid 65534"), "{err}");
    }
    assert_eq!(dev.count("POST /v1/tokens").await, 2, "only the two private runs asked for a token");
}

#[test]
fn vault_token_and_secret_id_files_readable_by_others_are_refused() {
    let dir = tmp();
    let token = write(dir.path(), "token", "hvs.canary-token-0123456789");
    let secret_id = write(dir.path(), "secret-id", "canary-secret-id-0123");
    chmod(&token, 0o644);
    chmod(&secret_id, 0o644);
    // Refused before any connection: the address is a closed port.
    let run = |c: &mut std::process::Command| {
        c.env("VAULT_ADDR", "http://127.0.0.1:9").args(common::words("-e P=vault://secret/app#p -- true"));
        output_within(c, T)
    };
    let out = run(bare_vault_run(dir.path()).arg("--vault-token-file").arg(&token));
    assert_eq!(out.status.code(), Some(78), "{}", stderr_of(&out));
    assert!(stderr_of(&out).contains(&format!("chmod 600 {}", token.display())), "{}", stderr_of(&out));
    let out =
        run(bare_vault_run(dir.path()).env("VAULT_ROLE_ID", "role").env("VAULT_SECRET_ID_FILE", &secret_id));
    assert_eq!(out.status.code(), Some(78), "{}", stderr_of(&out));
    assert!(stderr_of(&out).contains(&format!("chmod 600 {}", secret_id.display())), "{}", stderr_of(&out));
    for f in [&token, &secret_id] {
        assert!(!stderr_of(&out).contains("canary"));
        chmod(f, 0o600);
    }
    // Private now: past the file check, the run fails on the closed port instead (75).
    let out = run(bare_vault_run(dir.path()).arg("--vault-token-file").arg(&token));
    assert_eq!(out.status.code(), Some(75), "{}", stderr_of(&out));
}

// ---------------------------------------------------------------------------------------------
// A credential "file" that is a FIFO made vault-run wait forever in open(2), past --deadline.

#[test]
fn an_agent_key_file_that_is_a_fifo_is_refused_at_once() {
    let dir = tmp();
    let fifo = dir.path().join("agent-key");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let out = output_within(
        common::bare_vault_run(dir.path())
            .env("ASS_BASE_URL", "http://127.0.0.1:9")
            .env("ASS_AGENT_KEY_FILE", &fifo)
            .args(common::words("--deadline 5s -e A=production/app/A -- true")),
        Duration::from_secs(20),
    );
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(78), "{err}");
    assert!(err.contains("not a regular file"), "{err}");
}

// ---------------------------------------------------------------------------------------------
// VAULT_CACERT was read whole with no bound: a FIFO hung the start past --deadline, and
// /dev/zero ate memory until the process died.

#[test]
fn a_vault_cacert_that_is_not_a_regular_file_is_refused_at_once() {
    let dir = tmp();
    let fifo = dir.path().join("ca.pem");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    for ca in [fifo.as_path(), Path::new("/dev/zero")] {
        let out = output_within(
            common::bare_vault_run(dir.path())
                .env("VAULT_ADDR", "http://127.0.0.1:9")
                .env("VAULT_TOKEN", "hvs.review-token-0123456789")
                .env("VAULT_CACERT", ca)
                .args(common::words("--deadline 5s -e A=vault://secret/app#a -- true")),
            Duration::from_secs(20),
        );
        let err = stderr_of(&out);
        assert_eq!(out.status.code(), Some(78), "{}: {err}", ca.display());
        assert!(err.contains("VAULT_CACERT") && err.contains("regular file"), "{err}");
    }
}

// ---------------------------------------------------------------------------------------------
// A FIFO or a device given as a file vault-run reads is refused at once (78).

#[tokio::test]
async fn fifos_and_devices_as_env_file_or_ca_files_are_refused_at_once() {
    let dev = DevServer::with(&[("production/plain/TOKEN", "plain-token-value")]).await;
    let dir = tmp();
    let marker = dir.path().join("started");
    let fifo = dir.path().join("fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let fifo = fifo.display().to_string();
    let proxied = write(
        dir.path(),
        "api.toml",
        "[env]\nK = { path = \"production/plain/TOKEN\", hosts = [\"api.test\"] }\n",
    )
    .display()
    .to_string();
    // (what the error names, flags, an environment variable)
    type Case<'a> = (&'a str, Vec<String>, Option<(&'a str, &'a str)>);
    let cases: [Case; 5] = [
        ("--env-file", vec!["--env-file".into(), fifo.clone()], None),
        ("--env-file", vec!["--env-file".into(), "/dev/zero".into()], None),
        ("--upstream-ca", vec!["-f".into(), proxied.clone(), "--upstream-ca".into(), fifo.clone()], None),
        ("ASS_CACERT", vec![], Some(("ASS_CACERT", fifo.as_str()))),
        ("SSL_CERT_FILE", vec!["-f".into(), proxied.clone()], Some(("SSL_CERT_FILE", fifo.as_str()))),
    ];
    for (what, args, env) in cases {
        let started = std::time::Instant::now();
        let mut cmd = vault_run(&dev, dir.path());
        cmd.envs(env)
            .args(["-e", "A=production/plain/TOKEN"])
            .args(&args)
            .arg("--")
            .args(marker_child(&marker));
        let out = output_within(&mut cmd, T);
        let err = stderr_of(&out);
        assert_not_started(&out, 78, &marker);
        assert!(err.contains(what) && err.contains("not a regular file"), "{what}: {err}");
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "{what}: took {:?}",
            started.elapsed()
        );
    }
    // A descriptor handed over on purpose (process substitution) is still read.
    let out = output_within(
        std::process::Command::new("bash")
            .current_dir(dir.path())
            .env("ASS_BASE_URL", &dev.base_url)
            .env("ASS_AGENT_KEY", &dev.agent_key)
            .args([
                "-c",
                &format!("{} --env-file <(printf 'LIT=from-a-pipe\\n') -- printenv LIT", common::bin()),
            ]),
        T,
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "from-a-pipe\n", "{}", stderr_of(&out));
}

// ---------------------------------------------------------------------------------------------
// A server (or a gateway before it) whose error message repeats the credential it was sent put
// the agent key or the Vault token on stderr with the message.

#[test]
fn a_server_error_that_echoes_the_credential_does_not_print_it() {
    let dir = tmp();
    // A hostile server at `url` answers `status` with `body`; vault-run ends with 77 and its
    // stderr never holds `credential`.
    let refused =
        |url_var: &str, credential_var: &str, credential: &str, reference: &str, status: &str, body: &str| {
            let url = common::raw_server(common::http_json(status, body));
            let out =
                output_within(
                    common::bare_vault_run(dir.path())
                        .env(url_var, &url)
                        .env(credential_var, credential)
                        .args(["-e", &format!("A={reference}"), "--", "true"]),
                    T,
                );
            let err = stderr_of(&out);
            assert_eq!(out.status.code(), Some(77), "{err}");
            assert!(!err.contains(credential), "{err}");
            err
        };
    let key = "ass_review_key_SECRET_0123456789";
    let body = format!(
        r#"{{"error":{{"code":"UNAUTHORIZED","message":"invalid agent key {key} for this tenant"}}}}"#
    );
    let err = refused("ASS_BASE_URL", "ASS_AGENT_KEY", key, "production/app/A", "401 Unauthorized", &body);
    assert!(err.contains("invalid agent key [REDACTED] for this tenant"), "{err}");

    let token = "hvs.review-token-SECRET-0123456789";
    let body = format!(r#"{{"errors":["permission denied for token {token}"]}}"#);
    refused("VAULT_ADDR", "VAULT_TOKEN", token, "vault://secret/app#a", "403 Forbidden", &body);
}

// ---------------------------------------------------------------------------------------------
// No part of a response body reaches stderr.

#[test]
fn decoding_errors_do_not_echo_the_response() {
    let token =
        r#""token":"tok_abcdefghijklmnopqrstuvwxyz","token_id":"tok_1","expires_at":"2099-01-01T00:00:00Z""#;
    let bodies = [
        (
            format!(r#"{{{token},"namespace":"production/app","key":"A","value":987654321012,"version":1}}"#),
            "987654321012",
        ),
        (
            format!(
                r#"{{{token},"namespace":"production/app","key":"A","value":{{"nested":"canary-obj-77x"}},"version":1}}"#
            ),
            // (An unknown access_tier is no longer an error: the tolerant reader keeps it.)
            "canary-obj-77x",
        ),
        (
            format!(
                r#"{{{token},"namespace":"production/app","key":"A","value":"v","version":"canary-ver-55"}}"#
            ),
            "canary-ver-55",
        ),
    ];
    for (body, canary) in bodies {
        let url = common::raw_server(common::http_json("200 OK", &body));
        let dir = tmp();
        let (out, err) = common::run_bare_with(
            dir.path(),
            &[("ASS_BASE_URL", &url), ("ASS_AGENT_KEY", "ass_test_key_0123456789abcdef")],
            "--retries 0 -e A=production/app/A -vvv -- echo child-ran",
        );
        assert!(!out.status.success(), "{err}");
        assert!(!String::from_utf8_lossy(&out.stdout).contains("child-ran"));
        assert!(!err.contains(canary), "the response's content reached stderr: {err}");
        assert!(err.contains("invalid response"), "{err}");
    }
}
