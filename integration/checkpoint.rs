//! checkpoint and restore through CRIU.
//!
//! The tests that need a working CRIU are `#[ignore]`d with the reason: Debian's criu 3.17
//! cannot dump on kernels from 6.x with the `[vvar_vclock]` mapping (this project's hosts), so
//! scripts/test-v2.sh runs them (`--include-ignored`) in its guest with Debian's 6.1 kernel and
//! COOP_REQUIRE_CRIU=1, which turns a failing `criu check` into a test failure. Run with
//! `--include-ignored` elsewhere, each one checks `criu check` first and reports itself as
//! skipped with CRIU's reason when it fails.
use crate::common::*;
use serde_json::json;
use std::io::Write;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

/// True (after saying why on stderr) when CRIU cannot work here; with COOP_REQUIRE_CRIU=1 the
/// test fails instead.
fn skip_unless_criu(test: &str) -> bool {
    let out = std::process::Command::new("criu").arg("check").output();
    let reason = match out {
        Err(e) => format!("criu is not installed ({e}); apt-get install criu"),
        Ok(o) if o.status.success() => return false,
        Ok(o) => {
            let text = String::from_utf8_lossy(&o.stderr).into_owned()
                + &String::from_utf8_lossy(&o.stdout);
            let first = text
                .lines()
                .find(|l| l.contains("Error"))
                .or_else(|| text.lines().last())
                .unwrap_or("")
                .to_string();
            format!("`criu check` fails here: {first}")
        }
    };
    if std::env::var_os("COOP_REQUIRE_CRIU").is_some_and(|v| v == "1") {
        panic!("{test}: {reason} (COOP_REQUIRE_CRIU=1: this tier must run it)");
    }
    let _ = writeln!(std::io::stderr(), "SKIPPED: {test}: {reason}");
    true
}

/// A container counting (ten times a second) into /data/count, /data being a bind mount of a
/// directory of the test: the count survives the container and shows that a restored one
/// continues where its checkpoint was. Its stdio goes to the container's /dev/null, so that
/// coop's own output can go to files (CRIU cannot dump a file of a mount outside the
/// container).
struct Counter {
    env: Env,
    data: tempfile::TempDir,
}

impl Counter {
    fn new() -> Counter {
        Counter::with_script(
            "exec </dev/null >/dev/null 2>&1; i=0; while true; do i=$((i+1)); echo $i > /data/count; sleep 0.1; done",
        )
    }

    fn with_script(script: &str) -> Counter {
        let data = tempfile::Builder::new()
            .prefix("coop-it-ckpt-data")
            .tempdir()
            .unwrap();
        let src = data.path().to_path_buf();
        // Each of these hooks appends "<stage> <state>" to <data>/hooks.
        let log = src.join("hooks");
        let hook = |stage: &str| {
            json!({"path": "/bin/sh", "args": ["sh", "-c",
                format!("printf '%s ' {stage} >> {0}; cat >> {0}; echo >> {0}", log.display())]})
        };
        let hooks = json!({
            "prestart": [hook("prestart")],
            "createRuntime": [hook("createRuntime")],
            "poststart": [hook("poststart")],
        });
        let env = Env::new(&["sh", "-c", script], |cfg| {
            cfg["mounts"]
                .as_array_mut()
                .unwrap()
                .push(json!({"destination": "/data", "type": "bind", "source": src, "options": ["rbind", "rw"]}));
            cfg["hooks"] = hooks;
        });
        Counter { env, data }
    }

    fn start(&self, id: &str) {
        self.env.create(id);
        self.env.ok(&["start", id]);
    }

    fn count(&self) -> u64 {
        std::fs::read_to_string(self.data.path().join("count"))
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0)
    }

    /// Wait (up to 60 s: the guest is slow) until the count is above `n`; the count.
    fn wait_above(&self, n: u64) -> u64 {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let c = self.count();
            if c > n {
                return c;
            }
            assert!(
                Instant::now() < deadline,
                "the count never went above {n} (it is {c})"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn images(&self, name: &str) -> PathBuf {
        self.data.path().join(name)
    }
}

/// The pid's cgroup2 path ("0::/coop/id" -> "/coop/id").
fn cgroup_of(pid: i32) -> String {
    let s = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    s.lines()
        .find_map(|l| l.strip_prefix("0::"))
        .unwrap_or("")
        .to_string()
}

#[test]
#[ignore = "needs a working CRIU (criu check): run by scripts/test-v2.sh"]
fn checkpoint_stops_and_restore_continues_the_count() {
    if skip_unless_criu("checkpoint::checkpoint_stops_and_restore_continues_the_count") {
        return;
    }
    let t = Counter::new();
    let id = unique("ckpt");
    t.start(&id);
    t.wait_above(3);
    let pid = t.env.pid(&id);
    let img = t.images("img");
    t.env
        .ok(&["checkpoint", "--image-path", img.to_str().unwrap(), &id]);
    // Checkpointed without --leave-running: stopped, its processes gone, deletable.
    assert_eq!(t.env.status(&id), "stopped");
    assert!(
        !process_exists(pid),
        "init {pid} still lives after the checkpoint"
    );
    let saved = t.count();
    assert!(img.join("inventory.img").exists());
    t.env.ok(&["delete", &id]);
    // Restored under the same id: running, with the pid in meta.json, and counting on from
    // where it stopped.
    t.env.ok(&[
        "restore",
        "--detach",
        "--image-path",
        img.to_str().unwrap(),
        "--bundle",
        t.env.bundle_path(),
        &id,
    ]);
    assert_eq!(t.env.status(&id), "running");
    let rpid = t.env.pid(&id);
    assert!(process_exists(rpid));
    t.wait_above(saved);
    if pure_v2() {
        assert_eq!(cgroup_of(rpid), format!("/coop/{id}"));
    }
    // The restore ran prestart and createRuntime (where runc runs them: once the restored
    // init exists, before it resumes) with its pid; poststart ran only for the start.
    let hooks = read_trimmed(t.data.path().join("hooks"));
    let stages: Vec<&str> = hooks
        .lines()
        .map(|l| l.split(' ').next().unwrap())
        .collect();
    assert_eq!(
        stages,
        [
            "prestart",
            "createRuntime",
            "poststart",
            "prestart",
            "createRuntime"
        ],
        "{hooks}"
    );
    for l in hooks.lines().skip(3) {
        let st: serde_json::Value = serde_json::from_str(l.split_once(' ').unwrap().1).unwrap();
        assert_eq!(st["pid"], rpid, "{l}");
        assert_eq!(st["id"], id.as_str(), "{l}");
    }
    t.env.ok(&["delete", "--force", &id]);
    assert!(!process_exists(rpid));
    // Without --detach, restore waits for the container, exits with its status (128+9 for a
    // SIGKILL) and deletes it, as runc does. (The images can be restored again.)
    let mut fg = t
        .env
        .cmd(&[
            "restore",
            "--image-path",
            img.to_str().unwrap(),
            "-b",
            t.env.bundle_path(),
            &id,
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !(t.env.left().contains(&id)
        && t.env.coop(&["state", &id]).status.success()
        && t.env.status(&id) == "running")
    {
        assert!(
            Instant::now() < deadline,
            "the foreground restore never ran"
        );
        assert!(
            fg.try_wait().unwrap().is_none(),
            "the foreground restore exited early"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    t.env.ok(&["kill", &id, "KILL"]);
    let status = fg.wait().unwrap();
    assert_eq!(status.code(), Some(137));
    assert!(t.env.left().is_empty(), "{:?}", t.env.left());
}

#[test]
#[ignore = "needs a working CRIU (criu check): run by scripts/test-v2.sh"]
fn leave_running_and_restore_under_a_new_id() {
    if skip_unless_criu("checkpoint::leave_running_and_restore_under_a_new_id") {
        return;
    }
    let t = Counter::new();
    let id = unique("ckpt-lr");
    let new_id = unique("ckpt-new");
    t.start(&id);
    t.wait_above(3);
    let pid = t.env.pid(&id);
    let img = t.images("img");
    let pid_file = t.data.path().join("restored.pid");
    t.env.ok(&[
        "checkpoint",
        "--leave-running",
        "--image-path",
        img.to_str().unwrap(),
        &id,
    ]);
    assert_eq!(t.env.status(&id), "running");
    assert_eq!(t.env.pid(&id), pid);
    let now = t.count();
    t.wait_above(now);
    // The original must be gone before its copy takes the same pids (CRIU restores pids).
    t.env.ok(&["kill", &id, "KILL"]);
    t.env.wait_status(&id, "stopped");
    t.env.ok(&[
        "restore",
        "-d",
        "--image-path",
        img.to_str().unwrap(),
        "-b",
        t.env.bundle_path(),
        "--pid-file",
        pid_file.to_str().unwrap(),
        &new_id,
    ]);
    // Both are listed: the stopped original and its running copy under the new id.
    assert_eq!(t.env.status(&id), "stopped");
    assert_eq!(t.env.status(&new_id), "running");
    let rpid = t.env.pid(&new_id);
    assert_eq!(read_trimmed(&pid_file), rpid.to_string());
    if pure_v2() {
        assert_eq!(cgroup_of(rpid), format!("/coop/{new_id}"));
    }
    std::fs::remove_file(t.data.path().join("count")).unwrap();
    t.wait_above(0);
    t.env.ok(&["delete", &id]);
    t.env.ok(&["delete", "--force", &new_id]);
    assert!(t.env.left().is_empty(), "{:?}", t.env.left());
}

#[test]
#[ignore = "needs a working CRIU (criu check): run by scripts/test-v2.sh"]
fn pre_dump_then_dump_with_parent_path() {
    if skip_unless_criu("checkpoint::pre_dump_then_dump_with_parent_path") {
        return;
    }
    let ok = std::process::Command::new("criu")
        .args(["check", "--feature", "mem_dirty_track"])
        .output()
        .unwrap();
    if !ok.status.success() {
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED: checkpoint::pre_dump_then_dump_with_parent_path: no memory tracking here: {}",
            String::from_utf8_lossy(&ok.stdout).trim()
        );
        return;
    }
    let t = Counter::new();
    let id = unique("ckpt-pre");
    t.start(&id);
    t.wait_above(3);
    let pre = t.images("pre");
    let img = t.images("img");
    t.env.ok(&[
        "checkpoint",
        "--pre-dump",
        "--image-path",
        pre.to_str().unwrap(),
        &id,
    ]);
    // A pre-dump leaves the container running.
    assert_eq!(t.env.status(&id), "running");
    let now = t.count();
    t.wait_above(now);
    t.env.ok(&[
        "checkpoint",
        "--image-path",
        img.to_str().unwrap(),
        "--parent-path",
        "../pre",
        &id,
    ]);
    assert_eq!(t.env.status(&id), "stopped");
    // The dump refers to its parent rather than holding every page again.
    assert!(img.join("parent").exists(), "no parent link in the dump");
    let saved = t.count();
    t.env.ok(&["delete", &id]);
    t.env.ok(&[
        "restore",
        "-d",
        "--image-path",
        img.to_str().unwrap(),
        "-b",
        t.env.bundle_path(),
        &id,
    ]);
    assert_eq!(t.env.status(&id), "running");
    t.wait_above(saved);
    t.env.ok(&["delete", "--force", &id]);
}

/// A pipe: (read end, write end).
fn pipe() -> (OwnedFd, OwnedFd) {
    nix::unistd::pipe().unwrap()
}

/// Read from `r` (non-blocking, up to 60 s) until a line holding a number above `n` arrives;
/// that number.
fn read_count_above(r: &OwnedFd, n: u64) -> u64 {
    nix::fcntl::fcntl(
        r,
        nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut text = String::new();
    loop {
        let mut buf = [0u8; 4096];
        match nix::unistd::read(r, &mut buf) {
            Ok(0) => panic!("the pipe closed before a count above {n}: {text:?}"),
            Ok(k) => text.push_str(&String::from_utf8_lossy(&buf[..k])),
            Err(nix::errno::Errno::EAGAIN) => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => panic!("read: {e}"),
        }
        let last = text
            .lines()
            .rev()
            .skip(if text.ends_with('\n') { 0 } else { 1 })
            .find_map(|l| l.trim().parse::<u64>().ok());
        if let Some(c) = last.filter(|&c| c > n) {
            return c;
        }
        assert!(
            Instant::now() < deadline,
            "no count above {n} on the pipe: {text:?}"
        );
    }
}

#[test]
#[ignore = "needs a working CRIU (criu check): run by scripts/test-v2.sh"]
fn stdio_pipes_are_handed_to_the_restored_container() {
    if skip_unless_criu("checkpoint::stdio_pipes_are_handed_to_the_restored_container") {
        return;
    }
    let t = Counter::with_script("i=0; while true; do i=$((i+1)); echo $i; sleep 0.1; done");
    let id = unique("ckpt-pipe");
    let (r1, w1) = pipe();
    let status = t
        .env
        .cmd(&["run", "-d", "--bundle", t.env.bundle_path(), &id])
        .stdout(Stdio::from(w1.try_clone().unwrap()))
        .stderr(Stdio::from(w1))
        .status()
        .unwrap();
    assert!(status.success());
    let before = read_count_above(&r1, 3);
    let img = t.images("img");
    t.env
        .ok(&["checkpoint", "--image-path", img.to_str().unwrap(), &id]);
    t.env.ok(&["delete", &id]);
    // The container wrote into the first pipe; restored, into the second one, which is
    // restore's own stdout and stderr.
    let (r2, w2) = pipe();
    let status = t
        .env
        .cmd(&[
            "restore",
            "-d",
            "--image-path",
            img.to_str().unwrap(),
            "-b",
            t.env.bundle_path(),
            &id,
        ])
        .stdout(Stdio::from(w2.try_clone().unwrap()))
        .stderr(Stdio::from(w2))
        .status()
        .unwrap();
    assert!(status.success(), "restore failed");
    let after = read_count_above(&r2, before);
    assert!(after > before);
    t.env.ok(&["delete", "--force", &id]);
}

#[test]
#[ignore = "needs a working CRIU (criu check): run by scripts/test-v2.sh"]
fn shell_job_on_the_callers_terminal() {
    if skip_unless_criu("checkpoint::shell_job_on_the_callers_terminal") {
        return;
    }
    let t = Counter::with_script("i=0; while true; do i=$((i+1)); echo $i; sleep 0.1; done");
    let id = unique("ckpt-tty");
    let run_on_pty = |args: &[&str]| {
        let pty = nix::pty::openpty(None, None).unwrap();
        let status = t
            .env
            .cmd(args)
            .stdin(Stdio::from(pty.slave.try_clone().unwrap()))
            .stdout(Stdio::from(pty.slave.try_clone().unwrap()))
            .stderr(Stdio::from(pty.slave))
            .status()
            .unwrap();
        if !status.success() {
            // Its message went to the terminal: CRIU's log says why.
            let log =
                std::fs::read_to_string(t.images("img").join("restore.log")).unwrap_or_default();
            let errors: Vec<&str> = log.lines().filter(|l| l.contains("Error")).collect();
            panic!("coop {args:?} failed: {errors:?}");
        }
        pty.master
    };
    let m1 = run_on_pty(&["run", "-d", "--bundle", t.env.bundle_path(), &id]);
    let before = read_count_above(&m1, 3);
    let img = t.images("img");
    let imgs = img.to_str().unwrap();
    // Without --shell-job CRIU refuses a terminal from outside the container.
    let out = t.env.coop(&["checkpoint", "--image-path", imgs, &id]);
    assert!(
        !out.status.success(),
        "a checkpoint without --shell-job worked"
    );
    assert_eq!(t.env.status(&id), "running");
    t.env
        .ok(&["checkpoint", "--shell-job", "--image-path", imgs, &id]);
    t.env.ok(&["delete", &id]);
    // Restored onto the terminal restore runs on.
    let m2 = run_on_pty(&[
        "restore",
        "-d",
        "--shell-job",
        "--image-path",
        imgs,
        "-b",
        t.env.bundle_path(),
        &id,
    ]);
    read_count_above(&m2, before);
    t.env.ok(&["delete", "--force", &id]);
    drop(m1);
}

#[test]
#[ignore = "needs a working CRIU (criu check): run by scripts/test-v2.sh"]
fn corrupt_image_leaves_nothing_behind() {
    if skip_unless_criu("checkpoint::corrupt_image_leaves_nothing_behind") {
        return;
    }
    let t = Counter::new();
    let img = t.images("img");
    std::fs::create_dir(&img).unwrap();
    std::fs::write(img.join("inventory.img"), b"not a CRIU image").unwrap();
    let id = unique("ckpt-bad");
    let out = t.env.coop(&[
        "restore",
        "-d",
        "--image-path",
        img.to_str().unwrap(),
        "-b",
        t.env.bundle_path(),
        &id,
    ]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains(&format!("restore container {id}: criu restore failed:"))
            && err.contains("restore.log"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(t.env.left().is_empty(), "{:?}", t.env.left());
    if pure_v2() {
        assert!(
            !v2_dir(&id).exists(),
            "cgroup {} left",
            v2_dir(&id).display()
        );
    }
}

/// A stand-in for criu: a script answering `--version` and `check` as told.
fn fake_criu(dir: &Path, version: &str, check_rc: i32, feature_rc: i32) -> PathBuf {
    let p = dir.join("fake-criu");
    std::fs::write(
        &p,
        format!(
            "#!/bin/sh\ncase \"$1 $2\" in\n--version*) echo 'Version: {version}';;\n'check --feature') echo \"$3 isn't supported\"; exit {feature_rc};;\ncheck*) echo 'Error (criu/x.c:1): fake: no kernel support' >&2; exit {check_rc};;\n*) exit 99;;\nesac\n"
        ),
    )
    .unwrap();
    std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    p
}

#[test]
fn bad_input_is_refused_clearly_and_leaves_nothing() {
    let t = Counter::new();
    let id = unique("ckpt-in");
    let img = t.images("img");
    let imgs = img.to_str().unwrap();
    // Not running: created, then missing.
    t.env.create(&id);
    let out = t.env.coop(&["checkpoint", "--image-path", imgs, &id]);
    assert!(!out.status.success());
    assert_eq!(
        stderr(&out).trim(),
        format!("coop: error: container {id} is created: cannot checkpoint")
    );
    assert!(!img.exists(), "a refused checkpoint made {}", img.display());
    let out = t
        .env
        .coop(&["checkpoint", "--image-path", imgs, "ckpt-nosuch"]);
    assert!(stderr(&out).contains("container ckpt-nosuch does not exist"));
    // Restore into an existing id: refused, the existing container untouched.
    let out = t.env.coop(&[
        "restore",
        "--image-path",
        imgs,
        "-b",
        t.env.bundle_path(),
        &id,
    ]);
    assert!(!out.status.success());
    assert_eq!(
        stderr(&out).trim(),
        format!("coop: error: container {id} already exists")
    );
    assert_eq!(t.env.status(&id), "created");
    t.env.ok(&["delete", "--force", &id]);
    // A missing image directory, and one that holds no checkpoint.
    let new_id = unique("ckpt-in2");
    let out = t.env.coop(&[
        "restore",
        "--image-path",
        imgs,
        "-b",
        t.env.bundle_path(),
        &new_id,
    ]);
    assert_eq!(
        stderr(&out).trim(),
        format!("coop: error: checkpoint image directory {imgs}: no such directory")
    );
    std::fs::create_dir(&img).unwrap();
    let out = t.env.coop(&[
        "restore",
        "--image-path",
        imgs,
        "-b",
        t.env.bundle_path(),
        &new_id,
    ]);
    assert_eq!(
        stderr(&out).trim(),
        format!(
            "coop: error: checkpoint image directory {imgs} holds no CRIU checkpoint (no inventory.img)"
        )
    );
    // A container with its own terminal cannot be restored (CRIU's RPC would be needed), nor
    // can a console socket be given.
    std::fs::write(img.join("inventory.img"), b"x").unwrap();
    let mut cfg: serde_json::Value =
        serde_json::from_slice(&std::fs::read(t.env.bundle.path().join("config.json")).unwrap())
            .unwrap();
    cfg["process"]["terminal"] = json!(true);
    t.env.write_config(&cfg);
    let out = t.env.coop(&[
        "restore",
        "--image-path",
        imgs,
        "-b",
        t.env.bundle_path(),
        &new_id,
    ]);
    assert!(
        stderr(&out).starts_with(
            "coop: error: process.terminal is set: restoring a container's own terminal needs CRIU's RPC"
        ),
        "{}",
        stderr(&out)
    );
    let out = t.env.coop(&[
        "restore",
        "--console-socket",
        "/nonexistent.sock",
        "--image-path",
        imgs,
        &new_id,
    ]);
    assert!(
        stderr(&out).starts_with(
            "coop: error: --console-socket: restoring a container's terminal needs CRIU's RPC"
        ),
        "{}",
        stderr(&out)
    );
    // Not done: said so.
    let out = t.env.coop(&["checkpoint", "--lazy-pages", &new_id]);
    assert!(
        stderr(&out).contains("--lazy-pages is not supported by coop"),
        "{}",
        stderr(&out)
    );
    assert!(t.env.left().is_empty(), "{:?}", t.env.left());
    if pure_v2() {
        assert!(!v2_dir(&new_id).exists());
    }
}

#[test]
fn criu_binary_version_and_features_are_checked() {
    let t = Counter::new();
    let id = unique("ckpt-fake");
    t.start(&id);
    let bin = tempfile::tempdir().unwrap();
    let img = t.images("img");
    let imgs = img.to_str().unwrap();
    let run = |criu: &Path, extra: &[&str]| {
        let mut args = vec![
            "--criu",
            criu.to_str().unwrap(),
            "checkpoint",
            "--image-path",
            imgs,
        ];
        args.extend_from_slice(extra);
        args.push(&id);
        let out = t.env.coop(&args);
        assert!(!out.status.success());
        stderr(&out).trim().to_string()
    };
    // --criu names the binary.
    assert_eq!(
        run(&bin.path().join("nope"), &[]),
        format!(
            "coop: error: criu binary {}/nope (--criu): no such file",
            bin.path().display()
        )
    );
    let old = fake_criu(bin.path(), "3.12", 0, 0);
    assert_eq!(
        run(&old, &[]),
        format!(
            "coop: error: criu 3.12.0 ({}) is too old: coop needs CRIU 3.14 or newer",
            old.display()
        )
    );
    let broken = fake_criu(bin.path(), "3.17.1", 1, 0);
    assert_eq!(
        run(&broken, &[]),
        "coop: error: criu 3.17.1 cannot checkpoint on this kernel (`criu check` fails): fake: no kernel support"
    );
    let no_track = fake_criu(bin.path(), "3.17.1", 0, 1);
    assert_eq!(
        run(&no_track, &["--pre-dump"]),
        "coop: error: --pre-dump needs the kernel's memory change tracking (soft-dirty bits): `criu check --feature mem_dirty_track` fails: mem_dirty_track isn't supported"
    );
    // Nothing was dumped, the container still runs.
    assert!(!img.exists());
    assert_eq!(t.env.status(&id), "running");
    t.env.ok(&["delete", "--force", &id]);
}
