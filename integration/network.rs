//! Networking: a new network namespace has its loopback up (as runc does); a joined one is
//! left as it is.
use crate::common::*;
use serde_json::json;

/// Serve one line on 127.0.0.1:PORT in the background, again after each connection (busybox nc
/// serves one connection, and a client whose stdin ends may close before it has read the line).
fn serve(port: u16) -> String {
    format!("(while :; do echo served | nc -l -p {port}; done) &")
}

/// Connect to 127.0.0.1:PORT until the line arrives (at most about 200 tries); print it.
fn reach(port: u16) -> String {
    format!(
        "for i in $(seq 200); do r=$(nc 127.0.0.1 {port} </dev/null 2>/dev/null); \
         [ \"$r\" = served ] && echo served && exit 0; sleep 0.05; done; \
         nc 127.0.0.1 {port} </dev/null"
    )
}

#[test]
fn new_netns_has_loopback_up() {
    let script = format!(
        "ip link show lo; cat /sys/class/net/lo/operstate; ip addr show lo | grep -o 'inet [0-9.]*'; {} {}",
        serve(5601),
        reach(5601)
    );
    let env = Env::new(&["sh", "-c", &script], |c| {
        let ns = c["linux"]["namespaces"].as_array().unwrap();
        assert!(ns.iter().any(|n| n["type"] == "network"), "{ns:?}");
    });
    let out = env.coop(&["run", "-b", env.bundle_path(), &unique("lo")]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{}", stderr(&out));
    let first = text.lines().next().unwrap_or_default();
    assert!(first.contains("<LOOPBACK,UP,LOWER_UP>"), "{text}");
    assert!(text.contains("\nunknown\n"), "operstate: {text}");
    assert!(text.contains("inet 127.0.0.1"), "{text}");
    assert!(text.ends_with("served\n"), "{text}");
}

/// One member of a sandbox serves on 127.0.0.1, another reaches it.
#[test]
fn sandbox_members_reach_each_other_on_loopback() {
    let pod = unique("lopod");
    let root = Env::new(&["sleep", "100"], |_| {});
    root.ok(&[
        "run",
        "-d",
        "--sandbox",
        &pod,
        "-b",
        root.bundle_path(),
        &pod,
    ]);
    let server = Env::new(&["sh", "-c", &format!("{} sleep 100", serve(5602))], |_| {});
    let sid = format!("{pod}-server");
    root.ok(&[
        "run",
        "-d",
        "--sandbox",
        &pod,
        "-b",
        server.bundle_path(),
        &sid,
    ]);
    let client = Env::new(&["sh", "-c", &reach(5602)], |_| {});
    let out = root.coop(&[
        "run",
        "--sandbox",
        &pod,
        "-b",
        client.bundle_path(),
        &format!("{pod}-client"),
    ]);
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        stderr(&out)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "served\n");
    root.ok(&["delete", "--force", &pod]);
}

/// A network namespace given by path is not coop's: its loopback stays down.
#[test]
fn joined_netns_is_left_as_it_is() {
    let name = unique("coopns");
    let st = std::process::Command::new("ip")
        .args(["netns", "add", &name])
        .status()
        .unwrap();
    assert!(st.success(), "ip netns add");
    struct Del(String);
    impl Drop for Del {
        fn drop(&mut self) {
            let _ = std::process::Command::new("ip")
                .args(["netns", "delete", &self.0])
                .status();
        }
    }
    let _del = Del(name.clone());
    let env = Env::new(&["cat", "/sys/class/net/lo/operstate"], |c| {
        let ns = c["linux"]["namespaces"].as_array_mut().unwrap();
        ns.retain(|n| n["type"] != "network");
        ns.push(json!({"type": "network", "path": format!("/run/netns/{name}")}));
    });
    assert_eq!(
        env.ok(&["run", "-b", env.bundle_path(), &unique("joined")]),
        "down\n"
    );
}

/// The loopback is up before the first hook runs: a prestart hook already sees it.
#[test]
fn loopback_is_up_for_prestart_hooks() {
    let logdir = tempfile::tempdir().unwrap();
    let log = logdir.path().join("lo");
    let script = format!(
        "pid=$(sed 's/.*\"pid\":\\([0-9]*\\).*/\\1/'); nsenter --net=/proc/$pid/ns/net ip -o link show lo > {}",
        log.display()
    );
    let env = Env::new(&["true"], |c| {
        c["hooks"] = json!({"prestart": [{"path": "/bin/sh", "args": ["sh", "-c", script],
            "env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"]}]});
    });
    env.ok(&["run", "-b", env.bundle_path(), &unique("lohook")]);
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("<LOOPBACK,UP,LOWER_UP>"), "{text}");
}
