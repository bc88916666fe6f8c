//! What the container is given: terminal, fds, filesystem, namespaces.
use crate::common::*;
use serde_json::json;
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;

/// Receive one fd sent with SCM_RIGHTS on an accepted connection.
fn recv_fd(stream: &std::os::unix::net::UnixStream) -> OwnedFd {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    let mut buf = [0u8; 256];
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let mut cmsg = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let msg = recvmsg::<()>(
        stream.as_raw_fd(),
        &mut iov,
        Some(&mut cmsg),
        MsgFlags::empty(),
    )
    .unwrap();
    for c in msg.cmsgs().unwrap() {
        if let ControlMessageOwned::ScmRights(fds) = c {
            // SAFETY: the fd was just received and is owned by nobody else.
            return unsafe { OwnedFd::from_raw_fd(fds[0]) };
        }
    }
    panic!("no fd received");
}

#[test]
fn terminal_over_console_socket() {
    let env = Env::new(
        &["sh", "-c", "tty; test -t 0 && echo stdin-is-a-tty"],
        |c| c["process"]["terminal"] = json!(true),
    );
    let sock = env.bundle.path().join("console.sock");
    let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let id = unique("tty");
    let accept = std::thread::spawn(move || {
        let (s, _) = listener.accept().unwrap();
        recv_fd(&s)
    });
    env.ok(&[
        "create",
        "--console-socket",
        sock.to_str().unwrap(),
        "-b",
        env.bundle_path(),
        &id,
    ]);
    let master = accept.join().unwrap();
    env.ok(&["start", &id]);
    let mut f = std::fs::File::from(master);
    let mut out = String::new();
    let mut buf = [0u8; 1024];
    // Read until the slave side is closed (EIO) after the container exits.
    while let Ok(n) = f.read(&mut buf) {
        if n == 0 {
            break;
        }
        out.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    assert!(out.contains("/dev/pts/0"), "{out:?}");
    assert!(out.contains("stdin-is-a-tty"), "{out:?}");
}

#[test]
fn only_stdio_and_preserved_fds_reach_the_container() {
    let env = Env::new(&["sh", "-c", "ls /proc/self/fd | tr '\\n' ' '"], |_| {});
    let file = std::fs::File::open("/etc/hostname").unwrap();
    let raw = file.as_raw_fd();
    for preserve in [None, Some("1")] {
        let id = unique("fds");
        let mut args = vec!["run", "-b", env.bundle_path()];
        if let Some(n) = preserve {
            args.extend(["--preserve-fds", n]);
        }
        args.push(&id);
        let mut cmd = env.cmd(&args);
        // The caller's fd 3 (and a stray fd 4, as containerd's shim has).
        // SAFETY: dup2 in the child before exec, on fds that are valid there.
        unsafe {
            cmd.pre_exec(move || {
                // Through a copy: dup2 onto its own number would keep close-on-exec.
                let high = libc::fcntl(raw, libc::F_DUPFD_CLOEXEC, 100);
                libc::dup2(high, 3);
                libc::dup2(high, 4);
                Ok(())
            });
        }
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        // ls itself opens one fd for the directory it reads.
        let fds: Vec<String> = stdout(&out).split_whitespace().map(String::from).collect();
        match preserve {
            None => assert_eq!(fds, ["0", "1", "2", "3"], "{fds:?}"),
            Some(_) => assert_eq!(fds, ["0", "1", "2", "3", "4"], "{fds:?}"),
        }
    }
}

#[test]
fn filesystem_hostname_and_paths() {
    let script = "echo host=$(hostname); touch /rofile 2>/dev/null && echo writable || echo readonly; \
                  echo 1 > /proc/sys/kernel/domainname 2>/dev/null && echo sys-writable || echo sys-readonly; \
                  echo group=$(wc -c < /etc/group); ls /proc/sys/kernel | wc -l";
    let env = Env::new(&["sh", "-c", script], |c| {
        c["root"]["readonly"] = json!(true);
        c["hostname"] = json!("box");
        // A file masked with /dev/null, a directory with an empty tmpfs.
        c["linux"]["maskedPaths"] = json!(["/etc/group", "/proc/sys/kernel"]);
    });
    let id = unique("fs");
    let out = env.ok(&["run", "-b", env.bundle_path(), &id]);
    assert!(out.contains("host=box"), "{out}");
    assert!(out.contains("readonly\n"), "{out}");
    assert!(out.contains("sys-readonly"), "{out}");
    assert!(out.contains("group=0"), "{out}");
    assert!(
        out.ends_with("\n0\n"),
        "/proc/sys/kernel should look empty: {out}"
    );
}

#[test]
fn no_pivot_runs_too() {
    let env = Env::new(&["sh", "-c", "ls /"], |_| {});
    let out = env.ok(&["run", "--no-pivot", "-b", env.bundle_path(), &unique("np")]);
    assert!(out.contains("bin") && out.contains("proc"), "{out}");
}

#[test]
fn user_namespace_maps_root() {
    let env = Env::new(&["sh", "-c", "id -u; cat /proc/self/uid_map"], |c| {
        c["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "user"}));
        c["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
        c["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    });
    let out = env.ok(&["run", "-b", env.bundle_path(), &unique("user")]);
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("0"));
    let map: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(map, ["0", "100000", "65536"]);
}

#[test]
fn joining_a_network_namespace_by_path() {
    let a = Env::new(&["sleep", "100"], |_| {});
    let ida = unique("nsa");
    a.ok(&["run", "-d", "-b", a.bundle_path(), &ida]);
    let pid = a.pid(&ida);
    let host_net = std::fs::read_link(format!("/proc/{pid}/ns/net")).unwrap();
    let b = Env::new(&["readlink", "/proc/self/ns/net"], |c| {
        for ns in c["linux"]["namespaces"].as_array_mut().unwrap() {
            if ns["type"] == "network" {
                ns["path"] = json!(format!("/proc/{pid}/ns/net"));
            }
        }
    });
    let out = b.ok(&["run", "-b", b.bundle_path(), &unique("nsb")]);
    assert_eq!(out.trim(), host_net.to_str().unwrap());
}

#[test]
fn rlimit_errors_name_the_limit() {
    // Raising a hard limit above ours needs CAP_SYS_RESOURCE; where that is missing, the
    // error must say so. Where it is present, the container must see the limit.
    let env = Env::new(&["sh", "-c", "ulimit -Hn"], |c| {
        c["process"]["rlimits"] =
            json!([{"type": "RLIMIT_NOFILE", "hard": 1048577u64 * 4, "soft": 1024}]);
    });
    let out = env.coop(&["run", "-b", env.bundle_path(), &unique("rl")]);
    if out.status.success() {
        assert_eq!(stdout(&out).trim(), (1048577u64 * 4).to_string());
    } else {
        let err = stderr(&out);
        assert!(
            err.contains("RLIMIT_NOFILE") && err.contains("CAP_SYS_RESOURCE"),
            "{err}"
        );
        assert!(env.left().is_empty());
    }
}

#[test]
fn coop_never_runs_its_own_binary_in_the_container() {
    // A script whose interpreter is /proc/self/exe would run the host's coop binary inside.
    let script = rootfs().join(format!("bin/evil-{}", std::process::id()));
    std::fs::write(&script, "#!/proc/self/exe\n").unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let name = format!("/bin/{}", script.file_name().unwrap().to_str().unwrap());
    for args in [vec![name.as_str()], vec!["/proc/self/exe"]] {
        let env = Env::new(&args, |_| {});
        let out = env.coop(&["create", "-b", env.bundle_path(), &unique("evil")]);
        assert!(!out.status.success());
        assert!(
            stderr(&out).contains("refusing to run the container runtime's own binary"),
            "{}",
            stderr(&out)
        );
        assert!(env.left().is_empty());
    }
}

#[test]
fn seccomp_with_podmans_profile() {
    let Ok(profile) = std::fs::read("/usr/share/containers/seccomp.json") else {
        panic!("podman's seccomp profile is missing: install containers-common (podman)");
    };
    let profile: serde_json::Value = serde_json::from_slice(&profile).unwrap();
    for nnp in [true, false] {
        let env = Env::new(&["sh", "-c", "swapoff /x 2>&1; ls / | wc -l; id -u"], |c| {
            c["linux"]["seccomp"] = profile.clone();
            c["process"]["noNewPrivileges"] = json!(nnp);
        });
        let out = env.ok(&["run", "-b", env.bundle_path(), &unique("sc")]);
        assert!(out.contains("Operation not permitted"), "{out}");
        assert!(out.ends_with("\n0\n"), "{out}");
    }
    // A profile that denies getcwd: the runtime must not need it after the filter is in.
    let env = Env::new(&["echo", "ran"], |c| {
        c["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["getcwd"], "action": "SCMP_ACT_ERRNO"}]});
    });
    assert_eq!(
        env.ok(&["run", "-b", env.bundle_path(), &unique("sc")]),
        "ran\n"
    );
}

/// SCMP_ACT_NOTIFY: the agent at listenerPath receives the listener fd with the container's
/// state (listenerMetadata included) and answers the container's mkdir with an errno of its
/// choosing, which the program in the container sees.
#[test]
fn seccomp_notify_agent_answers_a_call() {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    let dir = tempfile::tempdir().unwrap();
    let sock_path = dir.path().join("agent.sock");
    let listener = std::os::unix::net::UnixListener::bind(&sock_path).unwrap();
    let env = Env::new(
        &[
            "sh",
            "-c",
            "mkdir /notified 2>&1; test -d /notified && echo made; echo done",
        ],
        |c| {
            c["linux"]["seccomp"] = json!({
                "defaultAction": "SCMP_ACT_ALLOW",
                "listenerPath": sock_path,
                "listenerMetadata": "agent-meta",
                "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}]
            });
        },
    );
    let agent = std::thread::spawn(move || {
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
        let state: serde_json::Value = serde_json::from_slice(&buf[..n]).unwrap();
        let fd = fd.expect("the listener fd");
        // Answer every mkdir until the container is gone (the listener then reports ENOENT).
        let mut answered = 0;
        loop {
            // SAFETY: zeroed plain-data structs for the seccomp notify ioctls, on a valid fd.
            let mut req: libc::seccomp_notif = unsafe { std::mem::zeroed() };
            if unsafe { libc::ioctl(fd.as_raw_fd(), libc::SECCOMP_IOCTL_NOTIF_RECV, &mut req) } != 0
            {
                break;
            }
            // SAFETY: seccomp_notif_resp is plain integers; all zeroes is a valid value.
            let mut resp: libc::seccomp_notif_resp = unsafe { std::mem::zeroed() };
            resp.id = req.id;
            resp.error = -libc::ENOMEDIUM;
            // SAFETY: as above.
            if unsafe { libc::ioctl(fd.as_raw_fd(), libc::SECCOMP_IOCTL_NOTIF_SEND, &mut resp) }
                == 0
            {
                answered += 1;
            }
        }
        (state, answered)
    });
    let id = unique("notify");
    let out = env.ok(&["run", "-b", env.bundle_path(), &id]);
    let (state, answered) = agent.join().unwrap();
    assert!(
        out.contains("No medium found") && !out.contains("made"),
        "{out}"
    );
    assert!(answered >= 1);
    assert_eq!(state["metadata"], "agent-meta", "{state}");
    assert_eq!(state["fds"], json!(["seccompFd"]), "{state}");
    assert_eq!(state["state"]["id"], id.as_str(), "{state}");
    assert!(state["pid"].as_i64().unwrap() > 0, "{state}");
}

/// `rootfsPropagation: unbindable` (as crun and youki, where runc 1.1 fails): every mount of
/// the container is unbindable, and the read-only and masked paths (binds) are still there.
#[test]
fn rootfs_propagation_unbindable() {
    for word in ["unbindable", "runbindable"] {
        let script =
            "grep -c unbindable /proc/self/mountinfo; grep -vc unbindable /proc/self/mountinfo; \
                      touch /proc/bus/x 2>/dev/null && echo bus-writable || echo bus-readonly; \
                      wc -c < /proc/version";
        let env = Env::new(&["sh", "-c", script], |c| {
            c["linux"]["rootfsPropagation"] = json!(word);
            c["linux"]["readonlyPaths"] = json!(["/proc/bus"]);
            c["linux"]["maskedPaths"] = json!(["/proc/version"]);
        });
        let out = env.ok(&["run", "-b", env.bundle_path(), &unique("unbind")]);
        let lines: Vec<&str> = out.lines().collect();
        assert_ne!(lines[0], "0", "{word}: {out}");
        assert_eq!(lines[1], "0", "{word}: every mount is unbindable: {out}");
        assert_eq!(&lines[2..], ["bus-readonly", "0"], "{word}: {out}");
    }
}

/// A seccomp agent gets the listener and the container's state during `create`, before
/// `start` (agents wait for it before they call start), and at `exec` before exec returns,
/// with the state the spec defines: the container's id, status, init pid, bundle and
/// annotations, and the filtered process's own pid.
#[test]
fn seccomp_agent_gets_the_listener_at_create_and_exec() {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    use std::time::Duration;
    let dir = tempfile::tempdir().unwrap();
    let sock_path = dir.path().join("agent.sock");
    let listener = std::os::unix::net::UnixListener::bind(&sock_path).unwrap();
    let tag = unique("agentout");
    let env = Env::new(
        &[
            "sh",
            "-c",
            &format!("mkdir /notified 2>/tmp/{tag}; echo $? >> /tmp/{tag}; sleep 100"),
        ],
        |c| {
            c["annotations"] = json!({"org.example.k": "v"});
            c["linux"]["seccomp"] = json!({
                "defaultAction": "SCMP_ACT_ALLOW",
                "listenerPath": sock_path,
                "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}]
            });
        },
    );
    let (tx, rx) = std::sync::mpsc::channel();
    // The agent: for each connection, report the state, then answer every notification with
    // ENOMEDIUM until the listener is gone.
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { break };
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
            let state: serde_json::Value = serde_json::from_slice(&buf[..n]).unwrap();
            let fd = fd.expect("the listener fd");
            if tx.send(state).is_err() {
                break;
            }
            std::thread::spawn(move || loop {
                // SAFETY: zeroed plain-data structs for the seccomp notify ioctls, on a valid fd.
                let mut req: libc::seccomp_notif = unsafe { std::mem::zeroed() };
                if unsafe { libc::ioctl(fd.as_raw_fd(), libc::SECCOMP_IOCTL_NOTIF_RECV, &mut req) }
                    != 0
                {
                    break;
                }
                // SAFETY: seccomp_notif_resp is plain integers; all zeroes is a valid value.
                let mut resp: libc::seccomp_notif_resp = unsafe { std::mem::zeroed() };
                resp.id = req.id;
                resp.error = -libc::ENOMEDIUM;
                // SAFETY: as above.
                unsafe { libc::ioctl(fd.as_raw_fd(), libc::SECCOMP_IOCTL_NOTIF_SEND, &mut resp) };
            });
        }
    });
    let id = unique("agent");
    env.create(&id);
    // Before start: the agent has the listener (a generous bound, it is there at once).
    let state = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("the agent got nothing during create");
    let init = env.pid(&id);
    assert_eq!(state["fds"], json!(["seccompFd"]), "{state}");
    assert_eq!(state["pid"], init, "{state}");
    let s = &state["state"];
    assert_eq!(s["id"], id.as_str(), "{state}");
    assert_eq!(s["status"], "creating", "{state}");
    assert_eq!(s["pid"], init, "{state}");
    assert_eq!(s["bundle"], env.bundle_path(), "{state}");
    assert_eq!(s["annotations"]["org.example.k"], "v", "{state}");
    assert!(s["ociVersion"].is_string(), "{state}");

    env.ok(&["start", &id]);
    let out = rootfs().join("tmp").join(&tag);
    let mut text = String::new();
    for _ in 0..400 {
        text = std::fs::read_to_string(&out).unwrap_or_default();
        if text.ends_with("1\n") {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = std::fs::remove_file(&out);
    assert!(text.contains("No medium found"), "{text}");

    // exec: a new listener, with the process's own pid.
    let out = env.coop(&["exec", &id, "sh", "-c", "mkdir /x 2>&1; echo done"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(text.contains("No medium found"), "{text}");
    let state = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("the agent got nothing at exec");
    let s = &state["state"];
    assert_eq!(s["id"], id.as_str(), "{state}");
    assert_eq!(s["status"], "running", "{state}");
    assert_eq!(s["pid"], init, "{state}");
    assert_eq!(s["bundle"], env.bundle_path(), "{state}");
    let pf = env.bundle.path().join("exec.pid");
    env.ok(&[
        "exec",
        "-d",
        "--pid-file",
        pf.to_str().unwrap(),
        &id,
        "sleep",
        "100",
    ]);
    let state = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("the agent got nothing at exec -d");
    let pid: i64 = std::fs::read_to_string(&pf)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(state["pid"], pid, "{state}");
    assert_ne!(pid, init as i64);
}
