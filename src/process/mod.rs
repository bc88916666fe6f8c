//! The parent side of starting a container's init.
pub mod clone;
pub mod finish;
pub mod init;
pub mod setns;
pub mod sync;

use crate::cgroups::CgroupManager;
use crate::linux::namespaces::Plan;
use crate::linux::{hooks, user};
use anyhow::{bail, Context, Result};
use clone::{clone3, Forked};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;
use oci_spec::runtime::Spec;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use sync::{Channel, Message};

/// Everything init needs; it gets its copy through clone3's copy of memory.
pub struct InitContext<'a> {
    pub id: &'a str,
    pub spec: &'a Spec,
    pub bundle: &'a Path,
    pub rootfs: &'a Path,
    pub fifo: &'a Path,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    /// Inherited fds 3..3+N that reach the container.
    pub preserve_fds: i32,
    /// LISTEN_FDS passed through (included in preserve_fds).
    pub listen_fds: i32,
    pub plan: Plan,
    /// The container's cgroup directories by their name under a `cgroup` mount.
    pub cgroup_dirs: Vec<(String, PathBuf)>,
    /// Idmapped mounts made by the parent (linux/idmap.rs): (index in mounts, fd).
    pub idmap_fds: Vec<(usize, std::os::fd::RawFd)>,
    /// coop's pid: init dies with it until create is done (PR_SET_PDEATHSIG).
    pub parent_pid: i32,
}

/// A container init that is set up and waits on exec.fifo.
pub struct Spawned {
    pub pid: i32,
    pub pidfd: OwnedFd,
    /// The pty master when process.terminal is set.
    pub console: Option<OwnedFd>,
}

/// Whether init may set up its filesystem while the parent puts it in its cgroups, waiting for
/// `Joined` only before its last steps (working directory, read-only paths, rlimits, user,
/// capabilities, exec). On a host with cgroup v1 hierarchies the first cgroup.procs write waits
/// for an RCU grace period (8-11 ms); overlapped, init's mounts take that time instead. Only
/// where nothing before those last steps depends on the cgroup: no cgroup namespace (rooted at
/// init's cgroup when it is unshared), no second stage (its fork would stay behind), no hooks
/// (they may look up the container's cgroup by its pid), no Intel RDT group.
pub fn joins_while_init_prepares(ctx: &InitContext) -> bool {
    let any = |h: &Option<Vec<oci_spec::runtime::Hook>>| h.as_ref().is_some_and(|v| !v.is_empty());
    let hooks = ctx.spec.hooks().as_ref().is_some_and(|h| {
        any(h.prestart())
            || any(h.create_runtime())
            || any(h.create_container())
            || any(h.start_container())
    });
    let rdt = ctx
        .spec
        .linux()
        .as_ref()
        .is_some_and(|l| l.intel_rdt().is_some());
    !ctx.plan.two_stage && !ctx.plan.new_cgroup && !hooks && !rdt
}

/// Start init. On error nothing of it is left running.
pub fn spawn(ctx: &InitContext, cgroup: &dyn CgroupManager) -> Result<Spawned> {
    let cg_fd = cgroup.clone_into_fd();
    match spawn_once(ctx, cgroup, cg_fd.as_ref()) {
        Err(Failure::KilledAtBirth(e)) if cg_fd.is_some() => {
            // A kernel bug on some hosts kills a child cloned into a cgroup that was ever
            // written with cgroup.kill: try again, joining the cgroup through cgroup.procs.
            log::debug!("clone3 into the cgroup failed ({e:#}); joining through cgroup.procs");
            spawn_once(ctx, cgroup, None).map_err(Failure::into_inner)
        }
        r => r.map_err(Failure::into_inner),
    }
}

enum Failure {
    /// The child died of SIGKILL before saying anything.
    KilledAtBirth(anyhow::Error),
    Other(anyhow::Error),
}

impl Failure {
    fn into_inner(self) -> anyhow::Error {
        match self {
            Failure::KilledAtBirth(e) | Failure::Other(e) => e,
        }
    }
}

fn spawn_once(
    ctx: &InitContext,
    cgroup: &dyn CgroupManager,
    cg_fd: Option<&OwnedFd>,
) -> Result<Spawned, Failure> {
    let (parent, child) = Channel::pair().map_err(Failure::Other)?;
    // OOM kills the cgroup saw before init: one more means init was OOM-killed.
    let ooms = cgroup.oom_kills();
    let flags = if ctx.plan.two_stage {
        0
    } else {
        ctx.plan.new_flags
    };
    let forked = clone3(flags, cg_fd.map(|f| f.as_raw_fd()))
        .with_context(|| format!("clone3 with namespace flags {flags:#x}"))
        .map_err(Failure::Other)?;
    let (pid, pidfd) = match forked {
        Forked::Child => {
            drop(parent);
            init::main(ctx, child)
        }
        Forked::Parent { pid, pidfd } => (pid, pidfd),
    };
    drop(child);
    let mut st = State {
        heard: false,
        init_pid: None,
        status: None,
    };
    let r = handshake(ctx, cgroup, &parent, pid, cg_fd.is_some(), &mut st, ooms);
    match r {
        Ok((ipid, ipidfd, console)) => Ok(Spawned {
            pid: ipid,
            pidfd: ipidfd.unwrap_or(pidfd),
            console,
        }),
        Err(e) => {
            // Leave nothing running.
            if let Some(p) = st.init_pid {
                let _ = nix::sys::signal::kill(Pid::from_raw(p), nix::sys::signal::Signal::SIGKILL);
            }
            if st.status.is_none() {
                let _ = clone::pidfd_send_signal(&pidfd, libc::SIGKILL);
                st.status = waitpid(Pid::from_raw(pid), None).ok();
            }
            // An OOM kill is the container's memory limit, not the kernel bug retried for.
            if !st.heard
                && cgroup.oom_kills() == ooms
                && matches!(
                    st.status,
                    Some(WaitStatus::Signaled(
                        _,
                        nix::sys::signal::Signal::SIGKILL,
                        _
                    ))
                )
            {
                return Err(Failure::KilledAtBirth(e));
            }
            Err(Failure::Other(e))
        }
    }
}

type Handshake = (i32, Option<OwnedFd>, Option<OwnedFd>);

struct State {
    /// init said something: it was not killed at birth.
    heard: bool,
    /// The forked init of a two-stage start.
    init_pid: Option<i32>,
    /// Wait status of the clone3 child once reaped.
    status: Option<WaitStatus>,
}

fn handshake(
    ctx: &InitContext,
    cgroup: &dyn CgroupManager,
    chan: &Channel,
    pid: i32,
    in_unified: bool,
    st: &mut State,
    ooms: u64,
) -> Result<Handshake> {
    let linux = ctx.spec.linux().as_ref();
    let uid_maps = linux
        .and_then(|l| l.uid_mappings().clone())
        .unwrap_or_default();
    let gid_maps = linux
        .and_then(|l| l.gid_mappings().clone())
        .unwrap_or_default();
    if ctx.plan.new_user && !ctx.plan.two_stage {
        user::write_id_maps(pid, &uid_maps, &gid_maps)?;
    }
    if ctx.plan.new_user {
        user::chown_stdio(&uid_maps, &gid_maps);
    }
    let overlap = joins_while_init_prepares(ctx);
    if overlap {
        chan.send(&Message::Go).context("start container init")?;
    }
    cgroup
        .add_task(pid, in_unified)
        .context("join the container's cgroup")?;
    // linux.intelRdt: the first task; init and its children inherit the group.
    if let Some(rdt) = linux.and_then(|l| l.intel_rdt().as_ref()) {
        crate::linux::intelrdt::apply(
            Path::new(crate::linux::intelrdt::RESCTRL),
            rdt,
            ctx.id,
            pid,
        )?;
    }
    if overlap {
        // A failed send is init gone with its error message queued: the loop reads it.
        let _ = chan.send(&Message::Joined);
    } else {
        chan.send(&Message::Go).context("start container init")?;
    }
    let mut console = None;
    let mut pidfd = None;
    let mut final_pid = pid;
    loop {
        // A reset connection is init gone with a message of ours unread: it died too.
        let got = match chan.recv() {
            Err(e) if e.root_cause().downcast_ref() == Some(&nix::errno::Errno::ECONNRESET) => None,
            r => r?,
        };
        let Some((msg, fd)) = got else {
            if final_pid == pid {
                st.status = waitpid(Pid::from_raw(pid), None).ok();
            }
            let oom = (cgroup.oom_kills() > ooms).then(|| memory_limit(ctx.spec));
            bail!("{}", died(st.status, oom));
        };
        st.heard = true;
        match msg {
            Message::WriteIdMaps => {
                user::write_id_maps(pid, &uid_maps, &gid_maps)?;
                chan.send(&Message::IdMapsWritten)?;
            }
            Message::InitPid { pid: p } => {
                st.init_pid = Some(p);
                final_pid = p;
                pidfd = Some(fd.context("init pid message without a pidfd")?);
                // Stage 1 is done; reap it.
                st.status = waitpid(Pid::from_raw(pid), None).ok();
            }
            Message::Console => console = Some(fd.context("console message without a pty fd")?),
            Message::RunHooks => {
                let hooks = ctx.spec.hooks().clone().unwrap_or_default();
                let ann: std::collections::BTreeMap<String, String> = ctx
                    .spec
                    .annotations()
                    .clone()
                    .unwrap_or_default()
                    .into_iter()
                    .collect();
                // prestart (deprecated) first, then createRuntime, in our namespaces.
                let st = hooks::state(ctx.id, "created", final_pid, ctx.bundle, &ann);
                hooks::run_all("prestart", hooks.prestart().as_deref().unwrap_or(&[]), &st)?;
                let st = hooks::state(ctx.id, "creating", final_pid, ctx.bundle, &ann);
                hooks::run_all(
                    "createRuntime",
                    hooks.create_runtime().as_deref().unwrap_or(&[]),
                    &st,
                )?;
                chan.send(&Message::HooksDone { pid: final_pid })?;
            }
            Message::Ready => {
                // linux.netDevices: init has its network namespace now (new or joined).
                crate::linux::netdev::move_in(
                    ctx.spec,
                    Path::new(&format!("/proc/{final_pid}/ns/net")),
                )?;
                return Ok((final_pid, pidfd, console));
            }
            Message::Error { msg } => bail!("{msg}"),
            other => bail!("unexpected message from container init: {other:?}"),
        }
    }
}

/// Start a process in a running container (`exec`). Returns once it has exec'd.
pub fn spawn_exec(ctx: &setns::ExecContext, cgroup: &dyn CgroupManager) -> Result<Spawned> {
    let (parent, child) = Channel::pair()?;
    let cg_fd = cgroup.clone_into_fd();
    // execCPUAffinity.initial: the process starts on these CPUs, before it joins the
    // container's cgroup (clone3 may put it there at birth: it inherits our affinity, which
    // is ours again right after).
    let initial = ctx
        .process
        .exec_cpu_affinity()
        .as_ref()
        .and_then(|a| a.initial().as_deref())
        .filter(|s| !s.is_empty());
    let saved = match initial {
        Some(list) => {
            let saved = crate::linux::sched::get_affinity()?;
            crate::linux::sched::set_affinity("process.execCPUAffinity.initial", 0, list)?;
            Some(saved)
        }
        None => None,
    };
    // The kernel may refuse to clone into the cgroup: join it through cgroup.procs then.
    let forked = match clone3(0, cg_fd.as_ref().map(|f| f.as_raw_fd())) {
        Err(_) if cg_fd.is_some() => clone3(0, None).map(|f| (f, false)),
        r => r.map(|f| (f, cg_fd.is_some())),
    };
    if let Some(s) = &saved {
        if !matches!(forked, Ok((Forked::Child, _))) {
            crate::linux::sched::restore_affinity(s);
        }
    }
    let (pid, pidfd, in_unified) = match forked.context("clone3")? {
        (Forked::Child, _) => {
            drop(parent);
            setns::main(ctx, child)
        }
        (Forked::Parent { pid, pidfd }, in_unified) => (pid, pidfd, in_unified),
    };
    drop(child);
    let mut st = State {
        heard: false,
        init_pid: None,
        status: None,
    };
    let r = (|| -> Result<Spawned> {
        cgroup
            .add_task(pid, in_unified)
            .context("join the container's cgroup")?;
        if let Some(rdt) = ctx.intel_rdt {
            crate::linux::intelrdt::join(
                Path::new(crate::linux::intelrdt::RESCTRL),
                rdt,
                ctx.id,
                pid,
            )?;
        }
        parent.send(&Message::Go)?;
        let (mut proc_pid, mut proc_fd, mut console, mut ready) = (pid, None, None, false);
        loop {
            match parent.recv()? {
                // The exec closed the channel (close-on-exec): the program runs.
                None if ready => {
                    return Ok(Spawned {
                        pid: proc_pid,
                        pidfd: proc_fd.context("exec process has no pidfd")?,
                        console,
                    })
                }
                None => bail!("the exec process exited during setup"),
                Some((Message::InitPid { pid: p }, fd)) => {
                    st.init_pid = Some(p);
                    proc_pid = p;
                    proc_fd = Some(fd.context("exec pid message without a pidfd")?);
                    st.status = waitpid(Pid::from_raw(pid), None).ok();
                }
                Some((Message::Console, fd)) => {
                    console = Some(fd.context("console message without a pty fd")?)
                }
                Some((Message::Ready, _)) => ready = true,
                Some((Message::Error { msg }, _)) => bail!("{msg}"),
                Some((other, _)) => bail!("unexpected message from the exec process: {other:?}"),
            }
        }
    })();
    if r.is_err() {
        if let Some(p) = st.init_pid {
            let _ = nix::sys::signal::kill(Pid::from_raw(p), nix::sys::signal::Signal::SIGKILL);
        }
        if st.status.is_none() {
            let _ = clone::pidfd_send_signal(&pidfd, libc::SIGKILL);
            let _ = waitpid(Pid::from_raw(pid), None);
        }
    }
    r
}

/// The memory limit config.json sets, for an OOM error ("memory limit 1 bytes").
fn memory_limit(spec: &Spec) -> String {
    spec.linux()
        .as_ref()
        .and_then(|l| l.resources().as_ref())
        .and_then(|r| r.memory().as_ref())
        .and_then(|m| m.limit())
        .filter(|l| *l >= 0)
        .map_or("the cgroup's memory limit".to_string(), |l| {
            format!("memory limit {l} bytes")
        })
}

/// Describe how init went away without a word: OOM-killed in the container's cgroup (`oom`
/// names the limit), killed by a signal, or exited.
fn died(status: Option<WaitStatus>, oom: Option<String>) -> String {
    if let Some(limit) = oom {
        return format!("container init was OOM-killed during setup ({limit})");
    }
    match status {
        Some(WaitStatus::Exited(_, c)) => {
            format!("container init exited with status {c} during setup")
        }
        Some(WaitStatus::Signaled(_, s, _)) => {
            format!("container init was killed by {s} during setup")
        }
        _ => "container init exited during setup".to_string(),
    }
}
