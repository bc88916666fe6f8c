//! cgroup v2 (also the unified tree of a hybrid host, used by the v1 manager).
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

    fn dir(&self) -> &Path {
        self.paths
            .unified
            .as_deref()
            .expect("v2 manager without a cgroup2 path")
    }
}

/// Make `controller` available in `dir`: it must be in the tree's root, and every ancestor
/// enables it for its children (cgroup.subtree_control), top down.
pub fn enable_controller(dir: &Path, controller: &str, what: &str) -> Result<()> {
    let chain = ancestors(dir);
    let Some(top) = chain.last() else {
        return Ok(());
    };
    let has = |p: &Path, file: &str| {
        fs::read(p, file)
            .map(|s| s.split_whitespace().any(|c| c == controller))
            .unwrap_or(false)
    };
    if !has(top, "cgroup.controllers") {
        anyhow::bail!(
            "{what} requested, but the {controller} controller is not available under {}",
            top.display()
        );
    }
    for p in chain.iter().rev() {
        if !has(p, "cgroup.subtree_control") {
            fs::write(p, "cgroup.subtree_control", &format!("+{controller}"))?;
        }
    }
    Ok(())
}

/// The cgroups above `dir`, its parent first, up to the root of the mounted tree.
fn ancestors(dir: &Path) -> Vec<&Path> {
    let mut chain = vec![];
    let mut d = dir.parent();
    while let Some(p) = d {
        if !p.join("cgroup.subtree_control").exists() {
            break;
        }
        chain.push(p);
        d = p.parent();
    }
    chain
}

/// cgroup.freeze, then wait for cgroup.events to agree.
pub fn freeze(dir: &Path, on: bool) -> Result<()> {
    fs::write(dir, "cgroup.freeze", if on { "1" } else { "0" })?;
    let want = if on { "frozen 1" } else { "frozen 0" };
    fs::wait_until(dir, "cgroup.events", |s| {
        s.lines().any(|l| l.trim() == want)
    })
}

/// Kill everything below `dir` with cgroup.kill when the kernel has it (5.14+), else by pid.
pub fn kill_all(dir: &Path, signal: i32) -> Result<()> {
    if signal == libc::SIGKILL && dir.join("cgroup.kill").exists() {
        return fs::write(dir, "cgroup.kill", "1");
    }
    fs::signal_pids(&fs::pids(dir)?, signal)
}

impl CgroupManager for Manager {
    fn paths(&self) -> &CgroupPaths {
        &self.paths
    }

    fn create(&self) -> Result<()> {
        fs::create_dir(self.dir())?;
        // As runc does: every controller the tree has is enabled down to the new cgroup, so
        // that its statistics (memory.current, io.stat...) exist whatever limits were asked
        // for. Best effort: a limit that needs a controller still fails in apply.
        if let Some(top) = ancestors(self.dir()).last() {
            let all = fs::read(top, "cgroup.controllers").unwrap_or_default();
            for c in all.split_whitespace() {
                if let Err(e) = enable_controller(self.dir(), c, "statistics") {
                    log::debug!("{e:#}");
                }
            }
        }
        Ok(())
    }

    fn clone_into_fd(&self) -> Option<OwnedFd> {
        fs::open_dir(self.dir())
    }

    fn add_task(&self, pid: i32, in_unified: bool) -> Result<()> {
        if in_unified {
            return Ok(());
        }
        fs::write(self.dir(), "cgroup.procs", &pid.to_string())
    }

    fn apply(&self, resources: &LinuxResources) -> Result<()> {
        if let Some(rules) = resources.devices().as_ref().filter(|d| !d.is_empty()) {
            super::devices::apply(self.dir(), rules)?;
        }
        let mut writes = super::resources::v2(resources)?;
        super::resources::check_before_update(resources, |f| {
            fs::read(self.dir(), f).ok()?.trim().parse().ok()
        })?;
        let mut needed: Vec<&str> = writes
            .iter()
            .map(|w| w.controller)
            .filter(|c| !c.is_empty())
            .collect();
        needed.sort();
        needed.dedup();
        for c in needed {
            let what = writes
                .iter()
                .find(|w| w.controller == c)
                .map(|w| w.what)
                .unwrap_or("");
            enable_controller(self.dir(), c, what)?;
        }
        for w in writes.iter_mut().filter(|w| w.file == "cpu.max") {
            if let Some(period) = w.value.strip_prefix(super::resources::KEEP_QUOTA) {
                let now = fs::read(self.dir(), "cpu.max")?;
                let quota = now.split_whitespace().next().unwrap_or("max");
                w.value = format!("{quota}{period}");
            }
        }
        let plan: Vec<(&Path, &str, &str)> = writes
            .iter()
            .filter(|w| {
                !super::resources::is_optional(&w.file) || self.dir().join(&w.file).exists()
            })
            .map(|w| (self.dir(), w.file.as_str(), w.value.as_str()))
            .collect();
        fs::write_all_or_restore(&plan)?;
        Ok(())
    }

    fn pids(&self) -> Result<Vec<i32>> {
        fs::pids(self.dir())
    }

    fn kill_all(&self, signal: i32) -> Result<()> {
        kill_all(self.dir(), signal)
    }

    fn destroy(&self) -> Result<()> {
        fs::remove_tree(self.dir())
    }

    fn freeze(&self) -> Result<()> {
        freeze(self.dir(), true)
    }

    fn stats(&self) -> serde_json::Value {
        super::stats::v2(self.dir())
    }

    fn oom_kills(&self) -> u64 {
        super::stats::oom_kills(self.dir())
    }

    fn thaw(&self) -> Result<()> {
        freeze(self.dir(), false)
    }
}
