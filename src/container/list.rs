//! `list`: every container under the root.
use super::state::State;
use super::{Container, Store};
use anyhow::Result;

/// States of all readable containers. A directory whose meta.json is missing or corrupt is
/// skipped with a warning (`delete --force` removes it).
pub fn list(store: &Store) -> Result<Vec<State>> {
    let mut out = vec![];
    for id in store.ids()? {
        match store.lock(&id, false).and_then(Container::load_locked) {
            Ok(c) => out.push(State::of(&c)),
            Err(e) => log::warn!(
                "skipping {}: unreadable state: {}",
                store.dir(&id).display(),
                crate::error::render(&e)
            ),
        }
    }
    Ok(out)
}
