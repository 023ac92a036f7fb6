//! The helper that makes the namespaces: vault-run re-executed (`/proc/self/exe`), so that it
//! is a fresh single-threaded process (`unshare(CLONE_NEWUSER)` refuses a threaded one) and
//! needs no other program. [`run`] is vault-run's side, [`main`] the helper's.

use std::ffi::OsString;
use std::net::{TcpListener, UdpSocket};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

use nix::errno::Errno;
use nix::sched::{unshare, CloneFlags};
use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};

use super::enter::Entry;
use super::fdpass;
use super::plan::{Plan, Reply};
use super::step::{at, io_at, io_errno, Failure};
use super::SandboxError;

/// The first argument that makes vault-run the helper.
pub const HELPER_ARG: &str = "__vault-run-sandbox-helper";

/// What the helper made.
pub struct Made {
    /// The namespaces, for each child.
    pub entry: Entry,
    /// The scratch tmpfs, and where the sandbox sees it.
    pub scratch: OwnedFd,
    /// See `scratch`.
    pub scratch_path: PathBuf,
    /// The planned TCP sockets (`None`: optional and not available).
    pub tcp: Vec<Option<TcpListener>>,
    /// The planned UDP sockets.
    pub udp: Vec<Option<UdpSocket>>,
}

/// vault-run's side: starts the helper, gives it `plan`, writes its id maps when root, and
/// takes the namespaces and sockets it sends back.
pub fn run(mut plan: Plan) -> Result<Made, SandboxError> {
    let template = std::env::temp_dir().join("vault-run-sandbox-XXXXXX");
    let scratch = nix::unistd::mkdtemp(&template).map_err(|e| {
        SandboxError::Setup(format!("cannot make a directory in {}: {e}", template.display()))
    })?;
    plan.scratch = scratch.clone();
    let made = talk(&plan);
    if made.is_err() {
        let _ = std::fs::remove_dir(&scratch);
    }
    made
}

fn setup(what: &str, e: impl std::fmt::Display) -> SandboxError {
    SandboxError::Setup(format!("{what}: {e}"))
}

fn talk(plan: &Plan) -> Result<Made, SandboxError> {
    let (ours, theirs) = socketpair(AddressFamily::Unix, SockType::SeqPacket, None, SockFlag::SOCK_CLOEXEC)
        .map_err(|e| setup("cannot make a socketpair", e))?;
    let fd = theirs.as_raw_fd();
    let exe = if Path::new("/proc/self/exe").exists() {
        PathBuf::from("/proc/self/exe")
    } else {
        std::env::current_exe().map_err(|e| setup("cannot find vault-run's own executable", e))?
    };
    let mut cmd = Command::new(exe);
    cmd.arg0("vault-run-sandbox")
        .arg(HELPER_ARG)
        .arg(fd.to_string())
        .env_clear()
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    // SAFETY: between fork and exec; fcntl is async-signal-safe and allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
            if libc::fcntl(fd, libc::F_SETFD, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().map_err(|e| setup("cannot start the namespace helper", e))?;
    drop(theirs);
    let ended = |child: &mut std::process::Child| {
        let status = child.wait().map(|s| s.to_string()).unwrap_or_default();
        setup("the namespace helper ended early", status)
    };
    let json = serde_json::to_vec(plan).map_err(|e| setup("plan", e))?;
    fdpass::send(&ours, &json, &[]).map_err(|e| setup("cannot talk to the namespace helper", e))?;
    loop {
        let (data, fds) = fdpass::recv(&ours).map_err(|e| setup("cannot talk to the namespace helper", e))?;
        if data.is_empty() {
            return Err(ended(&mut child));
        }
        let reply: Reply = serde_json::from_slice(&data).map_err(|e| setup("the helper's answer", e))?;
        match reply {
            Reply::MapMe => {
                write_identity_maps(child.id()).map_err(|e| setup("cannot write the helper's id maps", e))?;
                fdpass::send(&ours, b"go", &[])
                    .map_err(|e| setup("cannot talk to the namespace helper", e))?;
            }
            Reply::Failed { step, errno } => {
                let _ = child.wait();
                return Err(classify(&step, Errno::from_raw(errno)));
            }
            Reply::Ready { direct, tcp, udp } => {
                let _ = child.wait();
                if direct {
                    tracing::info!("sandbox: no user namespace here; as root, the child enters the network and mount namespaces directly and gives up every capability");
                }
                return assemble(fds, direct, &tcp, &udp, &plan.scratch)
                    .ok_or_else(|| setup("the helper's answer", "descriptors missing"));
            }
        }
    }
}

fn assemble(
    fds: Vec<OwnedFd>,
    direct: bool,
    tcp: &[bool],
    udp: &[bool],
    scratch_path: &Path,
) -> Option<Made> {
    let mut fds = fds.into_iter();
    let entry = if direct {
        Entry::direct(fds.next()?, fds.next()?)?
    } else {
        Entry::nested(fds.next()?, fds.next()?, fds.next()?, fds.next()?)?
    };
    let scratch = fds.next()?;
    let mut take = |present: bool| present.then(|| fds.next()).flatten();
    let tcp: Vec<Option<TcpListener>> = tcp.iter().map(|&b| take(b).map(TcpListener::from)).collect();
    let udp: Vec<Option<UdpSocket>> = udp.iter().map(|&b| take(b).map(UdpSocket::from)).collect();
    Some(Made { entry, scratch, scratch_path: scratch_path.to_owned(), tcp, udp })
}

/// Every id the caller's own namespace has, each to itself (`kind`: `uid_map` or `gid_map`):
/// root's child keeps every user it may switch to (`--user`). In the initial namespace that is
/// `0 0 4294967295`; in a container's user namespace, only the ranges it was given.
fn identity(kind: &str) -> std::io::Result<String> {
    let own = std::fs::read_to_string(format!("/proc/self/{kind}"))?;
    Ok(own
        .lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            let (inside, _outside, count) = (it.next()?, it.next()?, it.next()?);
            Some(format!("{inside} {inside} {count}\n"))
        })
        .collect())
}

/// Writes `pid`'s id maps: [`identity`] of the caller's.
fn write_identity_maps(pid: u32) -> std::io::Result<()> {
    for kind in ["uid_map", "gid_map"] {
        std::fs::write(format!("/proc/{pid}/{kind}"), identity(kind)?)?;
    }
    Ok(())
}

/// The one-line refusal, or a setup error, for a failed step.
fn classify(step: &str, errno: Errno) -> SandboxError {
    let refused = matches!(
        errno,
        Errno::EPERM | Errno::EACCES | Errno::ENOSPC | Errno::EINVAL | Errno::ENOSYS | Errno::EUSERS
    );
    if !refused {
        return SandboxError::Setup(format!("{step}: {}", errno.desc()));
    }
    let read = |p: &str| std::fs::read_to_string(p).ok().map(|s| s.trim().to_owned());
    let mut why = Vec::new();
    if read("/proc/sys/user/max_user_namespaces").as_deref() == Some("0") {
        why.push("user.max_user_namespaces = 0");
    }
    if read("/proc/sys/kernel/unprivileged_userns_clone").as_deref() == Some("0") {
        why.push("kernel.unprivileged_userns_clone = 0");
    }
    if read("/proc/sys/kernel/apparmor_restrict_unprivileged_userns").as_deref() == Some("1") {
        why.push("kernel.apparmor_restrict_unprivileged_userns = 1");
    }
    let why = if why.is_empty() { String::new() } else { format!("; {}", why.join(", ")) };
    SandboxError::Refused(format!(
        "--sandbox: the kernel refused the {step} ({}{why}); allow user namespaces (sysctl user.max_user_namespaces=15000, kernel.unprivileged_userns_clone=1, or on Ubuntu kernel.apparmor_restrict_unprivileged_userns=0) or run vault-run as root / with CAP_SYS_ADMIN (docker run --cap-add SYS_ADMIN), or drop --sandbox",
        errno.desc()
    ))
}

/// The helper's side: `vault-run __vault-run-sandbox-helper FD`.
pub fn main(args: &[OsString]) -> ExitCode {
    let Some(fd) = args.first().and_then(|a| a.to_str()).and_then(|a| a.parse::<RawFd>().ok()) else {
        eprintln!("vault-run: {HELPER_ARG} is vault-run's own helper, not a command");
        return ExitCode::from(crate::exit::USAGE);
    };
    // SAFETY: vault-run passed this descriptor, open and ours alone, and its number.
    let sock = unsafe { OwnedFd::from_raw_fd(fd) };
    let Ok((data, _)) = fdpass::recv(&sock) else { return ExitCode::from(crate::exit::SOFTWARE) };
    let Ok(plan) = serde_json::from_slice::<Plan>(&data) else {
        return ExitCode::from(crate::exit::SOFTWARE);
    };
    let (reply, fds) = match make(&plan, &sock) {
        Ok(Sockets { direct, fds, tcp, udp }) => (Reply::Ready { direct, tcp, udp }, fds),
        Err(f) => (Reply::Failed { step: f.step, errno: f.errno as i32 }, Vec::new()),
    };
    let raw: Vec<RawFd> = fds.iter().map(AsRawFd::as_raw_fd).collect();
    let json = serde_json::to_vec(&reply).unwrap_or_default();
    match fdpass::send(&sock, &json, &raw) {
        Ok(()) => ExitCode::SUCCESS,
        Err(_) => ExitCode::from(crate::exit::SOFTWARE),
    }
}

/// What the helper sends back (see [`Reply::Ready`]).
struct Sockets {
    direct: bool,
    fds: Vec<OwnedFd>,
    tcp: Vec<bool>,
    udp: Vec<bool>,
}

fn make(plan: &Plan, sock: &OwnedFd) -> Result<Sockets, Failure> {
    let direct = match unshare(CloneFlags::CLONE_NEWUSER) {
        Ok(()) => false,
        // Root can make the other namespaces without one; its child then drops every capability.
        Err(_) if plan.parent_maps => true,
        Err(e) => return at("user namespace", Err(e)),
    };
    if !direct && plan.parent_maps {
        let asked = serde_json::to_vec(&Reply::MapMe).unwrap_or_default();
        io_at("user namespace id map", fdpass::send(sock, &asked, &[]))?;
        let (go, _) = io_at("user namespace id map", fdpass::recv(sock))?;
        if go != b"go" {
            return Err(Failure { step: "user namespace id map".into(), errno: Errno::EPERM });
        }
    } else if !direct {
        io_at("user namespace id map", self_maps(Path::new("/proc/self"), plan.uid, plan.gid))?;
    }
    at("network and mount namespaces", unshare(CloneFlags::CLONE_NEWNET | CloneFlags::CLONE_NEWNS))?;
    at("loopback interface", loopback_up())?;
    let mut fds: Vec<OwnedFd> = Vec::new();
    let mut tcp = Vec::new();
    let mut udp = Vec::new();
    let mut sockets = Vec::new();
    for s in &plan.tcp {
        match TcpListener::bind(s.addr) {
            Ok(l) => {
                sockets.push(OwnedFd::from(l));
                tcp.push(true);
            }
            Err(e) if s.optional && matches!(io_errno(&e), Errno::EADDRNOTAVAIL | Errno::EAFNOSUPPORT) => {
                tcp.push(false)
            }
            Err(e) => return io_at(&format!("listening socket {}", s.addr), Err(e)),
        }
    }
    for s in &plan.udp {
        match UdpSocket::bind(s.addr) {
            Ok(u) => {
                sockets.push(OwnedFd::from(u));
                udp.push(true);
            }
            Err(e) if s.optional => {
                let _ = e;
                udp.push(false)
            }
            Err(e) => return io_at(&format!("resolver socket {}", s.addr), Err(e)),
        }
    }
    super::mounts::make(plan)?;
    let nested = if direct { None } else { Some(nested(plan)?) };
    let kinds: &[&str] = if direct { &["mnt", "net"] } else { &["user", "mnt", "net"] };
    for ns in kinds {
        let f = io_at("namespace descriptor", std::fs::File::open(format!("/proc/self/ns/{ns}")))?;
        fds.push(OwnedFd::from(f));
    }
    fds.extend(nested);
    let scratch = io_at("scratch tmpfs", std::fs::File::open(&plan.scratch))?;
    fds.push(OwnedFd::from(scratch));
    fds.extend(sockets);
    Ok(Sockets { direct, fds, tcp, udp })
}

/// Maps only the caller's own ids to themselves: all an unprivileged process may map.
fn self_maps(proc: &Path, uid: u32, gid: u32) -> std::io::Result<()> {
    // Writing a gid map without privilege needs setgroups(2) denied first (a nested namespace
    // inherits the denial).
    match std::fs::write(proc.join("setgroups"), "deny") {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::EPERM) => {}
        Err(e) => return Err(e),
    }
    std::fs::write(proc.join("uid_map"), format!("{uid} {uid} 1\n"))?;
    std::fs::write(proc.join("gid_map"), format!("{gid} {gid} 1\n"))
}

fn loopback_up() -> Result<(), Errno> {
    // SAFETY: a plain socket; the ifreq is zeroed, named "lo" and passed by valid pointer.
    unsafe {
        let s = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        if s < 0 {
            return Err(Errno::last());
        }
        let s = OwnedFd::from_raw_fd(s);
        let mut ifr: libc::ifreq = std::mem::zeroed();
        for (d, c) in ifr.ifr_name.iter_mut().zip(b"lo") {
            *d = *c as libc::c_char;
        }
        if libc::ioctl(s.as_raw_fd(), libc::SIOCGIFFLAGS, &mut ifr) < 0 {
            return Err(Errno::last());
        }
        ifr.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
        if libc::ioctl(s.as_raw_fd(), libc::SIOCSIFFLAGS, &ifr) < 0 {
            return Err(Errno::last());
        }
    }
    Ok(())
}

/// The nested user namespace the child ends in: a child process makes it, the helper writes
/// its id maps (as the owner of the outer one) and keeps a descriptor to it.
fn nested(plan: &Plan) -> Result<OwnedFd, Failure> {
    let step = "nested user namespace";
    let (r1, w1) = at(step, nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC))?;
    let (r2, w2) = at(step, nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC))?;
    // SAFETY: the helper is single-threaded; the child makes only raw system calls and exits.
    match at(step, unsafe { nix::unistd::fork() })? {
        nix::unistd::ForkResult::Child => unsafe {
            let errno: i32 =
                if libc::unshare(libc::CLONE_NEWUSER) < 0 { *libc::__errno_location() } else { 0 };
            libc::write(w1.as_raw_fd(), (&errno as *const i32).cast(), 4);
            let mut b = [0u8; 1];
            libc::read(r2.as_raw_fd(), b.as_mut_ptr().cast(), 1);
            libc::_exit(0);
        },
        nix::unistd::ForkResult::Parent { child } => {
            drop(w1);
            drop(r2);
            let mut got = [0u8; 4];
            let n = nix::unistd::read(&r1, &mut got).unwrap_or(0);
            let errno = if n == 4 { i32::from_ne_bytes(got) } else { libc::ECHILD };
            let result = if errno != 0 {
                Err(Failure { step: step.into(), errno: Errno::from_raw(errno) })
            } else {
                let proc = PathBuf::from(format!("/proc/{child}"));
                let maps = if plan.parent_maps {
                    write_identity_maps(child.as_raw() as u32)
                } else {
                    std::fs::write(proc.join("uid_map"), format!("{0} {0} 1\n", plan.uid))
                        .and_then(|()| std::fs::write(proc.join("gid_map"), format!("{0} {0} 1\n", plan.gid)))
                };
                io_at("nested user namespace id map", maps)
                    .and_then(|()| io_at(step, std::fs::File::open(proc.join("ns/user"))).map(OwnedFd::from))
            };
            let _ = nix::unistd::write(&w2, b"x");
            let _ = nix::sys::wait::waitpid(child, None);
            result
        }
    }
}
