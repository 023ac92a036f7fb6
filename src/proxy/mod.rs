//! Agent-safe mode: entries with `hosts` give the child a placeholder, and vault-run runs an
//! HTTP proxy on loopback that puts the real value on the wire, only towards those hosts.
//!
//! The child reaches the listed hosts through `CONNECT`; the proxy terminates that TLS with a
//! certificate from a per-run CA (made in memory, constrained to the listed names), opens its
//! own verified TLS connection to the real host, and swaps placeholder and value in between.
//! The child trusts the run CA through a bundle in an in-memory file.

mod ca;
mod capture;
mod forward;
mod guard;
pub mod holder;
mod inject;
mod message;
mod scrub;
mod server;

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use base64::Engine;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use zeroize::Zeroizing;

use crate::environment::InheritedVar;
use crate::mapping::{check_host, Delivery, HostPort, Inject, Mapping, RANDOM_MARKER};
use crate::mask::Redactor;
use crate::resolve::ResolvedVar;
use agentsecretstore::secret::SecretString;
use ca::RunCa;
use inject::Swap;

/// How the agent-safe proxy is set up, in plain values (`cli` fills it in from the flags).
#[derive(Debug, Clone, Default)]
pub struct ProxyConfig {
    /// `--upstream-ca`: CA certificates (PEM) also trusted for connections to listed hosts.
    pub upstream_ca: Vec<PathBuf>,
    /// `--deny-other-hosts`: refuse (403) requests to hosts no entry lists.
    pub deny_other_hosts: bool,
    /// `--allow-host`: hosts (and ports: 443 for `CONNECT`, 80 for `http://` when none is
    /// given) reachable, tunnelled untouched, despite `deny_other_hosts` or `as_other_user`.
    pub allow_host: Vec<HostPort>,
    /// `--user`: the proxy runs as root for a child that does not, so it must not carry that
    /// child anywhere root could go (past uid-based egress rules): only listed and allowed
    /// host:ports pass, as with `deny_other_hosts`.
    pub as_other_user: bool,
    /// `--resolve`: host names pinned to addresses.
    pub resolve: Vec<Pin>,
    /// `--sandbox`: the host's loopback (and unspecified) addresses are closed to the child
    /// except through listed, allowed or pinned hosts: only vault-run's namespace has them.
    pub close_loopback: bool,
}

/// `--resolve HOST:PORT:ADDR`: a host name pinned to an address for the proxy's connections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pin {
    /// Host name, lower case.
    pub host: String,
    /// Port the pin applies to.
    pub port: u16,
    /// Where to connect instead.
    pub addr: SocketAddr,
}

impl Pin {
    /// Parses `HOST:PORT:ADDR` (ADDR an IP address, IPv6 optionally in brackets), or
    /// `HOST:PORT:ADDR:PORT2` (`[IPv6]:PORT2`) to reach another port there: a stand-in for a
    /// real host's :443 on a loopback port of its own.
    pub fn parse(s: &str) -> Result<Pin, String> {
        let usage = || {
            format!(
                "{s:?}: expected HOST:PORT:ADDR or HOST:PORT:ADDR:PORT2, like api.example.com:443:127.0.0.1"
            )
        };
        let mut it = s.splitn(3, ':');
        let (Some(host), Some(port), Some(addr)) = (it.next(), it.next(), it.next()) else {
            return Err(usage());
        };
        let host = check_host(host)?;
        let port: u16 = port.parse().map_err(|_| usage())?;
        let addr = match addr.trim_start_matches('[').trim_end_matches(']').parse() {
            Ok(ip) => SocketAddr::new(ip, port),
            Err(_) => addr.parse::<SocketAddr>().map_err(|_| usage())?,
        };
        Ok(Pin { host, port, addr })
    }
}

/// Why the proxy cannot start.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// Making or using the run CA failed.
    #[error("agent-safe proxy: {0}")]
    Ca(String),
    /// An `--upstream-ca` file is unreadable or holds no certificate.
    #[error("--upstream-ca {path}: {message}; give a PEM file with at least one CERTIFICATE")]
    UpstreamCa {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// The child's own `SSL_CERT_FILE` cannot be read into the bundle.
    #[error("SSL_CERT_FILE {path}: {source}; the child's CA bundle would lose its roots (unset it or fix the path)")]
    Bundle {
        /// The file.
        path: String,
        /// OS error.
        source: std::io::Error,
    },
    /// Listening, the thread, or the in-memory file.
    #[error("agent-safe proxy: {0}")]
    Io(String),
}

/// One entry with `hosts`.
#[derive(Clone)]
pub struct Route {
    /// The variable.
    pub name: String,
    /// Hosts (and ports) that get the value.
    pub hosts: Vec<HostPort>,
    /// What the child gets instead, the same for the whole run.
    pub placeholder: String,
    /// Where in a request the value goes.
    pub inject: Inject,
}

impl fmt::Debug for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Route").field("name", &self.name).field("hosts", &self.hosts).finish_non_exhaustive()
    }
}

/// The entries of `mapping` that go through the proxy, each with a fresh placeholder.
pub fn routes(mapping: &Mapping) -> Vec<Route> {
    mapping
        .entries
        .iter()
        .filter_map(|e| {
            let spec = e.proxy.as_ref()?;
            let name = e.name()?;
            let random = random_token(32);
            let placeholder = match &spec.placeholder {
                Some(t) => t.replacen(RANDOM_MARKER, &random, 1),
                None => format!("vault-run-placeholder-{random}"),
            };
            Some(Route {
                name: name.as_str().to_owned(),
                hosts: spec.hosts.clone(),
                placeholder,
                inject: spec.inject,
            })
        })
        .collect()
}

/// `check`'s note for an entry: `proxy → host, host:port (inject header, query)`.
pub fn describe(mapping: &Mapping, name: &str) -> Option<String> {
    mapping.entries.iter().find_map(|e| match (e.name(), &e.proxy) {
        (Some(n), Some(spec)) if n.as_str() == name => {
            let hosts: Vec<String> = spec.hosts.iter().map(ToString::to_string).collect();
            Some(format!("proxy → {} (inject {})", hosts.join(", "), spec.inject.names().join(", ")))
        }
        _ => None,
    })
}

/// Why vault-run supervises when entries have `hosts`.
pub const SUPERVISE_REASON: &str =
    "an entry with hosts needs vault-run to stay (its proxy puts the real value on the wire)";

/// `len` random letters and digits (5.95 bits each).
pub(crate) fn random_token(len: usize) -> String {
    use rand::distr::{Alphanumeric, SampleString};
    Alphanumeric.sample_string(&mut rand::rng(), len)
}

/// State shared by the proxy's connections.
pub(crate) struct Shared {
    routes: Vec<Route>,
    values: RwLock<HashMap<String, SecretString>>,
    /// Every current value (and its encodings) → its placeholder, for what listed hosts send back.
    scrubber: RwLock<Arc<Redactor>>,
    /// Taken (and so wiped) at shutdown.
    ca: std::sync::Mutex<Option<RunCa>>,
    upstream: Arc<rustls::ClientConfig>,
    /// The same, offering only HTTP/1.1 (upgrades such as WebSocket).
    upstream_h1: Arc<rustls::ClientConfig>,
    pins: Vec<Pin>,
    deny_other: bool,
    as_other_user: bool,
    allow: Vec<HostPort>,
    /// See [`ProxyConfig::close_loopback`].
    close_loopback: bool,
    /// `user:password`, as the child sends it base64-encoded.
    credentials: Zeroizing<Vec<u8>>,
    /// Requests refused for want of the password, counted for the rate-limited log line.
    refused: guard::RateLimitedLog,
}

impl Shared {
    /// Whether an entry lists `host:port`; `default_port` is the request scheme's (443, 80).
    fn listed(&self, host: &str, port: u16, default_port: u16) -> bool {
        self.routes.iter().any(|r| r.hosts.iter().any(|h| h.matches(host, port, default_port)))
    }

    /// Whether an unlisted `host:port` may be reached untouched.
    fn may_pass(&self, host: &str, port: u16, default_port: u16) -> bool {
        !(self.deny_other || self.as_other_user)
            || self.allow.iter().any(|h| h.matches(host, port, default_port))
    }

    /// The scrubber for what listed hosts send back, with the current values.
    fn scrubber(&self) -> Arc<Redactor> {
        self.scrubber.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn authorized(&self, header: Option<&http::HeaderValue>) -> bool {
        let Some(v) = header.and_then(|v| v.to_str().ok()) else { return false };
        let Some((scheme, b64)) = v.trim().split_once(' ') else { return false };
        if !scheme.eq_ignore_ascii_case("basic") {
            return false;
        }
        let Ok(given) = base64::engine::general_purpose::STANDARD.decode(b64.trim()) else { return false };
        let given = Zeroizing::new(given);
        // Constant time over the length of what we expect.
        given.len() == self.credentials.len()
            && given.iter().zip(self.credentials.iter()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
    }

    /// The substitutions for requests to `host:port`, with the current values.
    fn swaps(&self, host: &str, port: u16, default_port: u16) -> Vec<Swap> {
        let values = self.values.read().unwrap_or_else(|p| p.into_inner());
        self.routes
            .iter()
            .filter(|r| r.hosts.iter().any(|h| h.matches(host, port, default_port)))
            .filter_map(|r| {
                Some(Swap {
                    placeholder: r.placeholder.as_bytes().to_vec(),
                    value: Zeroizing::new(values.get(&r.name)?.expose().as_bytes().to_vec()),
                    inject: r.inject,
                })
            })
            .collect()
    }

    /// Rebuilds the scrubber from `values` (at start and after a `--watch` rotation; old
    /// values stay in it, as `--mask` keeps masking them).
    fn rebuild_scrubber(
        &self,
        values: &HashMap<String, SecretString>,
        old: &mut Vec<(Vec<u8>, SecretString)>,
    ) {
        for r in &self.routes {
            if let Some(v) = values.get(&r.name) {
                let pair = (r.placeholder.as_bytes().to_vec(), v.clone());
                if !old.contains(&pair) {
                    old.push(pair);
                }
            }
        }
        let refs: Vec<(Vec<u8>, &SecretString)> = old.iter().map(|(p, v)| (p.clone(), v)).collect();
        *self.scrubber.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(Redactor::replacing(&refs));
    }

    fn server_config(&self, host: &str) -> Result<Arc<rustls::ServerConfig>, ProxyError> {
        match &*self.ca.lock().unwrap_or_else(|p| p.into_inner()) {
            Some(ca) => ca.server_config(host),
            None => Err(ProxyError::Ca("the proxy is shutting down".into())),
        }
    }

    async fn dial(&self, host: &str, port: u16) -> std::io::Result<tokio::net::TcpStream> {
        // Named by the run for this host and port (a listed or allowed host without a port
        // means the scheme's; the dial does not know the scheme, so either).
        let named = |h: &HostPort| h.host == host && h.port.map_or(true, |p| p == port);
        let chosen = self.routes.iter().any(|r| r.hosts.iter().any(named))
            || self.allow.iter().any(named)
            || self.pins.iter().any(|p| p.host == host && p.port == port);
        if self.close_loopback && !chosen {
            // What the name means on the host, not in the sandbox: `localhost`, 127.0.0.1 or a
            // name resolving there would hand the child the host's loopback services.
            let mut addrs = tokio::net::lookup_host((host, port)).await?;
            if addrs.any(|a| a.ip().is_loopback() || a.ip().is_unspecified()) {
                tracing::warn!(host, port, "proxy: the host's loopback is closed to the sandbox (name it with --allow-host HOST:PORT)");
                return Err(std::io::Error::new(
                    std::io::ErrorKind::PermissionDenied,
                    "the host's loopback is closed to the sandbox (--allow-host HOST:PORT opens a port)",
                ));
            }
        }
        server::dial(&self.pins, host, port).await
    }
}

/// The running proxy. [`Proxy::shutdown`] stops it and wipes the CA key.
pub struct Proxy {
    addr: SocketAddr,
    /// Every listed host.
    hosts: Vec<String>,
    password: Zeroizing<String>,
    shared: Arc<Shared>,
    /// The child's CA bundle, in a memfd held open by a helper process.
    bundle: holder::Holder,
    /// Every value handed to the proxy so far, with its placeholder (the scrubber's input).
    scrubbed: std::sync::Mutex<Vec<(Vec<u8>, SecretString)>>,
    stop: std::sync::Mutex<Option<tokio::sync::oneshot::Sender<()>>>,
    thread: std::sync::Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl fmt::Debug for Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Proxy").field("addr", &self.addr).finish_non_exhaustive()
    }
}

/// Sockets made elsewhere (the `--sandbox` network namespace) for the proxy to serve, instead
/// of its own listener on the host's loopback.
#[derive(Debug)]
pub struct Listeners {
    /// The explicit proxy (`HTTPS_PROXY`).
    pub proxy: std::net::TcpListener,
    /// Transparent capture of TLS, routed by SNI.
    pub tls: Vec<std::net::TcpListener>,
    /// Transparent capture of plain HTTP, routed by `Host`.
    pub http: Vec<std::net::TcpListener>,
}

/// The proxy's user name in the child's proxy URL (the password is random per run).
const PROXY_USER: &str = "vault-run";

fn rustls_provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The variables vault-run itself sets for the child in agent-safe mode: the proxy (four
/// spellings), what bypasses it, and the CA bundle. They are on the dangerous-names list (a
/// mapping must not set them), so the environment builder is told they are vault-run's own.
pub const CHILD_VARIABLES: [&str; 10] = [
    "HTTPS_PROXY",
    "HTTP_PROXY",
    "https_proxy",
    "http_proxy",
    "NO_PROXY",
    "no_proxy",
    "SSL_CERT_FILE",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
    "NODE_EXTRA_CA_CERTS",
];

impl Proxy {
    /// Makes the run CA, the upstream TLS configuration and the child's bundle, and starts
    /// the proxy on `127.0.0.1` in a thread of its own (with every signal blocked, so that the
    /// supervisor's `sigtimedwait` still receives them all).
    pub fn start(
        routes: Vec<Route>,
        args: &ProxyConfig,
        inherited: &[InheritedVar],
        bundle_owner: Option<holder::Owner>,
    ) -> Result<Proxy, ProxyError> {
        Self::start_with(routes, args, inherited, bundle_owner, None)
    }

    /// [`Proxy::start`], serving `listeners` (the sandbox's) when given.
    pub fn start_with(
        routes: Vec<Route>,
        args: &ProxyConfig,
        inherited: &[InheritedVar],
        bundle_owner: Option<holder::Owner>,
        listeners: Option<Listeners>,
    ) -> Result<Proxy, ProxyError> {
        let mut hosts: Vec<String> =
            routes.iter().flat_map(|r| r.hosts.iter().map(|h| h.host.clone())).collect();
        hosts.sort();
        hosts.dedup();
        let ca = RunCa::new(&hosts)?;
        // Only the user's own list: the loopback names vault-run adds leave listed hosts out.
        let user_no_proxy = users_no_proxy(inherited);
        for h in &hosts {
            let covers = |n: &str| {
                let n = n.trim().trim_start_matches('.');
                n == "*" || n == h || h.ends_with(&format!(".{n}"))
            };
            if user_no_proxy.split(',').any(covers) {
                tracing::warn!(host = h, "NO_PROXY covers a listed host: the child will send it the placeholder, not through the proxy");
            }
        }
        if inherited.iter().any(|(k, _)| k.eq_ignore_ascii_case("https_proxy")) {
            tracing::warn!("the inherited HTTPS_PROXY is replaced for the child; vault-run's proxy connects directly (an upstream proxy is not supported)");
        }
        let native = rustls_native_certs::load_native_certs();
        let bundle = bundle(ca.cert_pem(), &native.certs, inherited)?;
        let bundle = holder::Holder::new(bundle.as_bytes(), bundle_owner)
            .map_err(|e| ProxyError::Io(format!("cannot make the in-memory CA bundle: {e}")))?;
        let mut roots = rustls::RootCertStore::empty();
        let (added, _) = roots.add_parsable_certificates(native.certs);
        for path in &args.upstream_ca {
            let shown = path.display().to_string();
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
                .map_err(|e| ProxyError::UpstreamCa { path: shown.clone(), message: e.to_string() })?
                .collect::<Result<_, _>>()
                .map_err(|e| ProxyError::UpstreamCa { path: shown.clone(), message: e.to_string() })?;
            if certs.is_empty() {
                return Err(ProxyError::UpstreamCa { path: shown, message: "no certificate in it".into() });
            }
            for c in certs {
                roots
                    .add(c)
                    .map_err(|e| ProxyError::UpstreamCa { path: shown.clone(), message: e.to_string() })?;
            }
        }
        if added == 0 {
            // A scratch or distroless image: the bundled Mozilla roots, as the SDK does.
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            tracing::info!("proxy: no system root certificates found; upstreams are verified against the bundled Mozilla roots (webpki-roots) and --upstream-ca");
        }
        let mut upstream = rustls::ClientConfig::builder_with_provider(rustls_provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| ProxyError::Ca(format!("TLS versions: {e}")))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let mut upstream_h1 = upstream.clone();
        upstream_h1.alpn_protocols = vec![b"http/1.1".to_vec()];
        upstream.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];

        let password = Zeroizing::new(random_token(32));
        let credentials = Zeroizing::new(format!("{PROXY_USER}:{}", password.as_str()).into_bytes());
        let shared = Arc::new(Shared {
            routes,
            values: RwLock::new(HashMap::new()),
            scrubber: RwLock::new(Arc::new(Redactor::new(&[]))),
            ca: std::sync::Mutex::new(Some(ca)),
            upstream: Arc::new(upstream),
            upstream_h1: Arc::new(upstream_h1),
            pins: args.resolve.clone(),
            deny_other: args.deny_other_hosts,
            as_other_user: args.as_other_user,
            allow: args.allow_host.clone(),
            close_loopback: args.close_loopback,
            credentials,
            refused: guard::RateLimitedLog::new("requests without the proxy password refused (407)"),
        });

        let (listener, capture) = match listeners {
            Some(l) => (Ok(l.proxy), Some((l.tls, l.http))),
            None => (std::net::TcpListener::bind(("127.0.0.1", 0)), None),
        };
        let listener = listener
            .and_then(|l| l.set_nonblocking(true).map(|()| l))
            .map_err(|e| ProxyError::Io(format!("cannot listen on 127.0.0.1: {e}")))?;
        let addr = listener.local_addr().map_err(|e| ProxyError::Io(e.to_string()))?;
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let thread_shared = shared.clone();
        keep_freed_memory();
        // New threads inherit the creating thread's signal mask: block everything around the spawn.
        let previous = nix::sys::signal::SigSet::all()
            .thread_swap_mask(nix::sys::signal::SigmaskHow::SIG_BLOCK)
            .map_err(|e| ProxyError::Io(format!("cannot block signals: {e}")))?;
        let spawned = std::thread::Builder::new().name("vault-run-proxy".into()).spawn(move || {
            // Two workers: a large download is two TLS layers per byte (decrypt from the host,
            // encrypt to the child), and the host's and the child's connections are separate
            // tasks, so each layer gets a core of its own.
            let rt = match tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_name("vault-run-proxy")
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    tracing::error!("proxy: cannot start its runtime: {e}");
                    return;
                }
            };
            rt.block_on(async move {
                if let Some((tls, http)) = capture {
                    capture::spawn(tls, http, &thread_shared);
                }
                server::serve(listener, thread_shared, stopped).await
            });
            rt.shutdown_timeout(std::time::Duration::from_millis(200));
        });
        let _ = previous.thread_set_mask();
        let thread = spawned.map_err(|e| ProxyError::Io(format!("cannot start the proxy thread: {e}")))?;
        tracing::info!(%addr, hosts = hosts.len(), "agent-safe proxy listening");
        Ok(Proxy {
            addr,
            hosts,
            password,
            shared,
            bundle,
            scrubbed: std::sync::Mutex::new(Vec::new()),
            stop: std::sync::Mutex::new(Some(stop)),
            thread: std::sync::Mutex::new(Some(thread)),
        })
    }

    /// Where the child's CA bundle is (the run CA, then the roots the child would have trusted).
    pub fn ca_bundle_path(&self) -> &str {
        self.bundle.path()
    }

    /// Whether `name` is an entry the proxy handles (its value never reaches the child).
    pub fn handles(&self, name: &str) -> bool {
        self.shared.routes.iter().any(|r| r.name == name)
    }

    /// Gives the proxy the values of its entries (from now on, the next request uses them) and
    /// returns the child's variables: placeholders for those entries, the others unchanged,
    /// plus the proxy and CA bundle variables.
    pub fn child_vars(&self, vars: &[ResolvedVar], inherited: &[InheritedVar]) -> Vec<ResolvedVar> {
        let shared = &self.shared;
        let mut out = Vec::with_capacity(vars.len() + 10);
        {
            let mut values = shared.values.write().unwrap_or_else(|p| p.into_inner());
            for v in vars {
                match shared.routes.iter().find(|r| r.name == v.name) {
                    Some(route) => {
                        let old = values.insert(v.name.clone(), v.value.clone());
                        if old.is_some_and(|o| o != v.value) {
                            tracing::info!(
                                variable = v.name,
                                "watch: value rotated; the proxy injects the new one from the next request (no restart)"
                            );
                        }
                        let mut child = v.clone();
                        child.value = SecretString::new(route.placeholder.clone());
                        out.push(child);
                    }
                    None => out.push(v.clone()),
                }
            }
            shared.rebuild_scrubber(&values, &mut self.scrubbed.lock().unwrap_or_else(|p| p.into_inner()));
        }
        let origin = vars.first().map(|v| v.origin.clone());
        let Some(origin) = origin else { return out };
        let add = |out: &mut Vec<ResolvedVar>, name: &str, value: String, delivery: Delivery| {
            out.push(ResolvedVar {
                name: name.to_owned(),
                value: SecretString::new(value),
                delivery,
                origin: origin.clone(),
            });
        };
        let url = format!("http://{PROXY_USER}:{}@{}", self.password.as_str(), self.addr);
        let no_proxy = no_proxy(inherited, &self.hosts);
        let (proxies, rest) = CHILD_VARIABLES.split_at(4);
        let (bypass, bundles) = rest.split_at(2);
        for name in proxies {
            add(&mut out, name, url.clone(), Delivery::Env);
        }
        for name in bypass {
            add(&mut out, name, no_proxy.clone(), Delivery::Env);
        }
        for name in bundles {
            add(&mut out, name, self.bundle.path().to_owned(), Delivery::Env);
        }
        out
    }

    /// Stops the proxy and wipes the run CA's key and the values it held. Idempotent.
    pub fn shutdown(&self) {
        if let Some(stop) = self.stop.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = t.join();
        }
        self.shared.values.write().unwrap_or_else(|p| p.into_inner()).clear();
        self.scrubbed.lock().unwrap_or_else(|p| p.into_inner()).clear();
        *self.shared.scrubber.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(Redactor::new(&[]));
        // RunCa's Drop wipes its key.
        drop(self.shared.ca.lock().unwrap_or_else(|p| p.into_inner()).take());
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// The user's `NO_PROXY` (or `no_proxy`) plus loopback, which never goes through the proxy —
/// except a loopback name listed in `hosts`, which must (plain `http://` injection).
fn no_proxy(inherited: &[InheritedVar], listed: &[String]) -> String {
    let user = users_no_proxy(inherited);
    let mut items: Vec<&str> = user.split(',').map(str::trim).filter(|s| !s.is_empty()).collect();
    for l in ["localhost", "127.0.0.1", "::1"] {
        if !items.contains(&l) && !listed.iter().any(|h| h == l) {
            items.push(l);
        }
    }
    items.join(",")
}

/// A download through the proxy frees and allocates TLS and HTTP buffers all the time; glibc
/// hands the freed top of each thread's heap back to the kernel (and large buffers are mmap'd
/// one by one), so every buffer came back as fresh pages to fault in: profiled, page faults and
/// unmapping were the proxy's largest cost. Keeping up to 32 MiB free, and serving buffers up
/// to 4 MiB from the heap, reuses them instead.
fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator tuning parameters; it is called before the proxy's
    // threads exist, and its failure (0) leaves the defaults, which are correct, only slower.
    unsafe {
        libc::mallopt(libc::M_TRIM_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_MMAP_THRESHOLD, 4 << 20);
    }
}

/// The user's own `NO_PROXY` (or `no_proxy`), empty when unset.
fn users_no_proxy(inherited: &[InheritedVar]) -> &str {
    ["NO_PROXY", "no_proxy"]
        .iter()
        .find_map(|n| inherited.iter().find(|(k, _)| k == n).and_then(|(_, v)| std::str::from_utf8(v).ok()))
        .unwrap_or("")
}

/// The child's CA bundle: the run CA, then what the child would have trusted (its own
/// `SSL_CERT_FILE`, else the system roots).
fn bundle(
    ca_pem: &str,
    system: &[CertificateDer<'static>],
    inherited: &[InheritedVar],
) -> Result<String, ProxyError> {
    let mut out = String::from(ca_pem);
    if !out.ends_with('\n') {
        out.push('\n');
    }
    let own = inherited
        .iter()
        .find(|(k, v)| k == "SSL_CERT_FILE" && !v.is_empty())
        .map(|(_, v)| PathBuf::from(std::ffi::OsStr::from_bytes(v)));
    if let Some(path) = own {
        let text = std::fs::read_to_string(&path)
            .map_err(|source| ProxyError::Bundle { path: path.display().to_string(), source })?;
        out.push_str(&text);
        return Ok(out);
    }
    let b64 = base64::engine::general_purpose::STANDARD;
    for cert in system {
        out.push_str("-----BEGIN CERTIFICATE-----\n");
        let text = b64.encode(cert.as_ref());
        for chunk in text.as_bytes().chunks(64) {
            out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
            out.push('\n');
        }
        out.push_str("-----END CERTIFICATE-----\n");
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pin_parses_curl_syntax() {
        let p = Pin::parse("API.example.com:8443:127.0.0.1").unwrap();
        assert_eq!(
            (p.host.as_str(), p.port, p.addr.to_string().as_str()),
            ("api.example.com", 8443, "127.0.0.1:8443")
        );
        let v6 = Pin::parse("h.test:443:[::1]").unwrap();
        assert_eq!(v6.addr.to_string(), "[::1]:443");
        assert!(Pin::parse("h.test:443").is_err());
        assert!(Pin::parse("h.test:x:127.0.0.1").is_err());
        assert!(Pin::parse("h.test:443:nohost").is_err());
        let moved = Pin::parse("api.openai.com:443:127.0.0.1:8443").unwrap();
        assert_eq!((moved.port, moved.addr), (443, "127.0.0.1:8443".parse().unwrap()));
        let moved6 = Pin::parse("h.test:443:[::1]:8443").unwrap();
        assert_eq!(moved6.addr, "[::1]:8443".parse().unwrap());
        assert!(Pin::parse("h.test:443:127.0.0.1:x").is_err());
    }

    #[test]
    fn no_proxy_keeps_the_users_list_and_adds_loopback() {
        let inherited =
            vec![(std::ffi::OsString::from("no_proxy"), Zeroizing::new(b"corp.example, localhost".to_vec()))];
        assert_eq!(no_proxy(&inherited, &[]), "corp.example,localhost,127.0.0.1,::1");
        assert_eq!(no_proxy(&[], &[]), "localhost,127.0.0.1,::1");
        assert_eq!(no_proxy(&[], &["localhost".into()]), "127.0.0.1,::1");
    }

    #[test]
    fn placeholders_are_random_and_shaped() {
        let mut m = Mapping::default();
        let text =
            "[env]\nK = { path = \"a/b\", hosts = [\"api.example.com\"], placeholder = \"sk-{random}\" }\n";
        m.entries = Mapping::build(Some((std::path::Path::new("f.toml"), text)), &[], &[]).unwrap().entries;
        let a = routes(&m);
        let b = routes(&m);
        assert_eq!(a.len(), 1);
        assert!(a[0].placeholder.starts_with("sk-") && a[0].placeholder.len() == 3 + 32);
        assert_ne!(a[0].placeholder, b[0].placeholder);
        assert_eq!(describe(&m, "K").as_deref(), Some("proxy → api.example.com (inject header)"));
    }
}
