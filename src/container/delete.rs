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
    let c = match Container::load_locked(locked) {
        Ok(c) => c,
        Err(e) if force => {
            // A directory with a missing or corrupt meta.json: --force removes it.
            log::warn!(
                "removing container {id} with unreadable state: {}",
                crate::error::render(&e)
            );
            return std::fs::remove_dir_all(store.dir(&id))
                .with_context(|| format!("remove {}", store.dir(&id).display()));
        }
        Err(e) => return Err(e),
    };
    if c.meta.sandbox_root {
        // The sandbox goes down with its root: members first (we hold the root's lock, so no
        // member is being created meanwhile).
        for m in sandbox::members(store, &id)? {
            let member = Container::load(store, &m, true)?;
            if member.meta.status != Status::Stopped {
                if !force {
                    bail!("sandbox {id} still has a living container {m}: cannot delete (use --force)");
                }
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

/// Remove what the container left: its cgroup and its state directory.
/// (poststop hooks run here, after the container is gone, before delete returns.)
pub fn destroy(c: Container) -> Result<()> {
    let spec = c.spec().ok();
    // Without a mount namespace of its own the container's mounts are in ours.
    let shares_mount_ns = spec.as_ref().is_some_and(|s| {
        !crate::linux::namespaces::plan(s.linux().as_ref())
            .has(oci_spec::runtime::LinuxNamespaceType::Mount)
    });
    if shares_mount_ns {
        crate::linux::rootfs::unmount_below(&c.meta.rootfs)?;
    }
    let cg = c.cgroup();
    // Processes may outlive init (no pid namespace, or a member whose sandbox died).
    let _ = cg.kill_all(libc::SIGKILL);
    cg.destroy()
        .with_context(|| format!("remove cgroup of container {}", c.id()))?;
    if let Some(sb) = &c.meta.sandbox_cgroup {
        cgroups::manager(sb.clone())
            .destroy()
            .with_context(|| format!("remove sandbox cgroup of {}", c.id()))?;
    }
    if c.meta.sandbox_root {
        sandbox::unmount_shm(&c.locked.dir);
    }
    let (id, bundle, annotations) = (
        c.meta.id.clone(),
        c.meta.bundle.clone(),
        c.meta.annotations.clone(),
    );
    c.locked.remove()?;
    // poststop: after the container is deleted, before delete returns; failures warn.
    if let Some(h) = spec
        .as_ref()
        .and_then(|s| s.hooks().as_ref())
        .and_then(|h| h.poststop().clone())
    {
        let st = crate::linux::hooks::state(&id, "stopped", 0, &bundle, &annotations);
        crate::linux::hooks::run_all_warn("poststop", &h, &st);
    }
    Ok(())
}

/// SIGKILL everything in the container and wait until init is gone.
pub fn kill_and_wait(c: &Container) -> Result<()> {
    let cg = c.cgroup();
    let pidfd = pidfd_open(c.meta.pid).ok().filter(|_| c.is_alive());
    cg.kill_all(libc::SIGKILL)
        .with_context(|| format!("kill container {}", c.id()))?;
    if c.meta.status == Status::Paused {
        // A frozen process on cgroup v1 dies only once thawed.
        cg.thaw()
            .with_context(|| format!("thaw container {}", c.id()))?;
    }
    if let Some(p) = &pidfd {
        // init may not be in the cgroup yet (or at all, with a foreign cgroupsPath).
        let _ = pidfd_send_signal(p, libc::SIGKILL);
        if !wait_exit(p, Duration::from_secs(10)) {
            anyhow::bail!("container {} init did not die after SIGKILL", c.id());
        }
    }
    Ok(())
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
