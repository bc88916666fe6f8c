//! Bad input is refused before anything starts, and the host is never changed (issue 11,
//! part 3; docs/input-validation.md lists every check). Each refusal: a non-zero exit, one line
//! naming the field and the cause, and nothing left (no directory under --root, no cgroup, no
//! process); for sysctls, the host's value unchanged.
use crate::common::*;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

/// Marks the container's process (and coop's own, whose command line holds the id) so that a
/// leftover can be found: `COOP_IT_MARK=<id>` in its environment.
fn mark(c: &mut Value, id: &str) {
    c["process"]["env"]
        .as_array_mut()
        .unwrap()
        .push(json!(format!("COOP_IT_MARK={id}")));
}

/// Processes whose command line has the argument `id` or whose environment has its mark.
fn processes_with(id: &str) -> Vec<i32> {
    let env_mark = format!("COOP_IT_MARK={id}");
    let mut found = vec![];
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if pid == std::process::id() as i32 || !process_exists(pid) {
            continue;
        }
        let has = |file: &str, want: &str| {
            std::fs::read(e.path().join(file))
                .unwrap_or_default()
                .split(|b| *b == 0)
                .any(|a| a == want.as_bytes())
        };
        if has("cmdline", id) || has("environ", &env_mark) {
            found.push(pid);
        }
    }
    found
}

/// Nothing of container `id` is left: no state directory, no cgroup, no process.
fn nothing_left(env: &Env, id: &str) {
    assert!(env.left().is_empty(), "left under --root: {:?}", env.left());
    for d in default_cgroup_dirs(id) {
        assert!(!d.exists(), "cgroup {} left behind", d.display());
    }
    assert_eq!(processes_with(id), Vec::<i32>::new(), "processes left");
}

/// The command fails with one line on stderr that contains every one of `want`.
fn fails_with(out: &std::process::Output, want: &[&str]) {
    let err = stderr(out);
    assert!(!out.status.success(), "succeeded; stderr: {err}");
    assert_eq!(err.lines().count(), 1, "not one line: {err}");
    for w in want {
        assert!(err.contains(w), "want {w:?} in {err:?}");
    }
}

/// A bundle running `args`, patched, whose process carries the mark of `id`.
fn bundle(id: &str, args: &[&str], patch: impl FnOnce(&mut Value)) -> Env {
    Env::new(args, |c| {
        patch(c);
        mark(c, id);
    })
}

/// `create` of a config patched by `patch` is refused with `want` and leaves nothing.
fn create_refused(patch: impl FnOnce(&mut Value), want: &[&str]) {
    let id = unique("val");
    let env = bundle(&id, &["true"], patch);
    let out = env.coop(&["create", "--bundle", env.bundle_path(), &id]);
    fails_with(&out, want);
    nothing_left(&env, &id);
}

/// Puts a host file back as it was, even when the test fails (a regression writes it).
struct Restore {
    path: PathBuf,
    value: Vec<u8>,
}

impl Restore {
    fn new(path: impl AsRef<Path>) -> Restore {
        let path = path.as_ref().to_path_buf();
        let value = std::fs::read(&path).unwrap();
        Restore { path, value }
    }

    fn unchanged(&self) {
        assert_eq!(
            std::fs::read(&self.path).unwrap(),
            self.value,
            "the host's {} changed",
            self.path.display()
        );
    }
}

impl Drop for Restore {
    fn drop(&mut self) {
        let _ = std::fs::write(&self.path, &self.value);
    }
}

fn without_ns(c: &mut Value, typ: &str) {
    c["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .retain(|n| n["type"] != typ);
}

fn set_ns(c: &mut Value, ns: Value) {
    let typ = ns["type"].clone();
    let list = c["linux"]["namespaces"].as_array_mut().unwrap();
    list.retain(|n| n["type"] != typ);
    list.push(ns);
}

/// A sysctl that would be written outside the container's own namespaces is refused and the
/// host's value stays as it was. `value` differs from any value the host has.
fn sysctl_refused(key: &str, value: &str, patch: impl FnOnce(&mut Value), want: &str) {
    let host = Restore::new(Path::new("/proc/sys").join(key.replace('.', "/")));
    create_refused(
        |c| {
            patch(c);
            c["linux"]["sysctl"] = json!({ key: value });
        },
        &[&format!("config.json: \"linux.sysctl\" {key:?}"), want],
    );
    host.unchanged();
}

#[test]
fn sysctl_not_namespaced_is_refused() {
    let now: u32 = read_trimmed("/proc/sys/kernel/printk_ratelimit")
        .parse()
        .unwrap();
    sysctl_refused(
        "kernel.printk_ratelimit",
        &(now + 1).to_string(),
        |_| {},
        "is not in a separate kernel namespace",
    );
}

#[test]
fn sysctl_net_without_network_namespace_is_refused() {
    let now: u32 = read_trimmed("/proc/sys/net/core/somaxconn")
        .parse()
        .unwrap();
    sysctl_refused(
        "net.core.somaxconn",
        &(now + 1).to_string(),
        |c| without_ns(c, "network"),
        "needs the container's own network namespace",
    );
}

#[test]
fn sysctl_net_in_joined_host_network_namespace_is_refused() {
    // coop runs in this test's network namespace: joining it by path is the host's.
    let now: u32 = read_trimmed("/proc/sys/net/core/somaxconn")
        .parse()
        .unwrap();
    let path = format!("/proc/{}/ns/net", std::process::id());
    sysctl_refused(
        "net.core.somaxconn",
        &(now + 1).to_string(),
        |c| set_ns(c, json!({"type": "network", "path": path})),
        "needs the container's own network namespace",
    );
}

#[test]
fn sysctl_ipc_without_ipc_namespace_is_refused() {
    let now: u64 = read_trimmed("/proc/sys/kernel/msgmnb").parse().unwrap();
    sysctl_refused(
        "kernel.msgmnb",
        &(now + 1).to_string(),
        |c| without_ns(c, "ipc"),
        "needs the container's own ipc namespace",
    );
}

/// runc lets a config that joins the host's own ipc namespace by path set its sysctls (and so
/// changes the host's); coop refuses, as runc does for the network namespace.
#[test]
fn sysctl_ipc_in_joined_host_ipc_namespace_is_refused() {
    let now: u64 = read_trimmed("/proc/sys/kernel/msgmnb").parse().unwrap();
    let path = format!("/proc/{}/ns/ipc", std::process::id());
    sysctl_refused(
        "kernel.msgmnb",
        &(now + 1).to_string(),
        |c| set_ns(c, json!({"type": "ipc", "path": path})),
        "needs the container's own ipc namespace",
    );
}

#[test]
fn sysctl_mqueue_without_ipc_namespace_is_refused() {
    let now: u64 = read_trimmed("/proc/sys/fs/mqueue/msg_max").parse().unwrap();
    sysctl_refused(
        "fs.mqueue.msg_max",
        &(now + 1).to_string(),
        |c| without_ns(c, "ipc"),
        "needs the container's own ipc namespace",
    );
}

#[test]
fn sysctl_domainname_without_uts_namespace_is_refused() {
    sysctl_refused(
        "kernel.domainname",
        "coop-it-not-the-hosts",
        |c| {
            without_ns(c, "uts");
            c["hostname"] = json!(null);
        },
        "needs the container's own uts namespace",
    );
}

#[test]
fn sysctl_hostname_conflicts_with_the_hostname_field() {
    sysctl_refused(
        "kernel.hostname",
        "coop-it-not-the-hosts",
        |_| {},
        "conflicts with the \"hostname\" field",
    );
}

/// The refusals leave what runc allows working: sysctls of the container's own namespaces are
/// set inside it.
#[test]
fn sysctls_of_own_namespaces_are_set_inside() {
    let id = unique("val");
    let env = bundle(
        &id,
        &[
            "sh",
            "-c",
            "cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/shm_rmid_forced /proc/sys/kernel/domainname",
        ],
        |c| {
            c["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1",
                "kernel.shm_rmid_forced": "1", "kernel.domainname": "inside"})
        },
    );
    let out = env.ok(&["run", "--bundle", env.bundle_path(), &id]);
    assert_eq!(out, "1\n1\ninside\n");
}

#[test]
fn uid_out_of_range_is_refused() {
    create_refused(
        |c| {
            c["process"]["user"]["uid"] = json!(4294967295u32);
            c["process"]["args"] = json!(["id", "-u"]);
        },
        &["config.json: \"process.user.uid\" 4294967295 is out of range (0-2147483647)"],
    );
}

#[test]
fn gid_out_of_range_is_refused() {
    create_refused(
        |c| c["process"]["user"]["gid"] = json!(2147483648u32),
        &["config.json: \"process.user.gid\" 2147483648 is out of range (0-2147483647)"],
    );
}

#[test]
fn additional_gid_out_of_range_is_refused() {
    create_refused(
        |c| c["process"]["user"]["additionalGids"] = json!([10, 4294967295u32]),
        &["config.json: \"process.user.additionalGids[1]\" 4294967295 is out of range"],
    );
}

#[test]
fn env_without_equals_is_refused() {
    create_refused(
        |c| c["process"]["env"] = json!(["PATH=/bin", "FOO"]),
        &["config.json: \"process.env[1]\" \"FOO\" has no \"=\""],
    );
}

#[test]
fn env_with_empty_name_is_refused() {
    create_refused(
        |c| c["process"]["env"] = json!(["=value"]),
        &["config.json: \"process.env[0]\" \"=value\" has an empty name"],
    );
}

#[test]
fn nul_in_args_is_refused() {
    create_refused(
        |c| c["process"]["args"] = json!(["echo", "a\u{0}b"]),
        &["config.json: \"process.args[1]\" \"a\\0b\" contains a NUL byte"],
    );
}

#[test]
fn nul_in_env_is_refused() {
    create_refused(
        |c| c["process"]["env"] = json!(["A=x\u{0}y"]),
        &["config.json: \"process.env[0]\" \"A=x\\0y\" contains a NUL byte"],
    );
}

#[test]
fn nul_in_cwd_is_refused() {
    create_refused(
        |c| c["process"]["cwd"] = json!("/t\u{0}mp"),
        &["config.json: \"process.cwd\" \"/t\\0mp\" contains a NUL byte"],
    );
}

#[test]
fn nul_in_hostname_is_refused() {
    create_refused(
        |c| c["hostname"] = json!("a\u{0}b"),
        &["config.json: \"hostname\" \"a\\0b\" contains a NUL byte"],
    );
}

#[test]
fn nul_in_domainname_is_refused() {
    create_refused(
        |c| c["domainname"] = json!("a\u{0}b"),
        &["config.json: \"domainname\" \"a\\0b\" contains a NUL byte"],
    );
}

#[test]
fn nul_in_mount_destination_is_refused() {
    create_refused(
        |c| {
            c["mounts"]
                .as_array_mut()
                .unwrap()
                .push(json!({"destination": "/m\u{0}nt", "type": "tmpfs", "source": "tmpfs"}))
        },
        &[
            "config.json: \"mounts[",
            "].destination\" \"/m\\0nt\" contains a NUL byte",
        ],
    );
}

#[test]
fn nul_in_mount_source_is_refused() {
    create_refused(
        |c| {
            c["mounts"].as_array_mut().unwrap().push(
                json!({"destination": "/mnt", "type": "bind", "source": "/t\u{0}mp",
                    "options": ["rbind"]}),
            )
        },
        &[
            "config.json: \"mounts[",
            "].source\" \"/t\\0mp\" contains a NUL byte",
        ],
    );
}

/// runc takes these words but the kernel then refuses the mount (EINVAL); coop refuses them
/// up front. Bind mounts, where coop used to drop them silently.
#[test]
fn broken_recursive_atime_options_are_refused() {
    for word in ["ratime", "rnostrictatime"] {
        create_refused(
            |c| {
                c["mounts"].as_array_mut().unwrap().push(
                    json!({"destination": "/mnt", "type": "bind", "source": "/tmp",
                        "options": ["rbind", word]}),
                )
            },
            &[
                "config.json: \"mounts[",
                &format!("].options\": mount option {word:?} is refused"),
            ],
        );
    }
}

/// A directory holding `target` and `link -> target`.
fn symlink_dir() -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("coop-it-symlinks")
        .tempdir()
        .unwrap();
    std::fs::write(dir.path().join("target"), "followed\n").unwrap();
    std::os::unix::fs::symlink("target", dir.path().join("link")).unwrap();
    dir
}

/// `cat /mnt/link` in a container where the directory is bound at /mnt with `options`.
fn cat_link(dir: &Path, options: &[&str]) -> std::process::Output {
    let id = unique("val");
    let env = bundle(&id, &["cat", "/mnt/link"], |c| {
        c["mounts"]
            .as_array_mut()
            .unwrap()
            .push(json!({"destination": "/mnt", "type": "bind", "source": dir, "options": options}))
    });
    let out = env.coop(&["run", "--bundle", env.bundle_path(), &id]);
    nothing_left(&env, &id);
    out
}

#[test]
fn nosymfollow_bind_does_not_follow_symlinks() {
    let dir = symlink_dir();
    let out = cat_link(dir.path(), &["rbind"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "followed\n");
    for opts in [
        &["rbind", "nosymfollow"][..],
        &["rbind", "rnosymfollow"],
        &["bind", "ro", "nosymfollow"],
    ] {
        let out = cat_link(dir.path(), opts);
        assert!(!out.status.success(), "{opts:?}: followed the link");
        assert!(
            stderr(&out).contains("Too many levels of symbolic links"),
            "{opts:?}: want ELOOP, got {}",
            stderr(&out)
        );
    }
    // A later symfollow undoes nosymfollow.
    let out = cat_link(dir.path(), &["rbind", "nosymfollow", "symfollow"]);
    assert_eq!(stdout(&out), "followed\n", "{}", stderr(&out));
}

#[test]
fn features_lists_the_mount_options_coop_accepts() {
    let env = Env::new(&["true"], |_| {});
    let f: Value = serde_json::from_str(&env.ok(&["features"])).unwrap();
    let words: Vec<&str> = f["mountOptions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_str().unwrap())
        .collect();
    for w in [
        "nosymfollow",
        "symfollow",
        "rnosymfollow",
        "lazytime",
        "rbind",
        "idmap",
    ] {
        assert!(words.contains(&w), "{w} missing from {words:?}");
    }
    for w in ["ratime", "rnostrictatime"] {
        assert!(!words.contains(&w), "{w} is refused but listed");
    }
}

/// A running container for exec tests; its init carries the mark of `id`.
fn running(id: &str) -> Env {
    let env = bundle(id, &["sleep", "1000"], |_| {});
    env.ok(&["run", "--detach", "--bundle", env.bundle_path(), id]);
    env
}

/// exec with `args` is refused with `want`, and nothing but init runs in the container. The
/// command is `sleep 1000`: pass `--detach` where a regression would run it in the foreground.
fn exec_refused(env: &Env, id: &str, args: &[&str], want: &[&str]) {
    let mark = unique("exec-mark");
    let mut a = vec!["exec"];
    a.extend_from_slice(args);
    a.extend_from_slice(&[id, "sh", "-c", "sleep 1000", &mark]);
    fails_with(&env.coop(&a), want);
    assert_eq!(
        processes_with(&mark),
        Vec::<i32>::new(),
        "exec left a process"
    );
    assert_eq!(processes_with(id), vec![env.pid(id)], "only init is left");
}

#[test]
fn exec_relative_cwd_is_refused() {
    let id = unique("val");
    let env = running(&id);
    exec_refused(
        &env,
        &id,
        &["--detach", "--cwd", "tmp"],
        &["\"process.cwd\" \"tmp\" must be an absolute path"],
    );
}

#[test]
fn exec_flags_are_validated_like_config() {
    let id = unique("val");
    let env = running(&id);
    exec_refused(
        &env,
        &id,
        &["--detach", "--user", "4294967295"],
        &["\"process.user.uid\" 4294967295 is out of range"],
    );
    exec_refused(
        &env,
        &id,
        &["--detach", "--env", "NOEQUALS"],
        &["\"NOEQUALS\" has no \"=\""],
    );
}

#[test]
fn exec_process_file_is_validated_like_config() {
    let id = unique("val");
    let env = running(&id);
    let user = json!({"uid": 0, "gid": 0});
    let cases = [
        (
            json!({"env": ["FOO"]}),
            "\"process.env[0]\" \"FOO\" has no \"=\"",
        ),
        (
            json!({"user": {"uid": 4294967295u32, "gid": 0}}),
            "\"process.user.uid\" 4294967295 is out of range",
        ),
        (
            json!({"env": ["A=a\u{0}b"]}),
            "\"process.env[0]\" \"A=a\\0b\" contains a NUL byte",
        ),
        (
            json!({"cwd": "tmp"}),
            "\"process.cwd\" \"tmp\" must be an absolute path",
        ),
    ];
    for (patch, want) in cases {
        // A process that would keep running, marked so that a leftover is found.
        let mark = unique("exec-mark");
        let mut process = json!({"args": ["sh", "-c", "sleep 1000", mark], "cwd": "/",
            "user": user});
        for (k, v) in patch.as_object().unwrap() {
            process[k] = v.clone();
        }
        let file = env.bundle.path().join("process.json");
        std::fs::write(&file, process.to_string()).unwrap();
        let out = env.coop(&["exec", "--detach", "--process", file.to_str().unwrap(), &id]);
        fails_with(&out, &["invalid exec process", want]);
        assert_eq!(
            processes_with(&mark),
            Vec::<i32>::new(),
            "exec left a process"
        );
        assert_eq!(processes_with(&id), vec![env.pid(&id)], "only init is left");
    }
}

#[test]
fn exec_pid_file_in_missing_directory_leaves_no_process() {
    let id = unique("val");
    let env = running(&id);
    let pid_file = env.bundle.path().join("missing/dir/exec.pid");
    for detach in [true, false] {
        let mut args = vec!["--pid-file", pid_file.to_str().unwrap()];
        if detach {
            args.push("--detach");
        }
        exec_refused(
            &env,
            &id,
            &args,
            &["write pid file", "no such file or directory"],
        );
    }
}

#[test]
fn init_oom_killed_during_setup_is_reported() {
    create_refused(
        |c| c["linux"]["resources"] = json!({"memory": {"limit": 1}}),
        &["container init was OOM-killed during setup (memory limit 1 bytes)"],
    );
}
