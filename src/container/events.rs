//! `events`: statistics and OOM notices, in runc's JSON format.
use super::{Container, Status, Store};
use crate::cgroups;
use anyhow::Result;
use serde_json::json;
use std::io::Write;
use std::time::{Duration, Instant};

/// One `{"type":"stats","id":...,"data":{...}}` object.
pub fn stats(store: &Store, id: &str) -> Result<serde_json::Value> {
    let c = Container::read(store, id)?;
    c.require(
        &[Status::Created, Status::Running, Status::Paused],
        "get stats of",
    )?;
    let data = c.cgroup().stats();
    Ok(json!({"type": "stats", "id": c.id(), "data": data}))
}

/// Print stats every `interval` and an `{"type":"oom"}` event for every new OOM kill, as soon
/// as the kernel reports it, until the container stops.
pub fn stream(store: &Store, id: &str, interval: Duration, out: &mut impl Write) -> Result<()> {
    let c = Container::read(store, id)?;
    let (id, cg) = (c.id().to_string(), c.cgroup());
    drop(c);
    let watch = cgroups::oom::watch(cg.paths());
    let mut ooms = cg.oom_kills();
    let v1 = cg.paths().v1.contains_key("memory");
    let mut report_ooms = |out: &mut dyn Write, woken: bool| -> Result<()> {
        let mut now = cg.oom_kills();
        // v1 signals before the killer has counted its kill: give the count a moment.
        let settle = Instant::now() + Duration::from_millis(200);
        while woken && v1 && now == ooms && Instant::now() < settle {
            std::thread::sleep(Duration::from_millis(5));
            now = cg.oom_kills();
        }
        // A v1 signal without a kill is an OOM with the killer disabled: still one event.
        let n = (now.saturating_sub(ooms)).max(u64::from(woken && v1));
        for _ in 0..n {
            writeln!(out, "{}", json!({"type": "oom", "id": id}))?;
        }
        ooms = now;
        out.flush()?;
        Ok(())
    };
    loop {
        match Container::read(store, &id) {
            Ok(c) if c.meta.status != Status::Stopped => {}
            _ => return Ok(()),
        }
        report_ooms(out, false)?;
        writeln!(
            out,
            "{}",
            json!({"type": "stats", "id": id, "data": cg.stats()})
        )?;
        out.flush()?;
        let next = Instant::now() + interval;
        while let Some(left) = next.checked_duration_since(Instant::now()) {
            match &watch {
                Some(w) if w.wait(left) => report_ooms(out, true)?,
                Some(_) => break,
                None => std::thread::sleep(left),
            }
        }
    }
}
