//! linux.resources turned into control-file writes: one table for cgroup v1, one for v2.
//!
//! Each write names its controller and what it is for, so that a missing controller is an
//! error naming both ("memory limit requested, but the memory controller is not available
//! under <path>"). A resource left unset produces no write and needs no controller.
use anyhow::{bail, Result};
use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType, LinuxResources, LinuxThrottleDevice};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Write {
    pub controller: &'static str,
    pub file: String,
    pub value: String,
    /// What the user asked for, for error messages: "memory limit".
    pub what: &'static str,
}

fn w(
    controller: &'static str,
    file: impl Into<String>,
    value: impl ToString,
    what: &'static str,
) -> Write {
    Write {
        controller,
        file: file.into(),
        value: value.to_string(),
        what,
    }
}

fn limit(v: i64) -> String {
    if v < 0 {
        "max".to_string()
    } else {
        v.to_string()
    }
}

fn dev(major: i64, minor: i64) -> String {
    format!("{major}:{minor}")
}

/// A hugepage size as the hugetlb files name it ("2MB", "1GB"); anything else would name
/// another file.
fn page_size(s: &str) -> Result<&str> {
    let digits = s.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let unit = &s[digits.len()..];
    if digits.is_empty()
        || !digits.bytes().all(|b| b.is_ascii_digit())
        || !["B", "KB", "MB", "GB", "TB"].contains(&unit)
    {
        bail!("hugepageLimits: invalid pageSize {s:?} (expected a size such as \"2MB\")");
    }
    Ok(s)
}

/// cgroup v1. Device rules come first (deny all, then the rules in order, as runc does).
pub fn v1(r: &LinuxResources) -> Result<Vec<Write>> {
    let mut out = vec![];
    if let Some(devs) = r.devices() {
        out.push(w("devices", "devices.deny", "a", "device rules"));
        // FIFOs are not devices to the devices controller.
        for d in devs.iter().filter(|d| d.typ() != Some(LinuxDeviceType::P)) {
            let file = if d.allow() {
                "devices.allow"
            } else {
                "devices.deny"
            };
            out.push(w("devices", file, device_rule(d), "device rules"));
        }
    }
    if let Some(m) = r.memory() {
        // memory.kmem.limit_in_bytes is a no-op since kernel 5.16 (and gone since 6.x);
        // the TCP buffer limit still works on v1.
        if m.kernel().is_some() {
            log::warn!(
                "kernel memory limits (memory.kernel) are not supported by this kernel: ignored"
            );
        }
        if let Some(t) = m.kernel_tcp() {
            out.push(w(
                "memory",
                "memory.kmem.tcp.limit_in_bytes",
                t,
                "kernel TCP memory limit",
            ));
        }
        // memory.limit must never exceed memsw: limit first (right for a new cgroup, whose
        // memsw is unlimited); the v1 manager swaps the pair when an update raises both.
        if let Some(l) = m.limit() {
            out.push(w("memory", "memory.limit_in_bytes", l, "memory limit"));
        }
        if let Some(s) = m.swap() {
            if m.limit().is_some_and(|l| s >= 0 && s < l) {
                bail!(
                    "memory+swap limit {s} is below the memory limit {}",
                    m.limit().unwrap()
                );
            }
            out.push(w(
                "memory",
                "memory.memsw.limit_in_bytes",
                s,
                "memory+swap limit",
            ));
        }
        if let Some(v) = m.reservation() {
            out.push(w(
                "memory",
                "memory.soft_limit_in_bytes",
                v,
                "memory reservation",
            ));
        }
        if let Some(v) = m.swappiness() {
            if v > 100 {
                bail!("memory swappiness {v} is out of range (0-100)");
            }
            out.push(w("memory", "memory.swappiness", v, "memory swappiness"));
        }
        if m.disable_oom_killer() == Some(true) {
            out.push(w("memory", "memory.oom_control", 1, "disableOOMKiller"));
        }
    }
    if let Some(c) = r.cpu() {
        if let Some(v) = c.shares() {
            out.push(w("cpu", "cpu.shares", v, "cpu shares"));
        }
        if let Some(v) = c.period() {
            out.push(w("cpu", "cpu.cfs_period_us", v, "cpu period"));
        }
        if let Some(v) = c.quota() {
            out.push(w("cpu", "cpu.cfs_quota_us", v, "cpu quota"));
        }
        if let Some(v) = c.burst() {
            out.push(w("cpu", "cpu.cfs_burst_us", v, "cpu burst"));
        }
        if let Some(v) = c.realtime_period() {
            out.push(w("cpu", "cpu.rt_period_us", v, "realtime cpu period"));
        }
        if let Some(v) = c.realtime_runtime() {
            out.push(w("cpu", "cpu.rt_runtime_us", v, "realtime cpu runtime"));
        }
        // 0 is the default (not idle), so only a request for idle needs cgroup v2.
        if c.idle().is_some_and(|v| v != 0) {
            bail!("cpu idle is only available on cgroup v2");
        }
    }
    cpuset_and_pids(r, &mut out);
    if let Some(b) = r.block_io() {
        if let Some(v) = b.weight() {
            out.push(w("blkio", "blkio.weight", v, "blkio weight"));
        }
        if let Some(v) = b.leaf_weight() {
            out.push(w("blkio", "blkio.leaf_weight", v, "blkio leaf weight"));
        }
        for d in b.weight_device().iter().flatten() {
            if let Some(v) = d.weight() {
                out.push(w(
                    "blkio",
                    "blkio.weight_device",
                    format!("{} {v}", dev(d.major(), d.minor())),
                    "blkio weight device",
                ));
            }
            if let Some(v) = d.leaf_weight() {
                out.push(w(
                    "blkio",
                    "blkio.leaf_weight_device",
                    format!("{} {v}", dev(d.major(), d.minor())),
                    "blkio leaf weight device",
                ));
            }
        }
        let throttles: [(&Option<Vec<LinuxThrottleDevice>>, &str); 4] = [
            (
                b.throttle_read_bps_device(),
                "blkio.throttle.read_bps_device",
            ),
            (
                b.throttle_write_bps_device(),
                "blkio.throttle.write_bps_device",
            ),
            (
                b.throttle_read_iops_device(),
                "blkio.throttle.read_iops_device",
            ),
            (
                b.throttle_write_iops_device(),
                "blkio.throttle.write_iops_device",
            ),
        ];
        for (list, file) in throttles {
            for d in list.iter().flatten() {
                out.push(w(
                    "blkio",
                    file,
                    format!("{} {}", dev(d.major(), d.minor()), d.rate()),
                    "blkio throttle",
                ));
            }
        }
    }
    for h in r.hugepage_limits().iter().flatten() {
        let size = page_size(h.page_size())?;
        // Reservation limits first where the kernel has them (runtime-spec 1.1+, as runc).
        out.push(w(
            "hugetlb",
            format!("hugetlb.{size}.rsvd.limit_in_bytes"),
            h.limit(),
            "hugepage limit",
        ));
        out.push(w(
            "hugetlb",
            format!("hugetlb.{size}.limit_in_bytes"),
            h.limit(),
            "hugepage limit",
        ));
    }
    rdma(r, &mut out);
    if let Some(n) = r.network() {
        if let Some(id) = n.class_id() {
            out.push(w("net_cls", "net_cls.classid", id, "network class id"));
        }
        for p in n.priorities().iter().flatten() {
            out.push(w(
                "net_prio",
                "net_prio.ifpriomap",
                format!("{} {}", p.name(), p.priority()),
                "network priorities",
            ));
        }
    }
    if r.unified().as_ref().is_some_and(|u| !u.is_empty()) {
        bail!("\"unified\" resources need cgroup v2, and this host uses cgroup v1");
    }
    Ok(out)
}

/// A reservation limit (hugetlb.*.rsvd.*): written only where the kernel has the file.
pub fn is_optional(file: &str) -> bool {
    file.contains(".rsvd.")
}

/// The device rules a container gets, as runc makes them: the config's own
/// linux.resources.devices in order, then the devices every container needs (runc's list:
/// mknod of anything, null, zero, full, random, urandom, tty, ptmx, pts, tun). A default node
/// whose path a linux.devices entry names again is left out (the config's rules for it
/// decide), and linux.devices adds no rule of its own: a node the config gives `r` stays
/// read-only.
/// Applied only when the config has device rules.
pub fn with_default_devices(
    r: &LinuxResources,
    devices: &[oci_spec::runtime::LinuxDevice],
) -> LinuxResources {
    let Some(rules) = r.devices() else {
        return r.clone();
    };
    let mut rules = rules.clone();
    let rule = |t: LinuxDeviceType, major: Option<i64>, minor: Option<i64>, access: &str| {
        let mut d = LinuxDeviceCgroup::default();
        d.set_allow(true);
        d.set_typ(Some(t));
        d.set_major(major);
        d.set_minor(minor);
        d.set_access(Some(access.to_string()));
        d
    };
    use LinuxDeviceType::{B, C};
    rules.push(rule(C, None, None, "m"));
    rules.push(rule(B, None, None, "m"));
    let named = |path: &str| devices.iter().any(|d| d.path().as_os_str() == path);
    for (path, maj, min) in [
        ("/dev/null", 1, Some(3)),
        ("/dev/zero", 1, Some(5)),
        ("/dev/full", 1, Some(7)),
        ("/dev/random", 1, Some(8)),
        ("/dev/urandom", 1, Some(9)),
        ("/dev/tty", 5, Some(0)),
        // ptmx, tun and pts are only allowed, never created: no path.
        ("", 5, Some(2)),
        ("", 10, Some(200)),
        ("", 136, None),
    ] {
        if path.is_empty() || !named(path) {
            rules.push(rule(C, Some(maj), min, "rwm"));
        }
    }
    let mut out = r.clone();
    out.set_devices(Some(rules));
    out
}

/// cpuset and pids read the same on v1 and v2.
/// rdma.max, one line per device, the same on v1 and v2: only the limits given are written
/// (a missing one stays as it is).
fn rdma(r: &LinuxResources, out: &mut Vec<Write>) {
    let mut devices: Vec<_> = r.rdma().iter().flatten().collect();
    devices.sort_by(|a, b| a.0.cmp(b.0));
    for (name, l) in devices {
        let mut v = name.clone();
        if let Some(h) = l.hca_handles() {
            v += &format!(" hca_handle={h}");
        }
        if let Some(o) = l.hca_objects() {
            v += &format!(" hca_object={o}");
        }
        if v != *name {
            out.push(w("rdma", "rdma.max", v, "rdma limit"));
        }
    }
}

/// memory.checkBeforeUpdate (cgroup v2): refuse a memory or swap limit below what the
/// container uses now, instead of letting the kernel reclaim or OOM-kill to meet it. `current`
/// reads a file of the container's cgroup (memory.current, memory.swap.current).
pub fn check_before_update(
    r: &LinuxResources,
    current: impl Fn(&str) -> Option<u64>,
) -> Result<()> {
    let Some(m) = r
        .memory()
        .as_ref()
        .filter(|m| m.check_before_update() == Some(true))
    else {
        return Ok(());
    };
    if let (Some(l), Some(used)) = (m.limit().filter(|l| *l > 0), current("memory.current")) {
        if (l as u64) < used {
            bail!("memory limit {l} is below the container's current memory usage {used} (checkBeforeUpdate)");
        }
    }
    if let (Some(s), Some(l)) = (m.swap().filter(|s| *s > 0), m.limit().filter(|l| *l > 0)) {
        if let (Some(mem), Some(swap)) = (current("memory.current"), current("memory.swap.current"))
        {
            if (s as u64) < mem + swap {
                bail!("memory+swap limit {s} is below the container's current memory+swap usage {} (checkBeforeUpdate; memory limit {l})", mem + swap);
            }
        }
    }
    Ok(())
}

fn cpuset_and_pids(r: &LinuxResources, out: &mut Vec<Write>) {
    if let Some(c) = r.cpu() {
        if let Some(v) = c.cpus().as_deref().filter(|v| !v.is_empty()) {
            out.push(w("cpuset", "cpuset.cpus", v, "cpuset cpus"));
        }
        if let Some(v) = c.mems().as_deref().filter(|v| !v.is_empty()) {
            out.push(w("cpuset", "cpuset.mems", v, "cpuset mems"));
        }
    }
    if let Some(p) = r.pids() {
        // runtime-spec 1.3: 0 is a limit of 0 and -1 (any negative) is "max"; a "pids" without
        // "limit" is dropped by spec::parse.
        out.push(w("pids", "pids.max", limit(p.limit()), "pids limit"));
    }
}

/// "c 1:3 rwm" for the v1 devices controller.
pub fn device_rule(d: &LinuxDeviceCgroup) -> String {
    let t = match d.typ().unwrap_or(LinuxDeviceType::A) {
        LinuxDeviceType::A => "a",
        LinuxDeviceType::B => "b",
        LinuxDeviceType::C | LinuxDeviceType::U => "c",
        LinuxDeviceType::P => "p",
    };
    let num = |n: Option<i64>| {
        n.filter(|n| *n >= 0)
            .map_or("*".to_string(), |n| n.to_string())
    };
    let access = d
        .access()
        .clone()
        .filter(|a| !a.is_empty())
        .unwrap_or_else(|| "rwm".into());
    format!("{t} {}:{} {access}", num(d.major()), num(d.minor()))
}

/// cpu shares (2..262144) to cpu.weight (1..10000), as runc and crun convert them.
pub fn shares_to_weight(shares: u64) -> u64 {
    if shares == 0 {
        return 0;
    }
    1 + (shares.clamp(2, 262_144) - 2) * 9999 / 262_142
}

/// blkio weight (10..1000) to io.weight (1..10000), as runc converts it.
pub fn blkio_to_io_weight(w: u16) -> u64 {
    if w == 0 {
        return 0;
    }
    1 + (w.clamp(10, 1000) as u64 - 10) * 9999 / 990
}

/// In a cpu.max value: the quota the cgroup has now (a period was given without a quota).
pub const KEEP_QUOTA: &str = "{current quota}";

/// cgroup v2. Device rules are not here: v2 enforces them with an eBPF program.
pub fn v2(r: &LinuxResources) -> Result<Vec<Write>> {
    let mut out = vec![];
    if let Some(m) = r.memory() {
        if m.kernel().is_some() || m.kernel_tcp().is_some() {
            log::warn!("kernel memory limits do not exist on cgroup v2: ignored");
        }
        if let Some(l) = m.limit() {
            out.push(w("memory", "memory.max", limit(l), "memory limit"));
        }
        if let Some(v) = m.reservation() {
            out.push(w("memory", "memory.low", limit(v), "memory reservation"));
        }
        if let Some(s) = m.swap() {
            // v1's swap is memory+swap; v2's swap.max is swap alone.
            let v = match (s, m.limit()) {
                (s, _) if s < 0 => "max".to_string(),
                (0, _) => "0".to_string(),
                (s, Some(l)) if l > 0 => {
                    if s < l {
                        bail!("memory+swap limit {s} is below the memory limit {l}");
                    }
                    (s - l).to_string()
                }
                _ => bail!("a memory+swap limit needs a memory limit on cgroup v2"),
            };
            out.push(w("memory", "memory.swap.max", v, "memory swap limit"));
        }
        if m.disable_oom_killer() == Some(true) {
            log::warn!("disableOOMKiller has no cgroup v2 equivalent: ignored");
        }
        if m.swappiness().is_some() {
            log::warn!("memory swappiness has no cgroup v2 equivalent: ignored");
        }
    }
    if let Some(c) = r.cpu() {
        // 0 is "unset" to runc and crun, and some tools write it.
        if c.realtime_runtime().is_some_and(|v| v != 0)
            || c.realtime_period().is_some_and(|v| v != 0)
        {
            bail!("realtime cpu settings (realtimeRuntime, realtimePeriod) are not supported on cgroup v2");
        }
        if let Some(v) = c.shares().filter(|s| *s > 0) {
            out.push(w("cpu", "cpu.weight", shares_to_weight(v), "cpu shares"));
        }
        // cpu.max is "QUOTA [PERIOD]": a quota alone keeps the period. A period alone keeps
        // the quota through KEEP_QUOTA, which the v2 manager replaces with the current one.
        let quota = c.quota().map(|q| {
            if q > 0 {
                q.to_string()
            } else {
                "max".to_string()
            }
        });
        let value = match (quota, c.period()) {
            (Some(q), Some(p)) => Some(format!("{q} {p}")),
            (Some(q), None) => Some(q),
            (None, Some(p)) => Some(format!("{KEEP_QUOTA} {p}")),
            (None, None) => None,
        };
        if let Some(v) = value {
            out.push(w("cpu", "cpu.max", v, "cpu quota"));
        }
        if let Some(v) = c.burst() {
            out.push(w("cpu", "cpu.max.burst", v, "cpu burst"));
        }
        if let Some(v) = c.idle() {
            out.push(w("cpu", "cpu.idle", v, "cpu idle"));
        }
    }
    cpuset_and_pids(r, &mut out);
    if let Some(b) = r.block_io() {
        if b.leaf_weight().is_some()
            || b.weight_device()
                .iter()
                .flatten()
                .any(|d| d.leaf_weight().is_some())
        {
            log::warn!("blkio leafWeight has no cgroup v2 equivalent: ignored");
        }
        if let Some(v) = b.weight() {
            out.push(w(
                "io",
                "io.weight",
                format!("default {}", blkio_to_io_weight(v)),
                "blkio weight",
            ));
        }
        for d in b.weight_device().iter().flatten() {
            if let Some(v) = d.weight() {
                out.push(w(
                    "io",
                    "io.weight",
                    format!("{} {}", dev(d.major(), d.minor()), blkio_to_io_weight(v)),
                    "blkio weight device",
                ));
            }
        }
        let throttles: [(&Option<Vec<LinuxThrottleDevice>>, &str); 4] = [
            (b.throttle_read_bps_device(), "rbps"),
            (b.throttle_write_bps_device(), "wbps"),
            (b.throttle_read_iops_device(), "riops"),
            (b.throttle_write_iops_device(), "wiops"),
        ];
        for (list, key) in throttles {
            for d in list.iter().flatten() {
                out.push(w(
                    "io",
                    "io.max",
                    format!("{} {key}={}", dev(d.major(), d.minor()), d.rate()),
                    "blkio throttle",
                ));
            }
        }
    }
    for h in r.hugepage_limits().iter().flatten() {
        let size = page_size(h.page_size())?;
        out.push(w(
            "hugetlb",
            format!("hugetlb.{size}.rsvd.max"),
            h.limit(),
            "hugepage limit",
        ));
        out.push(w(
            "hugetlb",
            format!("hugetlb.{size}.max"),
            h.limit(),
            "hugepage limit",
        ));
    }
    rdma(r, &mut out);
    if r.network().is_some() {
        log::warn!("network class ids and priorities have no cgroup v2 controller: ignored");
    }
    let mut unified: Vec<(&String, &String)> = r.unified().iter().flatten().collect();
    unified.sort();
    for (k, v) in unified {
        // A file of the container's own cgroup, never a path to somewhere else.
        if k.contains('/') || k.contains('\0') || k.starts_with('.') {
            bail!("unified key {k:?}: must be a file name of the cgroup (no \"/\")");
        }
        let ctrl = k.split('.').next().unwrap_or_default();
        // The key's own prefix is its controller; "cgroup.*" files need none.
        let controller: &'static str = match ctrl {
            "memory" => "memory",
            "cpu" => "cpu",
            "cpuset" => "cpuset",
            "io" => "io",
            "pids" => "pids",
            "hugetlb" => "hugetlb",
            "rdma" => "rdma",
            "misc" => "misc",
            "cgroup" => "",
            other => bail!("unified key {k:?}: unknown controller {other:?}"),
        };
        out.push(w(controller, k.clone(), v, "unified resource"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(json: &str) -> LinuxResources {
        serde_json::from_str(json).unwrap()
    }

    fn files(ws: &[Write]) -> Vec<(String, String)> {
        ws.iter()
            .map(|w| (w.file.clone(), w.value.clone()))
            .collect()
    }

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn a_device_granted_r_stays_read_only() {
        // podman --device /dev/loop0:/dev/xvdc:r
        let r = res(
            r#"{"devices":[{"allow":false,"access":"rwm"},{"allow":true,"type":"b","major":7,"minor":0,"access":"r"}]}"#,
        );
        let devices: Vec<oci_spec::runtime::LinuxDevice> = serde_json::from_str(
            r#"[{"path":"/dev/xvdc","type":"b","major":7,"minor":0},
                {"path":"/dev/null","type":"c","major":1,"minor":3}]"#,
        )
        .unwrap();
        let all = with_default_devices(&r, &devices);
        let rules = all.devices().as_ref().unwrap();
        let v1: Vec<String> = files(&v1(&all).unwrap())
            .into_iter()
            .map(|(f, v)| format!("{f} {v}"))
            .collect();
        assert_eq!(
            v1,
            [
                "devices.deny a",
                "devices.deny a *:* rwm",
                "devices.allow b 7:0 r",
                "devices.allow c *:* m",
                "devices.allow b *:* m",
                // /dev/null is named by linux.devices: runc leaves its default out.
                "devices.allow c 1:5 rwm",
                "devices.allow c 1:7 rwm",
                "devices.allow c 1:8 rwm",
                "devices.allow c 1:9 rwm",
                "devices.allow c 5:0 rwm",
                "devices.allow c 5:2 rwm",
                "devices.allow c 10:200 rwm",
                "devices.allow c 136:* rwm",
            ]
        );
        // The same on cgroup v2 (access: 1 mknod, 2 read, 4 write; type 1 block, 2 char).
        let p = crate::cgroups::devices::program(rules);
        let eval =
            |ty, access, major, minor| crate::cgroups::devices::eval(&p, ty, access, major, minor);
        assert_eq!(eval(1, 2, 7, 0), 1, "read");
        assert_eq!(eval(1, 4, 7, 0), 0, "write");
        assert_eq!(eval(1, 6, 7, 0), 0, "read-write");
        assert_eq!(eval(1, 1, 7, 0), 1, "mknod");
        assert_eq!(eval(2, 6, 1, 5), 1, "/dev/zero");
        assert_eq!(eval(2, 6, 1, 3), 0, "/dev/null, left to the config");
    }

    #[test]
    fn v1_table() {
        let r = res(
            r#"{"memory":{"limit":33554432,"swap":67108864,"reservation":1000,"swappiness":10,"disableOOMKiller":true},
            "cpu":{"shares":512,"quota":50000,"period":100000,"cpus":"0","mems":"0"},"pids":{"limit":64},
            "blockIO":{"weight":500,"throttleReadBpsDevice":[{"major":8,"minor":0,"rate":1048576}]},
            "hugepageLimits":[{"pageSize":"2MB","limit":4194304}],
            "devices":[{"allow":true,"type":"c","major":1,"minor":3,"access":"rwm"},{"allow":false,"access":"m"}]}"#,
        );
        assert_eq!(
            files(&v1(&r).unwrap()),
            pairs(&[
                ("devices.deny", "a"),
                ("devices.allow", "c 1:3 rwm"),
                ("devices.deny", "a *:* m"),
                ("memory.limit_in_bytes", "33554432"),
                ("memory.memsw.limit_in_bytes", "67108864"),
                ("memory.soft_limit_in_bytes", "1000"),
                ("memory.swappiness", "10"),
                ("memory.oom_control", "1"),
                ("cpu.shares", "512"),
                ("cpu.cfs_period_us", "100000"),
                ("cpu.cfs_quota_us", "50000"),
                ("cpuset.cpus", "0"),
                ("cpuset.mems", "0"),
                ("pids.max", "64"),
                ("blkio.weight", "500"),
                ("blkio.throttle.read_bps_device", "8:0 1048576"),
                ("hugetlb.2MB.rsvd.limit_in_bytes", "4194304"),
                ("hugetlb.2MB.limit_in_bytes", "4194304"),
            ])
        );
        assert!(v1(&res(r#"{"unified":{"memory.high":"1"}}"#)).is_err());
        assert!(v1(&res(r#"{"memory":{"swappiness":101}}"#)).is_err());
        assert!(v1(&res(r#"{"memory":{"limit":100,"swap":50}}"#)).is_err());
        let fifo = res(r#"{"devices":[{"allow":true,"type":"p","major":8,"minor":1}]}"#);
        assert_eq!(v1(&fifo).unwrap().len(), 1);
        assert_eq!(
            files(&v1(&res(r#"{"pids":{"limit":0}}"#)).unwrap()),
            pairs(&[("pids.max", "0")])
        );
    }

    #[test]
    fn v2_table_and_conversions() {
        let r = res(
            r#"{"memory":{"limit":33554432,"swap":67108864,"reservation":-1},
            "cpu":{"shares":1024,"quota":50000,"period":100000,"cpus":"0-1"},"pids":{"limit":-1},
            "blockIO":{"weight":500,"throttleWriteIOPSDevice":[{"major":8,"minor":0,"rate":100}]},
            "unified":{"memory.high":"50000000","cgroup.max.depth":"3"}}"#,
        );
        assert_eq!(
            files(&v2(&r).unwrap()),
            pairs(&[
                ("memory.max", "33554432"),
                ("memory.low", "max"),
                ("memory.swap.max", "33554432"),
                ("cpu.weight", "39"),
                ("cpu.max", "50000 100000"),
                ("cpuset.cpus", "0-1"),
                ("pids.max", "max"),
                ("io.weight", "default 4950"),
                ("io.max", "8:0 wiops=100"),
                ("cgroup.max.depth", "3"),
                ("memory.high", "50000000"),
            ])
        );
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(262_144), 10000);
        assert_eq!(blkio_to_io_weight(10), 1);
        assert_eq!(blkio_to_io_weight(1000), 10000);
        assert!(v2(&res(r#"{"cpu":{"realtimeRuntime":1}}"#)).is_err());
        assert!(v2(&res(r#"{"memory":{"limit":100,"swap":50}}"#)).is_err());
        assert!(v2(&res(r#"{"unified":{"bogus.x":"1"}}"#)).is_err());
        assert_eq!(
            files(&v2(&res(r#"{"cpu":{"quota":-1}}"#)).unwrap()),
            pairs(&[("cpu.max", "max")])
        );
        assert_eq!(
            files(&v2(&res(r#"{"cpu":{"period":50000}}"#)).unwrap()),
            pairs(&[("cpu.max", "{current quota} 50000")])
        );
    }

    #[test]
    fn names_that_would_leave_the_cgroup_are_rejected() {
        for bad in ["../x", "/", "2MB/../../x", "MB", "2XB", ""] {
            let r = res(&format!(
                r#"{{"hugepageLimits":[{{"pageSize":"{bad}","limit":1}}]}}"#
            ));
            let e = v2(&r).unwrap_err().to_string();
            assert!(e.contains("invalid pageSize"), "{bad}: {e}");
            assert!(v1(&r).is_err(), "{bad}");
        }
        let r = res(r#"{"hugepageLimits":[{"pageSize":"1GB","limit":0}]}"#);
        assert_eq!(
            files(&v2(&r).unwrap()),
            pairs(&[("hugetlb.1GB.rsvd.max", "0"), ("hugetlb.1GB.max", "0")])
        );
        for bad in ["memory.max/../../../x", "../memory.max", ".memory.max"] {
            let r = res(&format!(r#"{{"unified":{{"{bad}":"1"}}}}"#));
            let e = v2(&r).unwrap_err().to_string();
            assert!(e.contains("must be a file name"), "{bad}: {e}");
        }
        // realtime 0 is "unset", as to runc and crun.
        let r = res(r#"{"cpu":{"realtimeRuntime":0,"realtimePeriod":0}}"#);
        assert!(v2(&r).is_ok());
        let r = res(r#"{"cpu":{"realtimeRuntime":950000}}"#);
        assert!(v2(&r).unwrap_err().to_string().contains("realtime"));
    }

    #[test]
    fn rdma_on_both_versions() {
        let r = res(
            r#"{"rdma":{"mlx5_1":{"hcaObjects":1000},"mlx5_0":{"hcaHandles":3,"hcaObjects":10000},"none":{}}}"#,
        );
        let want = pairs(&[
            ("rdma.max", "mlx5_0 hca_handle=3 hca_object=10000"),
            ("rdma.max", "mlx5_1 hca_object=1000"),
        ]);
        assert_eq!(files(&v1(&r).unwrap()), want);
        assert_eq!(files(&v2(&r).unwrap()), want);
        assert!(v2(&r).unwrap().iter().all(|w| w.controller == "rdma"));
    }

    #[test]
    fn check_before_update_compares_with_usage() {
        let usage = |f: &str| match f {
            "memory.current" => Some(50_000_000),
            "memory.swap.current" => Some(10_000_000),
            _ => None,
        };
        let low = res(r#"{"memory":{"limit":40000000,"checkBeforeUpdate":true}}"#);
        let e = check_before_update(&low, usage).unwrap_err().to_string();
        assert!(
            e.contains("memory limit 40000000") && e.contains("50000000"),
            "{e}"
        );
        // Without the flag, or above the usage, no objection.
        check_before_update(&res(r#"{"memory":{"limit":40000000}}"#), usage).unwrap();
        check_before_update(
            &res(r#"{"memory":{"limit":60000000,"checkBeforeUpdate":true}}"#),
            usage,
        )
        .unwrap();
        let swap = res(r#"{"memory":{"limit":60000000,"swap":55000000,"checkBeforeUpdate":true}}"#);
        assert!(check_before_update(&swap, usage).is_err());
        let swap_ok =
            res(r#"{"memory":{"limit":60000000,"swap":70000000,"checkBeforeUpdate":true}}"#);
        check_before_update(&swap_ok, usage).unwrap();
    }
}
