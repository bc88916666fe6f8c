//! Paths inside the container's rootfs, resolved by the kernel with openat2(RESOLVE_IN_ROOT):
//! a symlink in the rootfs can never lead coop to a host path.
use anyhow::{bail, Context, Result};
use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

const RESOLVE_NO_MAGICLINKS: u64 = 0x02;
const RESOLVE_IN_ROOT: u64 = 0x10;

#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

/// openat2(dirfd, path, how) with RESOLVE_IN_ROOT.
pub fn openat2_in_root(
    root: RawFd,
    path: &Path,
    flags: i32,
    mode: u32,
) -> std::io::Result<OwnedFd> {
    let c = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::from_raw_os_error(libc::EINVAL))?;
    let how = OpenHow {
        flags: (flags | libc::O_CLOEXEC) as u64,
        mode: mode as u64,
        resolve: RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
    };
    loop {
        // SAFETY: `c` is a valid NUL-terminated string and `how` a valid open_how of the size
        // passed; the kernel only reads them.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                root,
                c.as_ptr(),
                &how as *const OpenHow,
                std::mem::size_of::<OpenHow>(),
            )
        };
        if fd >= 0 {
            // SAFETY: the kernel returned a new fd that nothing else owns.
            return Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) });
        }
        let e = std::io::Error::last_os_error();
        // openat2 returns EAGAIN when a concurrent rename races the lookup: try again.
        if e.raw_os_error() != Some(libc::EAGAIN) {
            return Err(e);
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Dir,
    File,
}

/// Open (O_PATH) `path` inside `root`, creating it and its parents when missing: parents as
/// directories (0755), the last component as `kind`. A dangling symlink on the way is
/// followed (inside the root) and its target created.
pub fn ensure(root: &OwnedFd, path: &Path, kind: Kind) -> Result<OwnedFd> {
    let mut want = relative(path);
    for _ in 0..40 {
        match ensure_once(root, &want, kind)? {
            Step::Done(fd) => return Ok(fd),
            Step::Restart(p) => want = p,
        }
    }
    bail!(
        "too many levels of symbolic links creating {} in the rootfs",
        path.display()
    )
}

enum Step {
    Done(OwnedFd),
    Restart(PathBuf),
}

fn ensure_once(root: &OwnedFd, rel: &Path, kind: Kind) -> Result<Step> {
    match openat2_in_root(root.as_raw_fd(), rel, libc::O_PATH, 0) {
        Ok(fd) => return Ok(Step::Done(fd)),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
        Err(e) => return Err(e).with_context(|| format!("open {} in the rootfs", rel.display())),
    }
    let comps: Vec<_> = rel.components().collect();
    let mut dir = openat2_in_root(
        root.as_raw_fd(),
        Path::new("."),
        libc::O_PATH | libc::O_DIRECTORY,
        0,
    )
    .context("open rootfs")?;
    let mut sofar = PathBuf::new();
    for (i, c) in comps.iter().enumerate() {
        let parent = sofar.clone();
        sofar.push(c);
        let last = i + 1 == comps.len();
        match openat2_in_root(root.as_raw_fd(), &sofar, libc::O_PATH, 0) {
            Ok(fd) => {
                dir = fd;
                continue;
            }
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
            Err(e) => {
                return Err(e).with_context(|| format!("open {} in the rootfs", sofar.display()))
            }
        }
        let name = CString::new(c.as_os_str().as_bytes()).context("path with NUL")?;
        // A dangling symlink: create its target instead (resolved inside the root).
        let mut buf = [0u8; libc::PATH_MAX as usize];
        // SAFETY: valid dirfd, name and buffer of the given length.
        let n = unsafe {
            libc::readlinkat(
                dir.as_raw_fd(),
                name.as_ptr(),
                buf.as_mut_ptr().cast(),
                buf.len(),
            )
        };
        if n > 0 {
            let target = Path::new(std::ffi::OsStr::from_bytes(&buf[..n as usize]));
            let mut next = if target.is_absolute() {
                relative(target)
            } else {
                parent.join(target)
            };
            for rest in &comps[i + 1..] {
                next.push(rest);
            }
            return Ok(Step::Restart(next));
        }
        // `dir` was resolved inside the root; create the missing component right in it.
        let r = if last && kind == Kind::File {
            // SAFETY: valid dirfd and NUL-terminated name; the returned fd is closed at once.
            let fd = unsafe {
                libc::openat(
                    dir.as_raw_fd(),
                    name.as_ptr(),
                    libc::O_CREAT
                        | libc::O_EXCL
                        | libc::O_WRONLY
                        | libc::O_CLOEXEC
                        | libc::O_NOFOLLOW,
                    0o644,
                )
            };
            if fd >= 0 {
                // SAFETY: fd was just returned by openat and is owned here only.
                unsafe { libc::close(fd) };
                0
            } else {
                -1
            }
        } else {
            // SAFETY: valid dirfd and NUL-terminated name.
            unsafe { libc::mkdirat(dir.as_raw_fd(), name.as_ptr(), 0o755) }
        };
        if r != 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::EEXIST) {
                return Err(e).with_context(|| format!("create {} in the rootfs", sofar.display()));
            }
        }
        dir = openat2_in_root(root.as_raw_fd(), &sofar, libc::O_PATH, 0)
            .with_context(|| format!("open {} in the rootfs", sofar.display()))?;
    }
    Ok(Step::Done(dir))
}

/// `path` without its leading `/` (and with `.`/`..` left to the kernel's in-root rules).
pub fn relative(path: &Path) -> std::path::PathBuf {
    let rel: std::path::PathBuf = path
        .components()
        .filter(|c| !matches!(c, Component::RootDir | Component::Prefix(_)))
        .collect();
    if rel.as_os_str().is_empty() {
        ".".into()
    } else {
        rel
    }
}

/// The /proc/self/fd path of an fd, for syscalls that take a path.
pub fn fd_path(fd: &OwnedFd) -> String {
    format!("/proc/self/fd/{}", fd.as_raw_fd())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root_fd(p: &Path) -> OwnedFd {
        std::fs::File::open(p).unwrap().into()
    }

    #[test]
    fn symlinks_stay_inside_root() {
        let tmp = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let root = tmp.path().join("root");
        std::fs::create_dir_all(&root).unwrap();
        // A symlink pointing at an absolute host path resolves inside the root.
        std::os::unix::fs::symlink(outside.path(), root.join("evil")).unwrap();
        let fd = ensure(&root_fd(&root), Path::new("/evil/x/y"), Kind::Dir).unwrap();
        drop(fd);
        assert!(root
            .join(outside.path().strip_prefix("/").unwrap())
            .join("x/y")
            .is_dir());
        assert!(!outside.path().join("x").exists());
        // `..` cannot climb out either.
        ensure(&root_fd(&root), Path::new("/../../f"), Kind::File).unwrap();
        assert!(root.join("f").is_file());
    }

    #[test]
    fn existing_paths_open() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(tmp.path().join("a/b")).unwrap();
        ensure(&root_fd(tmp.path()), Path::new("/a/b"), Kind::Dir).unwrap();
        assert_eq!(relative(Path::new("/")), Path::new("."));
        assert_eq!(relative(Path::new("/x/y")), Path::new("x/y"));
    }
}
