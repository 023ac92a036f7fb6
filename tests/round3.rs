//! Security review, third round (issue 20, and the file checks of issues 21 and 24): each test
//! reproduces a finding against the real binary, a real dev server and a real child, and fails
//! on the code before its fix.

mod common;

use std::io::ErrorKind;
use std::net::TcpListener;

use common::{assert_not_started, marker_child, output_within, stderr_of, vault_run, DevServer};
use common::{tmp, write, T};

/// A listener standing in for the attacker's server; `connected` tells whether anyone came.
struct Trap(TcpListener);

impl Trap {
    fn new() -> Self {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.set_nonblocking(true).unwrap();
        Self(l)
    }
    fn url(&self) -> String {
        format!("http://{}", self.0.local_addr().unwrap())
    }
    fn connected(&self) -> bool {
        match self.0.accept() {
            Ok(_) => true,
            Err(e) if e.kind() == ErrorKind::WouldBlock => false,
            Err(e) => panic!("accept: {e}"),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 20.1: `${VAR}` expansion never reads a credential vault-run removes from the child.

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

// ---------------------------------------------------------------------------------------------
// 20.4: env-file literals go through the dangerous-names list, with --allow-name as the way out.

#[tokio::test]
async fn env_file_literals_with_dangerous_names_are_refused_before_any_fetch() {
    let dev = DevServer::with(&[("production/plain/TOKEN", "plain-token-value")]).await;
    let dir = tmp();
    let marker = dir.path().join("started");
    for line in [
        "LD_PRELOAD=/tmp/evil.so",
        "NODE_OPTIONS=\"--require /tmp/evil.js\"",
        "GIT_SSH_COMMAND=\"touch /tmp/pwned\"",
        "HTTPS_PROXY=http://attacker.example:8080",
        "https_proxy=http://attacker.example:8080",
        "SSL_CERT_FILE=/tmp/ca.pem",
    ] {
        let name = line.split('=').next().unwrap();
        let env_file = write(dir.path(), "danger.env", &format!("{line}\n"));
        let mut cmd = vault_run(&dev, dir.path());
        cmd.arg("--env-file")
            .arg(&env_file)
            .args(["-e", "A=production/plain/TOKEN", "--"])
            .args(marker_child(&marker));
        let out = output_within(&mut cmd, T);
        let err = stderr_of(&out);
        assert_not_started(&out, 78, &marker);
        assert!(err.contains(&format!("refusing to set {name}")) && err.contains("--allow-name"), "{err}");
        assert!(err.contains("danger.env"), "names the file: {err}");
    }
    assert_eq!(dev.count("POST /v1/tokens").await, 0, "nothing was fetched");
    // --allow-name lets it through.
    let env_file = write(dir.path(), "danger.env", "NODE_OPTIONS=\"--max-old-space-size=64\"\n");
    let mut cmd = vault_run(&dev, dir.path());
    cmd.arg("--env-file").arg(&env_file).args([
        "--allow-name",
        "NODE_OPTIONS",
        "--",
        "printenv",
        "NODE_OPTIONS",
    ]);
    let out = output_within(&mut cmd, T);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "--max-old-space-size=64\n", "{}", stderr_of(&out));
}

// ---------------------------------------------------------------------------------------------
// 20.5: a FIFO or a device given as a file vault-run reads is refused at once (78).

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
// Issue 21 item 2 (and 20's "Also"): `$` in env files is kept; only ${VAR} and ${VAR:-default}
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
