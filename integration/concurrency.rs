//! Racing commands on one --root: many at once, and `delete --force` against everything else.
//! No hang (every coop call is bounded), no corrupt meta.json, nothing left behind.
use crate::common::*;
use std::process::{Child, Output};
use std::time::{Duration, Instant};

/// A coop running in the background. Its output goes to files, not pipes: a container it
/// makes inherits them, and reading a pipe to its end would wait for the container.
struct Running {
    child: Child,
    dir: tempfile::TempDir,
}

fn spawn(env: &Env, args: &[&str]) -> Running {
    let dir = tempfile::tempdir().unwrap();
    let child = env
        .cmd(args)
        .stdout(std::fs::File::create(dir.path().join("out")).unwrap())
        .stderr(std::fs::File::create(dir.path().join("err")).unwrap())
        .spawn()
        .unwrap();
    Running { child, dir }
}

/// Wait for it, killing it (and failing) if it takes longer than `secs`: a hang is a
/// failure, not a stuck test run.
fn bounded(mut r: Running, secs: u64, what: &str) -> Output {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(status) = r.child.try_wait().unwrap() {
            return Output {
                status,
                stdout: std::fs::read(r.dir.path().join("out")).unwrap(),
                stderr: std::fs::read(r.dir.path().join("err")).unwrap(),
            };
        }
        if Instant::now() > deadline {
            let _ = r.child.kill();
            let _ = r.child.wait();
            panic!("{what} did not finish within {secs} s");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Every meta.json under the root parses.
fn assert_meta_whole(env: &Env) {
    for id in env.left() {
        let p = env.root.path().join(&id).join("meta.json");
        if let Ok(data) = std::fs::read(&p) {
            serde_json::from_slice::<serde_json::Value>(&data)
                .unwrap_or_else(|e| panic!("{} is corrupt: {e}", p.display()));
        }
    }
}

/// Nothing of `id` is left: directory, cgroups.
fn assert_gone(env: &Env, id: &str) {
    assert!(!env.root.path().join(id).exists(), "{id}: directory left");
    for d in default_cgroup_dirs(id) {
        assert!(!d.exists(), "{id}: cgroup {} left", d.display());
    }
}

#[test]
fn hundred_detached_runs_on_one_root() {
    let env = Env::new(&["sleep", "1000"], |_| {});
    let ids: Vec<String> = (0..100).map(|_| unique("hundred")).collect();
    let children: Vec<Running> = ids
        .iter()
        .map(|id| spawn(&env, &["run", "-d", "-b", env.bundle_path(), id]))
        .collect();
    for (c, id) in children.into_iter().zip(&ids) {
        let out = bounded(c, 120, &format!("run -d {id}"));
        assert!(out.status.success(), "run -d {id}: {}", stderr(&out));
    }
    let list: serde_json::Value =
        serde_json::from_str(&env.ok(&["list", "--format", "json"])).unwrap();
    let running = list
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["status"] == "running")
        .count();
    assert_eq!(running, 100, "{list}");
    assert_meta_whole(&env);
    let children: Vec<Running> = ids
        .iter()
        .map(|id| spawn(&env, &["delete", "--force", id]))
        .collect();
    for (c, id) in children.into_iter().zip(&ids) {
        let out = bounded(c, 120, &format!("delete --force {id}"));
        assert!(out.status.success(), "delete {id}: {}", stderr(&out));
    }
    for id in &ids {
        assert_gone(&env, id);
    }
}

#[test]
fn twenty_creates_of_one_id_one_wins() {
    let env = Env::new(&["sleep", "1000"], |_| {});
    let id = unique("same");
    let children: Vec<Running> = (0..20)
        .map(|_| spawn(&env, &["create", "-b", env.bundle_path(), &id]))
        .collect();
    let outs: Vec<Output> = children
        .into_iter()
        .map(|c| bounded(c, 60, "create"))
        .collect();
    let won = outs.iter().filter(|o| o.status.success()).count();
    assert_eq!(won, 1, "exactly one create wins");
    for o in outs.iter().filter(|o| !o.status.success()) {
        assert!(stderr(o).contains("exists"), "loser says: {}", stderr(o));
    }
    assert_eq!(env.status(&id), "created");
    env.ok(&["delete", "--force", &id]);
    assert_gone(&env, &id);
}

#[test]
fn fifty_parallel_execs() {
    let env = Env::new(&["sleep", "1000"], |_| {});
    let id = unique("execs");
    env.ok(&["run", "-d", "-b", env.bundle_path(), &id]);
    let children: Vec<Running> = (0..50)
        .map(|i| spawn(&env, &["exec", &id, "sh", "-c", &format!("echo {i}")]))
        .collect();
    for (i, c) in children.into_iter().enumerate() {
        let out = bounded(c, 120, "exec");
        assert!(out.status.success(), "exec {i}: {}", stderr(&out));
        assert_eq!(stdout(&out), format!("{i}\n"));
    }
    assert_eq!(env.status(&id), "running");
    env.ok(&["delete", "--force", &id]);
    assert_gone(&env, &id);
}

/// What a racing command may say when the container went away under it.
fn clean_failure(out: &Output) -> bool {
    let e = stderr(out);
    // 137: a foreground exec whose process the delete killed (128 + SIGKILL).
    out.status.success()
        || out.status.code() == Some(137)
        || e.contains("does not exist")
        || e.contains("is stopped")
        || e.contains("cannot")
        || e.contains("exited during setup")
        || e.contains("No such process")
        || e.contains("not running")
        // An exec whose new process the racing delete killed during its setup.
        || e.contains("sync message")
}

#[test]
fn delete_force_races_state_list_kill_exec() {
    let env = Env::new(&["sleep", "1000"], |_| {});
    for round in 0..5 {
        let id = unique("race");
        env.ok(&["run", "-d", "-b", env.bundle_path(), &id]);
        let mut others: Vec<(String, Running)> = vec![];
        for _ in 0..3 {
            others.push(("state".into(), spawn(&env, &["state", &id])));
            others.push(("list".into(), spawn(&env, &["list"])));
            others.push(("kill".into(), spawn(&env, &["kill", &id, "CONT"])));
            others.push(("exec".into(), spawn(&env, &["exec", &id, "true"])));
        }
        let del = spawn(&env, &["delete", "--force", &id]);
        let out = bounded(del, 60, "delete --force");
        assert!(out.status.success(), "round {round}: {}", stderr(&out));
        for (what, c) in others {
            let out = bounded(c, 60, &what);
            assert!(
                clean_failure(&out),
                "round {round}: {what}: {:?} {}",
                out.status.code(),
                stderr(&out)
            );
            assert!(
                !stderr(&out).contains("corrupt"),
                "{what}: {}",
                stderr(&out)
            );
        }
        assert_gone(&env, &id);
        assert!(env.left().is_empty(), "left: {:?}", env.left());
    }
}

#[test]
fn delete_force_races_six_pauses() {
    let env = Env::new(&["sleep", "1000"], |_| {});
    for round in 0..40 {
        let id = unique("pauserace");
        env.ok(&["run", "-d", "-b", env.bundle_path(), &id]);
        let pauses: Vec<Running> = (0..6).map(|_| spawn(&env, &["pause", &id])).collect();
        let del = spawn(&env, &["delete", "--force", &id]);
        let out = bounded(del, 60, "delete --force");
        assert!(out.status.success(), "round {round}: {}", stderr(&out));
        for p in pauses {
            let out = bounded(p, 60, "pause");
            assert!(
                clean_failure(&out),
                "round {round}: pause: {}",
                stderr(&out)
            );
        }
        assert_gone(&env, &id);
        // The id is free again.
        assert!(
            !env.coop(&["state", &id]).status.success(),
            "round {round}: state still answers"
        );
    }
    assert!(env.left().is_empty(), "left: {:?}", env.left());
}
