//! Variable names that would load code, turn TLS checks off or redirect traffic are refused
//! (78) wherever they come from, unless `--allow-name` says otherwise.

mod common;

use common::{
    assert_not_started, env_of, marker_child, output_within, stderr_of, tmp, vault_run, write, DevServer, T,
};

// ---------------------------------------------------------------------------------------------
// Names missing from the dangerous list: editors and askpass helpers name commands programs run
// (`git commit` runs $GIT_EDITOR), and some variables turn TLS verification off or write TLS
// keys out. A `default` in a mapping sets any of them to a chosen command.

/// Variables whose value is a command some program runs, or that switch TLS checks off.
const NAMES_THAT_RUN_OR_UNCHECK: [&str; 12] = [
    "EDITOR",
    "VISUAL",
    "GIT_EDITOR",
    "GIT_SEQUENCE_EDITOR",
    "SUDO_ASKPASS",
    "MANPAGER",
    "SYSTEMD_PAGER",
    "BROWSER",
    "NODE_TLS_REJECT_UNAUTHORIZED",
    "GIT_SSL_NO_VERIFY",
    "PYTHONHTTPSVERIFY",
    "SSLKEYLOGFILE",
];

// ---------------------------------------------------------------------------------------------
// Names that make the child load code, trust another CA or send its traffic elsewhere.

#[tokio::test]
async fn names_that_load_code_trust_another_ca_or_redirect_traffic_are_refused() {
    let dev = DevServer::with(&[("production/app/A", "value-a")]).await;
    let dir = tmp();
    let names = [
        "OPENSSL_CONF",
        "PYTHONWARNINGS",
        "PERL5OPT",
        "PERL5LIB",
        "RUBYOPT",
        "RUBYLIB",
        "JAVA_TOOL_OPTIONS",
        "_JAVA_OPTIONS",
        "GIT_SSH_COMMAND",
        "GIT_PAGER",
        "LESSOPEN",
        "GCONV_PATH",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "http_proxy",
        "https_proxy",
        "All_Proxy",
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
        "NODE_EXTRA_CA_CERTS",
        "REQUESTS_CA_BUNDLE",
        "CURL_CA_BUNDLE",
    ];
    for name in names {
        let out = output_within(
            vault_run(&dev, dir.path()).args(common::words(&format!("-e {name}=production/app/A -- true"))),
            T,
        );
        let err = stderr_of(&out);
        assert_eq!(out.status.code(), Some(78), "{name}: {err}");
        assert!(err.contains(&format!("refusing to set {name}")), "{err}");
        assert!(err.contains(&format!("--allow-name {name}")), "{err}");
    }
    assert_eq!(dev.count("POST /v1/tokens").await, 0, "refused before any request");
    let out = output_within(
        vault_run(&dev, dir.path())
            .args(common::words("-e https_proxy=production/app/A --allow-name https_proxy -- env -0")),
        T,
    );
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(env_of(&out.stdout)["https_proxy"], "value-a");
}

#[test]
fn names_that_run_a_command_or_turn_tls_checks_off_are_refused() {
    let dir = tmp();
    for name in NAMES_THAT_RUN_OR_UNCHECK {
        write(
            dir.path(),
            "vault-run.toml",
            &format!("[env]\n{name} = {{ path = \"none/x/Y\", default = \"sh -c planted\" }}\n"),
        );
        let out = output_within(
            common::bare_vault_run(dir.path())
                .env("ASS_BASE_URL", "http://127.0.0.1:9")
                .env("ASS_AGENT_KEY", "ass_review_key_0123456789")
                .args(["--", "true"]),
            T,
        );
        let err = stderr_of(&out);
        assert_eq!(out.status.code(), Some(78), "{name}: {err}");
        assert!(err.contains(&format!("refusing to set {name}")), "{err}");
    }
}

// ---------------------------------------------------------------------------------------------
// Env-file literals go through the dangerous-names list, with --allow-name as the way out.

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
