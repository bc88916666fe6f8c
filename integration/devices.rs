//! The cgroup v2 eBPF device filter, for real: attached to a cgroup2 directory (the unified
//! tree on a hybrid host, the only tree on a v2 one).
use crate::common::*;
use std::os::unix::process::CommandExt;

#[test]
fn ebpf_filter_denies_and_allows_devices() {
    require_root();
    let base = ["/sys/fs/cgroup/unified", "/sys/fs/cgroup"]
        .into_iter()
        .map(std::path::Path::new)
        .find(|p| p.join("cgroup.procs").exists() && p.join("cgroup.controllers").exists())
        .expect("a cgroup2 mount");
    let dir = base.join(unique("coop-devtest"));
    std::fs::create_dir(&dir).unwrap();
    let rules: Vec<oci_spec::runtime::LinuxDeviceCgroup> = serde_json::from_str(
        r#"[{"allow":true,"access":"rwm"},{"allow":false,"type":"c","major":1,"minor":3,"access":"rw"}]"#,
    )
    .unwrap();
    coop::cgroups::devices::apply(&dir, &rules).unwrap();
    // Applying again replaces the program rather than stacking a second one.
    coop::cgroups::devices::apply(&dir, &rules).unwrap();
    let procs = dir.join("cgroup.procs");
    let out = std::process::Command::new("/bin/sh")
        .args([
            "-c",
            "head -c 1 /dev/zero | wc -c; cat /dev/null && echo null-ok || echo null-denied",
        ])
        .process_group(0)
        .pre_exec_join(procs)
        .output()
        .unwrap();
    let _ = std::fs::remove_dir(&dir);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        text,
        "1\nnull-denied\n",
        "{text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

trait JoinCgroup {
    fn pre_exec_join(&mut self, procs: std::path::PathBuf) -> &mut Self;
}

impl JoinCgroup for std::process::Command {
    fn pre_exec_join(&mut self, procs: std::path::PathBuf) -> &mut Self {
        // SAFETY: only write(2) to a path prepared before the fork.
        unsafe { self.pre_exec(move || std::fs::write(&procs, "0")) }
    }
}
