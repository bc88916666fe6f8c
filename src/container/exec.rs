//! `exec`: run another process in a running container.
use super::run::{foreground, wait};
use super::{create::write_pid_file, Container, Status, Store};
use crate::cgroups;
use crate::error::Error;
use crate::linux::tty;
use crate::process::{self, setns::ExecContext};
use anyhow::{bail, Context, Result};
use oci_spec::runtime::Process;
use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;

pub struct ExecOptions {
    pub id: String,
    pub process: Process,
    pub detach: bool,
    pub pid_file: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
    pub preserve_fds: i32,
    pub ignore_paused: bool,
    /// `--cgroup`: a sub-cgroup of the container's to run the process in.
    pub sub_cgroup: Option<cgroups::sub::SubCgroup>,
}

/// Returns the exit code for coop: the process's in the foreground, 0 when detached.
pub fn exec(store: &Store, o: &ExecOptions) -> Result<i32> {
    let c = Container::read(store, &o.id)?;
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
    // As strict as config.json's process: nothing starts with a bad one.
    crate::spec::validate_process(&o.process).context("invalid exec process")?;
    let spec = c.spec()?;
    let seccomp = spec.linux().as_ref().and_then(|l| l.seccomp().clone());
    let cg = match &o.sub_cgroup {
        Some(sub) => cgroups::for_container(
            cgroups::sub::resolve(&c.meta.cgroup, sub)?,
            Some((c.meta.pid, c.meta.pid_start_time)),
        ),
        None => c.cgroup(),
    };
    let init_pid = c.meta.pid;
    let linux = spec.linux().as_ref();
    let bundle = c.meta.bundle.clone();
    let ctx = ExecContext {
        init_pid,
        process: &o.process,
        seccomp: seccomp.as_ref(),
        preserve_fds: o.preserve_fds,
        id: &o.id,
        bundle: &bundle,
        annotations: spec
            .annotations()
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect(),
        personality: linux.and_then(|l| l.personality().as_ref()),
        memory_policy: linux.and_then(|l| l.memory_policy().as_ref()),
        intel_rdt: linux.and_then(|l| l.intel_rdt().as_ref()),
    };
    let sfd = if o.detach { None } else { Some(foreground()?) };
    // The container's lock is not held while the process runs.
    drop(c);
    let mut spawned = match process::spawn_exec(&ctx, cg.as_ref()) {
        Ok(s) => s,
        // The container stopped or was deleted meanwhile (a racing `delete --force` kills
        // the new process with it): say that, not how the setup broke.
        Err(e) => {
            let cgroup_gone = cg
                .paths()
                .v1
                .values()
                .chain(cg.paths().unified.iter())
                .any(|d| !d.exists());
            return Err(match Container::read(store, &o.id) {
                Ok(c) if c.meta.status == Status::Stopped || cgroup_gone => Error::WrongState {
                    id: c.meta.id.clone(),
                    status: Status::Stopped,
                    verb: "exec",
                }
                .into(),
                Err(gone) if matches!(gone.downcast_ref(), Some(Error::NotFound(_))) => gone,
                _ => e,
            });
        }
    };
    // The process runs: a failure from here on must not leave it running.
    let console = match hand_over(o, &mut spawned) {
        Ok(c) => c,
        Err(e) => {
            kill(&spawned);
            return Err(e);
        }
    };
    match sfd {
        None => Ok(0),
        Some(sfd) => wait(&sfd, &spawned.pidfd, spawned.pid, console.as_ref()),
    }
}

/// Give the pty to --console-socket and write --pid-file; returns the pty the caller keeps.
fn hand_over(o: &ExecOptions, spawned: &mut process::Spawned) -> Result<Option<OwnedFd>> {
    let console = match (&o.console_socket, spawned.console.take()) {
        (Some(sock), Some(m)) => {
            tty::send_to_socket(&sock.to_string_lossy(), &m)?;
            None
        }
        (_, m) => m,
    };
    if let Some(pf) = &o.pid_file {
        write_pid_file(pf, spawned.pid)?;
    }
    Ok(console)
}

/// SIGKILL the exec'd process and wait (at most 10 s) until it is gone; reap it if it is ours.
fn kill(spawned: &process::Spawned) {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    let _ = process::clone::pidfd_send_signal(&spawned.pidfd, libc::SIGKILL);
    let mut fds = [PollFd::new(spawned.pidfd.as_fd(), PollFlags::POLLIN)];
    let _ = poll(&mut fds, PollTimeout::from(10_000u16));
    let _ = nix::sys::wait::waitpid(
        nix::unistd::Pid::from_raw(spawned.pid),
        Some(nix::sys::wait::WaitPidFlag::WNOHANG),
    );
}
