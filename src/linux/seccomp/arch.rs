//! Architectures: audit arch tokens and syscall name resolution.

use std::collections::HashMap;
use std::sync::OnceLock;

use oci_spec::runtime::Arch;

/// `AUDIT_ARCH_X86_64` (also used by x32 processes).
pub const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
/// `AUDIT_ARCH_I386`.
pub const AUDIT_ARCH_I386: u32 = 0x4000_0003;
/// `AUDIT_ARCH_AARCH64`.
pub const AUDIT_ARCH_AARCH64: u32 = 0xc000_00b7;
/// `__X32_SYSCALL_BIT`: x32 syscall numbers have this bit set.
pub const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// An architecture coop can compile a filter section for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ScmpArch {
    X86_64,
    X86,
    X32,
    Aarch64,
}

impl ScmpArch {
    /// The value the kernel puts in `seccomp_data.arch` for this ABI.
    pub fn audit_arch(self) -> u32 {
        match self {
            ScmpArch::X86_64 | ScmpArch::X32 => AUDIT_ARCH_X86_64,
            ScmpArch::X86 => AUDIT_ARCH_I386,
            ScmpArch::Aarch64 => AUDIT_ARCH_AARCH64,
        }
    }

    /// Whether argument conditions compare 64-bit values (libseccomp's
    /// `ARCH_SIZE_64`). x32 is a 32-bit ABI for libseccomp: only the low
    /// words of its arguments are compared, with values cut to 32 bits.
    pub fn is_64bit(self) -> bool {
        matches!(self, ScmpArch::X86_64 | ScmpArch::Aarch64)
    }

    /// The architecture coop was built for.
    pub fn native() -> ScmpArch {
        #[cfg(target_arch = "x86_64")]
        return ScmpArch::X86_64;
        #[cfg(target_arch = "x86")]
        return ScmpArch::X86;
        #[cfg(target_arch = "aarch64")]
        return ScmpArch::Aarch64;
        #[cfg(not(any(target_arch = "x86_64", target_arch = "x86", target_arch = "aarch64")))]
        compile_error!("coop's seccomp compiler supports x86_64, x86 and aarch64 hosts");
    }

    /// The ABIs a kernel of the native architecture can run.
    pub fn native_family() -> &'static [ScmpArch] {
        match ScmpArch::native() {
            ScmpArch::X86_64 | ScmpArch::X32 | ScmpArch::X86 => {
                &[ScmpArch::X86_64, ScmpArch::X86, ScmpArch::X32]
            }
            ScmpArch::Aarch64 => &[ScmpArch::Aarch64],
        }
    }

    /// Maps an OCI architecture to one coop knows, `None` for the others.
    pub fn from_oci(arch: Arch) -> Option<ScmpArch> {
        match arch {
            Arch::ScmpArchNative => Some(ScmpArch::native()),
            Arch::ScmpArchX86_64 => Some(ScmpArch::X86_64),
            Arch::ScmpArchX86 => Some(ScmpArch::X86),
            Arch::ScmpArchX32 => Some(ScmpArch::X32),
            Arch::ScmpArchAarch64 => Some(ScmpArch::Aarch64),
            _ => None,
        }
    }

    /// Resolves a syscall name to this architecture's number, `None` when
    /// the architecture has no such syscall. x32 numbers include
    /// [`X32_SYSCALL_BIT`].
    pub fn resolve(self, name: &str) -> Option<u32> {
        table(self).get(name).copied()
    }

    /// All syscalls of this architecture, for tests.
    #[cfg(test)]
    pub fn all_syscalls(self) -> Vec<(&'static str, u32)> {
        let mut v: Vec<_> = table(self).iter().map(|(n, v)| (*n, *v)).collect();
        v.sort();
        v
    }
}

/// x86_64 syscalls that have no x32 version (libseccomp's table, from the
/// kernel's `syscall_64.tbl` "64" entries that have no "x32" twin).
const X32_MISSING: &[&str] = &[
    "create_module",
    "epoll_ctl_old",
    "epoll_wait_old",
    "get_kernel_syms",
    "get_thread_area",
    "nfsservctl",
    "query_module",
    "set_thread_area",
    "_sysctl",
    "uselib",
    "vserver",
];

/// Syscalls whose x32 number differs from x86_64's (`syscall_64.tbl`
/// entries 512-547 of ABI "x32"); the bit is added on lookup.
const X32_SPECIFIC: &[(&str, u32)] = &[
    ("rt_sigaction", 512),
    ("rt_sigreturn", 513),
    ("ioctl", 514),
    ("readv", 515),
    ("writev", 516),
    ("recvfrom", 517),
    ("sendmsg", 518),
    ("recvmsg", 519),
    ("execve", 520),
    ("ptrace", 521),
    ("rt_sigpending", 522),
    ("rt_sigtimedwait", 523),
    ("rt_sigqueueinfo", 524),
    ("sigaltstack", 525),
    ("timer_create", 526),
    ("mq_notify", 527),
    ("kexec_load", 528),
    ("waitid", 529),
    ("set_robust_list", 530),
    ("get_robust_list", 531),
    ("vmsplice", 532),
    ("move_pages", 533),
    ("preadv", 534),
    ("pwritev", 535),
    ("rt_tgsigqueueinfo", 536),
    ("recvmmsg", 537),
    ("sendmmsg", 538),
    ("process_vm_readv", 539),
    ("process_vm_writev", 540),
    ("setsockopt", 541),
    ("getsockopt", 542),
    ("io_setup", 543),
    ("io_submit", 544),
    ("execveat", 545),
    ("preadv2", 546),
    ("pwritev2", 547),
];

type Table = HashMap<&'static str, u32>;

fn table(arch: ScmpArch) -> &'static Table {
    static X86_64: OnceLock<Table> = OnceLock::new();
    static X86: OnceLock<Table> = OnceLock::new();
    static X32: OnceLock<Table> = OnceLock::new();
    static AARCH64: OnceLock<Table> = OnceLock::new();
    match arch {
        ScmpArch::X86_64 => X86_64.get_or_init(|| {
            syscalls::x86_64::Sysno::iter()
                .map(|s| (s.name(), s.id() as u32))
                .collect()
        }),
        ScmpArch::X86 => X86.get_or_init(|| {
            syscalls::x86::Sysno::iter()
                .map(|s| (s.name(), s.id() as u32))
                .collect()
        }),
        ScmpArch::Aarch64 => AARCH64.get_or_init(|| {
            syscalls::aarch64::Sysno::iter()
                .map(|s| (s.name(), s.id() as u32))
                .collect()
        }),
        ScmpArch::X32 => X32.get_or_init(|| {
            let mut t: Table = table(ScmpArch::X86_64)
                .iter()
                .filter(|(name, _)| !X32_MISSING.contains(name))
                .map(|(name, nr)| (*name, nr | X32_SYSCALL_BIT))
                .collect();
            for (name, nr) in X32_SPECIFIC {
                t.insert(name, nr | X32_SYSCALL_BIT);
            }
            t
        }),
    }
}

/// How libseccomp rewrites socket and IPC syscalls on x86, where they are
/// also reachable through the multiplexers `socketcall(2)` and `ipc(2)`:
/// returns (multiplexer name, call number passed in argument 0).
pub fn x86_multiplexed(name: &str) -> Option<(&'static str, u64)> {
    const SOCKET: &[&str] = &[
        "socket",
        "bind",
        "connect",
        "listen",
        "accept",
        "getsockname",
        "getpeername",
        "socketpair",
        "send",
        "recv",
        "sendto",
        "recvfrom",
        "shutdown",
        "setsockopt",
        "getsockopt",
        "sendmsg",
        "recvmsg",
        "accept4",
        "recvmmsg",
        "sendmmsg",
    ];
    const IPC: &[(&str, u64)] = &[
        ("semop", 1),
        ("semget", 2),
        ("semctl", 3),
        ("semtimedop", 4),
        ("msgsnd", 11),
        ("msgrcv", 12),
        ("msgget", 13),
        ("msgctl", 14),
        ("shmat", 21),
        ("shmdt", 22),
        ("shmget", 23),
        ("shmctl", 24),
    ];
    if let Some(i) = SOCKET.iter().position(|n| *n == name) {
        return Some(("socketcall", i as u64 + 1));
    }
    IPC.iter()
        .find(|(n, _)| *n == name)
        .map(|(_, call)| ("ipc", *call))
}

/// Whether `name` is a syscall of any architecture coop knows, or one of
/// the x86 multiplexed calls. Names that pass nowhere are ignored, as runc
/// ignores names libseccomp cannot resolve.
pub fn is_known(name: &str) -> bool {
    [
        ScmpArch::X86_64,
        ScmpArch::X86,
        ScmpArch::X32,
        ScmpArch::Aarch64,
    ]
    .iter()
    .any(|a| a.resolve(name).is_some())
        || x86_multiplexed(name).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_names_per_arch() {
        assert_eq!(ScmpArch::X86_64.resolve("read"), Some(0));
        assert_eq!(ScmpArch::X86_64.resolve("getpid"), Some(39));
        assert_eq!(ScmpArch::X86.resolve("getpid"), Some(20));
        assert_eq!(ScmpArch::Aarch64.resolve("getpid"), Some(172));
        assert_eq!(ScmpArch::X32.resolve("getpid"), Some(39 | X32_SYSCALL_BIT));
        assert_eq!(ScmpArch::X32.resolve("execve"), Some(520 | X32_SYSCALL_BIT));
        assert_eq!(ScmpArch::X32.resolve("uselib"), None);
        assert_eq!(ScmpArch::X86_64.resolve("socketcall"), None);
        assert_eq!(ScmpArch::X86.resolve("socketcall"), Some(102));
        assert_eq!(ScmpArch::Aarch64.resolve("open"), None);
        assert_eq!(ScmpArch::X86_64.resolve("no_such_syscall"), None);
        assert!(is_known("send"));
        assert!(!is_known("no_such_syscall"));
    }

    #[test]
    fn multiplexed_calls() {
        assert_eq!(x86_multiplexed("socket"), Some(("socketcall", 1)));
        assert_eq!(x86_multiplexed("sendmmsg"), Some(("socketcall", 20)));
        assert_eq!(x86_multiplexed("shmctl"), Some(("ipc", 24)));
        assert_eq!(x86_multiplexed("read"), None);
    }
}
