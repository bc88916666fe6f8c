//! `coop events`: OOM kills are reported when the kernel signals them, not at the next poll.
use crate::common::*;
use serde_json::json;
use std::io::BufRead;
use std::process::Stdio;

#[test]
fn oom_event_arrives_before_the_next_interval() {
    // The allocation starts once `events` is listening (the marker file), is OOM-killed, and
    // the container lives on.
    let env = Env::new(
        &[
            "sh",
            "-c",
            "while [ ! -e /tmp/go ]; do sleep 0.05; done; \
             x=$(head -c 200000000 /dev/zero | tr '\\0' a); sleep 100",
        ],
        |c| c["linux"]["resources"]["memory"] = json!({"limit": 33554432, "swap": 33554432}),
    );
    let id = unique("oomev");
    env.ok(&["run", "-d", "-b", env.bundle_path(), &id]);
    // An interval far longer than the test may take: an oom line must come from the kernel's
    // notification, not from the periodic poll.
    let mut events = env
        .cmd(&["events", "--interval", "300s", &id])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(events.stdout.take().unwrap()).lines();
    let first: serde_json::Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    assert_eq!(first["type"], "stats", "{first}");
    let pid = env.pid(&id);
    std::fs::write(format!("/proc/{pid}/root/tmp/go"), "").unwrap();
    // A guard against hanging, not a timing assertion: kill the reader after a minute.
    let events_pid = events.id() as i32;
    let guard = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_secs(60));
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(events_pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    });
    let next: serde_json::Value = serde_json::from_str(
        &lines
            .next()
            .expect("events ended without reporting the OOM kill")
            .unwrap(),
    )
    .unwrap();
    assert_eq!(next, json!({"type": "oom", "id": id}));
    let _ = events.kill();
    let _ = events.wait();
    drop(guard);
    env.ok(&["delete", "--force", &id]);
}
