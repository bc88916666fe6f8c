//! `pause` and `resume`: freeze and thaw the container's cgroup.
use super::{Container, Status, Store};
use anyhow::{Context, Result};

pub fn pause(store: &Store, id: &str) -> Result<()> {
    let mut c = Container::load(store, id, true)?;
    c.require(&[Status::Running], "pause")?;
    c.cgroup()
        .freeze()
        .with_context(|| format!("freeze container {}", c.id()))?;
    c.set_status(Status::Paused, "pause")?;
    c.save()
}

pub fn resume(store: &Store, id: &str) -> Result<()> {
    let mut c = Container::load(store, id, true)?;
    c.require(&[Status::Paused], "resume")?;
    c.cgroup()
        .thaw()
        .with_context(|| format!("thaw container {}", c.id()))?;
    c.set_status(Status::Running, "resume")?;
    c.save()
}
