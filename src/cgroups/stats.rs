//! Statistics in runc's `events --stats` format, read from v1 or v2 control files.
use super::fs;
use serde_json::{json, Map, Value};
use std::path::Path;

fn num(dir: &Path, file: &str) -> u64 {
    fs::read(dir, file)
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .unwrap_or(0)
}

/// "key value" lines (memory.stat, cpu.stat, cpuacct.stat, memory.events).
pub fn keyed(dir: &Path, file: &str) -> Map<String, Value> {
    let mut m = Map::new();
    if let Ok(s) = fs::read(dir, file) {
        for l in s.lines() {
            if let Some((k, v)) = l.split_once(' ') {
                if let Ok(n) = v.trim().parse::<u64>() {
                    m.insert(k.to_string(), json!(n));
                }
            }
        }
    }
    m
}

fn get(m: &Map<String, Value>, k: &str) -> u64 {
    m.get(k).and_then(Value::as_u64).unwrap_or(0)
}

/// "max" reads as u64::MAX, as runc reports an unlimited value.
fn limit(dir: &Path, file: &str) -> u64 {
    match fs::read(dir, file) {
        Ok(s) if s.trim() == "max" => u64::MAX,
        Ok(s) => s.trim().parse().unwrap_or(0),
        Err(_) => 0,
    }
}

/// v1: each controller from its own hierarchy directory (None when not mounted).
pub fn v1(dir: impl Fn(&str) -> Option<std::path::PathBuf>) -> Value {
    let mut data = json!({"cpu": {}, "memory": {}, "pids": {}, "blkio": {}, "hugetlb": {}});
    if let Some(d) = dir("cpuacct") {
        let percpu: Vec<u64> = fs::read(&d, "cpuacct.usage_percpu")
            .map(|s| {
                s.split_whitespace()
                    .filter_map(|v| v.parse().ok())
                    .collect()
            })
            .unwrap_or_default();
        // cpuacct.stat counts clock ticks (USER_HZ = 100): 10 ms each.
        let st = keyed(&d, "cpuacct.stat");
        data["cpu"]["usage"] = json!({
            "total": num(&d, "cpuacct.usage"),
            "percpu": percpu,
            "kernel": get(&st, "system") * 10_000_000,
            "user": get(&st, "user") * 10_000_000,
        });
    }
    if let Some(d) = dir("cpu") {
        let st = keyed(&d, "cpu.stat");
        data["cpu"]["throttling"] = json!({
            "periods": get(&st, "nr_periods"),
            "throttled_periods": get(&st, "nr_throttled"),
            "throttled_time": get(&st, "throttled_time"),
        });
    }
    if let Some(d) = dir("memory") {
        let usage = |prefix: &str| {
            json!({
                "usage": num(&d, &format!("{prefix}usage_in_bytes")),
                "max": num(&d, &format!("{prefix}max_usage_in_bytes")),
                "failcnt": num(&d, &format!("{prefix}failcnt")),
                "limit": num(&d, &format!("{prefix}limit_in_bytes")),
            })
        };
        let raw = keyed(&d, "memory.stat");
        data["memory"] = json!({
            "cache": get(&raw, "cache"),
            "usage": usage("memory."),
            "swap": usage("memory.memsw."),
            "kernel": usage("memory.kmem."),
            "kernel_tcp": usage("memory.kmem.tcp."),
            "raw": raw,
        });
    }
    if let Some(d) = dir("pids") {
        data["pids"] = json!({"current": num(&d, "pids.current"), "limit": limit(&d, "pids.max")});
    }
    data
}

/// v2: everything from the one directory.
pub fn v2(d: &Path) -> Value {
    let cpu = keyed(d, "cpu.stat");
    let mem = keyed(d, "memory.stat");
    json!({
        "cpu": {
            "usage": {
                "total": get(&cpu, "usage_usec") * 1000,
                "kernel": get(&cpu, "system_usec") * 1000,
                "user": get(&cpu, "user_usec") * 1000,
            },
            "throttling": {
                "periods": get(&cpu, "nr_periods"),
                "throttled_periods": get(&cpu, "nr_throttled"),
                "throttled_time": get(&cpu, "throttled_usec") * 1000,
            },
        },
        "memory": {
            "cache": get(&mem, "file"),
            "usage": {"usage": num(d, "memory.current"), "max": num(d, "memory.peak"), "limit": limit(d, "memory.max"), "failcnt": 0},
            "swap": {"usage": num(d, "memory.swap.current"), "limit": limit(d, "memory.swap.max")},
            "raw": mem,
        },
        "pids": {"current": num(d, "pids.current"), "limit": limit(d, "pids.max")},
        "blkio": {},
        "hugetlb": {},
    })
}

/// How many OOM kills the cgroup has seen (v1 memory.oom_control, v2 memory.events).
pub fn oom_kills(dir: &Path) -> u64 {
    let m = keyed(dir, "memory.events");
    if !m.is_empty() {
        return get(&m, "oom_kill");
    }
    get(&keyed(dir, "memory.oom_control"), "oom_kill")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_and_v2_from_fake_files() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        std::fs::write(d.join("cpuacct.usage"), "1500\n").unwrap();
        std::fs::write(d.join("cpuacct.usage_percpu"), "1000 500 \n").unwrap();
        std::fs::write(d.join("cpuacct.stat"), "user 2\nsystem 1\n").unwrap();
        std::fs::write(d.join("memory.usage_in_bytes"), "4096\n").unwrap();
        std::fs::write(d.join("memory.stat"), "cache 12\nrss 34\n").unwrap();
        std::fs::write(d.join("pids.current"), "3\n").unwrap();
        std::fs::write(d.join("pids.max"), "max\n").unwrap();
        std::fs::write(
            d.join("memory.oom_control"),
            "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n",
        )
        .unwrap();
        let s = v1(|_| Some(d.to_path_buf()));
        assert_eq!(s["cpu"]["usage"]["total"], 1500);
        assert_eq!(s["cpu"]["usage"]["percpu"], json!([1000, 500]));
        assert_eq!(s["cpu"]["usage"]["user"], 20_000_000);
        assert_eq!(s["memory"]["usage"]["usage"], 4096);
        assert_eq!(s["memory"]["raw"]["rss"], 34);
        assert_eq!(s["pids"]["limit"], u64::MAX);
        assert_eq!(oom_kills(d), 2);
        std::fs::write(
            d.join("cpu.stat"),
            "usage_usec 7\nuser_usec 5\nsystem_usec 2\n",
        )
        .unwrap();
        std::fs::write(d.join("memory.current"), "8192\n").unwrap();
        std::fs::write(d.join("memory.events"), "low 0\noom 1\noom_kill 1\n").unwrap();
        let s = v2(d);
        assert_eq!(s["cpu"]["usage"]["total"], 7000);
        assert_eq!(s["memory"]["usage"]["usage"], 8192);
        assert_eq!(s["pids"]["current"], 3);
        assert_eq!(oom_kills(d), 1);
    }
}
