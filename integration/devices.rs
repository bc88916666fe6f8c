//! The cgroup v2 eBPF device filter, for real: attached to a cgroup2 directory (the unified
//! tree on a hybrid host, the only tree on a v2 one).
use crate::common::*;
use serde_json::json;
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

#[test]
#[ignore = "needs pure cgroup v2: run by scripts/test-v2.sh"]
fn v2_device_rules_deny_a_node_and_update_replaces_them() {
    if skip_unless_v2("v2_device_rules_deny_a_node_and_update_replaces_them") {
        return;
    }
    // A block device node in the container that no rule allows (the config has only
    // coop spec's "deny everything"; coop adds the devices every container needs).
    let lo = LoopDevice::new(1 << 20, b'd');
    let env = Env::new(&["sleep", "100"], |c| {
        c["mounts"]
            .as_array_mut()
            .unwrap()
            .push(lo.mount_at("/dev/blk"));
    });
    let id = unique("devs");
    env.ok(&["run", "-d", "-b", env.bundle_path(), &id]);
    let sh = |script: &str| env.coop(&["exec", &id, "sh", "-c", script]);
    let denied = |script: &str| {
        let out = sh(script);
        assert!(!out.status.success(), "{script}: {}", stdout(&out));
        assert!(
            stderr(&out).contains("Operation not permitted"),
            "{script}: {}",
            stderr(&out)
        );
    };
    denied("head -c 4 /dev/blk");
    let out = sh("echo x > /dev/null && head -c 3 /dev/zero | wc -c");
    assert_eq!(stdout(&out).trim(), "3", "{}", stderr(&out));

    // A new rule set: everything but /dev/null. Had the old filter stayed attached beside the
    // new one, the block device would still be denied.
    let res = env.bundle.path().join("devices.json");
    std::fs::write(
        &res,
        r#"{"devices":[{"allow":true,"access":"rwm"},
            {"allow":false,"type":"c","major":1,"minor":3,"access":"rwm"}]}"#,
    )
    .unwrap();
    env.ok(&["update", "-r", res.to_str().unwrap(), &id]);
    let out = sh("head -c 4 /dev/blk");
    assert_eq!(stdout(&out), "dddd", "{}", stderr(&out));
    denied("echo x > /dev/null");
    let out = sh("head -c 3 /dev/zero | wc -c");
    assert_eq!(stdout(&out).trim(), "3", "{}", stderr(&out));
}

/// A node the config lists in linux.devices and grants only `r` in linux.resources.devices
/// (podman's `--device HOST:CTR:r`): readable, not writable, on either cgroup layout (v1's
/// devices.allow here, the eBPF program in the cgroup v2 tier). linux.devices adds no rule.
#[test]
fn a_device_granted_r_is_readable_and_not_writable() {
    let lo = LoopDevice::new(1 << 20, b'r');
    let (major, minor) = (lo.major, lo.minor);
    let env = Env::new(&["sleep", "100"], |c| {
        c["linux"]["devices"] = json!([{"path": "/dev/xvdc", "type": "b", "major": major,
            "minor": minor, "fileMode": 0o660, "uid": 0, "gid": 0}]);
        c["linux"]["resources"]["devices"]
            .as_array_mut()
            .unwrap()
            .push(
                json!({"allow": true, "type": "b", "major": major, "minor": minor, "access": "r"}),
            );
    });
    let id = unique("devro");
    env.ok(&["run", "-d", "-b", env.bundle_path(), &id]);
    let out = env.coop(&["exec", &id, "head", "-c", "4", "/dev/xvdc"]);
    assert_eq!(stdout(&out), "rrrr", "read: {}", stderr(&out));
    for script in [
        "printf wwww > /dev/xvdc",
        "printf wwww | dd of=/dev/xvdc conv=notrunc",
        "printf wwww 1<>/dev/xvdc",
    ] {
        let out = env.coop(&["exec", &id, "sh", "-c", script]);
        assert!(
            !out.status.success() && stderr(&out).contains("Operation not permitted"),
            "{script}: exit {:?}, {}",
            out.status.code(),
            stderr(&out)
        );
    }
    env.ok(&["delete", "--force", &id]);
    // Nothing reached the device (the host reads it through the same cache).
    let mut head = [0u8; 4];
    std::io::Read::read_exact(&mut std::fs::File::open(&lo.path).unwrap(), &mut head).unwrap();
    assert_eq!(&head, b"rrrr", "the host's device was written");
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
