//! The child's mount namespace, made by the helper: vault-run's resolver in `/etc/resolv.conf`,
//! a plain `/etc/hosts`, vault-run's own credential files hidden, and the files that configured
//! the run read-only, from a scratch tmpfs over vault-run's own temporary directory (which only
//! the sandbox sees). Each is a read-only bind; the child, in a nested user namespace, can
//! neither unmount nor remount them (the kernel locks them).

use std::path::Path;

use nix::mount::{mount, MsFlags};

use super::plan::Plan;
use super::step::{at, io_at, Failure};

/// Makes the mounts of `plan` (in the helper, inside the new mount namespace).
pub fn make(plan: &Plan) -> Result<(), Failure> {
    // Nothing done here may reach the host's mount namespace.
    at(
        "private mounts",
        mount(None::<&str>, "/", None::<&str>, MsFlags::MS_REC | MsFlags::MS_PRIVATE, None::<&str>),
    )?;
    let scratch = &plan.scratch;
    at(
        "scratch tmpfs",
        mount(
            Some("tmpfs"),
            scratch,
            Some("tmpfs"),
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
            Some("mode=0755,size=1m"),
        ),
    )?;
    let file = |name: &str, text: &str| {
        let p = scratch.join(name);
        io_at("scratch tmpfs", std::fs::write(&p, text)).map(|()| p)
    };
    let resolv = file("resolv.conf", &plan.resolv_conf)?;
    let hosts = file("hosts", &plan.hosts)?;
    let empty = file("empty", "")?;
    let empty_dir = scratch.join("empty.d");
    io_at("scratch tmpfs", std::fs::create_dir(&empty_dir))?;
    // A missing /etc/resolv.conf already means 127.0.0.1 to the C library; a missing
    // /etc/hosts means none.
    for (src, target) in [(&resolv, Path::new("/etc/resolv.conf")), (&hosts, Path::new("/etc/hosts"))] {
        if target.exists() {
            bind_read_only(src, target)?;
        }
    }
    for hidden in &plan.hide {
        let src = if hidden.is_dir() { &empty_dir } else { &empty };
        bind_read_only(src, hidden)?;
    }
    for file in &plan.read_only {
        bind_read_only(file, file)?;
    }
    // The scratch tmpfs stays where it is, in the sandbox only: vault-run adds the child's CA
    // bundle to it later (through a descriptor), at a path the child can read (a bundle held
    // by a host process is not: /proc/PID/fd of a process in another user namespace is closed).
    Ok(())
}

/// Binds `src` over `target`, then makes that bind read-only, keeping the flags the kernel
/// locked on the mount below (nosuid, nodev, noexec, atime: a remount without them is refused
/// in a user namespace).
fn bind_read_only(src: &Path, target: &Path) -> Result<(), Failure> {
    use nix::sys::statvfs::FsFlags;
    let step = format!("mount over {}", target.display());
    at(&step, mount(Some(src), target, None::<&str>, MsFlags::MS_BIND, None::<&str>))?;
    let vfs = at(&step, nix::sys::statvfs::statvfs(target))?;
    let mut flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY;
    for (has, add) in [
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
        (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
    ] {
        if vfs.flags().contains(has) {
            flags |= add;
        }
    }
    at(&step, mount(None::<&str>, target, None::<&str>, flags, None::<&str>))
}
