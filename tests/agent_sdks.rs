//! The model vendors' official SDKs, unchanged, as the child of agent-safe mode: each calls its
//! vendor's real host name (pinned to a local stand-in, `tests/common/vendors.rs`) with a
//! placeholder key, and a streamed answer arrives chunk by chunk while the stand-in checks that
//! the real key reached it. What the child holds and prints is only the placeholder.

mod common;

use common::vendors::{python_sdks_installed, Vendor, VendorUpstream, VENDORS};
use common::{output_within, require, stderr_of, vault_run, DevServer, T};

/// Runs `vendor`'s `lang` client under agent-safe mode with `extra` flags; asserts it streamed
/// with the real key upstream and that neither its output nor its environment held the key.
async fn streams_through(lang: &str, vendor: &Vendor, extra: &[&str]) {
    let dir = common::tmp();
    let dev = DevServer::with(&[(&vendor.path(), &vendor.key())]).await;
    let upstream = VendorUpstream::start(dir.path());
    std::fs::write(dir.path().join("vault-run.toml"), format!("[env]\n{}\n", vendor.mapping_line())).unwrap();
    // The child prints its own environment last, so the test sees what it held.
    let mut client = vendor.client(lang);
    let script = format!("{} && env", shell_words(&client));
    client = vec!["sh".into(), "-c".into(), script];
    let mut cmd = vault_run(&dev, dir.path());
    cmd.args(upstream.flags()).args(extra).arg("--").args(&client).envs(upstream.client_env());
    let out = output_within(&mut cmd, T);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{lang} {}: {:?}\n{stdout}\n{}", vendor.name, out.status, stderr_of(&out));
    upstream.assert_streamed(vendor, &stdout);
    let key = vendor.key();
    assert!(
        !stdout.contains(&key) && !stderr_of(&out).contains(&key),
        "the real key reached the child's output"
    );
    let held = stdout.lines().find_map(|l| l.strip_prefix(&format!("{}=", vendor.var))).unwrap_or_default();
    assert!(!held.is_empty() && held != key, "{}: the child held {held:?}", vendor.var);
}

fn shell_words(words: &[String]) -> String {
    words.iter().map(|w| format!("'{w}'")).collect::<Vec<_>>().join(" ")
}

#[tokio::test(flavor = "multi_thread")]
async fn python_sdks_stream_through_the_explicit_proxy() {
    if !require(python_sdks_installed(), "the Python SDKs (pip install openai anthropic google-genai)") {
        return;
    }
    for vendor in &VENDORS {
        streams_through("python", vendor, &[]).await;
    }
}
