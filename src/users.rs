//! The user and group databases, read from `/etc/passwd` and `/etc/group` directly, as runc,
//! gosu and su-exec do: no NSS, so the static binary resolves `--user NAME` in a `scratch` or
//! distroless image exactly as it does on the host (glibc's static `getpwnam` would have to
//! `dlopen` NSS modules the image does not have). LDAP or systemd-homed users are not seen;
//! a numeric uid works for them, and needs no file at all.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

/// One `/etc/passwd` entry: the fields `--user` needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Passwd {
    /// Login name.
    pub name: String,
    /// User id.
    pub uid: u32,
    /// Primary group id.
    pub gid: u32,
    /// Home directory.
    pub home: PathBuf,
}

/// One `/etc/group` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupEntry {
    /// Group name.
    pub name: String,
    /// Group id.
    pub gid: u32,
    /// Users listed as members (the fourth field).
    pub members: Vec<String>,
}

/// The two files, named once (tests point them elsewhere).
#[derive(Debug, Clone)]
pub struct Databases {
    passwd: PathBuf,
    group: PathBuf,
}

impl Default for Databases {
    fn default() -> Self {
        Databases { passwd: PathBuf::from("/etc/passwd"), group: PathBuf::from("/etc/group") }
    }
}

/// A database file that exists but cannot be read.
#[derive(Debug, Clone, thiserror::Error)]
#[error("cannot read {path}: {message}")]
pub struct LookupError {
    /// The file.
    pub path: String,
    /// The reason.
    pub message: String,
}

impl Databases {
    /// The files under another root (`root/etc/passwd`, `root/etc/group`).
    #[cfg(test)]
    fn under(root: &Path) -> Databases {
        Databases { passwd: root.join("etc/passwd"), group: root.join("etc/group") }
    }

    /// The first passwd entry `pick` accepts.
    pub fn user(&self, pick: impl Fn(&Passwd) -> bool) -> Result<Option<Passwd>, LookupError> {
        let mut found = None;
        scan(&self.passwd, |line| {
            found = parse_passwd(line).filter(&pick);
            found.is_some()
        })?;
        Ok(found)
    }

    /// The first group entry `pick` accepts.
    pub fn group(&self, pick: impl Fn(&GroupEntry) -> bool) -> Result<Option<GroupEntry>, LookupError> {
        let mut found = None;
        scan(&self.group, |line| {
            found = parse_group(line).filter(&pick);
            found.is_some()
        })?;
        Ok(found)
    }

    /// The user's groups as `initgroups` would set them: `gid` first, then every group that
    /// lists `user` as a member, each once.
    pub fn groups_of(&self, user: &str, gid: u32) -> Result<Vec<u32>, LookupError> {
        let mut out = vec![gid];
        scan(&self.group, |line| {
            if let Some(g) = parse_group(line) {
                if g.members.iter().any(|m| m == user) && !out.contains(&g.gid) {
                    out.push(g.gid);
                }
            }
            false
        })?;
        Ok(out)
    }
}

/// Feeds each line to `stop` until it says so. A missing file is an empty database (an image
/// without `/etc/passwd` still takes numeric ids); an unreadable one is an error.
fn scan(path: &Path, mut stop: impl FnMut(&str) -> bool) -> Result<(), LookupError> {
    let error = |e: std::io::Error| LookupError { path: path.display().to_string(), message: e.to_string() };
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(error(e)),
    };
    // Lines that are not UTF-8 cannot name a user we were asked for; they are skipped.
    for line in BufReader::new(file).split(b'\n') {
        let line = line.map_err(error)?;
        if let Ok(text) = std::str::from_utf8(&line) {
            if stop(text.trim_end_matches('\r')) {
                break;
            }
        }
    }
    Ok(())
}

/// Comments, blank lines and NIS compat entries (`+`, `-`) are no one.
fn fields(line: &str) -> Option<std::str::Split<'_, char>> {
    let line = line.trim_end();
    if line.is_empty() || line.starts_with(['#', '+', '-']) {
        return None;
    }
    Some(line.split(':'))
}

/// `name:password:uid:gid:gecos:home:shell`; a line with a bad number is skipped.
fn parse_passwd(line: &str) -> Option<Passwd> {
    let mut f = fields(line)?;
    let name = f.next().filter(|n| !n.is_empty())?.to_owned();
    let _password = f.next()?;
    let uid = f.next()?.parse().ok()?;
    let gid = f.next()?.parse().ok()?;
    let _gecos = f.next();
    let home = f.next().filter(|h| !h.is_empty()).unwrap_or("/");
    Some(Passwd { name, uid, gid, home: PathBuf::from(home) })
}

/// `name:password:gid:member,member`.
fn parse_group(line: &str) -> Option<GroupEntry> {
    let mut f = fields(line)?;
    let name = f.next().filter(|n| !n.is_empty())?.to_owned();
    let _password = f.next()?;
    let gid = f.next()?.parse().ok()?;
    let members = f
        .next()
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|m| !m.is_empty())
        .map(str::to_owned)
        .collect();
    Some(GroupEntry { name, gid, members })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dbs(passwd: &str, group: &str) -> (tempfile::TempDir, Databases) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("etc")).unwrap();
        std::fs::write(dir.path().join("etc/passwd"), passwd).unwrap();
        std::fs::write(dir.path().join("etc/group"), group).unwrap();
        let d = Databases::under(dir.path());
        (dir, d)
    }

    #[test]
    fn finds_users_by_name_and_uid_skipping_junk() {
        let (_d, db) = dbs(
            "# comment\n\n+nis\nbroken:x:notanumber:1::/x:/bin/sh\nroot:x:0:0:root:/root:/bin/sh\r\napp:x:1000:1001::/home/app:/bin/sh\nnohome:x:7:7\n",
            "",
        );
        let app = db.user(|p| p.name == "app").unwrap().unwrap();
        assert_eq!((app.uid, app.gid, app.home.to_str()), (1000, 1001, Some("/home/app")));
        assert_eq!(db.user(|p| p.uid == 0).unwrap().unwrap().home, PathBuf::from("/root"));
        assert_eq!(db.user(|p| p.name == "nohome").unwrap().unwrap().home, PathBuf::from("/"));
        assert_eq!(db.user(|p| p.name == "broken").unwrap(), None);
        assert_eq!(db.user(|p| p.name == "+nis").unwrap(), None);
    }

    #[test]
    fn groups_of_lists_the_primary_group_first_and_each_membership_once() {
        let (_d, db) = dbs("", "app:x:1001:\nwheel:x:10:root,app\naudio:x:29: app , other\ndup:x:10:app\n");
        assert_eq!(db.groups_of("app", 1001).unwrap(), vec![1001, 10, 29]);
        assert_eq!(db.groups_of("nobody", 65534).unwrap(), vec![65534]);
        assert_eq!(db.group(|g| g.name == "audio").unwrap().unwrap().gid, 29);
    }

    #[test]
    fn missing_files_are_empty_databases() {
        let dir = tempfile::tempdir().unwrap();
        let db = Databases::under(dir.path());
        assert_eq!(db.user(|_| true).unwrap(), None);
        assert_eq!(db.groups_of("x", 5).unwrap(), vec![5]);
    }
}
