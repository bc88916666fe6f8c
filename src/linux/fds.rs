//! File descriptors: only stdio, `--preserve-fds` and LISTEN_FDS reach the container.
use anyhow::{Context, Result};

/// Close every fd from 3 up except the first `preserve` ones (3..3+preserve) and those in
/// `keep`; clear close-on-exec on the preserved ones so they survive exec.
pub fn close_inherited(preserve: i32, keep: &[i32]) -> Result<()> {
    let first = 3 + preserve.max(0);
    let mut keep: Vec<i32> = keep.iter().copied().filter(|&f| f >= first).collect();
    keep.sort_unstable();
    keep.dedup();
    let mut lo = first;
    for &k in &keep {
        if k > lo {
            close_range(lo as u32, (k - 1) as u32)?;
        }
        lo = k + 1;
    }
    close_range(lo as u32, u32::MAX)?;
    for fd in 3..first {
        // SAFETY: fcntl on an integer fd; a closed fd just fails with EBADF, which is fine.
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
