//! `update`: change a living container's resource limits.
use super::{Container, Status, Store};
use anyhow::{Context, Result};
use oci_spec::runtime::LinuxResources;

pub fn update(store: &Store, id: &str, resources: &LinuxResources) -> Result<()> {
    let c = Container::load(store, id, true)?;
    c.require(
        &[Status::Created, Status::Running, Status::Paused],
        "update",
    )?;
    c.cgroup()
        .apply(resources)
        .with_context(|| format!("update container {}", c.id()))
}

/// runc's sizes: bytes, or a number with k, m, g (or kb, mb, gb; any case); -1 is unlimited.
pub fn parse_size(s: &str) -> Result<i64> {
    let t = s.trim().to_ascii_lowercase();
    if t == "-1" {
        return Ok(-1);
    }
    let digits = t.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let unit = &t[digits.len()..];
    let mult: i64 = match unit {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        "t" | "tb" | "tib" => 1 << 40,
        _ => anyhow::bail!("invalid size {s:?}: unknown unit {unit:?}"),
    };
    let n: f64 = digits
        .parse()
        .with_context(|| format!("invalid size {s:?}"))?;
    Ok((n * mult as f64) as i64)
}

#[cfg(test)]
mod tests {
    #[test]
    fn sizes() {
        assert_eq!(super::parse_size("32m").unwrap(), 32 << 20);
        assert_eq!(super::parse_size("1G").unwrap(), 1 << 30);
        assert_eq!(super::parse_size("4096").unwrap(), 4096);
        assert_eq!(super::parse_size("-1").unwrap(), -1);
        assert!(super::parse_size("12q").is_err());
    }
}
