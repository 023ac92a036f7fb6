//! Security review, third round: each test reproduces an attack found by trying vault-run as an
//! attacker would, through the real binary, a real dev server (or a hostile one) and a real child.

mod common;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{output_within, stderr_of, vault_run, DevServer};

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
// --mask on a terminal: the pseudo-terminal turns each "\n" the child writes into "\r\n", so a
// multi-line secret (a PEM key) no longer matched its value and went through in full.

#[tokio::test]
async fn mask_on_a_terminal_hides_a_multi_line_secret() {
    let dev = DevServer::start();
    let pem = "-----BEGIN KEY-----\nMIIEsecretline1abcdef\nMIIEsecretline2ghijkl\n-----END KEY-----";
    dev.put("production/tls/KEY", pem).await;
    let dir = tmp();
    write(dir.path(), "vault-run.toml", "[env]\nK = \"production/tls/KEY\"\n");
    let pty = nix::pty::openpty(None, None).unwrap();
    let mut cmd = vault_run(&dev, dir.path());
    cmd.args(["--mask", "--", "sh", "-c", r#"printf '%s\n' "$K""#])
        .stdout(std::process::Stdio::from(pty.slave.try_clone().unwrap()))
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    drop(cmd);
    drop(pty.slave);
    let mut master = std::fs::File::from(pty.master);
    let reader = std::thread::spawn(move || {
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        // EIO once every slave descriptor is closed: vault-run and its child are gone.
        while let Ok(n) = master.read(&mut buf) {
            if n == 0 {
                break;
            }
            seen.extend_from_slice(&buf[..n]);
        }
        seen
    });
    let status = common::wait_within(&mut child, T);
    let mut err = String::new();
    child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    assert!(status.success(), "{err}");
    let seen = String::from_utf8_lossy(&reader.join().unwrap()).into_owned();
    for line in ["MIIEsecretline1abcdef", "MIIEsecretline2ghijkl"] {
        assert!(!seen.contains(line), "the secret reached the terminal: {seen:?}");
    }
    assert!(seen.contains("[REDACTED:K]"), "{seen:?}");
}
