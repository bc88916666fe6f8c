//! Waking on OOM kills instead of polling for them. cgroup v2 counts them in memory.events,
//! which the kernel marks modified (an inotify IN_MODIFY) when a counter changes; cgroup v1
//! signals an eventfd registered through cgroup.event_control against memory.oom_control.
use super::CgroupPaths;
use anyhow::{Context, Result};
use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;
use std::time::Duration;

pub struct Watch {
    fd: OwnedFd,
    /// v1: memory.oom_control, which must stay open for the registration to last.
    _control: Option<File>,
}

/// A watch on the memory cgroup of `paths` (v1's memory hierarchy, else the cgroup2 tree), or
/// None when there is no memory controller to watch.
pub fn watch(paths: &CgroupPaths) -> Option<Watch> {
    let r = match (paths.v1.get("memory"), &paths.unified) {
        (Some(dir), _) => v1(dir),
        (None, Some(dir)) if dir.join("memory.events").exists() => v2(dir),
        _ => return None,
    };
    r.map_err(|e| log::debug!("no OOM notifications, polling only: {e:#}"))
        .ok()
}

fn v2(dir: &Path) -> Result<Watch> {
    // SAFETY: plain syscall; the result is a new fd or -1.
    let fd = unsafe { libc::inotify_init1(libc::IN_CLOEXEC | libc::IN_NONBLOCK) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error()).context("inotify_init1");
    }
    // SAFETY: inotify_init1 returned a new fd that nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let path = std::ffi::CString::new(
        dir.join("memory.events")
            .into_os_string()
            .into_encoded_bytes(),
    )?;
    // SAFETY: a valid inotify fd and a NUL-terminated path.
    if unsafe { libc::inotify_add_watch(fd.as_raw_fd(), path.as_ptr(), libc::IN_MODIFY) } < 0 {
        return Err(std::io::Error::last_os_error())
            .with_context(|| format!("watch {}/memory.events", dir.display()));
    }
    Ok(Watch { fd, _control: None })
}

fn v1(dir: &Path) -> Result<Watch> {
    // SAFETY: plain syscall; the result is a new fd or -1.
    let efd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
    if efd < 0 {
        return Err(std::io::Error::last_os_error()).context("eventfd");
    }
    // SAFETY: eventfd returned a new fd that nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(efd) };
    let control = File::open(dir.join("memory.oom_control"))
        .with_context(|| format!("open {}/memory.oom_control", dir.display()))?;
    super::fs::write(
        dir,
        "cgroup.event_control",
        &format!("{} {}", fd.as_raw_fd(), control.as_raw_fd()),
    )?;
    Ok(Watch {
        fd,
        _control: Some(control),
    })
}

impl Watch {
    /// Wait at most `timeout` for a notice; true when one came. Drains what is pending.
    pub fn wait(&self, timeout: Duration) -> bool {
        use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
        let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
        let mut fds = [PollFd::new(self.fd.as_fd(), PollFlags::POLLIN)];
        match poll(
            &mut fds,
            PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX),
        ) {
            Ok(n) if n > 0 => {
                let mut buf = [0u8; 4096];
                // SAFETY: reading into a local buffer of the length passed; the fd is non-blocking.
                while unsafe { libc::read(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) }
                    > 0
                {}
                true
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake cgroup2 directory: writing memory.events wakes the watch, as the kernel's update
    /// of the file does.
    #[test]
    fn v2_wakes_on_memory_events() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("memory.events"), "oom 0\noom_kill 0\n").unwrap();
        let paths = CgroupPaths {
            unified: Some(tmp.path().to_path_buf()),
            ..Default::default()
        };
        let w = watch(&paths).expect("a watch on memory.events");
        assert!(!w.wait(Duration::from_millis(10)));
        std::fs::write(tmp.path().join("memory.events"), "oom 1\noom_kill 1\n").unwrap();
        assert!(w.wait(Duration::from_secs(5)));
        assert!(!w.wait(Duration::from_millis(10)), "drained");
    }

    #[test]
    fn nothing_to_watch_without_memory() {
        let tmp = tempfile::tempdir().unwrap();
        let paths = CgroupPaths {
            unified: Some(tmp.path().to_path_buf()),
            ..Default::default()
        };
        assert!(watch(&paths).is_none());
    }
}
