//! OCI hooks: stages in order, their namespaces, state on stdin, failure rules.
use crate::common::*;
use serde_json::json;

/// A hook that appends "<stage> <status> <mnt ns>" to `log`.
fn hook(stage: &str, log: &std::path::Path) -> serde_json::Value {
    let script = format!(
        "read -r s; st=$(echo \"$s\" | sed 's/.*\"status\":\"\\([a-z]*\\)\".*/\\1/'); echo {stage} $st $(readlink /proc/self/ns/mnt) >> {}",
        log.display()
    );
    json!({"path": "/bin/sh", "args": ["sh", "-c", script]})
}

#[test]
fn hooks_run_in_order_in_the_right_namespaces() {
    let logdir = tempfile::tempdir().unwrap();
    let log = logdir.path().join("hooks.log");
    let start_log = rootfs().join(format!("tmp/start-{}.log", std::process::id()));
    let env = Env::new(&["true"], |c| {
        let in_container = json!({"path": "/bin/sh", "args": ["sh", "-c",
            format!("echo startContainer $(readlink /proc/self/ns/mnt) > /tmp/start-{}.log", std::process::id())]});
        c["hooks"] = json!({
            "prestart": [hook("prestart", &log)],
            "createRuntime": [hook("createRuntime", &log)],
            "createContainer": [hook("createContainer", &log)],
            "startContainer": [in_container],
            "poststart": [hook("poststart", &log)],
            "poststop": [hook("poststop", &log)],
        });
    });
    let id = unique("hooks");
    env.create(&id);
    let pid = env.pid(&id);
    let container_mnt = std::fs::read_link(format!("/proc/{pid}/ns/mnt"))
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let host_mnt = std::fs::read_link("/proc/self/ns/mnt")
        .unwrap()
        .to_string_lossy()
        .into_owned();
    env.ok(&["start", &id]);
    env.wait_status(&id, "stopped");
    env.ok(&["delete", &id]);
    let lines: Vec<String> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    assert_eq!(
        lines,
        [
            format!("prestart created {host_mnt}"),
            format!("createRuntime creating {host_mnt}"),
            format!("createContainer creating {container_mnt}"),
            format!("poststart running {host_mnt}"),
            format!("poststop stopped {host_mnt}"),
        ]
    );
    let started = std::fs::read_to_string(&start_log).unwrap();
    assert_eq!(started.trim(), format!("startContainer {container_mnt}"));
    let _ = std::fs::remove_file(start_log);
}

#[test]
fn failing_hooks() {
    // A failing createRuntime hook fails create and leaves nothing.
    let env = Env::new(&["true"], |c| {
        c["hooks"] = json!({"createRuntime": [{"path": "/bin/sh", "args": ["sh", "-c", "echo no way >&2; exit 2"]}]});
    });
    let out = env.coop(&["create", "-b", env.bundle_path(), &unique("fail")]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("createRuntime hook #0") && stderr(&out).contains("no way"),
        "{}",
        stderr(&out)
    );
    assert!(env.left().is_empty());
    // A hook over its timeout is killed, and that is a failure too.
    let env = Env::new(&["true"], |c| {
        c["hooks"] =
            json!({"prestart": [{"path": "/bin/sleep", "args": ["sleep", "30"], "timeout": 1}]});
    });
    let out = env.coop(&["create", "-b", env.bundle_path(), &unique("slow")]);
    assert!(
        stderr(&out).contains("timed out after 1s"),
        "{}",
        stderr(&out)
    );
    assert!(env.left().is_empty());
    // Failing poststart and poststop hooks are warnings: start and delete succeed, and the
    // remaining hooks still run.
    let logdir = tempfile::tempdir().unwrap();
    let log = logdir.path().join("after.log");
    let env = Env::new(&["true"], |c| {
        let fail = json!({"path": "/bin/false", "args": ["false"]});
        c["hooks"] = json!({"poststart": [fail.clone(), hook("poststart", &log)], "poststop": [fail, hook("poststop", &log)]});
    });
    let id = unique("warn");
    env.create(&id);
    let out = env.coop(&["start", &id]);
    assert!(
        out.status.success() && stderr(&out).contains("poststart hook #0"),
        "{}",
        stderr(&out)
    );
    env.wait_status(&id, "stopped");
    let out = env.coop(&["delete", &id]);
    assert!(
        out.status.success() && stderr(&out).contains("poststop hook #0"),
        "{}",
        stderr(&out)
    );
    assert_eq!(std::fs::read_to_string(&log).unwrap().lines().count(), 2);
}

#[test]
fn hooks_d_definitions_are_injected() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("record.log");
    let program = concat!(env!("CARGO_MANIFEST_DIR"), "/hooks/record-state.sh");
    let def = |stage: &str, when: serde_json::Value| {
        json!({"version": "1.0.0", "hook": {"path": program, "args": ["record-state.sh", stage, log]},
               "when": when, "stages": [stage]})
    };
    let write = |name: &str, v: serde_json::Value| {
        std::fs::write(dir.path().join(name), v.to_string()).unwrap()
    };
    write(
        "10-ann.json",
        def(
            "prestart",
            json!({"annotations": {"^dev\\.coop\\.test$": "^yes$"}}),
        ),
    );
    write(
        "20-cmd.json",
        def("poststop", json!({"commands": ["^true$"]})),
    );
    write(
        "30-nomatch.json",
        def("poststart", json!({"commands": ["^nginx$"]})),
    );
    std::fs::write(dir.path().join("40-broken.json"), "{ nope").unwrap();
    let env = Env::new(&["true"], |c| {
        c["annotations"] = json!({"dev.coop.test": "yes"})
    });
    let id = unique("hooksd");
    let hooks_dir = dir.path().to_str().unwrap();
    let out = env.coop(&[
        "--hooks-dir",
        hooks_dir,
        "run",
        "-b",
        env.bundle_path(),
        &id,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("40-broken.json"),
        "the broken file is named: {}",
        stderr(&out)
    );
    let text = std::fs::read_to_string(&log).unwrap();
    let stages: Vec<&str> = text.lines().map(|l| l.split(' ').next().unwrap()).collect();
    assert_eq!(stages, ["prestart", "poststop"], "{text}");
    assert!(text.contains(&format!("\"id\":\"{id}\"")), "{text}");
}

/// The environment of each stage's hooks, as runc 1.1 gives it: a hook with `env` gets
/// exactly that; without, a hook the runtime runs (prestart, createRuntime, poststart,
/// poststop) gets the runtime's environment, and a hook run in the container gets the
/// container process's (startContainer with HOME added, as the process gets it).
#[test]
fn hook_environment_per_stage_as_runc() {
    let logdir = tempfile::tempdir().unwrap();
    let tag = unique("henv");
    let in_rootfs = rootfs().join("tmp");
    let dump = |stage: &str, dir: &str, with_env: bool| {
        let file = format!("{dir}/{tag}-{stage}{}", if with_env { "-env" } else { "" });
        let mut h = json!({"path": "/bin/sh", "args": ["sh", "-c", format!("env > {file}")]});
        if with_env {
            h["env"] = json!(["A=b"]);
        }
        h
    };
    let host = logdir.path().to_str().unwrap().to_string();
    let env = Env::new(&["true"], |c| {
        c["process"]["env"] = json!(["PATH=/bin:/usr/bin", "FOO=proc"]);
        let mut hooks = json!({});
        for stage in [
            "prestart",
            "createRuntime",
            "createContainer",
            "poststart",
            "poststop",
        ] {
            hooks[stage] = json!([dump(stage, &host, false), dump(stage, &host, true)]);
        }
        hooks["startContainer"] = json!([
            dump("startContainer", "/tmp", false),
            dump("startContainer", "/tmp", true)
        ]);
        c["hooks"] = hooks;
    });
    let st = env
        .cmd(&["run", "-b", env.bundle_path(), &tag])
        .env("HOOKMARK", "runtime")
        .status()
        .unwrap();
    assert!(st.success());
    let read = |stage: &str, with_env: bool| -> Vec<String> {
        let dir = if stage == "startContainer" {
            in_rootfs.clone()
        } else {
            logdir.path().to_path_buf()
        };
        let f = dir.join(format!(
            "{tag}-{stage}{}",
            if with_env { "-env" } else { "" }
        ));
        let text = std::fs::read_to_string(&f).unwrap_or_else(|e| panic!("{stage}: {e}"));
        if stage == "startContainer" {
            let _ = std::fs::remove_file(&f);
        }
        text.lines().map(String::from).collect()
    };
    let has = |v: &[String], kv: &str| v.iter().any(|l| l == kv);
    for stage in [
        "prestart",
        "createRuntime",
        "createContainer",
        "startContainer",
        "poststart",
        "poststop",
    ] {
        let given = read(stage, true);
        assert!(has(&given, "A=b"), "{stage} with env: {given:?}");
        assert!(
            !given
                .iter()
                .any(|l| l.starts_with("HOOKMARK=") || l.starts_with("FOO=")),
            "{stage} with env: {given:?}"
        );
        let default = read(stage, false);
        let runtime = !stage.ends_with("Container");
        assert_eq!(
            has(&default, "HOOKMARK=runtime"),
            runtime,
            "{stage}: {default:?}"
        );
        assert_eq!(has(&default, "FOO=proc"), !runtime, "{stage}: {default:?}");
        if !runtime {
            assert!(has(&default, "PATH=/bin:/usr/bin"), "{stage}: {default:?}");
            assert_eq!(
                has(&default, "HOME=/root"),
                stage == "startContainer",
                "{stage}: {default:?}"
            );
        }
    }
}
