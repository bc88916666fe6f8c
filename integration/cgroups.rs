//! Resource limits, pause/resume, update and ps on this host's cgroups.
use crate::common::*;
use serde_json::json;

#[test]
fn memory_limit_ends_in_an_oom_kill() {
    // 200 MB into a shell variable under a 32 MiB limit.
    let env = Env::new(
        &[
            "sh",
            "-c",
            "x=$(head -c 200000000 /dev/zero | tr '\\0' a); echo survived",
        ],
        |c| {
            c["linux"]["resources"]["memory"] = json!({"limit": 33554432, "swap": 33554432});
        },
    );
    let out = env.coop(&["run", "-b", env.bundle_path(), &unique("oom")]);
    assert_eq!(
        out.status.code(),
        Some(137),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(!stdout(&out).contains("survived"));
}

#[test]
fn pids_limit_stops_forks() {
    let env = Env::new(
        &[
            "sh",
            "-c",
            "for i in 1 2 3 4 5 6 7 8 9 10; do sleep 5 & done; echo all-forked",
        ],
        |c| {
            c["linux"]["resources"]["pids"] = json!({"limit": 4});
        },
    );
    let out = env.coop(&["run", "-b", env.bundle_path(), &unique("pids")]);
    assert!(!stdout(&out).contains("all-forked"), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("can't fork: Resource temporarily unavailable"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn cpu_quota_is_applied() {
    let env = Env::new(&["sleep", "100"], |c| {
        c["linux"]["resources"]["cpu"] = json!({"quota": 20000, "period": 100000, "shares": 256});
    });
    let id = unique("cpu");
    env.ok(&["run", "-d", "-b", env.bundle_path(), &id]);
    let v1 = std::path::Path::new("/sys/fs/cgroup/cpu/coop").join(&id);
    if v1.exists() {
        assert_eq!(
            std::fs::read_to_string(v1.join("cpu.cfs_quota_us"))
                .unwrap()
                .trim(),
            "20000"
        );
        assert_eq!(
            std::fs::read_to_string(v1.join("cpu.shares"))
                .unwrap()
                .trim(),
            "256"
        );
    } else {
        let v2 = std::path::Path::new("/sys/fs/cgroup/coop").join(&id);
        assert_eq!(
            std::fs::read_to_string(v2.join("cpu.max")).unwrap().trim(),
            "20000 100000"
        );
    }
}

#[test]
fn pause_resume_update_ps() {
    let env = Env::new(&["sh", "-c", "sleep 100 & sleep 100"], |_| {});
    let id = unique("pause");
    env.ok(&["run", "-d", "-b", env.bundle_path(), &id]);
    let pid = env.pid(&id);
    env.ok(&["pause", &id]);
    assert_eq!(env.status(&id), "paused");
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    assert!(stat.contains(") S ") || stat.contains(") D "), "{stat}");
    let out = env.coop(&["pause", &id]);
    assert_eq!(
        stderr(&out).trim(),
        format!("coop: container {id} is paused: cannot pause")
    );
    env.ok(&["resume", &id]);
    assert_eq!(env.status(&id), "running");

    env.ok(&["update", "--memory", "64m", "--pids-limit", "50", &id]);
    let res = env.bundle.path().join("res.json");
    std::fs::write(&res, r#"{"pids":{"limit":40}}"#).unwrap();
    env.ok(&["update", &format!("--resources={}", res.display()), &id]);
    if std::path::Path::new("/sys/fs/cgroup/pids/coop").exists() {
        let p = format!("/sys/fs/cgroup/pids/coop/{id}/pids.max");
        assert_eq!(std::fs::read_to_string(p).unwrap().trim(), "40");
        let m = format!("/sys/fs/cgroup/memory/coop/{id}/memory.limit_in_bytes");
        assert_eq!(
            std::fs::read_to_string(m).unwrap().trim(),
            (64 << 20).to_string()
        );
    }
    // A failing update leaves the old limit.
    assert!(!env
        .coop(&["update", "--memory", "1k", &id])
        .status
        .success());

    let pids: Vec<i32> = serde_json::from_str(&env.ok(&["ps", "--format", "json", &id])).unwrap();
    assert_eq!(pids.len(), 2, "{pids:?}");
    assert!(pids.contains(&pid));
    let table = env.ok(&["ps", &id]);
    assert!(table.lines().next().unwrap().contains("PID"));
    assert_eq!(table.lines().count(), 3, "{table}");
    // delete --force of a paused container works.
    env.ok(&["pause", &id]);
    env.ok(&["delete", "--force", &id]);
    assert!(!process_exists(pid));
}

#[test]
fn events_stats_in_runc_format() {
    let env = Env::new(&["sleep", "100"], |c| {
        c["linux"]["resources"]["pids"] = json!({"limit": 30})
    });
    let id = unique("ev");
    env.ok(&["run", "-d", "-b", env.bundle_path(), &id]);
    let v: serde_json::Value = serde_json::from_str(&env.ok(&["events", "--stats", &id])).unwrap();
    assert_eq!(v["type"], "stats");
    assert_eq!(v["id"], id.as_str());
    assert_eq!(v["data"]["pids"]["current"], 1);
    assert_eq!(v["data"]["pids"]["limit"], 30);
    assert!(v["data"]["memory"]["usage"]["usage"].as_u64().unwrap() > 0);
    assert!(v["data"]["cpu"]["usage"]["total"].as_u64().unwrap() > 0);
}
