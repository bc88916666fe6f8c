//! `coop features`: what this build of coop implements, from the tables the code itself uses
//! (runtime-spec features.md / features-linux.md).
use super::Global;
use crate::linux::seccomp;
use anyhow::Result;
use serde_json::{json, Value};
use std::io::Write;

#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn run(_g: &Global, _a: Args) -> Result<i32> {
    let v = serde_json::json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": super::SPEC_VERSION,
        "hooks": ["prestart", "createRuntime", "createContainer", "startContainer", "poststart",
            "poststop"],
        "mountOptions": crate::linux::mount::known_words().collect::<Vec<_>>(),
        "linux": linux(),
        "annotations": {
            "dev.coop.version": crate::cli::VERSION,
            "dev.coop.commit": option_env!("COOP_COMMIT").unwrap_or("unknown"),
        }
    });
    writeln!(super::out(), "{}", serde_json::to_string_pretty(&v)?)?;
    Ok(0)
}

fn names<T: serde::Serialize>(items: impl IntoIterator<Item = T>) -> Vec<Value> {
    items
        .into_iter()
        .filter_map(|i| serde_json::to_value(i).ok())
        .collect()
}

/// The Linux part: namespaces, capabilities this kernel knows, cgroups, seccomp, LSMs, ...
fn linux() -> Value {
    use oci_spec::runtime::{MemoryPolicyFlagType as F, MemoryPolicyModeType as M};
    let mut caps: Vec<caps::Capability> = caps::runtime::procfs_all_supported(None)
        .unwrap_or_else(|_| caps::runtime::thread_all_supported())
        .into_iter()
        .collect();
    caps.sort_by_key(|c| c.index());
    let rdt =
        crate::linux::intelrdt::mounted(std::path::Path::new(crate::linux::intelrdt::RESCTRL));
    json!({
        "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"],
        "capabilities": caps.iter().map(|c| c.to_string()).collect::<Vec<_>>(),
        "cgroup": {"v1": true, "v2": true, "systemd": false, "systemdUser": false, "rdma": true},
        "seccomp": {
            "enabled": true,
            "actions": names(seccomp::ACTIONS),
            "operators": names(seccomp::OPERATORS),
            "archs": names(seccomp::oci_archs()),
            "knownFlags": names(seccomp::FLAGS),
            "supportedFlags": names(seccomp::FLAGS.into_iter().filter(|f| seccomp::flag_supported(*f))),
        },
        "apparmor": {"enabled": crate::linux::lsm::apparmor_enabled()},
        "selinux": {"enabled": crate::linux::lsm::selinux_enabled()},
        // linux.intelRdt needs resctrl: enabled where it is mounted.
        "intelRdt": {"enabled": rdt, "schemata": rdt, "monitoring": rdt},
        "memoryPolicy": {
            "modes": names([M::MpolDefault, M::MpolBind, M::MpolInterleave,
                M::MpolWeightedInterleave, M::MpolPreferred, M::MpolPreferredMany, M::MpolLocal]),
            "flags": names([F::MpolFNumaBalancing, F::MpolFRelativeNodes, F::MpolFStaticNodes]),
        },
        "mountExtensions": {"idmap": {"enabled": true}},
        "netDevices": {"enabled": true},
    })
}

#[cfg(test)]
mod tests {
    use crate::linux::mount;

    /// Every word `features` lists is one the parser takes as an option (not filesystem data,
    /// not refused), and every option the parser takes is listed.
    #[test]
    fn mount_options_agree_with_the_parser() {
        let listed: Vec<&str> = mount::known_words().collect();
        for w in &listed {
            let o = mount::parse(&[w.to_string()]).unwrap_or_else(|e| panic!("{w}: {e:#}"));
            assert!(o.data.is_empty(), "{w} is listed but parsed as data");
        }
        for (w, _) in mount::OPTIONS {
            let ok = mount::parse(&[w.to_string()]).is_ok();
            assert_eq!(
                ok,
                listed.contains(w),
                "{w}: accepted={ok}, listed in features"
            );
        }
        let mut sorted = listed.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(listed, sorted, "mountOptions must be sorted and unique");
    }
}
