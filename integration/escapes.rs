//! The classic runtime escapes, attempted against coop the way the real exploits did it.
//! Each test checks the host afterwards: nothing mounted, written or leaked outside the rootfs.
use crate::common::*;
use serde_json::json;
use std::os::fd::AsRawFd;
use std::os::unix::fs::symlink;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};

/// A private copy of the busybox rootfs, which the test may booby-trap.
fn own_rootfs(dir: &Path) -> PathBuf {
    let r = dir.join("rootfs");
    let st = std::process::Command::new("cp")
        .arg("-a")
        .arg(rootfs())
        .arg(&r)
        .status()
        .unwrap();
    assert!(st.success());
    r
}

/// A host directory the attack aims at, which must stay empty and unmounted.
struct Target(tempfile::TempDir);

impl Target {
    fn new(name: &str) -> Target {
        Target(
            tempfile::Builder::new()
                .prefix(&format!("coop-host-{name}"))
                .tempdir()
                .unwrap(),
        )
    }
    fn path(&self) -> &Path {
        self.0.path()
    }
    /// Nothing was created in it and nothing is mounted on or below it.
    fn untouched(&self, what: &str) {
        let p = self.path();
        let entries: Vec<_> = std::fs::read_dir(p)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert!(
            entries.is_empty(),
            "{what}: coop wrote into the host's {}: {entries:?}",
            p.display()
        );
        let mi = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        let needle = format!(" {}", p.display());
        assert!(
            !mi.lines().any(|l| l.contains(&needle)),
            "{what}: a mount on the host's {}",
            p.display()
        );
    }
}

/// CVE-2021-30465 class, statically: directories of the rootfs are symlinks to host paths
/// (absolute and relative), and /proc and /dev themselves are such symlinks. Every mount,
/// device node and masked path lands inside the rootfs, where the container sees it.
#[test]
fn symlinks_in_the_rootfs_never_lead_coop_outside() {
    let work = tempfile::tempdir().unwrap();
    let root = own_rootfs(work.path());
    let (mnt, rel, proc_t, dev_t, mask_t) = (
        Target::new("mnt"),
        Target::new("rel"),
        Target::new("proc"),
        Target::new("dev"),
        Target::new("mask"),
    );
    symlink(mnt.path(), root.join("abs")).unwrap();
    symlink(
        format!("../../../../../../..{}", rel.path().display()),
        root.join("rel"),
    )
    .unwrap();
    std::fs::remove_dir(root.join("proc")).unwrap();
    symlink(proc_t.path(), root.join("proc")).unwrap();
    std::fs::remove_dir_all(root.join("dev")).unwrap();
    symlink(dev_t.path(), root.join("dev")).unwrap();
    symlink(mask_t.path(), root.join("etc/masked")).unwrap();
    let script = "stat -f -c %T /abs/t /rel/t | tr '\\n' ' '; echo; \
                  test -c /dev/null && echo null-ok; \
                  test -r /proc/self/status && echo proc-ok; \
                  ls -A /etc/masked | wc -l";
    let env = Env::new(&["sh", "-c", script], |c| {
        c["root"]["path"] = json!(root);
        c["mounts"].as_array_mut().unwrap().extend([
            json!({"destination": "/abs/t", "type": "tmpfs", "source": "tmpfs"}),
            json!({"destination": "/rel/t", "type": "tmpfs", "source": "tmpfs"}),
        ]);
        c["linux"]["maskedPaths"] = json!(["/etc/masked"]);
        c["linux"]["readonlyPaths"] = json!(["/abs"]);
    });
    let out = env.coop(&["run", "-b", env.bundle_path(), &unique("sym")]);
    // Inside the container, a symlink resolves against the container's root, so the
    // container sees the mounts where they were asked for (or coop refuses the layout).
    if out.status.success() {
        let o = stdout(&out);
        assert!(o.starts_with("tmpfs tmpfs \n"), "both tmpfs visible: {o}");
        assert!(o.contains("null-ok") && o.contains("proc-ok"), "{o}");
        assert!(o.ends_with("\n0\n"), "masked path empty: {o}");
    }
    for (t, what) in [
        (&mnt, "absolute symlink"),
        (&rel, "relative symlink"),
        (&proc_t, "symlinked /proc"),
        (&dev_t, "symlinked /dev"),
        (&mask_t, "symlinked masked path"),
    ] {
        t.untouched(what);
    }
}

/// CVE-2021-30465 itself: while coop creates the container, another process keeps
/// exchanging a mount destination in the rootfs with a symlink to a host directory.
#[test]
fn a_destination_swapped_during_create_stays_inside() {
    let work = tempfile::tempdir().unwrap();
    let root = own_rootfs(work.path());
    let target = Target::new("race");
    std::fs::create_dir(root.join("dst")).unwrap();
    symlink(target.path(), root.join("link")).unwrap();
    let env = Env::new(&["true"], |c| {
        c["root"]["path"] = json!(root);
        let mut mounts = c["mounts"].as_array().unwrap().clone();
        for i in 0..8 {
            mounts.push(
                json!({"destination": format!("/dst/m{i}"), "type": "tmpfs", "source": "tmpfs"}),
            );
        }
        c["mounts"] = json!(mounts);
    });
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let swapper = {
        let (stop, a, b) = (stop.clone(), root.join("dst"), root.join("link"));
        std::thread::spawn(move || {
            let (a, b) = (
                std::ffi::CString::new(a.to_str().unwrap()).unwrap(),
                std::ffi::CString::new(b.to_str().unwrap()).unwrap(),
            );
            let mut swaps = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                // SAFETY: renameat2 with two valid NUL-terminated paths.
                unsafe {
                    libc::renameat2(
                        libc::AT_FDCWD,
                        a.as_ptr(),
                        libc::AT_FDCWD,
                        b.as_ptr(),
                        libc::RENAME_EXCHANGE,
                    )
                };
                swaps += 1;
            }
            swaps
        })
    };
    let mut errors = vec![];
    for _ in 0..40 {
        let out = env.coop(&["run", "-b", env.bundle_path(), &unique("race")]);
        if !out.status.success() {
            errors.push(stderr(&out));
        }
    }
    eprintln!("{} of 40 runs refused: {:?}", errors.len(), errors.first());
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(swapper.join().unwrap() > 0);
    target.untouched("swapped destination");
}

/// CVE-2024-21626 class: a host directory fd and a socket that coop inherits never reach
/// the container, and a cwd naming an inherited fd does not open the host to it.
#[test]
fn inherited_host_fds_and_a_cwd_through_them_stay_outside() {
    let secret = Target::new("fdsecret");
    std::fs::write(secret.path().join("host-only"), "x").unwrap();
    let dir = std::fs::File::open(secret.path()).unwrap();
    let (s1, _s2) = std::os::unix::net::UnixStream::pair().unwrap();
    let (dfd, sfd) = (dir.as_raw_fd(), s1.as_raw_fd());
    let fds_of = |env: &Env, extra: &[&str]| {
        let id = unique("fd");
        let mut args = vec!["run"];
        args.extend_from_slice(extra);
        args.extend(["-b", env.bundle_path(), &id]);
        let mut cmd = env.cmd(&args);
        // SAFETY: dup2 in the child before exec, of fds that are open there; dup2 clears
        // FD_CLOEXEC, so coop inherits them as a careless caller would pass them.
        unsafe {
            cmd.pre_exec(move || {
                // Through copies: dup2 onto its own number would keep close-on-exec.
                let (d, s) = (
                    libc::fcntl(dfd, libc::F_DUPFD_CLOEXEC, 100),
                    libc::fcntl(sfd, libc::F_DUPFD_CLOEXEC, 100),
                );
                libc::dup2(d, 5);
                libc::dup2(s, 6);
                libc::dup2(d, 7);
                Ok(())
            });
        }
        cmd.output().unwrap()
    };
    let env = Env::new(
        &[
            "sh",
            "-c",
            "for f in /proc/self/fd/*; do readlink $f; done; echo end",
        ],
        |_| {},
    );
    let out = fds_of(&env, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let o = stdout(&out);
    assert!(
        !o.contains("socket:") && !o.contains(&secret.path().display().to_string()),
        "a host fd reached the container: {o}"
    );
    // The cwd of runc's exploit: an inherited directory fd of coop's own.
    for fd in ["5", "7"] {
        let env = Env::new(&["sh", "-c", "ls -A; echo end"], |c| {
            c["process"]["cwd"] = json!(format!("/proc/self/fd/{fd}"));
        });
        let out = fds_of(&env, &[]);
        let o = stdout(&out);
        assert!(
            !o.contains("host-only"),
            "cwd {fd} reached the host directory: {o}"
        );
    }
}

/// CVE-2019-16884 / CVE-2019-19921 class: the config mounts a host directory (a volume)
/// over /proc, laid out like procfs. coop must not write its sysctls through it, and refuses.
#[test]
fn a_fake_proc_is_not_written_through() {
    let fake = Target::new("fakeproc");
    std::fs::create_dir_all(fake.path().join("sys/kernel")).unwrap();
    std::fs::write(fake.path().join("sys/kernel/domainname"), "untouched").unwrap();
    let env = Env::new(&["true"], |c| {
        let mut mounts = c["mounts"].as_array().unwrap().clone();
        mounts.retain(|m| m["destination"] != "/proc");
        mounts.insert(0, json!({"destination": "/proc", "type": "bind", "source": fake.path(), "options": ["rbind"]}));
        c["mounts"] = json!(mounts);
        c["linux"]["sysctl"] = json!({"kernel.domainname": "evil"});
    });
    let out = env.coop(&["run", "-b", env.bundle_path(), &unique("fakeproc")]);
    assert!(!out.status.success(), "ran with a directory as /proc");
    let e = stderr(&out);
    assert!(e.contains("/proc/sys is not on procfs"), "{e}");
    assert_eq!(
        std::fs::read_to_string(fake.path().join("sys/kernel/domainname")).unwrap(),
        "untouched"
    );
    assert!(env.left().is_empty(), "left {:?}", env.left());
}

/// With a user namespace, stdio that names host files (a regular file, a named FIFO,
/// /dev/null) keeps its owner; only anonymous pipes are handed to the container's root.
#[test]
fn userns_stdio_never_changes_a_host_files_owner() {
    use std::os::unix::fs::MetadataExt;
    let work = tempfile::tempdir().unwrap();
    let (file, fifo) = (work.path().join("out"), work.path().join("fifo"));
    std::fs::write(&file, "").unwrap();
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let env = Env::new(&["sh", "-c", "echo to-file; echo to-fifo >&2"], |c| {
        c["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "user"}));
        c["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
        c["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    });
    let owners = || {
        [&file, &fifo, &PathBuf::from("/dev/null")].map(|p| {
            std::fs::metadata(p)
                .map(|m| (m.uid(), m.gid(), m.mode()))
                .unwrap()
        })
    };
    let before = owners();
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::read_to_string(fifo).unwrap())
    };
    let status = env
        .cmd(&["run", "-b", env.bundle_path(), &unique("ownr")])
        .stdin(std::fs::File::open("/dev/null").unwrap())
        .stdout(std::fs::File::create(&file).unwrap())
        .stderr(std::fs::OpenOptions::new().write(true).open(&fifo).unwrap())
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(reader.join().unwrap(), "to-fifo\n");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "to-file\n");
    assert_eq!(
        owners(),
        before,
        "(uid, gid, mode) of the file, the FIFO and /dev/null"
    );
}

/// The mounts at or below `dir` in the test's (the caller's) mount namespace.
fn mounts_below(dir: &Path) -> Vec<String> {
    let mi = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let prefix = dir.display().to_string();
    mi.lines()
        .filter(|l| {
            l.split(' ')
                .nth(4)
                .is_some_and(|p| p == prefix || p.starts_with(&format!("{prefix}/")))
        })
        .map(String::from)
        .collect()
}

/// A config that shares the caller's mount namespace, on a private rootfs (its mounts land in
/// the caller's table). runc refuses masked and read-only paths without a mount namespace.
fn sharing_the_mount_namespace(c: &mut serde_json::Value, root: &Path) {
    c["root"]["path"] = json!(root);
    c["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .retain(|n| n["type"] != "mount");
    let linux = c["linux"].as_object_mut().unwrap();
    linux.remove("maskedPaths");
    linux.remove("readonlyPaths");
}

/// Without a mount namespace, root.readonly is left alone as runc does (the root is the
/// caller's directory, not a mount of the container's): the container runs, and once it is
/// deleted nothing it mounted stays in the caller's mount table.
#[test]
fn without_a_mount_namespace_a_readonly_root_runs_and_leaves_no_mounts() {
    let work = tempfile::tempdir().unwrap();
    let root = own_rootfs(work.path());
    let env = Env::new(
        &["sh", "-c", "test -r /proc/self/status && echo ran"],
        |c| {
            sharing_the_mount_namespace(c, &root);
            c["root"]["readonly"] = json!(true);
        },
    );
    let before = mounts_below(&root);
    let out = env.coop(&["run", "-b", env.bundle_path(), &unique("nomntro")]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "ran\n");
    assert_eq!(
        mounts_below(&root),
        before,
        "mounts left in the caller's namespace"
    );
    assert!(env.left().is_empty(), "{:?}", env.left());
}

/// A create without a mount namespace that fails after init mounted proc, /dev, sysfs and the
/// cgroups into the caller's mount table takes every one of them back.
#[test]
fn a_failed_create_without_a_mount_namespace_leaves_no_mounts() {
    type Patch = fn(&mut serde_json::Value);
    let cases: [(&str, Patch); 2] = [
        ("a program that does not exist", |c| {
            c["process"]["args"] = json!(["/no/such/program"]);
        }),
        ("a last mount that fails", |c| {
            c["mounts"].as_array_mut().unwrap().push(json!({
                "destination": "/tmp", "type": "tmpfs", "source": "tmpfs",
                "options": ["size=not-a-size"]}));
        }),
    ];
    for (what, patch) in cases {
        let work = tempfile::tempdir().unwrap();
        let root = own_rootfs(work.path());
        let env = Env::new(&["true"], |c| {
            sharing_the_mount_namespace(c, &root);
            patch(c);
        });
        let before = mounts_below(&root);
        let out = env.coop(&["create", "-b", env.bundle_path(), &unique("nomntfail")]);
        assert!(!out.status.success(), "{what}: create succeeded");
        assert_eq!(
            mounts_below(&root),
            before,
            "{what}: mounts left in the caller's namespace ({})",
            stderr(&out)
        );
        assert!(env.left().is_empty(), "{what}: {:?}", env.left());
    }
}

/// proc and sysfs are mounted on ordinary directories only (as runc): a rootfs whose /proc or
/// /sys is a symlink, to itself or to another directory of the rootfs, is refused with one
/// line naming the destination, and nothing is left behind.
#[test]
fn proc_and_sysfs_only_on_ordinary_directories() {
    for (dest, typ, target) in [
        ("proc", "proc", "proc"),
        ("proc", "proc", "/elsewhere"),
        ("sys", "sysfs", "sys"),
        ("sys", "sysfs", "../elsewhere"),
    ] {
        let work = tempfile::tempdir().unwrap();
        let root = own_rootfs(work.path());
        std::fs::create_dir(root.join("elsewhere")).unwrap();
        std::fs::remove_dir(root.join(dest)).unwrap();
        symlink(target, root.join(dest)).unwrap();
        let env = Env::new(&["true"], |c| c["root"]["path"] = json!(root));
        let out = env.coop(&["create", "-b", env.bundle_path(), &unique("symfs")]);
        let what = format!("/{dest} -> {target}");
        assert!(!out.status.success(), "{what}: create succeeded");
        let err = stderr(&out);
        assert!(
            err.contains(&format!(
                "mount /{dest}: {typ} must be mounted on an ordinary directory"
            )),
            "{what}: {err}"
        );
        assert_eq!(err.trim_end().lines().count(), 1, "{what}: {err}");
        assert!(env.left().is_empty(), "{what}: {:?}", env.left());
        assert!(
            std::fs::read_dir(root.join("elsewhere"))
                .unwrap()
                .next()
                .is_none(),
            "{what}: something was put in the symlink's target"
        );
        assert!(mounts_below(&root).is_empty(), "{what}");
    }
}
