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
