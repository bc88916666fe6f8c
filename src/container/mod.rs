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
use std::path::{Path, PathBuf};
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

/// A container loaded under its directory lock (or read without one, [`Container::read`]).
#[derive(Debug)]
pub struct Container {
    pub meta: Meta,
    pub locked: Locked,
    /// meta.json is missing or corrupt (a create or delete killed half way, a damaged file):
    /// `meta` is derived from the id and config.json, and is never saved. The reason.
    pub unreadable: Option<String>,
}

impl Container {
    /// Resolve `id` (or an unambiguous prefix), lock it, read meta.json and work out the
    /// status from the kernel.
    pub fn load(store: &Store, id: &str, exclusive: bool) -> Result<Container> {
        let id = store.resolve(id)?;
        let locked = store.lock(&id, exclusive)?;
        Self::load_locked(locked)
    }

    /// For a lock holder: no other writer can be active.
    pub fn load_locked(locked: Locked) -> Result<Container> {
        Self::from_dir(locked, &|| false)
    }

    /// Read a container without taking its lock (state, list, ps, kill, exec): never waits on
    /// a writer, works on a read-only --root.
    pub fn read(store: &Store, id: &str) -> Result<Container> {
        let id = store.resolve(id)?;
        let locked = store.open(&id)?;
        Self::from_dir(locked, &|| store.writer_active(&id))
    }

    fn from_dir(locked: Locked, writer_active: &dyn Fn() -> bool) -> Result<Container> {
        let path = locked.path(store::META);
        let read = match std::fs::read(&path) {
            Ok(d) => serde_json::from_slice::<Meta>(&d)
                .with_context(|| format!("corrupt state file {}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if !locked.dir.is_dir() {
                    return Err(Error::NotFound(locked.id.clone()).into());
                }
                Err(anyhow::anyhow!("{} is missing", path.display()))
            }
            Err(e) => Err(e).with_context(|| format!("read {}", path.display())),
        };
        let (mut meta, unreadable) = match read {
            Ok(m) => (m, None),
            Err(e) => (
                derived_meta(&locked.id, &locked.dir),
                Some(crate::error::render(&e)),
            ),
        };
        meta.status = derive_status(&meta, writer_active);
        // A sandbox member's status, like any container's, comes from its own process: its
        // root's death does not stop it.
        Ok(Container {
            meta,
            locked,
            unreadable,
        })
    }

    pub fn id(&self) -> &str {
        &self.meta.id
    }

    pub fn save(&self) -> Result<()> {
        if let Some(why) = &self.unreadable {
            anyhow::bail!("container {}: {why}", self.meta.id);
        }
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
        let data = match std::fs::read(&p) {
            Ok(d) => d,
            // Read without the lock, a racing `delete` may have removed it all.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !self.locked.dir.exists() => {
                return Err(Error::NotFound(self.meta.id.clone()).into())
            }
            Err(e) => return Err(e).with_context(|| format!("read {}", p.display())),
        };
        serde_json::from_slice(&data).with_context(|| format!("corrupt {}", p.display()))
    }

    /// The container's cgroup manager (a cgroup-less one finds processes through init).
    pub fn cgroup(&self) -> Box<dyn crate::cgroups::CgroupManager> {
        crate::cgroups::for_container(
            self.meta.cgroup.clone(),
            Some((self.meta.pid, self.meta.pid_start_time)),
        )
    }

    pub fn is_alive(&self) -> bool {
        procfs::is_alive(self.meta.pid, self.meta.pid_start_time)
    }
}

/// What can be known of a container whose meta.json is missing or corrupt: its id, and its
/// cgroup from config.json's cgroupsPath (written before the cgroup is made) or coop's
/// default layout. Its status is `creating` (derive_status turns it into stopped unless
/// the cgroup holds a process or a create holds the lock).
fn derived_meta(id: &str, dir: &Path) -> Meta {
    let spec: Option<oci_spec::runtime::Spec> = std::fs::read(dir.join(store::CONFIG))
        .ok()
        .and_then(|d| serde_json::from_slice(&d).ok());
    let spec_path = spec
        .as_ref()
        .and_then(|s| s.linux().as_ref())
        .and_then(|l| l.cgroups_path().clone());
    let logical = crate::cgroups::logical_path(
        spec_path.as_deref(),
        &sandbox::default_cgroup(id, &sandbox::Role::Standalone),
    );
    let cgroup =
        crate::cgroups::new_manager(&logical, crate::linux::rootless::Rootless::decide(None))
            .map(|m| m.paths().clone())
            .unwrap_or_default();
    let owner = std::fs::metadata(dir)
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m))
        .unwrap_or(0);
    Meta {
        id: id.to_string(),
        bundle: PathBuf::new(),
        rootfs: spec
            .as_ref()
            .and_then(|s| s.root().as_ref())
            .map(|r| r.path().clone())
            .unwrap_or_default(),
        oci_version: spec
            .as_ref()
            .map(|s| s.version().clone())
            .unwrap_or_default(),
        annotations: BTreeMap::new(),
        status: Status::Creating,
        pid: 0,
        pid_start_time: 0,
        created: String::new(),
        owner,
        cgroup,
        sandbox_id: id.to_string(),
        sandbox_root: false,
        sandbox_cgroup: None,
    }
}

/// THE status of a container: the record (meta.json) says what coop last did, the kernel
/// says what is true, and a command killed half way leaves the two apart. So:
/// - a living status whose init is gone (or whose pid now belongs to another process) is
///   stopped;
/// - `creating`: a create is still going (it holds the lock) or its processes live on in the
///   container's cgroup; otherwise it died: stopped;
/// - a living init: paused iff the freezer says frozen (a pause killed after freezing, a
///   resume killed after thawing); else a created one is created while init still holds
///   exec.fifo (it has not exec'd), running once it has exec'd (a start killed after
///   releasing it).
pub fn derive_status(meta: &Meta, writer_active: &dyn Fn() -> bool) -> Status {
    let alive = procfs::is_alive(meta.pid, meta.pid_start_time);
    match meta.status {
        Status::Stopped => Status::Stopped,
        Status::Creating => {
            let in_cgroup = || {
                let known = meta.cgroup.unified.is_some() || !meta.cgroup.v1.is_empty();
                known
                    && crate::cgroups::manager(meta.cgroup.clone())
                        .pids()
                        .is_ok_and(|p| !p.is_empty())
            };
            if alive || writer_active() || in_cgroup() {
                Status::Creating
            } else {
                Status::Stopped
            }
        }
        Status::Created | Status::Running | Status::Paused if !alive => Status::Stopped,
        recorded => {
            if crate::cgroups::is_frozen(&meta.cgroup) {
                return Status::Paused;
            }
            match recorded {
                // Only a created init can be before its exec (and it has few fds to look at).
                Status::Created => match init_holds_fifo(meta.pid) {
                    Some(false) => Status::Running,
                    // Still waiting, or /proc/PID/fd is closed to us (rootless): the record.
                    _ => Status::Created,
                },
                // A paused record whose freezer is thawed: a resume killed after thawing.
                _ => Status::Running,
            }
        }
    }
}

/// Whether `pid` still holds exec.fifo: init holds it by an O_PATH, close-on-exec fd until
/// it execs the container's program. Recognised by that signature (an O_PATH fd to a fifo)
/// rather than by path: the path the kernel shows depends on init's mount namespace (after
/// pivot_root the host's mounts are detached there), and a replaced exec.fifo is not the one
/// init holds. None when the fds cannot be read.
fn init_holds_fifo(pid: i32) -> Option<bool> {
    use std::os::unix::fs::FileTypeExt;
    let rd = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?;
    Some(rd.flatten().any(|e| {
        let fd = e.file_name();
        let info = std::fs::read_to_string(format!("/proc/{pid}/fdinfo/{}", fd.to_string_lossy()))
            .unwrap_or_default();
        let o_path = info
            .lines()
            .find_map(|l| l.strip_prefix("flags:"))
            .and_then(|f| u32::from_str_radix(f.trim(), 8).ok())
            .is_some_and(|f| f & libc::O_PATH as u32 != 0);
        o_path && std::fs::metadata(e.path()).is_ok_and(|m| m.file_type().is_fifo())
    }))
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

    fn refresh(m: &Meta) -> Status {
        derive_status(m, &|| false)
    }

    #[test]
    fn reused_pid_is_stopped() {
        let me = std::process::id() as i32;
        let start = procfs::start_time(me).unwrap();
        assert_eq!(
            refresh(&meta("a", Status::Running, me, start)),
            Status::Running
        );
        // Recorded created, but the process holds no exec.fifo: it runs.
        assert_eq!(
            refresh(&meta("a", Status::Created, me, start)),
            Status::Running
        );
        assert_eq!(
            refresh(&meta("a", Status::Running, me, start + 7)),
            Status::Stopped
        );
        assert_eq!(refresh(&meta("a", Status::Paused, 0, 0)), Status::Stopped);
        assert_eq!(refresh(&meta("a", Status::Creating, 0, 0)), Status::Stopped);
        // A create that holds the lock is still creating.
        let m = meta("a", Status::Creating, 0, 0);
        assert_eq!(derive_status(&m, &|| true), Status::Creating);
    }

    #[test]
    fn save_load_and_corrupt_meta() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::new(tmp.path());
        let locked = store.create("c1").unwrap();
        let mut c = Container {
            meta: meta("c1", Status::Creating, 0, 0),
            locked,
            unreadable: None,
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
        // A corrupt record still names a container: stopped, and never saved over.
        let c = Container::read(&store, "c1").unwrap();
        assert_eq!(c.meta.status, Status::Stopped);
        let why = c.unreadable.clone().unwrap();
        assert!(why.contains("corrupt state file"), "{why}");
        assert!(c.save().is_err());
    }
}
