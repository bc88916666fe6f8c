//! `--preserve-fds N` and LISTEN_FDS (the CVE-2024-21626 class): the container's process gets
//! fds 0-2 and exactly those of 3..3+N that the caller really passed. coop's own descriptors
//! (its lock file, the host cgroup directory, sockets, the signalfd of `run`) never reach it,
//! even when N is larger than what the caller holds open and their numbers fall in the range.
use crate::common::*;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Far more than the test passes: the free slots of 3..3+N are where coop's own fds landed.
const N: &str = "100";
/// The fds the test passes (3 stays free: the `ls` inside opens its directory there).
const PASSED: [RawFd; 2] = [4, 7];

/// Two files the caller passes as fds 4 and 7, and where the container's output goes.
struct Caller {
    dir: tempfile::TempDir,
    files: Vec<std::fs::File>,
}

impl Caller {
    fn new() -> Caller {
        let dir = tempfile::Builder::new()
            .prefix("coop-it-fds")
            .tempdir()
            .unwrap();
        let files = PASSED
            .iter()
            .map(|fd| {
                let p = dir.path().join(format!("passed-{fd}"));
                std::fs::write(&p, "x").unwrap();
                std::fs::File::open(p).unwrap()
            })
            .collect();
        Caller { dir, files }
    }

    fn file(&self, fd: RawFd) -> PathBuf {
        self.dir.path().join(format!("passed-{fd}"))
    }

    fn out(&self) -> PathBuf {
        self.dir.path().join("out")
    }

    /// coop with stdout to `out` (appended) and fds 4 and 7 passed; every other fd of the test
    /// process (the harness may hold some without close-on-exec) is kept from coop.
    fn cmd(&self, env: &Env, args: &[&str], listen: Option<&str>) -> Command {
        let mut c = env.cmd(args);
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.out())
            .unwrap();
        let err = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("err"))
            .unwrap();
        c.stdout(out).stderr(err);
        if let Some(n) = listen {
            c.env("LISTEN_FDS", n);
        }
        let srcs: Vec<RawFd> = self.files.iter().map(|f| f.as_raw_fd()).collect();
        // SAFETY: only fcntl, dup2 and close_range in the child between fork and exec, on fds
        // that are open there.
        unsafe {
            c.pre_exec(move || {
                // Out of the way first, so that no dup2 overwrites another source.
                let high: Vec<RawFd> = srcs
                    .iter()
                    .map(|&s| libc::fcntl(s, libc::F_DUPFD_CLOEXEC, 200))
                    .collect();
                for (&h, &fd) in high.iter().zip(PASSED.iter()) {
                    if h < 0 || libc::dup2(h, fd) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                const CLOSE_RANGE_CLOEXEC: libc::c_uint = 4;
                for (lo, hi) in [(3u32, 3u32), (5, 6), (8, u32::MAX)] {
                    libc::syscall(libc::SYS_close_range, lo, hi, CLOSE_RANGE_CLOEXEC);
                }
                Ok(())
            });
        }
        c
    }

    /// What `ls -l /proc/self/fd` printed in the container, checked: 0-2, the passed fds
    /// pointing at the passed files, and ls's own directory fd, nothing else.
    fn check(&self, what: &str) {
        let text = std::fs::read_to_string(self.out()).unwrap_or_default();
        let err = std::fs::read_to_string(self.dir.path().join("err")).unwrap_or_default();
        let mut seen: Vec<(RawFd, Option<String>)> = text
            .lines()
            .filter(|l| !l.starts_with("total"))
            .map(|l| {
                let (left, target) = match l.split_once(" -> ") {
                    Some((a, b)) => (a, Some(b.to_string())),
                    None => (l, None),
                };
                let fd = left.split_whitespace().last().unwrap_or_default();
                let fd = fd
                    .parse()
                    .unwrap_or_else(|_| panic!("{what}: odd line {l:?} in {text}"));
                (fd, target)
            })
            .collect();
        seen.sort();
        for (fd, target) in &seen {
            let t = target.as_deref().unwrap_or("");
            for bad in ["lock", "/sys/fs/cgroup", "socket:", "anon_inode", "pipe:"] {
                assert!(
                    !t.contains(bad),
                    "{what}: coop's own fd {fd} -> {t} reached the container:\n{text}{err}"
                );
            }
            if PASSED.contains(fd) {
                assert_eq!(
                    Path::new(t),
                    self.file(*fd),
                    "{what}: fd {fd} is not the file passed:\n{text}"
                );
            }
        }
        let numbers: Vec<RawFd> = seen.iter().map(|(fd, _)| *fd).collect();
        // ls reads the directory through the lowest free fd, 3; it is closed (no target) or
        // names a /proc/<pid>/fd directory by the time ls reads the links.
        assert_eq!(
            numbers,
            [0, 1, 2, 3, 4, 7],
            "{what}: the container's fds:\n{text}{err}"
        );
        let own = seen[3].1.as_deref().unwrap_or("/proc/1/fd");
        assert!(
            own.starts_with("/proc/") && own.ends_with("/fd"),
            "{what}: fd 3 -> {own}:\n{text}"
        );
    }
}

fn listing_env() -> Env {
    Env::new(&["ls", "-l", "/proc/self/fd"], |_| {})
}

/// Wait (up to 20 s) until `pred` holds.
fn poll(what: &str, mut pred: impl FnMut() -> bool) {
    for _ in 0..400 {
        if pred() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("{what}: timed out");
}

fn status_ok(c: &mut Command, what: &str) {
    let st = c.stdin(Stdio::null()).status().unwrap();
    assert!(st.success(), "{what}: coop exited {st}");
}

#[test]
fn create_and_start_pass_only_the_callers_fds() {
    let env = listing_env();
    let caller = Caller::new();
    let id = unique("fdscreate");
    let b = env.bundle_path().to_string();
    status_ok(
        &mut caller.cmd(&env, &["create", "--preserve-fds", N, "-b", &b, &id], None),
        "create",
    );
    env.ok(&["start", &id]);
    env.wait_status(&id, "stopped");
    caller.check("create + start");
}

#[test]
fn run_passes_only_the_callers_fds() {
    let env = listing_env();
    let caller = Caller::new();
    let b = env.bundle_path().to_string();
    let id = unique("fdsrun");
    status_ok(
        &mut caller.cmd(&env, &["run", "--preserve-fds", N, "-b", &b, &id], None),
        "run",
    );
    caller.check("run");
}

#[test]
fn run_with_listen_fds_passes_only_the_callers_fds() {
    let env = listing_env();
    let caller = Caller::new();
    let b = env.bundle_path().to_string();
    let id = unique("fdslisten");
    // LISTEN_FDS=20 covers 3..23, of which the caller holds 4 and 7.
    status_ok(
        &mut caller.cmd(&env, &["run", "-b", &b, &id], Some("20")),
        "run with LISTEN_FDS",
    );
    caller.check("run with LISTEN_FDS");
}

#[test]
fn run_detached_passes_only_the_callers_fds() {
    let env = listing_env();
    let caller = Caller::new();
    let b = env.bundle_path().to_string();
    let id = unique("fdsrund");
    status_ok(
        &mut caller.cmd(
            &env,
            &["run", "-d", "--preserve-fds", N, "-b", &b, &id],
            None,
        ),
        "run -d",
    );
    env.wait_status(&id, "stopped");
    caller.check("run -d");
}

/// A running container for exec; `ls -l /proc/self/fd` to run in it.
fn sleeping(prefix: &str) -> (Env, String) {
    let env = Env::new(&["sleep", "100"], |_| {});
    let id = unique(prefix);
    env.ok(&["run", "-d", "-b", env.bundle_path(), &id]);
    (env, id)
}

const LS: [&str; 3] = ["ls", "-l", "/proc/self/fd"];

#[test]
fn exec_passes_only_the_callers_fds() {
    let (env, id) = sleeping("fdsexec");
    let caller = Caller::new();
    let mut args = vec!["exec", "--preserve-fds", N, &id];
    args.extend(LS);
    status_ok(&mut caller.cmd(&env, &args, None), "exec");
    caller.check("exec");
}

#[test]
fn exec_detached_passes_only_the_callers_fds() {
    let (env, id) = sleeping("fdsexecd");
    let caller = Caller::new();
    let pid_file = caller.dir.path().join("pid");
    let pf = pid_file.to_str().unwrap().to_string();
    let mut args = vec!["exec", "-d", "--pid-file", &pf, "--preserve-fds", N, &id];
    args.extend(LS);
    status_ok(&mut caller.cmd(&env, &args, None), "exec -d");
    let pid: i32 = read_trimmed(&pid_file).parse().unwrap();
    poll("the exec'd ls to finish", || !process_exists(pid));
    caller.check("exec -d");
}

#[test]
fn without_preserve_fds_nothing_but_stdio_reaches_the_container() {
    let env = Env::new(&["ls", "/proc/self/fd"], |_| {});
    let caller = Caller::new();
    let b = env.bundle_path().to_string();
    let id = unique("fdsnone");
    status_ok(&mut caller.cmd(&env, &["run", "-b", &b, &id], None), "run");
    let text = std::fs::read_to_string(caller.out()).unwrap();
    let fds: Vec<&str> = text.split_whitespace().collect();
    assert_eq!(fds, ["0", "1", "2", "3"], "{text}");
}
