//! Security review, second round (issue 13): each test reproduces an attack on today's code and
//! checks it is refused, through the real binary, a real dev server and a real child.

mod common;

use std::io::ErrorKind;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{bare_vault_run, env_of, output_within, stderr_of, vault_run, DevServer};

const T: Duration = Duration::from_secs(60);

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

// ---------------------------------------------------------------------------------------------
// 1. A mapping file cannot choose where the agent key goes.

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

#[test]
fn a_mapping_file_alone_cannot_send_the_agent_key_elsewhere() {
    let trap = Trap::new();
    let dir = tmp();
    write(
        dir.path(),
        "vault-run.toml",
        &format!("[vault]\nbase_url = \"{}\"\n\n[env]\nA = \"production/app/A\"\n", trap.url()),
    );
    for sub in [&[][..], &["check"][..]] {
        let out = output_within(
            bare_vault_run(dir.path())
                .env("ASS_AGENT_KEY", "ass_agent_key_that_must_stay_home_0123456789")
                .args(sub)
                .args(["--timeout", "2s", "--retries", "0"])
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
    let dev = DevServer::start();
    dev.put("production/app/A", "value-a").await;
    let trap = Trap::new();
    let dir = tmp();
    write(
        dir.path(),
        "vault-run.toml",
        &format!("[vault]\nbase_url = \"{}\"\n\n[env]\nA = \"production/app/A\"\n", trap.url()),
    );
    // From the environment.
    let out = output_within(vault_run(&dev, dir.path()).args(["--", "env", "-0"]), T);
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
        "[vault]\nbase_url = \"https://api.agentsecretstore.com\"\n\n[env]\nA = \"production/app/A\"\n",
    );
    let out = output_within(vault_run(&dev, dir.path()).args(["--", "env", "-0"]), T);
    assert!(out.status.success(), "{}", stderr_of(&out));
}

// ---------------------------------------------------------------------------------------------
// 2. Inherited references nobody asked for.

#[tokio::test]
async fn inherited_references_are_not_resolved_unless_asked_for() {
    let dev = DevServer::start();
    dev.put("production/app/A", "value-a").await;
    dev.put("production/other/PRIVATE", "private-value-99").await;
    // An agent that may read only what the mapping names: a scope asked for anything else fails.
    let narrow = dev.agent("narrow", &["secrets:read:production/app/*"]).await;
    let dir = tmp();
    write(dir.path(), "vault-run.toml", "[env]\nA = \"production/app/A\"\n");
    let run = |args: &[&str]| {
        let mut c = vault_run(&dev, dir.path());
        c.env("ASS_AGENT_KEY", &narrow).env("GREETING", "ass://production/other/PRIVATE").args(args);
        output_within(c.args(["--", "env", "-0"]), T)
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
    write(dir.path(), "vault-run.toml", "[vault]\nenv_refs = false\n\n[env]\nA = \"production/app/A\"\n");
    let out = run(&[]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(env_of(&out.stdout)["GREETING"], "ass://production/other/PRIVATE");
}

#[tokio::test]
async fn a_kept_inherited_reference_is_resolved_and_check_says_where_it_came_from() {
    let dev = DevServer::start();
    dev.put("production/app/A", "value-a").await;
    dev.put("production/other/GREETING", "hello-value").await;
    let dir = tmp();
    write(dir.path(), "vault-run.toml", "[env]\nA = \"production/app/A\"\n");
    let out = output_within(
        vault_run(&dev, dir.path()).env("GREETING", "ass://production/other/GREETING").args([
            "--pristine",
            "--keep",
            "GREETING",
            "--",
            "env",
            "-0",
        ]),
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
