//! runtime-spec 1.3 fields, each seen from inside a real container (or refused clearly).
use crate::common::*;
use serde_json::{json, Value};
use std::process::Command;

/// `coop run` of `script` (sh -c) with `patch`; returns (success, stdout, stderr).
fn run_sh(script: &str, patch: impl FnOnce(&mut Value)) -> (bool, String, String) {
    let env = Env::new(&["sh", "-c", script], patch);
    let out = env.coop(&["run", "-b", env.bundle_path(), &unique("s13")]);
    assert!(env.left().is_empty(), "run left {:?}", env.left());
    (out.status.success(), stdout(&out), stderr(&out))
}

/// A create that must fail: its message contains `want`, and nothing is left behind.
fn refused(patch: impl FnOnce(&mut Value), want: &str) {
    let env = Env::new(&["true"], patch);
    let id = unique("s13no");
    let out = env.coop(&["create", "-b", env.bundle_path(), &id]);
    assert!(!out.status.success(), "create succeeded; wanted {want:?}");
    let err = stderr(&out);
    assert!(err.contains(want), "want {want:?} in {err}");
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    assert!(env.left().is_empty(), "left {:?}", env.left());
    for d in default_cgroup_dirs(&id) {
        assert!(!d.exists(), "{} left behind", d.display());
    }
}

fn status_field(status: &str, key: &str) -> String {
    status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{key}:")))
        .unwrap_or_else(|| panic!("no {key} in {status}"))
        .trim()
        .to_string()
}

#[test]
fn io_priority_is_set_for_init_and_exec() {
    let env = Env::new(&["sleep", "60"], |c| {
        c["process"]["ioPriority"] = json!({"class": "IOPRIO_CLASS_IDLE", "priority": 0});
    });
    let id = unique("s13io");
    env.ok(&["run", "-d", "-b", env.bundle_path(), &id]);
    // busybox ionice prints "idle" for class 3.
    let out = env.ok(&["exec", &id, "ionice", "-p", "1"]);
    assert_eq!(out.trim(), "idle", "{out}");
    let proc = json!({"args": ["ionice"], "cwd": "/", "user": {"uid": 0, "gid": 0},
        "ioPriority": {"class": "IOPRIO_CLASS_BE", "priority": 6}});
    let pf = env.bundle.path().join("proc.json");
    std::fs::write(&pf, proc.to_string()).unwrap();
    let out = env.ok(&["exec", "--process", pf.to_str().unwrap(), &id]);
    assert_eq!(out.trim(), "best-effort: prio 6", "{out}");
    env.ok(&["delete", "--force", &id]);
}

#[test]
fn scheduler_policy_and_nice_are_set() {
    let (ok, out, err) = run_sh(
        "grep -E '^policy' /proc/self/sched | tr -d ' '; cut -d' ' -f19 /proc/self/stat",
        |c| c["process"]["scheduler"] = json!({"policy": "SCHED_BATCH", "nice": 7}),
    );
    assert!(ok, "{err}");
    assert_eq!(out, "policy:3\n7\n");
    let (ok, out, err) = run_sh("grep -E '^policy' /proc/self/sched | tr -d ' '", |c| {
        c["process"]["scheduler"] = json!({"policy": "SCHED_IDLE"})
    });
    assert!(ok, "{err}");
    assert_eq!(out, "policy:5\n");
}

#[test]
fn scheduler_errors_are_clear() {
    refused(
        |c| c["process"]["scheduler"] = json!({"policy": "SCHED_ISO"}),
        "process.scheduler.policy SCHED_ISO is not implemented",
    );
    refused(
        |c| c["process"]["scheduler"] = json!({"policy": "SCHED_RR", "priority": 0}),
        "process.scheduler.priority 0 is out of range for SCHED_RR",
    );
    // Under cgroup v1 RT group scheduling the container's cgroup has no realtime budget:
    // the kernel refuses, and the error says so.
    if std::path::Path::new("/sys/fs/cgroup/cpu/cpu.rt_runtime_us").exists() {
        refused(
            |c| c["process"]["scheduler"] = json!({"policy": "SCHED_FIFO", "priority": 10}),
            "process.scheduler: cannot set policy SCHED_FIFO (needs CAP_SYS_NICE",
        );
    }
}

#[test]
fn personality_linux32_shows_i686() {
    let (ok, out, err) = run_sh("uname -m", |c| {
        c["linux"]["personality"] = json!({"domain": "LINUX32"})
    });
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "i686");
    let (ok, out, err) = run_sh("uname -m", |c| {
        c["linux"]["personality"] = json!({"domain": "LINUX"})
    });
    assert!(ok, "{err}");
    assert_eq!(out.trim(), std::env::consts::ARCH);
    // An exec gets the container's personality too.
    let env = Env::new(&["sleep", "60"], |c| {
        c["linux"]["personality"] = json!({"domain": "LINUX32"})
    });
    let id = unique("s13pers");
    env.ok(&["run", "-d", "-b", env.bundle_path(), &id]);
    assert_eq!(env.ok(&["exec", &id, "uname", "-m"]).trim(), "i686");
    env.ok(&["delete", "--force", &id]);
    refused(
        |c| c["linux"]["personality"] = json!({"domain": "LINUX", "flags": ["ADDR_NO_RANDOMIZE"]}),
        "linux.personality.flags",
    );
}

#[test]
fn memory_policy_is_seen_in_numa_maps() {
    if !std::path::Path::new("/proc/self/numa_maps").exists() {
        return skip(
            "memory_policy_is_seen_in_numa_maps",
            "needs a NUMA kernel (/proc/self/numa_maps)",
            "COOP_NO_SKIP",
        );
    }
    // The heap of the process follows the task policy: numa_maps shows it.
    let script = "grep -c ' bind:0 ' /proc/self/numa_maps";
    let (ok, out, err) = run_sh(script, |c| {
        c["linux"]["memoryPolicy"] = json!({"mode": "MPOL_BIND", "nodes": "0"})
    });
    assert!(ok, "{err}");
    assert!(out.trim().parse::<u32>().unwrap() > 0, "{out}");
    let (ok, out, err) = run_sh("grep -c ' interleave' /proc/self/numa_maps", |c| {
        c["linux"]["memoryPolicy"] =
            json!({"mode": "MPOL_INTERLEAVE", "nodes": "0", "flags": ["MPOL_F_STATIC_NODES"]})
    });
    assert!(ok, "{err}");
    assert!(out.trim().parse::<u32>().unwrap() > 0, "{out}");
    // Without a policy: default.
    let (_, out, _) = run_sh("grep -c ' bind:' /proc/self/numa_maps", |_| {});
    assert_eq!(out.trim(), "0");
    // A node the host does not have: the kernel refuses, the error names the field.
    refused(
        |c| c["linux"]["memoryPolicy"] = json!({"mode": "MPOL_BIND", "nodes": "63"}),
        "linux.memoryPolicy: set_mempolicy mode MPOL_BIND nodes \"63\"",
    );
}

#[test]
fn exec_cpu_affinity_final_is_applied() {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let env = Env::new(&["sleep", "60"], |_| {});
    let id = unique("s13aff");
    env.ok(&["run", "-d", "-b", env.bundle_path(), &id]);
    let last = cpus - 1;
    let proc = json!({"args": ["grep", "Cpus_allowed_list", "/proc/self/status"], "cwd": "/",
        "user": {"uid": 0, "gid": 0}, "execCPUAffinity": {"initial": "0", "final": last.to_string()}});
    let pf = env.bundle.path().join("proc.json");
    std::fs::write(&pf, proc.to_string()).unwrap();
    let out = env.ok(&["exec", "--process", pf.to_str().unwrap(), &id]);
    assert_eq!(status_field(&out, "Cpus_allowed_list"), last.to_string());
    // `initial` alone: the process keeps it (the kernel does not change it on the cgroup join).
    let proc = json!({"args": ["grep", "Cpus_allowed_list", "/proc/self/status"], "cwd": "/",
        "user": {"uid": 0, "gid": 0}, "execCPUAffinity": {"initial": last.to_string()}});
    std::fs::write(&pf, proc.to_string()).unwrap();
    let out = env.ok(&["exec", "--process", pf.to_str().unwrap(), &id]);
    assert_eq!(status_field(&out, "Cpus_allowed_list"), last.to_string());
    // coop's own affinity is untouched by `initial`: a plain exec runs anywhere.
    let out = env.ok(&[
        "exec",
        &id,
        "grep",
        "Cpus_allowed_list",
        "/proc/self/status",
    ]);
    assert_eq!(
        status_field(&out, "Cpus_allowed_list"),
        if cpus == 1 {
            "0".to_string()
        } else {
            format!("0-{last}")
        }
    );
    let proc = json!({"args": ["true"], "cwd": "/", "user": {"uid": 0, "gid": 0},
        "execCPUAffinity": {"final": "0-"}});
    std::fs::write(&pf, proc.to_string()).unwrap();
    let out = env.coop(&["exec", "--process", pf.to_str().unwrap(), &id]);
    assert!(!out.status.success());
    env.ok(&["delete", "--force", &id]);
}

/// A veth pair made by the test, removed when dropped.
struct Veth(String);

impl Veth {
    fn new(tag: &str, addr: &str) -> Veth {
        let name = format!("c13{tag}{}", std::process::id() % 100000);
        let peer = format!("{name}p");
        let _ = Command::new("ip")
            .args(["link", "del", &name])
            .stderr(std::process::Stdio::null())
            .status();
        let ok = Command::new("ip")
            .args(["link", "add", &name, "type", "veth", "peer", "name", &peer])
            .status()
            .unwrap()
            .success();
        assert!(ok, "ip link add veth");
        assert!(Command::new("ip")
            .args(["addr", "add", addr, "dev", &name])
            .status()
            .unwrap()
            .success());
        Veth(name)
    }
}

impl Drop for Veth {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["link", "del", &self.0])
            .stderr(std::process::Stdio::null())
            .status();
    }
}

/// A named network namespace made by the test, removed when dropped.
struct NetNs(String);

impl NetNs {
    fn new(name: String) -> NetNs {
        let ok = Command::new("ip")
            .args(["netns", "add", &name])
            .status()
            .unwrap()
            .success();
        assert!(ok, "ip netns add {name}");
        NetNs(name)
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

fn host_has_link(name: &str) -> bool {
    std::path::Path::new("/sys/class/net").join(name).exists()
}

#[test]
fn net_device_moves_in_renamed_with_its_address_and_up() {
    let veth = Veth::new("a", "10.213.77.1/24");
    let script = "cat /sys/class/net/ctr13/operstate /sys/class/net/ctr13/flags; ip -4 addr show ctr13 | grep -o 'inet [0-9./]*'";
    let (ok, out, err) = run_sh(script, |c| {
        c["linux"]["netDevices"] = json!({veth.0.clone(): {"name": "ctr13"}});
    });
    assert!(ok, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    // A veth whose peer is elsewhere is "lowerlayerdown", but IFF_UP (0x1) is set.
    let flags = u32::from_str_radix(lines[1].trim_start_matches("0x"), 16).unwrap();
    assert!(flags & 1 == 1, "{out}");
    assert_eq!(lines[2], "inet 10.213.77.1/24", "{out}");
    // The container's namespace died with it, and a veth dies with its namespace.
    assert!(!host_has_link(&veth.0));
}

#[test]
fn net_device_goes_back_to_the_host_from_a_joined_namespace() {
    let veth = Veth::new("b", "10.213.78.1/24");
    let ns = NetNs::new(format!("coop13-{}", std::process::id()));
    let ns = &ns.0;
    let env = Env::new(&["sleep", "60"], |c| {
        c["linux"]["netDevices"] = json!({veth.0.clone(): {"name": "in13"}});
        let nss = c["linux"]["namespaces"].as_array_mut().unwrap();
        nss.retain(|n| n["type"] != "network");
        nss.push(json!({"type": "network", "path": format!("/run/netns/{ns}")}));
    });
    let id = unique("s13ns");
    env.ok(&["run", "-d", "-b", env.bundle_path(), &id]);
    assert!(!host_has_link(&veth.0));
    let out = env.ok(&["exec", &id, "ls", "/sys/class/net"]);
    assert!(out.contains("in13"), "{out}");
    env.ok(&["delete", "--force", &id]);
    let back = host_has_link(&veth.0);
    let addr = Command::new("ip")
        .args(["-4", "addr", "show", &veth.0])
        .output()
        .unwrap();
    assert!(back, "{} is not back on the host", veth.0);
    assert!(
        String::from_utf8_lossy(&addr.stdout).contains("10.213.78.1/24"),
        "{}",
        String::from_utf8_lossy(&addr.stdout)
    );
}

#[test]
fn net_device_errors_are_clear() {
    refused(
        |c| c["linux"]["netDevices"] = json!({"nosuchdev13": {}}),
        "linux.netDevices.nosuchdev13: no network interface \"nosuchdev13\" on the host",
    );
    refused(
        |c| c["linux"]["netDevices"] = json!({"a/b": {}}),
        "linux.netDevices: invalid interface name \"a/b\"",
    );
}

#[test]
fn pids_limit_zero_means_zero() {
    let env = Env::new(&["true"], |c| {
        c["linux"]["resources"]["pids"] = json!({"limit": 0});
    });
    let id = unique("s13pids");
    env.create(&id);
    let dir = default_cgroup_dirs(&id)
        .into_iter()
        .find(|d| d.join("pids.max").exists())
        .or_else(|| Some(v2_dir(&id)))
        .unwrap();
    assert_eq!(read_trimmed(dir.join("pids.max")), "0");
    // update: a "pids" without "limit" changes nothing, 0 is 0, -1 is max.
    let rf = env.bundle.path().join("r.json");
    for (json, want) in [
        (r#"{"pids":{"limit":10}}"#, "10"),
        (r#"{"pids":{}}"#, "10"),
        (r#"{"pids":{"limit":0}}"#, "0"),
        (r#"{"pids":{"limit":-1}}"#, "max"),
    ] {
        std::fs::write(&rf, json).unwrap();
        env.ok(&["update", "-r", rf.to_str().unwrap(), &id]);
        assert_eq!(read_trimmed(dir.join("pids.max")), want, "{json}");
    }
    env.ok(&["delete", "--force", &id]);
}

#[test]
fn intel_rdt_without_resctrl_is_refused() {
    if std::path::Path::new("/sys/fs/resctrl/schemata").exists() {
        return skip(
            "intel_rdt_without_resctrl_is_refused",
            "resctrl is mounted here",
            "COOP_NO_SKIP",
        );
    }
    refused(
        |c| c["linux"]["intelRdt"] = json!({"closID": "x", "l3CacheSchema": "L3:0=f"}),
        "\"linux.intelRdt\" needs the resctrl filesystem",
    );
}

/// A directory with a file owned by root (0:0) on the host.
fn owned_by_root() -> tempfile::TempDir {
    let d = tempfile::Builder::new()
        .prefix("coop-it-idmap")
        .tempdir()
        .unwrap();
    std::fs::write(d.path().join("f"), "x").unwrap();
    d
}

#[test]
fn idmapped_mount_without_a_user_namespace() {
    let dir = owned_by_root();
    let (ok, out, err) = run_sh("stat -c '%u %g' /idm/f; stat -c '%u %g' /plain/f", |c| {
        let m = c["mounts"].as_array_mut().unwrap();
        m.push(
            json!({"destination": "/idm", "type": "bind", "source": dir.path(),
            "options": ["bind", "idmap"],
            "uidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}],
            "gidMappings": [{"containerID": 0, "hostID": 2000, "size": 1}]}),
        );
        m.push(
            json!({"destination": "/plain", "type": "bind", "source": dir.path(),
            "options": ["bind"]}),
        );
    });
    assert!(ok, "{err}");
    assert_eq!(out, "1000 2000\n0 0\n");
}

#[test]
fn idmapped_mount_with_the_containers_user_namespace() {
    let dir = owned_by_root();
    let (ok, out, err) = run_sh("stat -c '%u %g' /root/f; stat -c '%u %g' /tmp/f", |c| {
        c["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "user"}));
        c["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
        c["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
        let m = c["mounts"].as_array_mut().unwrap();
        // The option alone: the container's own mapping, so host root's file is root's here.
        m.push(
            json!({"destination": "/root", "type": "bind", "source": dir.path(),
            "options": ["rbind", "ridmap"]}),
        );
        m.push(
            json!({"destination": "/tmp", "type": "bind", "source": dir.path(),
            "options": ["bind"]}),
        );
    });
    assert!(ok, "{err}");
    assert_eq!(out, "0 0\n65534 65534\n");
}

#[test]
fn idmapped_mount_errors_are_clear() {
    refused(
        |c| {
            c["mounts"]
                .as_array_mut()
                .unwrap()
                .push(json!({"destination": "/m", "type": "bind",
                "source": "/tmp", "options": ["bind", "idmap"]}))
        },
        "needs uidMappings and gidMappings, or a user namespace",
    );
    refused(
        |c| {
            c["mounts"]
                .as_array_mut()
                .unwrap()
                .push(json!({"destination": "/m", "type": "tmpfs",
                "source": "tmpfs", "options": ["idmap"],
                "uidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}],
                "gidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}]}))
        },
        "idmapped mounts are only supported for bind mounts",
    );
    refused(
        |c| {
            c["mounts"]
                .as_array_mut()
                .unwrap()
                .push(json!({"destination": "/m", "type": "bind",
                "source": "/tmp", "options": ["bind"],
                "uidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}]}))
        },
        "uidMappings and gidMappings must be given together",
    );
}

#[test]
fn oci_version_range() {
    let out = Command::new(coop_bin()).arg("--version").output().unwrap();
    assert!(stdout(&out).contains("spec: 1.3.0"), "{}", stdout(&out));
    for v in ["1.0.0", "1.2.1", "1.3.0"] {
        let (ok, _, err) = run_sh("true", |c| c["ociVersion"] = json!(v));
        assert!(ok, "{v}: {err}");
    }
    refused(|c| c["ociVersion"] = json!("2.0.0"), "major version 2");
    refused(
        |c| c["ociVersion"] = json!("1.3"),
        "is not a SemVer version",
    );
    refused(|c| c["ociVersion"] = json!("1.4.0"), "is newer than");
}

#[test]
fn hooks_get_the_state_with_the_runtime_spec_version() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("state.json");
    let env = Env::new(&["true"], |c| {
        c["annotations"] = json!({"a13": "b"});
        c["hooks"] = json!({"createRuntime": [{"path": "/bin/sh",
            "args": ["sh", "-c", format!("cat > {}", log.display())]}]});
    });
    let id = unique("s13hook");
    env.create(&id);
    let st: Value = serde_json::from_slice(&std::fs::read(&log).unwrap()).unwrap();
    assert_eq!(st["ociVersion"], "1.3.0");
    assert_eq!(st["id"], json!(id));
    assert_eq!(st["status"], "creating");
    assert_eq!(st["pid"], json!(env.pid(&id)));
    assert_eq!(st["annotations"]["a13"], "b");
    env.ok(&["delete", "--force", &id]);
}

/// The seccomp agent gets the state built by the same code as the hooks' for an exec, with
/// the exec's own pid as the host sees it.
#[test]
fn seccomp_agent_gets_the_exec_state() {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    let dir = tempfile::tempdir().unwrap();
    let sock_path = dir.path().join("agent.sock");
    let listener = std::os::unix::net::UnixListener::bind(&sock_path).unwrap();
    let env = Env::new(&["sleep", "60"], |c| {
        c["annotations"] = json!({"k13": "v"});
        c["linux"]["seccomp"] = json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "listenerPath": sock_path,
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}]
        });
    });
    let agent = std::thread::spawn(move || {
        let mut states = vec![];
        // The first connection is init's, the second the exec's.
        for _ in 0..2 {
            let (conn, _) = listener.accept().unwrap();
            let mut buf = vec![0u8; 65536];
            let mut iov = [std::io::IoSliceMut::new(&mut buf)];
            let mut cmsg = nix::cmsg_space!([std::os::fd::RawFd; 1]);
            let msg = recvmsg::<()>(
                conn.as_raw_fd(),
                &mut iov,
                Some(&mut cmsg),
                MsgFlags::empty(),
            )
            .unwrap();
            let mut fd = None;
            for c in msg.cmsgs().unwrap() {
                if let ControlMessageOwned::ScmRights(fds) = c {
                    // SAFETY: the fd was just received and is owned by nobody else.
                    fd = Some(unsafe { OwnedFd::from_raw_fd(fds[0]) });
                }
            }
            let n = msg.bytes;
            let state: Value = serde_json::from_slice(&buf[..n]).unwrap();
            states.push((state, fd.expect("the listener fd")));
        }
        // Answer the exec's mkdir.
        let fd = &states[1].1;
        // SAFETY: zeroed plain-data structs for the seccomp notify ioctls, on a valid fd.
        let mut req: libc::seccomp_notif = unsafe { std::mem::zeroed() };
        assert_eq!(
            unsafe { libc::ioctl(fd.as_raw_fd(), libc::SECCOMP_IOCTL_NOTIF_RECV, &mut req) },
            0
        );
        // SAFETY: seccomp_notif_resp is plain integers; all zeroes is a valid value.
        let mut resp: libc::seccomp_notif_resp = unsafe { std::mem::zeroed() };
        resp.id = req.id;
        resp.error = -libc::ENOMEDIUM;
        // SAFETY: as above.
        unsafe { libc::ioctl(fd.as_raw_fd(), libc::SECCOMP_IOCTL_NOTIF_SEND, &mut resp) };
        states.into_iter().map(|(s, _)| s).collect::<Vec<_>>()
    });
    let id = unique("s13agent");
    env.ok(&["run", "-d", "-b", env.bundle_path(), &id]);
    let init_pid = env.pid(&id);
    let pf = env.bundle.path().join("exec.pid");
    let out = env.coop(&[
        "exec",
        "--pid-file",
        pf.to_str().unwrap(),
        &id,
        "mkdir",
        "/x13",
    ]);
    let states = agent.join().unwrap();
    assert!(stderr(&out).contains("No medium found"), "{}", stderr(&out));
    let exec_pid: i64 = read_trimmed(&pf).parse().unwrap();
    // The message's pid is the filtered process's; the state's is init's (as runc).
    for (st, pid, status) in [
        (&states[0], init_pid as i64, "creating"),
        (&states[1], exec_pid, "running"),
    ] {
        assert_eq!(st["ociVersion"], "1.3.0", "{st}");
        assert_eq!(st["pid"], json!(pid), "{st}");
        assert_eq!(st["state"]["ociVersion"], "1.3.0", "{st}");
        assert_eq!(st["state"]["id"], json!(id), "{st}");
        assert_eq!(st["state"]["pid"], json!(init_pid), "{st}");
        assert_eq!(st["state"]["status"], status, "{st}");
        assert_eq!(st["state"]["bundle"], json!(env.bundle_path()), "{st}");
        assert_eq!(st["state"]["annotations"]["k13"], "v", "{st}");
    }
    env.ok(&["delete", "--force", &id]);
}

fn features() -> Value {
    let out = Command::new(coop_bin()).arg("features").output().unwrap();
    assert!(out.status.success());
    serde_json::from_slice(&out.stdout).unwrap()
}

/// A create with `seccomp` as linux.seccomp: Ok or the error line.
fn create_with_seccomp(seccomp: Value) -> Result<(), String> {
    let env = Env::new(&["true"], |c| c["linux"]["seccomp"] = seccomp);
    let id = unique("s13feat");
    let out = env.coop(&["create", "-b", env.bundle_path(), &id]);
    if out.status.success() {
        env.ok(&["delete", "--force", &id]);
        Ok(())
    } else {
        Err(stderr(&out))
    }
}

#[test]
fn features_match_what_create_accepts() {
    let f = features();
    assert_eq!(f["ociVersionMin"], "1.0.0");
    assert_eq!(f["ociVersionMax"], "1.3.0");
    assert_eq!(f["hooks"].as_array().unwrap().len(), 6);
    assert_eq!(f["linux"]["netDevices"]["enabled"], true);
    assert_eq!(f["linux"]["mountExtensions"]["idmap"]["enabled"], true);
    let resctrl = std::path::Path::new("/sys/fs/resctrl/schemata").exists();
    assert_eq!(f["linux"]["intelRdt"]["enabled"], resctrl);
    assert!(f["annotations"]["dev.coop.version"].is_string());
    let caps = f["linux"]["capabilities"].as_array().unwrap();
    let last: usize = read_trimmed("/proc/sys/kernel/cap_last_cap")
        .parse()
        .unwrap();
    assert_eq!(caps.len(), last + 1);
    let sc = &f["linux"]["seccomp"];
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("agent.sock");
    let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    for a in sc["actions"].as_array().unwrap() {
        let default = if a == "SCMP_ACT_ALLOW" {
            "SCMP_ACT_LOG"
        } else {
            "SCMP_ACT_ALLOW"
        };
        let r = create_with_seccomp(json!({"defaultAction": default, "listenerPath": sock,
            "syscalls": [{"names": ["getpriority"], "action": a}]}));
        assert!(r.is_ok(), "action {a}: {r:?}");
    }
    for op in sc["operators"].as_array().unwrap() {
        let r = create_with_seccomp(json!({"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["getpriority"], "action": "SCMP_ACT_ERRNO",
                "args": [{"index": 0, "value": 1, "valueTwo": 1, "op": op}]}]}));
        assert!(r.is_ok(), "operator {op}: {r:?}");
    }
    for flag in sc["supportedFlags"].as_array().unwrap() {
        let r = create_with_seccomp(json!({"defaultAction": "SCMP_ACT_ALLOW", "flags": [flag],
            "syscalls": [{"names": ["getpriority"], "action": "SCMP_ACT_ERRNO"}]}));
        assert!(r.is_ok(), "flag {flag}: {r:?}");
    }
    for a in sc["archs"].as_array().unwrap() {
        let r = create_with_seccomp(
            json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": [a],
            "syscalls": [{"names": ["getpriority"], "action": "SCMP_ACT_ERRNO"}]}),
        );
        assert!(r.is_ok(), "arch {a}: {r:?}");
    }
    // Unlisted names are refused.
    let e = create_with_seccomp(json!({"defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["getpriority"], "action": "SCMP_ACT_BOGUS"}]}))
    .unwrap_err();
    assert!(e.contains("unknown variant `SCMP_ACT_BOGUS`"), "{e}");
    let e = create_with_seccomp(json!({"defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["getpriority"], "action": "SCMP_ACT_ERRNO",
            "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_BOGUS"}]}]}))
    .unwrap_err();
    assert!(e.contains("unknown variant `SCMP_CMP_BOGUS`"), "{e}");
    // The memory policy modes listed are accepted by validation (node 0 exists everywhere).
    for m in f["linux"]["memoryPolicy"]["modes"].as_array().unwrap() {
        let nodes = match m.as_str().unwrap() {
            "MPOL_DEFAULT" | "MPOL_LOCAL" => json!(null),
            _ => json!("0"),
        };
        let (ok, _, err) = run_sh("true", |c| {
            c["linux"]["memoryPolicy"] = json!({"mode": m, "nodes": nodes})
        });
        // WEIGHTED_INTERLEAVE needs kernel 6.9+: a refusal then names the field.
        assert!(ok || err.contains("linux.memoryPolicy"), "{m}: {err}");
    }
}

#[test]
fn cpu_burst_is_written() {
    let env = Env::new(&["true"], |c| {
        c["linux"]["resources"]["cpu"] = json!({"quota": 50000, "period": 100000, "burst": 20000});
    });
    let id = unique("s13burst");
    env.create(&id);
    let (dir, file) = if pure_v2() {
        (v2_dir(&id), "cpu.max.burst")
    } else {
        (
            std::path::Path::new("/sys/fs/cgroup/cpu/coop").join(&id),
            "cpu.cfs_burst_us",
        )
    };
    assert_eq!(read_trimmed(dir.join(file)), "20000");
    env.ok(&["delete", "--force", &id]);
}
