//! Rootless mode forced with `--rootless true` (as root here; integration/rootless.sh runs
//! coop and rootless podman as a real unprivileged user). Without a cgroup v2 subtree it
//! could write, a rootless container gets no cgroup at all: limits fail naming the missing
//! delegation, pause is refused, and ps, kill --all and delete --force work through init.
use crate::common::*;
use serde_json::json;
use std::path::{Path, PathBuf};

/// The cgroup2 path of a process, from /proc/PID/cgroup ("0::/a/b").
fn unified_path(pid: &str) -> String {
    let s = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    s.lines()
        .find_map(|l| l.strip_prefix("0::"))
        .unwrap_or("/")
        .to_string()
}

fn rootless(env: &Env, args: &[&str]) -> std::process::Output {
    let mut all = vec!["--rootless", "true"];
    all.extend_from_slice(args);
    env.coop(&all)
}

/// Where a rootless container's default cgroup goes on a pure v2 host: beside the caller's
/// own cgroup.
fn beside_own(id: &str) -> PathBuf {
    let own = unified_path("self");
    let parent = Path::new(&own)
        .parent()
        .unwrap_or(Path::new("/"))
        .to_path_buf();
    Path::new("/sys/fs/cgroup")
        .join(parent.strip_prefix("/").unwrap())
        .join("coop")
        .join(id)
}

#[test]
fn rootless_without_delegation_runs_without_a_cgroup() {
    let env = Env::new(&["sleep", "100"], |_| {});
    let id = unique("rl-nocg");
    let out = rootless(&env, &["run", "-d", "-b", env.bundle_path(), &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    let pid = env.pid(&id).to_string();
    if pure_v2() {
        // root passes the delegation check: the cgroup hangs beside the caller's own.
        let dir = beside_own(&id);
        assert!(dir.is_dir(), "{} missing", dir.display());
        assert_eq!(
            read_trimmed(dir.join("cgroup.procs")),
            pid,
            "init is in the delegated cgroup"
        );
    } else {
        for d in default_cgroup_dirs(&id) {
            assert!(!d.exists(), "{} was created", d.display());
        }
        assert_eq!(
            std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap(),
            std::fs::read_to_string("/proc/self/cgroup").unwrap(),
            "init stays in the caller's cgroups"
        );
        let out = rootless(&env, &["pause", &id]);
        assert!(!out.status.success());
        assert!(stderr(&out).contains("freezer"), "{}", stderr(&out));
        assert_eq!(env.status(&id), "running");
    }
    // ps finds the processes without a cgroup (init's pid namespace).
    let out = rootless(&env, &["exec", "-d", &id, "sleep", "101"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let pids: Vec<i32> =
        serde_json::from_slice(&rootless(&env, &["ps", "--format", "json", &id]).stdout).unwrap();
    assert_eq!(pids.len(), 2, "{pids:?}");
    assert!(pids.contains(&pid.parse().unwrap()));
    let out = rootless(&env, &["kill", "--all", &id, "KILL"]);
    assert!(out.status.success(), "{}", stderr(&out));
    env.wait_status(&id, "stopped");
    for p in &pids {
        for _ in 0..200 {
            if !process_exists(*p) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        assert!(!process_exists(*p), "process {p} survived kill --all");
    }
    let out = rootless(&env, &["delete", &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(env.left().is_empty());
}

#[test]
fn rootless_memory_limit_needs_delegation() {
    let env = Env::new(&["true"], |c| {
        c["linux"]["resources"] = json!({"memory": {"limit": 67108864}});
    });
    let id = unique("rl-mem");
    let out = rootless(&env, &["run", "-b", env.bundle_path(), &id]);
    if pure_v2() {
        // Delegated (root may write): the limit is applied and the container runs.
        assert!(out.status.success(), "{}", stderr(&out));
        return;
    }
    assert!(!out.status.success());
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("memory limit") && err.contains("delegated"),
        "{err}"
    );
    assert!(env.left().is_empty(), "{:?}", env.left());
    for d in default_cgroup_dirs(&id) {
        assert!(!d.exists(), "{} was created", d.display());
    }
}

#[test]
fn rootless_false_keeps_the_root_behaviour() {
    // Device rules are not limits: a rootless config with runc's default devices rule runs.
    let env = Env::new(&["true"], |c| {
        c["linux"]["resources"] = json!({"devices": [{"allow": false, "access": "rwm"}]});
    });
    let id = unique("rl-dev");
    let out = rootless(&env, &["run", "-b", env.bundle_path(), &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    // --rootless false as root: the cgroup coop always made.
    let env = Env::new(&["sleep", "100"], |_| {});
    let id = unique("rl-false");
    let out = env.coop(&[
        "--rootless",
        "false",
        "run",
        "-d",
        "-b",
        env.bundle_path(),
        &id,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    for d in default_cgroup_dirs(&id) {
        assert!(d.exists(), "{} missing", d.display());
    }
    env.ok(&["delete", "--force", &id]);
}
