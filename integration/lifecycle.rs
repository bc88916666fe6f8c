//! The lifecycle as a user sees it: run, create/start/state/list/kill/delete.
use crate::common::*;
use std::time::Duration;

#[test]
fn foreground_run_prints_and_returns_exit_code() {
    let env = Env::new(&["sh", "-c", "echo hello from $(hostname); exit 3"], |_| {});
    let id = unique("run");
    let out = env.coop(&["run", "--bundle", env.bundle_path(), &id]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert_eq!(stdout(&out), "hello from coop\n");
    // A foreground run deletes its container, cgroups included.
    assert!(env.left().is_empty(), "left behind: {:?}", env.left());
    for d in default_cgroup_dirs(&id) {
        assert!(!d.exists(), "cgroup {} left behind", d.display());
    }
}

#[test]
fn run_keep_leaves_a_stopped_container() {
    let env = Env::new(&["true"], |_| {});
    let id = unique("keep");
    env.ok(&["run", "--keep", "-b", env.bundle_path(), &id]);
    assert_eq!(env.status(&id), "stopped");
    assert_eq!(env.state(&id)["pid"], 0);
    env.ok(&["delete", &id]);
    assert!(env.left().is_empty());
}

#[test]
fn foreground_run_reports_128_plus_signal() {
    let env = Env::new(&["sleep", "100"], |_| {});
    let id = unique("sig");
    let child = env
        .cmd(&["run", "-b", env.bundle_path(), &id])
        .spawn()
        .unwrap();
    // Wait until it runs, then kill it from outside.
    for _ in 0..200 {
        if env.coop(&["state", &id]).status.success() && env.status(&id) == "running" {
            break;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    env.ok(&["kill", &id, "KILL"]);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(137));
}

#[test]
fn foreground_run_forwards_signals() {
    let env = Env::new(
        &[
            "sh",
            "-c",
            "trap 'exit 7' TERM; echo ready; while :; do sleep 0.05; done",
        ],
        |_| {},
    );
    let id = unique("fwd");
    let mut child = env
        .cmd(&["run", "-b", env.bundle_path(), &id])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut buf = [0u8; 6];
    std::io::Read::read_exact(&mut out, &mut buf).unwrap();
    assert_eq!(&buf, b"ready\n");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let st = child.wait().unwrap();
    assert_eq!(st.code(), Some(7));
}

#[test]
fn create_start_state_list_kill_delete() {
    let env = Env::new(&["sleep", "100"], |_| {});
    let id = unique("life");
    let pidfile = env.bundle.path().join("pid");
    env.ok(&[
        "create",
        "--pid-file",
        pidfile.to_str().unwrap(),
        "--bundle",
        env.bundle_path(),
        &id,
    ]);
    let st = env.state(&id);
    assert_eq!(st["status"], "created");
    assert_eq!(st["id"], id.as_str());
    assert_eq!(st["bundle"], env.bundle_path());
    let pid = st["pid"].as_i64().unwrap() as i32;
    assert!(pid > 0 && process_exists(pid));
    assert_eq!(std::fs::read_to_string(&pidfile).unwrap(), pid.to_string());
    // The container's program has not started yet: init is still coop, waiting.
    let comm = std::fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap();
    assert!(!comm.contains("sleep"), "{comm}");

    let table = env.ok(&["list"]);
    let mut lines = table.lines();
    assert!(lines.next().unwrap().starts_with("ID"));
    let row = lines.next().unwrap();
    assert!(
        row.starts_with(&id) && row.contains("created") && row.contains(&pid.to_string()),
        "{row}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&env.ok(&["list", "--format", "json"])).unwrap();
    assert_eq!(json[0]["id"], id.as_str());
    assert_eq!(env.ok(&["list", "-q"]), format!("{id}\n"));

    env.ok(&["start", &id]);
    assert_eq!(env.status(&id), "running");
    let cmdline = std::fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap();
    assert!(cmdline.starts_with("sleep\0100"), "{cmdline:?}");

    env.ok(&["kill", &id, "SIGKILL"]);
    env.wait_status(&id, "stopped");
    env.ok(&["delete", &id]);
    assert!(env.left().is_empty());
    for d in default_cgroup_dirs(&id) {
        assert!(!d.exists(), "cgroup {} left behind", d.display());
    }
}

#[test]
fn kill_accepts_names_and_numbers_and_defaults_to_term() {
    for sig in [None, Some("KILL"), Some("SIGKILL"), Some("9"), Some("TERM")] {
        let env = Env::new(
            &[
                "sh",
                "-c",
                "trap 'exit 0' TERM; while :; do sleep 0.05; done",
            ],
            |_| {},
        );
        let id = unique("kill");
        env.ok(&["run", "-d", "-b", env.bundle_path(), &id]);
        assert_eq!(env.status(&id), "running");
        let mut args = vec!["kill", id.as_str()];
        args.extend(sig);
        env.ok(&args);
        env.wait_status(&id, "stopped");
        env.ok(&["delete", &id]);
    }
}

#[test]
fn kill_all_and_delete_force() {
    let env = Env::new(&["sh", "-c", "sleep 100 & sleep 100 & wait"], |_| {});
    let id = unique("all");
    env.ok(&["run", "-d", "-b", env.bundle_path(), &id]);
    let pid = env.pid(&id);
    env.ok(&["kill", "--all", &id, "KILL"]);
    env.wait_status(&id, "stopped");
    assert!(!process_exists(pid));
    env.ok(&["delete", &id]);

    let id = unique("force");
    env.ok(&["run", "-d", "-b", env.bundle_path(), &id]);
    let pid = env.pid(&id);
    let out = env.coop(&["delete", &id]);
    assert!(!out.status.success());
    assert_eq!(
        stderr(&out).trim(),
        format!("coop: error: container {id} is running: cannot delete")
    );
    env.ok(&["delete", "--force", &id]);
    assert!(!process_exists(pid));
    assert!(env.left().is_empty());
    // --force on a container that is gone succeeds, as with runc.
    env.ok(&["delete", "--force", &id]);
}

#[test]
fn id_prefixes_resolve_and_ambiguity_names_candidates() {
    let env = Env::new(&["sleep", "100"], |_| {});
    env.create("alpha-one");
    env.create("alpha-two");
    env.create("beta");
    assert_eq!(env.state("be")["id"], "beta");
    let out = env.coop(&["state", "alpha"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("ambiguous") && err.contains("alpha-one") && err.contains("alpha-two"),
        "{err}"
    );
    env.ok(&["delete", "--force", "alpha-o"]);
    assert_eq!(env.ok(&["list", "-q"]), "alpha-two\nbeta\n");
}

#[test]
fn start_of_a_running_or_stopped_container_fails() {
    let env = Env::new(&["sleep", "100"], |_| {});
    let id = unique("start");
    env.ok(&["run", "-d", "-b", env.bundle_path(), &id]);
    let out = env.coop(&["start", &id]);
    assert!(!out.status.success());
    assert_eq!(
        stderr(&out).trim(),
        format!("coop: error: container {id} is running: cannot start")
    );
    env.ok(&["kill", &id, "9"]);
    env.wait_status(&id, "stopped");
    let out = env.coop(&["start", &id]);
    assert_eq!(
        stderr(&out).trim(),
        format!("coop: error: container {id} is stopped: cannot start")
    );
}

#[test]
fn version_names_coop_and_the_spec() {
    let out = std::process::Command::new(coop_bin())
        .arg("--version")
        .output()
        .unwrap();
    let s = stdout(&out);
    assert!(s.starts_with("coop version "), "{s}");
    assert!(s.contains("\nspec: 1.") && s.contains("commit: "), "{s}");
}
