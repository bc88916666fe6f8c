//! `start`: release a created container's init from exec.fifo.
use super::store::{self, Store};
use super::{Container, Status};
use crate::linux::hooks;
use crate::process::clone::pidfd_open;
use anyhow::{bail, Context, Result};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use std::io::Read;
use std::os::fd::AsFd;
use std::os::unix::fs::OpenOptionsExt;

pub fn start(store: &Store, id: &str) -> Result<()> {
    let mut c = Container::load(store, id, true)?;
    c.require(&[Status::Created], "start")?;
    let fifo_path = c.locked.path(store::FIFO);
    // Something else at its path (a regular file) would read as "started" at once.
    match std::fs::symlink_metadata(&fifo_path) {
        Ok(m) if std::os::unix::fs::FileTypeExt::is_fifo(&m.file_type()) => {}
        Ok(_) => bail!("{} is not a fifo: cannot start", fifo_path.display()),
        Err(e) => return Err(e).with_context(|| format!("open {}", fifo_path.display())),
    }
    // The pidfd first, checked against the recorded start time: until we open the fifo, init
    // cannot get past it, so a dead init here really died before start. (Once the fifo is
    // open, init may run and exit at once: /bin/true does.)
    let pidfd = pidfd_open(c.meta.pid).with_context(|| format!("container {} init", c.id()))?;
    if !c.is_alive() {
        bail!("container {} init exited before start", c.id());
    }
    // Non-blocking: an init that died before opening its end must not hang us.
    let mut fifo = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(&fifo_path)
        .with_context(|| format!("open {}", fifo_path.display()))?;
    loop {
        let mut fds = [
            PollFd::new(fifo.as_fd(), PollFlags::POLLIN),
            PollFd::new(pidfd.as_fd(), PollFlags::POLLIN),
        ];
        match poll(&mut fds, PollTimeout::NONE) {
            Err(nix::errno::Errno::EINTR) => continue,
            r => r.context("wait for container init")?,
        };
        let fifo_ready = fds[0].revents().is_some_and(|r| !r.is_empty());
        let init_gone = fds[1].revents().is_some_and(|r| !r.is_empty());
        if fifo_ready {
            let mut b = [0u8; 1];
            match fifo.read(&mut b) {
                Ok(1) => break,
                Ok(_) => bail!(
                    "container {} init closed exec.fifo without starting",
                    c.id()
                ),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                Err(e) => return Err(e).context("read exec.fifo"),
            }
        }
        if init_gone {
            bail!("container {} init exited before start", c.id());
        }
    }
    // init holds its end until execve closes it: end-of-file means the program runs (or init
    // died trying; its error is on the container's stderr).
    wait_for_eof(&mut fifo);
    let _ = std::fs::remove_file(&fifo_path);
    let spec = c.spec()?;
    if spec.process().is_none() {
        // init was released and exits: there is nothing to run.
        bail!(
            "container {} has no process in its config.json: cannot start",
            c.id()
        );
    }
    // (Should this fail, or start be killed from here on, status is still derived as running
    // from the kernel: init no longer holds exec.fifo.)
    c.set_status(Status::Running, "start")?;
    // The program runs whether or not this is recorded (ENOSPC, EIO): every command derives
    // running from init having exec'd, so a failed write is a warning, not a failed start.
    if let Err(e) = c.save() {
        log::warn!("{}", crate::error::render(&e));
    }
    // poststart: after the user process started, before start returns; failures warn. Run
    // without the container's lock: nobody waits on a slow hook.
    let st = hooks::state(
        c.id(),
        "running",
        c.meta.pid,
        &c.meta.bundle,
        &c.meta.annotations,
    );
    drop(c);
    if let Some(h) = spec.hooks().as_ref().and_then(|h| h.poststart().clone()) {
        crate::linux::hooks::run_all_warn("poststart", &h, &st);
    }
    Ok(())
}

fn wait_for_eof(fifo: &mut std::fs::File) {
    let mut buf = [0u8; 16];
    loop {
        match fifo.read(&mut buf) {
            Ok(0) => return,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                let mut fds = [PollFd::new(fifo.as_fd(), PollFlags::POLLIN)];
                if matches!(poll(&mut fds, PollTimeout::from(10_000u16)), Ok(0) | Err(_)) {
                    return;
                }
            }
            Err(_) => return,
        }
    }
}
