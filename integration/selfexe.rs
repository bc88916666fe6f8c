//! The binary behind coop's processes in a container is a read-only view (CVE-2019-5736 class).
use crate::common::*;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;

fn sha256(path: &std::path::Path) -> String {
    let out = Command::new("sha256sum").arg(path).output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split(' ')
        .next()
        .unwrap()
        .to_string()
}

/// What a process of the container could do with `/proc/<init>/exe` while init waits on
/// `start`: keep an O_PATH handle, then open it for writing once nothing runs the binary.
/// coop runs from a copy here, so that a failure cannot damage the build.
#[test]
fn init_exe_cannot_be_opened_for_writing() {
    let env = Env::new(&["sleep", "30"], |_| {});
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("coop");
    std::fs::copy(coop_bin(), &copy).unwrap();
    std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)).unwrap();
    let before = sha256(&copy);
    let id = unique("selfexe");
    let coop = |args: &[&str]| {
        let out = Command::new(&copy)
            .arg("--root")
            .arg(env.root.path())
            .args(args)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(out.success(), "coop {args:?} failed");
    };
    coop(&["create", "--bundle", env.bundle_path(), &id]);
    let pid = env.pid(&id);
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap();
    let handle = nix::fcntl::open(
        format!("/proc/{pid}/exe").as_str(),
        nix::fcntl::OFlag::O_PATH,
        nix::sys::stat::Mode::empty(),
    )
    .unwrap();
    let st = nix::sys::stat::fstat(&handle).unwrap();
    let orig = nix::sys::stat::stat(&copy).unwrap();
    assert_eq!(
        (st.st_dev, st.st_ino),
        (orig.st_dev, orig.st_ino),
        "init waiting on start runs coop's binary ({exe:?})"
    );
    coop(&["start", &id]);
    // Init has executed sleep and the coop commands have exited: nothing runs the copy now,
    // so only the read-only view stands between a write and the binary.
    let via = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&handle));
    let write = std::fs::OpenOptions::new()
        .append(true)
        .open(&via)
        .map(drop);
    coop(&["delete", "--force", &id]);
    let err = write.expect_err("the binary behind a container's init opened for writing");
    assert_eq!(err.raw_os_error(), Some(libc::EROFS), "{err}");
    assert_eq!(sha256(&copy), before);
}

/// CVE-2019-5736 as the exploit ran it: a process of the container keeps opening every
/// `/proc/*/exe` it can see for writing while coop execs into the container again and again;
/// coop's exec child enters the container's pid namespace, yet the binary stays as it was.
#[test]
fn exec_into_a_hostile_container_leaves_the_binary_alone() {
    let attack = "while :; do for f in /proc/[0-9]*/exe; do echo x >> $f 2>/dev/null && \
                  echo WROTE $f >> /tmp/wrote; done; done";
    let env = Env::new(&["sh", "-c", attack], |_| {});
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("coop");
    std::fs::copy(coop_bin(), &copy).unwrap();
    std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)).unwrap();
    let before = sha256(&copy);
    let id = unique("hostile");
    // Output through a file: the detached container holds a pipe open for as long as it runs.
    let coop = |args: &[&str]| {
        let out = dir.path().join("out");
        let status = Command::new(&copy)
            .arg("--root")
            .arg(env.root.path())
            .args(args)
            .stdin(std::process::Stdio::null())
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap();
        std::process::Output {
            status,
            stdout: std::fs::read(&out).unwrap(),
            stderr: vec![],
        }
    };
    assert!(coop(&["run", "-d", "--bundle", env.bundle_path(), &id])
        .status
        .success());
    let mut ran = 0;
    for _ in 0..30 {
        let out = coop(&["exec", &id, "sh", "-c", "echo in"]);
        if out.status.success() && out.stdout == b"in\n" {
            ran += 1;
        }
    }
    let wrote = coop(&["exec", &id, "cat", "/tmp/wrote"]);
    coop(&["delete", "--force", &id]);
    assert!(ran > 0, "no exec ran");
    assert_eq!(sha256(&copy), before, "the host's coop binary changed");
    // Writes to the container's own binaries (busybox) are its business; none reached coop.
    let w = String::from_utf8_lossy(&wrote.stdout).to_string();
    assert!(!w.contains("coop"), "{w}");
}
