//! Under `--user`, the child must not type into the terminal it shares with whoever started
//! vault-run (root). `ioctl(TIOCSTI)` pushes bytes into a terminal's input queue: a child
//! dropped to an unprivileged user could queue `rm -rf /` + Enter, which root's shell reads and
//! runs once vault-run exits (the `su`/`runuser` TIOCSTI class of bugs). `TIOCLINUX` can paste
//! the console selection the same way. A seccomp filter refuses both ioctls (`EPERM`) for
//! vault-run and, inherited across fork and exec, for the child and everything it starts.

use std::sync::OnceLock;

/// The audit architecture and the `ioctl` syscall numbers a process of this build can use:
/// its own, and a compat ABI it can reach (`int 0x80`, a 32-bit binary, x32).
#[cfg(target_arch = "x86_64")]
const ARCHES: &[(u32, &[u32])] = &[
    (0xC000_003E, &[16, 0x4000_0000 | 16, 0x4000_0000 | 514]), // x86_64 and x32
    (0x4000_0003, &[54]),                                      // i386
];
#[cfg(target_arch = "aarch64")]
const ARCHES: &[(u32, &[u32])] = &[
    (0xC000_00B7, &[29]), // aarch64
    (0x4000_0028, &[54]), // arm
];
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
const ARCHES: &[(u32, &[u32])] = &[];

fn stmt(code: u32, k: u32) -> libc::sock_filter {
    libc::sock_filter { code: code as u16, jt: 0, jf: 0, k }
}

fn jeq(k: u32, jt: u8, jf: u8) -> libc::sock_filter {
    libc::sock_filter { code: (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16, jt, jf, k }
}

/// The BPF program: for a known architecture's `ioctl`, refuse `TIOCSTI` and `TIOCLINUX`;
/// allow everything else.
fn program() -> Vec<libc::sock_filter> {
    const LOAD: u32 = libc::BPF_LD | libc::BPF_W | libc::BPF_ABS;
    const RET: u32 = libc::BPF_RET | libc::BPF_K;
    // struct seccomp_data: nr at 0, arch at 4, args[1] at 24 (its low 32 bits on these
    // little-endian targets; the kernel reads an ioctl request as a 32-bit unsigned int).
    let mut p = vec![stmt(LOAD, 4)];
    let mut to_check = Vec::new();
    for (arch, numbers) in ARCHES {
        let block = 3 + numbers.len();
        p.push(jeq(*arch, 0, (block - 1) as u8));
        p.push(stmt(LOAD, 0));
        for n in *numbers {
            to_check.push(p.len());
            p.push(jeq(*n, 0, 0));
        }
        p.push(stmt(RET, libc::SECCOMP_RET_ALLOW));
    }
    p.push(stmt(RET, libc::SECCOMP_RET_ALLOW));
    let check = p.len();
    for i in to_check {
        p[i].jt = (check - i - 1) as u8;
    }
    p.push(stmt(LOAD, 24));
    p.push(jeq(libc::TIOCSTI as u32, 2, 0));
    p.push(jeq(libc::TIOCLINUX as u32, 1, 0));
    p.push(stmt(RET, libc::SECCOMP_RET_ALLOW));
    p.push(stmt(RET, libc::SECCOMP_RET_ERRNO | libc::EPERM as u32));
    p
}

/// Installs the filter on every thread of vault-run (once), so that the child, forked or
/// exec'd later, inherits it. Must run while vault-run is still root: without `CAP_SYS_ADMIN`
/// the kernel asks for `no_new_privs`, which would change what the child's set-uid programs do.
/// A failure is logged (when there is a terminal and a shell behind it to protect) and the run
/// goes on.
pub fn forbid_terminal_injection() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        if ARCHES.is_empty() {
            return;
        }
        let mut filter = program();
        let prog = libc::sock_fprog { len: filter.len() as u16, filter: filter.as_mut_ptr() };
        // SAFETY: `prog` points at `filter`, alive for the call; the kernel copies the program.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_SET_MODE_FILTER,
                libc::SECCOMP_FILTER_FLAG_TSYNC,
                &prog as *const libc::sock_fprog,
            )
        };
        let error = std::io::Error::last_os_error();
        // As PID 1 (a container's entrypoint, where root often lacks CAP_SYS_ADMIN) no shell
        // waits behind vault-run to read what the child would type.
        if rc != 0 && std::process::id() != 1 && std::fs::File::open("/dev/tty").is_ok() {
            tracing::warn!(
                %error,
                "--user: cannot stop the child from typing into this terminal (TIOCSTI); run vault-run without a controlling terminal (setsid) or with CAP_SYS_ADMIN"
            );
        }
    });
}
