//! `create`: set up a container whose init waits on exec.fifo.
use super::sandbox::{self, Role};
use super::store::{self, Store};
use super::{Container, Meta, Status};
use crate::cgroups::{self, CgroupManager};
use crate::linux::rootless::Rootless;
use crate::linux::{fds, namespaces, procfs, tty};
use crate::process::{self, InitContext};
use crate::spec;
use anyhow::{bail, Context, Result};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

#[derive(Debug, Default, Clone)]
pub struct CreateOptions {
    pub id: String,
    pub bundle: PathBuf,
    pub console_socket: Option<PathBuf>,
    pub pid_file: Option<PathBuf>,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    pub preserve_fds: i32,
    /// A foreground `run` relays the terminal itself; everyone else needs a console socket.
    pub relay_tty: bool,
    /// `--sandbox ID`: this container's own id makes it a sandbox root, another id a member.
    pub sandbox: Option<String>,
    /// A member also joins the sandbox's pid namespace.
    pub share_pid: bool,
    /// JSON LinuxResources for the sandbox cgroup (a root's create only).
    pub sandbox_resources: Option<PathBuf>,
    /// hooks.d directories whose matching hook definitions are added to the config's hooks.
    pub hooks_dirs: Vec<PathBuf>,
    /// Rootless: cgroups only in a delegated subtree, devices not filtered by a cgroup.
    pub rootless: Rootless,
}

/// What a successful create leaves to its caller.
pub struct Created {
    pub id: String,
    pub pid: i32,
    pub pidfd: OwnedFd,
    /// The pty master, when `relay_tty` kept it.
    pub console: Option<OwnedFd>,
}

pub fn create(store: &Store, o: &CreateOptions) -> Result<Created> {
    store::validate_id(&o.id)?;
    let bundle = o
        .bundle
        .canonicalize()
        .with_context(|| format!("bundle {}", o.bundle.display()))?;
    let mut spec = spec::load(&bundle)?;
    spec::validate(&spec)?;
    crate::linux::hooksd::inject(&mut spec, &o.hooks_dirs);
    let annotations = spec.annotations().clone().unwrap_or_default();
    let mut role = sandbox::role(&o.id, &annotations, o.sandbox.as_deref())?;
    if o.sandbox_resources.is_some() && role != Role::Root {
        bail!("--sandbox-resources is only for a sandbox's root container");
    }
    if o.rootless.is_yes() {
        crate::linux::rootless::check_config(
            spec.linux().as_ref(),
            nix::unistd::geteuid().as_raw(),
        )?;
    }
    let rootfs = spec::rootfs(&spec, &bundle)?;
    crate::linux::lsm::validate(
        spec.process()
            .as_ref()
            .and_then(|p| p.apparmor_profile().as_deref()),
    )?;
    let terminal = spec
        .process()
        .as_ref()
        .and_then(|p| p.terminal())
        .unwrap_or(false);
    if terminal && o.console_socket.is_none() && !o.relay_tty {
        bail!("process.terminal is set: --console-socket is required");
    }
    if o.console_socket.is_some() && !terminal {
        bail!("--console-socket given but process.terminal is not set");
    }
    // A member holds its sandbox root's lock (shared) until it is created: the root cannot be
    // deleted under it. Root first, then our own: the order delete uses too.
    let _root = match &role {
        Role::Member { sandbox } => {
            let by_flag = sandbox::role(&o.id, &annotations, None)? == Role::Standalone;
            let root = sandbox::join(store, sandbox, &mut spec, o.share_pid, by_flag)?;
            // `--sandbox` may name a prefix: from here on, the full id.
            role = Role::Member {
                sandbox: root.meta.id.clone(),
            };
            Some(root)
        }
        _ => None,
    };
    let locked = store.create(&o.id)?;
    if role == Role::Root {
        match sandbox::mount_shm(&locked.dir) {
            Ok(shm) => sandbox::use_sandbox_shm(&mut spec, &shm),
            Err(e) => {
                let _ = locked.remove();
                return Err(e);
            }
        }
    }
    let meta = Meta {
        id: o.id.clone(),
        bundle: bundle.clone(),
        rootfs: rootfs.clone(),
        oci_version: spec.version().clone(),
        annotations: spec
            .annotations()
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect(),
        status: Status::Creating,
        pid: 0,
        pid_start_time: 0,
        created: crate::logger::rfc3339_now(),
        owner: nix::unistd::getuid().as_raw(),
        cgroup: Default::default(),
        sandbox_id: match &role {
            Role::Member { sandbox } => sandbox.clone(),
            _ => o.id.clone(),
        },
        sandbox_root: role == Role::Root,
        sandbox_cgroup: None,
    };
    let mut cleanup = Cleanup {
        container: Some(Container {
            meta,
            locked,
            unreadable: None,
        }),
        cgroup: None,
        pidfd: None,
        host_mounts: None,
    };
    match create_locked(&mut cleanup, o, &spec, &bundle, &rootfs, &role) {
        Ok(c) => Ok(c),
        Err(e) => {
            cleanup.run();
            Err(e)
        }
    }
}

/// Undo a failed create: kill init, unmount what it mounted in our mount namespace, remove
/// the cgroup and the state directory.
struct Cleanup {
    container: Option<Container>,
    cgroup: Option<Box<dyn CgroupManager>>,
    pidfd: Option<OwnedFd>,
    /// Without a mount namespace of its own, init mounts into ours.
    host_mounts: Option<crate::linux::rootfs::HostMounts>,
}

impl Cleanup {
    fn run(&mut self) {
        if let Some(p) = &self.pidfd {
            let _ = process::clone::pidfd_send_signal(p, libc::SIGKILL);
            crate::container::delete::wait_exit(p, std::time::Duration::from_secs(5));
        }
        if let Some(m) = &self.host_mounts {
            if let Err(e) = m.undo() {
                log::warn!("{}", crate::error::render(&e));
            }
        }
        if let Some(cg) = &self.cgroup {
            let _ = cg.kill_all(libc::SIGKILL);
            if let Err(e) = cg.destroy() {
                log::warn!("{}", crate::error::render(&e));
            }
        }
        // Removed while the lock is still held.
        if let Some(c) = self.container.take() {
            if c.meta.sandbox_root {
                sandbox::unmount_shm(&c.locked.dir);
            }
            if let Some(sb) = &c.meta.sandbox_cgroup {
                let _ = cgroups::manager(sb.clone()).destroy();
            }
            if let Ok(spec) = c.spec() {
                let root = std::path::Path::new(crate::linux::intelrdt::RESCTRL);
                let _ = crate::linux::intelrdt::remove(root, &spec, c.id());
            }
            let _ = c.locked.remove();
        }
    }
}

fn create_locked(
    cleanup: &mut Cleanup,
    o: &CreateOptions,
    spec: &oci_spec::runtime::Spec,
    bundle: &Path,
    rootfs: &Path,
    role: &Role,
) -> Result<Created> {
    let linux = spec.linux().as_ref();
    if role == &Role::Root && linux.and_then(|l| l.cgroups_path().as_ref()).is_none() {
        // The sandbox cgroup that the root and its members share.
        let sb = cgroups::new_manager(
            &default_cgroup(sandbox::sandbox_cgroup(&o.id), o.rootless),
            o.rootless,
        )?;
        let c = cleanup.container.as_mut().expect("container");
        c.meta.sandbox_cgroup = Some(sb.paths().clone());
        c.save()?;
        sb.create()?;
        if let Some(f) = &o.sandbox_resources {
            let data = std::fs::read(f).with_context(|| format!("read {}", f.display()))?;
            let r = crate::spec::parse_resources(&data)
                .with_context(|| format!("invalid resources in {}", f.display()))?;
            sb.apply(&r).context("apply --sandbox-resources")?;
        }
    }
    let spec_path = linux.and_then(|l| l.cgroups_path().as_deref());
    let user_unit = spec_path
        .and_then(|p| p.to_str())
        .filter(|_| o.rootless.is_yes())
        .and_then(|p| cgroups::user_systemd_path(p, &own_unified_cgroup()));
    let logical = user_unit.unwrap_or_else(|| {
        cgroups::logical_path(
            spec_path,
            &default_cgroup(sandbox::default_cgroup(&o.id, role), o.rootless),
        )
    });
    let cg = cgroups::new_manager(&logical, o.rootless)?;
    {
        let c = cleanup.container.as_mut().expect("container");
        let config = serde_json::to_vec(spec).context("serialize config")?;
        store::write_atomic(&c.locked.path(store::CONFIG), &config, 0o600)?;
        c.meta.cgroup = cg.paths().clone();
        // Recorded before the cgroup exists, so that a crashed create can be cleaned up.
        c.save()?;
    }
    cleanup.cgroup = Some(cg);
    let cg = cleanup.cgroup.as_deref().unwrap();
    cg.create()?;
    if let Some(r) = linux.and_then(|l| l.resources().as_ref()) {
        let devices = linux.and_then(|l| l.devices().clone()).unwrap_or_default();
        let mut r = cgroups::resources::with_default_devices(r, &devices);
        if o.rootless.is_yes() {
            // As runc: device rules need privileges (an eBPF program, the v1 devices
            // controller); a rootless container gets only the nodes bound from the host.
            r.set_devices(None);
        }
        cg.apply(&r)?;
    }
    let fifo = cleanup.container.as_ref().unwrap().locked.path(store::FIFO);
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o622))
        .with_context(|| format!("create {}", fifo.display()))?;
    // mkfifo honours the umask; the container's user (maybe unmapped root) must be able to
    // open it for writing.
    std::fs::set_permissions(&fifo, std::os::unix::fs::PermissionsExt::from_mode(0o622))
        .with_context(|| format!("chmod {}", fifo.display()))?;
    let listen = fds::listen_fds();
    let plan = namespaces::plan(linux);
    if !plan.has(oci_spec::runtime::LinuxNamespaceType::Mount) {
        cleanup.host_mounts = Some(crate::linux::rootfs::HostMounts::record(rootfs)?);
        if spec.root().as_ref().and_then(|r| r.readonly()) == Some(true) {
            log::warn!("root.readonly has no effect without a mount namespace (as with runc)");
        }
    }
    // Idmapped mounts are made here, with the host's privileges; init inherits them.
    let idmapped = crate::linux::idmap::prepare(spec, bundle)?;
    let ctx = InitContext {
        idmap_fds: idmapped
            .iter()
            .map(|(i, fd)| (*i, std::os::fd::AsRawFd::as_raw_fd(fd)))
            .collect(),
        id: &o.id,
        spec,
        bundle,
        rootfs,
        fifo: &fifo,
        no_pivot: o.no_pivot,
        no_new_keyring: o.no_new_keyring,
        preserve_fds: o.preserve_fds.max(0) + listen,
        listen_fds: listen,
        plan,
        cgroup_dirs: cgroup_mount_dirs(cg.paths()),
        parent_pid: std::process::id() as i32,
    };
    let spawned = process::spawn(&ctx, cg)?;
    drop(idmapped);
    let (pid, console) = (spawned.pid, spawned.console);
    cleanup.pidfd = Some(spawned.pidfd);
    let console = match (&o.console_socket, console) {
        (Some(sock), Some(m)) => {
            tty::send_to_socket(&sock.to_string_lossy(), &m)?;
            None
        }
        (_, m) => m,
    };
    let c = cleanup.container.as_mut().unwrap();
    c.meta.pid = pid;
    c.meta.pid_start_time =
        procfs::start_time(pid).with_context(|| format!("container init {pid} is gone"))?;
    c.set_status(Status::Created, "create")?;
    c.save()?;
    // Last: containerd takes the pid file as the sign that create is done.
    if let Some(pf) = &o.pid_file {
        write_pid_file(pf, pid)?;
    }
    let pidfd = cleanup.pidfd.take().unwrap();
    Ok(Created {
        id: o.id.clone(),
        pid,
        pidfd,
        console,
    })
}

/// coop's default cgroup path. Rootless, it hangs beside the caller's own cgroup rather than
/// at the top of the tree: the caller's parent cgroup is the one a delegation hands over.
fn default_cgroup(path: String, rootless: Rootless) -> String {
    match rootless {
        Rootless::No => path,
        Rootless::Yes => format!("..{path}"),
    }
}

/// This process's cgroup2 path ("0::" line of /proc/self/cgroup), "" when unknown.
fn own_unified_cgroup() -> String {
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    cgroups::parse_proc_cgroup(&own)
        .remove("")
        .unwrap_or_default()
}

/// Names a `cgroup` mount gives the container's cgroup directories.
fn cgroup_mount_dirs(p: &cgroups::CgroupPaths) -> Vec<(String, PathBuf)> {
    if p.v1.is_empty() {
        return p
            .unified
            .iter()
            .map(|u| (String::new(), u.clone()))
            .collect();
    }
    let mut out: Vec<(String, PathBuf)> =
        p.v1.iter()
            .map(|(k, d)| (k.strip_prefix("name=").unwrap_or(k).to_string(), d.clone()))
            .collect();
    if let Some(u) = &p.unified {
        out.push(("unified".to_string(), u.clone()));
    }
    out
}

pub fn write_pid_file(path: &Path, pid: i32) -> Result<()> {
    let abs = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()?.join(path)
    };
    store::write_atomic(&abs, pid.to_string().as_bytes(), 0o644).context("write pid file")
}
