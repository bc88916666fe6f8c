//! Helpers: the rootfs, bundles, running coop, reading state.
use serde_json::{json, Value};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

pub fn coop_bin() -> &'static str {
    env!("CARGO_BIN_EXE_coop")
}

pub fn require_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "the integration tests create real containers and must run as root"
    );
}

/// A busybox rootfs shared (read-only in spirit) by every test of this run.
pub fn rootfs() -> &'static Path {
    static ROOTFS: OnceLock<PathBuf> = OnceLock::new();
    ROOTFS.get_or_init(|| {
        require_root();
        let busybox = ["/bin/busybox", "/usr/bin/busybox"]
            .into_iter()
            .map(Path::new)
            .find(|p| p.exists())
            .expect("busybox-static is needed (apt-get install busybox-static)");
        let dir = std::env::temp_dir().join(format!("coop-it-rootfs-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        for d in ["bin", "etc", "proc", "sys", "dev", "tmp", "root"] {
            std::fs::create_dir_all(dir.join(d)).unwrap();
        }
        std::fs::copy(busybox, dir.join("bin/busybox")).unwrap();
        // ETXTBSY: another test thread forked while the copy's write fd was open (its child
        // holds the fd until it executes); that passes as soon as the child has.
        let list = (0..100)
            .find_map(
                |_| match Command::new(dir.join("bin/busybox")).arg("--list").output() {
                    Err(e) if e.kind() == std::io::ErrorKind::ExecutableFileBusy => {
                        std::thread::sleep(std::time::Duration::from_millis(20));
                        None
                    }
                    r => Some(r.unwrap()),
                },
            )
            .expect("run the copied busybox: text file busy for 2 s");
        for applet in String::from_utf8_lossy(&list.stdout).lines() {
            let link = dir.join("bin").join(applet);
            if !link.exists() {
                std::os::unix::fs::symlink("busybox", link).unwrap();
            }
        }
        std::fs::write(
            dir.join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
        )
        .unwrap();
        std::fs::write(dir.join("etc/group"), "root:x:0:\nnobody:x:65534:\n").unwrap();
        std::fs::set_permissions(
            dir.join("tmp"),
            std::os::unix::fs::PermissionsExt::from_mode(0o1777),
        )
        .unwrap();
        dir
    })
}

/// One test's state directory and bundle.
pub struct Env {
    pub root: tempfile::TempDir,
    pub bundle: tempfile::TempDir,
}

impl Env {
    /// A bundle whose process runs `args`; `patch` edits the default config.
    pub fn new(args: &[&str], patch: impl FnOnce(&mut Value)) -> Env {
        require_root();
        let root = tempfile::Builder::new()
            .prefix("coop-it-root")
            .tempdir()
            .unwrap();
        let bundle = tempfile::Builder::new()
            .prefix("coop-it-bundle")
            .tempdir()
            .unwrap();
        let out = Command::new(coop_bin())
            .arg("spec")
            .arg("--bundle")
            .arg(bundle.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "coop spec: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut cfg: Value =
            serde_json::from_slice(&std::fs::read(bundle.path().join("config.json")).unwrap())
                .unwrap();
        cfg["root"] = json!({"path": rootfs(), "readonly": false});
        cfg["process"]["terminal"] = json!(false);
        cfg["process"]["args"] = json!(args);
        patch(&mut cfg);
        let env = Env { root, bundle };
        env.write_config(&cfg);
        env
    }

    pub fn write_config(&self, cfg: &Value) {
        std::fs::write(
            self.bundle.path().join("config.json"),
            serde_json::to_vec_pretty(cfg).unwrap(),
        )
        .unwrap();
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(coop_bin());
        c.arg("--root")
            .arg(self.root.path())
            .args(args)
            .stdin(Stdio::null());
        c
    }

    /// Run coop to completion. stdout and stderr go to files, not pipes: a created container
    /// inherits them and keeps them open, so reading a pipe to its end would wait for it.
    pub fn coop(&self, args: &[&str]) -> Output {
        let dir = tempfile::tempdir().unwrap();
        let (o, e) = (dir.path().join("out"), dir.path().join("err"));
        let status = self
            .cmd(args)
            .stdout(std::fs::File::create(&o).unwrap())
            .stderr(std::fs::File::create(&e).unwrap())
            .status()
            .unwrap();
        Output {
            status,
            stdout: std::fs::read(&o).unwrap(),
            stderr: std::fs::read(&e).unwrap(),
        }
    }

    /// Run coop and require success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.coop(args);
        assert!(
            out.status.success(),
            "coop {args:?} failed ({:?}): {}{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    pub fn bundle_path(&self) -> &str {
        self.bundle.path().to_str().unwrap()
    }

    pub fn create(&self, id: &str) {
        self.ok(&["create", "--bundle", self.bundle_path(), id]);
    }

    pub fn state(&self, id: &str) -> Value {
        serde_json::from_str(&self.ok(&["state", id])).unwrap()
    }

    pub fn status(&self, id: &str) -> String {
        self.state(id)["status"].as_str().unwrap().to_string()
    }

    pub fn pid(&self, id: &str) -> i32 {
        self.state(id)["pid"].as_i64().unwrap() as i32
    }

    /// Wait (up to 10 s) until the container reports `status`.
    pub fn wait_status(&self, id: &str, status: &str) {
        for _ in 0..200 {
            if self.status(id) == status {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!("container {id} never became {status}: {}", self.status(id));
    }

    /// Ids left under --root.
    pub fn left(&self) -> Vec<String> {
        std::fs::read_dir(self.root.path())
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        // Never leave a container behind, whatever the test did.
        for id in self.left() {
            let _ = self.coop(&["delete", "--force", &id]);
        }
    }
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Whether this host's only cgroup hierarchy is cgroup v2 (/sys/fs/cgroup is a cgroup2 mount).
pub fn pure_v2() -> bool {
    use nix::sys::statfs::{statfs, CGROUP2_SUPER_MAGIC};
    statfs("/sys/fs/cgroup").is_ok_and(|s| s.filesystem_type() == CGROUP2_SUPER_MAGIC)
}

/// A test that cannot run on this host and says so: `SKIPPED: TEST: REASON` goes straight to
/// fd 2 (past libtest's capture), where scripts/test.sh counts it as skipped, not passed. When
/// the environment variable `require` is 1 (the tier that must run the test sets it), the test
/// fails instead.
pub fn skip(test: &str, reason: &str, require: &str) {
    if std::env::var_os(require).is_some_and(|v| v == "1") {
        panic!("{test}: {reason} ({require}=1: this tier must run it)");
    }
    // One write, so that the line is not split by libtest's output from other threads.
    let _ = std::io::stderr().write_all(format!("SKIPPED: {test}: {reason}\n").as_bytes());
}

/// For tests of cgroup v2 only, which are also marked
/// `#[ignore = "needs pure cgroup v2: run by scripts/test-v2.sh"]` (so libtest reports them as
/// ignored with that reason on a host; scripts/test-v2.sh runs them with `--include-ignored` in
/// a guest with pure cgroup v2): true, after `skip` has reported it, when this host is not pure v2. With
/// COOP_REQUIRE_V2=1 (scripts/test-v2.sh sets it) a host that is not pure v2 fails the test.
pub fn skip_unless_v2(test: &str) -> bool {
    if pure_v2() {
        return false;
    }
    skip(
        test,
        "needs a pure cgroup v2 host (/sys/fs/cgroup is not cgroup2 here); scripts/test-v2.sh runs it in a VM",
        "COOP_REQUIRE_V2",
    );
    true
}

/// The cgroup2 directory coop makes by default for container `id` on a pure v2 host.
pub fn v2_dir(id: &str) -> PathBuf {
    Path::new("/sys/fs/cgroup/coop").join(id)
}

/// A file's content, trimmed; the panic names the file.
pub fn read_trimmed(path: impl AsRef<Path>) -> String {
    let path = path.as_ref();
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
        .trim()
        .to_string()
}

/// A loop block device over a file of `size` bytes of `fill`, detached when dropped.
pub struct LoopDevice {
    pub path: PathBuf,
    pub major: u64,
    pub minor: u64,
    _backing: tempfile::TempDir,
}

impl LoopDevice {
    pub fn new(size: usize, fill: u8) -> LoopDevice {
        let backing = tempfile::Builder::new()
            .prefix("coop-it-loop")
            .tempdir()
            .unwrap();
        let file = backing.path().join("disk");
        std::fs::write(&file, vec![fill; size]).unwrap();
        let out = Command::new("losetup")
            .args(["--find", "--show"])
            .arg(&file)
            .output()
            .expect("run losetup (util-linux)");
        assert!(
            out.status.success(),
            "losetup --find --show {}: {} (is the loop module loaded?)",
            file.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        let path = PathBuf::from(String::from_utf8(out.stdout).unwrap().trim());
        let rdev = std::os::unix::fs::MetadataExt::rdev(&std::fs::metadata(&path).unwrap());
        LoopDevice {
            path,
            major: nix::sys::stat::major(rdev),
            minor: nix::sys::stat::minor(rdev),
            _backing: backing,
        }
    }

    /// "major:minor", as cgroup files name devices.
    pub fn numbers(&self) -> String {
        format!("{}:{}", self.major, self.minor)
    }

    /// A config mount that puts the device node at `dest` in the container.
    pub fn mount_at(&self, dest: &str) -> Value {
        json!({"destination": dest, "type": "bind", "source": self.path, "options": ["bind"]})
    }
}

impl Drop for LoopDevice {
    fn drop(&mut self) {
        let _ = Command::new("losetup").arg("-d").arg(&self.path).status();
    }
}

/// The container's cgroup directories coop makes by default, on this host.
pub fn default_cgroup_dirs(id: &str) -> Vec<PathBuf> {
    let mut dirs = vec![];
    for h in ["memory", "pids", "cpu", "unified"] {
        let base = Path::new("/sys/fs/cgroup").join(h);
        if base.exists() {
            dirs.push(base.join("coop").join(id));
        }
    }
    if dirs.is_empty() {
        dirs.push(Path::new("/sys/fs/cgroup/coop").join(id));
    }
    dirs
}

pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

pub fn process_exists(pid: i32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| s.contains(") Z "))
            .unwrap_or(true)
}
