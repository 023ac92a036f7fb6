//! Opening the files that configure a run: env files, the mapping file, CA bundles.
//!
//! Two rules, each in one place:
//! - [`open_regular`]: a FIFO or device never blocks or drains vault-run. A FIFO with no writer
//!   would hang `open(2)` forever (past `--deadline`) and `/dev/zero` never ends, so only a
//!   regular file is read, opened without blocking. The one exception is a descriptor the
//!   caller named on purpose (`/dev/fd/N`, `/dev/stdin`: a shell's process substitution),
//!   and `/dev/null`.
//! - [`require_roots`]: under `--user`, whatever names what vault-run (as root) reads and hands
//!   to the child must be root's: owned by root, writable by nobody else, and in no directory
//!   anyone else can write. Otherwise the unprivileged child, which may write its own config,
//!   chooses what root reads for it next time (`file:///root/.ssh/id_ed25519`).

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

/// A configuration file vault-run refuses to use (exit 78).
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// Cannot be opened or read.
    #[error("cannot read {what} {}: {source}", path.display())]
    Io {
        /// What the file is for (`env file`, `--upstream-ca`).
        what: String,
        /// The path as given.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A FIFO, socket or device.
    #[error("{what} {} is a {kind}, not a regular file; it could block or never end, so it is not read: point it at a file", path.display())]
    NotRegular {
        /// What the file is for.
        what: String,
        /// The path as given.
        path: PathBuf,
        /// `FIFO`, `character device`, …
        kind: &'static str,
    },
    /// Larger than the cap.
    #[error("{what} {} is larger than {} MiB; check the path", path.display(), max >> 20)]
    TooLarge {
        /// What the file is for.
        what: String,
        /// The path as given.
        path: PathBuf,
        /// The cap in bytes.
        max: u64,
    },
    /// Under `--user`: not root's alone.
    #[error("--user: {what} {} {why}, so the user the child runs as could choose what vault-run reads as root; run {fix}", path.display())]
    NotRoots {
        /// What the file is for.
        what: String,
        /// The path as given.
        path: PathBuf,
        /// What is wrong with it (or with which directory).
        why: String,
        /// The command that fixes it.
        fix: String,
    },
}

/// Opens `path` for reading when it is a regular file (or a descriptor named on purpose),
/// without ever blocking in `open(2)`.
pub fn open_regular(path: &Path, what: &str) -> Result<File, FileError> {
    let io = |source| FileError::Io { what: what.to_owned(), path: path.to_owned(), source };
    let file =
        std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK).open(path).map_err(io)?;
    let meta = file.metadata().map_err(io)?;
    let kind = meta.file_type();
    // `/dev/null` (by its device number: `-f /dev/null` says "no mapping file") is empty.
    if kind.is_file() || (kind.is_char_device() && meta.rdev() == libc::makedev(1, 3)) {
        return Ok(file);
    }
    if kind.is_fifo() && named_descriptor(path) {
        // A pipe the caller handed over (`--env-file <(…)`): its writer exists, so read it
        // as a pipe is read, blocking until its end.
        let flags = nix::fcntl::fcntl(&file, nix::fcntl::FcntlArg::F_GETFL).map_err(|e| io(e.into()))?;
        let flags = nix::fcntl::OFlag::from_bits_truncate(flags) - nix::fcntl::OFlag::O_NONBLOCK;
        nix::fcntl::fcntl(&file, nix::fcntl::FcntlArg::F_SETFL(flags)).map_err(|e| io(e.into()))?;
        return Ok(file);
    }
    let kind = if kind.is_fifo() {
        "FIFO"
    } else if kind.is_char_device() {
        "character device"
    } else if kind.is_block_device() {
        "block device"
    } else if kind.is_socket() {
        "socket"
    } else if kind.is_dir() {
        "directory"
    } else {
        "special file"
    };
    Err(FileError::NotRegular { what: what.to_owned(), path: path.to_owned(), kind })
}

/// `/dev/fd/N`, `/proc/self/fd/N`, `/dev/stdin`: a descriptor given on purpose.
fn named_descriptor(path: &Path) -> bool {
    let s = path.as_os_str().as_encoded_bytes();
    s == b"/dev/stdin" || s.starts_with(b"/dev/fd/") || s.starts_with(b"/proc/self/fd/")
}

/// Reads a file opened with [`open_regular`] into a wiping buffer, at most `max` bytes.
pub fn read_to_end(file: File, path: &Path, what: &str, max: u64) -> Result<Zeroizing<Vec<u8>>, FileError> {
    let mut buf =
        Zeroizing::new(Vec::with_capacity(file.metadata().map_or(0, |m| m.len().min(max)) as usize));
    file.take(max + 1).read_to_end(&mut buf).map_err(|source| FileError::Io {
        what: what.to_owned(),
        path: path.to_owned(),
        source,
    })?;
    if buf.len() as u64 > max {
        return Err(FileError::TooLarge { what: what.to_owned(), path: path.to_owned(), max });
    }
    Ok(buf)
}

/// [`open_regular`] then [`read_to_end`].
pub fn read_regular(path: &Path, what: &str, max: u64) -> Result<Zeroizing<Vec<u8>>, FileError> {
    read_to_end(open_regular(path, what)?, path, what, max)
}

/// Under `--user`: refuses `file` (opened from `path`) unless root owns it and nobody else can
/// write it or any directory above it. The file is judged by its descriptor (what was opened,
/// after any symlink); the directories by path, from the file's real location up to `/`. A
/// sticky directory (`/tmp`) may be world-writable: nobody else can replace a root file in it.
pub fn require_roots(file: &File, path: &Path, what: &str) -> Result<(), FileError> {
    let refuse = |why: String, fix: String| FileError::NotRoots {
        what: what.to_owned(),
        path: path.to_owned(),
        why,
        fix,
    };
    let meta = file.metadata().map_err(|source| FileError::Io {
        what: what.to_owned(),
        path: path.to_owned(),
        source,
    })?;
    let shown = path.display();
    if meta.file_type().is_char_device() {
        // `/dev/null`, the only device `open_regular` lets through: it names nothing.
        return Ok(());
    }
    if meta.uid() != 0 {
        return Err(refuse(
            format!("belongs to uid {}, not root", meta.uid()),
            format!("chown root:root {shown}"),
        ));
    }
    if meta.mode() & 0o022 != 0 {
        return Err(refuse(
            format!("is writable by group or others (mode {:o})", meta.mode() & 0o777),
            format!("chmod go-w {shown}"),
        ));
    }
    if !meta.is_file() {
        // A pipe handed over by root's own shell has no directory to check.
        return Ok(());
    }
    let real = std::fs::canonicalize(path).map_err(|source| FileError::Io {
        what: what.to_owned(),
        path: path.to_owned(),
        source,
    })?;
    for dir in real.ancestors().skip(1) {
        let Ok(d) = std::fs::metadata(dir) else { continue };
        let sticky = d.permissions().mode() & 0o1000 != 0;
        let d_shown = dir.display();
        if d.uid() != 0 {
            return Err(refuse(
                format!("is in directory {d_shown}, which belongs to uid {}, who can replace the file", d.uid()),
                format!("chown root:root {d_shown} (or move the file to a directory of root's, like /etc/vault-run)"),
            ));
        }
        if d.mode() & 0o022 != 0 && !sticky {
            return Err(refuse(
                format!(
                    "is in directory {d_shown}, which group or others can write (mode {:o})",
                    d.mode() & 0o777
                ),
                format!(
                    "chmod go-w {d_shown} (or move the file to a directory of root's, like /etc/vault-run)"
                ),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fifo_is_refused_without_blocking_and_a_file_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        assert!(matches!(open_regular(&fifo, "env file"), Err(FileError::NotRegular { kind: "FIFO", .. })));
        assert!(matches!(
            open_regular(Path::new("/dev/zero"), "env file"),
            Err(FileError::NotRegular { kind: "character device", .. })
        ));
        assert!(read_regular(Path::new("/dev/null"), "mapping file", 16).unwrap().is_empty());
        let file = dir.path().join("f");
        std::fs::write(&file, "abc").unwrap();
        assert_eq!(read_regular(&file, "env file", 16).unwrap().as_slice(), b"abc");
        assert!(matches!(read_regular(&file, "env file", 2), Err(FileError::TooLarge { .. })));
    }
}
