//! `linux.intelRdt`: the container's resctrl group (Intel RDT / AMD PQoS), as runtime-spec 1.3
//! says: the CTRL_MON group `closID` (or the container's id), its schemata, a MON group named
//! after the container with `enableMonitoring`, and the container's tasks in them.
//!
//! Every process enters through its first task: children inherit the group, so init's and
//! each exec's first pid are written before they run anything of the container.
use anyhow::{bail, Context, Result};
use oci_spec::runtime::{LinuxIntelRdt, Spec};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Where the kernel mounts resctrl.
pub const RESCTRL: &str = "/sys/fs/resctrl";

/// Whether resctrl is mounted at `root` (its root has a schemata file).
pub fn mounted(root: &Path) -> bool {
    root.join("schemata").is_file()
}

/// The schemata lines to write, in the spec's order: l3CacheSchema, memBwSchema, schemata.
fn lines(rdt: &LinuxIntelRdt) -> Vec<&str> {
    let mut out = vec![];
    out.extend(rdt.l3_cache_schema().as_deref());
    out.extend(rdt.mem_bw_schema().as_deref());
    out.extend(rdt.schemata().iter().flatten().map(String::as_str));
    out.into_iter().filter(|l| !l.trim().is_empty()).collect()
}

/// Checks that need no kernel.
pub fn validate(rdt: &LinuxIntelRdt) -> Result<()> {
    if let Some(c) = rdt.clos_id() {
        if c.is_empty() || (c != "/" && (c.contains('/') || c == "." || c == "..")) {
            bail!("linux.intelRdt.closID {c:?} must be \"/\" or a directory name");
        }
    }
    if let Some(l3) = rdt.l3_cache_schema() {
        if !l3.starts_with("L3") {
            bail!("linux.intelRdt.l3CacheSchema {l3:?} must start with \"L3\"");
        }
    }
    if let Some(mb) = rdt.mem_bw_schema() {
        if !mb.starts_with("MB:") {
            bail!("linux.intelRdt.memBwSchema {mb:?} must start with \"MB:\"");
        }
    }
    for l in lines(rdt) {
        if l.contains('\n') {
            bail!("linux.intelRdt: schema {l:?} must not contain a newline");
        }
    }
    Ok(())
}

/// The container's CTRL_MON group directory.
fn group(root: &Path, rdt: &LinuxIntelRdt, id: &str) -> PathBuf {
    match rdt.clos_id().as_deref() {
        Some("/") => root.to_path_buf(),
        Some(c) => root.join(c),
        None => root.join(id),
    }
}

/// "L3:0=7f0;1=1f" as (resource, domain -> value), values compared without leading zeros.
fn parse_line(l: &str) -> Option<(String, BTreeMap<String, String>)> {
    let (res, doms) = l.trim().split_once(':')?;
    let mut m = BTreeMap::new();
    for d in doms.split(';').filter(|d| !d.trim().is_empty()) {
        let (k, v) = d.split_once('=')?;
        let v = v.trim().to_ascii_lowercase();
        let v = v.trim_start_matches('0');
        m.insert(
            k.trim().to_string(),
            if v.is_empty() { "0" } else { v }.to_string(),
        );
    }
    Some((res.trim().to_string(), m))
}

/// An existing group must already have the schemata asked for.
fn check_existing(dir: &Path, want: &[&str]) -> Result<()> {
    let have = std::fs::read_to_string(dir.join("schemata"))
        .with_context(|| format!("read {}/schemata", dir.display()))?;
    let have: BTreeMap<String, BTreeMap<String, String>> =
        have.lines().filter_map(parse_line).collect();
    for w in want {
        let (res, doms) =
            parse_line(w).with_context(|| format!("linux.intelRdt: invalid schema line {w:?}"))?;
        for (d, v) in &doms {
            if have.get(&res).and_then(|h| h.get(d)) != Some(v) {
                bail!(
                    "linux.intelRdt: the existing group {} has another schema than {w:?}",
                    dir.display()
                );
            }
        }
    }
    Ok(())
}

fn write(dir: &Path, file: &str, value: &str) -> Result<()> {
    std::fs::write(dir.join(file), value).with_context(|| {
        format!(
            "linux.intelRdt: write {value:?} to {}/{file}",
            dir.display()
        )
    })
}

/// Set up the container's group under `root` and put `pid` (init's first task) in it.
pub fn apply(root: &Path, rdt: &LinuxIntelRdt, id: &str, pid: i32) -> Result<()> {
    validate(rdt)?;
    if !mounted(root) {
        bail!(
            "linux.intelRdt needs the resctrl filesystem, which is not mounted at {}",
            root.display()
        );
    }
    let dir = group(root, rdt, id);
    let want = lines(rdt);
    match (rdt.clos_id().is_some(), dir.is_dir()) {
        // A pre-configured group: it must exist, and have the schemata asked for.
        (true, true) if !want.is_empty() => check_existing(&dir, &want)?,
        (true, true) => {}
        (true, false) if want.is_empty() => bail!(
            "linux.intelRdt.closID: no resctrl group {} (and no schemata to make it with)",
            dir.display()
        ),
        _ => {
            if !dir.is_dir() {
                std::fs::create_dir(&dir)
                    .with_context(|| format!("linux.intelRdt: create {}", dir.display()))?;
            }
            for l in &want {
                write(&dir, "schemata", &format!("{l}\n"))?;
            }
        }
    }
    write(&dir, "tasks", &pid.to_string())?;
    if *rdt.enable_monitoring() == Some(true) {
        let mon = dir.join("mon_groups").join(id);
        std::fs::create_dir_all(&mon).with_context(|| {
            format!("linux.intelRdt.enableMonitoring: create {}", mon.display())
        })?;
        write(&mon, "tasks", &pid.to_string())?;
    }
    Ok(())
}

/// Put an exec's first task `pid` in the container's groups.
pub fn join(root: &Path, rdt: &LinuxIntelRdt, id: &str, pid: i32) -> Result<()> {
    let dir = group(root, rdt, id);
    write(&dir, "tasks", &pid.to_string())?;
    if *rdt.enable_monitoring() == Some(true) {
        write(&dir.join("mon_groups").join(id), "tasks", &pid.to_string())?;
    }
    Ok(())
}

/// On delete: the MON group, and the CTRL_MON group coop made (no closID); a pre-configured
/// group stays.
pub fn remove(root: &Path, spec: &Spec, id: &str) -> Result<()> {
    let Some(rdt) = spec.linux().as_ref().and_then(|l| l.intel_rdt().as_ref()) else {
        return Ok(());
    };
    let dir = group(root, rdt, id);
    let mon = dir.join("mon_groups").join(id);
    if *rdt.enable_monitoring() == Some(true) && mon.is_dir() {
        std::fs::remove_dir(&mon).with_context(|| format!("remove {}", mon.display()))?;
    }
    if rdt.clos_id().is_none() && dir.is_dir() && dir != root {
        std::fs::remove_dir(&dir).with_context(|| format!("remove {}", dir.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rdt(json: &str) -> LinuxIntelRdt {
        serde_json::from_str(json).unwrap()
    }

    fn fake_root() -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap();
        std::fs::write(
            t.path().join("schemata"),
            "    L3:0=7ff;1=7ff\n    MB:0=100;1=100\n",
        )
        .unwrap();
        t
    }

    #[test]
    fn checks() {
        validate(&rdt(
            r#"{"closID":"g","l3CacheSchema":"L3:0=f","memBwSchema":"MB:0=20"}"#,
        ))
        .unwrap();
        assert!(validate(&rdt(r#"{"memBwSchema":"L3:0=20"}"#)).is_err());
        assert!(validate(&rdt(r#"{"closID":"a/b"}"#)).is_err());
        assert!(validate(&rdt(r#"{"schemata":["L3:0=f\nMB:0=1"]}"#)).is_err());
        let missing = tempfile::tempdir().unwrap();
        let e = apply(missing.path(), &rdt(r#"{"closID":"x"}"#), "c", 1).unwrap_err();
        assert!(e.to_string().contains("not mounted"), "{e}");
    }

    #[test]
    fn a_new_group_gets_schemata_tasks_and_monitoring_and_goes_on_delete() {
        let root = fake_root();
        let r = rdt(r#"{"l3CacheSchema":"L3:0=f","schemata":["MB:0=20"],"enableMonitoring":true}"#);
        apply(root.path(), &r, "c1", 42).unwrap();
        let dir = root.path().join("c1");
        // A fake file keeps the last write; the kernel takes each line.
        assert_eq!(
            std::fs::read_to_string(dir.join("schemata")).unwrap(),
            "MB:0=20\n"
        );
        assert_eq!(std::fs::read_to_string(dir.join("tasks")).unwrap(), "42");
        assert_eq!(
            std::fs::read_to_string(dir.join("mon_groups/c1/tasks")).unwrap(),
            "42"
        );
        join(root.path(), &r, "c1", 43).unwrap();
        assert_eq!(std::fs::read_to_string(dir.join("tasks")).unwrap(), "43");
        // The fake files stand in for the kernel's (whose rmdir takes them along).
        for f in ["schemata", "tasks", "mon_groups/c1/tasks"] {
            std::fs::remove_file(dir.join(f)).unwrap();
        }
        let spec: Spec = serde_json::from_value(serde_json::json!({"ociVersion":"1.3.0",
            "linux":{"intelRdt":{"l3CacheSchema":"L3:0=f","enableMonitoring":true}}}))
        .unwrap();
        remove(root.path(), &spec, "c1").unwrap_err(); // mon_groups itself is left in a fake
        assert!(!dir.join("mon_groups/c1").exists());
        std::fs::remove_dir(dir.join("mon_groups")).unwrap();
        remove(root.path(), &spec, "c1").unwrap();
        assert!(!dir.exists());
    }

    #[test]
    fn an_existing_group_must_match() {
        let root = fake_root();
        let g = root.path().join("g");
        std::fs::create_dir(&g).unwrap();
        std::fs::write(
            g.join("schemata"),
            "    L3:0=07f0;1=1f\n    MB:0= 20;1=70\n",
        )
        .unwrap();
        apply(
            root.path(),
            &rdt(r#"{"closID":"g","l3CacheSchema":"L3:0=7f0;1=1f"}"#),
            "c",
            7,
        )
        .unwrap();
        assert_eq!(std::fs::read_to_string(g.join("tasks")).unwrap(), "7");
        let e = apply(
            root.path(),
            &rdt(r#"{"closID":"g","memBwSchema":"MB:0=30"}"#),
            "c",
            7,
        )
        .unwrap_err();
        assert!(e.to_string().contains("another schema"), "{e}");
        // A closID without schemata must exist.
        let e = apply(root.path(), &rdt(r#"{"closID":"nope"}"#), "c", 7).unwrap_err();
        assert!(e.to_string().contains("no resctrl group"), "{e}");
        // "/" is the root group.
        apply(root.path(), &rdt(r#"{"closID":"/"}"#), "c", 9).unwrap();
        assert_eq!(
            std::fs::read_to_string(root.path().join("tasks")).unwrap(),
            "9"
        );
    }
}
