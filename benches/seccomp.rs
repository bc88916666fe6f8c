//! Compile time of podman's seccomp profile (median of 1000 runs), and what else a create
//! pays for it: parsing it as part of config.json, and installing the program (in a forked
//! child, against a child that installs nothing).
//! Run with `cargo bench --bench seccomp`.

use std::time::{Duration, Instant};

fn main() {
    let path = "/usr/share/containers/seccomp.json";
    let Ok(text) = std::fs::read_to_string(path) else {
        eprintln!("{path} missing (install containers-common); nothing to measure");
        return;
    };
    // podman's file has Docker's format; keep the rules that apply without
    // extra capabilities on amd64, as podman does for a default container.
    let mut v: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
    let calls: Vec<serde_json::Value> = v["syscalls"]
        .as_array()
        .expect("syscalls")
        .iter()
        .filter(|s| s["includes"].get("caps").is_none() && s["includes"].get("arches").is_none())
        .map(|s| {
            let mut s = s.clone();
            let o = s.as_object_mut().expect("object");
            for k in ["includes", "excludes", "comment"] {
                o.remove(k);
            }
            s
        })
        .collect();
    let o = v.as_object_mut().expect("object");
    o.remove("archMap");
    o.remove("defaultErrno");
    v["syscalls"] = serde_json::Value::Array(calls);
    v["architectures"] = serde_json::json!(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]);
    let spec: oci_spec::runtime::LinuxSeccomp = serde_json::from_value(v).expect("linux.seccomp");
    let mut times: Vec<Duration> = (0..1000)
        .map(|_| {
            let t = Instant::now();
            let f = coop::linux::seccomp::compile(&spec).expect("compiles");
            let d = t.elapsed();
            std::hint::black_box(f);
            d
        })
        .collect();
    times.sort();
    let f = coop::linux::seccomp::compile(&spec).expect("compiles");
    println!(
        "podman profile: {} instructions, compile median {:?} (min {:?}, max {:?})",
        f.instructions().len(),
        times[times.len() / 2],
        times[0],
        times[times.len() - 1]
    );
    let median = |mut t: Vec<Duration>| {
        t.sort();
        t[t.len() / 2]
    };
    // config.json carrying the profile, parsed as create parses it.
    let config = serde_json::to_vec(&serde_json::json!({"ociVersion": "1.2.0",
        "root": {"path": "rootfs"}, "process": {"args": ["true"], "cwd": "/", "user": {"uid": 0, "gid": 0}},
        "linux": {"seccomp": spec}}))
    .unwrap();
    let parse = median(
        (0..1000)
            .map(|_| {
                let t = Instant::now();
                std::hint::black_box(coop::spec::parse(&config).expect("parses"));
                t.elapsed()
            })
            .collect(),
    );
    println!("config.json with the profile: parse median {parse:?}");
    // Install, in a child that then exits; the difference to a child that does not install.
    let child = |install: bool| {
        let t = Instant::now();
        // SAFETY: the child only calls async-signal-safe functions (prctl, seccomp, _exit)
        // on memory that was fully built before the fork.
        match unsafe { libc::fork() } {
            0 => {
                if install {
                    // SAFETY: prctl with integer arguments, in the forked child only.
                    unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
                    let _ = coop::linux::seccomp::install(&f);
                }
                // SAFETY: the forked child leaves without running the parent's destructors.
                unsafe { libc::_exit(0) }
            }
            pid => {
                let mut st = 0;
                // SAFETY: waiting for our own child.
                unsafe { libc::waitpid(pid, &mut st, 0) };
            }
        }
        t.elapsed()
    };
    let with = median((0..300).map(|_| child(true)).collect());
    let without = median((0..300).map(|_| child(false)).collect());
    println!(
        "install: fork+install+exit median {with:?}, fork+exit {without:?}, difference {:?}",
        with.saturating_sub(without)
    );
}
