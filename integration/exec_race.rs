//! exec never loses its process: a process that exits at once, under a subreaper that reaps
//! it at once (containerd's shim), is still reported, and its exit code exactly.
use crate::common::*;
use std::ffi::CString;
use std::os::fd::AsRawFd;
use std::time::Instant;

/// Run each of `cmds` (argv) in turn from a forked helper that is a child subreaper and reaps
/// every child the moment it exits (`waitpid(-1)`), as a shim does. Returns each command's
/// wait status. The commands' stderr goes to `err`.
fn under_reaping_subreaper(cmds: &[Vec<String>], err: &std::fs::File) -> Vec<i32> {
    let cstr = |s: &str| CString::new(s).unwrap();
    let argvs: Vec<Vec<CString>> = cmds
        .iter()
        .map(|a| a.iter().map(|s| cstr(s)).collect())
        .collect();
    let argv_ptrs: Vec<Vec<*const libc::c_char>> = argvs
        .iter()
        .map(|a| {
            a.iter()
                .map(|s| s.as_ptr())
                .chain(std::iter::once(std::ptr::null()))
                .collect()
        })
        .collect();
    let envs: Vec<CString> = std::env::vars()
        .map(|(k, v)| cstr(&format!("{k}={v}")))
        .collect();
    let env_ptrs: Vec<*const libc::c_char> = envs
        .iter()
        .map(|s| s.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect();
    let devnull = std::fs::File::open("/dev/null").unwrap();
    let (rd, wr) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
    let (null_fd, err_fd, wr_fd) = (devnull.as_raw_fd(), err.as_raw_fd(), wr.as_raw_fd());

    // SAFETY: the test process has other threads: the helper only makes async-signal-safe
    // system calls on memory prepared before the fork (no allocation, no locks), then _exits.
    let helper = unsafe { libc::fork() };
    assert!(helper >= 0, "fork the reaper");
    if helper == 0 {
        // SAFETY: plain system calls on valid pointers and fds prepared above.
        unsafe {
            libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
            for argv in &argv_ptrs {
                let pid = libc::fork();
                if pid == 0 {
                    libc::dup2(null_fd, 0);
                    libc::dup2(null_fd, 1);
                    libc::dup2(err_fd, 2);
                    libc::execve(argv[0], argv.as_ptr(), env_ptrs.as_ptr());
                    libc::_exit(127);
                }
                let mut status: libc::c_int = -1;
                // Reap whatever exits first, orphans included, until the command is done.
                loop {
                    let mut st: libc::c_int = 0;
                    let r = libc::waitpid(-1, &mut st, 0);
                    if r == pid {
                        status = st;
                        break;
                    }
                    if r < 0 && *libc::__errno_location() != libc::EINTR {
                        break;
                    }
                }
                libc::write(wr_fd, (&status as *const libc::c_int).cast(), 4);
            }
            // Reap what is left (nothing should be).
            while libc::waitpid(-1, std::ptr::null_mut(), libc::WNOHANG) > 0 {}
            libc::_exit(0);
        }
    }
    drop(wr);
    let mut bytes = vec![];
    std::io::Read::read_to_end(&mut std::fs::File::from(rd), &mut bytes).unwrap();
    let mut st = 0;
    // SAFETY: waiting for our own child.
    unsafe { libc::waitpid(helper, &mut st, 0) };
    bytes
        .chunks_exact(4)
        .map(|c| i32::from_ne_bytes(c.try_into().unwrap()))
        .collect()
}

/// 2000 detached and 2000 foreground execs of /bin/true, and 100 `exit 7`, in a container
/// whose coop runs under a subreaper that reaps at once: none fails, every exit code exact.
#[test]
fn quick_execs_under_a_reaping_subreaper() {
    let env = Env::new(&["sleep", "3600"], |_| {});
    let id = unique("race");
    env.create(&id);
    env.ok(&["start", &id]);
    let root = env.root.path().to_str().unwrap().to_string();
    let pidfile = env.bundle.path().join("exec.pid");
    let base = |extra: &[&str]| -> Vec<String> {
        [coop_bin(), "--root", &root, "exec"]
            .iter()
            .chain(extra)
            .map(|s| s.to_string())
            .collect()
    };
    let pf = pidfile.to_str().unwrap();
    let n = 2000;
    let mut cmds = vec![];
    for _ in 0..n {
        cmds.push(base(&["-d", "--pid-file", pf, &id, "/bin/true"]));
    }
    for _ in 0..n {
        cmds.push(base(&[&id, "/bin/true"]));
    }
    for _ in 0..100 {
        cmds.push(base(&[&id, "sh", "-c", "exit 7"]));
    }
    let err_path = env.bundle.path().join("stderr");
    let err = std::fs::File::create(&err_path).unwrap();
    let t = Instant::now();
    let statuses = under_reaping_subreaper(&cmds, &err);
    eprintln!("{} execs in {:?}", cmds.len(), t.elapsed());
    let errors = std::fs::read_to_string(&err_path).unwrap();
    assert_eq!(statuses.len(), cmds.len(), "the reaper stopped early");
    let code = |st: i32| libc::WIFEXITED(st).then(|| libc::WEXITSTATUS(st));
    let failed = statuses[..2 * n]
        .iter()
        .filter(|s| code(**s) != Some(0))
        .count();
    let not7 = statuses[2 * n..]
        .iter()
        .filter(|s| code(**s) != Some(7))
        .count();
    assert!(
        failed == 0 && not7 == 0 && errors.is_empty(),
        "{failed} execs of /bin/true failed, {not7} of `exit 7` did not report 7: {}",
        errors.lines().take(5).collect::<Vec<_>>().join("\n")
    );
    // The container is untouched and the pid file names a process that was in it.
    assert_eq!(env.status(&id), "running");
    let pid: i32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(pid > 0);
}

/// A two-stage create (joining another container's pid namespace) hands its init over the
/// same way: created and started under the reaping subreaper, it is reported, runs in the
/// joined namespace, and quick execs into it are reported too.
#[test]
fn two_stage_init_under_a_reaping_subreaper() {
    let first = Env::new(&["sleep", "3600"], |_| {});
    let a = unique("pidns");
    first.create(&a);
    first.ok(&["start", &a]);
    let a_pid = first.pid(&a);
    let env = Env::new(&["sleep", "3600"], |c| {
        let ns = c["linux"]["namespaces"].as_array_mut().unwrap();
        ns.retain(|n| n["type"] != "pid");
        ns.push(serde_json::json!({"type": "pid", "path": format!("/proc/{a_pid}/ns/pid")}));
    });
    let b = unique("twostage");
    let root = env.root.path().to_str().unwrap().to_string();
    let coop = |extra: &[&str]| -> Vec<String> {
        [coop_bin(), "--root", &root]
            .iter()
            .chain(extra)
            .map(|s| s.to_string())
            .collect()
    };
    let mut cmds = vec![
        coop(&["create", "--bundle", env.bundle_path(), &b]),
        coop(&["start", &b]),
    ];
    for _ in 0..50 {
        cmds.push(coop(&["exec", "-d", &b, "/bin/true"]));
        cmds.push(coop(&["exec", &b, "sh", "-c", "exit 7"]));
    }
    let err_path = env.bundle.path().join("stderr");
    let err = std::fs::File::create(&err_path).unwrap();
    let statuses = under_reaping_subreaper(&cmds, &err);
    let errors = std::fs::read_to_string(&err_path).unwrap();
    let code = |st: i32| libc::WIFEXITED(st).then(|| libc::WEXITSTATUS(st));
    let want: Vec<Option<i32>> = (0..cmds.len())
        .map(|i| Some(if i >= 2 && i % 2 == 1 { 7 } else { 0 }))
        .collect();
    let got: Vec<Option<i32>> = statuses.iter().map(|s| code(*s)).collect();
    assert_eq!(got, want, "{errors}");
    assert_eq!(env.status(&b), "running");
    let b_pid = env.pid(&b);
    assert_eq!(
        std::fs::read_link(format!("/proc/{b_pid}/ns/pid")).unwrap(),
        std::fs::read_link(format!("/proc/{a_pid}/ns/pid")).unwrap()
    );
}
