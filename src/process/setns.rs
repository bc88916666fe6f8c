//! The child side of `exec`: one ordered list of steps that joins a running container and
//! becomes the new process (runc's setns init beside its standard init).
//!
//! Protocol (same messages as create, see sync.rs): parent clone3 (into the cgroup where it
//! can) -> joins v1 cgroups -> Go; child joins the namespaces, forks (the pid namespace
//! applies to children) and stage 1 reports InitPid; the process sends Console (with a
//! terminal) and Ready, then execs; the parent reads on until EOF (the exec closed the
//! channel) or an Error.
use super::finish;
use super::sync::{Channel, Message};
use crate::linux::{fds, signals, tty, user};
use anyhow::{Context, Result};
use oci_spec::runtime::{LinuxSeccomp, Process};
use std::convert::Infallible;
use std::os::fd::OwnedFd;

pub struct ExecContext<'a> {
    /// The container's init, whose namespaces the process joins.
    pub init_pid: i32,
    pub process: &'a Process,
    pub seccomp: Option<&'a LinuxSeccomp>,
    pub preserve_fds: i32,
    /// The container's id, bundle and annotations, for the seccomp agent's state.
    pub id: &'a str,
    pub bundle: &'a std::path::Path,
    pub annotations: std::collections::BTreeMap<String, String>,
    pub personality: Option<&'a oci_spec::runtime::LinuxPersonality>,
    pub memory_policy: Option<&'a oci_spec::runtime::LinuxMemoryPolicy>,
    pub intel_rdt: Option<&'a oci_spec::runtime::LinuxIntelRdt>,
}

/// Namespaces in join order: user first (it grants the rights to join the others), mount
/// last (it changes how the other paths resolve).
const ORDER: [(&str, nix::sched::CloneFlags); 8] = [
    ("user", nix::sched::CloneFlags::CLONE_NEWUSER),
    ("cgroup", nix::sched::CloneFlags::CLONE_NEWCGROUP),
    ("ipc", nix::sched::CloneFlags::CLONE_NEWIPC),
    ("uts", nix::sched::CloneFlags::CLONE_NEWUTS),
    ("net", nix::sched::CloneFlags::CLONE_NEWNET),
    ("pid", nix::sched::CloneFlags::CLONE_NEWPID),
    (
        "time",
        nix::sched::CloneFlags::from_bits_retain(libc::CLONE_NEWTIME),
    ),
    ("mnt", nix::sched::CloneFlags::CLONE_NEWNS),
];

pub fn main(ctx: &ExecContext, chan: Channel) -> ! {
    let err = match run(ctx, &chan) {
        Ok(never) => match never {},
        Err(e) => e,
    };
    let _ = chan.send(&Message::Error {
        msg: crate::error::render(&err),
    });
    // SAFETY: leave without running coop's destructors in this copy of its memory.
    unsafe { libc::_exit(127) }
}

fn run(ctx: &ExecContext, chan: &Channel) -> Result<Infallible> {
    // 1. Default signals, non-dumpable while we are coop (see init.rs).
    signals::reset_all();
    // SAFETY: prctl with integer arguments.
    unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) };

    // 2. Only stdio and --preserve-fds reach the process.
    fds::close_inherited(ctx.preserve_fds, &[chan.raw_fd()])?;

    // 3. The parent has put us in the container's cgroups.
    chan.expect(&Message::Go)?;
    // The seccomp agent's socket is a host path: connect before joining the mount namespace.
    let agent = ctx
        .seccomp
        .map(crate::linux::seccomp::connect_listener)
        .transpose()?
        .flatten();
    // The agent gets our pid as the host sees it: keep the host's /proc in view.
    let host_proc = match agent {
        Some(_) => Some(std::fs::File::open("/proc").context("open /proc")?),
        None => None,
    };

    // 4. Open the container's namespaces that differ from ours (all before joining any).
    let mut joins: Vec<(nix::sched::CloneFlags, OwnedFd)> = vec![];
    let mut joined_user = false;
    for (name, flag) in ORDER {
        let theirs = format!("/proc/{}/ns/{name}", ctx.init_pid);
        let Ok(target) = std::fs::read_link(&theirs) else {
            continue;
        };
        if std::fs::read_link(format!("/proc/self/ns/{name}")).ok() == Some(target) {
            continue;
        }
        let f = std::fs::File::open(&theirs).with_context(|| format!("open {theirs}"))?;
        joined_user |= name == "user";
        joins.push((flag, f.into()));
    }

    // 5. Join them; the pid namespace takes effect for children, so fork the process.
    for (flag, fd) in &joins {
        nix::sched::setns(fd, *flag)
            .with_context(|| format!("join the container's {flag:?} namespace"))?;
    }
    drop(joins);
    super::clone::fork_and_report(chan).context("fork the exec process")?;

    // 6. A session of its own; root of the container's user namespace if we joined one.
    nix::unistd::setsid().context("setsid")?;
    if joined_user {
        user::become_ns_root()?;
    }

    // 6b. execCPUAffinity.final, now that we are in the container's cgroup (the initial
    //     affinity was set before, by the parent, see spawn_exec).
    if let Some(fin) = ctx
        .process
        .exec_cpu_affinity()
        .as_ref()
        .and_then(|a| a.cpu_affinity_final().as_deref())
        .filter(|s| !s.is_empty())
    {
        crate::linux::sched::set_affinity("process.execCPUAffinity.final", 0, fin)?;
    }

    // 7. Terminal: a pty of the container's devpts.
    if ctx.process.terminal().unwrap_or(false) {
        let size = ctx
            .process
            .console_size()
            .as_ref()
            .map(|b| (b.height() as u16, b.width() as u16));
        let master = tty::setup_console(size)?;
        use std::os::fd::AsFd;
        chan.send_with_fd(&Message::Console, Some(master.as_fd()))?;
    }

    let own_pid = host_proc
        .as_ref()
        .and_then(|p| nix::fcntl::readlinkat(p, "self").ok())
        .and_then(|p| p.to_str()?.parse::<i32>().ok())
        .unwrap_or(0);
    drop(host_proc);

    // 8-13. rlimits, user, capabilities, cwd, env, executable, Ready, LSM, seccomp, exec.
    let f = finish::Finish {
        process: ctx.process,
        seccomp: ctx.seccomp,
        cwd: ctx.process.cwd(),
        listen_fds: 0,
        state: crate::linux::hooks::state_value(
            ctx.id,
            "running",
            ctx.init_pid,
            ctx.bundle,
            &ctx.annotations,
        ),
        host_pid: own_pid,
        agent,
        personality: ctx.personality,
        memory_policy: ctx.memory_policy,
    };
    finish::run(&f, || chan.send(&Message::Ready))
}
