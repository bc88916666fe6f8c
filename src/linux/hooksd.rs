//! hooks.d: hook definitions in the oci-hooks(5) JSON format (version 1.0.0), injected into
//! a container's hooks at create. Beyond runc: users of coop under containerd or on its own
//! can add hooks without editing every config.json.
//!
//! Directories are read in order (by default /usr/share/containers/oci/hooks.d, then
//! /etc/coop/hooks.d; `--hooks-dir` replaces them); a file in a later directory replaces a
//! file of the same name in an earlier one. Matching definitions are added after the
//! config's own hooks of each stage, in file-name order. A file that cannot be read or is
//! invalid is reported by name and skipped.
use anyhow::{bail, Context, Result};
use oci_spec::runtime::{Hook, Hooks, Spec};
use regex::Regex;
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

pub const DEFAULT_DIRS: [&str; 2] = ["/usr/share/containers/oci/hooks.d", "/etc/coop/hooks.d"];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Definition {
    version: String,
    hook: Hook,
    when: When,
    stages: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct When {
    #[serde(default)]
    always: Option<bool>,
    #[serde(default)]
    annotations: Option<HashMap<String, String>>,
    #[serde(default)]
    commands: Option<Vec<String>>,
    #[serde(default)]
    has_bind_mounts: Option<bool>,
}

const STAGES: [&str; 6] = [
    "prestart",
    "createRuntime",
    "createContainer",
    "startContainer",
    "poststart",
    "poststop",
];

fn parse(data: &[u8]) -> Result<Definition> {
    let d: Definition = serde_json::from_slice(data)?;
    if d.version != "1.0.0" {
        bail!("unsupported version {:?} (1.0.0 is)", d.version);
    }
    if d.stages.is_empty() {
        bail!("no stages");
    }
    for s in &d.stages {
        if !STAGES.contains(&s.as_str()) {
            bail!("unknown stage {s:?}");
        }
    }
    if !d.hook.path().is_absolute() {
        bail!("hook.path {:?} is not absolute", d.hook.path());
    }
    let w = &d.when;
    if w.always.is_none()
        && w.annotations.is_none()
        && w.commands.is_none()
        && w.has_bind_mounts.is_none()
    {
        bail!("\"when\" has no condition");
    }
    Ok(d)
}

/// Any condition matching injects the hook (as podman reads oci-hooks).
fn matches(w: &When, spec: &Spec) -> Result<bool> {
    if w.always == Some(true) {
        return Ok(true);
    }
    if w.has_bind_mounts == Some(true) {
        let bind = spec.mounts().iter().flatten().any(|m| {
            m.typ().as_deref() == Some("bind")
                || m.options()
                    .iter()
                    .flatten()
                    .any(|o| o == "bind" || o == "rbind")
        });
        if bind {
            return Ok(true);
        }
    }
    if let Some(ann) = &w.annotations {
        let have = spec.annotations().clone().unwrap_or_default();
        for (k, v) in ann {
            let (kr, vr) = (
                Regex::new(k).context("annotation key regex")?,
                Regex::new(v).context("annotation value regex")?,
            );
            if have
                .iter()
                .any(|(hk, hv)| kr.is_match(hk) && vr.is_match(hv))
            {
                return Ok(true);
            }
        }
    }
    if let Some(cmds) = &w.commands {
        if let Some(cmd) = spec
            .process()
            .as_ref()
            .and_then(|p| p.args().as_ref())
            .and_then(|a| a.first())
        {
            for c in cmds {
                if Regex::new(c).context("command regex")?.is_match(cmd) {
                    return Ok(true);
                }
            }
        }
    }
    Ok(false)
}

/// Add the matching hooks from `dirs` to the spec's hooks.
pub fn inject(spec: &mut Spec, dirs: &[PathBuf]) {
    let mut files: BTreeMap<String, PathBuf> = BTreeMap::new();
    for d in dirs {
        let Ok(rd) = std::fs::read_dir(d) else {
            continue;
        };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.ends_with(".json") {
                files.insert(name, e.path());
            }
        }
    }
    let mut hooks = spec.hooks().clone().unwrap_or_default();
    let mut changed = false;
    for path in files.values() {
        match load(path).and_then(|d| Ok((matches(&d.when, spec)?, d))) {
            Ok((true, d)) => {
                for s in &d.stages {
                    add(&mut hooks, s, d.hook.clone());
                }
                changed = true;
            }
            Ok((false, _)) => {}
            Err(e) => log::warn!(
                "hooks.d: skipping {}: {}",
                path.display(),
                crate::error::render(&e)
            ),
        }
    }
    if changed {
        spec.set_hooks(Some(hooks));
    }
}

fn load(path: &Path) -> Result<Definition> {
    let data = std::fs::read(path)?;
    parse(&data)
}

fn add(h: &mut Hooks, stage: &str, hook: Hook) {
    let list = match stage {
        "prestart" => h.prestart().clone(),
        "createRuntime" => h.create_runtime().clone(),
        "createContainer" => h.create_container().clone(),
        "startContainer" => h.start_container().clone(),
        "poststart" => h.poststart().clone(),
        _ => h.poststop().clone(),
    };
    let mut list = list.unwrap_or_default();
    list.push(hook);
    match stage {
        "prestart" => h.set_prestart(Some(list)),
        "createRuntime" => h.set_create_runtime(Some(list)),
        "createContainer" => h.set_create_container(Some(list)),
        "startContainer" => h.set_start_container(Some(list)),
        "poststart" => h.set_poststart(Some(list)),
        _ => h.set_poststop(Some(list)),
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: &str) -> Spec {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn inject_matching_in_order_and_skip_bad_files() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let def = |path: &str, when: &str, stages: &str| {
            format!(
                r#"{{"version":"1.0.0","hook":{{"path":"{path}"}},"when":{when},"stages":{stages}}}"#
            )
        };
        std::fs::write(
            a.path().join("10-always.json"),
            def("/bin/a", r#"{"always":true}"#, r#"["prestart","poststop"]"#),
        )
        .unwrap();
        std::fs::write(
            a.path().join("20-gpu.json"),
            def(
                "/bin/gpu",
                r#"{"annotations":{"^gpu$":"^yes$"}}"#,
                r#"["createRuntime"]"#,
            ),
        )
        .unwrap();
        std::fs::write(
            a.path().join("30-cmd.json"),
            def(
                "/bin/cmd",
                r#"{"commands":["^/?(bin/)?nginx$"]}"#,
                r#"["poststart"]"#,
            ),
        )
        .unwrap();
        std::fs::write(a.path().join("40-bad.json"), "{ not json").unwrap();
        std::fs::write(
            a.path().join("50-stage.json"),
            def("/bin/x", r#"{"always":true}"#, r#"["later"]"#),
        )
        .unwrap();
        // A later directory's file of the same name wins.
        std::fs::write(
            b.path().join("10-always.json"),
            def("/bin/b", r#"{"always":true}"#, r#"["prestart"]"#),
        )
        .unwrap();
        let mut s = spec(
            r#"{"ociVersion":"1.0.2","process":{"args":["sh"],"cwd":"/","user":{"uid":0,"gid":0}},
            "annotations":{"gpu":"yes"},"hooks":{"prestart":[{"path":"/own"}]}}"#,
        );
        inject(&mut s, &[a.path().to_path_buf(), b.path().to_path_buf()]);
        let h = s.hooks().clone().unwrap();
        let paths = |l: &Option<Vec<Hook>>| {
            l.iter()
                .flatten()
                .map(|h| h.path().display().to_string())
                .collect::<Vec<_>>()
        };
        assert_eq!(paths(h.prestart()), ["/own", "/bin/b"]);
        assert_eq!(paths(h.create_runtime()), ["/bin/gpu"]);
        assert!(paths(h.poststop()).is_empty());
        assert!(paths(h.poststart()).is_empty());
    }

    #[test]
    fn definitions_are_validated() {
        assert!(parse(br#"{"version":"2.0.0","hook":{"path":"/x"},"when":{"always":true},"stages":["prestart"]}"#).is_err());
        assert!(parse(br#"{"version":"1.0.0","hook":{"path":"x"},"when":{"always":true},"stages":["prestart"]}"#).is_err());
        assert!(parse(
            br#"{"version":"1.0.0","hook":{"path":"/x"},"when":{},"stages":["prestart"]}"#
        )
        .is_err());
        assert!(parse(
            br#"{"version":"1.0.0","hook":{"path":"/x"},"when":{"always":true},"stages":[]}"#
        )
        .is_err());
        assert!(parse(br#"{"version":"1.0.0","hook":{"path":"/x"},"when":{"hasBindMounts":true},"stages":["poststop"]}"#).is_ok());
    }
}
