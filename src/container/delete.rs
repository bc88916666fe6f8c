//! `delete`: remove a stopped container (with `--force`, kill a living one first).
use super::{sandbox, Container, Status, Store};
use crate::cgroups;
use crate::process::clone::{pidfd_open, pidfd_send_signal};
use anyhow::{bail, Context, Result};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

pub fn delete(store: &Store, id: &str, force: bool) -> Result<()> {
    let id = store.resolve(id)?;
    // Checked before the lock file is made in it: a directory under --root that is not a
    // container's (a wrong --root, say) is never touched.
    if store.dir(&id).is_dir() && !store.looks_like_container(&id) {
        bail!(
            "{} holds files coop does not make: not a container's directory, not removed",
            store.dir(&id).display()
        );
    }
    let locked = store.lock(&id, true)?;
    let c = Container::load_locked(locked)?;
    if let Some(why) = &c.unreadable {
        // A directory with a missing or corrupt meta.json: --force still finds the processes
        // in the cgroup derived from config.json or the default layout, kills them, and keeps
        // the directory if they do not die.
        if !force {
            bail!("container {id}: {why}: cannot delete (use --force)");
        }
        log::warn!("removing container {id} with unreadable state: {why}");
    }
    if c.meta.sandbox_root {
        // The sandbox goes down with its root: members first (we hold the root's lock, so no
        // member is being created meanwhile).
        let mut members = vec![];
        for m in sandbox::members(store, &id)? {
            members.push(Container::load(store, &m, true)?);
        }
        let living: Vec<&str> = members
            .iter()
            .filter(|m| m.meta.status != Status::Stopped)
            .map(|m| m.id())
            .collect();
        if !living.is_empty() && !force {
            bail!(
                "sandbox {id} still has living members {}: cannot delete (use --force)",
                living.join(", ")
            );
        }
        for member in members {
            if member.meta.status != Status::Stopped {
                kill_and_wait(&member)?;
            }
            destroy(member)?;
        }
    }
    match c.meta.status {
        Status::Stopped => {}
        // The spec: deleting a container that is not stopped is an error. (runc deletes a
        // created one anyway; clients follow `delete` with `delete --force`, which works.)
        Status::Created | Status::Creating | Status::Running | Status::Paused if force => {
            kill_and_wait(&c)?
        }
        Status::Created | Status::Creating | Status::Running | Status::Paused => {
            return Err(c.wrong_state("delete").into());
        }
    }
    destroy(c)
}

/// Remove what the container left: its processes, cgroups, mounts and state directory, in
/// that order, so that a delete killed half way leaves a directory from which the next one
/// still finds everything. Nothing is removed while a process of the container lives.
/// (poststop hooks run here, after the container is gone, before delete returns.)
pub fn destroy(c: Container) -> Result<()> {
    let spec = c.spec().ok();
    // Without a mount namespace of its own the container's mounts are in ours.
    let shares_mount_ns = spec.as_ref().is_some_and(|s| {
        !crate::linux::namespaces::plan(s.linux().as_ref())
            .has(oci_spec::runtime::LinuxNamespaceType::Mount)
    });
    // Processes may outlive init (no pid namespace, a member whose sandbox died, a create
    // killed before it recorded the pid).
    kill_and_wait(&c)?;
    if shares_mount_ns && c.meta.rootfs.is_absolute() {
        crate::linux::rootfs::unmount_below(&c.meta.rootfs)?;
    }
    // linux.netDevices in a network namespace joined by path outlive the container: back
    // to the host with their host names (a new namespace took them along when it died).
    if let Some(s) = &spec {
        let joined = s
            .linux()
            .as_ref()
            .and_then(|l| l.namespaces().as_ref())
            .into_iter()
            .flatten()
            .find(|n| n.typ() == oci_spec::runtime::LinuxNamespaceType::Network)
            .and_then(|n| n.path().clone());
        if let Some(ns) = joined.filter(|p| p.exists()) {
            if let Err(e) = crate::linux::netdev::move_out(s, &ns) {
                log::warn!("{}", crate::error::render(&e));
            }
        }
    }
    if let Some(s) = &spec {
        let root = std::path::Path::new(crate::linux::intelrdt::RESCTRL);
        if let Err(e) = crate::linux::intelrdt::remove(root, s, c.id()) {
            log::warn!("linux.intelRdt: {}", crate::error::render(&e));
        }
    }
    if c.meta.cgroup.unified.is_some() || !c.meta.cgroup.v1.is_empty() {
        c.cgroup()
            .destroy()
            .with_context(|| format!("remove cgroup of container {}", c.id()))?;
    }
    if let Some(sb) = &c.meta.sandbox_cgroup {
        cgroups::manager(sb.clone())
            .destroy()
            .with_context(|| format!("remove sandbox cgroup of {}", c.id()))?;
    }
    // A sandbox root's shm (also when a create was killed before it recorded the root).
    if c.meta.sandbox_root || c.locked.path(sandbox::SHM_DIR).exists() {
        sandbox::unmount_shm(&c.locked.dir);
    }
    let (id, bundle, annotations) = (
        c.meta.id.clone(),
        c.meta.bundle.clone(),
        c.meta.annotations.clone(),
    );
    let readable = c.unreadable.is_none();
    c.locked.remove()?;
    // poststop: after the container is deleted, before delete returns; failures warn.
    if let Some(h) = spec
        .as_ref()
        .filter(|_| readable)
        .and_then(|s| s.hooks().as_ref())
        .and_then(|h| h.poststop().clone())
    {
        let st = crate::linux::hooks::state(&id, "stopped", 0, &bundle, &annotations);
        crate::linux::hooks::run_all_warn("poststop", &h, &st);
    }
    Ok(())
}

/// SIGKILL everything in the container and wait until it is gone: init (by its pidfd) and
/// every process of its cgroup. A frozen cgroup is thawed, whatever the record says (a pause
/// killed after freezing): a frozen process cannot die.
pub fn kill_and_wait(c: &Container) -> Result<()> {
    let pidfd = pidfd_open(c.meta.pid).ok().filter(|_| c.is_alive());
    if c.meta.cgroup.unified.is_none() && c.meta.cgroup.v1.is_empty() {
        // No cgroup was recorded (or derived, or rootless without delegation): what init's
        // pid namespace holds, and init itself.
        let _ = c.cgroup().kill_all(libc::SIGKILL);
        if let Some(p) = &pidfd {
            let _ = pidfd_send_signal(p, libc::SIGKILL);
            if !wait_exit(p, Duration::from_secs(10)) {
                bail!("container {} init did not die after SIGKILL", c.id());
            }
        }
        return Ok(());
    }
    let cg = c.cgroup();
    let killed = cg.kill_all(libc::SIGKILL);
    if cgroups::is_frozen(&c.meta.cgroup) {
        cg.thaw()
            .with_context(|| format!("thaw container {}", c.id()))?;
    }
    if let Some(p) = &pidfd {
        // init may not be in the cgroup yet (or at all, with a foreign cgroupsPath).
        let _ = pidfd_send_signal(p, libc::SIGKILL);
        if !wait_exit(p, Duration::from_secs(10)) {
            bail!("container {} init did not die after SIGKILL", c.id());
        }
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = cg.pids().unwrap_or_default();
        if left.is_empty() {
            return Ok(());
        }
        if Instant::now() > deadline {
            let why = killed
                .err()
                .map(|e| format!(" ({})", crate::error::render(&e)));
            bail!(
                "container {}: processes {left:?} still live after SIGKILL{}",
                c.id(),
                why.unwrap_or_default()
            );
        }
        // Killed again: a process may have forked between the listing and the signal.
        let _ = cg.kill_all(libc::SIGKILL);
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Wait until the process behind `pidfd` exits; false on timeout.
pub fn wait_exit(pidfd: &OwnedFd, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let mut fds = [PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
        let ms = PollTimeout::try_from(left.as_millis().min(i32::MAX as u128) as i32)
            .unwrap_or(PollTimeout::MAX);
        match poll(&mut fds, ms) {
            Ok(0) => return false,
            Ok(_) => return true,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return false,
        }
    }
}
