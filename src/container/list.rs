//! `list`: every container under the root.
use super::state::State;
use super::{Container, Store};
use anyhow::Result;

/// States of all containers, read without their locks. A directory whose meta.json is missing
/// or corrupt (a create or delete killed half way) is listed too, with the status derived
/// from its cgroup (`creating` or `stopped`): `delete --force` removes it.
pub fn list(store: &Store) -> Result<Vec<State>> {
    let mut out = vec![];
    for id in store.ids()? {
        match Container::read(store, &id) {
            Ok(c) => {
                if let (Some(why), super::Status::Stopped) = (&c.unreadable, c.meta.status) {
                    log::warn!("{id}: {why} (delete --force removes it)");
                }
                out.push(State::of(&c))
            }
            // Deleted since we read the directory.
            Err(e) if matches!(e.downcast_ref(), Some(crate::error::Error::NotFound(_))) => {}
            Err(e) => log::warn!(
                "skipping {}: unreadable state: {}",
                store.dir(&id).display(),
                crate::error::render(&e)
            ),
        }
    }
    Ok(out)
}
