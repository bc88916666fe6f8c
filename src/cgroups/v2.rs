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
        fs::create_dir(self.dir())
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

    fn apply(&self, _resources: &LinuxResources) -> Result<()> {
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
}
