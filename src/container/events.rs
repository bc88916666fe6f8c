//! `events`: statistics and OOM notices, in runc's JSON format.
use super::{Container, Status, Store};
use crate::cgroups;
use anyhow::Result;
use serde_json::json;
use std::io::Write;
use std::time::Duration;

/// One `{"type":"stats","id":...,"data":{...}}` object.
pub fn stats(store: &Store, id: &str) -> Result<serde_json::Value> {
    let c = Container::load(store, id, false)?;
    c.require(
        &[Status::Created, Status::Running, Status::Paused],
        "get stats of",
    )?;
    let data = cgroups::manager(c.meta.cgroup.clone()).stats();
    Ok(json!({"type": "stats", "id": c.id(), "data": data}))
}

/// Print stats every `interval` and an `{"type":"oom"}` event for every new OOM kill, until
/// the container stops.
pub fn stream(store: &Store, id: &str, interval: Duration, out: &mut impl Write) -> Result<()> {
    let c = Container::load(store, id, false)?;
    let (id, cg) = (c.id().to_string(), cgroups::manager(c.meta.cgroup.clone()));
    drop(c);
    let mut ooms = cg.oom_kills();
    loop {
        let c = match Container::load(store, &id, false) {
            Ok(c) if c.meta.status != Status::Stopped => c,
            _ => return Ok(()),
        };
        drop(c);
        let now = cg.oom_kills();
        for _ in ooms..now {
            writeln!(out, "{}", json!({"type": "oom", "id": id}))?;
        }
        ooms = now;
        writeln!(
            out,
            "{}",
            json!({"type": "stats", "id": id, "data": cg.stats()})
        )?;
        out.flush()?;
        std::thread::sleep(interval);
    }
}
