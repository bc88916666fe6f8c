//! File descriptors: only stdio, `--preserve-fds` and LISTEN_FDS reach the container.
//!
//! A caller may pass a larger N than the fds it really holds open in 3..3+N (the
//! CVE-2024-21626 class: coop's own lock, cgroup directory or socket must never reach the
//! container in a free slot of that range). So, first thing, [`reserve`] records which fds of
//! the range the caller really passed and fills every free slot with a close-on-exec
//! placeholder: nothing coop opens later can take those numbers. The container's side,
//! [`close_inherited`], keeps exactly the recorded fds and closes everything else.
use anyhow::{Context, Result};
use std::sync::OnceLock;

/// The fds of 3..3+N that the caller passed (open when coop started), sorted.
static PASSED: OnceLock<Vec<i32>> = OnceLock::new();

/// Called by main before anything opens a file, with N = --preserve-fds (plus LISTEN_FDS):
/// record which of the fds 3..3+N the caller passed and reserve the others, so that every fd
/// coop opens afterwards is numbered 3+N or higher. Nothing is done for N = 0.
pub fn reserve(n: i32) {
    let n = n.max(0);
    if n == 0 {
        let _ = PASSED.set(vec![]);
        return;
    }
    // No fd can be numbered at or above the hard RLIMIT_NOFILE (a larger N is the caller's
    // mistake: those fds cannot exist).
    let limit = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .map(|(_, hard)| hard.min(i32::MAX as u64) as i32)
        .unwrap_or(i32::MAX);
    let end = 3i32.saturating_add(n).min(limit.max(3));
    let mut passed = vec![];
    let mut free = vec![];
    for fd in 3..end {
        // SAFETY: F_GETFD only reads the flags of an fd number; a free one fails with EBADF.
        if unsafe { libc::fcntl(fd, libc::F_GETFD) } >= 0 {
            passed.push(fd);
        } else {
            free.push(fd);
        }
    }
    let _ = PASSED.set(passed);
    if free.is_empty() {
        return;
    }
    // One placeholder (on the lowest free slot, so itself reserved), duplicated into the rest.
    // SAFETY: a NUL-terminated path; the result is a new fd or -1.
    let base = unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
    if base < 0 {
        return;
    }
    for &fd in free.iter().filter(|&&fd| fd != base) {
        // SAFETY: dup3 onto a slot that is free (checked above, nothing else runs yet);
        // O_CLOEXEC keeps the placeholder out of every program coop executes.
        if unsafe { libc::dup3(base, fd, libc::O_CLOEXEC) } < 0 {
            // Above the soft RLIMIT_NOFILE: coop cannot open fds there either.
            break;
        }
    }
    if !free.contains(&base) {
        // SAFETY: our own placeholder fd, not used elsewhere.
        unsafe { libc::close(base) };
    }
}

/// In the container's process before it executes anything: close every fd from 3 up except
/// those of 3..3+`preserve` that the caller passed and those in `keep` (coop's channel, still
/// close-on-exec); clear close-on-exec on the passed ones so they survive exec. coop's own fds
/// in the range (the placeholders of [`reserve`], or anything opened without it) are closed.
pub fn close_inherited(preserve: i32, keep: &[i32]) -> Result<()> {
    let first = 3i32.saturating_add(preserve.max(0));
    let passed: Vec<i32> = PASSED
        .get()
        .map(|p| p.iter().copied().filter(|&f| f < first).collect())
        .unwrap_or_default();
    let mut survivors: Vec<i32> = passed
        .iter()
        .chain(keep)
        .copied()
        .filter(|&f| f >= 3)
        .collect();
    survivors.sort_unstable();
    survivors.dedup();
    let mut lo = 3;
    for &s in &survivors {
        if s > lo {
            close_range(lo as u32, (s - 1) as u32)?;
        }
        lo = s + 1;
    }
    close_range(lo as u32, u32::MAX)?;
    for fd in passed {
        // SAFETY: fcntl on an fd the caller passed, open since coop started.
        unsafe {
            let flags = libc::fcntl(fd, libc::F_GETFD);
            if flags >= 0 {
                libc::fcntl(fd, libc::F_SETFD, flags & !libc::FD_CLOEXEC);
            }
        }
    }
    Ok(())
}

fn close_range(first: u32, last: u32) -> Result<()> {
    // SAFETY: close_range only closes descriptors; none of the closed ones is used afterwards
    // (callers list every fd they still need in `keep`).
    let r = unsafe { libc::syscall(libc::SYS_close_range, first, last, 0u32) };
    if r != 0 {
        return Err(std::io::Error::last_os_error()).context("close inherited file descriptors");
    }
    Ok(())
}

/// How many fds systemd socket activation passes to us (LISTEN_FDS), when it names us.
pub fn listen_fds() -> i32 {
    std::env::var("LISTEN_FDS")
        .ok()
        .and_then(|v| v.parse::<i32>().ok())
        .filter(|n| *n > 0)
        .unwrap_or(0)
}

/// Point stdio that is the host's /dev/null at the container's /dev/null (as runc does): CRIU
/// cannot dump an fd whose file lives on a mount outside the container's mount namespace.
/// Called in the new root; a container without a /dev/null of its own keeps its stdio.
pub fn reopen_dev_null() -> Result<()> {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::MetadataExt;
    let Ok(null) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
    else {
        return Ok(());
    };
    let null_rdev = null.metadata().context("stat /dev/null")?.rdev();
    for fd in 0..3 {
        // SAFETY: fstat fills a local stat buffer.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: as above; a closed fd just fails.
        if unsafe { libc::fstat(fd, &mut st) } != 0 {
            continue;
        }
        if st.st_mode & libc::S_IFMT == libc::S_IFCHR && st.st_rdev == null_rdev {
            // SAFETY: dup3 of an fd we own onto a stdio number.
            if unsafe { libc::dup3(null.as_raw_fd(), fd, 0) } < 0 {
                return Err(std::io::Error::last_os_error())
                    .with_context(|| format!("reopen fd {fd} on the container's /dev/null"));
            }
        }
    }
    Ok(())
}
