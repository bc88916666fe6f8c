//! Sandboxes: a root and members sharing namespaces and a cgroup parent.
use crate::common::*;
use serde_json::json;

fn ns(pid: i32, name: &str) -> String {
    std::fs::read_link(format!("/proc/{pid}/ns/{name}"))
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

fn cri(kind: &str, sandbox: &str) -> impl FnOnce(&mut serde_json::Value) {
    let (kind, sandbox) = (kind.to_string(), sandbox.to_string());
    move |c| {
        c["annotations"] = json!({
            "io.kubernetes.cri.container-type": kind,
            "io.kubernetes.cri.sandbox-id": sandbox,
        });
    }
}

#[test]
fn cri_annotations_make_a_pod() {
    let pod = unique("pod");
    let root = Env::new(&["sleep", "100"], cri("sandbox", &pod));
    root.ok(&["run", "-d", "-b", root.bundle_path(), &pod]);
    let mut members = vec![];
    for name in ["web", "db"] {
        let m = Env::new(&["sleep", "100"], cri("container", &pod));
        // Members live under the same --root as the sandbox.
        let id = format!("{pod}-{name}");
        root.ok(&["run", "-d", "-b", m.bundle_path(), &id]);
        members.push((m, id));
    }
    let rp = root.pid(&pod);
    let pids: Vec<i32> = members.iter().map(|(_, id)| root.pid(id)).collect();
    for p in &pids {
        for n in ["net", "ipc", "uts"] {
            assert_eq!(ns(*p, n), ns(rp, n), "{n}");
        }
        assert_ne!(ns(*p, "mnt"), ns(rp, "mnt"));
    }
    assert_ne!(ns(pids[0], "mnt"), ns(pids[1], "mnt"));
    // Shared memory is shared.
    std::fs::write(format!("/proc/{}/root/dev/shm/hello", pids[0]), "shm").unwrap();
    assert_eq!(
        std::fs::read_to_string(format!("/proc/{}/root/dev/shm/hello", pids[1])).unwrap(),
        "shm"
    );
    // Side by side under one sandbox cgroup.
    if std::path::Path::new("/sys/fs/cgroup/memory").exists() {
        for id in std::iter::once(&pod).chain(members.iter().map(|(_, id)| id)) {
            assert!(
                std::path::Path::new(&format!("/sys/fs/cgroup/memory/coop/{pod}/{id}")).is_dir(),
                "{id}"
            );
        }
    }
    // list shows the sandbox; --sandbox filters.
    let table = root.ok(&["list"]);
    assert!(table.lines().next().unwrap().contains("SANDBOX"));
    let listed = root.ok(&["list", "-q", "--sandbox", &pod]);
    assert_eq!(listed.lines().count(), 3, "{listed}");
    let st = root.state(&members[0].1);
    assert_eq!(st["annotations"]["dev.coop.sandbox-id"], pod.as_str());
    // Deleting a member leaves the sandbox running.
    root.ok(&["delete", "--force", &members[1].1]);
    assert_eq!(root.status(&pod), "running");
    // delete --force of the root takes the rest down.
    root.ok(&["delete", "--force", &pod]);
    assert!(root.left().is_empty(), "{:?}", root.left());
    assert!(!process_exists(pids[0]));
    assert!(!std::path::Path::new(&format!("/sys/fs/cgroup/memory/coop/{pod}")).exists());
}

#[test]
fn sandbox_flag_and_errors() {
    let env = Env::new(&["sleep", "100"], |_| {});
    let out = env.coop(&[
        "run",
        "-d",
        "--sandbox",
        "nosuchpod",
        "-b",
        env.bundle_path(),
        "m1",
    ]);
    assert!(!out.status.success());
    assert_eq!(
        stderr(&out).trim(),
        "coop: error: sandbox nosuchpod does not exist"
    );
    assert!(env.left().is_empty());
    env.ok(&[
        "run",
        "-d",
        "--sandbox",
        "pod1",
        "-b",
        env.bundle_path(),
        "pod1",
    ]);
    // A prefix names the sandbox too; an explicit namespace path wins over the sandbox's.
    let other = Env::new(&["sleep", "100"], |_| {});
    other.ok(&["run", "-d", "-b", other.bundle_path(), "lonely"]);
    let lonely_uts = ns(other.pid("lonely"), "uts");
    let lonely_pid = other.pid("lonely");
    let m = Env::new(&["sleep", "100"], |c| {
        for n in c["linux"]["namespaces"].as_array_mut().unwrap() {
            if n["type"] == "uts" {
                n["path"] = json!(format!("/proc/{lonely_pid}/ns/uts"));
            }
        }
    });
    env.ok(&["run", "-d", "--sandbox", "pod", "-b", m.bundle_path(), "m2"]);
    let (rp, mp) = (env.pid("pod1"), env.pid("m2"));
    assert_eq!(ns(mp, "net"), ns(rp, "net"));
    assert_eq!(ns(mp, "uts"), lonely_uts);
    // A member whose sandbox root died still runs; the root is deleted once it is stopped.
    env.ok(&["kill", "pod1", "KILL"]);
    env.wait_status("pod1", "stopped");
    assert_eq!(env.status("m2"), "running");
    env.ok(&["kill", "m2", "KILL"]);
    env.wait_status("m2", "stopped");
    let out = env.coop(&["delete", "pod1"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(env.left().is_empty(), "{:?}", env.left());
    // Joining a container that is not a sandbox root is refused.
    let out = other.coop(&[
        "run",
        "-d",
        "--sandbox",
        "lonely",
        "-b",
        m.bundle_path(),
        "m3",
    ]);
    assert!(
        stderr(&out).contains("not a sandbox root"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn members_in_parallel_and_root_deleted_meanwhile() {
    let env = Env::new(&["sleep", "100"], |_| {});
    let pod = unique("par");
    env.ok(&[
        "run",
        "-d",
        "--sandbox",
        &pod,
        "-b",
        env.bundle_path(),
        &pod,
    ]);
    let env = std::sync::Arc::new(env);
    let spawn = |name: String| {
        let (env, pod) = (env.clone(), pod.clone());
        std::thread::spawn(move || {
            env.coop(&[
                "run",
                "-d",
                "--sandbox",
                &pod,
                "-b",
                env.bundle_path(),
                &name,
            ])
        })
    };
    let handles: Vec<_> = (0..4).map(|i| spawn(format!("{pod}-m{i}"))).collect();
    for h in handles {
        let out = h.join().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
    }
    assert_eq!(
        env.ok(&["list", "-q", "--sandbox", &pod]).lines().count(),
        5
    );
    // Members being created while the root is deleted: each either joins before the delete
    // (and is taken down with the sandbox) or fails because the sandbox is gone.
    let late: Vec<_> = (4..8).map(|i| spawn(format!("{pod}-m{i}"))).collect();
    env.ok(&["delete", "--force", &pod]);
    for h in late {
        let out = h.join().unwrap();
        if !out.status.success() {
            let err = stderr(&out);
            assert!(
                err.contains("does not exist") || err.contains("it must be running"),
                "{err}"
            );
        }
    }
    // Whatever joined late is a member of a sandbox that is gone: stopped, and deletable.
    for id in env.left() {
        assert_eq!(env.status(&id), "stopped", "{id}");
        env.ok(&["delete", "--force", &id]);
    }
    assert!(env.left().is_empty());
}

/// SIGKILL the process behind a container, as the OOM killer or a crash would.
fn kill9(pid: i32) {
    // SAFETY: kill(2) with a pid read from the container's state; no memory is involved.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0);
}

#[test]
fn members_outlive_their_root() {
    let env = Env::new(&["sleep", "100"], |_| {});
    let pod = unique("orphan");
    let (m1, m2) = (format!("{pod}-a"), format!("{pod}-b"));
    for id in [&pod, &m1, &m2] {
        env.ok(&["run", "-d", "--sandbox", &pod, "-b", env.bundle_path(), id]);
    }
    let (m1_pid, m2_pid) = (env.pid(&m1), env.pid(&m2));
    kill9(env.pid(&pod));
    env.wait_status(&pod, "stopped");
    // Nothing takes the members down: each one's status is its own process's.
    for (id, pid) in [(&m1, m1_pid), (&m2, m2_pid)] {
        assert_eq!(env.status(id), "running", "{id}");
        assert!(process_exists(pid), "{id}");
    }
    // exec, ps, pause, resume, update and kill work on a member of a dead root.
    assert_eq!(env.ok(&["exec", &m1, "echo", "hello"]).trim(), "hello");
    let ps = env.ok(&["ps", "--format", "json", &m1]);
    assert!(ps.contains(&m1_pid.to_string()), "{ps}");
    env.ok(&["pause", &m1]);
    assert_eq!(env.status(&m1), "paused");
    env.ok(&["resume", &m1]);
    assert_eq!(env.status(&m1), "running");
    env.ok(&["update", "--pids-limit", "50", &m1]);
    env.ok(&["kill", &m2, "KILL"]);
    env.wait_status(&m2, "stopped");
    // No new member for a sandbox whose root is not running.
    let out = env.coop(&["create", "--sandbox", &pod, "-b", env.bundle_path(), "late"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("must be running"), "{}", stderr(&out));
    // The root is not deleted under a living member: the error names it (and not the
    // stopped one).
    let out = env.coop(&["delete", &pod]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains(&m1) && !err.contains(&m2), "{err}");
    assert_eq!(env.status(&m1), "running");
    // --force takes the member down first, then everything goes.
    env.ok(&["delete", "--force", &pod]);
    assert!(env.left().is_empty(), "{:?}", env.left());
    assert!(!process_exists(m1_pid));
    for dir in default_cgroup_dirs(&pod) {
        assert!(!dir.exists(), "{}", dir.display());
    }
}
