//! Every resource through the managers, against a fake /sys/fs/cgroup in a temporary directory.
//! The fake is plain files: a write replaces the content, so a file written several times (io.max,
//! rdma.max) shows its last line; the tables' own tests check every line.
use super::{manager, CgroupPaths};
use oci_spec::runtime::LinuxResources;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn res(json: &str) -> LinuxResources {
    serde_json::from_str(json).unwrap()
}

fn read(dir: &Path, file: &str) -> String {
    std::fs::read_to_string(dir.join(file))
        .unwrap_or_else(|e| panic!("{}/{file}: {e}", dir.display()))
}

/// A cgroup2 tree root/coop/c1 whose root offers `controllers`.
fn fake_v2(root: &Path, controllers: &str) -> PathBuf {
    let leaf = root.join("coop/c1");
    std::fs::create_dir_all(&leaf).unwrap();
    std::fs::write(root.join("cgroup.controllers"), controllers).unwrap();
    for d in [root, &root.join("coop")] {
        std::fs::write(d.join("cgroup.subtree_control"), "").unwrap();
    }
    leaf
}

fn v2_paths(leaf: &Path) -> CgroupPaths {
    CgroupPaths {
        path: "/coop/c1".into(),
        unified: Some(leaf.to_path_buf()),
        v1: BTreeMap::new(),
    }
}

const EVERY_V2: &str = r#"{
  "memory": {"limit": 33554432, "reservation": 16777216, "swap": 67108864},
  "cpu": {"shares": 512, "quota": 20000, "period": 50000, "burst": 1000, "idle": 0,
          "cpus": "0", "mems": "0"},
  "pids": {"limit": 64},
  "blockIO": {"weight": 100, "throttleReadBpsDevice": [{"major": 7, "minor": 0, "rate": 1048576}]},
  "hugepageLimits": [{"pageSize": "2MB", "limit": 4194304}],
  "rdma": {"mlx5_0": {"hcaHandles": 2, "hcaObjects": 100}},
  "unified": {"memory.high": "30000000"}
}"#;

#[test]
fn v2_every_resource() {
    let tmp = tempfile::tempdir().unwrap();
    let leaf = fake_v2(tmp.path(), "cpuset cpu io memory hugetlb pids rdma misc");
    manager(v2_paths(&leaf)).apply(&res(EVERY_V2)).unwrap();
    for (file, want) in [
        ("memory.max", "33554432"),
        ("memory.low", "16777216"),
        ("memory.swap.max", "33554432"),
        ("memory.high", "30000000"),
        ("cpu.weight", "20"),
        ("cpu.max", "20000 50000"),
        ("cpu.max.burst", "1000"),
        ("cpu.idle", "0"),
        ("cpuset.cpus", "0"),
        ("cpuset.mems", "0"),
        ("pids.max", "64"),
        ("io.weight", "default 910"), // runc's 1 + (w - 10) * 9999 / 990
        ("io.max", "7:0 rbps=1048576"),
        ("hugetlb.2MB.max", "4194304"),
        ("rdma.max", "mlx5_0 hca_handle=2 hca_object=100"),
    ] {
        assert_eq!(read(&leaf, file), want, "{file}");
    }
    // The controllers were enabled for the container's cgroup by its ancestors.
    assert!(!read(tmp.path(), "cgroup.subtree_control").is_empty());
    assert!(!read(&tmp.path().join("coop"), "cgroup.subtree_control").is_empty());
}

#[test]
fn v2_unset_resources_need_no_controller() {
    let tmp = tempfile::tempdir().unwrap();
    let leaf = fake_v2(tmp.path(), "");
    manager(v2_paths(&leaf)).apply(&res("{}")).unwrap();
    manager(v2_paths(&leaf))
        .apply(&res(r#"{"memory": {}, "cpu": {}}"#))
        .unwrap();
    assert_eq!(std::fs::read_dir(&leaf).unwrap().count(), 0);
}

#[test]
fn v2_missing_controller_names_both() {
    let tmp = tempfile::tempdir().unwrap();
    let leaf = fake_v2(tmp.path(), "cpu memory pids");
    let e = manager(v2_paths(&leaf))
        .apply(&res(r#"{"blockIO": {"weight": 100}}"#))
        .unwrap_err()
        .to_string();
    assert!(e.contains("blkio weight requested"), "{e}");
    assert!(
        e.contains("the io controller is not available under"),
        "{e}"
    );
    assert!(e.contains(&tmp.path().display().to_string()), "{e}");
    let e = manager(v2_paths(&leaf))
        .apply(&res(r#"{"unified": {"misc.max": "x 1"}}"#))
        .unwrap_err()
        .to_string();
    assert!(e.contains("the misc controller is not available"), "{e}");
}

#[test]
fn v2_failed_update_keeps_the_old_limits() {
    let tmp = tempfile::tempdir().unwrap();
    let leaf = fake_v2(tmp.path(), "memory pids");
    std::fs::write(leaf.join("memory.max"), "100\n").unwrap();
    // A control file the kernel refuses to write: a directory in the fake.
    std::fs::create_dir(leaf.join("pids.max")).unwrap();
    let r = res(r#"{"memory": {"limit": 200}, "pids": {"limit": 10}}"#);
    let e = manager(v2_paths(&leaf)).apply(&r).unwrap_err();
    assert!(format!("{e:#}").contains("pids.max"), "{e:#}");
    assert_eq!(read(&leaf, "memory.max"), "100");
}

#[test]
fn v2_check_before_update_reads_usage() {
    let tmp = tempfile::tempdir().unwrap();
    let leaf = fake_v2(tmp.path(), "memory");
    std::fs::write(leaf.join("memory.current"), "50000000\n").unwrap();
    std::fs::write(leaf.join("memory.max"), "max\n").unwrap();
    let r = res(r#"{"memory": {"limit": 40000000, "checkBeforeUpdate": true}}"#);
    let e = manager(v2_paths(&leaf)).apply(&r).unwrap_err().to_string();
    assert!(e.contains("current memory usage 50000000"), "{e}");
    assert_eq!(read(&leaf, "memory.max"), "max\n");
    let r = res(r#"{"memory": {"limit": 40000000}}"#);
    manager(v2_paths(&leaf)).apply(&r).unwrap();
    assert_eq!(read(&leaf, "memory.max"), "40000000");
}

/// v1 hierarchies as a hybrid host mounts them, each with the container's directory.
fn fake_v1(root: &Path, keys: &[&str]) -> CgroupPaths {
    let mut v1 = BTreeMap::new();
    for k in keys {
        let d = root.join(k).join("coop/c1");
        std::fs::create_dir_all(&d).unwrap();
        v1.insert(k.to_string(), d);
    }
    CgroupPaths {
        path: "/coop/c1".into(),
        unified: None,
        v1,
    }
}

#[test]
fn v1_every_resource() {
    let tmp = tempfile::tempdir().unwrap();
    let keys = [
        "memory",
        "cpu,cpuacct",
        "cpuset",
        "pids",
        "blkio",
        "hugetlb",
        "net_cls,net_prio",
        "devices",
        "rdma",
    ];
    let paths = fake_v1(tmp.path(), &keys);
    let r = res(r#"{
      "memory": {"limit": 33554432, "swap": 67108864, "reservation": 16777216,
                 "swappiness": 10, "disableOOMKiller": true},
      "cpu": {"shares": 512, "quota": 20000, "period": 50000, "realtimePeriod": 1000000,
              "realtimeRuntime": 0, "cpus": "0", "mems": "0"},
      "pids": {"limit": 64},
      "blockIO": {"weight": 100, "leafWeight": 50,
                  "weightDevice": [{"major": 8, "minor": 0, "weight": 200}],
                  "throttleWriteIOPSDevice": [{"major": 8, "minor": 0, "rate": 300}]},
      "hugepageLimits": [{"pageSize": "2MB", "limit": 4194304}],
      "network": {"classID": 1048577, "priorities": [{"name": "eth0", "priority": 5}]},
      "devices": [{"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"}],
      "rdma": {"mlx5_0": {"hcaHandles": 2}}
    }"#);
    manager(paths.clone()).apply(&r).unwrap();
    let d = |k: &str| paths.v1[k].clone();
    for (key, file, want) in [
        ("memory", "memory.limit_in_bytes", "33554432"),
        ("memory", "memory.memsw.limit_in_bytes", "67108864"),
        ("memory", "memory.soft_limit_in_bytes", "16777216"),
        ("memory", "memory.swappiness", "10"),
        ("memory", "memory.oom_control", "1"),
        ("cpu,cpuacct", "cpu.shares", "512"),
        ("cpu,cpuacct", "cpu.cfs_quota_us", "20000"),
        ("cpu,cpuacct", "cpu.cfs_period_us", "50000"),
        ("cpu,cpuacct", "cpu.rt_period_us", "1000000"),
        ("cpu,cpuacct", "cpu.rt_runtime_us", "0"),
        ("cpuset", "cpuset.cpus", "0"),
        ("cpuset", "cpuset.mems", "0"),
        ("pids", "pids.max", "64"),
        ("blkio", "blkio.weight", "100"),
        ("blkio", "blkio.leaf_weight", "50"),
        ("blkio", "blkio.weight_device", "8:0 200"),
        ("blkio", "blkio.throttle.write_iops_device", "8:0 300"),
        ("hugetlb", "hugetlb.2MB.limit_in_bytes", "4194304"),
        ("net_cls,net_prio", "net_cls.classid", "1048577"),
        ("net_cls,net_prio", "net_prio.ifpriomap", "eth0 5"),
        ("devices", "devices.allow", "c 1:3 rwm"),
        ("devices", "devices.deny", "a"),
        ("rdma", "rdma.max", "mlx5_0 hca_handle=2"),
    ] {
        assert_eq!(read(&d(key), file), want, "{key}/{file}");
    }
}

#[test]
fn v1_missing_hierarchy_names_the_controller() {
    let tmp = tempfile::tempdir().unwrap();
    let paths = fake_v1(tmp.path(), &["memory", "pids"]);
    let e = manager(paths.clone())
        .apply(&res(
            r#"{"pids": {"limit": 5}, "blockIO": {"weight": 100}}"#,
        ))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("blkio weight requested, but the blkio controller is not mounted"),
        "{e}"
    );
    // Nothing was written before the plan was complete.
    assert!(!paths.v1["pids"].join("pids.max").exists());
    manager(paths)
        .apply(&res(r#"{"pids": {"limit": 5}}"#))
        .unwrap();
}
