//! Finding the mapping file the way git finds `.git`: `vault-run.toml` in the working directory,
//! then in each parent.
//!
//! The walk stops, after looking in it, at the first of: the filesystem root, the user's home
//! directory (`$HOME`), or the root of the file system the working directory is on (a parent on
//! another device is a mount boundary). A file above home or across a mount is usually someone
//! else's (another user's checkout, the host's root seen from a container), and a mapping picked
//! up from there would fetch secrets nobody asked for. For the same reason a file found this way
//! that belongs to another user (not you, not root) is refused: anyone can create
//! `/tmp/vault-run.toml` for whoever runs vault-run in `/tmp/something`.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// The mapping file's name.
pub const FILE_NAME: &str = "vault-run.toml";

/// Where the search looked, for the message when nothing was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Searched {
    /// The first directory looked in (the working directory).
    pub from: PathBuf,
    /// The last directory looked in.
    pub to: PathBuf,
}

/// The mapping file for `cwd`, or where the search looked.
pub fn find(cwd: &Path, home: Option<&Path>) -> Result<PathBuf, Searched> {
    let home = home.and_then(|h| h.canonicalize().ok());
    let start_dev = std::fs::metadata(cwd).ok().map(|m| m.dev());
    let mut last = cwd.to_owned();
    for dir in cwd.ancestors() {
        let meta = std::fs::metadata(dir).ok();
        if dir != cwd && meta.as_ref().map(MetadataExt::dev) != start_dev {
            break;
        }
        last = dir.to_owned();
        let candidate = dir.join(FILE_NAME);
        if let Ok(meta) = std::fs::metadata(&candidate) {
            // Whose it is, is checked on the opened file (app::load), not on this path.
            if meta.is_file() {
                return Ok(candidate);
            }
        }
        let canonical = dir.canonicalize().ok();
        if home.is_some() && canonical == home {
            break;
        }
    }
    Err(Searched { from: cwd.to_owned(), to: last })
}

impl Searched {
    /// `./vault-run.toml` or `vault-run.toml in /a/b and each parent up to /a`.
    pub fn describe(&self) -> String {
        if self.from == self.to {
            format!("{FILE_NAME} in {}", self.from.display())
        } else {
            format!("{FILE_NAME} in {} and each parent up to {}", self.from.display(), self.to.display())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_in_a_parent_and_stops_at_home() {
        let root = tempfile::tempdir().unwrap();
        let home = root.path().join("home");
        let deep = home.join("a/b/c");
        std::fs::create_dir_all(&deep).unwrap();
        assert!(find(&deep, Some(&home)).is_err());
        std::fs::write(home.join("a").join(FILE_NAME), "").unwrap();
        assert_eq!(find(&deep, Some(&home)).unwrap(), home.join("a").join(FILE_NAME));
        // A file above home is not used.
        std::fs::remove_file(home.join("a").join(FILE_NAME)).unwrap();
        std::fs::write(root.path().join(FILE_NAME), "").unwrap();
        let e = find(&deep, Some(&home)).unwrap_err();
        assert_eq!(e.to, home);
    }
}
