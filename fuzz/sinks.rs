//! What each fuzz target feeds its input to, and the properties checked beyond "no panic".
use std::cell::RefCell;
use std::path::Path;

use coop::cgroups::{self, devices, resources, Layout};
use coop::container::{Container, Store};
use coop::linux::{mount, seccomp};

/// This machine's kind of cgroup layout, fixed so the target does not depend on the host.
const HYBRID: &str = "\
30 25 0:26 / /sys/fs/cgroup rw - tmpfs tmpfs rw,mode=755
31 30 0:27 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct
32 30 0:28 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
33 30 0:29 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,name=systemd
34 30 0:30 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw
";
const V2: &str = "30 25 0:26 /sub /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n";
const OWN: &str = "4:memory:/user.slice\n1:cpu,cpuacct:/\n9:name=systemd:/init.scope\n0::/sub/me\n";

/// config.json, then what create derives from it before touching the system.
pub fn config(data: &[u8]) {
    let Ok(spec) = coop::spec::parse(data) else {
        return;
    };
    if let Err(e) = coop::spec::validate(&spec) {
        assert!(e.to_string().starts_with("config.json: "), "{e}");
        return;
    }
    for m in spec.mounts().iter().flatten() {
        let _ = mount::parse(m.options().as_deref().unwrap_or_default());
    }
    let Some(linux) = spec.linux() else {
        return;
    };
    if let Some(s) = linux.seccomp() {
        if let Ok(f) = seccomp::compile(s) {
            check_bpf(f.instructions());
        }
    }
    if let Some(r) = linux.resources() {
        for writes in [resources::v1(r), resources::v2(r)].into_iter().flatten() {
            for w in writes {
                // Every write goes to a file of the container's own cgroup directory.
                assert!(
                    !w.file.contains('/') && w.file != "." && w.file != "..",
                    "cgroup write to {:?}",
                    w.file
                );
            }
        }
        if let Some(rules) = r.devices() {
            let prog = devices::program(rules);
            for (ty, major, minor) in [(1, 1, 3), (2, 8, 0), (1, 136, 0), (2, u32::MAX, u32::MAX)] {
                for access in [1, 2, 4, 7] {
                    let v = devices::eval(&prog, ty, access, major, minor);
                    assert!(v <= 1, "device program returned {v}");
                }
            }
        }
    }
    let logical = cgroups::logical_path(linux.cgroups_path().as_deref(), "/coop/x");
    for layout in [HYBRID, V2] {
        let l = Layout::parse(layout);
        let paths = l.resolve(&logical, OWN).expect("a layout with hierarchies");
        let mounts = l.unified.iter().chain(l.v1.values());
        for (dir, (mnt, _)) in paths.unified.iter().chain(paths.v1.values()).zip(mounts) {
            inside(dir, mnt);
        }
    }
}

/// `dir` is `mnt` or below it, with no ".." on the way.
fn inside(dir: &Path, mnt: &Path) {
    assert!(
        dir.starts_with(mnt)
            && !dir
                .components()
                .any(|c| matches!(c, std::path::Component::ParentDir)),
        "cgroup directory {} outside {}",
        dir.display(),
        mnt.display()
    );
}

thread_local! {
    static STORE: RefCell<Option<(tempfile::TempDir, Store)>> = const { RefCell::new(None) };
}

/// meta.json as every command after create reads it; what loads whole saves and loads back
/// equal, what loads only as derived from the kernel (corrupt) is never saved over.
pub fn meta(data: &[u8]) {
    STORE.with(|s| {
        let mut s = s.borrow_mut();
        let (_, store) = s.get_or_insert_with(|| {
            let tmp = tempfile::tempdir().unwrap();
            let store = Store::new(tmp.path());
            drop(store.create("m").unwrap());
            (tmp, store)
        });
        std::fs::write(store.dir("m").join("meta.json"), data).unwrap();
        let Ok(c) = Container::load(store, "m", true) else {
            return;
        };
        let _ = c.is_alive();
        if c.unreadable.is_some() {
            // A corrupt meta.json is listed (derived from the kernel) but never overwritten.
            assert!(c.save().is_err(), "an unreadable state was saved over");
            return;
        }
        c.save().expect("save a loaded state");
        let first = c.meta.clone();
        drop(c);
        let again = Container::load(store, "m", false).expect("load a saved state");
        assert_eq!(first, again.meta);
    });
}

/// The seccomp compiler: whatever it accepts is a program the kernel would accept.
pub fn seccomp(data: &[u8]) {
    let Ok(s) = serde_json::from_slice::<oci_spec::runtime::LinuxSeccomp>(data) else {
        return;
    };
    if let Ok(f) = seccomp::compile(&s) {
        check_bpf(f.instructions());
    }
}

pub fn mount_options(data: &[u8]) {
    let Ok(opts) = serde_json::from_slice::<Vec<String>>(data) else {
        return;
    };
    if let Ok(o) = mount::parse(&opts) {
        // Flag words become flags; only the other words are passed on as data.
        for w in &o.data {
            assert!(
                ![
                    "ro",
                    "rw",
                    "bind",
                    "rbind",
                    "nosuid",
                    "private",
                    "rslave",
                    "tmpcopyup"
                ]
                .contains(&w.as_str()),
                "{w:?} passed as data"
            );
        }
    }
}

/// The checks of the kernel's seccomp_check_filter and bpf_check_classic that matter here:
/// size, loads inside seccomp_data, jumps forward and inside, the end is a return.
fn check_bpf(p: &[libc::sock_filter]) {
    assert!(!p.is_empty() && p.len() <= 4096, "{} instructions", p.len());
    for (i, ins) in p.iter().enumerate() {
        let class = ins.code & 0x07;
        match class {
            0x00 if ins.code == 0x20 => {
                // BPF_LD | BPF_W | BPF_ABS
                assert!(ins.k < 64 && ins.k % 4 == 0, "load of {} at {i}", ins.k);
            }
            0x05 => {
                let ja = ins.code & 0xf0 == 0x00;
                let next = |off: usize| i + 1 + off;
                if ja {
                    assert!(next(ins.k as usize) < p.len(), "ja past the end at {i}");
                } else {
                    assert!(
                        next(ins.jt as usize) < p.len() && next(ins.jf as usize) < p.len(),
                        "jump past the end at {i}"
                    );
                }
            }
            0x06 => {}
            0x00..=0x07 => {}
            _ => unreachable!(),
        }
    }
    assert_eq!(
        p.last().unwrap().code & 0x07,
        0x06,
        "the program does not end in a return"
    );
}
