//! coop's seccomp BPF compiler: turns `linux.seccomp` of an OCI runtime spec
//! into a classic BPF program, installs it, and hands the notification
//! listener to a seccomp agent.
//!
//! The filter behaves like the one runc builds with libseccomp:
//!
//! * Architectures: the native one is always included, plus the listed ones
//!   of the native family (x86_64 hosts: x86_64, x86, x32; aarch64 hosts:
//!   aarch64). Listed architectures a kernel of this family can never report
//!   (e.g. `SCMP_ARCH_S390X` on x86_64, or `SCMP_ARCH_ARM`, which coop has no
//!   syscall table for) are skipped with a warning: calls from them get the
//!   bad-arch action, which is `SCMP_ACT_KILL` (kill thread) as in
//!   libseccomp. On x86_64 without x32 listed, x32 calls (`nr >= 0x40000000`)
//!   also get the bad-arch action, except `nr == -1`.
//! * A syscall name an architecture does not have is skipped for that
//!   architecture; a name no architecture has is ignored (runc logs and
//!   ignores names libseccomp does not know). On x86 the socket and IPC
//!   calls are also matched through `socketcall(2)`/`ipc(2)`, argument 0
//!   holding the call number, as libseccomp does.
//! * Rules with the default action are skipped (as runc does). `errnoRet`
//!   defaults to `EPERM` for `SCMP_ACT_ERRNO` and `SCMP_ACT_TRACE`; only its
//!   low 16 bits are used. `SCMP_ACT_KILL` is `SCMP_ACT_KILL_THREAD`.
//! * Several conditions on the same argument in one rule are split into one
//!   rule per condition (an OR), as runc does; otherwise all conditions of a
//!   rule must hold. How overlapping rules resolve: see [`rules`].
//!
//! `SCMP_ACT_NOTIFY` is refused as the default action and for the syscalls
//! in [`NOTIFY_FORBIDDEN`], which coop's init may still call after
//! installing the filter and before the agent holds the listener (runc
//! refuses only `write`).
//!
//! Not done (yet): runc's `-ENOSYS` stub for syscalls newer than the
//! profile, and `SCMP_ARCH_ARM` on aarch64 hosts.

mod arch;
#[cfg_attr(not(test), allow(dead_code))] // the interpreter is for tests
mod bpf;
mod compile;
mod rules;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::io::IoSlice;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixStream;

use anyhow::{anyhow, bail, Context, Result};
use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
use oci_spec::runtime::{
    LinuxSeccomp, LinuxSeccompAction, LinuxSeccompFilterFlag, LinuxSeccompOperator,
};

pub use arch::ScmpArch;
use compile::{Program, Section};
use rules::{Cond, Op, SyscallRules};

/// Syscalls that may not have the `SCMP_ACT_NOTIFY` action: coop itself may
/// call them after the filter is installed and before the seccomp agent has
/// the listener, which would hang the container start.
pub const NOTIFY_FORBIDDEN: &[&str] = &[
    "write",
    "close",
    "exit",
    "exit_group",
    "futex",
    "execve",
    "execveat",
];

const SECCOMP_RET_KILL_PROCESS: u32 = 0x8000_0000;
const SECCOMP_RET_KILL_THREAD: u32 = 0x0000_0000;
const SECCOMP_RET_TRAP: u32 = 0x0003_0000;
const SECCOMP_RET_ERRNO: u32 = 0x0005_0000;
const SECCOMP_RET_USER_NOTIF: u32 = 0x7fc0_0000;
const SECCOMP_RET_TRACE: u32 = 0x7ff0_0000;
const SECCOMP_RET_LOG: u32 = 0x7ffc_0000;
const SECCOMP_RET_ALLOW: u32 = 0x7fff_0000;

const SECCOMP_SET_MODE_FILTER: libc::c_uint = 1;
const SECCOMP_FILTER_FLAG_TSYNC: libc::c_uint = 1 << 0;
const SECCOMP_FILTER_FLAG_LOG: libc::c_uint = 1 << 1;
const SECCOMP_FILTER_FLAG_SPEC_ALLOW: libc::c_uint = 1 << 2;
const SECCOMP_FILTER_FLAG_NEW_LISTENER: libc::c_uint = 1 << 3;
const SECCOMP_FILTER_FLAG_TSYNC_ESRCH: libc::c_uint = 1 << 4;
const SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV: libc::c_uint = 1 << 5;

/// A compiled filter, ready to install.
#[derive(Clone)]
pub struct Filter {
    instructions: Vec<libc::sock_filter>,
    flags: libc::c_uint,
    has_notify: bool,
}

impl std::fmt::Debug for Filter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Filter")
            .field("instructions", &self.instructions.len())
            .field("flags", &self.flags)
            .field("has_notify", &self.has_notify)
            .finish()
    }
}

impl Filter {
    /// The BPF program.
    pub fn instructions(&self) -> &[libc::sock_filter] {
        &self.instructions
    }

    /// Whether some rule has the `SCMP_ACT_NOTIFY` action.
    pub fn has_notify(&self) -> bool {
        self.has_notify
    }

    /// The `seccomp(2)` flags [`install`] passes.
    pub fn flags(&self) -> u32 {
        self.flags
    }
}

/// The `SECCOMP_RET_*` value of an action.
fn action_value(action: LinuxSeccompAction, errno_ret: Option<u32>) -> u32 {
    let data = errno_ret.unwrap_or(libc::EPERM as u32) & 0xffff;
    match action {
        LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => {
            SECCOMP_RET_KILL_THREAD
        }
        LinuxSeccompAction::ScmpActKillProcess => SECCOMP_RET_KILL_PROCESS,
        LinuxSeccompAction::ScmpActTrap => SECCOMP_RET_TRAP,
        LinuxSeccompAction::ScmpActErrno => SECCOMP_RET_ERRNO | data,
        LinuxSeccompAction::ScmpActNotify => SECCOMP_RET_USER_NOTIF,
        LinuxSeccompAction::ScmpActTrace => SECCOMP_RET_TRACE | data,
        LinuxSeccompAction::ScmpActLog => SECCOMP_RET_LOG,
        LinuxSeccompAction::ScmpActAllow => SECCOMP_RET_ALLOW,
    }
}

fn op_of(op: LinuxSeccompOperator) -> Op {
    match op {
        LinuxSeccompOperator::ScmpCmpNe => Op::Ne,
        LinuxSeccompOperator::ScmpCmpLt => Op::Lt,
        LinuxSeccompOperator::ScmpCmpLe => Op::Le,
        LinuxSeccompOperator::ScmpCmpEq => Op::Eq,
        LinuxSeccompOperator::ScmpCmpGe => Op::Ge,
        LinuxSeccompOperator::ScmpCmpGt => Op::Gt,
        LinuxSeccompOperator::ScmpCmpMaskedEq => Op::MaskedEq,
    }
}

/// One argument condition as written in the profile.
#[derive(Clone, Copy)]
struct RawCond {
    arg: u8,
    op: Op,
    value: u64,
    value_two: u64,
}

/// The architectures to compile for, in section order.
fn target_arches(seccomp: &LinuxSeccomp) -> Vec<ScmpArch> {
    let family = ScmpArch::native_family();
    let mut arches = vec![ScmpArch::native()];
    for a in seccomp.architectures().iter().flatten() {
        match ScmpArch::from_oci(*a) {
            Some(s) if family.contains(&s) => {
                if !arches.contains(&s) {
                    arches.push(s);
                }
            }
            _ => log::warn!(
                "linux.seccomp.architectures: {a} is not supported on this host, skipped \
                 (its syscalls get the bad-arch action, kill)"
            ),
        }
    }
    arches
}

/// Per-architecture rule sets under construction.
struct Builder {
    arches: Vec<ScmpArch>,
    rules: BTreeMap<ScmpArch, BTreeMap<u32, SyscallRules>>,
}

impl Builder {
    fn add_nr(&mut self, arch: ScmpArch, nr: u32, raw: &[RawCond], action: u32) -> Result<()> {
        let wide = arch.is_64bit();
        let conds: Vec<Cond> = raw
            .iter()
            .filter_map(|c| Cond::new(c.arg, c.op, c.value, c.value_two, wide))
            .collect();
        let map = self.rules.entry(arch).or_default();
        match map.get_mut(&nr) {
            Some(existing) => existing.add(conds, action),
            None => {
                map.insert(nr, SyscallRules::new(conds, action));
                Ok(())
            }
        }
    }

    /// Adds a rule for `name` on every architecture that has it.
    fn add(&mut self, name: &str, raw: &[RawCond], action: u32) -> Result<()> {
        for arch in self.arches.clone() {
            if arch == ScmpArch::X86 {
                if let Some((mux, call)) = arch::x86_multiplexed(name) {
                    // libseccomp: the multiplexed form replaces any
                    // condition on argument 0 with the call number.
                    let mut muxed: Vec<RawCond> =
                        raw.iter().copied().filter(|c| c.arg != 0).collect();
                    muxed.push(RawCond {
                        arg: 0,
                        op: Op::Eq,
                        value: call,
                        value_two: 0,
                    });
                    if let Some(nr) = arch.resolve(mux) {
                        self.add_nr(arch, nr, &muxed, action)?;
                    }
                }
            }
            if let Some(nr) = arch.resolve(name) {
                self.add_nr(arch, nr, raw, action)?;
            }
        }
        Ok(())
    }
}

/// Compile `linux.seccomp` for the host's native architecture family (see
/// the module documentation for the rules followed).
pub fn compile(seccomp: &LinuxSeccomp) -> Result<Filter> {
    let default_action = action_value(seccomp.default_action(), seccomp.default_errno_ret());
    if seccomp.default_action() == LinuxSeccompAction::ScmpActNotify {
        bail!("linux.seccomp.defaultAction: SCMP_ACT_NOTIFY cannot be the default action");
    }
    let mut flags = 0;
    for f in seccomp.flags().iter().flatten() {
        flags |= match f {
            LinuxSeccompFilterFlag::SeccompFilterFlagLog => SECCOMP_FILTER_FLAG_LOG,
            LinuxSeccompFilterFlag::SeccompFilterFlagTsync => SECCOMP_FILTER_FLAG_TSYNC,
            LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => SECCOMP_FILTER_FLAG_SPEC_ALLOW,
            LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv => {
                SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
            }
        };
    }
    let arches = target_arches(seccomp);
    let mut b = Builder {
        arches: arches.clone(),
        rules: BTreeMap::new(),
    };
    let mut has_notify = false;
    for (i, sc) in seccomp.syscalls().iter().flatten().enumerate() {
        let action = action_value(sc.action(), sc.errno_ret());
        if action == default_action {
            continue;
        }
        if sc.action() == LinuxSeccompAction::ScmpActNotify {
            if let Some(n) = sc
                .names()
                .iter()
                .find(|n| NOTIFY_FORBIDDEN.contains(&n.as_str()))
            {
                bail!(
                    "linux.seccomp.syscalls[{i}].action: SCMP_ACT_NOTIFY cannot be used for \
                     {n:?}, coop needs it to start the container"
                );
            }
        }
        let mut raw = Vec::new();
        let mut seen = [0u8; 6];
        for (j, a) in sc.args().iter().flatten().enumerate() {
            if a.index() >= 6 {
                bail!(
                    "linux.seccomp.syscalls[{i}].args[{j}].index: {} is out of range (0-5)",
                    a.index()
                );
            }
            seen[a.index()] += 1;
            raw.push(RawCond {
                arg: a.index() as u8,
                op: op_of(a.op()),
                value: a.value(),
                value_two: a.value_two().unwrap_or(0),
            });
        }
        // runc: several conditions on one argument become separate rules.
        let sets: Vec<Vec<RawCond>> = if seen.iter().any(|&n| n > 1) {
            raw.iter().map(|c| vec![*c]).collect()
        } else {
            vec![raw]
        };
        for name in sc.names() {
            if name.is_empty() {
                bail!("linux.seccomp.syscalls[{i}].names: empty syscall name");
            }
            if !arch::is_known(name) {
                log::debug!("linux.seccomp.syscalls[{i}]: unknown syscall {name:?} ignored");
                continue;
            }
            for set in &sets {
                b.add(name, set, action).with_context(|| {
                    format!("linux.seccomp.syscalls[{i}]: cannot add the rule for {name:?}")
                })?;
            }
            has_notify |= sc.action() == LinuxSeccompAction::ScmpActNotify;
        }
    }
    let has_x32 = arches.contains(&ScmpArch::X32);
    let mut sections: Vec<Section> = Vec::new();
    for arch in &arches {
        let syscalls = b.rules.remove(arch).unwrap_or_default();
        if *arch == ScmpArch::X32 {
            // x32 shares AUDIT_ARCH_X86_64: its numbers join that section.
            if let Some(s) = sections
                .iter_mut()
                .find(|s| s.audit_arch == arch.audit_arch())
            {
                s.syscalls.extend(
                    syscalls
                        .into_iter()
                        .map(|(nr, r)| (nr, (r, arch.is_64bit()))),
                );
                continue;
            }
        }
        sections.push(Section {
            audit_arch: arch.audit_arch(),
            reject_x32: *arch == ScmpArch::X86_64 && !has_x32,
            syscalls: syscalls
                .into_iter()
                .map(|(nr, r)| (nr, (r, arch.is_64bit())))
                .collect(),
        });
    }
    let program = Program {
        default_action,
        bad_arch_action: SECCOMP_RET_KILL_THREAD,
        sections,
    };
    let instructions = compile::generate(&program).context("linux.seccomp")?;
    Ok(Filter {
        instructions,
        flags,
        has_notify,
    })
}

/// Install with `seccomp(2)` `SECCOMP_SET_MODE_FILTER` and the profile's
/// flags, plus `SECCOMP_FILTER_FLAG_NEW_LISTENER` when the filter has NOTIFY
/// rules; returns the listener fd then. `WAIT_KILLABLE_RECV` is only passed
/// with a listener (the kernel refuses it otherwise), and `TSYNC` with a
/// listener also gets `TSYNC_ESRCH` (required by the kernel). Does not set
/// `no_new_privs`: the caller does that when the spec asks.
pub fn install(filter: &Filter) -> Result<Option<OwnedFd>> {
    let mut flags = filter.flags;
    if filter.has_notify {
        flags |= SECCOMP_FILTER_FLAG_NEW_LISTENER;
        if flags & SECCOMP_FILTER_FLAG_TSYNC != 0 {
            flags |= SECCOMP_FILTER_FLAG_TSYNC_ESRCH;
        }
    } else {
        flags &= !SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV;
    }
    let prog = libc::sock_fprog {
        len: u16::try_from(filter.instructions.len())
            .map_err(|_| anyhow!("seccomp filter: too many instructions"))?,
        filter: filter.instructions.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: `prog` points to `filter.instructions`, which outlives the
    // call; the kernel copies the program and does not keep the pointer.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            SECCOMP_SET_MODE_FILTER,
            flags,
            &prog as *const libc::sock_fprog,
        )
    };
    if rc < 0 {
        return Err(std::io::Error::last_os_error())
            .with_context(|| format!("seccomp filter: cannot install (flags {flags:#x})"));
    }
    if flags & SECCOMP_FILTER_FLAG_TSYNC != 0
        && flags & SECCOMP_FILTER_FLAG_TSYNC_ESRCH == 0
        && rc > 0
    {
        bail!("seccomp filter: thread {rc} could not be synchronized");
    }
    if filter.has_notify {
        let fd = i32::try_from(rc).context("seccomp filter: bad listener fd")?;
        // SAFETY: with NEW_LISTENER the kernel returns a new fd that nothing
        // else owns.
        return Ok(Some(unsafe { OwnedFd::from_raw_fd(fd) }));
    }
    Ok(None)
}

/// Connect to the seccomp agent at listenerPath when the profile has NOTIFY rules. Done while
/// the host's filesystem is still in view (before pivot_root, before exec joins the
/// container's mount namespace): the path names a socket on the host, as for runc, whose
/// parent process connects.
pub fn connect_listener(seccomp: &LinuxSeccomp) -> Result<Option<UnixStream>> {
    let notify = seccomp
        .syscalls()
        .iter()
        .flatten()
        .any(|s| s.action() == LinuxSeccompAction::ScmpActNotify);
    if !notify {
        return Ok(None);
    }
    let path = seccomp
        .listener_path()
        .as_ref()
        .context("linux.seccomp.listenerPath is required with SCMP_ACT_NOTIFY")?;
    let sock = UnixStream::connect(path).with_context(|| {
        format!(
            "linux.seccomp.listenerPath: cannot connect to {}",
            path.display()
        )
    })?;
    Ok(Some(sock))
}

/// Send the listener fd plus the container state (OCI seccomp notify
/// "containerProcessState") over the agent's connection `sock`, with
/// `SCM_RIGHTS`, as runc does. `pid` is the filtered process's (init's or an
/// exec's), as the host sees it; the state's own pid is init's.
pub fn send_listener(
    sock: &UnixStream,
    metadata: Option<&str>,
    fd: BorrowedFd,
    pid: i32,
    state_json: &serde_json::Value,
) -> Result<()> {
    let msg = serde_json::json!({
        "ociVersion": state_json.get("ociVersion").cloned().unwrap_or_else(|| "1.0.2".into()),
        "fds": ["seccompFd"],
        "pid": pid,
        "metadata": metadata.unwrap_or(""),
        "state": state_json,
    });
    let body = serde_json::to_vec(&msg).context("seccomp listener: cannot encode the state")?;
    let fds = [fd.as_raw_fd()];
    let cmsg = [ControlMessage::ScmRights(&fds)];
    let iov = [IoSlice::new(&body)];
    let sent = sendmsg::<()>(sock.as_raw_fd(), &iov, &cmsg, MsgFlags::empty(), None)
        .context("linux.seccomp.listenerPath: cannot send to the seccomp agent")?;
    if sent != body.len() {
        bail!(
            "linux.seccomp.listenerPath: short write to the seccomp agent ({sent} of {} bytes)",
            body.len()
        );
    }
    Ok(())
}
