//! A real three-node OpenBao cluster on loopback: integrated Raft storage, one active node and
//! two standbys that forward requests, as teams run it in production (minus TLS). Node 0 is
//! initialised with one key share and unsealed; the others join it with `bao operator raft join`
//! and are unsealed with the same key. KV v2 is mounted at `secret/`. Every process is killed
//! and every data directory removed on drop, a failing test's included.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::bare_vault_run;

/// How long each start-up phase may take before the harness gives up (with the nodes' logs).
const PHASE: Duration = Duration::from_secs(30);

/// One `bao server` of the cluster.
pub struct Node {
    child: Option<Child>,
    config: PathBuf,
    log: PathBuf,
    /// `http://127.0.0.1:PORT`, its API address.
    pub addr: String,
}

/// What a node's `sys/health` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    Active,
    Standby,
    Sealed,
    Uninitialised,
    /// Not answering (killed, or not listening yet).
    Down,
    Other(u16),
}

/// A running three-node cluster.
pub struct BaoCluster {
    pub nodes: Vec<Node>,
    /// The root token.
    pub root: String,
    unseal_key: String,
    http: reqwest::Client,
    dir: tempfile::TempDir,
}

impl Drop for BaoCluster {
    fn drop(&mut self) {
        for n in &mut self.nodes {
            if let Some(mut c) = n.child.take() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
        // The TempDir (data, configs, logs) goes with `self.dir`.
    }
}

/// Six loopback ports for the nodes' listeners and cluster ports. bao needs them in its config
/// file, so port 0 cannot be used, and a cluster port is bound only at unseal, seconds later:
/// they are taken below the kernel's ephemeral range (32768 and up), where no outgoing
/// connection or port-0 listener lands in between, apart from `bao.rs`'s dev servers (20000 to
/// 28000), each checked free now. A port taken anyway fails the start, retried on others.
fn free_ports() -> Vec<u16> {
    use std::sync::atomic::{AtomicU16, Ordering};
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let base = 28_000 + (std::process::id() % 60) as u16 * 70;
    let mut ports = Vec::new();
    while ports.len() < 6 {
        let port = base + NEXT.fetch_add(1, Ordering::Relaxed) % 70;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() && !ports.contains(&port) {
            ports.push(port);
        }
    }
    ports
}

impl BaoCluster {
    /// Starts, initialises, joins and unseals three nodes, mounts KV v2 at `secret/` and writes
    /// `seed` (path under `secret/` → fields).
    pub async fn start(seed: &[(&str, Value)]) -> Self {
        for _ in 0..3 {
            if let Some(c) = Self::try_start(seed).await {
                return c;
            }
        }
        panic!("the OpenBao cluster did not come up");
    }

    async fn try_start(seed: &[(&str, Value)]) -> Option<Self> {
        let dir = tempfile::tempdir().unwrap();
        let ports = free_ports();
        let mut nodes = Vec::new();
        for i in 0..3 {
            let (api, cluster) = (ports[2 * i], ports[2 * i + 1]);
            let data = dir.path().join(format!("n{i}"));
            std::fs::create_dir(&data).unwrap();
            let config = dir.path().join(format!("n{i}.hcl"));
            // performance_multiplier = 1: Raft's production timing (the default, 5, is for
            // slow shared machines), so an election takes seconds, not tens of seconds.
            std::fs::write(
                &config,
                format!(
                    "storage \"raft\" {{\n  path = \"{}\"\n  node_id = \"n{i}\"\n  performance_multiplier = 1\n}}\n\
                     listener \"tcp\" {{\n  address = \"127.0.0.1:{api}\"\n  cluster_address = \"127.0.0.1:{cluster}\"\n  tls_disable = true\n}}\n\
                     api_addr = \"http://127.0.0.1:{api}\"\ncluster_addr = \"https://127.0.0.1:{cluster}\"\n\
                     disable_mlock = true\nui = false\nlog_level = \"warn\"\n",
                    data.display()
                ),
            )
            .unwrap();
            let log = dir.path().join(format!("n{i}.log"));
            nodes.push(Node { child: None, config, log, addr: format!("http://127.0.0.1:{api}") });
        }
        // sys/init generates keys and bootstraps Raft: over 10 s on a loaded machine.
        let http = reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(30)).build().unwrap();
        let mut c = BaoCluster { nodes, root: String::new(), unseal_key: String::new(), http, dir };
        for i in 0..3 {
            c.spawn(i);
        }
        for i in 0..3 {
            if !c.wait_for(i, |h| h == Health::Uninitialised).await {
                return None;
            }
        }
        let init = c
            .call(None, 0, "PUT", "sys/init", Some(json!({"secret_shares": 1, "secret_threshold": 1})))
            .await;
        c.root = init["root_token"].as_str()?.to_owned();
        c.unseal_key = init["keys_base64"][0].as_str()?.to_owned();
        c.unseal(0).await;
        if !c.wait_for(0, |h| h == Health::Active).await {
            return None;
        }
        // A node that joins is a non-voter until autopilot has seen it healthy for the
        // stabilisation time (10 s by default); until then, losing the active node loses the
        // quorum and no election is ever won.
        c.api(
            0,
            "POST",
            "sys/storage/raft/autopilot/configuration",
            Some(json!({"server_stabilization_time": "1s"})),
        )
        .await;
        for i in 1..3 {
            let out = Command::new("bao")
                .args(["operator", "raft", "join", &c.nodes[0].addr])
                .env("VAULT_ADDR", &c.nodes[i].addr)
                .env_remove("VAULT_TOKEN")
                .env_remove("BAO_ADDR")
                .output()
                .unwrap();
            assert!(out.status.success(), "raft join: {}", String::from_utf8_lossy(&out.stderr));
            c.unseal(i).await;
        }
        for i in 1..3 {
            if !c.wait_for(i, |h| h == Health::Standby).await {
                return None;
            }
        }
        let start = Instant::now();
        while c.voters().await < 3 {
            assert!(start.elapsed() < PHASE, "the joined nodes never became voters\n{}", c.logs());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        c.api(0, "POST", "sys/mounts/secret", Some(json!({"type": "kv", "options": {"version": "2"}}))).await;
        // A fresh KV v2 mount refuses writes (400 "upgrading") for a moment.
        for (path, data) in seed {
            let start = Instant::now();
            let url = format!("{}/v1/secret/data/{path}", c.nodes[0].addr);
            loop {
                let req = c.http.post(&url).header("X-Vault-Token", &c.root).json(&json!({ "data": data }));
                match req.send().await {
                    Ok(r) if r.status().is_success() => break,
                    r => assert!(start.elapsed() < PHASE, "cannot seed secret/{path}: {r:?}\n{}", c.logs()),
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        // Standbys answer 400 ("waiting for the primary to upgrade") a moment longer: the
        // cluster is ready once every node reads the seed.
        if let Some((path, _)) = seed.first() {
            for i in 0..3 {
                let start = Instant::now();
                while c.status(i, "GET", &format!("secret/data/{path}")).await != 200 {
                    assert!(start.elapsed() < PHASE, "node {i} cannot read secret/{path}\n{}", c.logs());
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
        Some(c)
    }

    fn spawn(&mut self, i: usize) {
        let n = &mut self.nodes[i];
        let log = std::fs::File::create(&n.log).unwrap();
        let child = Command::new("bao")
            .arg("server")
            .arg(format!("-config={}", n.config.display()))
            .env_remove("VAULT_ADDR")
            .env_remove("BAO_ADDR")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start bao server");
        n.child = Some(child);
    }

    /// Every node's log, for a failure message.
    pub fn logs(&self) -> String {
        let mut out = String::new();
        for (i, n) in self.nodes.iter().enumerate() {
            let text = std::fs::read_to_string(&n.log).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(15).collect();
            out.push_str(&format!("--- node {i} ({}):\n", n.addr));
            for l in tail.iter().rev() {
                out.push_str(l);
                out.push('\n');
            }
        }
        out
    }

    async fn unseal(&self, i: usize) {
        self.call(None, i, "PUT", "sys/unseal", Some(json!({ "key": self.unseal_key }))).await;
    }

    /// The node's health (`sys/health`, standbys included).
    pub async fn health(&self, i: usize) -> Health {
        let url = format!("{}/v1/sys/health", self.nodes[i].addr);
        match self.http.get(url).timeout(Duration::from_secs(2)).send().await {
            Err(_) => Health::Down,
            Ok(r) => match r.status().as_u16() {
                200 => Health::Active,
                429 | 473 => Health::Standby,
                503 => Health::Sealed,
                501 => Health::Uninitialised,
                s => Health::Other(s),
            },
        }
    }

    /// Waits (up to 30 s) until node `i`'s health satisfies `ok`; false if it did not (its
    /// process exited, or a port it needed was taken), with its log on stderr.
    pub async fn wait_for(&mut self, i: usize, ok: impl Fn(Health) -> bool) -> bool {
        let start = Instant::now();
        loop {
            if ok(self.health(i).await) {
                return true;
            }
            if let Some(c) = self.nodes[i].child.as_mut() {
                if c.try_wait().ok().flatten().is_some() {
                    return false;
                }
            }
            if start.elapsed() > PHASE {
                eprintln!("node {i}: still {:?}\n{}", self.health(i).await, self.logs());
                return false;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The index of the active node (waits up to 30 s for there to be one).
    pub async fn active(&self) -> usize {
        let start = Instant::now();
        loop {
            for i in 0..3 {
                if self.health(i).await == Health::Active {
                    return i;
                }
            }
            assert!(start.elapsed() < PHASE, "no active node\n{}", self.logs());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// A node that is an unsealed standby right now.
    pub async fn standby(&self) -> usize {
        for i in 0..3 {
            if self.health(i).await == Health::Standby {
                return i;
            }
        }
        panic!("no standby\n{}", self.logs());
    }

    /// Kills node `i` at once (SIGKILL: no step-down, as a crash or a lost machine).
    pub fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.nodes[i].child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Restarts a killed node on its data without unsealing it: it answers, sealed.
    pub async fn restart_sealed(&mut self, i: usize) {
        self.kill(i);
        self.spawn(i);
        assert!(
            self.wait_for(i, |h| h == Health::Sealed).await,
            "node {i} did not come back\n{}",
            self.logs()
        );
    }

    async fn call(
        &self,
        token: Option<&str>,
        i: usize,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Value {
        let mut req = self.http.request(method.parse().unwrap(), format!("{}/v1/{path}", self.nodes[i].addr));
        if let Some(t) = token {
            req = req.header("X-Vault-Token", t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp =
            req.send().await.unwrap_or_else(|e| panic!("{method} {path} on node {i}: {e}\n{}", self.logs()));
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        assert!(status.is_success(), "{method} {path} on node {i}: {status} {text}");
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    /// A root-token request to node `i` that must succeed; its JSON answer (or `Null`).
    pub async fn api(&self, i: usize, method: &str, path: &str, body: Option<Value>) -> Value {
        self.call(Some(&self.root), i, method, path, body).await
    }

    /// A root-token request to node `i`: its JSON answer, or `None` if it did not succeed.
    pub async fn try_api(&self, i: usize, method: &str, path: &str, body: Value) -> Option<Value> {
        let url = format!("{}/v1/{path}", self.nodes[i].addr);
        let req = self.http.request(method.parse().unwrap(), url).header("X-Vault-Token", &self.root);
        let resp = req.json(&body).send().await.ok()?;
        if !resp.status().is_success() {
            return None;
        }
        resp.json().await.ok()
    }

    /// The status of a root-token request to node `i` (0 when it does not answer).
    pub async fn status(&self, i: usize, method: &str, path: &str) -> u16 {
        let url = format!("{}/v1/{path}", self.nodes[i].addr);
        let req = self.http.request(method.parse().unwrap(), url).header("X-Vault-Token", &self.root);
        req.send().await.map_or(0, |r| r.status().as_u16())
    }

    /// How many Raft voters the active node counts.
    pub async fn voters(&self) -> usize {
        let v = self.api(self.active().await, "GET", "sys/storage/raft/configuration", None).await;
        let servers = v["data"]["config"]["servers"].as_array().cloned().unwrap_or_default();
        servers.iter().filter(|s| s["voter"] == true).count()
    }

    /// How many tokens exist, asked of the active node.
    pub async fn accessors(&self) -> usize {
        let v = self.api(self.active().await, "LIST", "auth/token/accessors", None).await;
        v["data"]["keys"].as_array().map_or(0, Vec::len)
    }

    /// A `vault-run` with the root token, pointed at node `i`, `HOME` in `dir`.
    pub fn run(&self, i: usize, dir: &std::path::Path) -> Command {
        let mut c = bare_vault_run(dir);
        c.env("VAULT_ADDR", &self.nodes[i].addr).env("VAULT_TOKEN", &self.root).env("HOME", dir);
        c
    }

    /// The process ids of the nodes running now.
    pub fn pids(&self) -> Vec<u32> {
        self.nodes.iter().filter_map(|n| n.child.as_ref().map(Child::id)).collect()
    }

    /// Where the nodes' data, configs and logs are (removed on drop).
    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }
}
