//! Compile time of podman's seccomp profile (median of 1000 runs).
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
}
