//! The last steps of every container process, create's init and exec's alike: from rlimits
//! to execve, in this order.
use super::init::{environment, exec, lookup, refuse_own_binary, DEFAULT_PATH};
use crate::linux::{capabilities, rlimits, user};
use anyhow::{bail, Context, Result};
use oci_spec::runtime::{LinuxMemoryPolicy, LinuxPersonality, LinuxSeccomp, Process};
use std::convert::Infallible;
use std::path::Path;

pub struct Finish<'a> {
    pub process: &'a Process,
    pub seccomp: Option<&'a LinuxSeccomp>,
    pub cwd: &'a Path,
    pub listen_fds: i32,
    /// The container's state, for a seccomp NOTIFY listener.
    pub state: serde_json::Value,
    /// This process's pid as the host sees it, for the seccomp agent.
    pub host_pid: i32,
    /// The connection to the seccomp agent, made while listenerPath was still in view.
    pub agent: Option<std::os::unix::net::UnixStream>,
    /// linux.personality and linux.memoryPolicy: the container's, for init and exec alike.
    pub personality: Option<&'a LinuxPersonality>,
    pub memory_policy: Option<&'a LinuxMemoryPolicy>,
}

pub fn run(f: &Finish, ready: impl FnOnce() -> Result<()>) -> Result<Infallible> {
    let process = f.process;
    let (f_seccomp, f_state, f_agent, f_pid) =
        (f.seccomp, f.state.clone(), f.agent.as_ref(), f.host_pid);
    // The seccomp filter is compiled now, so that a bad profile fails create.
    let seccomp = f.seccomp.map(crate::linux::seccomp::compile).transpose()?;
    let nnp = process.no_new_privileges().unwrap_or(false);
    // Without no_new_privs, installing the filter needs CAP_SYS_ADMIN: the final capability
    // sets then wait until the filter is in (as runc does).
    let caps_after_seccomp = seccomp.is_some() && !nnp;

    // 14b. Memory policy, I/O priority and scheduler while still privileged (realtime
    //      policies and IOPRIO_CLASS_RT need CAP_SYS_NICE / CAP_SYS_ADMIN).
    if let Some(m) = f.memory_policy {
        crate::linux::mempolicy::apply(m)?;
    }
    if let Some(p) = process.io_priority() {
        crate::linux::sched::set_ioprio(p)?;
    }
    if let Some(s) = process.scheduler() {
        crate::linux::sched::set_scheduler(s)?;
    }

    // 15. rlimits, before the user switch drops the right to set them.
    rlimits::apply(process.rlimits().as_deref().unwrap_or(&[]))?;

    // 16. User and capabilities: the bounding set needs CAP_SETPCAP, so it goes first; the
    //     user switch keeps capabilities (PR_SET_KEEPCAPS) and the final sets come after.
    if let Some(c) = process.capabilities() {
        capabilities::drop_bounding(c)?;
    }
    user::switch(process.user())?;
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(
        process.user().umask().unwrap_or(0o022),
    ));
    if caps_after_seccomp {
        // Still in the permitted set thanks to PR_SET_KEEPCAPS.
        let _ = caps::raise(
            None,
            caps::CapSet::Effective,
            caps::Capability::CAP_SYS_ADMIN,
        );
    } else if let Some(c) = process.capabilities() {
        capabilities::apply(c)?;
    }

    // 17. Working directory, environment and the executable, checked now so that create
    //     fails (not start) when the program does not exist.
    nix::unistd::chdir(f.cwd).with_context(|| format!("chdir to {}", f.cwd.display()))?;
    // The working directory must be inside the new root (no leaked host directory); checked
    // here, long before seccomp could block getcwd.
    let here = nix::unistd::getcwd().context("getcwd")?;
    if !here.is_absolute() || here.starts_with("(unreachable)") {
        bail!(
            "working directory {} is outside the container's root",
            f.cwd.display()
        );
    }
    let env = environment(
        process.env().as_deref().unwrap_or(&[]),
        process.user().uid(),
        f.listen_fds,
    );
    let args = process.args().as_deref().unwrap_or(&[]);
    let path_var = env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or(DEFAULT_PATH)
        .to_string();
    let exe = lookup(&args[0], &path_var)?;
    refuse_own_binary(&exe)?;

    // 18. The caller's moment: create's init reports Ready and waits on exec.fifo; exec's
    //     process reports Ready. With a seccomp agent, after the filter (below): the agent
    //     then has its listener before create or exec returns (agents wait for it before
    //     `start`), and the exec.fifo wait and startContainer hooks run under the filter, as
    //     with runc, which loads the filter before the exec.fifo wait.
    let mut ready = Some(ready);
    if f_agent.is_none() {
        ready.take().map_or(Ok(()), |r| r())?;
    }

    // 18b. The execution domain, after coop's own work (LINUX32 changes what uname says).
    if let Some(p) = f.personality {
        crate::linux::personality::apply(p)?;
    }

    // 19. LSM labels for the exec, then (startContainer hooks and seccomp) as late as possible.
    crate::linux::lsm::set_exec_labels(
        process.apparmor_profile().as_deref(),
        process.selinux_label().as_deref(),
    )?;
    if nnp {
        // SAFETY: prctl with integer arguments.
        if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
            return Err(std::io::Error::last_os_error()).context("set no_new_privs");
        }
    }
    // The filter last: only capset (when it waited) and execve run under it.
    if let Some(f) = &seccomp {
        if let Some(listener) = crate::linux::seccomp::install(f)? {
            // SCMP_ACT_NOTIFY rules: hand the listener to the agent at listenerPath.
            use std::os::fd::AsFd;
            let s = f_seccomp.context("seccomp listener without a profile")?;
            let agent =
                f_agent.context("linux.seccomp.listenerPath is required with SCMP_ACT_NOTIFY")?;
            crate::linux::seccomp::send_listener(
                agent,
                s.listener_metadata().as_deref(),
                listener.as_fd(),
                f_pid,
                &f_state,
            )?;
        }
    }
    ready.take().map_or(Ok(()), |r| r())?;
    if caps_after_seccomp {
        if let Some(c) = process.capabilities() {
            capabilities::apply(c)?;
        }
    }

    // 20. exec.
    exec(&exe, args, &env)
}
