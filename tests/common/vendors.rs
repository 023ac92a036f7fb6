//! `tests/fixtures/vendor_upstream.py`: one local HTTPS stand-in for the OpenAI, Anthropic and
//! Google GenAI APIs, and the official SDK clients in `tests/fixtures/agent_sdks/` that call it
//! under the vendors' real host names (pinned to it with vault-run's `--resolve`).
//!
//! `scripts/test` installs the SDKs: Python's from PyPI (`openai`, `anthropic`, `google-genai`),
//! Node's from npm into `target/agent-sdks` (named by `AGENT_SDKS_NODE_PATH`).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use serde_json::{json, Value};

/// The vendors, each with the variable its SDK reads the key from and its real API host.
pub const VENDORS: [Vendor; 3] = [
    Vendor { name: "openai", var: "OPENAI_API_KEY", host: "api.openai.com" },
    Vendor { name: "anthropic", var: "ANTHROPIC_API_KEY", host: "api.anthropic.com" },
    Vendor { name: "gemini", var: "GEMINI_API_KEY", host: "generativelanguage.googleapis.com" },
];

/// The text every stand-in stream spells out, chunk by chunk.
pub const STREAMED_TEXT: &str = "Hello from the stand-in";

/// One vendor's API.
#[derive(Clone, Copy, Debug)]
pub struct Vendor {
    /// Short name: the fixture's log and the client scripts use it.
    pub name: &'static str,
    /// The variable the SDK reads its key from.
    pub var: &'static str,
    /// The API's real host name.
    pub host: &'static str,
}

impl Vendor {
    /// The real key the stand-in expects for this vendor.
    pub fn key(&self) -> String {
        format!("{}-real-key-7Hq/+=x{}", self.name, self.name.len())
    }

    /// The store path holding [`Vendor::key`].
    pub fn path(&self) -> String {
        format!("production/{}/API_KEY", self.name)
    }

    /// The `[env]` line of an agent-safe entry for this vendor.
    pub fn mapping_line(&self) -> String {
        format!(r#"{} = {{ path = "{}", hosts = ["{}"] }}"#, self.var, self.path(), self.host)
    }

    /// The command that runs this vendor's official SDK client, `python` or `node`.
    pub fn client(&self, lang: &str) -> Vec<String> {
        let dir = format!("{}/tests/fixtures/agent_sdks", env!("CARGO_MANIFEST_DIR"));
        match lang {
            "python" => vec!["python3".into(), format!("{dir}/{}_stream.py", self.name)],
            "node" => vec!["node".into(), format!("{dir}/{}_stream.cjs", self.name)],
            other => panic!("no {other} client"),
        }
    }
}

/// The stand-in, killed on drop.
pub struct VendorUpstream {
    child: Child,
    /// Its loopback port.
    pub port: u16,
    /// The CA that signed its certificate (give it to vault-run with `--upstream-ca`).
    pub ca_file: PathBuf,
    /// Where the SDK clients open the stream's gates (`SDK_GATE_DIR`).
    pub gate_dir: PathBuf,
    log_file: PathBuf,
}

impl VendorUpstream {
    /// Starts it with files in `dir`.
    pub fn start(dir: &Path) -> Self {
        let hosts: Vec<&str> = VENDORS.iter().map(|v| v.host).collect();
        let ca = super::test_ca::TestCa::new("vendor stand-in CA", &hosts);

        let file = |name: &str, text: &str| {
            let path = dir.join(name);
            std::fs::write(&path, text).unwrap();
            path
        };
        let ca_file = file("vendor-ca.pem", &ca.ca_pem);
        let cert = file("vendor-cert.pem", &ca.leaf.pem());
        let key = file("vendor-key.pem", &ca.leaf_key.serialize_pem());
        let gate_dir = dir.join("gates");
        std::fs::create_dir_all(&gate_dir).unwrap();
        let log_file = dir.join("vendor-log.jsonl");
        let keys: serde_json::Map<String, Value> =
            VENDORS.iter().map(|v| (v.name.to_owned(), json!(v.key()))).collect();
        let config = file(
            "vendor-config.json",
            &json!({ "cert": cert, "key": key, "keys": keys, "log": log_file, "gate_dir": gate_dir })
                .to_string(),
        );

        let script = format!("{}/tests/fixtures/vendor_upstream.py", env!("CARGO_MANIFEST_DIR"));
        let mut child = Command::new("python3")
            .arg(&script)
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("start python3 {script}: {e}"));
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let port = line
            .trim()
            .strip_prefix("https://127.0.0.1:")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("vendor_upstream.py did not start: {line:?}"));
        Self { child, port, ca_file, gate_dir, log_file }
    }

    /// vault-run's flags that reach this stand-in under every vendor's real name.
    pub fn flags(&self) -> Vec<String> {
        let mut flags = vec!["--upstream-ca".to_owned(), self.ca_file.display().to_string()];
        for v in VENDORS {
            flags.push("--resolve".into());
            flags.push(format!("{}:443:127.0.0.1:{}", v.host, self.port));
        }
        flags
    }

    /// Every request it answered so far (see the script's docstring for the fields).
    pub fn log(&self) -> Vec<Value> {
        let text = std::fs::read_to_string(&self.log_file).unwrap_or_default();
        text.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
    }

    /// Asserts that `vendor`'s stream was answered with the real key and reached the client
    /// chunk by chunk (no gate timed out), and that the client printed the whole text.
    pub fn assert_streamed(&self, vendor: &Vendor, client_stdout: &str) {
        let log = self.log();
        let seen: Vec<&Value> = log.iter().filter(|e| e["vendor"] == vendor.name).collect();
        assert!(
            !seen.is_empty(),
            "{}: the stand-in saw no request; client said:\n{client_stdout}",
            vendor.name
        );
        for e in &seen {
            assert_eq!(e["key_ok"], true, "{}: the upstream did not get the real key: {e}", vendor.name);
            assert_eq!(e["stream"], true, "{}: not a streamed request: {e}", vendor.name);
            assert_eq!(e["gate_timeouts"], 0, "{}: chunks were held back (buffered): {e}", vendor.name);
        }
        let chunks = client_stdout.lines().filter(|l| l.starts_with("chunk:")).count();
        assert!(chunks >= 2, "{}: expected several chunks:\n{client_stdout}", vendor.name);
        assert!(
            client_stdout.lines().any(|l| l == format!("done:{STREAMED_TEXT}")),
            "{}: the client did not get the whole text:\n{client_stdout}",
            vendor.name
        );
    }

    /// The environment the SDK clients need besides vault-run's: where the gates are, and for
    /// Node where `scripts/test` installed the SDKs.
    pub fn client_env(&self) -> Vec<(String, String)> {
        let mut env = vec![("SDK_GATE_DIR".to_owned(), self.gate_dir.display().to_string())];
        if let Some(dir) = node_sdks_dir() {
            env.push(("NODE_PATH".to_owned(), dir.join("node_modules").display().to_string()));
        }
        env
    }
}

impl Drop for VendorUpstream {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Where `scripts/test` installed the Node SDKs (`AGENT_SDKS_NODE_PATH`, else
/// `target/agent-sdks`), if they are there.
pub fn node_sdks_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("AGENT_SDKS_NODE_PATH")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/target/agent-sdks")));
    ["openai", "@anthropic-ai/sdk", "@google/genai"]
        .iter()
        .all(|p| dir.join("node_modules").join(p).join("package.json").exists())
        .then_some(dir)
}

/// Whether the official Python SDKs import.
pub fn python_sdks_installed() -> bool {
    Command::new("python3")
        .args(["-c", "import openai, anthropic, google.genai"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}
