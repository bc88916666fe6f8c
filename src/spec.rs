//! Loading and validating config.json (oci-spec types; no second config model).
use anyhow::{bail, Context, Result};
use oci_spec::runtime::{LinuxNamespaceType, Spec};
use std::collections::HashSet;
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
    serde_path_to_error::deserialize(de).map_err(|e| {
        // The root's path is "." (a syntax error): serde's message says where.
        match e.path().to_string() {
            p if p == "." => e.into_inner().into(),
            p => anyhow::anyhow!("{p}: {}", e.into_inner()),
        }
    })
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
pub fn validate(spec: &Spec) -> Result<()> {
    if spec.version().is_empty() {
        bail!("config.json: \"ociVersion\" is missing");
    }
    if let Some(p) = spec.process() {
        if p.args().as_ref().map_or(true, |a| a.is_empty()) {
            bail!("config.json: \"process.args\" must not be empty");
        }
        if !p.cwd().is_absolute() {
            bail!(
                "config.json: \"process.cwd\" {:?} must be an absolute path",
                p.cwd()
            );
        }
        let mut seen = HashSet::new();
        for r in p.rlimits().iter().flatten() {
            if !seen.insert(r.typ().to_string()) {
                bail!("config.json: \"process.rlimits\" lists {:?} twice", r.typ());
            }
            if r.soft() > r.hard() {
                bail!(
                    "config.json: \"process.rlimits\": soft limit of {:?} is above its hard limit",
                    r.typ()
                );
            }
        }
    }
    for m in spec.mounts().iter().flatten() {
        if !m.destination().is_absolute() {
            bail!(
                "config.json: mount destination {:?} must be an absolute path",
                m.destination()
            );
        }
    }
    let linux = spec.linux().as_ref();
    let mut types = HashSet::new();
    for ns in linux
        .and_then(|l| l.namespaces().as_ref())
        .into_iter()
        .flatten()
    {
        if !types.insert(ns.typ()) {
            bail!("config.json: namespace {} is listed twice", ns.typ());
        }
        if let Some(p) = ns.path() {
            if !p.is_absolute() {
                bail!(
                    "config.json: path {:?} of namespace {} must be absolute",
                    p,
                    ns.typ()
                );
            }
        }
    }
    let has = |t| types.contains(&t);
    let restricts = linux.is_some_and(|l| {
        l.masked_paths().as_ref().is_some_and(|m| !m.is_empty())
            || l.readonly_paths().as_ref().is_some_and(|m| !m.is_empty())
    });
    if restricts && !has(LinuxNamespaceType::Mount) {
        bail!("config.json: masked and read-only paths need a mount namespace (\"linux.namespaces\" has no \"mount\")");
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
        bail!("config.json: \"hostname\" needs a uts namespace");
    }
    if let Some(l) = linux {
        let maps = l.uid_mappings().as_ref().is_some_and(|m| !m.is_empty());
        if new_ns(LinuxNamespaceType::User) && !maps {
            bail!("config.json: a new user namespace needs \"linux.uidMappings\"");
        }
        if maps && !has(LinuxNamespaceType::User) {
            bail!("config.json: \"linux.uidMappings\" needs a user namespace");
        }
        if l.time_offsets().as_ref().is_some_and(|t| !t.is_empty())
            && !new_ns(LinuxNamespaceType::Time)
        {
            bail!("config.json: \"linux.timeOffsets\" needs a new time namespace");
        }
        for key in l.sysctl().iter().flat_map(|s| s.keys()) {
            if key.is_empty() || key.contains("..") || key.starts_with('/') {
                bail!("config.json: invalid sysctl name {key:?}");
            }
        }
        if let Some(p) = l.rootfs_propagation() {
            if !p.is_empty() && crate::linux::mount::propagation_flag(p).is_none() {
                bail!("config.json: unknown \"linux.rootfsPropagation\" {p:?}");
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = r#"{"ociVersion":"1.0.2","root":{"path":"rootfs"},
      "process":{"args":["sh"],"cwd":"/","user":{"uid":0,"gid":0}},
      "linux":{"namespaces":[{"type":"mount"},{"type":"pid"}]}}"#;

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
    fn json_error_has_position() {
        let err = parse(b"{\n \"ociVersion\": 1,,\n}").unwrap_err();
        assert!(err.to_string().contains("line 2 column"), "{err}");
    }

    #[test]
    fn rejects_bad_fields() {
        let cases: Vec<(&str, Box<dyn Fn(&mut serde_json::Value)>)> = vec![
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
}
