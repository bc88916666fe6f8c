//! The container record (meta.json) and one file per verb.
pub mod checkpoint;
pub mod create;
pub mod delete;
pub mod events;
pub mod exec;
pub mod kill;
pub mod list;
pub mod pause;
pub mod ps;
pub mod restore;
pub mod run;
pub mod sandbox;
pub mod start;
pub mod state;
pub mod status;
pub mod store;
pub mod update;

pub use status::Status;
pub use store::Store;

use crate::cgroups::CgroupPaths;
use crate::error::Error;
use crate::linux::procfs;
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;
use store::Locked;

/// meta.json: everything later commands need about a container.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Meta {
    pub id: String,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub oci_version: String,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    pub status: Status,
    /// Host pid of the container's init, 0 before it exists.
    pub pid: i32,
    /// Field 22 of /proc/PID/stat when the pid was recorded: a reused pid has another.
    pub pid_start_time: u64,
    pub created: String,
    pub owner: u32,
    pub cgroup: CgroupPaths,
    /// The sandbox this container belongs to (its own id for a standalone container).
    pub sandbox_id: String,
    /// This container owns the sandbox `sandbox_id` (== its id).
    #[serde(default)]
    pub sandbox_root: bool,
    /// The sandbox cgroup coop made for a root, removed with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sandbox_cgroup: Option<CgroupPaths>,
}

/// A container loaded under its directory lock.
#[derive(Debug)]
pub struct Container {
    pub meta: Meta,
    pub locked: Locked,
}

impl Container {
    /// Resolve `id` (or an unambiguous prefix), lock it, read meta.json and work out whether
    /// the recorded process still lives.
    pub fn load(store: &Store, id: &str, exclusive: bool) -> Result<Container> {
        let id = store.resolve(id)?;
        let locked = store.lock(&id, exclusive)?;
        Self::load_locked(locked)
    }

    pub fn load_locked(locked: Locked) -> Result<Container> {
        let path = locked.path(store::META);
        let data = match std::fs::read(&path) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::NotFound(locked.id.clone()).into())
            }
            Err(e) => return Err(e).with_context(|| format!("read {}", path.display())),
        };
        let mut meta: Meta = serde_json::from_slice(&data)
            .with_context(|| format!("corrupt state file {}", path.display()))?;
        meta.status = refresh(&meta);
        if meta.status != Status::Stopped
            && meta.sandbox_id != meta.id
            && !sandbox::root_alive(&locked.dir, &meta.sandbox_id)
        {
            // A member goes down with its sandbox.
            meta.status = Status::Stopped;
        }
        Ok(Container { meta, locked })
    }

    pub fn id(&self) -> &str {
        &self.meta.id
    }

    pub fn save(&self) -> Result<()> {
        let data = serde_json::to_vec(&self.meta).context("serialize container state")?;
        store::write_atomic(&self.locked.path(store::META), &data, 0o600)
    }

    /// Change the status through the transition table, or fail naming the verb.
    pub fn set_status(&mut self, to: Status, verb: &'static str) -> Result<()> {
        if !status::can_change(self.meta.status, to) {
            return Err(self.wrong_state(verb).into());
        }
        self.meta.status = to;
        Ok(())
    }

    pub fn wrong_state(&self, verb: &'static str) -> Error {
        Error::WrongState {
            id: self.meta.id.clone(),
            status: self.meta.status,
            verb,
        }
    }

    /// Fail with "container X is <state>: cannot <verb>" unless the status is one of `ok`.
    pub fn require(&self, ok: &[Status], verb: &'static str) -> Result<()> {
        if ok.contains(&self.meta.status) {
            Ok(())
        } else {
            Err(self.wrong_state(verb).into())
        }
    }

    /// The spec as it was at create time.
    pub fn spec(&self) -> Result<oci_spec::runtime::Spec> {
        let p = self.locked.path(store::CONFIG);
        let data = std::fs::read(&p).with_context(|| format!("read {}", p.display()))?;
        serde_json::from_slice(&data).with_context(|| format!("corrupt {}", p.display()))
    }

    pub fn is_alive(&self) -> bool {
        procfs::is_alive(self.meta.pid, self.meta.pid_start_time)
    }
}

/// The status as it is now: a recorded living state whose process is gone (or whose pid now
/// belongs to another process) is stopped.
fn refresh(meta: &Meta) -> Status {
    match meta.status {
        Status::Created | Status::Running | Status::Paused
            if !procfs::is_alive(meta.pid, meta.pid_start_time) =>
        {
            Status::Stopped
        }
        Status::Creating if meta.pid == 0 || !procfs::is_alive(meta.pid, meta.pid_start_time) => {
            // A create that holds the lock is still going; without the lock we would not be
            // here. So a creating record seen under the lock is a create that died.
            Status::Stopped
        }
        s => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(id: &str, status: Status, pid: i32, start: u64) -> Meta {
        Meta {
            id: id.into(),
            bundle: "/b".into(),
            rootfs: "/b/rootfs".into(),
            oci_version: "1.2.0".into(),
            annotations: Default::default(),
            status,
            pid,
            pid_start_time: start,
            created: "2026-01-01T00:00:00.000000000Z".into(),
            owner: 0,
            cgroup: Default::default(),
            sandbox_id: id.into(),
            sandbox_root: false,
            sandbox_cgroup: None,
        }
    }

    #[test]
    fn reused_pid_is_stopped() {
        let me = std::process::id() as i32;
        let start = procfs::start_time(me).unwrap();
        assert_eq!(
            refresh(&meta("a", Status::Running, me, start)),
            Status::Running
        );
        assert_eq!(
            refresh(&meta("a", Status::Running, me, start + 7)),
            Status::Stopped
        );
        assert_eq!(refresh(&meta("a", Status::Paused, 0, 0)), Status::Stopped);
        assert_eq!(refresh(&meta("a", Status::Creating, 0, 0)), Status::Stopped);
    }

    #[test]
    fn save_load_and_corrupt_meta() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::new(tmp.path());
        let locked = store.create("c1").unwrap();
        let mut c = Container {
            meta: meta("c1", Status::Creating, 0, 0),
            locked,
        };
        c.save().unwrap();
        assert!(c.set_status(Status::Running, "start").is_err());
        c.set_status(Status::Created, "create").unwrap();
        c.save().unwrap();
        drop(c);
        let c = Container::load(&store, "c", false).unwrap();
        assert_eq!(c.meta.id, "c1");
        // Created with pid 0: its process is gone, so it is stopped.
        assert_eq!(c.meta.status, Status::Stopped);
        let err = c.require(&[Status::Created], "start").unwrap_err();
        assert_eq!(err.to_string(), "container c1 is stopped: cannot start");
        drop(c);
        std::fs::write(store.dir("c1").join("meta.json"), b"{\"id\":").unwrap();
        let err = Container::load(&store, "c1", false).unwrap_err();
        assert!(format!("{err:#}").contains("corrupt state file"), "{err:#}");
    }
}
