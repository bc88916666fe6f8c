//! `exec --cgroup`: run an exec'd process in an existing sub-cgroup of the container's cgroup
//! (as runc 1.1+ does). `PATH` names the sub-cgroup in every hierarchy; `CTRL[,CTRL]:PATH`
//! names it for those v1 controllers only (the others keep the container's cgroup); on cgroup
//! v2, with one hierarchy, every argument must name the same path.
use super::{clean, CgroupPaths};
use anyhow::{bail, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The parsed `--cgroup` arguments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SubCgroup {
    /// `--cgroup PATH`: every hierarchy.
    All(String),
    /// `--cgroup CTRL[,CTRL]:PATH`, repeatable: controller -> path.
    PerController(BTreeMap<String, String>),
}

/// Parse the `--cgroup` arguments (None when there are none).
pub fn parse(args: &[String]) -> Result<Option<SubCgroup>> {
    if args.is_empty() {
        return Ok(None);
    }
    let mut per = BTreeMap::new();
    for a in args {
        let Some((ctrls, path)) = a.split_once(':') else {
            if args.len() != 1 {
                bail!("--cgroup {a}: a path without a controller must be the only --cgroup");
            }
            return Ok(Some(SubCgroup::All(a.clone())));
        };
        if path.contains(':') {
            bail!("--cgroup {a}: expected [CONTROLLER[,CONTROLLER]:]PATH");
        }
        for c in ctrls.split(',') {
            if c.is_empty() {
                bail!("--cgroup {a}: empty controller name");
            }
            if per
                .insert(c.to_string(), path.to_string())
                .is_some_and(|prev| prev != path)
            {
                bail!("--cgroup {a}: controller {c} is given another path too");
            }
        }
    }
    Ok(Some(SubCgroup::PerController(per)))
}

/// The sub-cgroup `sub` of `base`: relative to it whatever its leading slashes, and never
/// outside it.
fn below(base: &Path, sub: &str) -> Result<PathBuf> {
    // A leading ".." that `clean` would drop at the root is refused, not ignored.
    let mut depth = 0i32;
    for c in sub.split('/') {
        match c {
            "" | "." => {}
            ".." => depth -= 1,
            _ => depth += 1,
        }
        if depth < 0 {
            bail!("--cgroup {sub}: not inside the container's cgroup");
        }
    }
    let rel = clean(sub);
    let dir = base.join(rel.trim_start_matches('/'));
    if !dir.is_dir() {
        bail!(
            "--cgroup {sub}: sub-cgroup {} does not exist (create it first)",
            dir.display()
        );
    }
    // A v1 cpuset cgroup takes no process until its cpus and mems are set (on v2, where
    // cgroup.controllers exists, empty means inherited).
    let v1 = !dir.join("cgroup.controllers").exists();
    for file in ["cpuset.cpus", "cpuset.mems"].into_iter().filter(|_| v1) {
        if std::fs::read_to_string(dir.join(file)).is_ok_and(|s| s.trim().is_empty()) {
            bail!(
                "--cgroup {sub}: {} is empty (write it first)",
                dir.join(file).display()
            );
        }
    }
    Ok(dir)
}

/// The container's cgroup `paths` with `sub` applied: the cgroups the exec'd process joins.
pub fn resolve(paths: &CgroupPaths, sub: &SubCgroup) -> Result<CgroupPaths> {
    let mut out = paths.clone();
    match sub {
        SubCgroup::All(p) => {
            if let Some(u) = &paths.unified {
                out.unified = Some(below(u, p)?);
            }
            for (key, dir) in &paths.v1 {
                out.v1.insert(key.clone(), below(dir, p)?);
            }
            out.path = format!("{}{}", paths.path.trim_end_matches('/'), clean(p));
        }
        SubCgroup::PerController(per) if paths.v1.is_empty() => {
            // cgroup v2: one hierarchy, so one path.
            let distinct: std::collections::BTreeSet<&String> = per.values().collect();
            let Some(only) = distinct.first().filter(|_| distinct.len() == 1) else {
                bail!(
                    "--cgroup: cgroup v2 has one hierarchy: every --cgroup must name the same path"
                );
            };
            return resolve(paths, &SubCgroup::All(only.to_string()));
        }
        SubCgroup::PerController(per) => {
            // Which path each hierarchy gets; controllers sharing one must agree.
            let mut chosen: BTreeMap<&str, &str> = BTreeMap::new();
            for (ctrl, p) in per {
                let Some(key) = paths.v1.keys().find(|k| k.split(',').any(|c| c == ctrl)) else {
                    bail!("--cgroup {ctrl}:{p}: controller {ctrl} is not mounted (cgroup v1)");
                };
                if let Some(prev) = chosen.insert(key, p) {
                    if prev != p {
                        bail!("--cgroup: the controllers of hierarchy {key} name different paths ({prev}, {p})");
                    }
                }
            }
            for (key, p) in chosen {
                out.v1.insert(key.to_string(), below(&paths.v1[key], p)?);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn parses_runc_forms() {
        assert_eq!(parse(&[]).unwrap(), None);
        assert_eq!(
            parse(&args(&["sub"])).unwrap(),
            Some(SubCgroup::All("sub".into()))
        );
        let Some(SubCgroup::PerController(m)) =
            parse(&args(&["cpu,memory:a", "pids:b/c"])).unwrap()
        else {
            panic!()
        };
        assert_eq!(m["cpu"], "a");
        assert_eq!(m["memory"], "a");
        assert_eq!(m["pids"], "b/c");
        for bad in [
            &["sub", "memory:x"][..],
            &["memory:a", "memory:b"],
            &["memory:a", "cpu,memory:b"],
            &[",memory:a"],
            &["memory:a:b"],
        ] {
            assert!(parse(&args(bad)).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn resolves_inside_the_container_cgroup_only() {
        let tmp = tempfile::tempdir().unwrap();
        let t = tmp.path();
        for d in ["mem/c/sub", "cpu/c/sub", "cpu/c/other", "u/c/sub"] {
            std::fs::create_dir_all(t.join(d)).unwrap();
        }
        let paths = CgroupPaths {
            path: "/c".into(),
            unified: Some(t.join("u/c")),
            v1: [
                ("memory".to_string(), t.join("mem/c")),
                ("cpu,cpuacct".to_string(), t.join("cpu/c")),
            ]
            .into(),
        };
        let all = resolve(&paths, &SubCgroup::All("/sub/".into())).unwrap();
        assert_eq!(all.unified, Some(t.join("u/c/sub")));
        assert_eq!(all.v1["memory"], t.join("mem/c/sub"));
        assert_eq!(all.v1["cpu,cpuacct"], t.join("cpu/c/sub"));
        assert_eq!(all.path, "/c/sub");
        let per = parse(&args(&["cpuacct:other"])).unwrap().unwrap();
        let one = resolve(&paths, &per).unwrap();
        assert_eq!(one.v1["cpu,cpuacct"], t.join("cpu/c/other"));
        assert_eq!(one.v1["memory"], t.join("mem/c"));
        assert_eq!(one.unified, Some(t.join("u/c")));
        for bad in [
            &["other"][..],                // missing in memory and the unified tree
            &["../c"],                     // outside
            &["sub/../../x"],              // outside
            &["pids:sub"],                 // not mounted
            &["cpu:sub", "cpuacct:other"], // one hierarchy, two paths
        ] {
            let sub = parse(&args(bad)).unwrap().unwrap();
            assert!(resolve(&paths, &sub).is_err(), "{bad:?}");
        }
        // cgroup v2: controllers name the one hierarchy.
        let v2 = CgroupPaths {
            path: "/c".into(),
            unified: Some(t.join("u/c")),
            v1: Default::default(),
        };
        let sub = parse(&args(&["memory:sub", "pids:sub"])).unwrap().unwrap();
        assert_eq!(resolve(&v2, &sub).unwrap().unified, Some(t.join("u/c/sub")));
        let sub = parse(&args(&["memory:sub", "pids:x"])).unwrap().unwrap();
        assert!(resolve(&v2, &sub).is_err());
    }
}
