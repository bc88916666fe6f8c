//! `ps`: the container's processes (every pid in its cgroup).
use super::{Container, Store};
use anyhow::{Context, Result};

pub fn pids(store: &Store, id: &str) -> Result<Vec<i32>> {
    let c = Container::read(store, id)?;
    let mut pids = c
        .cgroup()
        .pids()
        .with_context(|| format!("list processes of container {}", c.id()))?;
    pids.sort_unstable();
    pids.dedup();
    Ok(pids)
}

/// Keep the header and the rows of `ps` output whose PID column is one of `pids`.
pub fn filter_table(ps_output: &str, pids: &[i32]) -> Result<String> {
    let mut lines = ps_output.lines();
    let header = lines.next().context("ps printed nothing")?;
    let col = header
        .split_whitespace()
        .position(|h| h == "PID")
        .context("ps output has no PID column")?;
    let mut out = format!("{header}\n");
    for l in lines {
        let pid = l
            .split_whitespace()
            .nth(col)
            .and_then(|p| p.parse::<i32>().ok());
        if pid.is_some_and(|p| pids.contains(&p)) {
            out.push_str(l);
            out.push('\n');
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn filters_by_pid_column() {
        let ps = "UID PID PPID C STIME TTY TIME CMD\nroot 1 0 0 10:00 ? 00:00:01 init\nroot 42 1 0 10:00 ? 00:00:00 sleep 9\n";
        let t = super::filter_table(ps, &[42]).unwrap();
        assert_eq!(
            t,
            "UID PID PPID C STIME TTY TIME CMD\nroot 42 1 0 10:00 ? 00:00:00 sleep 9\n"
        );
        assert!(super::filter_table("USER X\n", &[1]).is_err());
    }
}
