//! `kill`: signal a container's init, or with `--all` every process in its cgroup.
use super::{Container, Status, Store};
use crate::process::clone::{pidfd_open, pidfd_send_signal};
use anyhow::{Context, Result};

pub fn kill(store: &Store, id: &str, signal: i32, all: bool) -> Result<()> {
    let c = Container::read(store, id)?;
    if all && c.meta.status == Status::Stopped {
        // Processes may outlive init (without a pid namespace): --all still reaches them.
        return c.cgroup().kill_all(signal);
    }
    c.require(&[Status::Created, Status::Running, Status::Paused], "kill")?;
    if all {
        return c
            .cgroup()
            .kill_all(signal)
            .with_context(|| format!("kill all processes of container {}", c.id()));
    }
    signal_init(&c, signal)
}

/// Signal init through a pidfd opened and then checked against the recorded start time, so
/// a reused pid is never signalled.
pub fn signal_init(c: &Container, signal: i32) -> Result<()> {
    let pidfd = pidfd_open(c.meta.pid).with_context(|| format!("container {} init", c.id()))?;
    if !c.is_alive() {
        return Err(crate::error::Error::WrongState {
            id: c.id().to_string(),
            status: Status::Stopped,
            verb: "kill",
        }
        .into());
    }
    pidfd_send_signal(&pidfd, signal)
        .with_context(|| format!("send signal {signal} to container {}", c.id()))
}
