//! Scheduling of the container's processes: I/O priority (`process.ioPriority`), the CPU
//! scheduler (`process.scheduler`, sched_setattr) and CPU affinity (`process.execCPUAffinity`).
use anyhow::{bail, Context, Result};
use oci_spec::runtime::{
    IOPriorityClass, LinuxIOPriority, LinuxSchedulerFlag, LinuxSchedulerPolicy, Scheduler,
};

const IOPRIO_WHO_PROCESS: libc::c_int = 1;
const IOPRIO_CLASS_SHIFT: i64 = 13;

fn ioprio_class(c: IOPriorityClass) -> i64 {
    match c {
        IOPriorityClass::IoprioClassRt => 1,
        IOPriorityClass::IoprioClassBe => 2,
        IOPriorityClass::IoprioClassIdle => 3,
    }
}

/// Checks of `process.ioPriority` that need no kernel.
pub fn validate_ioprio(p: &LinuxIOPriority) -> Result<()> {
    if !(0..=7).contains(&p.priority()) {
        bail!(
            "process.ioPriority.priority {} is out of range (0-7)",
            p.priority()
        );
    }
    Ok(())
}

/// ioprio_set for this process (its children inherit it).
pub fn set_ioprio(p: &LinuxIOPriority) -> Result<()> {
    validate_ioprio(p)?;
    let value = (ioprio_class(p.class()) << IOPRIO_CLASS_SHIFT) | p.priority();
    // SAFETY: ioprio_set takes plain integers.
    let r = unsafe { libc::syscall(libc::SYS_ioprio_set, IOPRIO_WHO_PROCESS, 0, value) };
    if r != 0 {
        return Err(std::io::Error::last_os_error()).with_context(|| {
            format!(
                "process.ioPriority: set class {} priority {}",
                p.class(),
                p.priority()
            )
        });
    }
    Ok(())
}

/// The kernel's `struct sched_attr` (SCHED_ATTR_SIZE_VER1).
#[repr(C)]
#[derive(Default, Debug)]
struct SchedAttr {
    size: u32,
    policy: u32,
    flags: u64,
    nice: i32,
    priority: u32,
    runtime: u64,
    deadline: u64,
    period: u64,
    util_min: u32,
    util_max: u32,
}

fn policy_number(p: LinuxSchedulerPolicy) -> Result<u32> {
    Ok(match p {
        LinuxSchedulerPolicy::SchedOther => 0,
        LinuxSchedulerPolicy::SchedFifo => 1,
        LinuxSchedulerPolicy::SchedRr => 2,
        LinuxSchedulerPolicy::SchedBatch => 3,
        LinuxSchedulerPolicy::SchedIdle => 5,
        LinuxSchedulerPolicy::SchedDeadline => 6,
        LinuxSchedulerPolicy::SchedIso => {
            bail!("process.scheduler.policy SCHED_ISO is not implemented by the Linux kernel")
        }
    })
}

fn flag_bit(f: LinuxSchedulerFlag) -> u64 {
    match f {
        LinuxSchedulerFlag::SchedResetOnFork => 0x01,
        LinuxSchedulerFlag::SchedFlagReclaim => 0x02,
        LinuxSchedulerFlag::SchedFlagDLOverrun => 0x04,
        LinuxSchedulerFlag::SchedFlagKeepPolicy => 0x08,
        LinuxSchedulerFlag::SchedFlagKeepParams => 0x10,
        LinuxSchedulerFlag::SchedFlagUtilClampMin => 0x20,
        LinuxSchedulerFlag::SchedFlagUtilClampMax => 0x40,
    }
}

fn attr(s: &Scheduler) -> Result<SchedAttr> {
    let policy = s.policy();
    let number = policy_number(*policy)?;
    let nice = s.nice().unwrap_or(0);
    if !(-20..=19).contains(&nice) {
        bail!("process.scheduler.nice {nice} is out of range (-20 to 19)");
    }
    let priority = s.priority().unwrap_or(0);
    let realtime = matches!(
        policy,
        LinuxSchedulerPolicy::SchedFifo | LinuxSchedulerPolicy::SchedRr
    );
    if realtime && !(1..=99).contains(&priority) {
        bail!("process.scheduler.priority {priority} is out of range for {policy} (1-99)");
    }
    if !realtime && priority != 0 {
        bail!("process.scheduler.priority must be 0 for {policy} (only SCHED_FIFO and SCHED_RR have one)");
    }
    let deadline = *policy == LinuxSchedulerPolicy::SchedDeadline;
    let (rt, dl, pd) = (
        s.runtime().unwrap_or(0),
        s.deadline().unwrap_or(0),
        s.period().unwrap_or(0),
    );
    if !deadline && (rt != 0 || dl != 0 || pd != 0) {
        bail!("process.scheduler: runtime, deadline and period are only for SCHED_DEADLINE, not {policy}");
    }
    if deadline && (rt == 0 || dl == 0) {
        bail!("process.scheduler: SCHED_DEADLINE needs runtime and deadline");
    }
    if deadline && (rt > dl || (pd != 0 && dl > pd)) {
        bail!("process.scheduler: SCHED_DEADLINE needs runtime <= deadline <= period");
    }
    let flags = s
        .flags()
        .iter()
        .flatten()
        .fold(0, |acc, f| acc | flag_bit(*f));
    Ok(SchedAttr {
        size: std::mem::size_of::<SchedAttr>() as u32,
        policy: number,
        flags,
        nice,
        priority: priority as u32,
        runtime: rt,
        deadline: dl,
        period: pd,
        // With SCHED_FLAG_UTIL_CLAMP_MIN/MAX the clamps are reset (0 and 1024).
        util_min: 0,
        util_max: 1024,
    })
}

/// Checks of `process.scheduler` that need no kernel.
pub fn validate_scheduler(s: &Scheduler) -> Result<()> {
    attr(s).map(|_| ())
}

/// sched_setattr for this process.
pub fn set_scheduler(s: &Scheduler) -> Result<()> {
    let a = attr(s)?;
    // SAFETY: `a` is a valid sched_attr of the size it declares; the kernel only reads it.
    let r = unsafe { libc::syscall(libc::SYS_sched_setattr, 0, &a as *const SchedAttr, 0) };
    if r != 0 {
        let e = std::io::Error::last_os_error();
        let why = match e.raw_os_error() {
            Some(libc::EPERM) => " (needs CAP_SYS_NICE or an RLIMIT_RTPRIO/RLIMIT_NICE that allows it; realtime policies under cgroup v1 also need a cpu.rt_runtime_us budget, linux.resources.cpu.realtimeRuntime)",
            Some(libc::EBUSY) => " (not enough SCHED_DEADLINE bandwidth, or a restricted CPU affinity)",
            _ => "",
        };
        return Err(e)
            .with_context(|| format!("process.scheduler: cannot set policy {}{why}", s.policy()));
    }
    Ok(())
}

/// A CPU list ("0-3,7") as a cpu_set_t.
pub fn parse_cpus(field: &str, list: &str) -> Result<libc::cpu_set_t> {
    // SAFETY: cpu_set_t is a plain bit array; all zeroes is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    let max = 8 * std::mem::size_of::<libc::cpu_set_t>();
    for (a, b) in parse_list(field, list)? {
        if b >= max {
            bail!("{field}: CPU {b} is out of range (max {})", max - 1);
        }
        for c in a..=b {
            // SAFETY: c < the number of bits of the set (checked above).
            unsafe { libc::CPU_SET(c, &mut set) };
        }
    }
    Ok(set)
}

/// A Linux list ("0-3,7") as inclusive ranges; the field names it in the error.
pub fn parse_list(field: &str, list: &str) -> Result<Vec<(usize, usize)>> {
    let mut out = vec![];
    for part in list.split(',') {
        let part = part.trim();
        let (a, b) = match part.split_once('-') {
            Some((a, b)) => (a, b),
            None => (part, part),
        };
        let (Ok(a), Ok(b)) = (a.parse::<usize>(), b.parse::<usize>()) else {
            bail!("{field}: invalid list {list:?} (expected e.g. \"0-3,7\")");
        };
        if a > b {
            bail!("{field}: invalid range {part:?} in {list:?}");
        }
        out.push((a, b));
    }
    Ok(out)
}

/// sched_setaffinity of `pid` (0: this thread) to `list`.
pub fn set_affinity(field: &str, pid: i32, list: &str) -> Result<()> {
    let set = parse_cpus(field, list)?;
    // SAFETY: valid cpu_set_t of the size given.
    let r = unsafe { libc::sched_setaffinity(pid, std::mem::size_of_val(&set), &set) };
    if r != 0 {
        return Err(std::io::Error::last_os_error())
            .with_context(|| format!("{field}: cannot set CPU affinity to {list:?}"));
    }
    Ok(())
}

/// This thread's CPU affinity, to put back after a temporary change.
pub fn get_affinity() -> Result<libc::cpu_set_t> {
    // SAFETY: cpu_set_t is plain data; the kernel fills it.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: valid cpu_set_t of the size given.
    if unsafe { libc::sched_getaffinity(0, std::mem::size_of_val(&set), &mut set) } != 0 {
        return Err(std::io::Error::last_os_error()).context("sched_getaffinity");
    }
    Ok(set)
}

pub fn restore_affinity(set: &libc::cpu_set_t) {
    // SAFETY: valid cpu_set_t of the size given.
    unsafe { libc::sched_setaffinity(0, std::mem::size_of_val(set), set) };
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sched(json: &str) -> Result<()> {
        validate_scheduler(&serde_json::from_str(json).unwrap())
    }

    #[test]
    fn scheduler_checks() {
        sched(r#"{"policy":"SCHED_OTHER","nice":5}"#).unwrap();
        sched(r#"{"policy":"SCHED_FIFO","priority":10}"#).unwrap();
        sched(r#"{"policy":"SCHED_DEADLINE","runtime":10000000,"deadline":20000000,"period":30000000}"#).unwrap();
        for (bad, want) in [
            (r#"{"policy":"SCHED_OTHER","nice":30}"#, "nice 30"),
            (r#"{"policy":"SCHED_FIFO"}"#, "priority 0 is out of range"),
            (r#"{"policy":"SCHED_BATCH","priority":3}"#, "must be 0"),
            (r#"{"policy":"SCHED_ISO"}"#, "SCHED_ISO"),
            (
                r#"{"policy":"SCHED_OTHER","runtime":5}"#,
                "only for SCHED_DEADLINE",
            ),
            (
                r#"{"policy":"SCHED_DEADLINE"}"#,
                "needs runtime and deadline",
            ),
        ] {
            let e = sched(bad).unwrap_err().to_string();
            assert!(e.contains(want), "{bad}: {e}");
        }
    }

    #[test]
    fn lists() {
        assert_eq!(parse_list("f", "0-3,7").unwrap(), vec![(0, 3), (7, 7)]);
        assert!(parse_list("f", "3-1").is_err());
        assert!(parse_list("f", "a").is_err());
        assert!(parse_list("f", "").is_err());
    }
}
