//! Fuzz targets for coop's parsers, run as an ordinary test:
//!
//!     COOP_FUZZ_SECS=60 cargo test --release --test fuzz            # all targets, 60 s each
//!     COOP_FUZZ_SECS=60 cargo test --release --test fuzz -- seccomp # one target
//!
//! Targets: `config` (config.json: load, validate, then what create derives from it: mount
//! options, the seccomp filter, cgroup writes, the device program, the cgroup path), `meta`
//! (meta.json as `state` reads it, and a save/load round trip), `seccomp` (the compiler, on
//! profiles mutated from a corpus and generated from scratch) and `mount_options`.
//!
//! Each target first replays its corpus (`fuzz/corpus/<target>/`, plus the host's podman
//! profile for `seccomp`), then mutates corpus entries for COOP_FUZZ_SECS seconds (default 3).
//! Inputs are drawn with proptest (edits of the parsed JSON, then a few byte edits), so a
//! failing input is shrunk to a minimal one. A panic fails the test after the shrunk input is
//! written to `fuzz/artifacts/<target>-<hash>.json` (copy it into the corpus to keep it as a
//! regression case); a single input running for COOP_FUZZ_HANG_SECS (default 20) is a hang:
//! the input is written the same way and the process aborts. COOP_FUZZ_SEED (64 hex digits)
//! replays a run; the seed of every run is printed. Shrinking is bounded by a number of steps
//! (never by time), so a failing input shrinks to the same result on an idle or a loaded
//! machine; only how many inputs are generated depends on the time and the load.
use std::hash::{Hash, Hasher};
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::strategy::{BoxedStrategy, ValueTree};
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use serde_json::{json, Value};

mod sinks;

fn env_secs(name: &str, default: u64) -> Duration {
    Duration::from_secs(
        std::env::var(name)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(default),
    )
}

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

fn corpus(target: &str) -> Vec<Vec<u8>> {
    let d = dir().join("corpus").join(target);
    let mut files: Vec<_> = std::fs::read_dir(&d)
        .unwrap_or_else(|e| panic!("corpus {}: {e}", d.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let seeds: Vec<_> = files.iter().map(|p| std::fs::read(p).unwrap()).collect();
    assert!(!seeds.is_empty(), "corpus {} is empty", d.display());
    seeds
}

/// Keep the input in the directory `d` (fuzz/artifacts) and return where.
fn save_artifact(d: &Path, target: &str, input: &[u8]) -> PathBuf {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    input.hash(&mut h);
    std::fs::create_dir_all(d).unwrap();
    let p = d.join(format!("{target}-{:016x}.json", h.finish()));
    std::fs::write(&p, input).unwrap();
    p
}

/// The panic message of `sink(input)`, if it panics.
fn panics(sink: fn(&[u8]), input: &[u8]) -> Option<String> {
    quiet_panics(true);
    let r = panic::catch_unwind(AssertUnwindSafe(|| sink(input)));
    quiet_panics(false);
    r.err().map(|e| {
        e.downcast_ref::<String>()
            .cloned()
            .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "panic".into())
    })
}

/// The most shrinking steps per failure: bounded by steps, not time, so the result is the
/// same on a loaded machine.
const SHRINK_STEPS: u32 = 4096;

/// When a run stops generating inputs.
#[derive(Clone, Copy, Debug)]
enum Stop {
    /// After this long (COOP_FUZZ_SECS): the fuzz targets.
    After(Duration),
    /// After this many generated inputs: the harness self-test, independent of load.
    Cases(u64),
}

/// The seed and the length of one run, and where failing inputs go.
struct Budget {
    seed: [u8; 32],
    stop: Stop,
    artifacts: PathBuf,
}

impl Budget {
    /// COOP_FUZZ_SEED (or a random seed) and COOP_FUZZ_SECS (default 3).
    fn from_env() -> Budget {
        Budget {
            seed: seed(),
            stop: Stop::After(env_secs("COOP_FUZZ_SECS", 3)),
            artifacts: dir().join("artifacts"),
        }
    }
}

fn seed() -> [u8; 32] {
    let mut s = [0u8; 32];
    match std::env::var("COOP_FUZZ_SEED") {
        Ok(hex) => {
            assert_eq!(hex.len(), 64, "COOP_FUZZ_SEED: 64 hex digits");
            for (i, b) in s.iter_mut().enumerate() {
                *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).expect("COOP_FUZZ_SEED: hex");
            }
        }
        Err(_) => {
            use std::io::Read;
            std::fs::File::open("/dev/urandom")
                .and_then(|mut f| f.read_exact(&mut s))
                .expect("read /dev/urandom");
        }
    }
    s
}

thread_local! {
    static QUIET: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Panics of this thread are caught and reported by `fuzz`, not printed once per shrinking
/// step; other threads (tests) keep the usual hook.
fn quiet_panics(on: bool) {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let default = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if !QUIET.with(|q| q.get()) {
                default(info)
            }
        }));
    });
    QUIET.with(|q| q.set(on));
}

/// Replay the corpus, then fuzz `sink` with inputs from `gen` until the time is up.
fn fuzz(target: &'static str, seeds: &[Vec<u8>], gen: BoxedStrategy<Vec<u8>>, sink: fn(&[u8])) {
    fuzz_with(target, seeds, gen, sink, Budget::from_env())
}

/// `fuzz` with an explicit seed and stopping rule.
fn fuzz_with(
    target: &'static str,
    seeds: &[Vec<u8>],
    gen: BoxedStrategy<Vec<u8>>,
    sink: fn(&[u8]),
    budget: Budget,
) {
    // The watchdog: the input being run and since when.
    let current: Arc<Mutex<(Instant, Vec<u8>, bool)>> =
        Arc::new(Mutex::new((Instant::now(), vec![], false)));
    let hang = env_secs("COOP_FUZZ_HANG_SECS", 20);
    {
        let current = current.clone();
        let artifacts = budget.artifacts.clone();
        std::thread::spawn(move || loop {
            std::thread::sleep(Duration::from_millis(500));
            let c = current.lock().unwrap();
            if c.2 {
                return;
            }
            if c.0.elapsed() > hang {
                let p = save_artifact(&artifacts, target, &c.1);
                eprintln!(
                    "fuzz {target}: an input ran for over {hang:?} (a hang): {}",
                    p.display()
                );
                std::process::abort();
            }
        });
    }
    let run = |input: &[u8]| {
        *current.lock().unwrap() = (Instant::now(), input.to_vec(), false);
        panics(sink, input)
    };
    let mut failure = None;
    for s in seeds {
        if let Some(msg) = run(s) {
            failure = Some((s.clone(), msg));
            break;
        }
    }
    let seed = budget.seed;
    let hex: String = seed.iter().map(|b| format!("{b:02x}")).collect();
    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        TestRng::from_seed(RngAlgorithm::ChaCha, &seed),
    );
    let started = Instant::now();
    let more = |cases: u64| match budget.stop {
        Stop::After(d) => started.elapsed() < d,
        Stop::Cases(n) => cases < n,
    };
    let mut cases = 0u64;
    while failure.is_none() && more(cases) {
        let mut tree = gen.new_tree(&mut runner).expect("generate an input");
        cases += 1;
        let Some(msg) = run(&tree.current()) else {
            continue;
        };
        // Shrink as proptest does: simplify while it still fails, else step back.
        let mut best = (tree.current(), msg);
        let mut steps = 0;
        if tree.simplify() {
            while steps < SHRINK_STEPS {
                steps += 1;
                let input = tree.current();
                if let Some(msg) = run(&input) {
                    best = (input, msg);
                    if !tree.simplify() {
                        break;
                    }
                } else if !tree.complicate() {
                    break;
                }
            }
        }
        failure = Some(best);
    }
    current.lock().unwrap().2 = true;
    eprintln!(
        "fuzz {target}: {} corpus inputs, {cases} generated, seed {hex}",
        seeds.len()
    );
    if let Some((input, msg)) = failure {
        let p = save_artifact(&budget.artifacts, target, &input);
        panic!(
            "fuzz {target}: panic {msg:?} on the input saved as {} (seed {hex})",
            p.display()
        );
    }
}

// ---- Mutations of JSON documents ----

/// One edit of a JSON document: which node (by pre-order index, modulo the count), what to
/// do, and a number that picks the new value.
#[derive(Clone, Debug)]
struct Edit {
    node: u32,
    kind: u8,
    pick: u32,
}

fn edit() -> impl Strategy<Value = Edit> {
    (any::<u32>(), 0u8..8, any::<u32>()).prop_map(|(node, kind, pick)| Edit { node, kind, pick })
}

/// Byte edits after the JSON ones: most inputs stay JSON, some test the parser's errors.
#[derive(Clone, Debug)]
struct ByteEdit {
    pos: u32,
    kind: u8,
    byte: u8,
}

fn byte_edit() -> impl Strategy<Value = ByteEdit> {
    (any::<u32>(), 0u8..3, any::<u8>()).prop_map(|(pos, kind, byte)| ByteEdit { pos, kind, byte })
}

/// Values that tend to find edge cases in a runtime's config handling.
fn interesting(pick: u32) -> Value {
    let long = "a".repeat(5000);
    let vals = [
        Value::Null,
        json!(true),
        json!(false),
        json!(0),
        json!(1),
        json!(-1),
        json!(7),
        json!(255),
        json!(65536),
        json!(2147483647u64),
        json!(2147483648u64),
        json!(4294967295u64),
        json!(4294967296u64),
        json!(9007199254740993u64),
        json!(i64::MIN),
        json!(u64::MAX),
        json!(1.5),
        json!(""),
        json!("/"),
        json!(".."),
        json!("../../.."),
        json!("/proc/self/exe"),
        json!(long),
        json!("\u{0}"),
        json!("é/\u{202e}"),
        json!("SCMP_ACT_NOTIFY"),
        json!("SCMP_ACT_ERRNO"),
        json!("SCMP_ACT_KILL_PROCESS"),
        json!("SCMP_ARCH_X86"),
        json!("SCMP_ARCH_AARCH64"),
        json!("SCMP_CMP_MASKED_EQ"),
        json!("SCMP_CMP_LT"),
        json!("CAP_SYS_ADMIN"),
        json!("RLIMIT_NOFILE"),
        json!("bind"),
        json!("rbind"),
        json!("ro"),
        json!("mode=0777"),
        json!("size=1k"),
        json!("c"),
        json!("b"),
        json!("rwm"),
        json!("max"),
        json!("0-1,3"),
        json!("system.slice:coop:x"),
        json!("user"),
        json!("mount"),
        json!([]),
        json!({}),
        json!(["x"]),
        json!([0, 1]),
        json!({"a": 1}),
        json!({"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}),
        json!({"names": ["write"], "action": "SCMP_ACT_NOTIFY"}),
        json!({"type": "c", "major": -1, "minor": 4294967295u64, "access": "rwm", "allow": true}),
        json!({"destination": "/x", "type": "tmpfs", "options": ["idmap"]}),
    ];
    vals[pick as usize % vals.len()].clone()
}

/// Field names of the runtime spec, to add where they are missing.
const KEYS: &[&str] = &[
    "seccomp",
    "resources",
    "devices",
    "memory",
    "limit",
    "swap",
    "reservation",
    "kernel",
    "disableOOMKiller",
    "cpu",
    "shares",
    "quota",
    "period",
    "burst",
    "idle",
    "realtimeRuntime",
    "realtimePeriod",
    "cpus",
    "mems",
    "pids",
    "blockIO",
    "weight",
    "weightDevice",
    "throttleReadBpsDevice",
    "hugepageLimits",
    "pageSize",
    "rdma",
    "unified",
    "mounts",
    "options",
    "namespaces",
    "path",
    "uidMappings",
    "gidMappings",
    "capabilities",
    "bounding",
    "rlimits",
    "hooks",
    "prestart",
    "sysctl",
    "maskedPaths",
    "readonlyPaths",
    "cgroupsPath",
    "rootfsPropagation",
    "timeOffsets",
    "personality",
    "args",
    "architectures",
    "syscalls",
    "names",
    "action",
    "errnoRet",
    "defaultErrnoRet",
    "index",
    "value",
    "valueTwo",
    "op",
    "flags",
    "listenerPath",
    "cwd",
    "user",
    "uid",
    "additionalGids",
    "hostname",
    "status",
    "pid",
    "pid_start_time",
    "sandbox_id",
    "sandbox_root",
    "cgroup",
    "v1",
];

fn count(v: &Value) -> usize {
    1 + match v {
        Value::Array(a) => a.iter().map(count).sum(),
        Value::Object(o) => o.values().map(count).sum(),
        _ => 0,
    }
}

/// The `n`th node in pre-order.
fn nth<'a>(v: &'a mut Value, n: &mut usize) -> Option<&'a mut Value> {
    if *n == 0 {
        return Some(v);
    }
    *n -= 1;
    match v {
        Value::Array(a) => a.iter_mut().find_map(|c| nth(c, n)),
        Value::Object(o) => o.values_mut().find_map(|c| nth(c, n)),
        _ => None,
    }
}

fn node(doc: &mut Value, i: u32) -> &mut Value {
    let mut n = i as usize % count(doc);
    nth(doc, &mut n).expect("node index below the count")
}

fn apply(doc: &mut Value, e: &Edit) {
    let donor = node(doc, e.pick).clone();
    let target = node(doc, e.node);
    match e.kind {
        0 | 1 => *target = interesting(e.pick),
        2 => *target = donor, // splice another part of the document here
        3 => match target {
            Value::Object(o) if !o.is_empty() => {
                let k = o.keys().nth(e.pick as usize % o.len()).unwrap().clone();
                o.remove(&k);
            }
            Value::Array(a) if !a.is_empty() => {
                a.remove(e.pick as usize % a.len());
            }
            _ => *target = Value::Null,
        },
        4 => match target {
            Value::Object(o) => {
                o.insert(
                    KEYS[e.pick as usize % KEYS.len()].into(),
                    interesting(e.pick / 7),
                );
            }
            Value::Array(a) => {
                let c = a.get(e.pick as usize % a.len().max(1)).cloned();
                a.push(c.unwrap_or_else(|| interesting(e.pick)));
            }
            _ => *target = interesting(e.pick),
        },
        5 => {
            if let Some(n) = target.as_i64() {
                *target = json!(n.wrapping_add(e.pick as i32 as i64 % 3 - 1).wrapping_neg());
            } else if let Some(n) = target.as_u64() {
                *target = json!(n ^ (1u64 << (e.pick % 64)));
            } else {
                *target = interesting(e.pick);
            }
        }
        6 => match target {
            // Rename a key: the keys of "unified", "sysctl" and annotations are data too.
            Value::Object(o) if !o.is_empty() => {
                let k = o.keys().nth(e.pick as usize % o.len()).unwrap().clone();
                let v = o.remove(&k).unwrap();
                let new = match e.pick % 4 {
                    0 => format!("{k}/../../x"),
                    1 => format!("../{k}"),
                    2 => format!("{k}."),
                    _ => String::new(),
                };
                o.insert(new, v);
            }
            _ => *target = interesting(e.pick),
        },
        _ => {
            if let Value::String(s) = target {
                match e.pick % 4 {
                    0 => s.push_str("/.."),
                    1 => s.insert(0, '/'),
                    2 => *s = s.repeat(3),
                    _ => {
                        let mut at = e.pick as usize % (s.len() + 1);
                        while !s.is_char_boundary(at) {
                            at -= 1;
                        }
                        s.truncate(at);
                    }
                }
            } else {
                *target = interesting(e.pick);
            }
        }
    }
}

fn render(seed: &[u8], edits: &[Edit], bytes: &[ByteEdit]) -> Vec<u8> {
    let mut out = match serde_json::from_slice::<Value>(seed) {
        Ok(mut doc) => {
            for e in edits {
                apply(&mut doc, e);
            }
            serde_json::to_vec(&doc).unwrap()
        }
        Err(_) => seed.to_vec(),
    };
    for b in bytes {
        let at = b.pos as usize % (out.len() + 1);
        match b.kind {
            0 if at < out.len() => out[at] ^= b.byte | 1,
            1 => out.insert(at, b.byte),
            _ if at < out.len() => {
                out.remove(at);
            }
            _ => {}
        }
    }
    out
}

/// Inputs made by editing corpus entries.
fn mutated(seeds: Vec<Vec<u8>>) -> BoxedStrategy<Vec<u8>> {
    let n = seeds.len();
    (
        0..n,
        vec(edit(), 0..12),
        prop_oneof![9 => Just(vec![]), 1 => vec(byte_edit(), 1..4)],
    )
        .prop_map(move |(i, edits, bytes)| render(&seeds[i], &edits, &bytes))
        .boxed()
}

// ---- Generators from scratch ----

const SYSCALLS: &[&str] = &[
    "read",
    "write",
    "close",
    "openat",
    "execve",
    "clone",
    "clone3",
    "socket",
    "socketcall",
    "ipc",
    "shmget",
    "personality",
    "kill",
    "mkdirat",
    "getpid",
    "swapon",
    "ptrace",
    "mmap",
    "mmap2",
    "fstat64",
    "arch_prctl",
    "uselib",
    "_llseek",
    "set_thread_area",
    "io_uring_setup",
    "nosuchcall",
    "",
];
const ACTIONS: &[&str] = &[
    "SCMP_ACT_ALLOW",
    "SCMP_ACT_ERRNO",
    "SCMP_ACT_KILL",
    "SCMP_ACT_KILL_THREAD",
    "SCMP_ACT_KILL_PROCESS",
    "SCMP_ACT_TRAP",
    "SCMP_ACT_TRACE",
    "SCMP_ACT_LOG",
    "SCMP_ACT_NOTIFY",
];
const OPS: &[&str] = &[
    "SCMP_CMP_NE",
    "SCMP_CMP_LT",
    "SCMP_CMP_LE",
    "SCMP_CMP_EQ",
    "SCMP_CMP_GE",
    "SCMP_CMP_GT",
    "SCMP_CMP_MASKED_EQ",
];
const ARCHES: &[&str] = &[
    "SCMP_ARCH_X86_64",
    "SCMP_ARCH_X86",
    "SCMP_ARCH_X32",
    "SCMP_ARCH_AARCH64",
    "SCMP_ARCH_ARM",
    "SCMP_ARCH_S390X",
    "SCMP_ARCH_RISCV64",
];

fn boundary_u64() -> impl Strategy<Value = u64> {
    prop_oneof![
        any::<u64>(),
        0u64..4,
        Just(u32::MAX as u64),
        Just(1u64 << 32),
        Just(u64::MAX),
        Just(i64::MAX as u64)
    ]
}

/// A whole seccomp profile built from the names above.
fn profile() -> BoxedStrategy<Vec<u8>> {
    let arg = (0u32..8, proptest::sample::select(OPS), boundary_u64(), boundary_u64())
        .prop_map(|(index, op, value, two)| json!({"index": index, "op": op, "value": value, "valueTwo": two}));
    let rule = (
        vec(proptest::sample::select(SYSCALLS), 0..4),
        proptest::sample::select(ACTIONS),
        proptest::option::of(0u32..70000),
        vec(arg, 0..4),
    )
        .prop_map(|(names, action, errno, args)| {
            let mut r = json!({"names": names, "action": action, "args": args});
            if let Some(e) = errno {
                r["errnoRet"] = json!(e);
            }
            r
        });
    (
        proptest::sample::select(ACTIONS),
        vec(proptest::sample::select(ARCHES), 0..4),
        vec(rule, 0..24),
        any::<bool>(),
    )
        .prop_map(|(default, arches, rules, log)| {
            let mut p =
                json!({"defaultAction": default, "architectures": arches, "syscalls": rules});
            if log {
                p["flags"] = json!(["SECCOMP_FILTER_FLAG_LOG"]);
            }
            serde_json::to_vec(&p).unwrap()
        })
        .boxed()
}

const WORDS: &[&str] = &[
    "ro",
    "rw",
    "bind",
    "rbind",
    "nosuid",
    "suid",
    "nodev",
    "dev",
    "noexec",
    "exec",
    "sync",
    "async",
    "remount",
    "mand",
    "noatime",
    "atime",
    "strictatime",
    "relatime",
    "rro",
    "rrw",
    "rnosuid",
    "rnodev",
    "rnoexec",
    "rnoatime",
    "rnosymfollow",
    "private",
    "rprivate",
    "shared",
    "rshared",
    "slave",
    "rslave",
    "unbindable",
    "runbindable",
    "tmpcopyup",
    "idmap",
    "ridmap",
    "mode=0755",
    "size=1m",
    "uid=0",
    "gid=5",
    "X-mount.mkdir",
    "=",
    ",",
    "",
    "ro,rw",
];

fn mount_options() -> BoxedStrategy<Vec<u8>> {
    let word = prop_oneof![
        3 => proptest::sample::select(WORDS).prop_map(String::from),
        1 => vec(any::<char>(), 0..12).prop_map(|c| c.into_iter().collect::<String>()),
    ];
    vec(word, 0..12)
        .prop_map(|w| serde_json::to_vec(&w).unwrap())
        .boxed()
}

#[test]
fn config() {
    let seeds = corpus("config");
    fuzz("config", &seeds, mutated(seeds.clone()), sinks::config);
}

#[test]
fn meta() {
    let seeds = corpus("meta");
    fuzz("meta", &seeds, mutated(seeds.clone()), sinks::meta);
}

#[test]
fn seccomp() {
    let mut seeds = corpus("seccomp");
    // podman's profile as the host has it, when it has it (not kept in the repository).
    if let Ok(p) = std::fs::read("/usr/share/containers/seccomp.json") {
        seeds.push(p);
    }
    let gen = prop_oneof![mutated(seeds.clone()), profile()].boxed();
    fuzz("seccomp", &seeds, gen, sinks::seccomp);
}

#[test]
fn mount_options_target() {
    let seeds = corpus("mount-options");
    let gen = prop_oneof![mutated(seeds.clone()), mount_options()].boxed();
    fuzz("mount_options", &seeds, gen, sinks::mount_options);
}

/// The harness finds a panic, shrinks it and keeps the input. Deterministic: a fixed seed, a
/// bound on generated inputs instead of a time, and shrinking bounded by steps, so the same
/// input is found and shrunk to the same result however loaded the machine is.
#[test]
fn harness_catches_and_shrinks_a_panic() {
    fn sink(data: &[u8]) {
        assert!(!data.windows(10).any(|w| w == b"4294967296"), "boom");
    }
    let seeds = vec![br#"{"a":{"b":[1,2,{"c":3}]},"d":"x"}"#.to_vec()];
    let gen = mutated(seeds.clone());
    // Its own artifacts directory: the same seed gives the same file name in every run, and
    // runs side by side must not remove each other's.
    let artifacts = tempfile::tempdir().unwrap();
    let budget = Budget {
        seed: [7; 32],
        stop: Stop::Cases(1_000_000),
        artifacts: artifacts.path().to_path_buf(),
    };
    let err = panic::catch_unwind(AssertUnwindSafe(|| {
        fuzz_with("selftest", &seeds, gen, sink, budget)
    }))
    .unwrap_err();
    let msg = err.downcast_ref::<String>().unwrap();
    let path = msg
        .split("saved as ")
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap();
    let input = std::fs::read(path).unwrap();
    std::fs::remove_file(path).unwrap();
    let text = String::from_utf8_lossy(&input);
    assert!(text.contains("4294967296"), "{text}");
    // Shrunk: the edits that did not matter are gone, so little else changed.
    assert!(text.len() < 60, "{text}");
}
