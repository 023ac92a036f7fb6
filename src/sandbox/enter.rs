//! How each child enters the sandbox, between fork and exec: the outer user namespace (which
//! gives it the right to join the others), the mount and network namespaces, then the nested
//! user namespace, which owns neither. After the exec it holds no capability over them (root
//! keeps capabilities only in the nested namespace, which owns nothing of the sandbox's), so
//! it can change neither its mounts nor its network, nor join the host's again: `setns` needs
//! `CAP_SYS_ADMIN` over the target namespace's owner, and a process cannot re-enter an
//! ancestor user namespace.

use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::process::Command;

/// The sandbox's namespaces, held open for as long as vault-run may start a child.
#[derive(Debug)]
pub struct Entry {
    outer_user: OwnedFd,
    mnt: OwnedFd,
    net: OwnedFd,
    inner_user: OwnedFd,
    /// vault-run's working directory: joining a mount namespace moves the caller to its root.
    cwd: CString,
}

impl Entry {
    /// Takes the four namespace descriptors (in this order), with the current directory.
    pub fn new(outer_user: OwnedFd, mnt: OwnedFd, net: OwnedFd, inner_user: OwnedFd) -> Option<Entry> {
        let cwd = std::env::current_dir().ok()?;
        let cwd = CString::new(cwd.as_os_str().as_bytes()).ok()?;
        Some(Entry { outer_user, mnt, net, inner_user, cwd })
    }

    /// Makes `cmd`'s process enter the sandbox before it execs. Register it before any
    /// `pre_exec` that switches users (`--user` then happens inside the nested namespace).
    pub fn apply_to(&self, cmd: &mut Command) {
        let steps = [
            (self.outer_user.as_raw_fd(), libc::CLONE_NEWUSER),
            (self.mnt.as_raw_fd(), libc::CLONE_NEWNS),
            (self.net.as_raw_fd(), libc::CLONE_NEWNET),
            (self.inner_user.as_raw_fd(), libc::CLONE_NEWUSER),
        ];
        let cwd = self.cwd.clone();
        // SAFETY: runs between fork and exec in the (single-threaded) child: only setns, chdir
        // and prctl, no allocation (the path was made before the fork). The descriptors stay
        // open in vault-run, which owns this Entry for as long as it starts children.
        unsafe {
            cmd.pre_exec(move || {
                for (fd, kind) in steps {
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
}
