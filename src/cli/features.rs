use super::Global;
use anyhow::Result;
use std::io::Write;

#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn run(_g: &Global, _a: Args) -> Result<i32> {
    let v = serde_json::json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": super::SPEC_VERSION,
        "hooks": [],
        "mountOptions": ["async", "atime", "bind", "defaults", "dev", "diratime", "dirsync", "exec",
            "loud", "mand", "noatime", "nodev", "nodiratime", "noexec", "nomand", "norelatime",
            "nostrictatime", "nosuid", "private", "rbind", "rdev", "rdiratime", "relatime", "remount",
            "rexec", "rnoatime", "rnodev", "rnodiratime", "rnoexec", "rnosuid", "rnosymfollow",
            "ro", "rprivate", "rrelatime", "rro", "rrw", "rshared", "rslave", "rstrictatime",
            "rsuid", "rsymfollow", "runbindable", "rw", "shared", "silent", "slave", "strictatime",
            "suid", "sync", "tmpcopyup", "unbindable"],
        "linux": {
            "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"],
            "cgroup": {"v1": true, "v2": true, "systemd": false, "systemdUser": false},
            "mountExtensions": {"idmap": {"enabled": false}}
        },
        "annotations": {"org.opencontainers.runtime-spec.features": "coop"}
    });
    writeln!(super::out(), "{}", serde_json::to_string_pretty(&v)?)?;
    Ok(0)
}
