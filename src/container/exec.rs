//! `exec`: run another process in a running container.
use super::run::{foreground, wait};
use super::{create::write_pid_file, Container, Status, Store};
use crate::linux::tty;
use crate::process::{self, setns::ExecContext};
use anyhow::{bail, Result};
use oci_spec::runtime::Process;
use std::path::PathBuf;

pub struct ExecOptions {
    pub id: String,
    pub process: Process,
    pub detach: bool,
    pub pid_file: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
    pub preserve_fds: i32,
    pub ignore_paused: bool,
}

/// Returns the exit code for coop: the process's in the foreground, 0 when detached.
pub fn exec(store: &Store, o: &ExecOptions) -> Result<i32> {
    let c = Container::load(store, &o.id, false)?;
    match c.meta.status {
        Status::Running => {}
        Status::Paused if o.ignore_paused => {}
        Status::Paused => bail!(
            "container {} is paused: cannot exec (use --ignore-paused)",
            c.id()
        ),
        _ => return Err(c.wrong_state("exec").into()),
    }
    let terminal = o.process.terminal().unwrap_or(false);
    if terminal && o.detach && o.console_socket.is_none() {
        bail!("process.terminal is set: --console-socket is required with --detach");
    }
    if o.process.args().as_ref().is_none_or(|a| a.is_empty()) {
        bail!("exec needs a command (or --process with process.args)");
    }
    let spec = c.spec()?;
    let seccomp = spec.linux().as_ref().and_then(|l| l.seccomp().clone());
    let cg = c.cgroup();
    let ctx = ExecContext {
        init_pid: c.meta.pid,
        process: &o.process,
        seccomp: seccomp.as_ref(),
        preserve_fds: o.preserve_fds,
    };
    let sfd = if o.detach { None } else { Some(foreground()?) };
    // The container's lock is not held while the process runs.
    drop(c);
    let spawned = process::spawn_exec(&ctx, cg.as_ref())?;
    let console = match (&o.console_socket, spawned.console) {
        (Some(sock), Some(m)) => {
            tty::send_to_socket(&sock.to_string_lossy(), &m)?;
            None
        }
        (_, m) => m,
    };
    if let Some(pf) = &o.pid_file {
        write_pid_file(pf, spawned.pid)?;
    }
    match sfd {
        None => Ok(0),
        Some(sfd) => wait(&sfd, &spawned.pidfd, spawned.pid, console.as_ref()),
    }
}
