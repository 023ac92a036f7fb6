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
