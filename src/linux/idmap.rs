//! Idmapped bind mounts (`mounts[].uidMappings/gidMappings`, options `idmap`/`ridmap`).
//!
//! coop makes them in the parent, with the host's privileges, before the container's init is
//! cloned: open_tree(OPEN_TREE_CLONE) of the source, a helper user namespace holding the
//! mapping, mount_setattr(MOUNT_ATTR_IDMAP). Init inherits the detached mounts' fds and
//! move_mount()s each to its destination (rootfs.rs), which works with or without a user
//! namespace of the container's own (runc 1.2 does the same).
//!
//! The mapping is the mount's own, or the container's user namespace mapping when the mount
//! has only the option; in a mapping line "containerID hostID size", files owned by
//! containerID on the source appear owned by hostID through the mount.
use crate::process::clone::{clone3, Forked};
use anyhow::{bail, Context, Result};
use oci_spec::runtime::{LinuxIdMapping, LinuxNamespaceType, Mount, Spec};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;

const OPEN_TREE_CLONE: libc::c_uint = 1;
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x4;
const MOVE_MOUNT_T_EMPTY_PATH: libc::c_uint = 0x40;
const MOUNT_ATTR_IDMAP: u64 = 0x0010_0000;

#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// Whether mount `m` asks for an idmapping, and whether recursively (`ridmap`).
pub fn wanted(m: &Mount) -> Option<bool> {
    let opts = m.options().as_deref().unwrap_or(&[]);
    let ridmap = opts.iter().any(|o| o == "ridmap");
    let idmap = ridmap
        || opts.iter().any(|o| o == "idmap")
        || m.uid_mappings().is_some()
        || m.gid_mappings().is_some();
    idmap.then_some(ridmap)
}

fn is_bind(m: &Mount) -> bool {
    m.typ().as_deref() == Some("bind")
        || m.options()
            .iter()
            .flatten()
            .any(|o| o == "bind" || o == "rbind")
}

/// The (uid, gid) mappings of an idmapped mount: its own, else the container's.
fn mappings<'a>(
    spec: &'a Spec,
    m: &'a Mount,
) -> Result<(&'a [LinuxIdMapping], &'a [LinuxIdMapping])> {
    match (m.uid_mappings(), m.gid_mappings()) {
        (Some(u), Some(g)) if !u.is_empty() && !g.is_empty() => Ok((u, g)),
        (None, None) => {
            let linux = spec.linux().as_ref();
            let userns = linux
                .and_then(|l| l.namespaces().as_ref())
                .into_iter()
                .flatten()
                .any(|n| n.typ() == LinuxNamespaceType::User);
            let u = linux.and_then(|l| l.uid_mappings().as_deref());
            let g = linux.and_then(|l| l.gid_mappings().as_deref());
            match (u, g) {
                (Some(u), Some(g)) if userns && !u.is_empty() && !g.is_empty() => Ok((u, g)),
                _ => bail!("needs uidMappings and gidMappings, or a user namespace with linux.uidMappings and linux.gidMappings"),
            }
        }
        _ => bail!("uidMappings and gidMappings must be given together, and not empty"),
    }
}

/// Checks that need no kernel, each naming the mount.
pub fn validate(spec: &Spec) -> Result<()> {
    for (i, m) in spec.mounts().iter().flatten().enumerate() {
        if wanted(m).is_none() {
            continue;
        }
        let what = || format!("mounts[{i}] ({})", m.destination().display());
        if !is_bind(m) {
            bail!(
                "{}: idmapped mounts are only supported for bind mounts",
                what()
            );
        }
        mappings(spec, m).with_context(what)?;
    }
    Ok(())
}

/// A user namespace holding `uid`/`gid` maps, by a short-lived child that sits in it.
fn helper_userns(uid: &[LinuxIdMapping], gid: &[LinuxIdMapping]) -> Result<OwnedFd> {
    let (rd, wr) = nix::unistd::pipe().context("pipe")?;
    match clone3(libc::CLONE_NEWUSER as u64, None).context("clone a user namespace")? {
        Forked::Child => {
            drop(wr);
            // Wait until the parent has what it needs (it closes the pipe).
            let mut b = [0u8; 1];
            let _ = nix::unistd::read(&rd, &mut b);
            // SAFETY: leave without running the parent's destructors.
            unsafe { libc::_exit(0) }
        }
        Forked::Parent { pid, pidfd: _pidfd } => {
            drop(rd);
            let r = (|| -> Result<OwnedFd> {
                let line = |m: &[LinuxIdMapping]| {
                    m.iter()
                        .map(|x| format!("{} {} {}\n", x.container_id(), x.host_id(), x.size()))
                        .collect::<String>()
                };
                std::fs::write(format!("/proc/{pid}/uid_map"), line(uid))
                    .context("write the idmapped mount's uid_map")?;
                std::fs::write(format!("/proc/{pid}/gid_map"), line(gid))
                    .context("write the idmapped mount's gid_map")?;
                Ok(std::fs::File::open(format!("/proc/{pid}/ns/user"))
                    .context("open the idmapped mount's user namespace")?
                    .into())
            })();
            drop(wr);
            let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None);
            r
        }
    }
}

/// One detached, idmapped clone of `src`.
fn idmapped_tree(src: &Path, recursive: bool, userns: &OwnedFd) -> Result<OwnedFd> {
    let c = std::ffi::CString::new(src.as_os_str().as_encoded_bytes())?;
    let rec = if recursive { libc::AT_RECURSIVE } else { 0 };
    // SAFETY: a NUL-terminated path; open_tree returns a new fd.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_open_tree,
            libc::AT_FDCWD,
            c.as_ptr(),
            OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint | rec as libc::c_uint,
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error())
            .with_context(|| format!("open_tree {}", src.display()));
    }
    // SAFETY: a new fd that nothing else owns.
    let tree = unsafe { OwnedFd::from_raw_fd(fd as RawFd) };
    let attr = MountAttr {
        attr_set: MOUNT_ATTR_IDMAP,
        attr_clr: 0,
        propagation: 0,
        userns_fd: userns.as_raw_fd() as u64,
    };
    // SAFETY: valid fd, empty NUL-terminated path, a mount_attr of the size passed.
    let r = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            tree.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH | rec,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if r != 0 {
        return Err(std::io::Error::last_os_error()).with_context(|| {
            format!(
                "mount_setattr(MOUNT_ATTR_IDMAP) on {} (does its filesystem support idmapped mounts?)",
                src.display()
            )
        });
    }
    Ok(tree)
}

/// The idmapped mounts of `spec`, by index in `mounts`, made before init is cloned.
pub fn prepare(spec: &Spec, bundle: &Path) -> Result<Vec<(usize, OwnedFd)>> {
    let mut out = vec![];
    for (i, m) in spec.mounts().iter().flatten().enumerate() {
        let Some(recursive) = wanted(m) else {
            continue;
        };
        let what = || format!("mounts[{i}] ({})", m.destination().display());
        let (u, g) = mappings(spec, m).with_context(what)?;
        let src = m
            .source()
            .as_ref()
            .with_context(|| format!("{}: bind mount has no source", what()))?;
        let src = if src.is_absolute() {
            src.clone()
        } else {
            bundle.join(src)
        };
        let userns = helper_userns(u, g).with_context(what)?;
        out.push((
            i,
            idmapped_tree(&src, recursive, &userns).with_context(what)?,
        ));
    }
    Ok(out)
}

/// Attach the detached mount `tree` on `target` (an fd of the destination).
pub fn attach(tree: RawFd, target: &impl AsRawFd) -> Result<()> {
    // SAFETY: valid fds and empty NUL-terminated paths.
    let r = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            tree,
            c"".as_ptr(),
            target.as_raw_fd(),
            c"".as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH,
        )
    };
    if r != 0 {
        return Err(std::io::Error::last_os_error()).context("move_mount the idmapped mount");
    }
    Ok(())
}
