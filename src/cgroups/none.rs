//! No cgroup at all: a rootless container on a host where the user may not write cgroups
//! (cgroup v1, or cgroup v2 without a delegated subtree), as runc runs one.
//!
//! Limits cannot be applied, so a config that asks for one fails at create, naming it. The
//! container's processes are found through its init instead: every process in init's pid
//! namespace when the container has one of its own, else init and its descendants. SIGKILL
//! to the init of a pid namespace is enough: the kernel kills the rest.
use super::{CgroupManager, CgroupPaths};
use anyhow::{bail, Result};
use oci_spec::runtime::LinuxResources;
use std::os::fd::OwnedFd;

pub struct Manager {
    paths: CgroupPaths,
    /// The container's init: pid and start time (None while it is being created).
    init: Option<(i32, u64)>,
}

impl Manager {
    pub fn new(paths: CgroupPaths, init: Option<(i32, u64)>) -> Self {
        Manager { paths, init }
    }

    fn live_init(&self) -> Option<i32> {
        let (pid, start) = self.init?;
        crate::linux::procfs::is_alive(pid, start).then_some(pid)
    }

    /// init's pid namespace when it is not ours.
    fn own_pid_ns(&self, init: i32) -> Option<std::path::PathBuf> {
        let theirs = std::fs::read_link(format!("/proc/{init}/ns/pid")).ok()?;
        let ours = std::fs::read_link("/proc/self/ns/pid").ok()?;
        (theirs != ours).then_some(theirs)
    }
}

/// The first limit `r` asks for, as the user would name it ("memory limit"). Device rules do
/// not count: without a cgroup the container gets only the device nodes its config binds.
pub fn first_limit(r: &LinuxResources) -> Result<Option<&'static str>> {
    let v2 = super::resources::v2(r)?;
    let v1 = super::resources::v1(r)?;
    Ok(v2
        .iter()
        .chain(v1.iter())
        .find(|w| w.controller != "devices")
        .map(|w| w.what))
}

/// Every process: (pid, parent pid, pid namespace link when readable).
fn processes() -> Vec<(i32, i32, Option<std::path::PathBuf>)> {
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return vec![];
    };
    rd.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            let rest = &stat[stat.rfind(')')? + 2..];
            let ppid = rest.split_whitespace().nth(1)?.parse().ok()?;
            let ns = std::fs::read_link(format!("/proc/{pid}/ns/pid")).ok();
            Some((pid, ppid, ns))
        })
        .collect()
}

/// `root` and every descendant of it in `procs`.
fn descendants(root: i32, procs: &[(i32, i32, Option<std::path::PathBuf>)]) -> Vec<i32> {
    let mut out = vec![root];
    let mut i = 0;
    while i < out.len() {
        let parent = out[i];
        out.extend(
            procs
                .iter()
                .filter(|(p, pp, _)| *pp == parent && *p != root)
                .map(|(p, _, _)| *p),
        );
        i += 1;
    }
    out
}

impl CgroupManager for Manager {
    fn paths(&self) -> &CgroupPaths {
        &self.paths
    }

    fn create(&self) -> Result<()> {
        Ok(())
    }

    fn clone_into_fd(&self) -> Option<OwnedFd> {
        None
    }

    fn add_task(&self, _pid: i32, _in_unified: bool) -> Result<()> {
        Ok(())
    }

    fn apply(&self, resources: &LinuxResources) -> Result<()> {
        if let Some(what) = first_limit(resources)? {
            bail!(
                "linux.resources: {what} requested, but this rootless container has no cgroup: \
                 limits need a cgroup v2 subtree delegated to uid {} (cgroup v1 cannot be \
                 delegated)",
                nix::unistd::geteuid()
            );
        }
        Ok(())
    }

    fn pids(&self) -> Result<Vec<i32>> {
        let Some(init) = self.live_init() else {
            return Ok(vec![]);
        };
        let procs = processes();
        match self.own_pid_ns(init) {
            Some(ns) => Ok(procs
                .iter()
                .filter(|(_, _, n)| n.as_ref() == Some(&ns))
                .map(|(p, _, _)| *p)
                .collect()),
            None => Ok(descendants(init, &procs)),
        }
    }

    fn kill_all(&self, signal: i32) -> Result<()> {
        let Some(init) = self.live_init() else {
            return Ok(());
        };
        if signal == libc::SIGKILL && self.own_pid_ns(init).is_some() {
            // The kernel kills every other process of the namespace when its init dies.
            return super::fs::signal_pids(&[init], signal);
        }
        super::fs::signal_pids(&self.pids()?, signal)
    }

    fn destroy(&self) -> Result<()> {
        Ok(())
    }

    fn freeze(&self) -> Result<()> {
        bail!(
            "this rootless container has no cgroup, and pausing needs the cgroup freezer \
             (a cgroup v2 subtree delegated to uid {})",
            nix::unistd::geteuid()
        )
    }

    fn thaw(&self) -> Result<()> {
        // Never frozen: nothing to thaw.
        Ok(())
    }

    fn stats(&self) -> serde_json::Value {
        serde_json::json!({})
    }

    fn oom_kills(&self) -> u64 {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_and_devices() {
        let r: LinuxResources =
            serde_json::from_str(r#"{"devices":[{"allow":false,"access":"rwm"}]}"#).unwrap();
        assert_eq!(first_limit(&r).unwrap(), None);
        let m = Manager::new(CgroupPaths::default(), None);
        m.apply(&r).unwrap();
        let r: LinuxResources = serde_json::from_str(r#"{"memory":{"limit":1048576}}"#).unwrap();
        let e = m.apply(&r).unwrap_err().to_string();
        assert!(e.contains("memory limit") && e.contains("delegated"), "{e}");
        assert!(m.freeze().unwrap_err().to_string().contains("freezer"));
    }

    #[test]
    fn tree_of_processes() {
        let p = |pid, ppid| (pid, ppid, None);
        let procs = [p(1, 0), p(10, 1), p(11, 10), p(12, 11), p(20, 1), p(13, 10)];
        let mut d = descendants(10, &procs);
        d.sort();
        assert_eq!(d, [10, 11, 12, 13]);
        // this process's own tree, read from /proc: at least itself.
        let me = std::process::id() as i32;
        let start = crate::linux::procfs::start_time(me).unwrap();
        let m = Manager::new(CgroupPaths::default(), Some((me, start)));
        assert!(m.pids().unwrap().contains(&me));
        let gone = Manager::new(CgroupPaths::default(), Some((me, start + 1)));
        assert!(gone.pids().unwrap().is_empty());
    }
}
