//! cgroups: a trait with a v2 and a v1 (hybrid-aware) manager behind it.
//!
//! The container's cgroup is recorded in meta.json as [`CgroupPaths`]: absolute directories
//! (one for the cgroup2 tree, one per v1 hierarchy), so later commands find it whatever their
//! own cgroup is. Which layout a host has is read from what is mounted on /sys/fs/cgroup.
pub mod devices;
#[cfg(test)]
mod fake_sysfs;
pub mod fs;
pub mod none;
pub mod oom;
pub mod resources;
pub mod stats;
pub mod sub;
pub mod v1;
pub mod v2;

use crate::linux::rootless::Rootless;
use anyhow::{bail, Context, Result};
use oci_spec::runtime::LinuxResources;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

/// Where a container's cgroup lives, per hierarchy.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CgroupPaths {
    /// The logical path, e.g. `/coop/<id>` (after relative and systemd-style expansion).
    pub path: String,
    /// The cgroup2 directory: the whole tree on a v2 host, the unified one on a hybrid host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unified: Option<PathBuf>,
    /// v1 hierarchies by their key ("memory", "cpu,cpuacct", "name=systemd").
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub v1: BTreeMap<String, PathBuf>,
}

pub trait CgroupManager {
    fn paths(&self) -> &CgroupPaths;
    /// Create the cgroup in every hierarchy (idempotent).
    fn create(&self) -> Result<()>;
    /// A directory fd of the cgroup2 cgroup, for clone3(CLONE_INTO_CGROUP).
    fn clone_into_fd(&self) -> Option<OwnedFd>;
    /// Move `pid` into the cgroup everywhere; skip the cgroup2 tree when clone3 put it there.
    fn add_task(&self, pid: i32, in_unified: bool) -> Result<()>;
    /// Apply resource limits.
    fn apply(&self, resources: &LinuxResources) -> Result<()>;
    /// Every pid in the cgroup and its descendants.
    fn pids(&self) -> Result<Vec<i32>>;
    /// Send `signal` to every process of the cgroup (SIGKILL through cgroup.kill where it exists).
    fn kill_all(&self, signal: i32) -> Result<()>;
    /// Remove the cgroup (and any cgroups the container made below it) everywhere.
    fn destroy(&self) -> Result<()>;
    /// Freeze every process of the cgroup; returns once the kernel says they are frozen.
    fn freeze(&self) -> Result<()>;
    fn thaw(&self) -> Result<()>;
    /// The `data` of runc's `events --stats`.
    fn stats(&self) -> serde_json::Value;
    /// OOM kills seen so far in the cgroup.
    fn oom_kills(&self) -> u64;
}

/// The hierarchies mounted on this host.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Layout {
    /// cgroup2 mount point and the mount's root within the hierarchy.
    pub unified: Option<(PathBuf, String)>,
    /// v1 hierarchies: key -> (mount point, mount root).
    pub v1: BTreeMap<String, (PathBuf, String)>,
}

/// Where the cgroup hierarchies are mounted; nothing outside it counts.
pub const CGROUP_ROOT: &str = "/sys/fs/cgroup";

impl Layout {
    /// The layout as /sys/fs/cgroup shows it, as runc reads it: a cgroup2 filesystem there is
    /// a pure v2 host, whatever cgroup v1 mounts are visible elsewhere.
    pub fn detect() -> Result<Layout> {
        let mi =
            std::fs::read_to_string("/proc/self/mountinfo").context("read /proc/self/mountinfo")?;
        let mut l = Layout::parse(&mi);
        use nix::sys::statfs::{statfs, CGROUP2_SUPER_MAGIC};
        if statfs(CGROUP_ROOT).is_ok_and(|s| s.filesystem_type() == CGROUP2_SUPER_MAGIC) {
            l.v1.clear();
            if l.unified.is_none() {
                l.unified = Some((PathBuf::from(CGROUP_ROOT), "/".to_string()));
            }
        }
        Ok(l)
    }

    /// Parse mountinfo. Only /sys/fs/cgroup and the mounts below it count (a cgroup mount
    /// elsewhere, such as a bind left under a container's rootfs, is not the host's layout);
    /// cgroup2 on /sys/fs/cgroup itself is a pure v2 host. The first visible mount of each
    /// hierarchy wins: a mount covered by a later one on the same point or above it (as when
    /// cgroup2 is mounted over the v1 tmpfs for a pure v2 view) is not visible.
    pub fn parse(mountinfo: &str) -> Layout {
        let base = Path::new(CGROUP_ROOT);
        let mut l = Layout::default();
        let points: Vec<Option<PathBuf>> = mountinfo
            .lines()
            .map(|line| line.split(' ').nth(4).map(|p| PathBuf::from(unescape(p))))
            .collect();
        for (n, line) in mountinfo.lines().enumerate() {
            let here = line.split(' ').nth(4).map(|p| PathBuf::from(unescape(p)));
            if let Some(here) = &here {
                if points
                    .iter()
                    .skip(n + 1)
                    .flatten()
                    .any(|later| here.starts_with(later))
                {
                    continue;
                }
            }
            let Some((pre, post)) = line.split_once(" - ") else {
                continue;
            };
            let pre: Vec<&str> = pre.split(' ').collect();
            let post: Vec<&str> = post.split(' ').collect();
            if pre.len() < 5 || post.len() < 3 {
                continue;
            }
            let (root, mnt) = (unescape(pre[3]), PathBuf::from(unescape(pre[4])));
            if !mnt.starts_with(base) {
                continue;
            }
            match post[0] {
                "cgroup2" if mnt == base => {
                    return Layout {
                        unified: Some((mnt, root)),
                        v1: BTreeMap::new(),
                    }
                }
                "cgroup2" if l.unified.is_none() => l.unified = Some((mnt, root)),
                "cgroup" => {
                    let key = v1_key(post[2].split(','));
                    if !key.is_empty() {
                        l.v1.entry(key).or_insert((mnt, root));
                    }
                }
                _ => {}
            }
        }
        l
    }

    pub fn is_pure_v2(&self) -> bool {
        self.v1.is_empty() && self.unified.is_some()
    }

    /// Resolve a spec cgroupsPath into directories, given this process's /proc/self/cgroup.
    pub fn resolve(&self, logical: &str, own_cgroup: &str) -> Result<CgroupPaths> {
        if self.unified.is_none() && self.v1.is_empty() {
            bail!("no cgroup hierarchy is mounted");
        }
        let own = parse_proc_cgroup(own_cgroup);
        let dir = |mnt: &Path, root: &str, own_path: Option<&String>| -> PathBuf {
            let full = if logical.starts_with('/') {
                logical.to_string()
            } else {
                format!(
                    "{}/{}",
                    own_path
                        .map(String::as_str)
                        .unwrap_or("/")
                        .trim_end_matches('/'),
                    logical
                )
            };
            // Lexically, as runc does: ".." stops at the hierarchy's root, so no cgroupsPath
            // names a directory outside the cgroup mount.
            let full = clean(&full);
            // The mount shows the hierarchy from `root` down.
            let root = root.trim_end_matches('/');
            let rel = full
                .strip_prefix(root)
                .filter(|r| r.is_empty() || r.starts_with('/'))
                .unwrap_or(&full);
            mnt.join(rel.trim_start_matches('/'))
        };
        let mut paths = CgroupPaths {
            path: logical.to_string(),
            ..Default::default()
        };
        if let Some((mnt, root)) = &self.unified {
            paths.unified = Some(dir(mnt, root, own.get("")));
        }
        for (key, (mnt, root)) in &self.v1 {
            paths.v1.insert(key.clone(), dir(mnt, root, own.get(key)));
        }
        Ok(paths)
    }
}

/// `path` as an absolute path without ".", ".." or empty components; ".." at the root stays
/// at the root.
fn clean(path: &str) -> String {
    let mut parts: Vec<&str> = vec![];
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    format!("/{}", parts.join("/"))
}

/// The key of a v1 hierarchy from its super options or its /proc/self/cgroup controllers.
fn v1_key<'a>(opts: impl Iterator<Item = &'a str>) -> String {
    const KNOWN: &[&str] = &[
        "cpu",
        "cpuacct",
        "cpuset",
        "memory",
        "devices",
        "freezer",
        "net_cls",
        "net_prio",
        "blkio",
        "perf_event",
        "hugetlb",
        "pids",
        "rdma",
        "misc",
    ];
    let mut keys: Vec<&str> = opts
        .filter(|o| KNOWN.contains(o) || o.starts_with("name="))
        .collect();
    keys.sort();
    keys.join(",")
}

/// /proc/self/cgroup as key -> path ("" is the cgroup2 line).
pub fn parse_proc_cgroup(s: &str) -> BTreeMap<String, String> {
    s.lines()
        .filter_map(|l| {
            let mut it = l.splitn(3, ':');
            let (_, ctrl, path) = (it.next()?, it.next()?, it.next()?);
            Some((v1_key(ctrl.split(',')), path.to_string()))
        })
        .collect()
}

fn unescape(s: &str) -> String {
    s.replace("\\040", " ")
        .replace("\\011", "\t")
        .replace("\\012", "\n")
        .replace("\\134", "\\")
}

/// Turn systemd-style `slice:prefix:name` into a path, as runc's cgroupfs driver does:
/// `machine-a.slice:libpod:ID` -> `/machine.slice/machine-a.slice/libpod-ID.scope`.
pub fn expand_systemd(path: &str) -> Option<String> {
    let parts: Vec<&str> = path.split(':').collect();
    if parts.len() != 3 || path.starts_with('/') {
        return None;
    }
    let (slice, prefix, name) = (parts[0], parts[1], parts[2]);
    let mut out = String::new();
    let slice = if slice.is_empty() {
        "system.slice"
    } else {
        slice
    };
    if slice != "-.slice" {
        let base = slice.strip_suffix(".slice").unwrap_or(slice);
        let mut acc = String::new();
        for (i, comp) in base.split('-').enumerate() {
            if i > 0 {
                acc.push('-');
            }
            acc.push_str(comp);
            out.push('/');
            out.push_str(&acc);
            out.push_str(".slice");
        }
    }
    let unit = if name.ends_with(".slice") {
        name.to_string()
    } else if prefix.is_empty() {
        format!("{name}.scope")
    } else {
        format!("{prefix}-{name}.scope")
    };
    Some(format!("{out}/{unit}"))
}

/// The logical cgroup path for a container: the spec's cgroupsPath, or coop's default.
pub fn logical_path(spec_path: Option<&Path>, default: &str) -> String {
    match spec_path.and_then(|p| p.to_str()).filter(|p| !p.is_empty()) {
        Some(p) => expand_systemd(p).unwrap_or_else(|| p.to_string()),
        None => default.to_string(),
    }
}

/// Rootless, a systemd-style cgroupsPath (`user.slice:libpod:ID`, rootless podman's default)
/// names a unit of the user's own systemd instance, as runc's systemd driver would make it:
/// below the `user@UID.service` cgroup that the caller's own cgroup (`own`, from the "0::"
/// line) lies in. None when there is no such cgroup or the path is not systemd-style.
pub fn user_systemd_path(spec_path: &str, own: &str) -> Option<String> {
    let unit = expand_systemd(spec_path)?;
    let comps: Vec<&str> = own.split('/').collect();
    let at = comps
        .iter()
        .position(|c| c.starts_with("user@") && c.ends_with(".service"))?;
    Some(format!("{}{unit}", comps[..=at].join("/")))
}

/// Whether the kernel holds the cgroup frozen (or freezing): the v1 freezer where it is
/// mounted (what pause uses there), else the cgroup2 cgroup.freeze. Missing files: not frozen.
pub fn is_frozen(paths: &CgroupPaths) -> bool {
    let read = |p: PathBuf| std::fs::read_to_string(p).unwrap_or_default();
    match (paths.v1.get("freezer"), &paths.unified) {
        (Some(d), _) => matches!(read(d.join("freezer.state")).trim(), "FROZEN" | "FREEZING"),
        (None, Some(u)) => read(u.join("cgroup.freeze")).trim() == "1",
        (None, None) => false,
    }
}

/// A manager for new cgroup paths on this host. Rootless, only a cgroup2 subtree delegated to
/// the caller is used (pure cgroup v2 hosts); without one the container gets no cgroup
/// ([`none::Manager`]), as with runc.
pub fn new_manager(logical: &str, rootless: Rootless) -> Result<Box<dyn CgroupManager>> {
    let layout = Layout::detect()?;
    let own = std::fs::read_to_string("/proc/self/cgroup").context("read /proc/self/cgroup")?;
    let paths = layout.resolve(logical, &own)?;
    if rootless.is_yes() {
        let delegated = layout.is_pure_v2() && paths.unified.as_deref().is_some_and(delegated);
        if !delegated {
            log::debug!("rootless without a writable cgroup2 subtree for {logical}: no cgroup");
            return Ok(Box::new(none::Manager::new(
                CgroupPaths {
                    path: logical.to_string(),
                    ..Default::default()
                },
                None,
            )));
        }
    }
    Ok(manager(paths))
}

/// Whether the caller may create `dir` and manage it: its nearest existing ancestor is
/// writable, with writable cgroup.procs and cgroup.subtree_control (what a delegation hands
/// over).
fn delegated(dir: &Path) -> bool {
    use nix::unistd::AccessFlags;
    let Some(base) = dir.ancestors().find(|a| a.exists()) else {
        return false;
    };
    let writable = |p: &Path, how: AccessFlags| {
        nix::unistd::faccessat(
            nix::fcntl::AT_FDCWD,
            p,
            how,
            nix::fcntl::AtFlags::AT_EACCESS,
        )
        .is_ok()
    };
    writable(base, AccessFlags::W_OK | AccessFlags::X_OK)
        && writable(&base.join("cgroup.procs"), AccessFlags::W_OK)
        && writable(&base.join("cgroup.subtree_control"), AccessFlags::W_OK)
}

/// A manager for recorded paths (none of them: no cgroup, see [`none`]).
pub fn manager(paths: CgroupPaths) -> Box<dyn CgroupManager> {
    for_container(paths, None)
}

/// A manager for a container's recorded paths; `init` (pid, start time) lets a container
/// without a cgroup find its processes.
pub fn for_container(paths: CgroupPaths, init: Option<(i32, u64)>) -> Box<dyn CgroupManager> {
    if paths.unified.is_none() && paths.v1.is_empty() {
        Box::new(none::Manager::new(paths, init))
    } else if paths.v1.is_empty() {
        Box::new(v2::Manager::new(paths))
    } else {
        Box::new(v1::Manager::new(paths))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
30 25 0:26 / /sys/fs/cgroup rw - tmpfs tmpfs rw,mode=755
31 30 0:27 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu
32 30 0:28 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
33 30 0:29 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,name=systemd
34 30 0:30 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw
35 30 0:31 / /sys/fs/cgroup/net_cls,net_prio rw - cgroup cgroup rw,net_prio,net_cls
";
    const OWN: &str = "4:memory:/outer/m\n1:cpu:/\n9:name=systemd:/\n0::/\n5:net_cls,net_prio:/\n";

    #[test]
    fn hybrid_layout() {
        let l = Layout::parse(HYBRID);
        assert!(!l.is_pure_v2());
        assert_eq!(
            l.v1.keys().collect::<Vec<_>>(),
            ["cpu", "memory", "name=systemd", "net_cls,net_prio"]
        );
        let p = l.resolve("/coop/x", OWN).unwrap();
        assert_eq!(
            p.unified.as_deref(),
            Some(Path::new("/sys/fs/cgroup/unified/coop/x"))
        );
        assert_eq!(p.v1["memory"], Path::new("/sys/fs/cgroup/memory/coop/x"));
        // Relative paths hang below this process's own cgroup, per hierarchy.
        let p = l.resolve("rel/y", OWN).unwrap();
        assert_eq!(
            p.v1["memory"],
            Path::new("/sys/fs/cgroup/memory/outer/m/rel/y")
        );
        assert_eq!(p.v1["cpu"], Path::new("/sys/fs/cgroup/cpu/rel/y"));
        assert_eq!(
            p.v1["net_cls,net_prio"],
            Path::new("/sys/fs/cgroup/net_cls,net_prio/rel/y")
        );
    }

    #[test]
    fn covered_v1_mounts_are_ignored() {
        let view = format!("{HYBRID}40 25 0:40 / /sys/fs/cgroup rw - cgroup2 none rw\n");
        let l = Layout::parse(&view);
        assert!(l.is_pure_v2(), "{l:?}");
        assert_eq!(l.unified.unwrap().0, Path::new("/sys/fs/cgroup"));
    }

    #[test]
    fn only_sys_fs_cgroup_counts() {
        // A pure v2 view with a v1 hierarchy bound elsewhere (a leftover under a rootfs).
        let view = "\
30 25 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw
41 25 0:28 / /tmp/x/blkio rw - cgroup cgroup rw,blkio
42 25 0:29 /a /run/c/rootfs/sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
43 25 0:30 / /tmp/y rw - cgroup2 cgroup2 rw
";
        let l = Layout::parse(view);
        assert!(l.is_pure_v2(), "{l:?}");
        assert_eq!(
            l.unified,
            Some((PathBuf::from("/sys/fs/cgroup"), "/".to_string()))
        );
        // The same stray mounts next to a hybrid tree are not part of it either.
        let l = Layout::parse(&format!(
            "{HYBRID}{}",
            &view[view.find('\n').unwrap() + 1..]
        ));
        assert_eq!(
            l.v1.keys().collect::<Vec<_>>(),
            ["cpu", "memory", "name=systemd", "net_cls,net_prio"]
        );
        assert_eq!(l.v1["memory"].0, Path::new("/sys/fs/cgroup/memory"));
        assert_eq!(l.unified.unwrap().0, Path::new("/sys/fs/cgroup/unified"));
        // Nothing on /sys/fs/cgroup: no hierarchy.
        let l = Layout::parse("41 25 0:28 / /tmp/x/blkio rw - cgroup cgroup rw,blkio\n");
        assert_eq!(l, Layout::default());
    }

    #[test]
    fn pure_v2_and_mount_root() {
        let l = Layout::parse("30 25 0:26 /sub /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n");
        assert!(l.is_pure_v2());
        let p = l.resolve("c", "0::/sub/me\n").unwrap();
        assert_eq!(p.unified.as_deref(), Some(Path::new("/sys/fs/cgroup/me/c")));
        assert!(Layout::parse("").resolve("/x", "").is_err());
        // The mount root is cut only at a component boundary.
        let p = l.resolve("/subway/c", "0::/sub/me\n").unwrap();
        assert_eq!(
            p.unified.as_deref(),
            Some(Path::new("/sys/fs/cgroup/subway/c"))
        );
    }

    #[test]
    fn dot_dot_stays_inside_the_hierarchy() {
        let l = Layout::parse(HYBRID);
        for bad in [
            "/../../../../tmp/x",
            "../../../../../tmp/x",
            "/coop/../../tmp/x",
        ] {
            let p = l.resolve(bad, OWN).unwrap();
            assert_eq!(
                p.v1["memory"],
                Path::new("/sys/fs/cgroup/memory/tmp/x"),
                "{bad}"
            );
            assert_eq!(
                p.unified.as_deref(),
                Some(Path::new("/sys/fs/cgroup/unified/tmp/x")),
                "{bad}"
            );
        }
        let p = l.resolve("./a//b/./c/..", OWN).unwrap();
        assert_eq!(
            p.v1["memory"],
            Path::new("/sys/fs/cgroup/memory/outer/m/a/b")
        );
    }

    #[test]
    fn systemd_paths() {
        assert_eq!(
            expand_systemd("machine-a.slice:libpod:abc").unwrap(),
            "/machine.slice/machine-a.slice/libpod-abc.scope"
        );
        assert_eq!(
            expand_systemd(":cri:x").unwrap(),
            "/system.slice/cri-x.scope"
        );
        assert_eq!(expand_systemd("-.slice:p:x").unwrap(), "/p-x.scope");
        assert_eq!(expand_systemd("/a/b"), None);
        assert_eq!(logical_path(None, "/coop/id"), "/coop/id");
        assert_eq!(
            user_systemd_path(
                "user.slice:libpod:abc",
                "/user.slice/user-1000.slice/user@1000.service/app.slice/x.scope"
            )
            .unwrap(),
            "/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-abc.scope"
        );
        assert_eq!(user_systemd_path("user.slice:libpod:abc", "/coop/x"), None);
        assert_eq!(user_systemd_path("/a/b", "/user@1.service/x"), None);
        assert_eq!(logical_path(Some(Path::new("/a/b")), "/coop/id"), "/a/b");
    }
}
