//! The child's environment: the inherited variables (or only the kept ones), minus vault-run's
//! own credentials, plus the secrets; checked for names, NUL bytes and `execve`'s size limits.

use std::collections::HashSet;
use std::ffi::{CString, OsStr};
use std::io::Write;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;

use zeroize::{Zeroize, Zeroizing};

use crate::mapping::{check_name, Delivery};
use crate::resolve::ResolvedVar;

/// How to build the environment.
#[derive(Debug, Clone, Default)]
pub struct EnvOptions {
    /// Start from nothing but the `keep` names.
    pub pristine: bool,
    /// Inherited names kept under `pristine`.
    pub keep: Vec<String>,
    /// Leave the credential variables (`scrub`) in place.
    pub keep_agent_key: bool,
    /// Dangerous names allowed anyway.
    pub allow_names: Vec<String>,
    /// Variables holding backend credentials (agent key, Vault token), removed from the child.
    pub scrub: Vec<String>,
}

/// Why the environment could not be built.
#[derive(Debug, thiserror::Error)]
pub enum EnvError {
    /// Refused name (invalid or dangerous).
    #[error("{0}")]
    Name(String),
    /// A value with a NUL byte cannot be passed through `execve`.
    #[error("{0}: the value contains a NUL byte, which an environment variable cannot hold; use as = \"file\" for binary values")]
    Nul(String),
    /// Over `execve`'s limits.
    #[error("{0}")]
    TooLarge(String),
    /// memfd creation failed.
    #[error("{name}: cannot create the in-memory file: {source}")]
    File {
        /// Variable.
        name: String,
        /// OS error.
        source: std::io::Error,
    },
}

/// The built environment: `NAME=value` strings, wiped when dropped, plus the memfds that must
/// stay open (and inheritable) until the exec.
pub struct ChildEnv {
    entries: Vec<Zeroizing<Vec<u8>>>,
    files: Vec<OwnedFd>,
}

impl std::fmt::Debug for ChildEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChildEnv")
            .field("vars", &self.entries.len())
            .field("files", &self.files.len())
            .finish()
    }
}

impl ChildEnv {
    /// `NAME=value` C strings for `execve`. The caller must wipe them (see [`wipe_cstrings`]).
    pub fn to_cstrings(&self) -> Vec<CString> {
        self.entries
            .iter()
            .map(|e| CString::new(e.as_slice()).expect("NUL bytes were refused when building"))
            .collect()
    }

    /// Names in the environment.
    #[cfg(test)]
    fn names(&self) -> impl Iterator<Item = &OsStr> {
        self.entries.iter().map(|e| {
            let eq = e.iter().position(|&b| b == b'=').unwrap_or(e.len());
            OsStr::from_bytes(&e[..eq])
        })
    }
}

pub use crate::inherited::{capture, InheritedVar};

/// Wipes C strings that held secrets (after a failed exec).
pub fn wipe_cstrings(strings: Vec<CString>) {
    for s in strings {
        s.into_bytes_with_nul().zeroize();
    }
}

/// Builds the child's environment from the inherited one and the resolved secrets.
/// `argv_bytes` is the size of the command line, which shares `execve`'s limit.
pub fn build(
    inherited: &[InheritedVar],
    vars: &[ResolvedVar],
    opts: &EnvOptions,
    argv_bytes: usize,
) -> Result<ChildEnv, EnvError> {
    let injected: HashSet<&str> = vars.iter().map(|v| v.name.as_str()).collect();
    let keep: HashSet<&str> = opts.keep.iter().map(String::as_str).collect();
    let scrubbed =
        |name: &OsStr| !opts.keep_agent_key && opts.scrub.iter().any(|c| c.as_bytes() == name.as_bytes());
    let mut entries: Vec<Zeroizing<Vec<u8>>> = Vec::with_capacity(inherited.len() + vars.len());
    for (name, value) in inherited {
        let name_str = name.to_str().unwrap_or_default();
        if injected.contains(name_str) || scrubbed(name) || (opts.pristine && !keep.contains(name_str)) {
            continue;
        }
        // Sized up front: a growing Vec would leave unwiped copies behind in freed memory.
        let mut e = Zeroizing::new(Vec::with_capacity(name.len() + 1 + value.len()));
        e.extend_from_slice(name.as_bytes());
        e.push(b'=');
        e.extend_from_slice(value);
        entries.push(e);
    }
    let mut files = Vec::new();
    for v in vars {
        check_name(&v.name, &opts.allow_names).map_err(|e| EnvError::Name(e.to_string()))?;
        let value: Zeroizing<Vec<u8>> = match v.delivery {
            Delivery::Env => {
                if v.value.expose().as_bytes().contains(&0) {
                    return Err(EnvError::Nul(v.name.clone()));
                }
                Zeroizing::new(v.value.expose().as_bytes().to_vec())
            }
            Delivery::File => {
                let fd = sealed_memfd(&v.name, v.value.expose().as_bytes())
                    .map_err(|source| EnvError::File { name: v.name.clone(), source })?;
                let path = format!("/dev/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&fd));
                files.push(fd);
                Zeroizing::new(path.into_bytes())
            }
        };
        let mut e = Zeroizing::new(Vec::with_capacity(v.name.len() + 1 + value.len()));
        e.extend_from_slice(v.name.as_bytes());
        e.push(b'=');
        e.extend_from_slice(&value);
        entries.push(e);
    }
    check_size(&entries, vars, argv_bytes)?;
    Ok(ChildEnv { entries, files })
}

/// Linux's per-string limit (`MAX_ARG_STRLEN`, 32 pages).
const MAX_ARG_STRLEN: usize = 32 * 4096;

fn check_size(
    entries: &[Zeroizing<Vec<u8>>],
    vars: &[ResolvedVar],
    argv_bytes: usize,
) -> Result<(), EnvError> {
    let name_of = |e: &[u8]| {
        let eq = e.iter().position(|&b| b == b'=').unwrap_or(e.len());
        String::from_utf8_lossy(&e[..eq]).into_owned()
    };
    for e in entries {
        if e.len() + 1 > MAX_ARG_STRLEN {
            return Err(EnvError::TooLarge(format!(
                "{}: the value is larger than one environment variable may be ({} KiB); use as = \"file\"",
                name_of(e),
                MAX_ARG_STRLEN / 1024
            )));
        }
    }
    // execve counts each string with its NUL plus one pointer for it.
    let total: usize =
        argv_bytes + entries.iter().map(|e| e.len() + 1 + std::mem::size_of::<usize>()).sum::<usize>();
    let limit = arg_max();
    if total > limit {
        let largest =
            vars.iter().max_by_key(|v| v.value.len()).map(|v| v.name.as_str()).unwrap_or("(inherited)");
        return Err(EnvError::TooLarge(format!(
            "the environment would be {} KiB, more than execve allows ({} KiB); the largest secret is {largest}: use as = \"file\" for large values or --pristine",
            total / 1024,
            limit / 1024
        )));
    }
    Ok(())
}

fn arg_max() -> usize {
    // A quarter of the stack limit on Linux, at least 128 KiB; sysconf reports it.
    nix::unistd::sysconf(nix::unistd::SysconfVar::ARG_MAX)
        .ok()
        .flatten()
        .map(|v| v as usize)
        .unwrap_or(128 * 1024)
}

/// An in-memory file holding `content`, sealed against any change, inherited across exec (no
/// close-on-exec) so the child can open `/dev/fd/N`. Never touches a filesystem.
pub fn sealed_memfd(name: &str, content: &[u8]) -> std::io::Result<OwnedFd> {
    use nix::fcntl::{fcntl, FcntlArg, SealFlag};
    use nix::sys::memfd::{memfd_create, MFdFlags};

    let label = format!("vault-run:{name}");
    let fd = memfd_create(label.as_str(), MFdFlags::MFD_ALLOW_SEALING)?;
    let mut file = std::fs::File::from(fd);
    file.write_all(content)?;
    // A child that reads the inherited descriptor itself (not via /dev/fd) starts at the top.
    std::io::Seek::rewind(&mut file)?;
    let fd = OwnedFd::from(file);
    fcntl(
        &fd,
        FcntlArg::F_ADD_SEALS(
            SealFlag::F_SEAL_WRITE | SealFlag::F_SEAL_GROW | SealFlag::F_SEAL_SHRINK | SealFlag::F_SEAL_SEAL,
        ),
    )?;
    Ok(fd)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsString;

    fn var(name: &str, value: &str) -> InheritedVar {
        (OsString::from(name), Zeroizing::new(value.as_bytes().to_vec()))
    }

    /// Credential values are held in wiping buffers from capture to removal, and a removed
    /// one reaches neither the child's environment nor a Debug print.
    #[test]
    fn credentials_are_scrubbed_and_each_entry_is_allocated_once() {
        let inherited = vec![
            var("ASS_AGENT_KEY", "ass_live_canary_0123456789"),
            var("VAULT_TOKEN", "hvs.canary-token"),
            var("PATH", "/usr/bin"),
        ];
        let opts =
            EnvOptions { scrub: vec!["ASS_AGENT_KEY".into(), "VAULT_TOKEN".into()], ..EnvOptions::default() };
        let env = build(&inherited, &[], &opts, 0).unwrap();
        let names: Vec<_> = env.names().map(|n| n.to_string_lossy().into_owned()).collect();
        assert_eq!(names, ["PATH"]);
        assert!(!format!("{env:?}").contains("canary"));
        // Exactly sized: a buffer that grew would have left a copy behind in freed memory.
        assert!(env.entries.iter().all(|e| e.capacity() == e.len()));
        let kept = build(&inherited, &[], &EnvOptions { keep_agent_key: true, ..opts }, 0).unwrap();
        assert_eq!(kept.entries.len(), 3);
    }
}
