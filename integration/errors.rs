//! Bad input: a one-line error naming the object and the cause, a non-zero exit, and nothing
//! left behind (no state directory, no cgroup, no process).
use crate::common::*;
use serde_json::json;

/// create must fail with `want` in its one-line error and leave nothing.
fn create_fails(env: &Env, id: &str, want: &str) {
    let out = env.coop(&["create", "--bundle", env.bundle_path(), id]);
    assert!(!out.status.success(), "create {id} succeeded");
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "not one line: {err}");
    assert!(err.contains(want), "want {want:?} in {err:?}");
    assert!(env.left().is_empty(), "left behind: {:?}", env.left());
    for d in default_cgroup_dirs(id) {
        assert!(!d.exists(), "cgroup {} left behind", d.display());
    }
}

#[test]
fn missing_config() {
    let env = Env::new(&["true"], |_| {});
    std::fs::remove_file(env.bundle.path().join("config.json")).unwrap();
    create_fails(&env, &unique("e"), "config.json: no such file or directory");
}

#[test]
fn malformed_config_reports_line_and_column() {
    let env = Env::new(&["true"], |_| {});
    std::fs::write(
        env.bundle.path().join("config.json"),
        "{\n  \"ociVersion\": \"1.0.2\",\n  oops\n}",
    )
    .unwrap();
    create_fails(&env, &unique("e"), "line 3 column");
}

#[test]
fn missing_rootfs() {
    let env = Env::new(&["true"], |c| {
        c["root"]["path"] = json!("/nonexistent/rootfs")
    });
    create_fails(
        &env,
        &unique("e"),
        "rootfs /nonexistent/rootfs: no such file or directory",
    );
}

#[test]
fn unknown_namespace_type() {
    let env = Env::new(&["true"], |c| {
        c["linux"]["namespaces"][0]["type"] = json!("bogus")
    });
    create_fails(&env, &unique("e"), "unknown variant `bogus`");
}

#[test]
fn executable_not_found() {
    let env = Env::new(&["nosuchprog"], |_| {});
    create_fails(
        &env,
        &unique("e"),
        "exec \"nosuchprog\": executable file not found in $PATH",
    );
}

#[test]
fn invalid_ids() {
    let env = Env::new(&["true"], |_| {});
    for id in ["a/b", "..", "with space"] {
        let out = env.coop(&["create", "--bundle", env.bundle_path(), id]);
        assert!(!out.status.success());
        assert!(
            stderr(&out).contains("invalid container id"),
            "{}",
            stderr(&out)
        );
    }
    assert!(env.left().is_empty());
}

#[test]
fn duplicate_id_leaves_the_first_alone() {
    let env = Env::new(&["sleep", "100"], |_| {});
    let id = unique("dup");
    env.create(&id);
    let pid = env.pid(&id);
    let out = env.coop(&["create", "--bundle", env.bundle_path(), &id]);
    assert!(!out.status.success());
    assert_eq!(
        stderr(&out).trim(),
        format!("coop: error: container {id} already exists")
    );
    assert_eq!(env.pid(&id), pid);
    assert_eq!(env.status(&id), "created");
}

#[test]
fn unknown_container() {
    let env = Env::new(&["true"], |_| {});
    for verb in ["state", "start", "kill", "delete"] {
        let out = env.coop(&[verb, "nothere"]);
        assert!(!out.status.success());
        assert_eq!(
            stderr(&out).trim(),
            "coop: error: container nothere does not exist",
            "{verb}"
        );
    }
}

#[test]
fn json_log_ends_with_the_root_cause() {
    let env = Env::new(&["nosuchprog"], |_| {});
    let log = env.bundle.path().join("log.json");
    let out = env.coop(&[
        "--log",
        log.to_str().unwrap(),
        "--log-format",
        "json",
        "create",
        "-b",
        env.bundle_path(),
        "x",
    ]);
    assert!(!out.status.success());
    let text = std::fs::read_to_string(&log).unwrap();
    let last: serde_json::Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert_eq!(last["level"], "error");
    assert!(
        last["msg"]
            .as_str()
            .unwrap()
            .ends_with("executable file not found in $PATH"),
        "{last}"
    );
    assert!(last["time"].as_str().unwrap().ends_with('Z'));
}

#[test]
fn terminal_without_console_socket_is_refused() {
    let env = Env::new(&["true"], |c| c["process"]["terminal"] = json!(true));
    create_fails(&env, &unique("e"), "--console-socket is required");
}

#[test]
fn corrupt_state_is_listed_and_removed_by_delete_force() {
    let env = Env::new(&["sleep", "100"], |_| {});
    env.create("good");
    let bad = env.root.path().join("broken");
    std::fs::create_dir(&bad).unwrap();
    std::fs::write(bad.join("lock"), "").unwrap();
    std::fs::write(bad.join("meta.json"), "{\"id\": \"broken\", \"stat").unwrap();
    // Listed (as stopped: nothing lives in its cgroup), with a warning naming the damage.
    let out = env.coop(&["list", "-q"]);
    assert!(out.status.success());
    assert_eq!(stdout(&out), "broken\ngood\n");
    assert_eq!(env.status("broken"), "stopped");
    assert!(
        stderr(&out).contains("broken") && stderr(&out).contains("corrupt state file"),
        "{}",
        stderr(&out)
    );
    let out = env.coop(&["delete", "broken"]);
    assert!(!out.status.success());
    env.ok(&["delete", "--force", "broken"]);
    assert!(!bad.exists());
    assert_eq!(env.ok(&["list", "-q"]), "good\n");
    // A directory under --root that is not coop's (a wrong --root, say) is never removed.
    let other = env.root.path().join("data");
    std::fs::create_dir_all(other.join("bin")).unwrap();
    std::fs::write(other.join("precious"), "x").unwrap();
    let out = env.coop(&["delete", "--force", "data"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("holds files coop does not make"),
        "{}",
        stderr(&out)
    );
    assert!(other.join("precious").exists() && other.join("bin").exists());
    assert!(!other.join("lock").exists(), "a lock file was left in it");
}

/// A reader that has gone away (`coop state ID | head -c1`): coop ends quietly as runc and
/// other Unix tools do, killed by SIGPIPE (the shell says 141), no panic, nothing on stderr.
#[test]
fn closed_stdout_ends_quietly_by_sigpipe() {
    use std::os::unix::process::ExitStatusExt;
    let env = Env::new(&["sleep", "100"], |_| {});
    let id = unique("pipe");
    env.create(&id);
    for args in [
        vec!["state", id.as_str()],
        vec!["features"],
        vec!["list"],
        vec!["list", "-q"],
        vec!["ps", "--format", "json", id.as_str()],
        vec!["--version"],
    ] {
        let (rd, wr) = nix::unistd::pipe().unwrap();
        drop(rd);
        let out = env
            .cmd(&args)
            .stdout(std::process::Stdio::from(wr))
            .stderr(std::process::Stdio::piped())
            .output()
            .unwrap();
        assert_eq!(
            out.status.signal(),
            Some(libc::SIGPIPE),
            "{args:?}: {:?} {}",
            out.status,
            stderr(&out)
        );
        assert_eq!(stderr(&out), "", "{args:?}");
    }
}

/// A panic is one line on stderr and the last line of the --log (podman and containerd read
/// only the log).
#[test]
fn panic_is_one_line_and_the_last_log_line() {
    let env = Env::new(&["true"], |_| {});
    let log = env.bundle.path().join("log.json");
    let out = env
        .cmd(&[
            "--log",
            log.to_str().unwrap(),
            "--log-format",
            "json",
            "state",
            "x",
        ])
        .env("COOP_TEST_PANIC", "1")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("coop: error: panic at src/main.rs:")
            && err.trim_end().ends_with("COOP_TEST_PANIC is set"),
        "{err}"
    );
    let text = std::fs::read_to_string(&log).unwrap();
    let last: serde_json::Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert_eq!(last["level"], "error");
    assert!(
        last["msg"].as_str().unwrap().starts_with("panic at "),
        "{last}"
    );
}

/// A failure in the container after `create` has returned (a startContainer hook here) reads
/// the same way, on the container's stderr.
#[test]
fn failure_after_create_is_an_error_line_too() {
    let env = Env::new(&["true"], |c| {
        c["hooks"] =
            json!({"startContainer": [{"path": "/bin/sh", "args": ["sh", "-c", "exit 3"]}]});
    });
    let out = env.coop(&["run", "-b", env.bundle_path(), &unique("late")]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("coop: error: startContainer hook #0 (/bin/sh): "),
        "{err}"
    );
}
