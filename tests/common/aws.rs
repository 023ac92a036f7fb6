//! `moto_server` (an AWS API emulator, from PyPI) on loopback, seeded by
//! `tests/fixtures/aws_seed.py` through boto3, with authentication on; killed on drop.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::bare_vault_run;

/// Whether `moto_server` can run; under CI its absence fails the test.
pub fn moto_available() -> bool {
    let runs = Command::new("python3")
        .args(["-c", "import moto.server, boto3"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    super::require(runs, "moto (pip install 'moto[server]'; scripts/test installs it)")
}

/// An access key moto knows.
pub struct Key {
    /// `AWS_ACCESS_KEY_ID`.
    pub id: String,
    /// `AWS_SECRET_ACCESS_KEY`.
    pub secret: String,
}

/// A running, seeded moto server.
pub struct Moto {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// May read every secret.
    pub reader: Key,
    /// May do nothing.
    pub nobody: Key,
    /// Temporary credentials (an assumed role that may read every secret), with
    /// [`Moto::session_token`].
    pub session: Key,
    /// `AWS_SESSION_TOKEN` of [`Moto::session`].
    pub session_token: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl Moto {
    /// Starts and seeds a server, or `None` (the test skipped) when moto is missing outside CI.
    pub fn start() -> Option<Self> {
        if !moto_available() {
            return None;
        }
        for _ in 0..3 {
            let port = free_port();
            let child = Command::new("python3")
                .args(["-m", "moto.server", "-H", "127.0.0.1", "-p", &port.to_string()])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start moto_server");
            let url = format!("http://127.0.0.1:{port}");
            let started = Instant::now();
            let mut up = false;
            while started.elapsed() < Duration::from_secs(30) {
                if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    up = true;
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let none = || Key { id: String::new(), secret: String::new() };
            let mut moto = Moto {
                child,
                url,
                reader: none(),
                nobody: none(),
                session: none(),
                session_token: String::new(),
            };
            if !up {
                continue;
            }
            let seed = Command::new("python3")
                .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/aws_seed.py"))
                .arg(&moto.url)
                .env_remove("AWS_PROFILE")
                .output()
                .expect("run aws_seed.py");
            assert!(seed.status.success(), "aws_seed.py: {}", String::from_utf8_lossy(&seed.stderr));
            let keys: serde_json::Value = serde_json::from_slice(&seed.stdout).expect("aws_seed.py's keys");
            let key = |who: &str| Key {
                id: keys[who]["id"].as_str().unwrap().to_owned(),
                secret: keys[who]["secret"].as_str().unwrap().to_owned(),
            };
            moto.reader = key("reader");
            moto.nobody = key("nobody");
            moto.session = key("session");
            moto.session_token = keys["session"]["token"].as_str().unwrap().to_owned();
            return Some(moto);
        }
        panic!("moto_server did not come up");
    }

    /// `vault-run` with `key`'s credentials, the region, and this server as the endpoint (as
    /// AWS_ENDPOINT_URL, which the AWS SDKs read too).
    pub fn vault_run(&self, dir: &std::path::Path, key: &Key) -> Command {
        let mut c = bare_vault_run(dir);
        c.env("AWS_ACCESS_KEY_ID", &key.id)
            .env("AWS_SECRET_ACCESS_KEY", &key.secret)
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ENDPOINT_URL", &self.url);
        c
    }
}
