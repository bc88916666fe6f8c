//! `checkpoint`: dump a running container with CRIU (runc's `checkpoint`), and the CRIU options
//! that `checkpoint` and `restore` share.
use super::{Container, Status, Store};
use crate::linux::criu::{self, Action, Criu};
use crate::process::clone::pidfd_open;
use anyhow::{bail, Context, Result};
use oci_spec::runtime::Spec;
use std::ffi::OsString;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The stdio of the container's init at dump time (readlink of fds 0-2), as runc names it:
/// a restore hands pipes among them back with `--inherit-fd`.
pub const DESCRIPTORS: &str = "descriptors.json";

/// `--manage-cgroups-mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ManageCgroupsMode {
    Soft,
    Full,
    Strict,
    Ignore,
}

impl ManageCgroupsMode {
    fn word(self) -> &'static str {
        match self {
            ManageCgroupsMode::Soft => "soft",
            ManageCgroupsMode::Full => "full",
            ManageCgroupsMode::Strict => "strict",
            ManageCgroupsMode::Ignore => "ignore",
        }
    }
}

/// Options of both `checkpoint` and `restore`.
#[derive(Debug, Default, Clone)]
pub struct CriuOptions {
    /// The global `--criu`: CRIU's binary.
    pub criu: Option<String>,
    /// Where the images are (default `./checkpoint`).
    pub image_path: Option<PathBuf>,
    /// Where CRIU writes its log (default: the image directory).
    pub work_path: Option<PathBuf>,
    pub tcp_established: bool,
    pub ext_unix_sk: bool,
    pub shell_job: bool,
    pub file_locks: bool,
    pub auto_dedup: bool,
    pub manage_cgroups_mode: Option<ManageCgroupsMode>,
    /// `--empty-ns network`: a new network namespace whose contents CRIU leaves alone.
    pub empty_netns: bool,
}

impl CriuOptions {
    /// The image directory, absolute.
    pub fn image_dir(&self) -> Result<PathBuf> {
        let p = self
            .image_path
            .clone()
            .unwrap_or_else(|| PathBuf::from("checkpoint"));
        absolute(&p)
    }

    /// The work directory (made if missing), absolute.
    pub fn work_dir(&self, image_dir: &Path) -> Result<PathBuf> {
        match &self.work_path {
            Some(w) => {
                let w = absolute(w)?;
                make_dir(&w, "work")?;
                Ok(w)
            }
            None => Ok(image_dir.to_path_buf()),
        }
    }

    /// CRIU's binary, checked: version and `criu check`.
    pub fn criu(&self) -> Result<Criu> {
        let c = Criu::find(self.criu.as_deref())?;
        c.check()?;
        Ok(c)
    }

    /// The flags both dump and restore pass.
    pub fn common_args(&self) -> Vec<OsString> {
        let mut a: Vec<OsString> = vec![];
        a.push(match self.manage_cgroups_mode {
            Some(m) => format!("--manage-cgroups={}", m.word()).into(),
            None => "--manage-cgroups".into(),
        });
        for (on, flag) in [
            (self.tcp_established, "--tcp-established"),
            (self.ext_unix_sk, "--ext-unix-sk"),
            (self.shell_job, "--shell-job"),
            (self.file_locks, "--file-locks"),
            (self.auto_dedup, "--auto-dedup"),
        ] {
            if on {
                a.push(flag.into());
            }
        }
        a
    }
}

#[derive(Debug, Default, Clone)]
pub struct CheckpointOptions {
    pub criu: CriuOptions,
    /// `--parent-path`: the previous (pre-)dump, relative to the image directory or absolute.
    pub parent_path: Option<String>,
    pub leave_running: bool,
    pub pre_dump: bool,
}

pub fn checkpoint(store: &Store, id: &str, o: &CheckpointOptions) -> Result<()> {
    let mut c = Container::load(store, id, true)?;
    c.require(&[Status::Running, Status::Paused], "checkpoint")?;
    let criu = o.criu.criu()?;
    if o.pre_dump || o.parent_path.is_some() {
        let what = if o.pre_dump {
            "--pre-dump"
        } else {
            "--parent-path"
        };
        criu.check_feature("mem_dirty_track").with_context(|| {
            format!("{what} needs the kernel's memory change tracking (soft-dirty bits)")
        })?;
    }
    let spec = c.spec()?;
    let image_dir = o.criu.image_dir()?;
    make_dir(&image_dir, "image")?;
    let work_dir = o.criu.work_dir(&image_dir)?;
    if let Some(p) = &o.parent_path {
        let parent = image_dir.join(p);
        if !parent.join("inventory.img").exists() && !parent.join("pages-1.img").exists() {
            bail!(
                "--parent-path {p}: {} holds no CRIU pre-dump",
                parent.display()
            );
        }
    }
    let pid = c.meta.pid;
    let mut args: Vec<OsString> = vec![
        "--tree".into(),
        pid.to_string().into(),
        "--images-dir".into(),
        image_dir.clone().into(),
        "--root".into(),
        c.meta.rootfs.clone().into(),
    ];
    args.extend(o.criu.common_args());
    if let Some(dir) = freezer_dir(&c.meta.cgroup) {
        args.push("--freeze-cgroup".into());
        args.push(dir.into());
    }
    if o.pre_dump || o.parent_path.is_some() {
        args.push("--track-mem".into());
    }
    if let Some(p) = &o.parent_path {
        args.push("--prev-images-dir".into());
        args.push(p.into());
    }
    if o.leave_running && !o.pre_dump {
        args.push("--leave-running".into());
    }
    if o.criu.empty_netns {
        // Accepted for runc's command line; CRIU only empties a namespace on restore.
        log::debug!("--empty-ns network has no effect on a dump");
    }
    if !o.pre_dump {
        args.extend(dump_externals(&spec, pid)?);
        let fds = stdio_keys(pid);
        if o.criu.shell_job {
            // A terminal of the caller's: CRIU leaves it out of the dump, and a restore hands
            // its own terminal in its place (--inherit-fd).
            for k in fds.iter().filter(|k| k.starts_with("tty[")) {
                args.push("--external".into());
                args.push(k.into());
            }
        }
        crate::container::store::write_atomic(
            &image_dir.join(DESCRIPTORS),
            &serde_json::to_vec(&fds).context("serialize descriptors")?,
            0o600,
        )?;
    }
    let action = if o.pre_dump {
        Action::PreDump
    } else {
        Action::Dump
    };
    let pidfd = pidfd_open(pid).ok();
    criu.run(action, &args, &work_dir, &[])
        .with_context(|| format!("checkpoint container {}", c.id()))?;
    if !o.pre_dump && !o.leave_running {
        // CRIU killed the tree: the container is stopped once init is gone.
        if let Some(p) = &pidfd {
            if !crate::container::delete::wait_exit(p, Duration::from_secs(10)) {
                bail!("container {} init still lives after its checkpoint", c.id());
            }
        }
        c.set_status(Status::Stopped, "checkpoint")?;
        c.save()?;
    }
    Ok(())
}

/// How CRIU names init's fds 0-2: a pts terminal as `tty[RDEV:DEV]` (hex), anything else by
/// its /proc link (`pipe:[INODE]`, a path).
fn stdio_keys(pid: i32) -> Vec<String> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    (0..3)
        .map(|fd| {
            let link = format!("/proc/{pid}/fd/{fd}");
            if let Ok(m) = std::fs::metadata(&link) {
                // Unix98 ptys: majors 136-143.
                let major = nix::sys::stat::major(m.rdev());
                if m.file_type().is_char_device() && (136..=143).contains(&major) {
                    return format!("tty[{:x}:{:x}]", m.rdev(), m.dev());
                }
            }
            std::fs::read_link(&link)
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_default()
        })
        .collect()
}

/// The cgroup directory whose freezer CRIU uses to stop the tree (runc does the same): the v1
/// freezer hierarchy, or the cgroup2 directory on a pure v2 host. None: CRIU uses ptrace.
fn freezer_dir(p: &crate::cgroups::CgroupPaths) -> Option<PathBuf> {
    if p.v1.is_empty() {
        return p.unified.clone();
    }
    p.v1.get("freezer").cloned()
}

/// Mounts CRIU must not dump but name as external (as runc does): bind mounts (restored from
/// the new config's sources), and files masked with /dev/null.
fn dump_externals(spec: &Spec, pid: i32) -> Result<Vec<OsString>> {
    let mut out = vec![];
    for m in bind_mounts(spec) {
        out.push("--external".into());
        out.push(criu::external_mount(&m, Path::new(&m))?);
    }
    let masked = spec
        .linux()
        .as_ref()
        .and_then(|l| l.masked_paths().clone())
        .unwrap_or_default();
    for p in masked {
        let inside = format!("/proc/{pid}/root{p}");
        match std::fs::metadata(&inside) {
            Ok(m) if !m.is_dir() => {
                out.push("--external".into());
                out.push(criu::external_mount(&p, Path::new("/dev/null"))?);
            }
            _ => {}
        }
    }
    Ok(out)
}

/// The destinations of the config's bind mounts (cleaned: no trailing slash).
pub fn bind_mounts(spec: &Spec) -> Vec<String> {
    bind_mount_sources(spec)
        .into_iter()
        .map(|(d, _)| d)
        .collect()
}

/// (destination, source) of every bind mount of the config.
pub fn bind_mount_sources(spec: &Spec) -> Vec<(String, PathBuf)> {
    let mut out = vec![];
    for m in spec.mounts().iter().flatten() {
        let opts = m.options().clone().unwrap_or_default();
        let is_bind =
            m.typ().as_deref() == Some("bind") || opts.iter().any(|o| o == "bind" || o == "rbind");
        let Some(src) = m.source() else { continue };
        if !is_bind {
            continue;
        }
        let dest = m.destination().to_string_lossy();
        let dest = dest.trim_end_matches('/');
        let dest = if dest.is_empty() { "/" } else { dest };
        out.push((dest.to_string(), src.clone()));
    }
    out
}

fn absolute(p: &Path) -> Result<PathBuf> {
    if p.is_absolute() {
        Ok(p.to_path_buf())
    } else {
        Ok(std::env::current_dir()
            .context("current directory")?
            .join(p))
    }
}

fn make_dir(p: &Path, what: &str) -> Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(p)
        .with_context(|| format!("create {what} directory {}", p.display()))
}
