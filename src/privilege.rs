//! `--user USER[:GROUP]`: run the child as another user, as `gosu`, `su-exec` and `setpriv` do in
//! container entrypoints. vault-run, started as root, reads the credentials and fetches the
//! secrets; the child then gets the user's supplementary groups, gid and uid, so it can read
//! neither the agent key file nor vault-run's memory (which stays root's, and non-dumpable).

use std::ffi::OsString;
use std::path::PathBuf;

use nix::unistd::{Gid, Uid};
use zeroize::Zeroizing;

use crate::inherited::InheritedVar;
use crate::users::{Databases, LookupError};

/// Whom the child runs as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunAs {
    /// User id.
    pub uid: Uid,
    /// Primary group id.
    pub gid: Gid,
    /// Supplementary groups (the user's, as `initgroups` would set them, plus `gid`).
    pub groups: Vec<Gid>,
    /// Login name (the number when the uid has no passwd entry).
    pub name: String,
    /// Home directory (`/` when the uid has no passwd entry).
    pub home: PathBuf,
    /// Whether anything changes (false when `--user` names the current user and group).
    pub switch: bool,
}

/// Why `--user` cannot be honoured (exit 78).
#[derive(Debug, Clone, thiserror::Error)]
pub enum PrivilegeError {
    /// No such user.
    #[error("--user {0}: no such user; give a user name from /etc/passwd or a numeric uid")]
    UnknownUser(String),
    /// No such group.
    #[error("--user …:{0}: no such group; give a group name from /etc/group or a numeric gid")]
    UnknownGroup(String),
    /// Only root can switch users.
    #[error("--user {0}: vault-run is not running as root, so it cannot switch to another user; start it as root or drop --user")]
    NotRoot(String),
    /// The user database could not be read.
    #[error("--user {0}: cannot look up the user: {1}")]
    Lookup(String, String),
}

/// Resolves `USER[:GROUP]` (names or numeric ids) before anything is fetched, from
/// `/etc/passwd` and `/etc/group` read directly (see [`crate::users`]).
pub fn resolve(spec: &str) -> Result<RunAs, PrivilegeError> {
    resolve_in(&Databases::default(), spec)
}

fn resolve_in(db: &Databases, spec: &str) -> Result<RunAs, PrivilegeError> {
    let (user, group) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let lookup = |e: LookupError| PrivilegeError::Lookup(spec.to_owned(), e.to_string());
    let entry = match user.parse::<u32>() {
        Ok(n) => db.user(|p| p.uid == n).map_err(lookup)?,
        Err(_) if user.is_empty() => return Err(PrivilegeError::UnknownUser(spec.to_owned())),
        Err(_) => Some(
            db.user(|p| p.name == user)
                .map_err(lookup)?
                .ok_or_else(|| PrivilegeError::UnknownUser(user.to_owned()))?,
        ),
    };
    let (uid, mut gid, name, home) = match &entry {
        Some(u) => (u.uid, u.gid, u.name.clone(), u.home.clone()),
        // A bare uid without a passwd entry is common in containers: its group is the same number.
        None => {
            let n: u32 = user.parse().expect("numeric, or looked up above");
            (n, n, n.to_string(), PathBuf::from("/"))
        }
    };
    if let Some(g) = group {
        gid = match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => {
                db.group(|e| e.name == g)
                    .map_err(lookup)?
                    .ok_or_else(|| PrivilegeError::UnknownGroup(g.to_owned()))?
                    .gid
            }
        };
    }
    let groups = match &entry {
        Some(u) => db.groups_of(&u.name, gid).map_err(lookup)?,
        None => vec![gid],
    };
    let (uid, gid) = (Uid::from_raw(uid), Gid::from_raw(gid));
    let groups = groups.into_iter().map(Gid::from_raw).collect();
    let switch = uid != Uid::current() || gid != Gid::current();
    if switch && !Uid::effective().is_root() {
        return Err(PrivilegeError::NotRoot(spec.to_owned()));
    }
    Ok(RunAs { uid, gid, groups, name, home, switch })
}

impl RunAs {
    /// The inherited environment with `HOME`, `USER` and `LOGNAME` set to the user's (the
    /// mapping still wins over them: injected names replace inherited ones).
    pub fn adjusted_env(&self, inherited: &[InheritedVar]) -> Vec<InheritedVar> {
        use std::os::unix::ffi::OsStrExt;
        let ours = [
            ("HOME", self.home.as_os_str().as_bytes().to_vec()),
            ("USER", self.name.as_bytes().to_vec()),
            ("LOGNAME", self.name.as_bytes().to_vec()),
        ];
        let mut out: Vec<InheritedVar> =
            inherited.iter().filter(|(k, _)| !ours.iter().any(|(n, _)| k == n)).cloned().collect();
        out.extend(ours.into_iter().map(|(k, v)| (OsString::from(k), Zeroizing::new(v))));
        out
    }

    /// Switches this process for good (groups, then gid, then uid: the other way round the
    /// process would no longer be allowed to change its groups). Used right before `execve`.
    pub fn switch_now(&self) -> nix::Result<()> {
        if !self.switch {
            return Ok(());
        }
        crate::tty_guard::forbid_terminal_injection();
        nix::unistd::setgroups(&self.groups)?;
        nix::unistd::setgid(self.gid)?;
        nix::unistd::setuid(self.uid)?;
        // setuid as root sets all three uids; a way back would defeat the point.
        if nix::unistd::setuid(Uid::from_raw(0)).is_ok() && !self.uid.is_root() {
            return Err(nix::Error::EPERM);
        }
        Ok(())
    }

    /// Whether the user could execute `path`: search permission on every directory above it
    /// and execute permission on the file, from the mode bits (ACLs aside). A supervised child's
    /// command is looked up by vault-run (root) before the fork; without this a `PATH` entry only
    /// root can enter (`/root/.local/bin`) would be chosen and the exec would fail.
    pub fn may_execute(&self, path: &std::path::Path) -> bool {
        use std::os::unix::fs::MetadataExt;
        if !self.switch || self.uid.is_root() {
            return true;
        }
        path.ancestors().filter(|p| !p.as_os_str().is_empty()).all(|p| {
            let Ok(meta) = std::fs::metadata(p) else { return false };
            let mode = meta.mode();
            let bits = if meta.uid() == self.uid.as_raw() {
                mode >> 6
            } else if self.groups.iter().any(|g| g.as_raw() == meta.gid()) || self.gid.as_raw() == meta.gid()
            {
                mode >> 3
            } else {
                mode
            };
            bits & 1 != 0
        })
    }

    /// Makes a supervised child switch between fork and exec. Must be registered before any
    /// `pre_exec` that sets `PR_SET_PDEATHSIG`, which a credential change clears.
    pub fn apply_to(&self, cmd: &mut std::process::Command) {
        use std::os::unix::process::CommandExt;
        if !self.switch {
            return;
        }
        crate::tty_guard::forbid_terminal_injection();
        let groups: Vec<libc::gid_t> = self.groups.iter().map(|g| g.as_raw()).collect();
        let (uid, gid) = (self.uid.as_raw(), self.gid.as_raw());
        // SAFETY: runs between fork and exec; only raw system calls, no allocation (the group
        // list was built before the fork).
        unsafe {
            cmd.pre_exec(move || {
                if libc::setgroups(groups.len(), groups.as_ptr()) < 0
                    || libc::setgid(gid) < 0
                    || libc::setuid(uid) < 0
                {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
}
