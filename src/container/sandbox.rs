//! Sandboxes, as in gVisor's runsc: a set of containers that share namespaces and a cgroup
//! parent. The first container (usually a pause process) is the sandbox's root and owns it;
//! the sandbox id is the root's id. Later containers join it.
//!
//! Each container's status comes from its own process. A member outlives its root's process
//! (unless it shares the root's pid namespace: then the kernel kills it with the root's pid 1);
//! coop never stops members by itself. Deleting the root needs every member stopped, or
//! `--force`, which kills them first.
//!
//! Membership, in this order of precedence:
//! 1. CRI annotations: `io.kubernetes.cri.container-type` = `sandbox` | `container` and
//!    `io.kubernetes.cri.sandbox-id`;
//! 2. CRI-O's `io.kubernetes.cri-o.ContainerType` and `io.kubernetes.cri-o.SandboxID`;
//! 3. `create --sandbox ID` / `run --sandbox ID`: ID equal to the container's own id makes it
//!    a root, another id makes it a member of that sandbox.
//!
//! A member joins the root's network, ipc and uts namespaces (its user namespace too, when the
//! root has one, and its pid namespace with `--share-pid` or the `dev.coop.sandbox.share-pid`
//! annotation) unless its config names a path for that namespace: the path wins, as with
//! containerd and CRI-O. It keeps its own mount namespace and rootfs.
//!
//! cgroups: where the config has no cgroupsPath, the root and its members sit side by side
//! under one sandbox cgroup, `/coop/<sandbox>/<id>`, so limits on `/coop/<sandbox>` cover the
//! whole pod.
//!
//! Locking: creating a member holds the root's lock shared for the whole create; deleting the
//! root takes it exclusively. So members can be created in parallel, and a root is never
//! deleted while a member is half made.
use super::{Container, Meta, Status, Store};
use crate::error::Error;
use anyhow::{bail, Context, Result};
use oci_spec::runtime::{LinuxNamespace, LinuxNamespaceType, Spec};
use std::collections::HashMap;
use std::path::Path;

pub const CRI_TYPE: &str = "io.kubernetes.cri.container-type";
pub const CRI_SANDBOX_ID: &str = "io.kubernetes.cri.sandbox-id";
pub const CRIO_TYPE: &str = "io.kubernetes.cri-o.ContainerType";
pub const CRIO_SANDBOX_ID: &str = "io.kubernetes.cri-o.SandboxID";
pub const SHARE_PID: &str = "dev.coop.sandbox.share-pid";
/// Added to `state` annotations of sandbox roots and members.
pub const STATE_ANNOTATION: &str = "dev.coop.sandbox-id";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    Standalone,
    Root,
    Member { sandbox: String },
}

/// Work out a new container's role from its annotations and the `--sandbox` flag.
pub fn role(id: &str, annotations: &HashMap<String, String>, flag: Option<&str>) -> Result<Role> {
    for (type_key, id_key) in [(CRI_TYPE, CRI_SANDBOX_ID), (CRIO_TYPE, CRIO_SANDBOX_ID)] {
        match annotations.get(type_key).map(String::as_str) {
            Some("sandbox") => return Ok(Role::Root),
            Some("container") => {
                let sb = annotations
                    .get(id_key)
                    .filter(|s| !s.is_empty())
                    .with_context(|| format!("annotation {type_key}=container without {id_key}"))?;
                return Ok(if sb == id {
                    Role::Root
                } else {
                    Role::Member {
                        sandbox: sb.clone(),
                    }
                });
            }
            Some(other) => bail!("annotation {type_key} has unknown value {other:?}"),
            None => {}
        }
    }
    Ok(match flag {
        Some(s) if s == id => Role::Root,
        Some(s) => Role::Member {
            sandbox: s.to_string(),
        },
        None => Role::Standalone,
    })
}

/// The cgroup path coop chooses when the config has none.
pub fn default_cgroup(id: &str, role: &Role) -> String {
    match role {
        Role::Standalone => format!("/coop/{id}"),
        Role::Root => format!("/coop/{id}/{id}"),
        Role::Member { sandbox } => format!("/coop/{sandbox}/{id}"),
    }
}

pub fn sandbox_cgroup(sandbox: &str) -> String {
    format!("/coop/{sandbox}")
}

/// For a member: lock the sandbox's root (shared), check it runs, and point the member's
/// namespaces at the root's. Returns the locked root (hold it until create is done) and the
/// sandbox id.
///
/// `--sandbox` needs a root made with `--sandbox`. Annotations (CRI, CRI-O) are trusted to
/// name a pod's infra container even when it was not created as a sandbox root: podman marks
/// only its pod members, and passes their namespace paths itself.
pub fn join(
    store: &Store,
    sandbox: &str,
    spec: &mut Spec,
    share_pid: bool,
    by_flag: bool,
) -> Result<Container> {
    let id = match store.resolve(sandbox) {
        Ok(id) => id,
        Err(e) if matches!(e.downcast_ref(), Some(Error::NotFound(_))) => {
            bail!("sandbox {sandbox} does not exist")
        }
        Err(e) => return Err(e),
    };
    let root = Container::load(store, &id, false)?;
    if !root.meta.sandbox_root && by_flag {
        bail!("container {id} is not a sandbox root: create it with --sandbox {id}");
    }
    if root.meta.status != Status::Running {
        bail!(
            "sandbox {id} is {}: it must be running to add a container",
            root.meta.status
        );
    }
    let root_spec = root.spec()?;
    let root_has_user = root_spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|n| n.iter().any(|n| n.typ() == LinuxNamespaceType::User));
    let share_pid = share_pid
        || spec
            .annotations()
            .as_ref()
            .and_then(|a| a.get(SHARE_PID))
            .is_some_and(|v| v == "true");
    let mut types = vec![
        LinuxNamespaceType::Network,
        LinuxNamespaceType::Ipc,
        LinuxNamespaceType::Uts,
    ];
    if root_has_user {
        types.push(LinuxNamespaceType::User);
    }
    if share_pid {
        types.push(LinuxNamespaceType::Pid);
    }
    let linux = spec.linux_mut().get_or_insert_with(Default::default);
    let mut namespaces = linux.namespaces().clone().unwrap_or_default();
    for t in types {
        let path = Path::new("/proc")
            .join(root.meta.pid.to_string())
            .join("ns")
            .join(crate::linux::namespaces::proc_name(t));
        match namespaces.iter_mut().find(|n| n.typ() == t) {
            Some(n) if n.path().is_some() => {} // the config's path wins
            Some(n) => {
                n.set_path(Some(path));
            }
            None => {
                let mut n = LinuxNamespace::default();
                n.set_typ(t);
                n.set_path(Some(path));
                namespaces.push(n);
            }
        }
    }
    if root_has_user {
        // Joining the root's user namespace means using its id maps.
        let rl = root_spec.linux().as_ref();
        linux.set_uid_mappings(rl.and_then(|l| l.uid_mappings().clone()));
        linux.set_gid_mappings(rl.and_then(|l| l.gid_mappings().clone()));
    }
    linux.set_namespaces(Some(namespaces));
    // Sharing ipc means sharing POSIX shared memory too.
    use_sandbox_shm(spec, &store.dir(&id).join(SHM_DIR));
    // The root's pid was read under its lock; make sure it is still that process.
    if !root.is_alive() {
        bail!("sandbox {id} is stopped: it must be running to add a container");
    }
    Ok(root)
}

/// The sandbox's /dev/shm: a tmpfs on the host in the root's state directory, bound into the
/// root and every member (as CRI runtimes do), so members see each other's shared memory.
pub const SHM_DIR: &str = "shm";

pub fn mount_shm(root_dir: &Path) -> Result<std::path::PathBuf> {
    use nix::mount::{mount, MsFlags};
    let dir = root_dir.join(SHM_DIR);
    std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
    mount(
        Some("shm"),
        &dir,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        Some("mode=1777,size=65536k"),
    )
    .with_context(|| format!("mount the sandbox's shm at {}", dir.display()))?;
    Ok(dir)
}

pub fn unmount_shm(root_dir: &Path) {
    let dir = root_dir.join(SHM_DIR);
    let _ = nix::mount::umount2(&dir, nix::mount::MntFlags::MNT_DETACH);
}

/// Replace a tmpfs on /dev/shm with a bind of the sandbox's shm.
pub fn use_sandbox_shm(spec: &mut Spec, shm: &Path) {
    if let Some(mounts) = spec.mounts_mut() {
        for m in mounts
            .iter_mut()
            .filter(|m| m.destination() == Path::new("/dev/shm"))
        {
            if m.typ().as_deref() == Some("tmpfs") {
                m.set_typ(Some("bind".to_string()));
                m.set_source(Some(shm.to_path_buf()));
                m.set_options(Some(vec![
                    "rbind".into(),
                    "nosuid".into(),
                    "nodev".into(),
                    "noexec".into(),
                ]));
            }
        }
    }
}

/// Ids of the members of `sandbox` (not the root itself).
pub fn members(store: &Store, sandbox: &str) -> Result<Vec<String>> {
    let mut out = vec![];
    for id in store.ids()? {
        if id == sandbox {
            continue;
        }
        // meta.json is replaced atomically: a lock-free read sees a whole file.
        if let Ok(m) = read_meta(&store.dir(&id)) {
            if m.sandbox_id == sandbox {
                out.push(id);
            }
        }
    }
    Ok(out)
}

pub fn read_meta(dir: &Path) -> Result<Meta> {
    let p = dir.join(super::store::META);
    let data = std::fs::read(&p).with_context(|| format!("read {}", p.display()))?;
    serde_json::from_slice(&data).with_context(|| format!("corrupt state file {}", p.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ann(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn roles_by_precedence() {
        assert_eq!(role("a", &ann(&[]), None).unwrap(), Role::Standalone);
        assert_eq!(role("a", &ann(&[]), Some("a")).unwrap(), Role::Root);
        assert_eq!(
            role("b", &ann(&[]), Some("a")).unwrap(),
            Role::Member {
                sandbox: "a".into()
            }
        );
        assert_eq!(
            role("p", &ann(&[(CRI_TYPE, "sandbox")]), Some("x")).unwrap(),
            Role::Root
        );
        let cri = ann(&[
            (CRI_TYPE, "container"),
            (CRI_SANDBOX_ID, "p"),
            (CRIO_TYPE, "sandbox"),
        ]);
        assert_eq!(
            role("c", &cri, Some("x")).unwrap(),
            Role::Member {
                sandbox: "p".into()
            }
        );
        let crio = ann(&[(CRIO_TYPE, "container"), (CRIO_SANDBOX_ID, "q")]);
        assert_eq!(
            role("c", &crio, None).unwrap(),
            Role::Member {
                sandbox: "q".into()
            }
        );
        assert!(role("c", &ann(&[(CRI_TYPE, "container")]), None).is_err());
        assert!(role("c", &ann(&[(CRI_TYPE, "pod")]), None).is_err());
    }

    #[test]
    fn cgroups_side_by_side() {
        assert_eq!(default_cgroup("a", &Role::Standalone), "/coop/a");
        assert_eq!(default_cgroup("p", &Role::Root), "/coop/p/p");
        assert_eq!(
            default_cgroup(
                "c",
                &Role::Member {
                    sandbox: "p".into()
                }
            ),
            "/coop/p/c"
        );
        assert_eq!(sandbox_cgroup("p"), "/coop/p");
    }
}
