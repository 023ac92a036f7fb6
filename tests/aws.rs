//! The AWS Secrets Manager backend (`aws-sm://`) through the binary, against moto (an AWS API
//! emulator from PyPI, with its SigV4 and IAM checks on) seeded by boto3. Under CI these tests
//! fail (not skip) when moto is missing: `scripts/test` installs it.

mod common;

use common::aws::Moto;
use common::{assert_env, assert_not_started, env_of, marker_child, output_within, stderr_of, tmp, write, T};

#[test]
fn reads_secrets_json_keys_staging_labels_and_globs_and_the_child_gets_no_aws_credentials() {
    let Some(moto) = Moto::start() else { return };
    let dir = tmp();
    write(
        dir.path(),
        "vault-run.toml",
        r#"[env]
PLAIN = "aws-sm://prod/plain"
DB_PASSWORD = "aws-sm://prod/db#password"
DB_PORT = "aws-sm://prod/db#port"
NEW = "aws-sm://prod/rotated"
OLD = "aws-sm://prod/rotated?version-stage=AWSPREVIOUS"
"API_*" = "aws-sm://prod/api/*"
"BULK_*" = "aws-sm://bulk/*"
"#,
    );
    let out = output_within(moto.vault_run(dir.path(), &moto.reader).args(["--", "env", "-0"]), T);
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    let env = env_of(&out.stdout);
    assert_env(
        &env,
        &[
            ("PLAIN", "plain-value-0002"),
            ("DB_PASSWORD", "pg-pass-0001"),
            // A JSON number as its text.
            ("DB_PORT", "5432"),
            ("NEW", "new-value-0004"),
            ("OLD", "old-value-0003"),
            // The variable is named after the last segment of the secret's name.
            ("API_STRIPE_KEY", "sk-0005"),
            ("API_STRIPE_HOOK", "wh-0006"),
            ("BULK_S00", "bulk-00"),
            ("BULK_S24", "bulk-24"),
        ],
    );
    // 25 secrets over pages of 20.
    assert_eq!(env.keys().filter(|k| k.starts_with("BULK_")).count(), 25);
    // `*` does not cross `/`; a longer name with the same text is no match.
    assert!(!env.contains_key("API_DEEP") && !env.contains_key("API_OTHER"));
    for var in ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"] {
        assert!(!env.contains_key(var), "{var} reached the child");
    }
    // Not a credential: the child may still want to know its region.
    assert_eq!(env.get("AWS_REGION").map(String::as_str), Some("us-east-1"));
}

#[test]
fn a_session_token_is_sent_and_removed_from_the_child() {
    let Some(moto) = Moto::start() else { return };
    let dir = tmp();
    let out = output_within(
        moto.vault_run(dir.path(), &moto.session).env("AWS_SESSION_TOKEN", &moto.session_token).args([
            "-e",
            "A=aws-sm://prod/plain",
            "--",
            "env",
            "-0",
        ]),
        T,
    );
    // moto checks the signature, which covers the token header.
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    let env = env_of(&out.stdout);
    assert_env(&env, &[("A", "plain-value-0002")]);
    assert!(!env.contains_key("AWS_SESSION_TOKEN"));
}

#[test]
fn a_missing_secret_or_json_key_exits_69_and_starts_nothing() {
    let Some(moto) = Moto::start() else { return };
    let dir = tmp();
    let marker = dir.path().join("started");
    for (reference, says) in [
        ("aws-sm://prod/nope", "ResourceNotFoundException"),
        ("aws-sm://prod/db#nope", "has no key \"nope\""),
        ("aws-sm://prod/rotated?version-stage=NOPE", "aws-sm://prod/rotated?version-stage=NOPE"),
    ] {
        let out = output_within(
            moto.vault_run(dir.path(), &moto.reader)
                .args(["-e", "OK=aws-sm://prod/plain", "-e", &format!("A={reference}"), "--"])
                .args(marker_child(&marker)),
            T,
        );
        assert_not_started(&out, 69, &marker);
        let err = stderr_of(&out);
        assert!(err.contains(says) && err.contains("A: "), "{reference}: {err}");
        assert!(!err.contains("plain-value-0002"), "{err}");
    }
    // A glob matching nothing is missing too, unless optional.
    let out = output_within(
        moto.vault_run(dir.path(), &moto.reader)
            .args(["-e", "X_*=aws-sm://none/*", "--"])
            .args(marker_child(&marker)),
        T,
    );
    assert_not_started(&out, 69, &marker);
}

#[test]
fn denied_or_wrong_credentials_exit_77_without_echoing_them() {
    let Some(moto) = Moto::start() else { return };
    let dir = tmp();
    let marker = dir.path().join("started");
    let out = output_within(
        moto.vault_run(dir.path(), &moto.nobody)
            .args(["-e", "A=aws-sm://prod/plain", "--"])
            .args(marker_child(&marker)),
        T,
    );
    assert_not_started(&out, 77, &marker);
    let err = stderr_of(&out);
    assert!(err.contains("not authorized") && err.contains("secretsmanager:GetSecretValue"), "{err}");

    let out = output_within(
        moto.vault_run(dir.path(), &moto.reader)
            .env("AWS_SECRET_ACCESS_KEY", "wrong-secret-0010")
            .args(["-e", "A=aws-sm://prod/plain", "-e", "S_*=aws-sm://prod/api/*", "--"])
            .args(marker_child(&marker)),
        T,
    );
    assert_not_started(&out, 77, &marker);
    let err = stderr_of(&out);
    assert!(err.contains("SignatureDoesNotMatch"), "{err}");
    assert!(!err.contains("wrong-secret-0010") && !err.contains(&moto.reader.secret), "{err}");
}

#[test]
fn credentials_region_and_endpoint_from_a_profile_in_the_shared_files() {
    let Some(moto) = Moto::start() else { return };
    let dir = tmp();
    let credentials = write(
        dir.path(),
        "aws/credentials",
        &format!(
            "[default]\naws_access_key_id = AKIAWRONG\naws_secret_access_key = wrong\n\n[ci]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
            moto.reader.id, moto.reader.secret
        ),
    );
    let config = write(
        dir.path(),
        "aws/config",
        &format!(
            "[default]\nregion = eu-west-3\n\n[profile ci]\nregion = us-east-1\nendpoint_url = {}\n",
            moto.url
        ),
    );
    let mut cmd = common::bare_vault_run(dir.path());
    cmd.env("AWS_PROFILE", "ci")
        .env("AWS_SHARED_CREDENTIALS_FILE", &credentials)
        .env("AWS_CONFIG_FILE", &config)
        .args(["-e", "A=aws-sm://prod/db#username", "--", "env", "-0"]);
    let out = output_within(&mut cmd, T);
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    assert_env(&env_of(&out.stdout), &[("A", "app")]);
}

#[test]
fn no_credentials_exit_77_and_no_region_exits_78_before_any_request() {
    let dir = tmp();
    let marker = dir.path().join("started");
    let home = dir.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    // Port 9 (discard) on loopback: a request would fail as unreachable (75), not as these.
    let run = |env: &[(&str, &str)]| {
        let mut cmd = common::bare_vault_run(dir.path());
        cmd.env("HOME", &home).env("AWS_ENDPOINT_URL", "http://127.0.0.1:9").envs(env.iter().copied());
        output_within(cmd.args(["-e", "A=aws-sm://prod/plain", "--"]).args(marker_child(&marker)), T)
    };
    let out = run(&[("AWS_REGION", "us-east-1")]);
    assert_not_started(&out, 77, &marker);
    assert!(stderr_of(&out).contains("no AWS credentials"), "{}", stderr_of(&out));
    let out = run(&[("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE"), ("AWS_SECRET_ACCESS_KEY", "x")]);
    assert_not_started(&out, 78, &marker);
    assert!(stderr_of(&out).contains("AWS_REGION"), "{}", stderr_of(&out));
}

#[test]
fn bad_references_are_refused_with_the_entry_and_exit_78() {
    let dir = tmp();
    let marker = dir.path().join("started");
    for (arg, says) in [
        ("A=aws-sm://prod/db?stage=x", "?version-stage=LABEL"),
        ("A=aws-sm://prod/*", "is a pattern"),
        ("A_*=aws-sm://*", "needs a name prefix"),
        ("A_*=aws-sm://prod/db", "names a single secret"),
        ("A_*=aws-sm://prod/*#key", "cannot use ?version-stage or #KEY"),
    ] {
        let out = output_within(
            common::bare_vault_run(dir.path()).args(["-e", arg, "--"]).args(marker_child(&marker)),
            T,
        );
        assert_not_started(&out, 78, &marker);
        assert!(stderr_of(&out).contains(says), "{arg}: {}", stderr_of(&out));
    }
}
