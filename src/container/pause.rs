//! `pause` and `resume`: freeze and thaw the container's cgroup.
use super::{Container, Status, Store};
use anyhow::{Context, Result};

pub fn pause(store: &Store, id: &str) -> Result<()> {
    let mut c = Container::load(store, id, true)?;
    c.require(&[Status::Running], "pause")?;
    let cg = c.cgroup();
    cg.freeze()
        .with_context(|| format!("freeze container {}", c.id()))?;
    c.set_status(Status::Paused, "pause")?;
    // Not recorded (ENOSPC, EIO): undo, so that the failed pause changed nothing. (Killed
    // here instead, the freezer is what says paused.)
    if let Err(e) = c.save() {
        let _ = cg.thaw();
        return Err(e);
    }
    Ok(())
}

pub fn resume(store: &Store, id: &str) -> Result<()> {
    let mut c = Container::load(store, id, true)?;
    c.require(&[Status::Paused], "resume")?;
    c.cgroup()
        .thaw()
        .with_context(|| format!("thaw container {}", c.id()))?;
    c.set_status(Status::Running, "resume")?;
    // The container runs whether or not this is recorded: the freezer is what says so.
    if let Err(e) = c.save() {
        log::warn!("{}", crate::error::render(&e));
    }
    Ok(())
}
