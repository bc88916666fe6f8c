//! What a killed coop, a damaged state directory or a read-only --root leaves, and that the
//! other commands still tell the truth and clean up (docs/reliability.md).
use crate::common::*;
use serde_json::json;
use std::process::Command;
use std::time::{Duration, Instant};

/// Poll (up to 10 s) until `f` holds.
fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(Instant::now() < deadline, "never: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn list_status(env: &Env, id: &str) -> Option<String> {
    let v: serde_json::Value =
        serde_json::from_str(&env.ok(&["list", "--format", "json"])).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == id)
        .map(|s| s["status"].as_str().unwrap().to_string())
}

fn assert_all_gone(env: &Env, id: &str, pid: i32) {
    assert!(!env.root.path().join(id).exists(), "directory left");
    if pid > 0 {
        assert!(!process_exists(pid), "init {pid} still runs");
    }
    for d in default_cgroup_dirs(id) {
        assert!(!d.exists(), "cgroup {} left", d.display());
    }
}

#[test]
fn corrupt_meta_json_never_loses_the_container() {
    for (name, content) in [
        ("truncated", &b"{\"id\":\"x\",\"bund"[..]),
        ("empty", b""),
        ("garbage", b"\x00\x01garbage\xff"),
        ("null", b"null"),
    ] {
        let env = Env::new(&["sleep", "1000"], |_| {});
        let id = unique("corrupt");
        env.ok(&["run", "-d", "-b", env.bundle_path(), &id]);
        let pid = env.pid(&id);
        std::fs::write(env.root.path().join(&id).join("meta.json"), content).unwrap();
        // Still there, with its processes alive in its cgroup: creating, never "stopped".
        assert_eq!(env.status(&id), "creating", "{name}");
        assert_eq!(
            list_status(&env, &id).as_deref(),
            Some("creating"),
            "{name}"
        );
        let out = env.coop(&["delete", &id]);
        assert!(!out.status.success(), "{name}: plain delete must refuse");
        assert!(process_exists(pid), "{name}");
        env.ok(&["delete", "--force", &id]);
        assert_all_gone(&env, &id, pid);
    }
}

#[test]
fn partial_directories_are_listed_and_removed() {
    let env = Env::new(&["true"], |_| {});
    // What a create killed right after mkdir leaves, and a delete killed half way.
    let empty = unique("empty");
    std::fs::create_dir(env.root.path().join(&empty)).unwrap();
    let half = unique("half");
    std::fs::create_dir(env.root.path().join(&half)).unwrap();
    std::fs::copy(
        env.bundle.path().join("config.json"),
        env.root.path().join(&half).join("config.json"),
    )
    .unwrap();
    std::fs::write(env.root.path().join(&half).join(".meta.json.1.tmp"), b"{").unwrap();
    for id in [&empty, &half] {
        assert_eq!(env.status(id), "stopped", "{id}");
        assert_eq!(list_status(&env, id).as_deref(), Some("stopped"), "{id}");
        env.ok(&["delete", "--force", id]);
        assert_all_gone(&env, id, 0);
        // Twice is harmless (and, like runc, succeeds).
        env.ok(&["delete", "--force", id]);
    }
}

#[test]
fn lock_replaced_by_a_directory() {
    let env = Env::new(&["sleep", "1000"], |_| {});
    let id = unique("lockdir");
    env.ok(&["run", "-d", "-b", env.bundle_path(), &id]);
    let pid = env.pid(&id);
    let lock = env.root.path().join(&id).join("lock");
    let _ = std::fs::remove_file(&lock);
    std::fs::create_dir(&lock).unwrap();
    assert_eq!(env.status(&id), "running");
    env.ok(&["pause", &id]);
    assert_eq!(env.status(&id), "paused");
    env.ok(&["delete", "--force", &id]);
    assert_all_gone(&env, &id, pid);
}

#[test]
fn exec_fifo_replaced_by_a_regular_file() {
    let env = Env::new(&["sleep", "1000"], |_| {});
    let id = unique("fifofile");
    env.create(&id);
    let fifo = env.root.path().join(&id).join("exec.fifo");
    std::fs::remove_file(&fifo).unwrap();
    std::fs::write(&fifo, b"0").unwrap();
    let out = env.coop(&["start", &id]);
    assert!(!out.status.success(), "start must fail");
    assert!(stderr(&out).contains("not a fifo"), "{}", stderr(&out));
    // The program never ran: init still waits.
    assert_eq!(env.status(&id), "created");
    env.ok(&["delete", "--force", &id]);
}

#[test]
fn status_is_derived_from_the_kernel() {
    let env = Env::new(&["sleep", "1000"], |_| {});
    let id = unique("derive");
    // A start killed after it released init: meta.json says created, the program runs.
    env.create(&id);
    let fifo = env.root.path().join(&id).join("exec.fifo");
    let mut reader = Command::new("cat")
        .arg(&fifo)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    reader.wait().unwrap();
    eventually("running", || env.status(&id) == "running");
    // A pause killed after it froze: meta.json says running, the freezer says frozen.
    let freezer = std::path::Path::new("/sys/fs/cgroup/freezer/coop").join(&id);
    let (file, on, off) = if freezer.exists() {
        (freezer.join("freezer.state"), "FROZEN", "THAWED")
    } else {
        (default_cgroup_dirs(&id)[0].join("cgroup.freeze"), "1", "0")
    };
    std::fs::write(&file, on).unwrap();
    eventually("paused", || env.status(&id) == "paused");
    // resume thaws it.
    env.ok(&["resume", &id]);
    assert_eq!(env.status(&id), "running");
    // A resume killed after it thawed: the record says paused, the kernel running.
    env.ok(&["pause", &id]);
    std::fs::write(&file, off).unwrap();
    eventually("running again", || env.status(&id) == "running");
    // Frozen behind coop's back: delete --force still kills and removes everything.
    let pid = env.pid(&id);
    std::fs::write(&file, on).unwrap();
    env.ok(&["delete", "--force", &id]);
    assert_all_gone(&env, &id, pid);
}

#[test]
fn readers_do_not_wait_on_a_slow_create() {
    let env = Env::new(&["sleep", "1000"], |c| {
        c["hooks"] = json!({"createRuntime": [{"path": "/bin/sleep", "args": ["sleep", "3"]}]});
    });
    let id = unique("slow");
    let mut create = env
        .cmd(&["create", "-b", env.bundle_path(), &id])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    eventually("the directory", || env.root.path().join(&id).exists());
    let st = env.status(&id);
    let listed = list_status(&env, &id);
    // Both answered while create still runs its 3 s hook.
    assert!(create.try_wait().unwrap().is_none(), "create already done");
    assert_eq!(st, "creating");
    assert_eq!(listed.as_deref(), Some("creating"));
    assert!(create.wait().unwrap().success());
    assert_eq!(env.status(&id), "created");
    env.ok(&["delete", "--force", &id]);
}

#[test]
fn read_only_root_serves_readers() {
    let env = Env::new(&["sleep", "1000"], |_| {});
    let id = unique("ro");
    env.ok(&["run", "-d", "-b", env.bundle_path(), &id]);
    let ro = tempfile::Builder::new()
        .prefix("coop-ro")
        .tempdir()
        .unwrap();
    let rop = ro.path().to_str().unwrap();
    let root = env.root.path().to_str().unwrap();
    let sh = |cmd: &str| {
        let st = Command::new("sh").args(["-c", cmd]).status().unwrap();
        assert!(st.success(), "{cmd}");
    };
    sh(&format!(
        "mount --bind {root} {rop} && mount -o remount,bind,ro {rop}"
    ));
    let coop_ro = |args: &[&str]| {
        Command::new(coop_bin())
            .arg("--root")
            .arg(rop)
            .args(args)
            .output()
            .unwrap()
    };
    let mut failures = vec![];
    for args in [
        &["state", &id][..],
        &["list"],
        &["ps", &id],
        &["kill", &id, "CONT"],
    ] {
        let out = coop_ro(args);
        if !out.status.success() {
            failures.push(format!("{args:?}: {}", stderr(&out)));
        }
    }
    let _ = Command::new("umount").arg(rop).status();
    assert!(failures.is_empty(), "{failures:?}");
    env.ok(&["delete", "--force", &id]);
}

#[test]
fn hooks_under_foreground_run_start_with_no_blocked_signal() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("sigblk");
    let env = Env::new(&["true"], |c| {
        c["hooks"] = json!({"createRuntime": [{"path": "/bin/sh", "args": ["sh", "-c",
            format!("grep -E 'SigBlk|SigIgn' /proc/self/status > {}", out.display())]}]});
    });
    let id = unique("mask");
    env.ok(&["run", "-b", env.bundle_path(), &id]);
    // Nothing blocked (a foreground run blocks nearly everything to forward it) and nothing
    // ignored.
    let lines = std::fs::read_to_string(&out).unwrap();
    assert_eq!(
        lines,
        "SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\n"
    );
}

/// A --root on a small tmpfs, filled up on demand (ENOSPC for every new file).
struct FullRoot {
    dir: tempfile::TempDir,
}

impl FullRoot {
    fn new() -> FullRoot {
        let dir = tempfile::Builder::new()
            .prefix("coop-full")
            .tempdir()
            .unwrap();
        let st = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=256k", "coopfull"])
            .arg(dir.path())
            .status()
            .unwrap();
        assert!(st.success(), "mount tmpfs");
        FullRoot { dir }
    }

    fn fill(&self) {
        let _ = Command::new("dd")
            .args(["if=/dev/zero", "bs=4k"])
            .arg(format!("of={}/fill", self.dir.path().display()))
            .stderr(std::process::Stdio::null())
            .status();
        let probe = self.dir.path().join("probe");
        assert!(std::fs::write(&probe, vec![0u8; 8192]).is_err(), "not full");
        let _ = std::fs::remove_file(probe);
    }

    fn unfill(&self) {
        let _ = std::fs::remove_file(self.dir.path().join("fill"));
    }

    fn coop(&self, args: &[&str]) -> std::process::Output {
        let out = Command::new(coop_bin())
            .arg("--root")
            .arg(self.dir.path().join("root"))
            .args(args)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        out.wait_with_output().unwrap()
    }

    fn status(&self, id: &str) -> String {
        let out = Command::new(coop_bin())
            .arg("--root")
            .arg(self.dir.path().join("root"))
            .args(["state", id])
            .output()
            .unwrap();
        assert!(out.status.success(), "state: {}", stderr(&out));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        v["status"].as_str().unwrap().to_string()
    }
}

impl Drop for FullRoot {
    fn drop(&mut self) {
        self.unfill();
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

#[test]
fn a_full_root_never_leaves_state_lying() {
    let env = Env::new(&["sleep", "1000"], |_| {});
    let full = FullRoot::new();
    let id = unique("enospc");
    // `create` prints nothing to keep open: stderr piped is fine only for commands whose
    // container does not inherit it, so create with output discarded.
    let st = Command::new(coop_bin())
        .arg("--root")
        .arg(full.dir.path().join("root"))
        .args(["create", "-b", env.bundle_path(), &id])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(st.success());
    full.fill();
    // start: the program runs; that it could not be recorded is a warning.
    let out = full.coop(&["start", &id]);
    assert!(out.status.success(), "start: {}", stderr(&out));
    assert_eq!(full.status(&id), "running");
    // pause: frozen but not recorded is undone.
    let out = full.coop(&["pause", &id]);
    assert!(!out.status.success(), "pause cannot record, must fail");
    assert_eq!(full.status(&id), "running");
    // Frozen behind coop's back (a pause killed after freezing): resume thaws it.
    full.unfill();
    assert!(full.coop(&["pause", &id]).status.success());
    full.fill();
    assert_eq!(full.status(&id), "paused");
    let out = full.coop(&["resume", &id]);
    assert!(out.status.success(), "resume: {}", stderr(&out));
    assert_eq!(full.status(&id), "running");
    let pid: i32 = {
        let out = Command::new(coop_bin())
            .arg("--root")
            .arg(full.dir.path().join("root"))
            .args(["state", &id])
            .output()
            .unwrap();
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()["pid"]
            .as_i64()
            .unwrap() as i32
    };
    let out = full.coop(&["delete", "--force", &id]);
    assert!(out.status.success(), "delete: {}", stderr(&out));
    assert!(!full.dir.path().join("root").join(&id).exists());
    assert!(!process_exists(pid));
}
