//! Loading and validating config.json (oci-spec types; no second config model).
use anyhow::{anyhow, bail, Context, Result};
use oci_spec::runtime::{LinuxNamespaceType, LinuxResources, Process, Spec};
use std::collections::{HashMap, HashSet};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Read `<bundle>/config.json`. A JSON error keeps serde's "at line L column C".
pub fn load(bundle: &Path) -> Result<Spec> {
    let path = bundle.join("config.json");
    let data = std::fs::read(&path).with_context(|| format!("read {}", path.display()))?;
    parse(&data).with_context(|| format!("invalid {}", path.display()))
}

/// Parse config.json; a bad value is reported with the path of its field
/// (`process.capabilities.bounding[0]: unknown variant ...`).
pub fn parse(data: &[u8]) -> Result<Spec> {
    let de = &mut serde_json::Deserializer::from_slice(data);
    let mut spec: Spec = serde_path_to_error::deserialize(de).map_err(|e| {
        // The root's path is "." (a syntax error): serde's message says where.
        match e.path().to_string() {
            p if p == "." => anyhow::Error::from(e.into_inner()),
            p => anyhow::anyhow!("{p}: {}", e.into_inner()),
        }
    })?;
    drop_pids_without_limit(data, &mut spec);
    Ok(spec)
}

/// runtime-spec 1.3: `pids.limit` is optional and 0 is a real limit of 0. oci-spec reads a
/// missing limit as 0, so a `"pids"` without `"limit"` is dropped here (no pids limit).
fn drop_pids_without_limit(data: &[u8], spec: &mut Spec) {
    let zero = spec
        .linux()
        .as_ref()
        .and_then(|l| l.resources().as_ref())
        .and_then(|r| r.pids().as_ref())
        .is_some_and(|p| p.limit() == 0);
    if !zero {
        return;
    }
    let raw: serde_json::Value = serde_json::from_slice(data).unwrap_or_default();
    if raw
        .pointer("/linux/resources/pids/limit")
        .is_none_or(|v| v.is_null())
    {
        if let Some(r) = spec
            .linux_mut()
            .as_mut()
            .and_then(|l| l.resources_mut().as_mut())
        {
            r.set_pids(None);
        }
    }
}

/// `linux.resources` as `coop update --resources` and `--sandbox-resources` read it: a
/// `"pids"` without `"limit"` sets nothing (oci-spec would read it as a limit of 0).
pub fn parse_resources(data: &[u8]) -> Result<LinuxResources> {
    let mut r: LinuxResources = serde_json::from_slice(data)?;
    if r.pids().as_ref().is_some_and(|p| p.limit() == 0) {
        let raw: serde_json::Value = serde_json::from_slice(data).unwrap_or_default();
        if raw.pointer("/pids/limit").is_none_or(|v| v.is_null()) {
            r.set_pids(None);
        }
    }
    Ok(r)
}

/// `ociVersion`: SemVer 2.0.0, major 1, from 1.0.0 up to the version coop implements.
pub fn check_version(v: &str) -> Result<()> {
    let core = v.split(['-', '+']).next().unwrap_or("");
    let parts: Vec<&str> = core.split('.').collect();
    let num = |s: &str| -> Option<u64> {
        (!s.is_empty()
            && s.bytes().all(|b| b.is_ascii_digit())
            && (s == "0" || !s.starts_with('0')))
        .then(|| s.parse().ok())
        .flatten()
    };
    let nums: Option<Vec<u64>> = parts.iter().map(|p| num(p)).collect();
    let Some(nums) = nums.filter(|n| n.len() == 3) else {
        bail!("\"ociVersion\" {v:?} is not a SemVer version (such as \"1.3.0\")");
    };
    let max: Vec<u64> = crate::cli::SPEC_VERSION
        .split('.')
        .filter_map(|p| p.parse().ok())
        .collect();
    if nums[0] != 1 {
        bail!(
            "\"ociVersion\" {v:?}: major version {} is not supported (coop implements 1.0.0 to {})",
            nums[0],
            crate::cli::SPEC_VERSION
        );
    }
    if nums[1] > max[1] {
        bail!(
            "\"ociVersion\" {v:?} is newer than the runtime-spec coop implements ({})",
            crate::cli::SPEC_VERSION
        );
    }
    Ok(())
}

/// runtime-spec 1.3 process fields (config.json's or exec's), each naming the field.
fn validate_process_13(p: &Process) -> Result<()> {
    if let Some(io) = p.io_priority() {
        crate::linux::sched::validate_ioprio(io)?;
    }
    if let Some(s) = p.scheduler() {
        crate::linux::sched::validate_scheduler(s)?;
    }
    if let Some(a) = p.exec_cpu_affinity() {
        if let Some(i) = a.initial().as_deref().filter(|s| !s.is_empty()) {
            crate::linux::sched::parse_cpus("process.execCPUAffinity.initial", i)?;
        }
        if let Some(f) = a.cpu_affinity_final().as_deref().filter(|s| !s.is_empty()) {
            crate::linux::sched::parse_cpus("process.execCPUAffinity.final", f)?;
        }
    }
    Ok(())
}

/// runtime-spec 1.3 Linux fields: each is applied by coop or refused here, never ignored.
fn validate_linux_13(spec: &Spec) -> Result<()> {
    crate::linux::idmap::validate(spec)?;
    let Some(l) = spec.linux().as_ref() else {
        return Ok(());
    };
    let memory = l.resources().as_ref().and_then(|r| r.memory().as_ref());
    if memory.and_then(|m| m.use_hierarchy()) == Some(false) {
        bail!("\"linux.resources.memory.useHierarchy\" false is not possible: the kernel's memory hierarchy is always on");
    }
    if let Some(p) = l.personality() {
        crate::linux::personality::validate(p)?;
    }
    if let Some(m) = l.memory_policy() {
        crate::linux::mempolicy::validate(m)?;
    }
    if l.net_devices().as_ref().is_some_and(|d| !d.is_empty()) {
        crate::linux::netdev::validate(spec)?;
    }
    if let Some(rdt) = l.intel_rdt() {
        crate::linux::intelrdt::validate(rdt)?;
        if !crate::linux::intelrdt::mounted(std::path::Path::new(crate::linux::intelrdt::RESCTRL)) {
            bail!("\"linux.intelRdt\" needs the resctrl filesystem, which is not mounted at /sys/fs/resctrl on this host");
        }
    }
    Ok(())
}

/// The rootfs directory: root.path, relative to the bundle unless absolute.
pub fn rootfs(spec: &Spec, bundle: &Path) -> Result<PathBuf> {
    let root = spec
        .root()
        .as_ref()
        .context("config.json has no \"root\"")?;
    let p = if root.path().is_absolute() {
        root.path().clone()
    } else {
        bundle.join(root.path())
    };
    let canon = p
        .canonicalize()
        .with_context(|| format!("rootfs {}", p.display()))?;
    if !canon.is_dir() {
        bail!("rootfs {} is not a directory", p.display());
    }
    Ok(canon)
}

/// Checks that make a bad config fail before anything is created, each naming the field.
/// See docs/input-validation.md.
pub fn validate(spec: &Spec) -> Result<()> {
    check(spec).map_err(|e| anyhow!("config.json: {e:#}"))
}

/// The largest uid or gid a process may get (as runc: ids are signed 32-bit in the kernel's
/// interfaces, and 4294967295 is -1, "unchanged", to setresuid).
pub const MAX_ID: u32 = i32::MAX as u32;

/// The checks of a process, for config.json's and for exec's (`--process FILE` or the flags).
/// Errors name the field (`"process.cwd" ...`) without saying where the process came from.
pub fn validate_process(p: &Process) -> Result<()> {
    let args = p.args().as_deref().unwrap_or(&[]);
    if args.is_empty() {
        bail!("\"process.args\" must not be empty");
    }
    for (i, a) in args.iter().enumerate() {
        no_nul(&format!("process.args[{i}]"), a)?;
    }
    for (i, e) in p.env().iter().flatten().enumerate() {
        let field = format!("process.env[{i}]");
        no_nul(&field, e)?;
        match e.split_once('=') {
            None => bail!("{field:?} {e:?} has no \"=\" (NAME=VALUE)"),
            Some(("", _)) => bail!("{field:?} {e:?} has an empty name"),
            Some(_) => {}
        }
    }
    no_nul_path("process.cwd", p.cwd())?;
    if !p.cwd().is_absolute() {
        bail!("\"process.cwd\" {:?} must be an absolute path", p.cwd());
    }
    let user = p.user();
    let ids = [("process.user.uid".to_string(), user.uid())]
        .into_iter()
        .chain([("process.user.gid".to_string(), user.gid())])
        .chain(
            user.additional_gids()
                .iter()
                .flatten()
                .enumerate()
                .map(|(i, g)| (format!("process.user.additionalGids[{i}]"), *g)),
        );
    for (field, id) in ids {
        if id > MAX_ID {
            bail!("{field:?} {id} is out of range (0-{MAX_ID})");
        }
    }
    let mut seen = HashSet::new();
    for r in p.rlimits().iter().flatten() {
        if !seen.insert(r.typ().to_string()) {
            bail!("\"process.rlimits\" lists {:?} twice", r.typ());
        }
        if r.soft() > r.hard() {
            bail!(
                "\"process.rlimits\": soft limit of {:?} is above its hard limit",
                r.typ()
            );
        }
    }
    validate_process_13(p)
}

fn no_nul(field: &str, value: &str) -> Result<()> {
    if value.contains('\0') {
        bail!("{field:?} {value:?} contains a NUL byte");
    }
    Ok(())
}

fn no_nul_path(field: &str, value: &Path) -> Result<()> {
    if value.as_os_str().as_bytes().contains(&0) {
        bail!("{field:?} {value:?} contains a NUL byte");
    }
    Ok(())
}

fn check(spec: &Spec) -> Result<()> {
    if spec.version().is_empty() {
        bail!("\"ociVersion\" is missing");
    }
    check_version(spec.version())?;
    validate_linux_13(spec)?;
    if let Some(p) = spec.process() {
        validate_process(p)?;
    }
    for (i, m) in spec.mounts().iter().flatten().enumerate() {
        no_nul_path(&format!("mounts[{i}].destination"), m.destination())?;
        if let Some(src) = m.source() {
            no_nul_path(&format!("mounts[{i}].source"), src)?;
        }
        if !m.destination().is_absolute() {
            bail!(
                "mount destination {:?} must be an absolute path",
                m.destination()
            );
        }
        crate::linux::mount::parse(m.options().as_deref().unwrap_or(&[]))
            .with_context(|| format!("\"mounts[{i}].options\""))?;
    }
    if let Some(h) = spec.hostname() {
        no_nul("hostname", h)?;
    }
    if let Some(d) = spec.domainname() {
        no_nul("domainname", d)?;
    }
    let linux = spec.linux().as_ref();
    let mut types = HashSet::new();
    for ns in linux
        .and_then(|l| l.namespaces().as_ref())
        .into_iter()
        .flatten()
    {
        if !types.insert(ns.typ()) {
            bail!("namespace {} is listed twice", ns.typ());
        }
        if let Some(p) = ns.path() {
            if !p.is_absolute() {
                bail!("path {:?} of namespace {} must be absolute", p, ns.typ());
            }
        }
    }
    let has = |t| types.contains(&t);
    let restricts = linux.is_some_and(|l| {
        l.masked_paths().as_ref().is_some_and(|m| !m.is_empty())
            || l.readonly_paths().as_ref().is_some_and(|m| !m.is_empty())
    });
    if restricts && !has(LinuxNamespaceType::Mount) {
        bail!("masked and read-only paths need a mount namespace (\"linux.namespaces\" has no \"mount\")");
    }
    let new_ns = |t: LinuxNamespaceType| {
        linux
            .and_then(|l| l.namespaces().as_ref())
            .into_iter()
            .flatten()
            .any(|n| n.typ() == t && n.path().is_none())
    };
    if (spec.hostname().as_deref().is_some_and(|h| !h.is_empty())
        || spec.domainname().as_deref().is_some_and(|h| !h.is_empty()))
        && !has(LinuxNamespaceType::Uts)
    {
        bail!("\"hostname\" needs a uts namespace");
    }
    if let Some(l) = linux {
        let maps = l.uid_mappings().as_ref().is_some_and(|m| !m.is_empty());
        if new_ns(LinuxNamespaceType::User) && !maps {
            bail!("a new user namespace needs \"linux.uidMappings\"");
        }
        if maps && !has(LinuxNamespaceType::User) {
            bail!("\"linux.uidMappings\" needs a user namespace");
        }
        if l.time_offsets().as_ref().is_some_and(|t| !t.is_empty())
            && !new_ns(LinuxNamespaceType::Time)
        {
            bail!("\"linux.timeOffsets\" needs a new time namespace");
        }
        let mut owned = HashMap::new();
        for key in l.sysctl().iter().flat_map(|s| s.keys()) {
            if key.is_empty() || key.contains("..") || key.starts_with('/') || key.contains('\0') {
                bail!("invalid sysctl name {key:?}");
            }
            check_sysctl(key, l, &mut owned)?;
        }
        if let Some(p) = l.rootfs_propagation() {
            if !p.is_empty() && crate::linux::mount::propagation_flag(p).is_none() {
                bail!("unknown \"linux.rootfsPropagation\" {p:?}");
            }
        }
    }
    Ok(())
}

/// sysctl(8)'s names may use `/` as the separator (then a `.` is part of a name, as in
/// `net/ipv4/conf/eth0.100/rp_filter`): the dotted form, as runc compares it.
pub fn sysctl_dotted(key: &str) -> String {
    match key.find(['.', '/']) {
        Some(i) if key.as_bytes()[i] == b'/' => key
            .chars()
            .map(|c| match c {
                '.' => '/',
                '/' => '.',
                c => c,
            })
            .collect(),
        _ => key.to_string(),
    }
}

/// The ipc namespace's sysctls (besides `fs.mqueue.*`), as runc's validator lists them.
const IPC_SYSCTLS: &[&str] = &[
    "kernel.msgmax",
    "kernel.msgmnb",
    "kernel.msgmni",
    "kernel.sem",
    "kernel.shmall",
    "kernel.shmmax",
    "kernel.shmmni",
    "kernel.shm_rmid_forced",
];

/// A sysctl is set only inside a namespace of the container's own: writing it anywhere else
/// changes the host. `owned` caches which namespaces are the container's own.
fn check_sysctl(
    key: &str,
    l: &oci_spec::runtime::Linux,
    owned: &mut HashMap<LinuxNamespaceType, Result<bool, String>>,
) -> Result<()> {
    let name = sysctl_dotted(key);
    let (ns, what) = if IPC_SYSCTLS.contains(&name.as_str()) || name.starts_with("fs.mqueue.") {
        (LinuxNamespaceType::Ipc, "ipc")
    } else if name.starts_with("net.") {
        (LinuxNamespaceType::Network, "network")
    } else if name == "kernel.domainname" {
        (LinuxNamespaceType::Uts, "uts")
    } else if name == "kernel.hostname" {
        bail!("\"linux.sysctl\" {key:?} is not allowed: it conflicts with the \"hostname\" field");
    } else {
        bail!("\"linux.sysctl\" {key:?} is not in a separate kernel namespace: it would change the host's");
    };
    let own = owned
        .entry(ns)
        .or_insert_with(|| owns_namespace(l, ns))
        .clone()
        .map_err(|e| anyhow!("\"linux.sysctl\" {key:?}: {e}"))?;
    if !own {
        bail!("\"linux.sysctl\" {key:?} needs the container's own {what} namespace: it would change the host's");
    }
    Ok(())
}

/// Whether the container has a namespace of type `t` that is not coop's own (a new one, or
/// one joined by a path that is not the namespace coop runs in).
fn owns_namespace(l: &oci_spec::runtime::Linux, t: LinuxNamespaceType) -> Result<bool, String> {
    let Some(ns) = l.namespaces().iter().flatten().find(|n| n.typ() == t) else {
        return Ok(false);
    };
    let Some(path) = ns.path() else {
        return Ok(true);
    };
    let own = format!("/proc/self/ns/{}", crate::linux::namespaces::proc_name(t));
    let st = |p: &Path| {
        nix::sys::stat::stat(p).map_err(|e| {
            format!(
                "namespace path {}: {}",
                p.display(),
                crate::error::errno_text(e as i32)
            )
        })
    };
    let (a, b) = (st(Path::new(&own))?, st(path)?);
    Ok((a.st_dev, a.st_ino) != (b.st_dev, b.st_ino))
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = r#"{"ociVersion":"1.0.2","root":{"path":"rootfs"},
      "process":{"args":["sh"],"cwd":"/","user":{"uid":0,"gid":0}},
      "linux":{"namespaces":[{"type":"mount"},{"type":"pid"}]}}"#;

    type Patch = Box<dyn Fn(&mut serde_json::Value)>;

    fn with(patch: impl Fn(&mut serde_json::Value)) -> Result<Spec> {
        let mut v: serde_json::Value = serde_json::from_str(BASE).unwrap();
        patch(&mut v);
        let s = parse(v.to_string().as_bytes())?;
        validate(&s)?;
        Ok(s)
    }

    #[test]
    fn accepts_base() {
        with(|_| {}).unwrap();
    }

    #[test]
    fn versions_and_pids_limit() {
        for ok in ["1.0.0", "1.0.2-dev", "1.2.1", "1.3.0", "1.3.7+x"] {
            check_version(ok).unwrap();
        }
        let pids = |patch: serde_json::Value| {
            let s = with(|v| v["linux"]["resources"] = patch.clone()).unwrap();
            s.linux()
                .as_ref()
                .and_then(|l| l.resources().as_ref())
                .and_then(|r| r.pids().as_ref())
                .map(|p| p.limit())
        };
        assert_eq!(pids(serde_json::json!({"pids":{"limit":0}})), Some(0));
        assert_eq!(pids(serde_json::json!({"pids":{}})), None);
        assert_eq!(pids(serde_json::json!({"pids":{"limit":-1}})), Some(-1));
        let r = |s: &str| {
            parse_resources(s.as_bytes())
                .unwrap()
                .pids()
                .map(|p| p.limit())
        };
        assert_eq!(r(r#"{"pids":{}}"#), None);
        assert_eq!(r(r#"{"pids":{"limit":0}}"#), Some(0));
    }

    #[test]
    fn json_error_has_position() {
        let err = parse(b"{\n \"ociVersion\": 1,,\n}").unwrap_err();
        assert!(err.to_string().contains("line 2 column"), "{err}");
    }

    #[test]
    fn rejects_bad_fields() {
        let cases: Vec<(&str, Patch)> = vec![
            (
                "unknown variant `bogus`",
                Box::new(|v| v["linux"]["namespaces"][1]["type"] = "bogus".into()),
            ),
            (
                "listed twice",
                Box::new(|v| v["linux"]["namespaces"][1]["type"] = "mount".into()),
            ),
            (
                "need a mount namespace",
                Box::new(|v| {
                    v["linux"]["namespaces"] = serde_json::json!([]);
                    v["linux"]["maskedPaths"] = serde_json::json!(["/proc/kcore"]);
                }),
            ),
            (
                "process.args",
                Box::new(|v| v["process"]["args"] = serde_json::json!([])),
            ),
            (
                "process.cwd",
                Box::new(|v| v["process"]["cwd"] = "rel".into()),
            ),
            (
                "must be an absolute path",
                Box::new(|v| {
                    v["mounts"] = serde_json::json!([{"destination":"rel","type":"tmpfs"}])
                }),
            ),
            (
                "needs a uts namespace",
                Box::new(|v| v["hostname"] = "h".into()),
            ),
            (
                "uidMappings",
                Box::new(|v| v["linux"]["namespaces"][1]["type"] = "user".into()),
            ),
            (
                "rootfsPropagation",
                Box::new(|v| v["linux"]["rootfsPropagation"] = "sideways".into()),
            ),
            (
                "process.capabilities.bounding[0]: no variant for CAP_BOGUS",
                Box::new(|v| {
                    v["process"]["capabilities"] = serde_json::json!({"bounding":["CAP_BOGUS"]})
                }),
            ),
            (
                "linux.seccomp.defaultAction: unknown variant `SCMP_ACT_BOGUS`",
                Box::new(|v| {
                    v["linux"]["seccomp"] = serde_json::json!({"defaultAction":"SCMP_ACT_BOGUS"})
                }),
            ),
            (
                "linux.seccomp.syscalls[0].action: unknown variant `SCMP_ACT_NOPE`",
                Box::new(|v| {
                    v["linux"]["seccomp"] = serde_json::json!({"defaultAction":"SCMP_ACT_ALLOW",
                        "syscalls":[{"names":["read"],"action":"SCMP_ACT_NOPE"}]})
                }),
            ),
            (
                "linux.seccomp.architectures[0]: unknown variant `SCMP_ARCH_VAX`",
                Box::new(|v| {
                    v["linux"]["seccomp"] = serde_json::json!({"defaultAction":"SCMP_ACT_ALLOW",
                        "architectures":["SCMP_ARCH_VAX"]})
                }),
            ),
            (
                "\"ociVersion\" \"1.3\" is not a SemVer version",
                Box::new(|v| v["ociVersion"] = "1.3".into()),
            ),
            (
                "major version 2 is not supported",
                Box::new(|v| v["ociVersion"] = "2.0.0".into()),
            ),
            (
                "newer than the runtime-spec coop implements",
                Box::new(|v| v["ociVersion"] = "1.4.0".into()),
            ),
            (
                "process.ioPriority.priority 9 is out of range",
                Box::new(|v| {
                    v["process"]["ioPriority"] =
                        serde_json::json!({"class":"IOPRIO_CLASS_BE","priority":9})
                }),
            ),
            (
                "process.scheduler.nice 40",
                Box::new(|v| {
                    v["process"]["scheduler"] =
                        serde_json::json!({"policy":"SCHED_OTHER","nice":40})
                }),
            ),
            (
                "process.execCPUAffinity.initial: invalid range",
                Box::new(|v| {
                    v["process"]["execCPUAffinity"] = serde_json::json!({"initial":"3-1"})
                }),
            ),
            (
                "linux.personality.flags",
                Box::new(|v| {
                    v["linux"]["personality"] =
                        serde_json::json!({"domain":"LINUX","flags":["ADDR_NO_RANDOMIZE"]})
                }),
            ),
            (
                "linux.memoryPolicy: mode MPOL_BIND needs \"nodes\"",
                Box::new(|v| v["linux"]["memoryPolicy"] = serde_json::json!({"mode":"MPOL_BIND"})),
            ),
            (
                "\"linux.netDevices\" needs a network namespace",
                Box::new(|v| v["linux"]["netDevices"] = serde_json::json!({"eth0":{}})),
            ),
            (
                "\"linux.intelRdt\"",
                Box::new(|v| v["linux"]["intelRdt"] = serde_json::json!({"closID":"x"})),
            ),
            (
                "useHierarchy\" false is not possible",
                Box::new(|v| {
                    v["linux"]["resources"] = serde_json::json!({"memory":{"useHierarchy":false}})
                }),
            ),
            (
                "mounts[0] (/m): needs uidMappings and gidMappings",
                Box::new(|v| {
                    v["mounts"] = serde_json::json!([{"destination":"/m","type":"bind","source":"/tmp",
                        "options":["bind","idmap"]}])
                }),
            ),
            (
                "RLIMIT_BOGUS",
                Box::new(|v| {
                    v["process"]["rlimits"] =
                        serde_json::json!([{"type":"RLIMIT_BOGUS","hard":1,"soft":1}])
                }),
            ),
        ];
        for (want, patch) in cases {
            let err = format!("{:#}", with(patch).unwrap_err());
            assert!(err.contains(want), "want {want:?} in {err}");
        }
    }

    fn expect_errors(cases: Vec<(&str, Patch)>) {
        for (want, patch) in cases {
            let err = format!("{:#}", with(patch).unwrap_err());
            assert!(err.starts_with("config.json: "), "{err}");
            assert!(err.contains(want), "want {want:?} in {err}");
        }
    }

    #[test]
    fn rejects_bad_process() {
        expect_errors(vec![
            (
                r#""process.user.uid" 4294967295 is out of range (0-2147483647)"#,
                Box::new(|v| v["process"]["user"]["uid"] = 4294967295u32.into()),
            ),
            (
                r#""process.user.gid" 2147483648 is out of range"#,
                Box::new(|v| v["process"]["user"]["gid"] = 2147483648u32.into()),
            ),
            (
                r#""process.user.additionalGids[1]" 4294967295 is out of range"#,
                Box::new(|v| {
                    v["process"]["user"]["additionalGids"] = serde_json::json!([5, 4294967295u32])
                }),
            ),
            (
                r#""process.env[1]" "FOO" has no "=""#,
                Box::new(|v| v["process"]["env"] = serde_json::json!(["A=1", "FOO"])),
            ),
            (
                r#""process.env[0]" "=x" has an empty name"#,
                Box::new(|v| v["process"]["env"] = serde_json::json!(["=x"])),
            ),
            (
                r#""process.env[0]" "A=\0" contains a NUL byte"#,
                Box::new(|v| v["process"]["env"] = serde_json::json!(["A=\u{0}"])),
            ),
            (
                r#""process.args[1]" "a\0b" contains a NUL byte"#,
                Box::new(|v| v["process"]["args"] = serde_json::json!(["echo", "a\u{0}b"])),
            ),
            (
                r#""process.cwd" "/t\0mp" contains a NUL byte"#,
                Box::new(|v| v["process"]["cwd"] = "/t\u{0}mp".into()),
            ),
        ]);
        with(|v| {
            v["process"]["user"] =
                serde_json::json!({"uid": 2147483647u32, "gid": 0, "additionalGids": [2147483647u32]});
            v["process"]["env"] = serde_json::json!(["A=", "B=c=d"]);
        })
        .unwrap();
    }

    #[test]
    fn rejects_nul_and_bad_mount_options() {
        expect_errors(vec![
            (
                r#""hostname" "a\0b" contains a NUL byte"#,
                Box::new(|v| v["hostname"] = "a\u{0}b".into()),
            ),
            (
                r#""domainname" "a\0b" contains a NUL byte"#,
                Box::new(|v| v["domainname"] = "a\u{0}b".into()),
            ),
            (
                r#""mounts[0].destination" "/m\0nt" contains a NUL byte"#,
                Box::new(|v| {
                    v["mounts"] = serde_json::json!([{"destination":"/m\u{0}nt","type":"tmpfs"}])
                }),
            ),
            (
                r#""mounts[0].source" "/s\0rc" contains a NUL byte"#,
                Box::new(|v| {
                    v["mounts"] = serde_json::json!([{"destination":"/mnt","type":"bind",
                        "source":"/s\u{0}rc","options":["bind"]}])
                }),
            ),
            (
                r#""mounts[1].options": mount option "ratime" is refused"#,
                Box::new(|v| {
                    v["mounts"] = serde_json::json!([{"destination":"/a","type":"tmpfs"},
                        {"destination":"/b","type":"tmpfs","options":["nosuid","ratime"]}])
                }),
            ),
            (
                r#""mounts[0].options": mount option "rnostrictatime" is refused"#,
                Box::new(|v| {
                    v["mounts"] = serde_json::json!([{"destination":"/b","type":"tmpfs",
                        "options":["rnostrictatime"]}])
                }),
            ),
        ]);
    }

    fn sysctl(ns: &[serde_json::Value], key: &str) -> Result<Spec> {
        let (ns, key) = (ns.to_vec(), key.to_string());
        with(move |v| {
            v["linux"]["namespaces"] = serde_json::Value::Array(ns.clone());
            v["linux"]["sysctl"] = serde_json::json!({ key.clone(): "1" });
        })
    }

    #[test]
    fn sysctls_only_in_the_containers_own_namespaces() {
        use serde_json::json;
        let mnt = json!({"type": "mount"});
        let host_net = json!({"type": "network", "path": "/proc/self/ns/net"});
        let refused = [
            (
                vec![],
                "kernel.printk_ratelimit",
                "is not in a separate kernel namespace",
            ),
            (
                vec![json!({"type":"uts"})],
                "vm.swappiness",
                "is not in a separate kernel namespace",
            ),
            (
                vec![],
                "net.ipv4.ip_forward",
                "needs the container's own network namespace",
            ),
            (
                vec![host_net.clone()],
                "net.ipv4.ip_forward",
                "needs the container's own network namespace",
            ),
            (
                vec![],
                "net/ipv4/conf/eth0.100/rp_filter",
                "needs the container's own network namespace",
            ),
            (
                vec![],
                "kernel.shmmax",
                "needs the container's own ipc namespace",
            ),
            (
                vec![],
                "fs.mqueue.msg_max",
                "needs the container's own ipc namespace",
            ),
            (
                vec![json!({"type":"ipc","path":"/proc/self/ns/ipc"})],
                "kernel.sem",
                "needs the container's own ipc namespace",
            ),
            (
                vec![],
                "kernel.domainname",
                "needs the container's own uts namespace",
            ),
            (
                vec![json!({"type":"uts"})],
                "kernel.hostname",
                "conflicts with the \"hostname\" field",
            ),
            (
                vec![json!({"type":"network","path":"/nonexistent/netns"})],
                "net.core.somaxconn",
                "namespace path /nonexistent/netns: no such file or directory",
            ),
        ];
        for (mut ns, key, want) in refused {
            ns.push(mnt.clone());
            let err = format!("{:#}", sysctl(&ns, key).unwrap_err());
            assert!(
                err.contains(&format!("config.json: \"linux.sysctl\" {key:?}"))
                    && err.contains(want),
                "{key}: want {want:?} in {err}"
            );
        }
        let allowed = [
            (json!({"type":"network"}), "net.ipv4.ip_forward"),
            (
                json!({"type":"network"}),
                "net/ipv4/conf/eth0.100/rp_filter",
            ),
            (json!({"type":"ipc"}), "kernel.shm_rmid_forced"),
            (json!({"type":"ipc"}), "fs.mqueue.msg_max"),
            (json!({"type":"uts"}), "kernel.domainname"),
        ];
        for (ns, key) in allowed {
            sysctl(&[mnt.clone(), ns], key).unwrap_or_else(|e| panic!("{key}: {e:#}"));
        }
        assert_eq!(
            sysctl_dotted("net/ipv4/conf/eth0.100/rp_filter"),
            "net.ipv4.conf.eth0/100.rp_filter"
        );
        assert_eq!(sysctl_dotted("kernel.shmmax"), "kernel.shmmax");
    }
}
