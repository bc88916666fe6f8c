//! clone3: the one system call that starts a container.
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

/// `libc::CLONE_INTO_CGROUP` overflows a C int and reads 0 in the libc crate.
pub const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;
const CLONE_PIDFD: u64 = 0x1000;

#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

pub enum Forked {
    Child,
    Parent { pid: i32, pidfd: OwnedFd },
}

/// Fork-like clone3 with `flags` (namespaces), a pidfd, SIGCHLD on exit and, when given, the
/// child placed straight into the cgroup directory `cgroup`.
///
/// The caller must be single-threaded: the child runs on a copy of the caller's memory, as
/// after fork.
pub fn clone3(flags: u64, cgroup: Option<RawFd>) -> std::io::Result<Forked> {
    let mut pidfd: RawFd = -1;
    let mut args = CloneArgs {
        flags: flags | CLONE_PIDFD,
        pidfd: &mut pidfd as *mut RawFd as u64,
        exit_signal: libc::SIGCHLD as u64,
        ..Default::default()
    };
    if let Some(fd) = cgroup {
        args.flags |= CLONE_INTO_CGROUP;
        args.cgroup = fd as u64;
    }
    // SAFETY: clone3 without a stack behaves like fork: the child continues here on a copy
    // of the address space. `args` is a valid clone_args of the size given; coop is
    // single-threaded when it calls this, so no lock is held by another thread.
    let r = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &mut args as *mut CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    match r {
        -1 => Err(std::io::Error::last_os_error()),
        0 => Ok(Forked::Child),
        // SAFETY: CLONE_PIDFD stored a new fd that nothing else owns.
        pid => Ok(Forked::Parent {
            pid: pid as i32,
            pidfd: unsafe { OwnedFd::from_raw_fd(pidfd) },
        }),
    }
}

/// The second stage's fork (after the namespaces are set up): in the parent (stage 1), send
/// the child's pid and its pidfd to coop with InitPid, then exit; in the child, return.
///
/// The pidfd comes from clone3 itself, so coop holds the process even if it has already
/// exited and been reaped by a subreaper (a shim) when the message arrives: opening it by
/// pid afterwards would race with that reaping.
pub fn fork_and_report(chan: &super::sync::Channel) -> anyhow::Result<()> {
    use std::os::fd::AsFd;
    match clone3(0, None)? {
        Forked::Child => Ok(()),
        Forked::Parent { pid, pidfd } => {
            let _ = chan.send_with_fd(&super::sync::Message::InitPid { pid }, Some(pidfd.as_fd()));
            // SAFETY: stage 1 is done; exit without running coop's destructors.
            unsafe { libc::_exit(0) }
        }
    }
}

pub fn pidfd_open(pid: i32) -> std::io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes plain integers and returns a new fd.
    let r = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if r < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: new fd owned only here.
    Ok(unsafe { OwnedFd::from_raw_fd(r as RawFd) })
}

pub fn pidfd_send_signal(pidfd: &OwnedFd, sig: i32) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: plain integers; a null siginfo means "as kill(2)".
    let r = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            sig,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    if r < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}
