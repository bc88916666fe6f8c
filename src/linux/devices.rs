//! /dev inside the container: the default nodes, the spec's devices and the usual links.
use super::safepath::{self, Kind};
use anyhow::{bail, Context, Result};
use nix::mount::{mount, MsFlags};
use oci_spec::runtime::{LinuxDevice, LinuxDeviceType};
use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

pub struct Node {
    pub path: PathBuf,
    pub typ: LinuxDeviceType,
    pub major: i64,
    pub minor: i64,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

/// The nodes every container gets (runc's list).
pub fn defaults() -> Vec<Node> {
    [
        ("null", 1, 3),
        ("zero", 1, 5),
        ("full", 1, 7),
        ("random", 1, 8),
        ("urandom", 1, 9),
        ("tty", 5, 0),
    ]
    .iter()
    .map(|(n, maj, min)| Node {
        path: PathBuf::from(format!("/dev/{n}")),
        typ: LinuxDeviceType::C,
        major: *maj,
        minor: *min,
        mode: 0o666,
        uid: 0,
        gid: 0,
    })
    .collect()
}

impl From<&LinuxDevice> for Node {
    fn from(d: &LinuxDevice) -> Node {
        Node {
            path: d.path().clone(),
            typ: d.typ(),
            major: d.major(),
            minor: d.minor(),
            mode: d.file_mode().unwrap_or(0o666) & 0o7777,
            uid: d.uid().unwrap_or(0),
            gid: d.gid().unwrap_or(0),
        }
    }
}

/// Create the default nodes, then the spec's (a spec device replaces a default of the same
/// path), then the links. In a user namespace mknod is not allowed: the host's node is
/// bind-mounted onto an empty file instead.
pub fn setup(root: &OwnedFd, spec_devices: &[LinuxDevice], in_userns: bool) -> Result<()> {
    let mut nodes = defaults();
    nodes.retain(|n| !spec_devices.iter().any(|d| d.path() == &n.path));
    nodes.extend(spec_devices.iter().map(Node::from));
    for n in &nodes {
        create(root, n, in_userns)
            .with_context(|| format!("create device {}", n.path.display()))?;
    }
    for (link, target) in [
        ("/dev/fd", "/proc/self/fd"),
        ("/dev/stdin", "/proc/self/fd/0"),
        ("/dev/stdout", "/proc/self/fd/1"),
        ("/dev/stderr", "/proc/self/fd/2"),
    ] {
        symlink(root, Path::new(link), target)?;
    }
    // /dev/ptmx must be the container's devpts instance.
    let dev = safepath::ensure(root, Path::new("/dev"), Kind::Dir)?;
    let ptmx = CString::new("ptmx").unwrap();
    // SAFETY: unlinkat on a valid dirfd and name; ENOENT is fine.
    unsafe { libc::unlinkat(dev.as_raw_fd(), ptmx.as_ptr(), 0) };
    symlink(root, Path::new("/dev/ptmx"), "pts/ptmx")?;
    for d in ["/dev/pts", "/dev/shm"] {
        safepath::ensure(root, Path::new(d), Kind::Dir)?;
    }
    Ok(())
}

fn split(path: &Path) -> Result<(PathBuf, CString)> {
    let parent = path.parent().unwrap_or(Path::new("/")).to_path_buf();
    let name = path
        .file_name()
        .with_context(|| format!("bad device path {}", path.display()))?;
    use std::os::unix::ffi::OsStrExt;
    Ok((parent, CString::new(name.as_bytes())?))
}

fn symlink(root: &OwnedFd, link: &Path, target: &str) -> Result<()> {
    let (parent, name) = split(link)?;
    let dir = safepath::ensure(root, &parent, Kind::Dir)?;
    let t = CString::new(target)?;
    // SAFETY: valid strings and dirfd.
    if unsafe { libc::symlinkat(t.as_ptr(), dir.as_raw_fd(), name.as_ptr()) } != 0 {
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EEXIST) {
            return Err(e).with_context(|| format!("symlink {} -> {target}", link.display()));
        }
    }
    Ok(())
}

fn create(root: &OwnedFd, n: &Node, in_userns: bool) -> Result<()> {
    let kind = match n.typ {
        LinuxDeviceType::C | LinuxDeviceType::U => libc::S_IFCHR,
        LinuxDeviceType::B => libc::S_IFBLK,
        LinuxDeviceType::P => libc::S_IFIFO,
        LinuxDeviceType::A => bail!("device type \"a\" is only valid in a cgroup rule"),
    };
    let (parent, name) = split(&n.path)?;
    let dir = safepath::ensure(root, &parent, Kind::Dir)?;
    if !in_userns {
        let dev = libc::makedev(n.major as u32, n.minor as u32);
        // SAFETY: valid dirfd and name.
        let r = unsafe { libc::mknodat(dir.as_raw_fd(), name.as_ptr(), kind | n.mode, dev) };
        let err = std::io::Error::last_os_error();
        if r == 0 || err.raw_os_error() == Some(libc::EEXIST) {
            if r != 0 {
                return Ok(());
            }
            // SAFETY: valid dirfd and name.
            unsafe {
                if libc::fchownat(
                    dir.as_raw_fd(),
                    name.as_ptr(),
                    n.uid,
                    n.gid,
                    libc::AT_SYMLINK_NOFOLLOW,
                ) != 0
                {
                    return Err(std::io::Error::last_os_error()).context("chown");
                }
                // mknod honours the umask; set the exact mode.
                libc::fchmodat(dir.as_raw_fd(), name.as_ptr(), n.mode, 0);
            }
            return Ok(());
        }
        if err.raw_os_error() != Some(libc::EPERM) {
            return Err(err).context("mknod");
        }
    }
    // Bind the host's node over an empty file.
    let host = Path::new("/").join(safepath::relative(&n.path));
    let target = safepath::ensure(root, &n.path, Kind::File)?;
    mount(
        Some(&host),
        safepath::fd_path(&target).as_str(),
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .with_context(|| format!("bind host device {}", host.display()))?;
    Ok(())
}
