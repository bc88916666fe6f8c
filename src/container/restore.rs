//! `restore`: bring a checkpointed container back with CRIU (runc's `restore`), as a new
//! container whose config, cgroup and bind-mount sources come from the bundle.
use super::checkpoint::{self, CriuOptions, DESCRIPTORS};
use super::sandbox::{self, Role};
use super::store::{self, Store};
use super::{delete, Container, Meta, Status};
use crate::cgroups::{self, CgroupManager};
use crate::linux::criu::{self, Action};
use crate::linux::{hooks, procfs, safepath};
use crate::process::clone::pidfd_open;
use crate::spec;
use anyhow::{bail, Context, Result};
use nix::mount::{mount, MsFlags};
use oci_spec::runtime::Spec;
use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};

/// The empty directory under the container's state directory where CRIU's child mounts the
/// rootfs (in a mount namespace of its own: nothing is left mounted if anything dies). The
/// name is one the store treats as a leftover temp file.
const CRIU_ROOT: &str = ".criu-root.tmp";
const CRIU_PID: &str = ".criu-pid.tmp";
const CRIU_SCRIPT: &str = ".criu-notify.tmp";

#[derive(Debug, Default, Clone)]
pub struct RestoreOptions {
    pub criu: CriuOptions,
    pub id: String,
    pub bundle: PathBuf,
    pub console_socket: Option<PathBuf>,
    pub pid_file: Option<PathBuf>,
    pub detach: bool,
    pub no_subreaper: bool,
    pub hooks_dirs: Vec<PathBuf>,
}

/// Restore; the exit code for coop (0 when detached, else the container's).
pub fn restore(store: &Store, o: &RestoreOptions) -> Result<i32> {
    store::validate_id(&o.id)?;
    if store.dir(&o.id).exists() {
        return Err(crate::error::Error::Exists(o.id.clone()).into());
    }
    if o.console_socket.is_some() {
        bail!("--console-socket: restoring a container's terminal needs CRIU's RPC (orphan-pts-master), which coop does not drive; restore with --shell-job instead");
    }
    let image_dir = o.criu.image_dir()?;
    if !image_dir.is_dir() {
        bail!(
            "checkpoint image directory {}: no such directory",
            image_dir.display()
        );
    }
    if !image_dir.join("inventory.img").is_file() {
        bail!(
            "checkpoint image directory {} holds no CRIU checkpoint (no inventory.img)",
            image_dir.display()
        );
    }
    let bundle = o
        .bundle
        .canonicalize()
        .with_context(|| format!("bundle {}", o.bundle.display()))?;
    let mut spec = spec::load(&bundle)?;
    spec::validate(&spec)?;
    crate::linux::hooksd::inject(&mut spec, &o.hooks_dirs);
    let annotations = spec.annotations().clone().unwrap_or_default();
    if sandbox::role(&o.id, &annotations, None)? != Role::Standalone {
        bail!("restore of a sandbox's root or member is not supported");
    }
    if spec
        .process()
        .as_ref()
        .and_then(|p| p.terminal())
        .unwrap_or(false)
    {
        bail!("process.terminal is set: restoring a container's own terminal needs CRIU's RPC (orphan-pts-master), which coop does not drive; checkpoint and restore with --shell-job a container whose terminal is its caller's");
    }
    let rootfs = spec::rootfs(&spec, &bundle)?;
    let criu = o.criu.criu()?;
    let work_dir = o.criu.work_dir(&image_dir)?;
    let inherit = inherit_fds(&image_dir, o.criu.shell_job)?;
    let locked = store.create(&o.id)?;
    let meta = Meta {
        id: o.id.clone(),
        bundle: bundle.clone(),
        rootfs: rootfs.clone(),
        oci_version: spec.version().clone(),
        annotations: annotations.into_iter().collect(),
        status: Status::Creating,
        pid: 0,
        pid_start_time: 0,
        created: crate::logger::rfc3339_now(),
        owner: nix::unistd::getuid().as_raw(),
        cgroup: Default::default(),
        sandbox_id: o.id.clone(),
        sandbox_root: false,
        sandbox_cgroup: None,
    };
    let mut c = Container {
        meta,
        locked,
        unreadable: None,
    };
    let mut cg: Option<Box<dyn CgroupManager>> = None;
    // Blocks signals and makes us a subreaper: the restored tree is CRIU's child, then ours.
    let sfd = if o.detach {
        None
    } else {
        Some(super::run::foreground()?)
    };
    let res = restore_locked(
        &mut c, &mut cg, o, &criu, &spec, &image_dir, &work_dir, &inherit,
    );
    let _ = std::fs::remove_dir(c.locked.path(CRIU_ROOT));
    let _ = std::fs::remove_file(c.locked.path(CRIU_PID));
    let _ = std::fs::remove_file(c.locked.path(CRIU_SCRIPT));
    if let Err(e) = res {
        // Nothing is left: no process, no cgroup, no state directory.
        if let Some(cg) = &cg {
            let _ = cg.kill_all(libc::SIGKILL);
            if c.meta.pid > 0 {
                if let Ok(p) = pidfd_open(c.meta.pid) {
                    delete::wait_exit(&p, std::time::Duration::from_secs(5));
                }
            }
            if let Err(e) = cg.destroy() {
                log::warn!("{}", crate::error::render(&e));
            }
        }
        let _ = c.locked.remove();
        return Err(e.context(format!("restore container {}", o.id)));
    }
    let id = c.meta.id.clone();
    let pid = c.meta.pid;
    let Some(sfd) = sfd else { return Ok(0) };
    let pidfd = pidfd_open(pid).with_context(|| format!("restored container {id} init"))?;
    drop(c);
    let code = super::run::wait(&sfd, &pidfd, pid, None);
    if let Err(e) = delete::delete(store, &id, true) {
        log::warn!("{}", crate::error::render(&e));
    }
    code
}

#[allow(clippy::too_many_arguments)]
fn restore_locked(
    c: &mut Container,
    cg_slot: &mut Option<Box<dyn CgroupManager>>,
    o: &RestoreOptions,
    criu: &criu::Criu,
    spec: &Spec,
    image_dir: &Path,
    work_dir: &Path,
    inherit: &[(i32, String)],
) -> Result<()> {
    let linux = spec.linux().as_ref();
    let logical = cgroups::logical_path(
        linux.and_then(|l| l.cgroups_path().as_deref()),
        &sandbox::default_cgroup(&o.id, &Role::Standalone),
    );
    let cg = cgroups::new_manager(&logical, crate::linux::rootless::Rootless::decide(None))?;
    let config = serde_json::to_vec(spec).context("serialize config")?;
    store::write_atomic(&c.locked.path(store::CONFIG), &config, 0o600)?;
    c.meta.cgroup = cg.paths().clone();
    // Recorded before the cgroup exists, so that a crashed restore can be cleaned up.
    c.save()?;
    let cg = &**cg_slot.insert(cg);
    cg.create()?;
    if let Some(r) = linux.and_then(|l| l.resources().as_ref()) {
        let devices = linux.and_then(|l| l.devices().clone()).unwrap_or_default();
        cg.apply(&cgroups::resources::with_default_devices(r, &devices))?;
    }
    prepare_mountpoints(spec, &c.meta.rootfs, &c.meta.bundle)?;
    let criu_root = c.locked.path(CRIU_ROOT);
    std::fs::create_dir(&criu_root).with_context(|| format!("create {}", criu_root.display()))?;
    let pid_file = c.locked.path(CRIU_PID);
    // CRIU execs its action script without arguments: a script that calls us back.
    let exe = std::env::current_exe().context("coop's own path")?;
    let script = c.locked.path(CRIU_SCRIPT);
    let text = format!(
        "#!/bin/sh\nexec {} criu-notify {}\n",
        shell_quote(&exe.to_string_lossy()),
        shell_quote(&c.locked.dir.to_string_lossy())
    );
    std::fs::write(&script, text).with_context(|| format!("write {}", script.display()))?;
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o700))
        .with_context(|| format!("chmod {}", script.display()))?;
    let mut args: Vec<OsString> = vec![
        "--images-dir".into(),
        image_dir.into(),
        "--restore-detached".into(),
        "--pidfile".into(),
        pid_file.clone().into(),
        "--root".into(),
        criu_root.clone().into(),
        "--cgroup-root".into(),
        cgroup_root(&logical)?.into(),
        "--action-script".into(),
        script.clone().into(),
        "--evasive-devices".into(),
    ];
    let mut criu_opts = o.criu.clone();
    if inherit.iter().any(|(_, k)| k.starts_with("tty[")) {
        // The terminal comes in through --inherit-fd; CRIU's --shell-job would take its stdin
        // for itself first and fail. The session is the container's own (init's setsid).
        criu_opts.shell_job = false;
    }
    args.extend(criu_opts.common_args());
    for (dest, src) in checkpoint::bind_mount_sources(spec) {
        let src = if src.is_absolute() {
            src
        } else {
            c.meta.bundle.join(src)
        };
        args.push("--external".into());
        args.push(criu::external_mount(&dest, &src)?);
    }
    if linux.is_some_and(|l| l.masked_paths().as_ref().is_some_and(|m| !m.is_empty())) {
        args.push("--external".into());
        args.push(criu::external_mount("/dev/null", Path::new("/dev/null"))?);
    }
    for (fd, key) in inherit {
        args.push("--inherit-fd".into());
        args.push(format!("fd[{fd}]:{key}").into());
    }
    if o.criu.empty_netns {
        args.push("--empty-ns".into());
        args.push("net".into());
    }
    let mut procs: Vec<PathBuf> = cg
        .paths()
        .v1
        .values()
        .map(|d| d.join("cgroup.procs"))
        .collect();
    procs.extend(cg.paths().unified.iter().map(|d| d.join("cgroup.procs")));
    let rootfs = c.meta.rootfs.clone();
    let mnt_root = criu_root.clone();
    criu.run_with(Action::Restore, &args, work_dir, &procs, move |cmd| {
        // SAFETY: coop is single-threaded here; the child only makes syscalls before exec.
        unsafe {
            cmd.pre_exec(move || private_root(&rootfs, &mnt_root));
        }
    })?;
    let text = std::fs::read_to_string(&pid_file)
        .with_context(|| format!("read CRIU's pid file {}", pid_file.display()))?;
    let pid: i32 = text
        .trim()
        .parse()
        .with_context(|| format!("CRIU's pid file holds {text:?}"))?;
    c.meta.pid = pid;
    c.meta.pid_start_time =
        procfs::start_time(pid).with_context(|| format!("restored init {pid} is gone"))?;
    c.meta.created = crate::logger::rfc3339_now();
    // A restored container passes through created, as runc's restored state does.
    c.set_status(Status::Created, "restore")?;
    c.set_status(Status::Running, "restore")?;
    c.save()?;
    if let Some(pf) = &o.pid_file {
        super::create::write_pid_file(pf, pid)?;
    }
    Ok(())
}

/// In CRIU's child, before exec: a mount namespace of our own (slave, so nothing propagates
/// back) in which the rootfs is bound at `at`. CRIU wants its --root to be a mount point whose
/// parent is not overmounted.
fn private_root(rootfs: &Path, at: &Path) -> std::io::Result<()> {
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS)?;
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_SLAVE,
        None::<&str>,
    )?;
    mount(
        Some(rootfs),
        at,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )?;
    Ok(())
}

/// `--cgroup-root`: the container's cgroup as a path from the hierarchy's root, for every
/// controller.
fn cgroup_root(logical: &str) -> Result<String> {
    if logical.starts_with('/') {
        return Ok(logical.to_string());
    }
    let own = std::fs::read_to_string("/proc/self/cgroup").context("read /proc/self/cgroup")?;
    let own = cgroups::parse_proc_cgroup(&own);
    let base = own
        .get("")
        .or_else(|| own.values().next())
        .map(String::as_str)
        .unwrap_or("/");
    Ok(format!("{}/{}", base.trim_end_matches('/'), logical))
}

/// Mount points of bind mounts, made in the rootfs where missing (a fresh copy of the rootfs
/// lacks those that create made). Under a tmpfs of the config CRIU restores the tmpfs with
/// its contents, so those are left alone.
fn prepare_mountpoints(spec: &Spec, rootfs: &Path, bundle: &Path) -> Result<()> {
    let tmpfs: Vec<String> = spec
        .mounts()
        .iter()
        .flatten()
        .filter(|m| m.typ().as_deref() == Some("tmpfs"))
        .map(|m| {
            m.destination()
                .to_string_lossy()
                .trim_end_matches('/')
                .to_string()
        })
        .collect();
    let root: std::os::fd::OwnedFd = std::fs::File::open(rootfs)
        .with_context(|| format!("rootfs {}", rootfs.display()))?
        .into();
    for (dest, src) in checkpoint::bind_mount_sources(spec) {
        if tmpfs.iter().any(|t| dest.starts_with(&format!("{t}/"))) {
            continue;
        }
        let src = if src.is_absolute() {
            src
        } else {
            bundle.join(src)
        };
        let kind = if std::fs::metadata(&src).map(|m| m.is_dir()).unwrap_or(true) {
            safepath::Kind::Dir
        } else {
            safepath::Kind::File
        };
        // Inside the rootfs whatever its symlinks say, created only where missing.
        safepath::ensure(&root, Path::new(&dest), kind)
            .with_context(|| format!("mount point {dest} in {}", rootfs.display()))?;
    }
    Ok(())
}

/// `--inherit-fd` pairs from the checkpoint's descriptors.json: stdio that was a pipe is
/// replaced by our own fd of the same number, as runc does; a terminal needs --shell-job
/// and a terminal of ours.
fn inherit_fds(image_dir: &Path, shell_job: bool) -> Result<Vec<(i32, String)>> {
    let p = image_dir.join(DESCRIPTORS);
    let data = match std::fs::read(&p) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
        Err(e) => return Err(e).with_context(|| format!("read {}", p.display())),
    };
    let fds: Vec<String> =
        serde_json::from_slice(&data).with_context(|| format!("corrupt {}", p.display()))?;
    let mut out = vec![];
    for (i, key) in fds.into_iter().enumerate() {
        let fd = i as i32;
        if key.starts_with("tty[") {
            // SAFETY: isatty on an integer fd.
            if !shell_job || unsafe { libc::isatty(fd) } != 1 {
                bail!("the checkpoint's fd {fd} is a terminal: restore with --shell-job and a terminal as fd {fd}");
            }
            out.push((fd, key));
        } else if key.starts_with("pipe:") {
            out.push((fd, key));
        }
    }
    Ok(out)
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// The action script CRIU runs at each step of a restore (`coop criu-notify DIR`, with
/// CRTOOLS_SCRIPT_ACTION and CRTOOLS_INIT_PID in the environment). At `setup-namespaces`, when
/// the restored init exists but has not resumed, the config's prestart and createRuntime
/// hooks run, where runc runs them. The restoring coop holds the container's lock: this reads
/// its files without locking.
pub fn notify(dir: &Path) -> Result<()> {
    let action = std::env::var("CRTOOLS_SCRIPT_ACTION").unwrap_or_default();
    if action != "setup-namespaces" {
        return Ok(());
    }
    let pid: i32 = std::env::var("CRTOOLS_INIT_PID")
        .ok()
        .and_then(|p| p.parse().ok())
        .context("CRIU gave no CRTOOLS_INIT_PID")?;
    let meta = sandbox::read_meta(dir)?;
    let p = dir.join(store::CONFIG);
    let data = std::fs::read(&p).with_context(|| format!("read {}", p.display()))?;
    let spec: Spec =
        serde_json::from_slice(&data).with_context(|| format!("corrupt {}", p.display()))?;
    let Some(h) = spec.hooks() else { return Ok(()) };
    let st = hooks::state(&meta.id, "creating", pid, &meta.bundle, &meta.annotations);
    if let Some(pre) = h.prestart() {
        hooks::run_all("prestart", pre, &st)?;
    }
    if let Some(cr) = h.create_runtime() {
        hooks::run_all("createRuntime", cr, &st)?;
    }
    Ok(())
}
