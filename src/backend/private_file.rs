//! Reading a credential file (agent key, Vault token, AppRole secret id): only one that nobody
//! else can read or have planted. A key readable by group or others is as good as shared, and a
//! file owned by another user may have been written by them (their key, their server's token).

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use zeroize::Zeroizing;

use super::{BackendError, FailureKind};

/// The most a credential file may hold; keys and tokens are far smaller.
const MAX_BYTES: u64 = 64 * 1024;

/// Why a credential file was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PrivateFileError {
    /// Group or others have some access.
    #[error("{what} file {path} is accessible by group or others (mode {mode:o}); run chmod 600 {path} (on a read-only mount it may instead be group-readable, 0440, by a group of this process, as Kubernetes' fsGroup makes it)")]
    TooOpen {
        /// What the file holds.
        what: String,
        /// The path as given.
        path: String,
        /// Its permission bits.
        mode: u32,
    },
    /// Owned by neither the caller nor root.
    #[error("{what} file {path} is owned by uid {owner}, not by you (uid {me}) or root; it may not be yours: chown it or use your own, then chmod 600 {path}")]
    Owner {
        /// What the file holds.
        what: String,
        /// The path as given.
        path: String,
        /// Its owner.
        owner: u32,
        /// The caller's effective uid.
        me: u32,
    },
}

/// Checks an opened credential file (`fstat`: what a symlink points to, the very file read).
pub fn check(file: &File, path: &Path, what: &str) -> Result<(), PrivateFileError> {
    let Ok(meta) = file.metadata() else { return Ok(()) };
    let me = nix::unistd::Uid::effective().as_raw();
    let shown = path.display().to_string();
    if meta.uid() != me && meta.uid() != 0 {
        return Err(PrivateFileError::Owner { what: what.to_owned(), path: shown, owner: meta.uid(), me });
    }
    let mode = meta.mode() & 0o777;
    if mode & 0o077 == 0 || (group_readable_by_our_group(mode, meta.gid()) && on_read_only_mount(file)) {
        return Ok(());
    }
    Err(PrivateFileError::TooOpen { what: what.to_owned(), path: shown, mode })
}

/// Kubernetes mounts a Secret for a non-root container only group-readable: with `fsGroup`, the
/// file is `root:FSGROUP 0440` on a read-only volume, where no `chmod 600` is possible. Such a
/// file is accepted: read (never write) for the group, nothing for others, and the group is one
/// of this process's own (its gid or a supplementary group), so only it and that group's members
/// (the pod's containers) can read it, and the mount is read-only, so no one can replace it.
/// Anywhere else (a writable disk) `chmod 600` is still asked for.
fn on_read_only_mount(file: &File) -> bool {
    nix::sys::statvfs::fstatvfs(file).is_ok_and(|v| v.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY))
}

fn group_readable_by_our_group(mode: u32, gid: u32) -> bool {
    if mode & 0o037 != 0 {
        return false;
    }
    let gid = nix::unistd::Gid::from_raw(gid);
    nix::unistd::getegid() == gid || nix::unistd::getgroups().is_ok_and(|groups| groups.contains(&gid))
}

/// Opens, checks and reads a credential file into a wiping buffer (at most 64 KiB).
pub fn read(path: &Path, what: &str) -> Result<Zeroizing<Vec<u8>>, BackendError> {
    let config = |m: String| BackendError::new(FailureKind::Config, m);
    let shown = path.display();
    // Non-blocking: opening a FIFO with no writer would otherwise wait forever, past --deadline.
    let mut f = {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK).open(path)
    }
    .map_err(|e| config(format!("cannot open {what} file {shown}: {e}; check the path and permissions")))?;
    // A FIFO, socket or device is not a file someone wrote a key into (and /dev/zero never ends).
    if !f.metadata().is_ok_and(|m| m.is_file()) {
        return Err(config(format!(
            "{what} file {shown} is not a regular file; point it at the file holding the credential"
        )));
    }
    check(&f, path, what).map_err(|e| config(e.to_string()))?;
    let mut buf = Zeroizing::new(Vec::with_capacity(256));
    f.by_ref()
        .take(MAX_BYTES)
        .read_to_end(&mut buf)
        .map_err(|e| config(format!("cannot read {what} file {shown}: {e}")))?;
    Ok(buf)
}
