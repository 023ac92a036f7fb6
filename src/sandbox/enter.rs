//! How each child enters the sandbox, between fork and exec.
//!
//! Nested (the usual way, root or not): the outer user namespace (which gives it the right to
//! join the others), the mount and network namespaces, then the nested user namespace, which
//! owns neither. After the exec it holds no capability over them (root keeps capabilities only
//! in the nested namespace, which owns nothing of the sandbox's), so it can change neither its
//! mounts nor its network, nor join the host's again: `setns` needs `CAP_SYS_ADMIN` over the
//! target namespace's owner, and no process re-enters an ancestor user namespace.
//!
//! Direct (root where user namespaces are unavailable): the mount and network namespaces, then,
//! after `--user`, every capability is given up for good (bounding set, securebits that keep
//! uid 0 from regaining any at exec, no_new_privs).

use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::process::Command;

/// The sandbox's namespaces, held open for as long as vault-run may start a child.
#[derive(Debug)]
pub struct Entry {
    /// In the order they are joined.
    namespaces: Vec<(OwnedFd, libc::c_int)>,
    /// Root without user namespaces: the child drops its capabilities.
    direct: bool,
    /// vault-run's working directory: joining a mount namespace moves the caller to its root.
    cwd: CString,
}

/// `<linux/securebits.h>`: uid 0 gets no capabilities at exec, a uid change keeps none, locked.
const SECUREBITS: libc::c_ulong = 0b10_1111;
/// `<linux/prctl.h>`.
const PR_CAP_AMBIENT_CLEAR_ALL: libc::c_ulong = 4;
/// `<linux/capability.h>`.
const CAPABILITY_VERSION_3: u32 = 0x2008_0522;

impl Entry {
    /// The nested way: the four namespace descriptors, in this order.
    pub fn nested(outer_user: OwnedFd, mnt: OwnedFd, net: OwnedFd, inner_user: OwnedFd) -> Option<Entry> {
        let namespaces = vec![
            (outer_user, libc::CLONE_NEWUSER),
            (mnt, libc::CLONE_NEWNS),
            (net, libc::CLONE_NEWNET),
            (inner_user, libc::CLONE_NEWUSER),
        ];
        Self::new(namespaces, false)
    }

    /// The direct way (root, no user namespaces).
    pub fn direct(mnt: OwnedFd, net: OwnedFd) -> Option<Entry> {
        Self::new(vec![(mnt, libc::CLONE_NEWNS), (net, libc::CLONE_NEWNET)], true)
    }

    fn new(namespaces: Vec<(OwnedFd, libc::c_int)>, direct: bool) -> Option<Entry> {
        let cwd = std::env::current_dir().ok()?;
        let cwd = CString::new(cwd.as_os_str().as_bytes()).ok()?;
        Some(Entry { namespaces, direct, cwd })
    }

    /// Makes `cmd`'s process enter the sandbox before it execs. Register it before any
    /// `pre_exec` that switches users (`--user` then happens inside), and
    /// [`Entry::lock_after`] after those.
    pub fn apply_to(&self, cmd: &mut Command) {
        let steps: Vec<(libc::c_int, libc::c_int)> =
            self.namespaces.iter().map(|(fd, kind)| (fd.as_raw_fd(), *kind)).collect();
        let cwd = self.cwd.clone();
        // SAFETY: runs between fork and exec in the (single-threaded) child: only setns, chdir
        // and prctl, no allocation (the list and the path were made before the fork). The
        // descriptors stay open in vault-run, which owns this Entry while it starts children.
        unsafe {
            cmd.pre_exec(move || {
                for &(fd, kind) in &steps {
                    if libc::setns(fd, kind) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    if kind == libc::CLONE_NEWNS && libc::chdir(cwd.as_ptr()) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                // No set-uid or file-capability program gains anything inside.
                if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }

    /// The direct way's last step, after `--user`: a child still root gives up every
    /// capability, for good (nested, it holds none over the sandbox already).
    pub fn lock_after(&self, cmd: &mut Command) {
        if !self.direct {
            return;
        }
        // SAFETY: between fork and exec; only prctl and capset on stack values, no allocation.
        unsafe {
            cmd.pre_exec(|| {
                if libc::geteuid() != 0 {
                    // A uid change from root already cleared them; no_new_privs keeps them gone.
                    return Ok(());
                }
                let last = |r: libc::c_int| if r < 0 { Err(std::io::Error::last_os_error()) } else { Ok(()) };
                for cap in 0..64 {
                    // EINVAL past the kernel's last capability.
                    libc::prctl(libc::PR_CAPBSET_DROP, cap, 0, 0, 0);
                }
                last(libc::prctl(libc::PR_SET_SECUREBITS, SECUREBITS, 0, 0, 0))?;
                last(libc::prctl(libc::PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0))?;
                #[repr(C)]
                struct Header {
                    version: u32,
                    pid: libc::c_int,
                }
                #[repr(C)]
                struct Data {
                    effective: u32,
                    permitted: u32,
                    inheritable: u32,
                }
                let header = Header { version: CAPABILITY_VERSION_3, pid: 0 };
                let none = [
                    Data { effective: 0, permitted: 0, inheritable: 0 },
                    Data { effective: 0, permitted: 0, inheritable: 0 },
                ];
                last(libc::syscall(libc::SYS_capset, &header as *const Header, none.as_ptr()) as libc::c_int)
            });
        }
    }
}
