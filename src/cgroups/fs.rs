//! File operations shared by the v1 and v2 managers.
use anyhow::{Context, Result};
use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Write a cgroup control file; the error names the file and the value.
pub fn write(dir: &Path, file: &str, value: &str) -> Result<()> {
    let p = dir.join(file);
    fs::write(&p, value).with_context(|| format!("write {value:?} to {}", p.display()))
}

pub fn read(dir: &Path, file: &str) -> Result<String> {
    let p = dir.join(file);
    fs::read_to_string(&p).with_context(|| format!("read {}", p.display()))
}

/// Every cgroup directory at and below `dir`, deepest last.
pub fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = vec![dir.to_path_buf()];
    let mut i = 0;
    while i < out.len() {
        if let Ok(rd) = fs::read_dir(&out[i]) {
            for e in rd.flatten() {
                if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                    out.push(e.path());
                }
            }
        }
        i += 1;
    }
    out
}

/// Pids listed in cgroup.procs at and below `dir`.
pub fn pids(dir: &Path) -> Result<Vec<i32>> {
    if !dir.exists() {
        return Ok(vec![]);
    }
    let mut out = vec![];
    for d in walk(dir) {
        match fs::read_to_string(d.join("cgroup.procs")) {
            Ok(s) => out.extend(s.lines().filter_map(|l| l.trim().parse::<i32>().ok())),
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("read {}/cgroup.procs", d.display())),
        }
    }
    Ok(out)
}

/// Remove `dir` and its descendants, deepest first. A cgroup whose last processes are still
/// exiting reports EBUSY for a moment: retry for up to a few seconds.
pub fn remove_tree(dir: &Path) -> Result<()> {
    // Most cgroups are leaves with their processes gone: one rmdir, no listing.
    match fs::remove_dir(dir) {
        Ok(()) => return Ok(()),
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
        Err(_) => {}
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut delay = Duration::from_millis(1);
    for d in walk(dir).iter().rev() {
        loop {
            match fs::remove_dir(d) {
                Ok(()) => break,
                Err(e) if e.kind() == ErrorKind::NotFound => break,
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) && Instant::now() < deadline => {
                    std::thread::sleep(delay);
                    delay = (delay * 2).min(Duration::from_millis(50));
                }
                Err(e) => return Err(e).with_context(|| format!("remove cgroup {}", d.display())),
            }
        }
    }
    Ok(())
}

/// mkdir -p that reports the directory it could not make.
pub fn create_dir(dir: &Path) -> Result<()> {
    fs::create_dir_all(dir).with_context(|| format!("create cgroup {}", dir.display()))
}

/// Open a cgroup directory for CLONE_INTO_CGROUP.
pub fn open_dir(dir: &Path) -> Option<std::os::fd::OwnedFd> {
    use std::os::unix::fs::OpenOptionsExt;
    fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
        .open(dir)
        .ok()
        .map(Into::into)
}

/// Write each (dir, file, value) in order. If one fails, the single-value files already
/// written get their old values back, so a failed update leaves the old limits in place.
pub fn write_all_or_restore(writes: &[(&Path, &str, &str)]) -> Result<()> {
    let mut done: Vec<(&Path, &str, String)> = vec![];
    for (dir, file, value) in writes {
        // devices.allow and devices.deny cannot be read (nor restored): no failing read.
        let old = (!file.starts_with("devices."))
            .then(|| read(dir, file).ok().map(|s| s.trim().to_string()))
            .flatten();
        if let Err(e) = write(dir, file, value) {
            for (d, f, v) in done.iter().rev() {
                let _ = write(d, f, v);
            }
            return Err(e);
        }
        // Files that hold one value can be put back; lists (devices, io.max) cannot.
        if let Some(old) = old.filter(|o| !o.is_empty() && !o.contains('\n')) {
            done.push((dir, file, old));
        }
    }
    Ok(())
}

/// Poll `file` in `dir` until `done` says yes (at most 5 s): freezing is asynchronous.
pub fn wait_until(dir: &Path, file: &str, done: impl Fn(&str) -> bool) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut delay = Duration::from_micros(100);
    loop {
        if done(&read(dir, file)?) {
            return Ok(());
        }
        if Instant::now() > deadline {
            anyhow::bail!(
                "{}/{file} did not reach the expected state in 5 s",
                dir.display()
            );
        }
        std::thread::sleep(delay);
        delay = (delay * 2).min(Duration::from_millis(20));
    }
}

/// Signal each pid; a pid that is already gone is not an error.
pub fn signal_pids(pids: &[i32], signal: i32) -> Result<()> {
    for &pid in pids {
        // SAFETY: kill(2) with a plain pid and signal number has no memory effects.
        if unsafe { libc::kill(pid, signal) } != 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::ESRCH) {
                return Err(e).with_context(|| format!("send signal {signal} to pid {pid}"));
            }
        }
    }
    Ok(())
}
