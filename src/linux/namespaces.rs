//! Which namespaces a container creates or joins, and the syscalls that do it.
//!
//! The common case is one clone3 with the new-namespace flags. A second process is needed
//! only where the kernel demands it: joining a user or pid namespace by path, a new user
//! namespace combined with joined ones (a namespace owned by the host cannot be joined from
//! inside a new user namespace, so joins come first), and time namespace offsets (they must
//! be written before any process is in the namespace).
use anyhow::{Context, Result};
use nix::sched::{setns, unshare, CloneFlags};
use oci_spec::runtime::{Linux, LinuxNamespaceType};
use std::os::fd::OwnedFd;
use std::path::PathBuf;

#[derive(Debug, Default, Clone)]
pub struct Plan {
    /// New namespaces, as clone flags, without CLONE_NEWCGROUP (that one is unshared by init
    /// after it has been placed in its cgroup, so the cgroup namespace is rooted there).
    pub new_flags: u64,
    pub new_cgroup: bool,
    pub new_user: bool,
    /// Namespaces joined by path, user first and mount last: joining the mount namespace
    /// changes how later paths resolve.
    pub joins: Vec<(LinuxNamespaceType, PathBuf)>,
    /// Contents for /proc/self/timens_offsets.
    pub time_offsets: Option<String>,
    /// Clone without namespace flags, set up namespaces in stage 1, then fork init.
    pub two_stage: bool,
}

fn join_order(t: LinuxNamespaceType) -> u8 {
    match t {
        LinuxNamespaceType::User => 0,
        LinuxNamespaceType::Mount => 9,
        _ => 5,
    }
}

/// The namespace's file name under /proc/PID/ns.
pub fn proc_name(t: LinuxNamespaceType) -> &'static str {
    match t {
        LinuxNamespaceType::Network => "net",
        LinuxNamespaceType::Ipc => "ipc",
        LinuxNamespaceType::Uts => "uts",
        LinuxNamespaceType::User => "user",
        LinuxNamespaceType::Pid => "pid",
        LinuxNamespaceType::Mount => "mnt",
        LinuxNamespaceType::Cgroup => "cgroup",
        LinuxNamespaceType::Time => "time",
    }
}

pub fn plan(linux: Option<&Linux>) -> Plan {
    let mut p = Plan::default();
    let Some(linux) = linux else { return p };
    for ns in linux.namespaces().iter().flatten() {
        match ns.path() {
            Some(path) => p.joins.push((ns.typ(), path.clone())),
            None if ns.typ() == LinuxNamespaceType::Cgroup => p.new_cgroup = true,
            None => p.new_flags |= ns.typ() as u64,
        }
    }
    p.joins.sort_by_key(|(t, _)| join_order(*t));
    p.new_user = p.new_flags & libc::CLONE_NEWUSER as u64 != 0;
    if let Some(offsets) = linux.time_offsets().as_ref().filter(|o| !o.is_empty()) {
        let mut s = String::new();
        for (clock, off) in offsets {
            s.push_str(&format!(
                "{clock} {} {}\n",
                off.secs().unwrap_or(0),
                off.nanosecs().unwrap_or(0)
            ));
        }
        p.time_offsets = Some(s);
    }
    let joins_special = p.joins.iter().any(|(t, _)| {
        matches!(
            t,
            LinuxNamespaceType::User | LinuxNamespaceType::Pid | LinuxNamespaceType::Time
        )
    });
    p.two_stage = joins_special || (p.new_user && !p.joins.is_empty()) || p.time_offsets.is_some();
    p
}

impl Plan {
    /// Whether the container has a namespace of this type (new or joined).
    pub fn has(&self, t: LinuxNamespaceType) -> bool {
        self.new_flags & t as u64 != 0
            || (t == LinuxNamespaceType::Cgroup && self.new_cgroup)
            || self.joins.iter().any(|(j, _)| *j == t)
    }
}

/// Open every namespace to join before joining any (paths resolve in coop's namespaces).
pub fn open_joins(plan: &Plan) -> Result<Vec<(LinuxNamespaceType, OwnedFd)>> {
    plan.joins
        .iter()
        .map(|(t, path)| {
            let f = std::fs::File::open(path)
                .with_context(|| format!("open {t} namespace {}", path.display()))?;
            Ok((*t, OwnedFd::from(f)))
        })
        .collect()
}

pub fn join_all(fds: &[(LinuxNamespaceType, OwnedFd)]) -> Result<()> {
    for (t, fd) in fds {
        setns(fd, CloneFlags::from_bits_retain(*t as i32))
            .with_context(|| format!("join {t} namespace"))?;
    }
    Ok(())
}

pub fn unshare_flags(flags: u64) -> Result<()> {
    if flags == 0 {
        return Ok(());
    }
    unshare(CloneFlags::from_bits_retain(flags as i32)).context("create namespaces (unshare)")
}

pub fn write_time_offsets(offsets: &str) -> Result<()> {
    std::fs::write("/proc/self/timens_offsets", offsets)
        .with_context(|| format!("write time namespace offsets {offsets:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn linux(json: &str) -> Linux {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn fast_path_for_new_namespaces() {
        let p = plan(Some(&linux(
            r#"{"namespaces":[{"type":"pid"},{"type":"mount"},{"type":"cgroup"},{"type":"network","path":"/run/netns/x"}]}"#,
        )));
        assert!(!p.two_stage);
        assert!(p.new_cgroup);
        assert_eq!(p.new_flags, (libc::CLONE_NEWPID | libc::CLONE_NEWNS) as u64);
        assert_eq!(p.joins.len(), 1);
    }

    #[test]
    fn two_stage_where_the_kernel_demands_it() {
        let p = plan(Some(&linux(
            r#"{"namespaces":[{"type":"mount","path":"/m"},{"type":"pid","path":"/p"},{"type":"user","path":"/u"}]}"#,
        )));
        assert!(p.two_stage);
        // user first, mount last
        assert_eq!(p.joins[0].0, LinuxNamespaceType::User);
        assert_eq!(p.joins[2].0, LinuxNamespaceType::Mount);
        let p = plan(Some(&linux(
            r#"{"namespaces":[{"type":"user"},{"type":"network","path":"/n"}]}"#,
        )));
        assert!(p.two_stage && p.new_user);
        let p = plan(Some(&linux(
            r#"{"namespaces":[{"type":"time"}],"timeOffsets":{"monotonic":{"secs":5,"nanosecs":0}}}"#,
        )));
        assert!(p.two_stage);
        assert_eq!(p.time_offsets.as_deref(), Some("monotonic 5 0\n"));
    }
}
