//! Rootless mode: whether coop runs without the host's root, decided once per command as runc
//! does, and what follows from it (the default state directory).
use anyhow::{bail, Result};
use std::path::PathBuf;

/// Whether coop acts without the host's root privileges.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Rootless {
    /// Root on the host: coop may create cgroups anywhere and write any id map.
    #[default]
    No,
    /// An unprivileged user, or root of a user namespace that does not map the host's root
    /// (rootless podman calls its runtime that way).
    Yes,
}

/// The global `--rootless` flag.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Flag {
    True,
    False,
    Auto,
}

impl Rootless {
    pub fn is_yes(self) -> bool {
        self == Rootless::Yes
    }

    /// `--rootless` decides when given as true or false; otherwise (auto, or absent) as runc:
    /// rootless when the effective uid is not 0, or when it is 0 in a user namespace whose
    /// uid_map does not map the host's uid 0.
    pub fn decide(flag: Option<Flag>) -> Rootless {
        match flag {
            Some(Flag::True) => Rootless::Yes,
            Some(Flag::False) => Rootless::No,
            Some(Flag::Auto) | None => {
                let euid = nix::unistd::geteuid().as_raw();
                let map = std::fs::read_to_string("/proc/self/uid_map").unwrap_or_default();
                Self::from_ids(euid, &map)
            }
        }
    }

    fn from_ids(euid: u32, uid_map: &str) -> Rootless {
        if euid != 0 || !maps_host_root(uid_map) {
            Rootless::Yes
        } else {
            Rootless::No
        }
    }

    /// The default `--root`: /run/coop, or `$XDG_RUNTIME_DIR/coop` when rootless (an empty
    /// XDG_RUNTIME_DIR counts as unset: podman sets it empty for root).
    pub fn default_root(self, xdg_runtime_dir: Option<std::ffi::OsString>) -> Result<PathBuf> {
        if self == Rootless::No {
            return Ok(PathBuf::from("/run/coop"));
        }
        match xdg_runtime_dir.filter(|x| !x.is_empty()) {
            Some(x) => Ok(PathBuf::from(x).join("coop")),
            None => bail!(
                "rootless: XDG_RUNTIME_DIR is not set: set it (e.g. to /run/user/$(id -u)) or pass --root"
            ),
        }
    }
}

/// What an unprivileged caller (euid not 0) cannot do without a user namespace of the
/// container's own, refused before anything is made, as runc does.
pub fn check_config(linux: Option<&oci_spec::runtime::Linux>, euid: u32) -> Result<()> {
    if euid == 0 {
        // Root of a user namespace (rootless podman) has the capabilities it needs there.
        return Ok(());
    }
    let ns = linux.and_then(|l| l.namespaces().as_ref());
    let user = ns
        .into_iter()
        .flatten()
        .find(|n| n.typ() == oci_spec::runtime::LinuxNamespaceType::User);
    let Some(user) = user else {
        bail!(
            "linux.namespaces: a rootless container (uid {euid}) needs a user namespace \
             (see `coop spec --rootless`)"
        );
    };
    let maps =
        |m: Option<&Vec<oci_spec::runtime::LinuxIdMapping>>| m.is_some_and(|m| !m.is_empty());
    if user.path().is_none()
        && !(maps(linux.and_then(|l| l.uid_mappings().as_ref()))
            && maps(linux.and_then(|l| l.gid_mappings().as_ref())))
    {
        bail!("linux.uidMappings and linux.gidMappings: a rootless container's new user namespace needs both");
    }
    Ok(())
}

/// Whether some line of a uid_map ("inside outside count") maps outside id 0. The initial
/// user namespace reads "0 0 4294967295".
fn maps_host_root(uid_map: &str) -> bool {
    uid_map.lines().any(|l| {
        let f: Vec<u64> = l
            .split_whitespace()
            .filter_map(|x| x.parse().ok())
            .collect();
        matches!(f.as_slice(), [_, outside, count] if *outside == 0 && *count > 0)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detection_as_runc() {
        let host = "         0          0 4294967295\n";
        assert_eq!(Rootless::from_ids(0, host), Rootless::No);
        assert_eq!(Rootless::from_ids(1000, host), Rootless::Yes);
        // rootless podman: root inside a namespace mapping the user and subuids.
        let podman = "0 1000 1\n1 100000 65536\n";
        assert_eq!(Rootless::from_ids(0, podman), Rootless::Yes);
        // a namespace that maps the host's root is not rootless.
        assert_eq!(Rootless::from_ids(0, "0 0 1\n"), Rootless::No);
        assert_eq!(Rootless::decide(Some(Flag::True)), Rootless::Yes);
        assert_eq!(Rootless::decide(Some(Flag::False)), Rootless::No);
    }

    #[test]
    fn config_needs_a_user_namespace() {
        let l = |j: &str| serde_json::from_str::<oci_spec::runtime::Linux>(j).unwrap();
        let plain = l(r#"{"namespaces":[{"type":"pid"},{"type":"mount"}]}"#);
        check_config(Some(&plain), 0).unwrap();
        let e = check_config(Some(&plain), 1000).unwrap_err().to_string();
        assert!(e.contains("user namespace"), "{e}");
        let nomaps = l(r#"{"namespaces":[{"type":"user"}]}"#);
        let e = check_config(Some(&nomaps), 1000).unwrap_err().to_string();
        assert!(e.contains("uidMappings"), "{e}");
        let ok = l(
            r#"{"namespaces":[{"type":"user"}],"uidMappings":[{"containerID":0,"hostID":1000,"size":1}],"gidMappings":[{"containerID":0,"hostID":1000,"size":1}]}"#,
        );
        check_config(Some(&ok), 1000).unwrap();
        let joined = l(r#"{"namespaces":[{"type":"user","path":"/proc/1/ns/user"}]}"#);
        check_config(Some(&joined), 1000).unwrap();
    }

    #[test]
    fn default_root() {
        assert_eq!(
            Rootless::No
                .default_root(Some("/run/user/5".into()))
                .unwrap(),
            PathBuf::from("/run/coop")
        );
        assert_eq!(
            Rootless::Yes
                .default_root(Some("/run/user/5".into()))
                .unwrap(),
            PathBuf::from("/run/user/5/coop")
        );
        for unset in [None, Some("".into())] {
            let e = Rootless::Yes.default_root(unset).unwrap_err().to_string();
            assert!(e.contains("XDG_RUNTIME_DIR"), "{e}");
        }
    }
}
