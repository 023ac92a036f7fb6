//! The seed SDK's examples, translated to Rust in `examples/`, run against the dev server seeded
//! with the repository's `examples/seed.toml`, and do what the seed shows.

use std::path::PathBuf;
use std::process::Command;

use agentsecretstore_dev::{serve, DevServerOptions, RunningDevServer, Seed};

fn examples_dir() -> PathBuf {
    // target/<profile>/deps/examples-<hash> → target/<profile>/examples/
    let exe = std::env::current_exe().unwrap();
    exe.parent().and_then(|d| d.parent()).unwrap().join("examples")
}

/// Builds the examples (a no-op after `cargo test --all-targets`, which already did).
fn build_examples() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "--quiet", "-p", "agentsecretstore", "--examples"])
        .status()
        .expect("run cargo to build the examples");
    assert!(status.success(), "building the examples failed");
}

async fn seeded_dev() -> RunningDevServer {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/seed.toml");
    let seed = Seed::parse(&std::fs::read_to_string(path).unwrap(), path).unwrap();
    serve(DevServerOptions { seed: Some(seed), ..DevServerOptions::default() }).await.unwrap()
}

fn run(dev: &RunningDevServer, name: &str) -> String {
    let mut cmd = Command::new(examples_dir().join(name));
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("ASS_") {
            cmd.env_remove(k);
        }
    }
    let out = cmd
        .env("ASS_BASE_URL", dev.base_url())
        .env("ASS_AGENT_KEY", dev.agent_key().expose())
        .output()
        .unwrap_or_else(|e| panic!("run example {name}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "example {name} failed: {stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(!stdout.contains("demo-gemini-key"), "examples never print secret values: {stdout}");
    stdout
}

#[tokio::test(flavor = "multi_thread")]
async fn the_seed_examples_do_what_the_seed_shows() {
    tokio::task::spawn_blocking(build_examples).await.unwrap();
    let dev = seeded_dev().await;
    let d = &dev;
    // The examples are quick; run them one after another, the server serving on other workers.
    let q = tokio::task::block_in_place(|| run(d, "quickstart"));
    assert!(q.contains("GEMINI_API_KEY: 26 characters ([REDACTED])"), "{q}");
    assert!(q.contains("production/db/PASSWORD: version 1, type db_credential, tier standard"), "{q}");

    let s = tokio::task::block_in_place(|| run(d, "set_secret"));
    assert!(
        s.contains(
            "stored staging/payments/STRIPE_SECRET_KEY: version 1, tier sensitive, owner \"payments\""
        ),
        "{s}"
    );
    assert!(s.contains("stored staging/app/FEATURE_FLAGS: version 1"), "{s}");

    let l = tokio::task::block_in_place(|| run(d, "list_secrets"));
    assert!(l.contains("secrets under production:"), "{l}");
    assert!(l.contains("production/stripe/SECRET (version 1, custom, standard)"), "{l}");

    let i = tokio::task::block_in_place(|| run(d, "import_env"));
    assert!(i.contains("imported 3 secrets into staging/db: DB_HOST, DB_USER, DB_PASSWORD"), "{i}");

    let t = tokio::task::block_in_place(|| run(d, "request_token"));
    assert!(t.contains("for secrets:read:production/* until"), "{t}");
    assert!(t.contains("LOG_LEVEL read with the cached token (5 characters)"), "{t}");

    let del = tokio::task::block_in_place(|| run(d, "delete_secret"));
    assert!(del.contains("deleted staging/tmp/SCRATCH (standard)"), "{del}");
    assert!(del.contains("HUMAN_AUTH_REQUIRED: a human must delete staging/tmp/SIGNING_KEY"), "{del}");

    let e = tokio::task::block_in_place(|| run(d, "error_handling"));
    assert!(e.contains("production/app/LOG_LEVEL: ok (5 characters)"), "{e}");
    assert!(e.contains("production/app/DOES_NOT_EXIST: SECRET_NOT_FOUND"), "{e}");
    assert!(e.contains("not-a-path: VALIDATION_ERROR"), "{e}");
    // ASS_CACERT names the private CA's PEM file; one that cannot be read is a clear error.
    let out = Command::new(examples_dir().join("quickstart"))
        .env("ASS_BASE_URL", d.base_url())
        .env("ASS_AGENT_KEY", d.agent_key().expose())
        .env("ASS_CACERT", "/nonexistent/ca.pem")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("ASS_CACERT=/nonexistent/ca.pem: cannot read"),
        "{stderr}"
    );
    dev.shutdown().await;
}
