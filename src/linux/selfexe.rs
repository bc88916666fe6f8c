//! The binary that coop's processes inside a container run (the CVE-2019-5736 class).
//!
//! `create`, `run` and `exec` leave coop processes inside the container for a while: init until
//! it executes the container's process, the exec child likewise. `/proc/<pid>/exe` of such a
//! process, or a `#!/proc/self/exe` script in the rootfs executed by it, leads to the binary it
//! runs. Were that the host's coop file, a process of the container could keep an O_PATH handle
//! on it and open it for writing once coop is gone, replacing the runtime the host runs next.
//!
//! So these three commands execute themselves once more, first thing, from a read-only view of
//! the binary: a detached bind mount of the file (open_tree OPEN_TREE_CLONE) made read-only by
//! mount_setattr. A detached mount belongs to no mount namespace a container can reach, so it
//! cannot be remounted writable, and a write open through it fails with EROFS. Every process
//! coop then clones shares this executable. Where the new mount API is missing (before Linux
//! 5.12), a sealed memfd copy of the binary (F_SEAL_WRITE and friends) serves instead. Nothing
//! is paid when the binary already sits on a read-only mount, nor by the other commands.
//! Non-dumpable init and exec children (init.rs, setns.rs) keep `/proc/<pid>/exe` closed to
//! processes without CAP_SYS_PTRACE; this covers those that have it.
use super::mount::{mount_setattr, MOUNT_ATTR_NODEV, MOUNT_ATTR_NOSUID, MOUNT_ATTR_RDONLY};
use anyhow::{bail, Context, Result};
use std::ffi::{CString, OsString};
use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStringExt;

/// Set in the environment of the re-executed coop; removed again at once.
const MARK: &str = "_COOP_SEALED_EXE";
const OPEN_TREE_CLONE: libc::c_uint = 1;
const MFD_EXEC: libc::c_uint = 0x10;

/// The commands that enter a container.
const ENTERING: [&str; 3] = ["create", "run", "exec"];

/// Called first thing by main, before the command line is parsed (parsing costs as much as the
/// exec): when an argument names one of the commands that enter a container, re-execute from a
/// read-only view now. A word that only looks like one (a container called `run`) costs one
/// needless exec; a failure is left for [`reexec_sealed`] to report once logging is set up.
pub fn reexec_early() {
    let entering = std::env::args_os()
        .skip(1)
        .any(|a| ENTERING.iter().any(|c| a == *c));
    if entering {
        let _ = reexec_sealed();
    }
}

/// Re-execute coop from a read-only view of its binary unless it already runs from one. Returns
/// only when it does.
pub fn reexec_sealed() -> Result<()> {
    let exe = File::open("/proc/self/exe").context("open /proc/self/exe")?;
    let marked = std::env::var_os(MARK).is_some();
    if is_sealed(&exe) {
        if marked {
            std::env::remove_var(MARK);
        }
        return Ok(());
    }
    if marked {
        bail!("coop's binary is still writable after re-executing from a read-only view of it");
    }
    let fd = match readonly_view() {
        Ok(fd) => fd,
        Err(e) => {
            log::debug!("{e:#}; using a sealed copy of coop's binary instead");
            sealed_copy(&exe)?
        }
    };
    drop(exe);
    exec(&fd)
}

/// Whether the file cannot be written through the path the kernel keeps for /proc/self/exe: it
/// is on a read-only mount (or filesystem), or it is a memfd sealed against writes.
fn is_sealed(exe: &File) -> bool {
    let ro = nix::sys::statvfs::fstatvfs(exe)
        .map(|s| s.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY))
        .unwrap_or(false);
    // SAFETY: F_GET_SEALS on an open fd; -1 (EINVAL) for files that are not memfds.
    let seals = unsafe { libc::fcntl(exe.as_raw_fd(), libc::F_GET_SEALS) };
    ro || (seals > 0 && seals & libc::F_SEAL_WRITE != 0)
}

/// A detached, read-only bind mount of /proc/self/exe (an O_PATH fd on the file).
fn readonly_view() -> Result<OwnedFd> {
    // SAFETY: a NUL-terminated path; the result is a new fd or -1.
    let r = unsafe {
        libc::syscall(
            libc::SYS_open_tree,
            libc::AT_FDCWD,
            c"/proc/self/exe".as_ptr(),
            OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint,
        )
    };
    if r < 0 {
        return Err(std::io::Error::last_os_error()).context("open_tree of coop's binary");
    }
    // SAFETY: open_tree returned a new fd that nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(r as i32) };
    mount_setattr(
        &fd,
        0,
        MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV,
        0,
    )
    .context("make the view of coop's binary read-only")?;
    Ok(fd)
}

/// A memfd holding a copy of the binary, sealed against writes, growth, shrinking and unsealing.
fn sealed_copy(exe: &File) -> Result<OwnedFd> {
    let flags = libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING;
    // SAFETY: a NUL-terminated name; MFD_EXEC is refused with EINVAL before Linux 6.3.
    let mut r = unsafe { libc::memfd_create(c"coop".as_ptr(), flags | MFD_EXEC) };
    if r < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINVAL) {
        // SAFETY: as above.
        r = unsafe { libc::memfd_create(c"coop".as_ptr(), flags) };
    }
    if r < 0 {
        return Err(std::io::Error::last_os_error()).context("memfd_create for coop's binary");
    }
    // SAFETY: memfd_create returned a new fd that nothing else owns.
    let mut copy = unsafe { File::from_raw_fd(r) };
    std::io::copy(&mut &*exe, &mut copy).context("copy coop's binary into a memfd")?;
    let seals = libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;
    // SAFETY: F_ADD_SEALS on our own memfd.
    if unsafe { libc::fcntl(copy.as_raw_fd(), libc::F_ADD_SEALS, seals) } != 0 {
        return Err(std::io::Error::last_os_error()).context("seal the copy of coop's binary");
    }
    Ok(copy.into())
}

fn exec(fd: &OwnedFd) -> Result<()> {
    let cstrings = |v: Vec<OsString>| -> Result<Vec<CString>> {
        v.into_iter()
            .map(|s| CString::new(s.into_vec()).context("argument or environment with a NUL byte"))
            .collect()
    };
    let args = cstrings(std::env::args_os().collect())?;
    let mut env: Vec<OsString> = std::env::vars_os()
        .map(|(k, v)| {
            let mut kv = k;
            kv.push("=");
            kv.push(v);
            kv
        })
        .collect();
    env.push(format!("{MARK}=1").into());
    let env = cstrings(env)?;
    let ptrs = |v: &[CString]| -> Vec<*const libc::c_char> {
        v.iter()
            .map(|s| s.as_ptr())
            .chain([std::ptr::null()])
            .collect()
    };
    let (argv, envp) = (ptrs(&args), ptrs(&env));
    // SAFETY: NULL-terminated arrays of pointers into CStrings that outlive the call; on
    // success the call does not return.
    unsafe {
        libc::syscall(
            libc::SYS_execveat,
            fd.as_raw_fd(),
            c"".as_ptr(),
            argv.as_ptr(),
            envp.as_ptr(),
            libc::AT_EMPTY_PATH,
        )
    };
    Err(std::io::Error::last_os_error())
        .context("re-execute coop from a read-only view of its binary")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn sealed_copy_is_recognised_and_refuses_writes() {
        let mut src = tempfile::NamedTempFile::new().unwrap();
        src.write_all(b"\x7fELF not really").unwrap();
        let f = File::open(src.path()).unwrap();
        assert!(
            !is_sealed(&f),
            "a file in a temporary directory is writable"
        );
        let copy = File::from(sealed_copy(&f).unwrap());
        assert!(is_sealed(&copy));
        let reopened = std::fs::OpenOptions::new()
            .write(true)
            .open(format!("/proc/self/fd/{}", copy.as_raw_fd()));
        // Opening may succeed; writing must not.
        if let Ok(mut w) = reopened {
            assert!(w.write_all(b"x").is_err(), "a sealed copy took a write");
        }
        let mut content = [0u8; 15];
        std::os::unix::fs::FileExt::read_exact_at(&copy, &mut content, 0).unwrap();
        assert_eq!(&content, b"\x7fELF not really");
    }
}
