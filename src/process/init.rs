//! The container's init: one ordered list of steps from clone3 to execve.
//!
//! It runs in the child of clone3 with a copy of coop's memory, single-threaded. Any error is
//! sent to the parent as a message (it becomes coop's error) and init exits 1: it never dies
//! silently. The numbered steps below are the order; the comments say why.
use super::clone;
use super::finish;
use super::sync::{Channel, Message};
use super::InitContext;
use crate::linux::{fds, hooks, namespaces, net, rootfs, signals, tty, user};
use anyhow::{bail, Context, Result};
use nix::sched::{unshare, CloneFlags};
use std::convert::Infallible;
use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

pub fn main(ctx: &InitContext, chan: Channel) -> ! {
    let mut ready = false;
    let err = match run(ctx, &chan, &mut ready) {
        Ok(never) => match never {},
        Err(e) => e,
    };
    let msg = crate::error::render(&err);
    if ready {
        // coop has returned from create: the container's stderr is all there is.
        let _ = std::io::Write::write_all(
            &mut std::io::stderr(),
            format!("coop: error: {msg}\n").as_bytes(),
        );
    } else {
        let _ = chan.send(&Message::Error { msg });
    }
    // SAFETY: _exit ends this process without running the parent's atexit handlers or
    // destructors, which belong to coop's copy of the memory.
    unsafe { libc::_exit(if ready { 127 } else { 1 }) }
}

fn run(ctx: &InitContext, chan: &Channel, ready: &mut bool) -> Result<Infallible> {
    let spec = ctx.spec;
    let linux = spec.linux().as_ref();
    // The spec requires a process only at start: create works without one, start fails.
    let process = spec.process().as_ref();
    let plan = &ctx.plan;

    // 1. Default signal dispositions and an empty mask: Rust ignores SIGPIPE and `run` blocks
    //    the signals it forwards; neither may leak into the container.
    signals::reset_all();
    // Die with coop until create is done: a create killed half way must not leave an init
    // behind (cleared just before Ready; after it, EOF on the channel and the record tell).
    // The parent may have died before the prctl: then getppid is no longer coop (0 when init
    // is pid 1 of a new pid namespace: then the EOF on the channel tells).
    // SAFETY: prctl with integer arguments.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) };
    let ppid = nix::unistd::getppid().as_raw();
    if ppid != 0 && ppid != ctx.parent_pid {
        bail!("coop exited during create");
    }
    // Non-dumpable while we are coop: no process of the container may open our
    // /proc/PID/exe (the host's coop binary) or our memory. execve resets it. With a new user
    // namespace made by clone3, only once the parent has written our id maps: a non-dumpable
    // process's /proc files belong to the host's root, and a rootless parent could not write
    // them (nobody else is in that namespace before then).
    let maps_before_go = plan.new_user && !plan.two_stage;
    if !maps_before_go {
        set_dumpable(false);
    }

    // 2. Close every inherited fd but stdio, --preserve-fds/LISTEN_FDS and our channel: a
    //    runtime's fds (containerd's stray fd 3, the state lock) must not reach the container.
    let mut keep = vec![chan.raw_fd()];
    keep.extend(ctx.idmap_fds.iter().map(|(_, fd)| *fd));
    fds::close_inherited(ctx.preserve_fds, &keep)?;

    // 3. Wait for the parent: it writes our id maps and puts us in our cgroups first (or while
    //    we set up the filesystem: step 9b).
    chan.expect(&Message::Go)?;
    if maps_before_go {
        set_dumpable(false);
    }

    // 4. Namespaces. The fast path already has its new ones from clone3 and only joins the
    //    others; the two-stage path joins, unshares and forks here (see linux/namespaces.rs).
    let joins = namespaces::open_joins(plan)?;
    if plan.two_stage {
        namespaces::join_all(&joins)?;
        if plan.new_user {
            unshare(CloneFlags::CLONE_NEWUSER).context("create user namespace")?;
            // Dumpable just while the parent writes the maps (see step 1), as runc does.
            set_dumpable(true);
            chan.send(&Message::WriteIdMaps)?;
            chan.expect(&Message::IdMapsWritten)?;
            set_dumpable(false);
        }
        namespaces::unshare_flags(plan.new_flags & !(libc::CLONE_NEWUSER as u64))?;
        if let Some(off) = &plan.time_offsets {
            namespaces::write_time_offsets(off)?;
        }
        // pid and time namespaces apply to children only: fork the real init.
        clone::fork_and_report(chan).context("fork container init")?;
    } else {
        namespaces::join_all(&joins)?;
    }
    drop(joins);
    let in_userns = plan.new_user
        || plan
            .joins
            .iter()
            .any(|(t, _)| *t == oci_spec::runtime::LinuxNamespaceType::User);
    if in_userns {
        user::become_ns_root()?;
    }
    // 4b. A new network namespace gets its loopback up, before any hook may expect it.
    if plan.new_flags & libc::CLONE_NEWNET as u64 != 0 {
        net::loopback_up()?;
    }

    // 5. A session of its own (and, with a terminal, the pty as controlling terminal later).
    nix::unistd::setsid().context("setsid")?;

    // 6. The cgroup namespace only now, so that it is rooted at the container's cgroup.
    if plan.new_cgroup {
        unshare(CloneFlags::CLONE_NEWCGROUP).context("create cgroup namespace")?;
    }

    // 7. oom_score_adj while we are still fully privileged.
    if let Some(adj) = process.and_then(|p| p.oom_score_adj()) {
        crate::linux::procfs::require_procfs(Path::new("/proc/self"))?;
        std::fs::write("/proc/self/oom_score_adj", adj.to_string()).map_err(|e| {
            let hint = if matches!(e.raw_os_error(), Some(libc::EACCES | libc::EPERM)) {
                " (lowering it needs CAP_SYS_RESOURCE)"
            } else {
                ""
            };
            anyhow::Error::new(e).context(format!("set oom_score_adj to {adj}{hint}"))
        })?;
    }

    // 8. exec.fifo lives on the host: hold it by an O_PATH fd across pivot_root.
    let fifo: OwnedFd = nix::fcntl::open(
        ctx.fifo,
        nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .with_context(|| format!("open {}", ctx.fifo.display()))?;

    // 8b. The seccomp agent's socket is a host path: connect while the host is in view.
    let agent = linux
        .and_then(|l| l.seccomp().as_ref())
        .map(crate::linux::seccomp::connect_listener)
        .transpose()?
        .flatten();
    // Its message carries our pid as the host sees it: /proc is still the host's here.
    let agent_pid = match &agent {
        Some(_) => std::fs::read_link("/proc/self")
            .ok()
            .and_then(|p| p.to_str()?.parse::<i32>().ok())
            .unwrap_or(0),
        None => 0,
    };

    // 9. The filesystem: propagation, rootfs bind, mounts in order, /dev, pivot_root.
    //    (createRuntime and createContainer hooks belong here, before pivot_root.)
    //    Before pivot_root: prestart and createRuntime hooks (run by the parent, in the
    //    runtime's namespaces), then createContainer hooks (here, in our mount namespace).
    let hooks = spec.hooks().clone().unwrap_or_default();
    let annotations: std::collections::BTreeMap<String, String> = spec
        .annotations()
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect();
    let host_pid = std::cell::Cell::new(agent_pid);
    let any = |h: &Option<Vec<oci_spec::runtime::Hook>>| h.as_ref().is_some_and(|v| !v.is_empty());
    let before_pivot = || -> Result<()> {
        if !(any(hooks.prestart())
            || any(hooks.create_runtime())
            || any(hooks.create_container())
            || any(hooks.start_container()))
        {
            return Ok(());
        }
        chan.send(&Message::RunHooks)?;
        let pid = match chan.recv()? {
            Some((Message::HooksDone { pid }, _)) => pid,
            other => bail!("sync: expected HooksDone, got {other:?}"),
        };
        host_pid.set(pid);
        let st = hooks::state(ctx.id, "creating", pid, ctx.bundle, &annotations);
        // The process's env as the spec gives it (runc's init has no HOME yet here).
        let env = process.and_then(|p| p.env().clone()).unwrap_or_default();
        hooks::run_all_in_container(
            "createContainer",
            hooks.create_container().as_deref().unwrap_or(&[]),
            &st,
            &env,
        )
    };
    rootfs::prepare(&rootfs::Config {
        before_pivot: &before_pivot,
        spec,
        rootfs: ctx.rootfs,
        bundle: ctx.bundle,
        no_pivot: ctx.no_pivot,
        in_userns,
        cgroup_dirs: ctx.cgroup_dirs.clone(),
        new_cgroupns: plan.new_cgroup,
        mount_ns: plan.has(oci_spec::runtime::LinuxNamespaceType::Mount),
        idmap_fds: &ctx.idmap_fds,
    })?;
    if plan.has(oci_spec::runtime::LinuxNamespaceType::Mount) {
        // Stdio on the host's /dev/null would keep CRIU from checkpointing the container.
        crate::linux::fds::reopen_dev_null()?;
    }

    // 9b. In our cgroups from here on (see super::joins_while_init_prepares).
    if super::joins_while_init_prepares(ctx) {
        chan.expect(&Message::Joined)?;
    }

    // 10. The working directory must exist in the new root (created as root, like runc).
    let cwd = process
        .map(|p| p.cwd().clone())
        .unwrap_or_else(|| PathBuf::from("/"));
    std::fs::create_dir_all(&cwd)
        .with_context(|| format!("create working directory {}", cwd.display()))?;

    // 11. Read-only root, hostname and domainname, then sysctls: they write /proc/sys, which
    //     the read-only paths may cover next.
    //     Without a mount namespace of its own the root is the caller's directory, not a mount
    //     of the container's: runc leaves it as it is, and so does coop.
    let readonly = spec.root().as_ref().and_then(|r| r.readonly()) == Some(true);
    if readonly && plan.has(oci_spec::runtime::LinuxNamespaceType::Mount) {
        rootfs::readonly_root()?;
    }
    if let Some(h) = spec.hostname().as_deref().filter(|h| !h.is_empty()) {
        nix::unistd::sethostname(h).with_context(|| format!("set hostname {h}"))?;
    }
    if let Some(d) = spec.domainname().as_deref().filter(|d| !d.is_empty()) {
        let c = CString::new(d)?;
        // SAFETY: valid pointer and length.
        if unsafe { libc::setdomainname(c.as_ptr(), d.len()) } != 0 {
            return Err(std::io::Error::last_os_error())
                .with_context(|| format!("set domainname {d}"));
        }
    }
    for (k, v) in linux
        .and_then(|l| l.sysctl().as_ref())
        .into_iter()
        .flatten()
    {
        rootfs::sysctl(k, v)?;
    }

    // 12. Read-only and masked paths.
    if let Some(l) = linux {
        rootfs::readonly_paths(l.readonly_paths().as_deref().unwrap_or(&[]))?;
        rootfs::mask_paths(l.masked_paths().as_deref().unwrap_or(&[]))?;
    }
    if plan.has(oci_spec::runtime::LinuxNamespaceType::Mount) {
        rootfs::late_propagation(spec)?;
    }

    // 13. Terminal: a pty of the container's devpts; the master goes to the parent.
    if let Some(process) = process.filter(|p| p.terminal().unwrap_or(false)) {
        let size = process
            .console_size()
            .as_ref()
            .map(|b| (b.height() as u16, b.width() as u16));
        let master = tty::setup_console(size)?;
        use std::os::fd::AsFd;
        chan.send_with_fd(&Message::Console, Some(master.as_fd()))?;
    }

    // 14. A session keyring of its own, so containers do not share the host's.
    if !ctx.no_new_keyring {
        join_session_keyring(ctx.id)?;
    }

    let Some(process) = process else {
        no_pdeathsig();
        chan.send(&Message::Ready)?;
        *ready = true;
        wait_for_start(&fifo)?;
        bail!("config.json has no \"process\": nothing to start");
    };

    // 15-20: rlimits, user, capabilities, cwd, env, the executable; then Ready, the wait on
    // exec.fifo, LSM labels, seccomp and exec (process/finish.rs, shared with exec).
    let f = finish::Finish {
        process,
        seccomp: linux.and_then(|l| l.seccomp().as_ref()),
        cwd: &cwd,
        listen_fds: ctx.listen_fds,
        state: hooks::state_value(ctx.id, "creating", host_pid.get(), ctx.bundle, &annotations),
        host_pid: host_pid.get(),
        agent,
        personality: linux.and_then(|l| l.personality().as_ref()),
        memory_policy: linux.and_then(|l| l.memory_policy().as_ref()),
    };
    finish::run(&f, || {
        // 18. Tell the parent we are ready, then block on exec.fifo until `coop start`;
        //     startContainer hooks run right after, inside the container.
        no_pdeathsig();
        chan.send(&Message::Ready)?;
        *ready = true;
        wait_for_start(&fifo)?;
        let st = hooks::state(ctx.id, "created", host_pid.get(), ctx.bundle, &annotations);
        // The environment the process will get (HOME added, as runc's init has it here).
        let env = environment(
            process.env().as_deref().unwrap_or(&[]),
            process.user().uid(),
            ctx.listen_fds,
        );
        hooks::run_all_in_container(
            "startContainer",
            hooks.start_container().as_deref().unwrap_or(&[]),
            &st,
            &env,
        )
    })
}

fn join_session_keyring(id: &str) -> Result<()> {
    let name = CString::new(format!("_ses.{id}")).unwrap_or_default();
    const KEYCTL_JOIN_SESSION_KEYRING: libc::c_long = 1;
    // SAFETY: keyctl with a valid NUL-terminated name.
    let r = unsafe { libc::syscall(libc::SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, name.as_ptr()) };
    if r < 0 {
        let e = std::io::Error::last_os_error();
        // No keyring support (ENOSYS) or a restricted host (EPERM, EACCES): go on, as runc does.
        if !matches!(
            e.raw_os_error(),
            Some(libc::ENOSYS | libc::EPERM | libc::EACCES | libc::EDQUOT)
        ) {
            return Err(e).context("join a new session keyring");
        }
    }
    Ok(())
}

/// process.env, plus HOME when missing (from the rootfs's /etc/passwd) and LISTEN_FDS.
pub fn environment(env: &[String], uid: u32, listen_fds: i32) -> Vec<String> {
    let mut out: Vec<String> = env.to_vec();
    let has = |out: &Vec<String>, k: &str| out.iter().any(|e| e.split('=').next() == Some(k));
    if !has(&out, "HOME") {
        out.push(format!(
            "HOME={}",
            user::home_dir(Path::new("/etc/passwd"), uid)
        ));
    }
    if listen_fds > 0 && !has(&out, "LISTEN_FDS") {
        out.push(format!("LISTEN_FDS={listen_fds}"));
        out.push("LISTEN_PID=1".to_string());
    }
    out
}

/// Find the program as execvp would, with the messages runc prints (podman maps them to
/// exit codes 126 and 127).
pub fn lookup(name: &str, path: &str) -> Result<PathBuf> {
    use nix::unistd::{access, AccessFlags};
    let check = |p: &Path| -> Result<()> {
        let meta =
            std::fs::metadata(p).with_context(|| format!("exec {name:?}: stat {}", p.display()))?;
        if meta.is_dir() {
            bail!(
                "exec {name:?}: {} is a directory: permission denied",
                p.display()
            );
        }
        access(p, AccessFlags::X_OK).map_err(|e| {
            anyhow::anyhow!(
                "exec {name:?}: {}: {}",
                p.display(),
                crate::error::errno_text(e as i32)
            )
        })
    };
    if name.contains('/') {
        check(Path::new(name))?;
        return Ok(PathBuf::from(name));
    }
    let mut denied = None;
    for dir in path.split(':') {
        let dir = if dir.is_empty() { "." } else { dir };
        let p = Path::new(dir).join(name);
        if p.is_file() {
            match check(&p) {
                Ok(()) => return Ok(p),
                Err(e) => denied = denied.or(Some(e)),
            }
        }
    }
    match denied {
        Some(e) => Err(e),
        None => bail!("exec {name:?}: executable file not found in $PATH"),
    }
}

/// Refuse to exec coop's own binary inside the container, directly (`/proc/self/exe`) or as a
/// script interpreter (`#!/proc/self/exe`, followed as the kernel does, four levels deep): it
/// would run the host's coop binary in the container, where the container could then open it
/// for writing through /proc/PID/exe (the CVE-2019-5736 class).
pub fn refuse_own_binary(exe: &Path) -> Result<()> {
    use std::io::Read;
    let own = nix::sys::stat::stat("/proc/self/exe").context("stat /proc/self/exe")?;
    let mut path = exe.to_path_buf();
    for _ in 0..5 {
        let Ok(st) = nix::sys::stat::stat(&path) else {
            return Ok(());
        };
        if (st.st_dev, st.st_ino) == (own.st_dev, own.st_ino) {
            bail!(
                "exec {}: refusing to run the container runtime's own binary inside the container",
                exe.display()
            );
        }
        let mut head = [0u8; 256];
        let n = match std::fs::File::open(&path).and_then(|mut f| f.read(&mut head)) {
            Ok(n) => n,
            Err(_) => return Ok(()),
        };
        let Some(line) = head[..n].strip_prefix(b"#!") else {
            return Ok(());
        };
        let line = line.split(|b| *b == b'\n').next().unwrap_or_default();
        let interp = String::from_utf8_lossy(line);
        let Some(interp) = interp.split_whitespace().next() else {
            return Ok(());
        };
        path = PathBuf::from(interp);
    }
    Ok(())
}

/// From Ready on, init outlives the `create` that made it.
fn no_pdeathsig() {
    // SAFETY: prctl with integer arguments.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, 0, 0, 0, 0) };
}

fn wait_for_start(fifo: &OwnedFd) -> Result<()> {
    let path = format!("/proc/self/fd/{}", fifo.as_raw_fd());
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .context("open exec.fifo (is /proc mounted in the container?)")?;
    use std::io::Write;
    (&f).write_all(b"0").context("write exec.fifo")?;
    // Kept open (close-on-exec): `start` sees end-of-file the moment the program is exec'd,
    // which is when poststart hooks may run.
    std::mem::forget(f);
    Ok(())
}

pub fn exec(exe: &Path, args: &[String], env: &[String]) -> Result<Infallible> {
    use std::os::unix::ffi::OsStrExt;
    let c_exe = CString::new(exe.as_os_str().as_bytes())?;
    let c_args: Vec<CString> = args
        .iter()
        .map(|a| CString::new(a.as_bytes()))
        .collect::<Result<_, _>>()?;
    let c_env: Vec<CString> = env
        .iter()
        .map(|a| CString::new(a.as_bytes()))
        .collect::<Result<_, _>>()?;
    let e = nix::unistd::execve(&c_exe, &c_args, &c_env).unwrap_err();
    Err(std::io::Error::from(e)).with_context(|| format!("exec {}", exe.display()))
}

fn set_dumpable(on: bool) {
    // SAFETY: prctl with integer arguments.
    unsafe { libc::prctl(libc::PR_SET_DUMPABLE, on as libc::c_ulong, 0, 0, 0) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_messages() {
        let err = lookup("definitely-not-here", "/bin:/usr/bin").unwrap_err();
        assert_eq!(
            err.to_string(),
            "exec \"definitely-not-here\": executable file not found in $PATH"
        );
        let err = crate::error::render(&lookup("/nope/x", "").unwrap_err());
        assert!(
            err.ends_with("stat /nope/x: no such file or directory"),
            "{err}"
        );
        assert_eq!(
            lookup("sh", "/nonexistent:/bin").unwrap(),
            Path::new("/bin/sh")
        );
        let tmp = tempfile::tempdir().unwrap();
        let f = tmp.path().join("plain");
        std::fs::write(&f, "x").unwrap();
        let err = crate::error::render(&lookup(f.to_str().unwrap(), "").unwrap_err());
        assert!(err.ends_with("permission denied"), "{err}");
    }

    #[test]
    fn env_gets_home() {
        let e = environment(&["PATH=/bin".into()], 12345, 2);
        assert!(e.contains(&"HOME=/".to_string()));
        assert!(e.contains(&"LISTEN_FDS=2".to_string()));
        let e = environment(&["HOME=/x".into()], 0, 0);
        assert_eq!(e, vec!["HOME=/x".to_string()]);
    }
}
