//! Reading /proc: process start times (to tell a live container from a reused pid).
use std::fs;

const PROC_SUPER_MAGIC: i64 = 0x9fa0;

/// Refuse to write through a path that is not on procfs: a container's /proc may be a bind
/// of something else, and writes meant for the kernel would land there.
pub fn require_procfs(path: &std::path::Path) -> anyhow::Result<()> {
    let st = nix::sys::statfs::statfs(path).map_err(|e| {
        anyhow::anyhow!(
            "statfs {}: {}",
            path.display(),
            crate::error::errno_text(e as i32)
        )
    })?;
    if st.filesystem_type().0 as i64 != PROC_SUPER_MAGIC {
        anyhow::bail!(
            "{} is not on procfs: refusing to write to it",
            path.display()
        );
    }
    Ok(())
}

/// State letter and start time (field 22, clock ticks since boot) of a process, or None when
/// it does not exist.
pub fn stat(pid: i32) -> Option<(char, u64)> {
    let s = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&s)
}

fn parse_stat(s: &str) -> Option<(char, u64)> {
    // comm (field 2) may hold spaces and parentheses: everything after the LAST ')' is fixed.
    let rest = &s[s.rfind(')')? + 2..];
    let mut fields = rest.split_ascii_whitespace();
    let state = fields.next()?.chars().next()?;
    // rest starts at field 3; field 22 is 19 further on.
    let start = fields.nth(18)?.parse().ok()?;
    Some((state, start))
}

pub fn start_time(pid: i32) -> Option<u64> {
    stat(pid).map(|(_, t)| t)
}

/// True when `pid` exists, is not a zombie, and started at `start_time`.
pub fn is_alive(pid: i32, start_time: u64) -> bool {
    if pid <= 0 {
        return false;
    }
    matches!(stat(pid), Some((st, t)) if t == start_time && st != 'Z' && st != 'X')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_odd_comm() {
        let line = "42 (a) b) c) S 1 42 42 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 98765 1000 10 0";
        assert_eq!(parse_stat(line), Some(('S', 98765)));
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn own_process_is_alive() {
        let me = std::process::id() as i32;
        let t = start_time(me).unwrap();
        assert!(is_alive(me, t));
        assert!(!is_alive(me, t + 1));
        assert!(!is_alive(0, t));
    }
}
