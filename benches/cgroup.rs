//! The cgroup part of a create, as coop does it: make the container's cgroup, start a process
//! in it, and (where clone3 cannot) move it there. Two ways, side by side:
//!   clone3(CLONE_INTO_CGROUP)  the child starts in its cgroup2 cgroup; v1 hierarchies, if
//!                              any, still take a cgroup.procs write each
//!   clone3 + cgroup.procs      the child starts in our cgroup and is moved by writes
//! Timed from before the cgroup is made until the child is in place (the child then exits and
//! the cgroup is removed, untimed). Needs root. `cargo bench --bench cgroup`; for a pure
//! cgroup v2 view on a hybrid host: unshare -m sh -c 'mount -t cgroup2 none /sys/fs/cgroup &&
//! cargo bench --bench cgroup'.
use coop::cgroups::{new_manager, Layout};
use coop::process::clone::{clone3, Forked};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

fn once(n: usize, into_cgroup: bool) -> Duration {
    let path = format!("/coop-bench/{}-{n}", std::process::id());
    let start = Instant::now();
    let m = new_manager(&path, Default::default()).expect("cgroup paths");
    m.create().expect("create the cgroup");
    let fd = if into_cgroup { m.clone_into_fd() } else { None };
    let pid = match clone3(0, fd.as_ref().map(|f| f.as_raw_fd())).expect("clone3") {
        // SAFETY: the child of a single-threaded process leaves at once.
        Forked::Child => unsafe { libc::_exit(0) },
        Forked::Parent { pid, .. } => pid,
    };
    m.add_task(pid, fd.is_some()).expect("move the child");
    let took = start.elapsed();
    let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None);
    m.destroy().expect("remove the cgroup");
    took
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("the cgroup benchmark makes real cgroups: run it as root");
        return;
    }
    let layout = Layout::detect().expect("cgroup layout");
    let kind = if layout.is_pure_v2() {
        "cgroup v2".to_string()
    } else {
        format!("hybrid: {} v1 hierarchies + cgroup2", layout.v1.len())
    };
    let runs = 500;
    for i in 0..20 {
        once(i, i % 2 == 0);
    }
    let (mut a, mut b) = (vec![], vec![]);
    for i in 0..runs {
        a.push(once(2 * i, true));
        b.push(once(2 * i + 1, false));
    }
    println!("cgroup part of a create ({kind}), median of {runs}:");
    println!(
        "  clone3(CLONE_INTO_CGROUP)  {:>8.1} us",
        median(a).as_secs_f64() * 1e6
    );
    println!(
        "  clone3 + cgroup.procs      {:>8.1} us",
        median(b).as_secs_f64() * 1e6
    );
    let _ = std::fs::remove_dir(
        layout
            .unified
            .as_ref()
            .map(|(m, _)| m.join("coop-bench"))
            .unwrap_or_default(),
    );
}
