//! What the helper is asked to make, and what it answers: plain values sent as JSON over the
//! socketpair (the descriptors travel beside them, as `SCM_RIGHTS`).

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::SandboxConfig;

/// One socket to make inside the namespace.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Socket {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Left out, rather than failing, when the address does not exist (IPv6 turned off).
    pub optional: bool,
}

/// The helper's orders.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Plan {
    /// vault-run is root: it writes the helper's id maps (the whole range, identity), since a
    /// process cannot map more than its own id into the namespace it just made.
    pub parent_maps: bool,
    /// The ids mapped (to themselves) when vault-run is not root.
    pub uid: u32,
    /// See `uid`.
    pub gid: u32,
    /// Listening TCP sockets, in this order.
    pub tcp: Vec<Socket>,
    /// UDP sockets, in this order.
    pub udp: Vec<Socket>,
    /// The child's `/etc/resolv.conf`.
    pub resolv_conf: String,
    /// The child's `/etc/hosts`.
    pub hosts: String,
    /// Hidden behind an empty file or directory.
    pub hide: Vec<PathBuf>,
    /// Bound read-only over themselves.
    pub read_only: Vec<PathBuf>,
    /// An empty directory of vault-run's own, for the helper's scratch tmpfs.
    pub scratch: PathBuf,
}

impl Plan {
    /// The plan for `config`'s files and these sockets (`scratch` is filled in by the runner).
    pub fn new(tcp: Vec<Socket>, udp: Vec<Socket>, config: &SandboxConfig) -> Plan {
        let absolute = |paths: &[PathBuf]| -> Vec<PathBuf> {
            paths.iter().filter_map(|p| std::fs::canonicalize(p).ok()).collect()
        };
        Plan {
            parent_maps: nix::unistd::Uid::effective().is_root(),
            uid: nix::unistd::Uid::effective().as_raw(),
            gid: nix::unistd::Gid::effective().as_raw(),
            tcp,
            udp,
            resolv_conf: "# vault-run --sandbox: vault-run answers names here\nnameserver 127.0.0.1\noptions timeout:2 attempts:1\n".into(),
            hosts: "# vault-run --sandbox\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n".into(),
            hide: absolute(&config.hide),
            read_only: absolute(&config.read_only),
            scratch: PathBuf::new(),
        }
    }
}

/// The helper's answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Reply {
    /// The user namespace exists; vault-run (root) now writes the id maps, then sends `go`.
    MapMe,
    /// A step failed with this errno.
    Failed {
        /// What was being done.
        step: String,
        /// The OS error number.
        errno: i32,
    },
    /// Everything is made. The descriptors follow in this order: the outer user namespace, the
    /// mount and network namespaces, the nested user namespace, the scratch tmpfs, then every
    /// socket marked here.
    Ready {
        /// Root without user namespaces: only the mount and network namespaces were made (the
        /// child then gives up every capability instead), and only their descriptors come first.
        direct: bool,
        /// For each planned TCP socket, whether it was made (and so sent).
        tcp: Vec<bool>,
        /// The same for UDP.
        udp: Vec<bool>,
    },
}
