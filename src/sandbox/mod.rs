//! `--sandbox`: agent-safe mode enforced by the kernel. The child runs in a network namespace
//! of its own with only a loopback interface, so vault-run is its only way out; a mount
//! namespace gives it a resolver of vault-run's, a plain `/etc/hosts`, hides vault-run's own
//! credential files and makes the files that configured the run read-only.
//!
//! How: a helper (vault-run re-executed, `helper`) makes a user namespace (also as root: it
//! is what takes the child's power over the other namespaces away), a network and a mount
//! namespace in it, brings `lo` up, makes the listening sockets *inside* (a socket stays in the
//! namespace it was made in), prepares the mounts, makes a nested user namespace for the child
//! and hands every descriptor back over a socketpair (`SCM_RIGHTS`). vault-run serves those
//! sockets from its own namespace, where it dials upstream. Each child joins the namespaces
//! between fork and exec ([`Entry`]): it ends in the nested user namespace, which owns
//! neither the network nor the mount namespace, so it cannot change them, and the mounts it
//! sees are locked.

mod dns;
mod enter;
mod fdpass;
mod helper;
mod mounts;
mod plan;
mod serve;
mod step;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, UdpSocket};
use std::path::PathBuf;

use crate::mapping::HostPort;

pub use dns::Names;
pub use enter::Entry;
pub use helper::{main as helper_main, HELPER_ARG};

/// Where the child connects to reach a forwarded `--allow-host`: the same loopback address, or
/// `127.0.0.1` (the sandbox's resolver answers its name with that).
fn inside(allowed: &HostPort, port: u16) -> SocketAddr {
    match allowed.host.parse::<IpAddr>() {
        Ok(ip) if ip.is_loopback() => SocketAddr::new(ip, port),
        _ => SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port),
    }
}

/// What the sandbox is made with (`app` fills it in from the flags and the loaded files).
#[derive(Debug, Clone, Default)]
pub struct SandboxConfig {
    /// `--allow-host` entries (those with a port are forwarded).
    pub allow: Vec<HostPort>,
    /// vault-run's own credential files and directories, hidden from the child.
    pub hide: Vec<PathBuf>,
    /// Files that configured the run, bound read-only over themselves.
    pub read_only: Vec<PathBuf>,
}

/// Why there is no sandbox.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// The kernel (or its policy) refused the namespaces (exit 78).
    #[error("{0}")]
    Refused(String),
    /// A flag cannot be honoured (exit 78).
    #[error("{0}")]
    Config(String),
    /// Anything else that went wrong while setting it up (exit 70).
    #[error("--sandbox: {0}")]
    Setup(String),
}

/// The sockets made inside the child's network namespace, for the proxy to serve.
#[derive(Debug)]
pub struct ProxySockets {
    /// The explicit proxy (`HTTPS_PROXY`), on `127.0.0.1`, a port of its own.
    pub proxy: TcpListener,
    /// Transparent capture of TLS (`:443` on `127.0.0.1` and `[::1]`).
    pub tls: Vec<TcpListener>,
    /// Transparent capture of plain HTTP (`:80`).
    pub http: Vec<TcpListener>,
}

/// A prepared sandbox: the namespaces (for each child to enter) and the sockets in them.
#[derive(Debug)]
pub struct Sandbox {
    entry: std::sync::Arc<Entry>,
    /// The scratch tmpfs, and where the child sees it.
    scratch: (std::os::fd::OwnedFd, PathBuf),
    proxy: Option<ProxySockets>,
    dns_udp: Option<UdpSocket>,
    dns_tcp: Option<TcpListener>,
    forwards: Vec<(TcpListener, HostPort)>,
}

/// The capture and resolver ports inside the namespace.
const HTTPS: u16 = 443;
const HTTP: u16 = 80;
const DNS: u16 = 53;

impl Sandbox {
    /// Makes the namespaces and the sockets in them (before anything is fetched: a kernel that
    /// refuses is a configuration error, exit 78).
    pub fn create(config: &SandboxConfig) -> Result<Sandbox, SandboxError> {
        let v4 = |port| SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port);
        let v6 = |port| SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), port);
        let mut tcp = vec![
            plan::Socket { addr: v4(0), optional: false },
            plan::Socket { addr: v4(HTTPS), optional: false },
            plan::Socket { addr: v6(HTTPS), optional: true },
            plan::Socket { addr: v4(HTTP), optional: false },
            plan::Socket { addr: v6(HTTP), optional: true },
            plan::Socket { addr: v4(DNS), optional: false },
        ];
        let forwards: Vec<&HostPort> = config.allow.iter().filter(|a| a.port.is_some()).collect();
        for a in &forwards {
            let port = a.port.expect("filtered");
            let addr = inside(a, port);
            if tcp.iter().any(|s| s.addr == addr)
                || (addr.ip().is_loopback() && [HTTPS, HTTP, DNS].contains(&port))
            {
                return Err(SandboxError::Config(format!(
                    "--allow-host {}:{port}: port {port} on {} is taken inside the sandbox (by another --allow-host, or the sandbox's own HTTPS/HTTP capture or resolver); forward another port",
                    a.host,
                    addr.ip()
                )));
            }
            tcp.push(plan::Socket { addr, optional: false });
        }
        let udp = vec![plan::Socket { addr: v4(DNS), optional: false }];
        let plan = plan::Plan::new(tcp, udp, config);
        let made = helper::run(plan)?;
        let mut tcp = made.tcp.into_iter();
        let proxy =
            tcp.next().flatten().ok_or_else(|| SandboxError::Setup("the proxy socket is missing".into()))?;
        let tls = tcp.by_ref().take(2).flatten().collect();
        let http = tcp.by_ref().take(2).flatten().collect();
        let dns_tcp = tcp.next().flatten();
        let forwards = forwards.into_iter().zip(tcp).filter_map(|(a, l)| Some((l?, a.clone()))).collect();
        Ok(Sandbox {
            entry: std::sync::Arc::new(made.entry),
            scratch: (made.scratch, made.scratch_path),
            proxy: Some(ProxySockets { proxy, tls, http }),
            dns_udp: made.udp.into_iter().flatten().next(),
            dns_tcp,
            forwards,
        })
    }

    /// What each child is started with to enter the sandbox.
    pub fn entry(&self) -> std::sync::Arc<Entry> {
        self.entry.clone()
    }

    /// Puts `content` in a file the child can read (the scratch tmpfs, which only the sandbox
    /// sees); its path there. The child's CA bundle goes here.
    pub fn install(&self, name: &str, content: &[u8]) -> Result<PathBuf, SandboxError> {
        use std::io::Write;
        use std::os::fd::AsFd;
        let fail = |e: nix::Error| SandboxError::Setup(format!("cannot write {name} for the child: {e}"));
        let flags = nix::fcntl::OFlag::O_CREAT
            | nix::fcntl::OFlag::O_WRONLY
            | nix::fcntl::OFlag::O_TRUNC
            | nix::fcntl::OFlag::O_CLOEXEC;
        let mode = nix::sys::stat::Mode::from_bits_truncate(0o644);
        let fd = nix::fcntl::openat(self.scratch.0.as_fd(), name, flags, mode).map_err(fail)?;
        let mut file = std::fs::File::from(fd);
        file.write_all(content)
            .map_err(|e| fail(nix::Error::from_raw(e.raw_os_error().unwrap_or(libc::EIO))))?;
        Ok(self.scratch.1.join(name))
    }

    /// The sockets the proxy serves (once).
    pub fn take_proxy_sockets(&mut self) -> Option<ProxySockets> {
        self.proxy.take()
    }

    /// Serves the resolver and the `--allow-host` forwards from now on, in a thread of its own.
    pub fn serve(&mut self, names: Names) -> Result<(), SandboxError> {
        serve::start(self.dns_udp.take(), self.dns_tcp.take(), std::mem::take(&mut self.forwards), names)
            .map_err(|e| SandboxError::Setup(format!("cannot start the resolver and forwards: {e}")))
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        // On the host it is an empty directory (the tmpfs over it is the sandbox's alone).
        let _ = std::fs::remove_dir(&self.scratch.1);
    }
}

/// Why vault-run supervises under `--sandbox`.
pub const SUPERVISE_REASON: &str =
    "--sandbox needs vault-run to stay (it serves the child's only way out of its network namespace)";

/// The line `-v` and `check` give in agent-safe mode without `--sandbox`.
pub const ADVISORY: &str = "agent-safe mode is advisory without --sandbox: the proxy is used by clients that honour HTTPS_PROXY, and a child that ignores it (curl --noproxy '*', Node 20's fetch, a raw socket) reaches any host directly; --sandbox enforces it (Linux)";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_forwarded_host_is_reached_at_its_loopback_address_or_127_0_0_1() {
        let p = |s| HostPort::parse(s).unwrap();
        assert_eq!(inside(&p("127.0.0.1:5432"), 5432), "127.0.0.1:5432".parse().unwrap());
        assert_eq!(inside(&p("[::1]:5432"), 5432), "[::1]:5432".parse().unwrap());
        assert_eq!(inside(&p("db.example.com:5432"), 5432), "127.0.0.1:5432".parse().unwrap());
    }
}
