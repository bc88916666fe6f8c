//! `run`: create, start and, unless detached, wait for the container, forwarding signals,
//! relaying the terminal, and deleting the container afterwards.
use super::create::{create, CreateOptions};
use super::{delete, start, Store};
use crate::linux::tty;
use crate::process::clone::pidfd_send_signal;
use anyhow::{Context, Result};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

pub struct RunOptions {
    pub create: CreateOptions,
    pub detach: bool,
    /// Keep the container after it exits (runc's --keep).
    pub keep: bool,
}

/// Returns the exit code for coop: the container's, or 128+N when signal N killed it.
pub fn run(store: &Store, o: &RunOptions) -> Result<i32> {
    let mut copts = o.create.clone();
    copts.relay_tty = !o.detach;
    if o.detach {
        let created = create(store, &copts)?;
        if let Err(e) = start::start(store, &created.id) {
            let _ = delete::delete(store, &created.id, true);
            return Err(e);
        }
        return Ok(0);
    }
    let sfd = foreground()?;
    let created = create(store, &copts)?;
    if let Err(e) = start::start(store, &created.id) {
        let _ = delete::delete(store, &created.id, true);
        return Err(e);
    }
    let code = wait(&sfd, &created.pidfd, created.pid, created.console.as_ref());
    if !o.keep {
        if let Err(e) = delete::delete(store, &created.id, true) {
            log::warn!("{}", crate::error::render(&e));
        }
    }
    code
}

/// Prepare to wait for a process in the foreground: every signal we forward is blocked before
/// the process exists, so none can be missed (the process unblocks them for itself), and we
/// become a subreaper so that a grandchild (a two-stage init, an exec's process) is ours to
/// wait for.
pub fn foreground() -> Result<SignalFd> {
    let mut mask = SigSet::all();
    for s in [
        Signal::SIGKILL,
        Signal::SIGSTOP,
        Signal::SIGSEGV,
        Signal::SIGBUS,
        Signal::SIGILL,
        Signal::SIGFPE,
        Signal::SIGABRT,
    ] {
        mask.remove(s);
    }
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&mask), None)
        .context("block signals")?;
    // SAFETY: prctl with integer arguments.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    SignalFd::with_flags(&mask, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK).context("signalfd")
}

/// Wait for the process, forwarding signals and relaying the terminal; its exit code, or
/// 128+N when signal N killed it.
pub fn wait(sfd: &SignalFd, pidfd: &OwnedFd, pid: i32, console: Option<&OwnedFd>) -> Result<i32> {
    let _raw = console.map(|_| tty::RawMode::enter());
    if let (Some(m), Some(size)) = (console, tty::own_size()) {
        resize(m, size);
    }
    let mut stdin_open = console.is_some();
    let mut console_open = console.is_some();
    loop {
        let stdin = std::io::stdin();
        let mut fds = vec![
            PollFd::new(sfd.as_fd(), PollFlags::POLLIN),
            PollFd::new(pidfd.as_fd(), PollFlags::POLLIN),
        ];
        if let Some(m) = console {
            if console_open {
                fds.push(PollFd::new(m.as_fd(), PollFlags::POLLIN));
            }
            if stdin_open {
                fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
            }
        }
        match poll(&mut fds, PollTimeout::NONE) {
            Err(nix::errno::Errno::EINTR) => continue,
            r => r.context("wait for the container")?,
        };
        let ready: Vec<bool> = fds
            .iter()
            .map(|f| f.revents().is_some_and(|r| !r.is_empty()))
            .collect();
        drop(fds);
        if ready[0] {
            while let Ok(Some(si)) = sfd.read_signal() {
                let sig = si.ssi_signo as i32;
                match sig {
                    libc::SIGCHLD => {}
                    libc::SIGWINCH => {
                        if let (Some(m), Some(size)) = (console, tty::own_size()) {
                            resize(m, size);
                        }
                    }
                    _ => {
                        let _ = pidfd_send_signal(pidfd, sig);
                    }
                }
            }
        }
        let mut idx = 2;
        if let Some(m) = console {
            if console_open {
                if ready[idx] && !copy(m.as_raw_fd(), 1) {
                    console_open = false;
                }
                idx += 1;
            }
            if stdin_open {
                if ready[idx] && !copy(0, m.as_raw_fd()) {
                    stdin_open = false;
                }
            }
        }
        if ready[1] {
            // Drain what the container wrote last.
            if let Some(m) = console {
                while console_open && copy_nonblock(m.as_raw_fd(), 1) {}
            }
            return exit_code(pid);
        }
    }
}

fn exit_code(pid: i32) -> Result<i32> {
    loop {
        match waitpid(Pid::from_raw(pid), None) {
            Ok(WaitStatus::Exited(_, c)) => {
                reap_orphans();
                return Ok(c);
            }
            Ok(WaitStatus::Signaled(_, s, _)) => {
                reap_orphans();
                return Ok(128 + s as i32);
            }
            Ok(_) => continue,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e).context("wait for container init"),
        }
    }
}

/// As subreaper we inherit orphans of the container's processes: reap what has exited.
fn reap_orphans() {
    while let Ok(st) = waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
        if st == WaitStatus::StillAlive {
            break;
        }
    }
}

fn resize(master: &OwnedFd, (rows, cols): (u16, u16)) {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads a valid winsize.
    unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
}

/// Copy one chunk; false at EOF or error.
fn copy(from: i32, to: i32) -> bool {
    let mut buf = [0u8; 8192];
    // SAFETY: read into and write from a valid local buffer.
    let n = unsafe { libc::read(from, buf.as_mut_ptr().cast(), buf.len()) };
    if n <= 0 {
        return false;
    }
    let mut off = 0;
    while off < n as usize {
        // SAFETY: as above.
        let w = unsafe { libc::write(to, buf[off..].as_ptr().cast(), n as usize - off) };
        if w <= 0 {
            return false;
        }
        off += w as usize;
    }
    true
}

fn copy_nonblock(from: i32, to: i32) -> bool {
    let mut fds = [PollFd::new(
        // SAFETY: `from` is a valid open fd for the duration of this call.
        unsafe { std::os::fd::BorrowedFd::borrow_raw(from) },
        PollFlags::POLLIN,
    )];
    matches!(poll(&mut fds, PollTimeout::ZERO), Ok(n) if n > 0) && copy(from, to)
}
