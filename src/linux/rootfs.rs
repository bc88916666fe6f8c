//! The container's filesystem: propagation, the rootfs bind, the spec's mounts in order,
//! /dev, pivot_root; afterwards masked and read-only paths and a read-only root.
//!
//! Every destination is resolved inside the rootfs with openat2(RESOLVE_IN_ROOT) and mounted
//! through its /proc/self/fd path, so a symlink in the rootfs cannot redirect a mount.
use super::devices;
use super::mount::{self as opts, Options};
use super::safepath::{self, Kind};
use anyhow::{bail, Context, Result};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::statvfs::{statvfs, FsFlags};
use oci_spec::runtime::{Mount, Spec};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

pub struct Config<'a> {
    pub spec: &'a Spec,
    pub rootfs: &'a Path,
    pub bundle: &'a Path,
    pub no_pivot: bool,
    pub in_userns: bool,
    /// The container's cgroup directories on the host, by the name they get under a
    /// `cgroup` mount ("" for a pure v2 host: the whole mount).
    pub cgroup_dirs: Vec<(String, PathBuf)>,
    pub new_cgroupns: bool,
    /// False when the config shares the host's mount namespace: then nothing may change the
    /// host's propagation, and chroot replaces pivot_root (as runc does).
    pub mount_ns: bool,
    /// Runs after the mounts and devices, before pivot_root (the hooks' moment).
    pub before_pivot: &'a dyn Fn() -> Result<()>,
    /// Idmapped mounts made by the parent: (index in mounts, detached mount fd).
    pub idmap_fds: &'a [(usize, std::os::fd::RawFd)],
}

const NONE: Option<&str> = None;

/// Everything up to and including pivot_root.
pub fn prepare(cfg: &Config) -> Result<()> {
    let propagation = cfg
        .spec
        .linux()
        .as_ref()
        .and_then(|l| l.rootfs_propagation().clone())
        .filter(|p| !p.is_empty());
    // Our copies of the host's mounts must not propagate back to the host: rslave unless the
    // config asks for private.
    let start = match propagation.as_deref() {
        Some("private") | Some("rprivate") => MsFlags::MS_PRIVATE | MsFlags::MS_REC,
        _ => MsFlags::MS_SLAVE | MsFlags::MS_REC,
    };
    if cfg.mount_ns {
        mount(NONE, "/", NONE, start, NONE).context("set propagation of /")?;
        // pivot_root needs the new root to be a mount point.
        mount(
            Some(cfg.rootfs),
            cfg.rootfs,
            NONE,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            NONE,
        )
        .with_context(|| format!("bind mount rootfs {}", cfg.rootfs.display()))?;
    }
    let root: OwnedFd = std::fs::File::open(cfg.rootfs)
        .with_context(|| format!("open rootfs {}", cfg.rootfs.display()))?
        .into();
    let mounts = cfg.spec.mounts().clone().unwrap_or_default();
    for (i, m) in mounts.iter().enumerate() {
        if let Some((_, fd)) = cfg.idmap_fds.iter().find(|(j, _)| *j == i) {
            idmapped(cfg, &root, m, *fd)
                .with_context(|| format!("mount {}", m.destination().display()))?;
            continue;
        }
        mount_one(cfg, &root, m).with_context(|| format!("mount {}", m.destination().display()))?;
    }
    let dev_is_bind = mounts.iter().any(|m| {
        m.destination() == Path::new("/dev")
            && (m.typ().as_deref() == Some("bind")
                || m.options()
                    .iter()
                    .flatten()
                    .any(|o| o == "bind" || o == "rbind"))
    });
    if !dev_is_bind {
        let old = nix::sys::stat::umask(nix::sys::stat::Mode::empty());
        let spec_devs = cfg
            .spec
            .linux()
            .as_ref()
            .and_then(|l| l.devices().clone())
            .unwrap_or_default();
        let r = devices::setup(&root, &spec_devs, cfg.in_userns);
        nix::sys::stat::umask(old);
        r?;
    }
    (cfg.before_pivot)()?;
    if !cfg.mount_ns {
        // The mounts above stay in the host's table; delete unmounts them.
        nix::unistd::chroot(cfg.rootfs).context("chroot to rootfs")?;
        nix::unistd::chdir("/").context("chdir to /")?;
        return Ok(());
    }
    if cfg.no_pivot {
        move_root(cfg.rootfs)?;
    } else {
        pivot(cfg.rootfs)?;
    }
    if let Some(p) = propagation.as_deref() {
        let f = opts::propagation_flag(p).with_context(|| format!("rootfsPropagation {p:?}"))?;
        // Unbindable comes last (see `late_propagation`): the read-only and masked paths are
        // binds, which an unbindable source refuses.
        if !f.contains(MsFlags::MS_UNBINDABLE) {
            mount(NONE, "/", NONE, f | MsFlags::MS_REC, NONE)
                .with_context(|| format!("set rootfsPropagation {p}"))?;
        }
    }
    Ok(())
}

/// After the read-only and masked paths: `rootfsPropagation` unbindable (as crun and youki
/// do; binding from an unbindable tree fails with EINVAL).
pub fn late_propagation(spec: &oci_spec::runtime::Spec) -> Result<()> {
    let p = spec
        .linux()
        .as_ref()
        .and_then(|l| l.rootfs_propagation().as_deref());
    if let Some(p @ ("unbindable" | "runbindable")) = p {
        mount(
            NONE,
            "/",
            NONE,
            MsFlags::MS_UNBINDABLE | MsFlags::MS_REC,
            NONE,
        )
        .with_context(|| format!("set rootfsPropagation {p}"))?;
    }
    Ok(())
}

fn mount_one(cfg: &Config, root: &OwnedFd, m: &Mount) -> Result<()> {
    let o = opts::parse(m.options().as_deref().unwrap_or(&[]))?;
    let typ = m.typ().clone().unwrap_or_default();
    if typ == "bind" || o.is_bind() {
        return bind(cfg, root, m, &o);
    }
    if typ == "cgroup" || typ == "cgroup2" {
        return mount_cgroup(cfg, root, m, &o);
    }
    if typ.is_empty() {
        bail!("mount has no type and is not a bind mount");
    }
    if typ == "proc" || typ == "sysfs" {
        require_ordinary_dir(root, m.destination(), &typ)?;
    }
    let dest = safepath::ensure(root, m.destination(), Kind::Dir)?;
    let source = m
        .source()
        .as_ref()
        .map(|s| s.display().to_string())
        .unwrap_or_else(|| typ.clone());
    let target = safepath::fd_path(&dest);
    let flags = o.flags;
    let mut data = o.data_string();
    let label = cfg
        .spec
        .linux()
        .as_ref()
        .and_then(|l| l.mount_label().as_deref());
    if let Some(ctx) = super::lsm::mount_label_option(&typ, label) {
        data = Some(match data {
            Some(d) => format!("{d},{ctx}"),
            None => ctx,
        });
    }
    let mut r = mount(
        Some(source.as_str()),
        target.as_str(),
        Some(typ.as_str()),
        flags,
        data.as_deref(),
    );
    if r == Err(nix::errno::Errno::EINVAL) && typ == "devpts" {
        // The gid= option names a group that the user namespace does not map.
        let d: Vec<&str> = o
            .data
            .iter()
            .map(String::as_str)
            .filter(|d| !d.starts_with("gid="))
            .collect();
        data = Some(d.join(","));
        r = mount(
            Some(source.as_str()),
            target.as_str(),
            Some(typ.as_str()),
            flags,
            data.as_deref(),
        );
    }
    if r == Err(nix::errno::Errno::EPERM) && cfg.in_userns && (typ == "sysfs" || typ == "mqueue") {
        // Without its own network (or ipc) namespace a user namespace may not mount sysfs
        // (mqueue): bind the host's instead, as runc does.
        let host = if typ == "sysfs" {
            "/sys"
        } else {
            "/dev/mqueue"
        };
        mount(
            Some(host),
            target.as_str(),
            NONE,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            NONE,
        )
        .with_context(|| format!("bind {host} in a user namespace"))?;
        return finish(root, m.destination(), &o, true);
    }
    if o.tmpcopyup && r.is_ok() {
        let top = safepath::openat2_in_root(
            root.as_raw_fd(),
            &safepath::relative(m.destination()),
            libc::O_PATH,
            0,
        )?;
        copy_dir(Path::new(&target), Path::new(&safepath::fd_path(&top)))
            .context("copy up the directory's content into the tmpfs")?;
    }
    r.with_context(|| format!("mount {typ} {source} with data {data:?}"))?;
    finish(root, m.destination(), &o, false)
}

/// proc and sysfs are mounted on an ordinary directory only, as runc does: a destination that
/// exists in the rootfs as anything else (a symbolic link, even to a directory or to itself)
/// is a broken image or an attack, and is refused. A missing one is created as a directory.
fn require_ordinary_dir(root: &OwnedFd, dest: &Path, typ: &str) -> Result<()> {
    use nix::sys::stat::{fstatat, SFlag};
    let rel = safepath::relative(dest);
    let Some(name) = rel.file_name() else {
        return Ok(());
    };
    let parent = match rel.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(p) => p,
        None => Path::new("."),
    };
    let dir = match safepath::openat2_in_root(root.as_raw_fd(), parent, libc::O_PATH, 0) {
        Ok(d) => d,
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(()),
        Err(e) => {
            return Err(e).with_context(|| format!("open {} in the rootfs", parent.display()))
        }
    };
    let st = match fstatat(&dir, name, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(st) => st,
        Err(nix::errno::Errno::ENOENT) => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("stat {} in the rootfs", dest.display())),
    };
    let kind = match SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT {
        SFlag::S_IFDIR => return Ok(()),
        SFlag::S_IFLNK => "a symbolic link",
        SFlag::S_IFREG => "a file",
        _ => "not a directory",
    };
    bail!(
        "{typ} must be mounted on an ordinary directory, and {} in the rootfs is {kind}",
        dest.display()
    )
}

/// Recursive and propagation options, and flags that need a remount (binds).
fn finish(root: &OwnedFd, dest: &Path, o: &Options, remount: bool) -> Result<()> {
    let need_remount = remount && !(o.flags - (MsFlags::MS_BIND | MsFlags::MS_REC)).is_empty();
    if !need_remount && o.rec_set == 0 && o.rec_clear == 0 && o.propagation.is_empty() {
        return Ok(());
    }
    // The fd must be opened now: one taken before the mount points below it.
    let top =
        safepath::openat2_in_root(root.as_raw_fd(), &safepath::relative(dest), libc::O_PATH, 0)
            .with_context(|| format!("open {} after mounting", dest.display()))?;
    let path = safepath::fd_path(&top);
    if need_remount {
        remount_keep_locked(&path, o.flags - MsFlags::MS_REC)?;
    }
    if o.rec_set != 0 || o.rec_clear != 0 {
        opts::mount_setattr(&top, libc::AT_RECURSIVE, o.rec_set, o.rec_clear)
            .context("mount_setattr (recursive mount options)")?;
    }
    for p in &o.propagation {
        mount(NONE, path.as_str(), NONE, *p, NONE).context("set mount propagation")?;
    }
    Ok(())
}

/// An idmapped bind mount the parent made (linux/idmap.rs): attached at its destination,
/// then the other options as for any bind.
fn idmapped(cfg: &Config, root: &OwnedFd, m: &Mount, tree: std::os::fd::RawFd) -> Result<()> {
    let o = opts::parse(m.options().as_deref().unwrap_or(&[]))?;
    let src = m.source().as_ref().context("bind mount has no source")?;
    let src = if src.is_absolute() {
        src.clone()
    } else {
        cfg.bundle.join(src)
    };
    let meta = std::fs::metadata(&src).with_context(|| format!("bind source {}", src.display()))?;
    let kind = if meta.is_dir() { Kind::Dir } else { Kind::File };
    let dest = safepath::ensure(root, m.destination(), kind)?;
    super::idmap::attach(tree, &dest)?;
    // SAFETY: init owns this inherited fd and uses it only here.
    drop(unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(tree) });
    finish(root, m.destination(), &o, true)
}

fn bind(cfg: &Config, root: &OwnedFd, m: &Mount, o: &Options) -> Result<()> {
    let src = m.source().as_ref().context("bind mount has no source")?;
    let src = if src.is_absolute() {
        src.clone()
    } else {
        cfg.bundle.join(src)
    };
    let meta = std::fs::metadata(&src).with_context(|| format!("bind source {}", src.display()))?;
    let kind = if meta.is_dir() { Kind::Dir } else { Kind::File };
    let dest = safepath::ensure(root, m.destination(), kind)?;
    mount(
        Some(&src),
        safepath::fd_path(&dest).as_str(),
        NONE,
        MsFlags::MS_BIND | (o.flags & MsFlags::MS_REC),
        NONE,
    )
    .with_context(|| format!("bind {}", src.display()))?;
    finish(root, m.destination(), o, true)
}

/// Remount a bind with `flags`, keeping the flags the kernel locks in a user namespace
/// (nosuid, nodev, noexec, atime ones) when the source mount has them.
pub fn remount_keep_locked(path: &str, flags: MsFlags) -> Result<()> {
    let mut f = flags | MsFlags::MS_REMOUNT | MsFlags::MS_BIND;
    let atime = MsFlags::MS_NOATIME | MsFlags::MS_RELATIME | MsFlags::MS_STRICTATIME;
    if let Ok(st) = statvfs(path) {
        let fl = st.flags();
        for (s, m) in [
            (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
            (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
            (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        ] {
            if fl.contains(s) {
                f |= m;
            }
        }
        // The atime mode is locked too, unless the options choose one.
        if !f.intersects(atime) {
            for (s, m) in [
                (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
                (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
                (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
            ] {
                if fl.contains(s) {
                    f |= m;
                }
            }
        }
    }
    mount(NONE, path, NONE, f, NONE).with_context(|| format!("remount with {f:?}"))
}

/// A `cgroup` mount shows the container's own cgroups: on a v2 host a cgroup2 mount (in a
/// new cgroup namespace) or a bind of its cgroup; on v1 and hybrid hosts a tmpfs with a bind
/// of the container's cgroup in every hierarchy.
fn mount_cgroup(cfg: &Config, root: &OwnedFd, m: &Mount, o: &Options) -> Result<()> {
    let dest = safepath::ensure(root, m.destination(), Kind::Dir)?;
    let target = safepath::fd_path(&dest);
    let flags = o.flags
        & (MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC | MsFlags::MS_RELATIME);
    let ro = o.flags.contains(MsFlags::MS_RDONLY);
    if let [(name, dir)] = cfg.cgroup_dirs.as_slice() {
        if name.is_empty() {
            if cfg.new_cgroupns {
                match mount(
                    Some("cgroup2"),
                    target.as_str(),
                    Some("cgroup2"),
                    o.flags,
                    NONE,
                ) {
                    Ok(()) => return Ok(()),
                    // EBUSY: the target is already a mount of this cgroup2 filesystem (with
                    // /sys bound from the host, as in a user namespace); EPERM: the user
                    // namespace may not mount it. Bind the container's cgroup, as runc does.
                    Err(nix::errno::Errno::EBUSY | nix::errno::Errno::EPERM) => {}
                    Err(e) => return Err(e).context("mount cgroup2"),
                }
            }
            mount(Some(dir), target.as_str(), NONE, MsFlags::MS_BIND, NONE)
                .context("bind the container's cgroup")?;
            if ro || !flags.is_empty() {
                let top = safepath::openat2_in_root(
                    root.as_raw_fd(),
                    &safepath::relative(m.destination()),
                    libc::O_PATH,
                    0,
                )?;
                remount_keep_locked(&safepath::fd_path(&top), o.flags)?;
            }
            return Ok(());
        }
    }
    mount(
        Some("tmpfs"),
        target.as_str(),
        Some("tmpfs"),
        flags,
        Some("mode=755"),
    )
    .context("mount tmpfs for cgroups")?;
    for (name, dir) in &cfg.cgroup_dirs {
        let sub = m.destination().join(name);
        let d = safepath::ensure(root, &sub, Kind::Dir)?;
        mount(
            Some(dir),
            safepath::fd_path(&d).as_str(),
            NONE,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            NONE,
        )
        .with_context(|| format!("bind cgroup {}", dir.display()))?;
        let top = safepath::openat2_in_root(
            root.as_raw_fd(),
            &safepath::relative(&sub),
            libc::O_PATH,
            0,
        )?;
        remount_keep_locked(
            &safepath::fd_path(&top),
            flags
                | if ro {
                    MsFlags::MS_RDONLY
                } else {
                    MsFlags::empty()
                },
        )?;
        // Co-mounted controllers get a link per controller: cpu -> cpu,cpuacct.
        if name.contains(',') {
            for c in name.split(',') {
                let link = m.destination().join(c);
                let parent = safepath::ensure(root, m.destination(), Kind::Dir)?;
                let (t, l) = (
                    std::ffi::CString::new(name.as_str())?,
                    std::ffi::CString::new(c)?,
                );
                // SAFETY: valid dirfd and strings; an existing link is fine.
                unsafe { libc::symlinkat(t.as_ptr(), parent.as_raw_fd(), l.as_ptr()) };
                let _ = link;
            }
        }
    }
    if ro {
        let top = safepath::openat2_in_root(
            root.as_raw_fd(),
            &safepath::relative(m.destination()),
            libc::O_PATH,
            0,
        )?;
        mount(
            NONE,
            safepath::fd_path(&top).as_str(),
            NONE,
            MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | flags,
            NONE,
        )
        .context("remount the cgroup tmpfs read-only")?;
    }
    Ok(())
}

fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    for e in std::fs::read_dir(from)? {
        let e = e?;
        let (src, dst) = (e.path(), to.join(e.file_name()));
        let ft = e.file_type()?;
        if ft.is_dir() {
            std::fs::create_dir_all(&dst)?;
            copy_dir(&src, &dst)?;
        } else if ft.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&src)?, &dst)?;
        } else if ft.is_file() {
            std::fs::copy(&src, &dst)?;
        }
        let meta = std::fs::symlink_metadata(&src)?;
        use std::os::unix::fs::MetadataExt;
        let _ = std::os::unix::fs::lchown(&dst, Some(meta.uid()), Some(meta.gid()));
    }
    Ok(())
}

/// pivot_root(".", ".") and detach the old root, as runc and crun do: no directory for the
/// old root is needed inside the rootfs.
fn pivot(rootfs: &Path) -> Result<()> {
    let old = std::fs::File::open("/").context("open old root")?;
    let new = std::fs::File::open(rootfs).context("open new root")?;
    nix::unistd::fchdir(&new).context("chdir to rootfs")?;
    nix::unistd::pivot_root(".", ".").context("pivot_root")?;
    nix::unistd::fchdir(&old).context("chdir to old root")?;
    // Unmounting must not propagate to the host.
    mount(NONE, ".", NONE, MsFlags::MS_SLAVE | MsFlags::MS_REC, NONE)
        .context("make old root rslave")?;
    umount2(".", MntFlags::MNT_DETACH).context("detach old root")?;
    nix::unistd::chdir("/").context("chdir to /")?;
    Ok(())
}

/// `--no-pivot`: move the rootfs over / and chroot into it.
fn move_root(rootfs: &Path) -> Result<()> {
    nix::unistd::chdir(rootfs).context("chdir to rootfs")?;
    mount(Some("."), "/", NONE, MsFlags::MS_MOVE, NONE).context("move rootfs to /")?;
    nix::unistd::chroot(".").context("chroot")?;
    nix::unistd::chdir("/").context("chdir to /")?;
    Ok(())
}

/// After pivot_root: make / read-only.
pub fn readonly_root() -> Result<()> {
    remount_keep_locked("/", MsFlags::MS_RDONLY).context("make the root read-only")
}

/// Bind each path onto itself read-only (missing paths are skipped).
pub fn readonly_paths(paths: &[String]) -> Result<()> {
    for p in paths {
        match mount(
            Some(p.as_str()),
            p.as_str(),
            NONE,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            NONE,
        ) {
            Err(nix::errno::Errno::ENOENT) => continue,
            r => r.with_context(|| format!("bind read-only path {p}"))?,
        }
        remount_keep_locked(
            p,
            MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        )
        .with_context(|| format!("make {p} read-only"))?;
    }
    Ok(())
}

/// Hide each path: /dev/null over a file, an empty read-only tmpfs over a directory.
pub fn mask_paths(paths: &[String]) -> Result<()> {
    for p in paths {
        let meta = match std::fs::metadata(p) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e).with_context(|| format!("masked path {p}")),
        };
        let r = if meta.is_dir() {
            mount(
                Some("tmpfs"),
                p.as_str(),
                Some("tmpfs"),
                MsFlags::MS_RDONLY,
                Some("size=0k"),
            )
        } else {
            mount(Some("/dev/null"), p.as_str(), NONE, MsFlags::MS_BIND, NONE)
        };
        r.with_context(|| format!("mask {p}"))?;
    }
    Ok(())
}

/// sysctl: write /proc/sys/<key with dots as slashes>.
pub fn sysctl(key: &str, value: &str) -> Result<()> {
    super::procfs::require_procfs(Path::new("/proc/sys"))?;
    let path = format!("/proc/sys/{}", key.replace('.', "/"));
    std::fs::write(&path, value).map_err(|e| {
        let denied = matches!(e.raw_os_error(), Some(libc::EACCES | libc::EPERM));
        let hint = if denied && in_user_namespace() {
            " (in a user namespace only the sysctls of namespaces it owns, such as net.* with \
             a network namespace of its own, are writable)"
        } else {
            ""
        };
        anyhow::Error::new(e).context(format!("set sysctl {key}={value}{hint}"))
    })
}

/// Whether this process is in a user namespace other than the host's.
fn in_user_namespace() -> bool {
    std::fs::read_to_string("/proc/self/uid_map")
        .map(|m| m.split_whitespace().collect::<Vec<_>>() != ["0", "0", "4294967295"])
        .unwrap_or(false)
}

/// Unmount everything mounted below `rootfs` in our mount namespace, the newest first: what a
/// container without its own mount namespace left in the host's mount table.
pub fn unmount_below(rootfs: &Path) -> Result<()> {
    let below: Vec<(u64, PathBuf)> = mounts_at_or_below(rootfs)?
        .into_iter()
        .filter(|(_, p)| p != rootfs)
        .collect();
    detach(rootfs, &below)
}

/// The mounts a create without a mount namespace of its own makes in the caller's: those at
/// or below the rootfs that were not there when it started. A failed create takes back
/// exactly these.
pub struct HostMounts {
    rootfs: PathBuf,
    before: Vec<u64>,
}

impl HostMounts {
    pub fn record(rootfs: &Path) -> Result<HostMounts> {
        let mut before: Vec<u64> = mounts_at_or_below(rootfs)?
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        before.sort_unstable();
        Ok(HostMounts {
            rootfs: rootfs.to_path_buf(),
            before,
        })
    }

    /// Detach the mounts made since [`HostMounts::record`], the newest first.
    pub fn undo(&self) -> Result<()> {
        let new: Vec<(u64, PathBuf)> = mounts_at_or_below(&self.rootfs)?
            .into_iter()
            .filter(|(id, _)| self.before.binary_search(id).is_err())
            .collect();
        detach(&self.rootfs, &new)
    }
}

/// (mount id, mount point) of every mount at or below `rootfs` in our mount namespace, in the
/// order of /proc/self/mountinfo (a mount after the one it is mounted on).
fn mounts_at_or_below(rootfs: &Path) -> Result<Vec<(u64, PathBuf)>> {
    let mi =
        std::fs::read_to_string("/proc/self/mountinfo").context("read /proc/self/mountinfo")?;
    Ok(mi
        .lines()
        .filter_map(|l| {
            let mut f = l.split(' ');
            let id = f.next()?.parse().ok()?;
            Some((id, PathBuf::from(unescape_octal(f.nth(3)?))))
        })
        .filter(|(_, p)| p.starts_with(rootfs))
        .collect())
}

/// mountinfo's escapes (\040 for a space, \011, \012, \134) undone.
fn unescape_octal(s: &str) -> std::ffi::OsString {
    use std::os::unix::ffi::OsStringExt;
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let oct = b
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match oct {
            Some(d) if b[i] == b'\\' => {
                out.push(d.iter().fold(0u8, |v, c| (v << 3) | (c - b'0')));
                i += 4;
            }
            _ => {
                out.push(b[i]);
                i += 1;
            }
        }
    }
    std::ffi::OsString::from_vec(out)
}

/// Lazily unmount `mounts` (of `rootfs`), the last first. Each mount point is resolved inside
/// the rootfs (a symlink the container put on the way cannot lead to a host mount) and
/// unmounted only when the mount found there is the one listed.
fn detach(rootfs: &Path, mounts: &[(u64, PathBuf)]) -> Result<()> {
    if mounts.is_empty() {
        return Ok(());
    }
    let root: OwnedFd = std::fs::File::open(rootfs)
        .with_context(|| format!("open rootfs {}", rootfs.display()))?
        .into();
    for (id, point) in mounts.iter().rev() {
        let rel = point.strip_prefix(rootfs).unwrap_or(point);
        let rel = if rel.as_os_str().is_empty() {
            Path::new(".")
        } else {
            rel
        };
        let Ok(fd) = safepath::openat2_in_root(root.as_raw_fd(), rel, libc::O_PATH, 0) else {
            continue; // already gone with a mount above it
        };
        if mount_id(&fd) != Some(*id) {
            continue;
        }
        match umount2(safepath::fd_path(&fd).as_str(), MntFlags::MNT_DETACH) {
            Ok(()) | Err(nix::errno::Errno::EINVAL) | Err(nix::errno::Errno::ENOENT) => {}
            Err(e) => return Err(e).with_context(|| format!("unmount {}", point.display())),
        }
    }
    Ok(())
}

/// The id of the mount `fd` is on (statx STATX_MNT_ID, Linux 5.8).
fn mount_id(fd: &OwnedFd) -> Option<u64> {
    // SAFETY: statx fills the zeroed buffer we pass; the empty path names the fd itself.
    unsafe {
        let mut st: libc::statx = std::mem::zeroed();
        let r = libc::statx(
            fd.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH,
            libc::STATX_MNT_ID,
            &mut st,
        );
        (r == 0 && st.stx_mask & libc::STATX_MNT_ID != 0).then_some(st.stx_mnt_id)
    }
}
