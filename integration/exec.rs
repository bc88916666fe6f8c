//! exec into running containers.
use crate::common::*;

#[test]
fn exec_foreground_detached_and_refusals() {
    let env = Env::new(&["sleep", "100"], |c| {
        c["hostname"] = serde_json::json!("box")
    });
    let id = unique("exec");
    env.create(&id);
    let out = env.coop(&["exec", &id, "true"]);
    assert_eq!(
        stderr(&out).trim(),
        format!("coop: error: container {id} is created: cannot exec")
    );
    env.ok(&["start", &id]);
    let init = env.pid(&id);

    // Same namespaces as init, its own pid in the container, the container's hostname.
    let out = env.ok(&["exec", &id, "sh", "-c", "hostname; echo $$; [ \"$(readlink /proc/self/ns/mnt)\" = \"$(readlink /proc/1/ns/mnt)\" ] && echo same-mnt"]);
    assert_eq!(out, "box\n2\nsame-mnt\n", "{out}");
    let out = env.coop(&["exec", &id, "sh", "-c", "exit 9"]);
    assert_eq!(out.status.code(), Some(9));
    let out = env.ok(&[
        "exec",
        "-u",
        "65534",
        "--cwd",
        "/tmp",
        "-e",
        "FOO=bar",
        &id,
        "sh",
        "-c",
        "echo $(id -u) $(pwd) $FOO",
    ]);
    assert_eq!(out, "65534 /tmp bar\n");
    // Only stdio reaches the process.
    let out = env.ok(&["exec", &id, "ls", "/proc/self/fd"]);
    assert_eq!(
        out.split_whitespace().collect::<Vec<_>>(),
        ["0", "1", "2", "3"]
    );
    let out = env.coop(&["exec", &id, "nosuch"]);
    assert!(
        stderr(&out).contains("executable file not found in $PATH"),
        "{}",
        stderr(&out)
    );

    let pidfile = env.bundle.path().join("exec.pid");
    env.ok(&[
        "exec",
        "-d",
        "--pid-file",
        pidfile.to_str().unwrap(),
        &id,
        "sleep",
        "50",
    ]);
    let pid: i32 = std::fs::read_to_string(&pidfile).unwrap().parse().unwrap();
    assert!(process_exists(pid) && pid != init);
    let ps: Vec<i32> = serde_json::from_str(&env.ok(&["ps", "--format", "json", &id])).unwrap();
    assert!(ps.contains(&pid) && ps.contains(&init), "{ps:?}");

    env.ok(&["pause", &id]);
    let out = env.coop(&["exec", &id, "true"]);
    assert!(
        stderr(&out).contains("is paused: cannot exec"),
        "{}",
        stderr(&out)
    );
    env.ok(&["resume", &id]);
    env.ok(&["delete", "--force", &id]);
    assert!(!process_exists(pid));
}

/// `exec --cgroup`: the process runs in an existing sub-cgroup of the container's cgroup, in
/// every hierarchy (`--cgroup PATH`) or per v1 controller (`--cgroup CTRL:PATH`).
#[test]
fn exec_into_a_sub_cgroup() {
    let env = Env::new(&["sleep", "100"], |_| {});
    let id = unique("execcg");
    env.ok(&["run", "-d", "-b", env.bundle_path(), &id]);
    // The container's cgroup directories, one per hierarchy (or the one cgroup2 tree).
    // (cpu and cpuacct may be links to one "cpu,cpuacct" hierarchy: each counts once.)
    let dirs: std::collections::BTreeSet<std::path::PathBuf> = if pure_v2() {
        [v2_dir(&id)].into()
    } else {
        std::fs::read_dir("/sys/fs/cgroup")
            .unwrap()
            .filter_map(|e| std::fs::canonicalize(e.unwrap().path().join("coop").join(&id)).ok())
            .collect()
    };
    assert!(!dirs.is_empty());
    let cat = |args: &[&str]| {
        let mut a = vec!["exec"];
        a.extend_from_slice(args);
        a.extend_from_slice(&[&id, "cat", "/proc/self/cgroup"]);
        env.coop(&a)
    };
    // The sub-cgroup must exist.
    let out = cat(&["--cgroup", "sub"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("does not exist"), "{}", stderr(&out));
    for d in &dirs {
        let sub = d.join("sub");
        std::fs::create_dir(&sub).unwrap();
        // A v1 cpuset cgroup needs its cpus and mems before it takes a process.
        for f in ["cpuset.cpus", "cpuset.mems"] {
            if !pure_v2() && sub.join(f).exists() {
                std::fs::write(sub.join(f), read_trimmed(d.join(f))).unwrap();
            }
        }
    }
    // Everywhere: each line of /proc/self/cgroup (seen through the container's cgroup
    // namespace) names the sub-cgroup.
    let out = cat(&["--cgroup", "sub"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let lines = stdout(&out);
    assert!(lines.lines().all(|l| l.ends_with(":/sub")), "{lines}");
    // Per controller.
    let out = cat(&["--cgroup", "memory,pids:sub"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let lines = stdout(&out);
    if pure_v2() {
        // One hierarchy: the controllers name it.
        assert_eq!(lines.trim(), "0::/sub");
    } else {
        for l in lines.lines() {
            let (_, rest) = l.split_once(':').unwrap();
            let (ctrl, path) = rest.split_once(':').unwrap();
            let want = if ctrl == "memory" || ctrl == "pids" {
                "/sub"
            } else {
                "/"
            };
            assert_eq!(path, want, "{lines}");
        }
    }
    // Never outside the container's cgroup; a controller must be known.
    let out = cat(&["--cgroup", "sub/../.."]);
    assert!(
        stderr(&out).contains("not inside the container's cgroup"),
        "{}",
        stderr(&out)
    );
    let out = cat(&["--cgroup", "sub", "--cgroup", "memory:sub"]);
    assert!(!out.status.success());
    if !pure_v2() {
        let out = cat(&["--cgroup", "nosuch:sub"]);
        assert!(stderr(&out).contains("not mounted"), "{}", stderr(&out));
    }
    // A detached exec stays there; delete removes the sub-cgroups with the container's.
    let pidfile = env.bundle.path().join("sub.pid");
    env.ok(&[
        "exec",
        "-d",
        "--cgroup",
        "sub",
        "--pid-file",
        pidfile.to_str().unwrap(),
        &id,
        "sleep",
        "50",
    ]);
    let pid = read_trimmed(&pidfile);
    for d in &dirs {
        let procs = read_trimmed(d.join("sub/cgroup.procs"));
        assert!(procs.lines().any(|p| p == pid), "{}: {procs}", d.display());
    }
    env.ok(&["delete", "--force", &id]);
    for d in &dirs {
        assert!(!d.exists(), "{}", d.display());
    }
}
