//! `state`: the OCI state of one container.
use super::{Container, Status, Store};
use anyhow::Result;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// The OCI state, plus the fields runc adds (rootfs, created, owner).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct State {
    pub oci_version: String,
    pub id: String,
    pub pid: i32,
    pub status: Status,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub created: String,
    pub owner: String,
    pub annotations: BTreeMap<String, String>,
    /// The sandbox, for sandbox roots and members.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sandbox: Option<String>,
}

impl State {
    pub fn of(c: &Container) -> State {
        let m = &c.meta;
        let in_sandbox = m.sandbox_root || m.sandbox_id != m.id;
        let sandbox = in_sandbox.then(|| m.sandbox_id.clone());
        let mut annotations = m.annotations.clone();
        if let Some(s) = &sandbox {
            annotations.insert(super::sandbox::STATE_ANNOTATION.to_string(), s.clone());
        }
        State {
            oci_version: m.oci_version.clone(),
            id: m.id.clone(),
            // A stopped container has no process to point at.
            pid: if m.status == Status::Stopped {
                0
            } else {
                m.pid
            },
            status: m.status,
            bundle: m.bundle.clone(),
            rootfs: m.rootfs.clone(),
            created: m.created.clone(),
            owner: owner_name(m.owner),
            annotations,
            sandbox,
        }
    }
}

pub fn state(store: &Store, id: &str) -> Result<State> {
    let c = Container::read(store, id)?;
    Ok(State::of(&c))
}

/// The user name of `uid` from /etc/passwd, else the number. Looked up once per uid and
/// process: `list` asks for every container, which nearly always have the same owner.
pub fn owner_name(uid: u32) -> String {
    use std::sync::Mutex;
    static NAMES: Mutex<Vec<(u32, String)>> = Mutex::new(Vec::new());
    let mut names = NAMES.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, n)) = names.iter().find(|(u, _)| *u == uid) {
        return n.clone();
    }
    let name = nix::unistd::User::from_uid(uid.into())
        .ok()
        .flatten()
        .map(|u| u.name)
        .unwrap_or_else(|| uid.to_string());
    names.push((uid, name.clone()));
    name
}
