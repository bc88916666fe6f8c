//! Linux security modules: AppArmor profiles and SELinux labels, applied on exec.
//!
//! Like runc: an AppArmor profile on a host without AppArmor is an error (the container would
//! silently run unconfined otherwise); SELinux labels are ignored when SELinux is disabled, as
//! go-selinux does for runc.
use super::procfs;
use anyhow::{bail, Context, Result};
use std::path::Path;

pub fn apparmor_enabled() -> bool {
    std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
        .map(|s| s.trim() == "Y")
        .unwrap_or(false)
}

pub fn selinux_enabled() -> bool {
    Path::new("/sys/fs/selinux/enforce").exists()
}

/// Checked at create, before anything is set up.
pub fn validate(apparmor: Option<&str>) -> Result<()> {
    if let Some(p) = apparmor.filter(|p| !p.is_empty()) {
        if !apparmor_enabled() {
            bail!("apparmor profile {p:?} requested, but AppArmor is not enabled on this host");
        }
    }
    Ok(())
}

/// Labels for the next execve, written through the container's /proc (verified to be procfs).
pub fn set_exec_labels(apparmor: Option<&str>, selinux: Option<&str>) -> Result<()> {
    if let Some(p) = apparmor.filter(|p| !p.is_empty()) {
        procfs::require_procfs(Path::new("/proc/self/attr"))?;
        let new = Path::new("/proc/self/attr/apparmor/exec");
        let path = if new.exists() {
            new
        } else {
            Path::new("/proc/self/attr/exec")
        };
        std::fs::write(path, format!("exec {p}"))
            .with_context(|| format!("set apparmor profile {p}"))?;
    }
    if let Some(l) = selinux.filter(|l| !l.is_empty() && selinux_enabled()) {
        procfs::require_procfs(Path::new("/proc/self/attr"))?;
        std::fs::write("/proc/self/attr/exec", l)
            .with_context(|| format!("set selinux label {l}"))?;
    }
    Ok(())
}

/// The `context=` mount option for linux.mountLabel, for filesystems that take it.
pub fn mount_label_option(fstype: &str, label: Option<&str>) -> Option<String> {
    let label = label.filter(|l| !l.is_empty())?;
    if !selinux_enabled() || matches!(fstype, "proc" | "sysfs" | "cgroup" | "cgroup2" | "bind") {
        return None;
    }
    Some(format!("context=\"{label}\""))
}
