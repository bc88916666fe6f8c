//! cgroup v1, with the unified cgroup2 tree of a hybrid host joined as well (as runc does).
use super::{fs, CgroupManager, CgroupPaths};
use anyhow::Result;
use oci_spec::runtime::LinuxResources;
use std::os::fd::OwnedFd;
use std::path::Path;

pub struct Manager {
    paths: CgroupPaths,
}

impl Manager {
    pub fn new(paths: CgroupPaths) -> Self {
        Manager { paths }
    }

    /// The hierarchy used to list processes: pids if mounted, else any.
    fn procs_dir(&self) -> Option<&Path> {
        self.paths
            .v1
            .get("pids")
            .or_else(|| self.paths.v1.values().next())
            .map(|p| p.as_path())
    }
}

impl Manager {
    /// freezer.state (waiting until the kernel agrees), or cgroup.freeze of the unified tree
    /// where no freezer hierarchy is mounted.
    fn set_frozen(&self, on: bool) -> Result<()> {
        let want = if on { "FROZEN" } else { "THAWED" };
        match (self.paths.v1.get("freezer"), &self.paths.unified) {
            (Some(d), _) => {
                fs::write(d, "freezer.state", want)?;
                fs::wait_until(d, "freezer.state", |s| s.trim() == want)
            }
            (None, Some(u)) => super::v2::freeze(u, on),
            (None, None) => {
                anyhow::bail!("pause and resume need the freezer controller, which is not mounted")
            }
        }
    }
}

/// A new cpuset cgroup starts with empty cpus and mems and refuses tasks: copy them down from
/// the nearest ancestor that has them.
fn init_cpuset(dir: &Path) -> Result<()> {
    let mut chain = vec![];
    let mut d = dir;
    while let Some(parent) = d.parent() {
        chain.push(d);
        if !parent.join("cpuset.cpus").exists() {
            break;
        }
        d = parent;
    }
    for d in chain.into_iter().rev() {
        let Some(parent) = d.parent() else { continue };
        for file in ["cpuset.cpus", "cpuset.mems"] {
            if fs::read(d, file)?.trim().is_empty() {
                fs::write(d, file, fs::read(parent, file)?.trim())?;
            }
        }
    }
    Ok(())
}

impl CgroupManager for Manager {
    fn paths(&self) -> &CgroupPaths {
        &self.paths
    }

    fn create(&self) -> Result<()> {
        for (key, dir) in &self.paths.v1 {
            fs::create_dir(dir)?;
            if key.split(',').any(|k| k == "cpuset") {
                init_cpuset(dir)?;
            }
        }
        if let Some(u) = &self.paths.unified {
            fs::create_dir(u)?;
        }
        Ok(())
    }

    fn clone_into_fd(&self) -> Option<OwnedFd> {
        self.paths.unified.as_deref().and_then(fs::open_dir)
    }

    fn add_task(&self, pid: i32, in_unified: bool) -> Result<()> {
        let pid = pid.to_string();
        for dir in self.paths.v1.values() {
            fs::write(dir, "cgroup.procs", &pid)?;
        }
        if let (Some(u), false) = (&self.paths.unified, in_unified) {
            fs::write(u, "cgroup.procs", &pid)?;
        }
        Ok(())
    }

    fn apply(&self, resources: &LinuxResources) -> Result<()> {
        let mut writes = super::resources::v1(resources)?;
        // Raising both memory limits: the kernel wants memsw first.
        if let (Some(l), Some(s)) = (
            writes
                .iter()
                .position(|w| w.file == "memory.limit_in_bytes"),
            writes
                .iter()
                .position(|w| w.file == "memory.memsw.limit_in_bytes"),
        ) {
            let dir = self.paths.v1.get("memory");
            let current = dir.and_then(|d| fs::read(d, "memory.limit_in_bytes").ok());
            let current: u64 = current
                .and_then(|c| c.trim().parse().ok())
                .unwrap_or(u64::MAX);
            let new: i64 = writes[s].value.parse().unwrap_or(-1);
            // memsw may not drop below the current memory limit: if the new memsw is at least
            // the current limit, it can go first, which an increase needs.
            if new < 0 || (new as u64) >= current {
                writes.swap(l, s);
            }
        }
        let mut plan = vec![];
        for w in &writes {
            let dir = self
                .paths
                .v1
                .iter()
                .find(|(k, _)| k.split(',').any(|c| c == w.controller))
                .map(|(_, d)| d)
                .ok_or_else(|| {
                    anyhow::anyhow!(
                        "{} requested, but the {} controller is not mounted (cgroup v1)",
                        w.what,
                        w.controller
                    )
                })?;
            if super::resources::is_optional(&w.file) && !dir.join(&w.file).exists() {
                continue;
            }
            plan.push((dir.as_path(), w.file.as_str(), w.value.as_str()));
        }
        fs::write_all_or_restore(&plan)?;
        Ok(())
    }

    fn pids(&self) -> Result<Vec<i32>> {
        match (&self.paths.unified, self.procs_dir()) {
            (Some(u), _) if u.exists() => fs::pids(u),
            (_, Some(d)) => fs::pids(d),
            _ => Ok(vec![]),
        }
    }

    fn kill_all(&self, signal: i32) -> Result<()> {
        // The unified tree of a hybrid host has cgroup.kill even with no controllers in it.
        if let Some(u) = self.paths.unified.as_deref().filter(|u| u.exists()) {
            return super::v2::kill_all(u, signal);
        }
        // No cgroup.kill: freeze first, so that no process forks a new one between listing
        // the pids and signalling them; the signals are delivered on thaw.
        let frozen = self.paths.v1.contains_key("freezer") && self.set_frozen(true).is_ok();
        let r = self.pids().and_then(|p| fs::signal_pids(&p, signal));
        if frozen {
            self.set_frozen(false)?;
        }
        r
    }

    fn stats(&self) -> serde_json::Value {
        super::stats::v1(|c| {
            self.paths
                .v1
                .iter()
                .find(|(k, _)| k.split(',').any(|x| x == c))
                .map(|(_, d)| d.clone())
        })
    }

    fn oom_kills(&self) -> u64 {
        self.paths
            .v1
            .get("memory")
            .map_or(0, |d| super::stats::oom_kills(d))
    }

    fn freeze(&self) -> Result<()> {
        self.set_frozen(true)
    }

    fn thaw(&self) -> Result<()> {
        self.set_frozen(false)
    }

    fn destroy(&self) -> Result<()> {
        let mut first_err = None;
        let dirs = self.paths.v1.values().chain(self.paths.unified.iter());
        for dir in dirs {
            if let Err(e) = fs::remove_tree(dir) {
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn cpuset_copied_from_parent_and_tasks_written_everywhere() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        let cpuset = root.join("cpuset");
        std::fs::create_dir_all(&cpuset).unwrap();
        std::fs::write(cpuset.join("cpuset.cpus"), "0-1\n").unwrap();
        std::fs::write(cpuset.join("cpuset.mems"), "0\n").unwrap();
        let leaf = cpuset.join("coop/c1");
        let mut v1 = BTreeMap::new();
        v1.insert("cpuset".to_string(), leaf.clone());
        v1.insert("memory".to_string(), root.join("memory/coop/c1"));
        let m = Manager::new(CgroupPaths {
            path: "/coop/c1".into(),
            unified: Some(root.join("unified/coop/c1")),
            v1,
        });
        // The fake sysfs does not create control files: emulate the kernel's empty ones.
        std::fs::create_dir_all(cpuset.join("coop/c1")).unwrap();
        for d in [cpuset.join("coop"), leaf.clone()] {
            std::fs::write(d.join("cpuset.cpus"), "").unwrap();
            std::fs::write(d.join("cpuset.mems"), "").unwrap();
        }
        m.create().unwrap();
        assert_eq!(
            std::fs::read_to_string(leaf.join("cpuset.cpus")).unwrap(),
            "0-1"
        );
        assert_eq!(
            std::fs::read_to_string(cpuset.join("coop/cpuset.mems")).unwrap(),
            "0"
        );
        m.add_task(42, true).unwrap();
        assert_eq!(
            std::fs::read_to_string(root.join("memory/coop/c1/cgroup.procs")).unwrap(),
            "42"
        );
        assert!(!root.join("unified/coop/c1/cgroup.procs").exists());
        m.add_task(43, false).unwrap();
        assert_eq!(
            std::fs::read_to_string(root.join("unified/coop/c1/cgroup.procs")).unwrap(),
            "43"
        );
        assert_eq!(m.pids().unwrap(), vec![43]);
    }
}
