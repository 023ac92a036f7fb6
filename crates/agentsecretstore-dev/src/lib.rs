//! `vault-run dev`: an in-memory Agent Secret Store for local use and for every test.
//!
//! It serves the REST API of `docs/ass-api.md` (scoped tokens, tiers and approvals,
//! versions, expiry, recursive listing, `.env` import) so that our client and the official JS
//! SDK both work against it unchanged, plus dev-only routes: `POST /v1/agents`, approvals by an
//! admin key, and `/v1/dev/{faults,stats,reset-stats}` for tests.
//!
//! Use it from the command line ([`main`]) or in-process ([`start`]).

mod approval;
mod approvals;
mod auth;
mod conn;
mod error;
pub mod faults;
mod routes;
pub mod seed;
mod state;
mod stats;
mod tls;

// The SDK's modules under their old in-crate names, so this crate's code reads as it did inside
// vault-run and shares the SDK's wire types.
use agentsecretstore::{duration, path, secret, wire};

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::duration::HumanDuration;
use crate::secret::{AdminKey, AgentKey};
use crate::wire::Timestamp;

pub use error::ApiError;
pub use faults::{FaultKnobs, Rate, RetryAfterFormat};
pub use seed::{Seed, SeedError};

/// Exit code for configuration errors: bad seed, bad knob values (EX_CONFIG).
pub const EXIT_CONFIG: u8 = 78;
/// Exit code when the listen address is taken (EX_TEMPFAIL: try again or another port).
pub const EXIT_ADDR_IN_USE: u8 = 75;
/// Exit code for other bind failures: address not on this host, permission (EX_UNAVAILABLE).
pub const EXIT_UNAVAILABLE: u8 = 69;
/// Exit code for internal failures (EX_SOFTWARE).
pub const EXIT_SOFTWARE: u8 = 70;

/// Options of `vault-run dev`.
#[derive(Debug, Clone, clap::Args)]
pub struct DevArgs {
    /// Address to listen on; port 0 picks a free port. Loopback unless you mean it.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,

    /// TOML file with `[[secret]]`, `[[agent]]` and `[admin]` entries to start with.
    #[arg(long, value_name = "FILE")]
    pub seed: Option<PathBuf>,

    /// How long an approval may wait for a human before it expires.
    #[arg(long, value_name = "DURATION", default_value = "10m")]
    pub approval_ttl: HumanDuration,

    /// Connections served at once; more wait until one closes.
    #[arg(long, value_name = "N", default_value_t = 256, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub max_connections: usize,

    /// How long a client may take to send a request's headers before the connection is closed.
    #[arg(long, value_name = "DURATION", default_value = "10s")]
    pub header_timeout: HumanDuration,

    /// Test knob: global rate limit (N/s or N/m); over it requests get 429 with Retry-After.
    #[arg(long, value_name = "RATE")]
    pub rate_limit: Option<Rate>,

    /// Test knob: how Retry-After is written.
    #[arg(long, value_enum, default_value = "seconds")]
    pub retry_after_format: RetryAfterFormat,

    /// Test knob: fraction (0..1) of API requests answered with --fault-status.
    #[arg(long, value_name = "FRACTION", value_parser = fraction)]
    pub fault_rate: Option<f64>,

    /// Test knob: status for --fault-rate.
    #[arg(long, value_name = "STATUS", default_value_t = 503, value_parser = clap::value_parser!(u16).range(400..=599))]
    pub fault_status: u16,

    /// Test knob: delay added before every API answer (e.g. 100ms).
    #[arg(long, value_name = "DURATION")]
    pub latency: Option<HumanDuration>,

    /// Test knob: fraction (0..1) of API requests whose connection is dropped unanswered.
    #[arg(long, value_name = "FRACTION", value_parser = fraction)]
    pub drop_rate: Option<f64>,

    /// Serve HTTPS (HTTP/2 and HTTP/1.1 by ALPN) with a certificate made at start for
    /// localhost, 127.0.0.1 and ::1; the CA is written to a file announced as ASS_CACERT=PATH
    /// and removed on exit.
    #[arg(long)]
    pub tls: bool,

    /// More logging (-v debug, -vv trace). RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// Only warnings and errors.
    #[arg(short, long, conflicts_with = "verbose")]
    pub quiet: bool,
}

fn fraction(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(f) if (0.0..=1.0).contains(&f) => Ok(f),
        _ => Err(format!("{s:?} is not a fraction between 0 and 1")),
    }
}

/// How to run the server (built from [`DevArgs`], or `Default` in tests: loopback, a free
/// port, no seed, approvals expire after 10 minutes, every fault knob off).
#[derive(Debug, Clone)]
pub struct DevServerOptions {
    /// Where to listen.
    pub listen: SocketAddr,
    /// Initial secrets, agents, admin key.
    pub seed: Option<Seed>,
    /// Approval lifetime.
    pub approval_ttl: Duration,
    /// Initial fault knobs.
    pub faults: FaultKnobs,
    /// Connections open at once; more wait.
    pub max_connections: usize,
    /// How long a request head may take to arrive.
    pub header_timeout: Duration,
    /// Serve HTTPS with a fresh private CA ([`RunningDevServer::ca_certificate_pem`]).
    pub tls: bool,
}

impl Default for DevServerOptions {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            seed: None,
            approval_ttl: Duration::from_secs(600),
            faults: FaultKnobs::default(),
            max_connections: 256,
            header_timeout: Duration::from_secs(10),
            tls: false,
        }
    }
}

impl DevServerOptions {
    /// From the command line; reads the seed file.
    pub fn from_args(args: &DevArgs) -> Result<Self, DevServerError> {
        let seed = args.seed.as_deref().map(Seed::from_file).transpose()?;
        if args.approval_ttl.is_zero() {
            return Err(DevServerError::Config("--approval-ttl must be greater than zero".into()));
        }
        let faults = FaultKnobs {
            rate_limit: args.rate_limit,
            retry_after_format: args.retry_after_format,
            error_rate: args.fault_rate.unwrap_or(0.0),
            error_status: args.fault_status,
            latency: args.latency.filter(|d| !d.is_zero()),
            drop_rate: args.drop_rate.unwrap_or(0.0),
            ..FaultKnobs::default()
        };
        if args.header_timeout.is_zero() {
            return Err(DevServerError::Config("--header-timeout must be greater than zero".into()));
        }
        Ok(Self {
            listen: args.listen,
            seed,
            approval_ttl: args.approval_ttl.get(),
            faults,
            max_connections: args.max_connections,
            header_timeout: args.header_timeout.get(),
            tls: args.tls,
        })
    }
}

/// Why the server could not start (or stopped).
#[derive(Debug, thiserror::Error)]
pub enum DevServerError {
    /// The seed file.
    #[error(transparent)]
    Seed(#[from] SeedError),
    /// Other configuration.
    #[error("{0}")]
    Config(String),
    /// Could not listen.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The server failed while running.
    #[error("server failed: {0}")]
    Serve(String),
}

impl DevServerError {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            DevServerError::Seed(_) | DevServerError::Config(_) => EXIT_CONFIG,
            DevServerError::Bind { source, .. } if source.kind() == std::io::ErrorKind::AddrInUse => {
                EXIT_ADDR_IN_USE
            }
            DevServerError::Bind { .. } => EXIT_UNAVAILABLE,
            DevServerError::Serve(_) => EXIT_SOFTWARE,
        }
    }
}

/// A server running on the current tokio runtime. Dropping it stops it too (gracefully, in
/// the background); [`RunningDevServer::shutdown`] waits for that.
#[derive(Debug)]
pub struct RunningDevServer {
    base_url: String,
    local_addr: SocketAddr,
    agent_key: AgentKey,
    admin_key: AdminKey,
    ca_pem: Option<String>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl RunningDevServer {
    /// `http://127.0.0.1:PORT` (no `/v1`), `https://` with TLS.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// With TLS, the PEM of the CA that signed the server's certificate: what clients trust.
    pub fn ca_certificate_pem(&self) -> Option<&str> {
        self.ca_pem.as_deref()
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The first agent's key (`ASS_AGENT_KEY`).
    pub fn agent_key(&self) -> &AgentKey {
        &self.agent_key
    }

    /// The admin key (`ASS_ADMIN_KEY`).
    pub fn admin_key(&self) -> &AdminKey {
        &self.admin_key
    }

    /// Resolves if the server stops on its own (it only does on an I/O failure).
    pub async fn stopped(&mut self) -> Result<(), DevServerError> {
        let Some(task) = self.task.as_mut() else { return Ok(()) };
        let result = task.await;
        self.task = None;
        match result {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(DevServerError::Serve(e.to_string())),
            Err(e) => Err(DevServerError::Serve(e.to_string())),
        }
    }

    /// Stops accepting, lets requests in flight finish (at most 3 s: an injected latency may
    /// hold one), then returns.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(mut task) = self.task.take() {
            if tokio::time::timeout(Duration::from_secs(3), &mut task).await.is_err() {
                task.abort();
            }
        }
    }
}

/// The library entry point: binds `config.listen`, serves on the current tokio runtime and
/// returns the handle once the port is bound (the same as [`start`]).
///
/// ```no_run
/// # async fn demo() -> Result<(), agentsecretstore_dev::DevServerError> {
/// let server = agentsecretstore_dev::serve(agentsecretstore_dev::DevServerOptions::default()).await?;
/// println!("{} with agent key {:?}", server.base_url(), server.agent_key());
/// server.shutdown().await;
/// # Ok(()) }
/// ```
pub async fn serve(config: DevServerOptions) -> Result<RunningDevServer, DevServerError> {
    start(config).await
}

/// Binds and starts serving on the current tokio runtime; returns once the port is bound.
pub async fn start(opts: DevServerOptions) -> Result<RunningDevServer, DevServerError> {
    opts.faults.validate().map_err(DevServerError::Config)?;
    let listener = bind(opts.listen).map_err(|source| DevServerError::Bind { addr: opts.listen, source })?;
    let local_addr =
        listener.local_addr().map_err(|source| DevServerError::Bind { addr: opts.listen, source })?;
    if !local_addr.ip().is_loopback() {
        let tls = if opts.tls { "" } else { " without TLS" };
        tracing::warn!(
            "listening on {local_addr}, which is not loopback: this dev server keeps secrets in memory{tls}; \
             anyone who can reach it with a key can read them"
        );
    }
    // Bound to every interface: clients on this host still reach it over loopback.
    let url_addr = match local_addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => SocketAddr::from((Ipv4Addr::LOCALHOST, local_addr.port())),
        IpAddr::V6(ip) if ip.is_unspecified() => SocketAddr::from((Ipv6Addr::LOCALHOST, local_addr.port())),
        _ => local_addr,
    };
    let tls = if opts.tls { Some(tls::generate()?) } else { None };
    let scheme = if tls.is_some() { "https" } else { "http" };
    let base_url = format!("{scheme}://{url_addr}");
    let store = build_store(opts.seed.unwrap_or_default(), opts.approval_ttl)?;
    let agent_key = store.agents()[0].key.clone();
    let admin_key = store.admin_key().clone();
    let stats: Arc<Mutex<stats::Stats>> = Arc::default();
    let state = routes::AppState {
        store: Arc::new(Mutex::new(store)),
        faults: Arc::new(faults::Faults::new(opts.faults)),
        stats: stats.clone(),
        base_url: base_url.as_str().into(),
    };
    let (stop, stopped) = oneshot::channel::<()>();
    // Also fires when the sender is dropped with the RunningDevServer.
    let stopped = async move {
        let _ = stopped.await;
    };
    let ca_pem = tls.as_ref().map(|t| t.ca_pem.clone());
    let task = match tls {
        Some(tls) => tokio::spawn(tls::serve(listener, tls, routes::router(state), stats, stopped)),
        None => {
            let app = routes::router(state).into_make_service_with_connect_info::<conn::ConnInfo>();
            let listener =
                conn::KillableListener::new(listener, stats, opts.max_connections, opts.header_timeout);
            let server = axum::serve(listener, app).with_graceful_shutdown(stopped);
            tokio::spawn(async move { server.await })
        }
    };
    tracing::info!("dev vault server listening on {base_url}");
    Ok(RunningDevServer {
        base_url,
        local_addr,
        agent_key,
        admin_key,
        ca_pem,
        stop: Some(stop),
        task: Some(task),
    })
}

/// A listener with a deep accept queue. `TcpListener::bind` asks for 128, so a client opening
/// hundreds of connections at once (the JS SDK reading 1,000 secrets) overflows it, and each
/// dropped SYN is retried only after 1, 3, 7 s: past the client's connect timeout.
fn bind(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let socket =
        if addr.is_ipv4() { tokio::net::TcpSocket::new_v4()? } else { tokio::net::TcpSocket::new_v6()? };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    // The kernel caps it at net.core.somaxconn (4096 by default since Linux 5.4).
    socket.listen(4096)
}

fn build_store(seed: Seed, approval_ttl: Duration) -> Result<state::Store, DevServerError> {
    let mut store = state::Store::new(seed.admin_key.unwrap_or_else(state::new_admin_key), approval_ttl);
    let config = |e: ApiError| DevServerError::Config(format!("seed: {e}"));
    if seed.agents.is_empty() {
        let all = "secrets:*:*".parse().expect("valid scope");
        store.add_agent("default", None, vec![all]).map_err(config)?;
    }
    for a in seed.agents {
        store.add_agent(&a.name, a.key, a.allowed_scopes).map_err(config)?;
    }
    let now = Timestamp::now();
    for s in seed.secrets {
        store.seed_secret(&s.path, s.write, now).map_err(config)?;
    }
    Ok(store)
}

/// Runs the dev server until SIGINT/SIGTERM. Returns the process exit code: 0 after a signal,
/// 78 for a bad seed or option, 75 when the port is taken, 69 for other bind failures. Logs
/// through whatever subscriber the program installed (`vault-run dev` installs its one log
/// setup, honouring `-v`, `-q` and `RUST_LOG`).
pub fn main(args: DevArgs) -> ExitCode {
    let fail = |e: &DevServerError| {
        eprintln!("vault-run dev: error: {e}");
        ExitCode::from(e.exit_code())
    };
    let opts = match DevServerOptions::from_args(&args) {
        Ok(o) => o,
        Err(e) => return fail(&e),
    };
    // One worker: every request is short, and a second worker only adds wake-ups across
    // threads (bench/run, N = 10 on loopback: a launch took 4.1 ms with two, 3.3 ms with one).
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build() {
        Ok(r) => r,
        Err(e) => return fail(&DevServerError::Serve(format!("cannot start the async runtime: {e}"))),
    };
    runtime.block_on(async move {
        let mut server = match start(opts).await {
            Ok(s) => s,
            Err(e) => return fail(&e),
        };
        // Handlers go in before the announcement: whoever reads it may signal us at once.
        let signals = match Signals::install() {
            Ok(s) => s,
            Err(e) => return fail(&DevServerError::Serve(format!("cannot handle signals: {e}"))),
        };
        let ca_file = match server.ca_certificate_pem().map(CaFile::write).transpose() {
            Ok(f) => f,
            Err(e) => {
                server.shutdown().await;
                return fail(&DevServerError::Serve(format!("cannot write the CA certificate: {e}")));
            }
        };
        if let Err(e) = announce(&server, ca_file.as_ref()) {
            // Whoever started us is not listening: nobody can use the keys.
            server.shutdown().await;
            return fail(&DevServerError::Serve(format!("cannot write to stdout: {e}")));
        }
        let outcome = tokio::select! {
            () = signals.recv() => Ok(()),
            r = server.stopped() => r,
        };
        tracing::info!("shutting down");
        server.shutdown().await;
        match outcome {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => fail(&e),
        }
    })
}

/// The three `KEY=value` lines on stdout (four with TLS: `ASS_CACERT=PATH`), flushed at once
/// so a reader can proceed.
fn announce(server: &RunningDevServer, ca_file: Option<&CaFile>) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "ASS_BASE_URL={}", server.base_url())?;
    writeln!(out, "ASS_AGENT_KEY={}", server.agent_key().expose())?;
    writeln!(out, "ASS_ADMIN_KEY={}", server.admin_key().expose())?;
    if let Some(ca) = ca_file {
        writeln!(out, "ASS_CACERT={}", ca.path.display())?;
    }
    out.flush()
}

/// The CA certificate in a private temporary directory, removed when the server stops. A path,
/// not the PEM itself, because that is what every consumer takes: `ASS_CACERT`,
/// `NODE_EXTRA_CA_CERTS`, `curl --cacert`. Only the public certificate is written; the keys stay
/// in memory.
struct CaFile {
    path: PathBuf,
}

impl CaFile {
    fn write(pem: &str) -> std::io::Result<Self> {
        use std::os::unix::fs::DirBuilderExt;
        let dir = std::env::temp_dir().join(format!(
            "vault-run-dev-{}-{:016x}",
            std::process::id(),
            rand::random::<u64>()
        ));
        std::fs::DirBuilder::new().mode(0o700).create(&dir)?;
        let path = dir.join("ca.pem");
        std::fs::write(&path, pem)?;
        Ok(Self { path })
    }
}

impl Drop for CaFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
        if let Some(dir) = self.path.parent() {
            let _ = std::fs::remove_dir(dir);
        }
    }
}

/// SIGTERM and SIGINT, registered up front.
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> std::io::Result<Self> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Self { term: signal(SignalKind::terminate())?, int: signal(SignalKind::interrupt())? })
    }

    async fn recv(mut self) {
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.int.recv() => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn starts_in_process_and_shuts_down() {
        let server = start(DevServerOptions::default()).await.unwrap();
        assert!(server.base_url().starts_with("http://127.0.0.1:"));
        assert!(server.agent_key().expose().starts_with("ass_"));
        assert!(server.admin_key().expose().starts_with("ass_admin_"));
        let url = format!("{}/v1/health", server.base_url());
        let health: serde_json::Value = reqwest::get(&url).await.unwrap().json().await.unwrap();
        assert_eq!(health["service"], "vault-run-dev");
        server.shutdown().await;
        assert!(reqwest::get(&url).await.is_err(), "stopped");
    }

    #[tokio::test]
    async fn seed_fixes_keys_and_bad_knobs_are_refused() {
        let seed = Seed::parse(
            "[admin]\nkey = \"ass_admin_x1\"\n[[agent]]\nname = \"a\"\nkey = \"ass_agent_x1\"\n",
            "t",
        )
        .unwrap();
        let server = start(DevServerOptions { seed: Some(seed), ..Default::default() }).await.unwrap();
        assert_eq!(server.agent_key().expose(), "ass_agent_x1");
        assert_eq!(server.admin_key().expose(), "ass_admin_x1");
        server.shutdown().await;
        let bad = DevServerOptions {
            faults: FaultKnobs { error_rate: 2.0, ..Default::default() },
            ..Default::default()
        };
        assert_eq!(start(bad).await.unwrap_err().exit_code(), EXIT_CONFIG);
    }

    #[tokio::test]
    async fn unspecified_address_is_announced_as_loopback() {
        let opts = DevServerOptions { listen: "0.0.0.0:0".parse().unwrap(), ..Default::default() };
        let server = start(opts).await.unwrap();
        assert!(server.base_url().starts_with("http://127.0.0.1:"), "{}", server.base_url());
        assert!(server.local_addr().ip().is_unspecified());
        server.shutdown().await;
    }
}
