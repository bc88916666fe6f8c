use super::Global;
use anyhow::{Context, Result};
use std::io::Write;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Container id (any unambiguous prefix of one works)
    #[arg(value_name = "ID")]
    pub id: String,
    /// Print one stats object (JSON) and exit, instead of streaming
    #[arg(long)]
    pub stats: bool,
    /// Interval between stats objects while streaming: a number with ms, s, m or h (e.g. 5s,
    /// 500ms); OOM events are printed as they happen
    #[arg(long, default_value = "5s", value_name = "DURATION")]
    pub interval: String,
}

fn duration(s: &str) -> Result<std::time::Duration> {
    let (n, unit) = s.trim().split_at(
        s.trim()
            .find(|c: char| c.is_ascii_alphabetic())
            .unwrap_or(s.trim().len()),
    );
    let n: f64 = n
        .parse()
        .with_context(|| format!("invalid interval {s:?}"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "" | "s" => n,
        "m" => n * 60.0,
        _ => anyhow::bail!("invalid interval {s:?}"),
    };
    Ok(std::time::Duration::from_secs_f64(secs.max(0.001)))
}

pub fn run(g: &Global, a: Args) -> Result<i32> {
    let store = g.store();
    if a.stats {
        let s = crate::container::events::stats(&store, &a.id)?;
        writeln!(super::out(), "{s}")?;
        return Ok(0);
    }
    crate::container::events::stream(&store, &a.id, duration(&a.interval)?, &mut super::out())?;
    Ok(0)
}
