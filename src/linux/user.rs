//! Users: id maps of a new user namespace (written by the parent) and the process's own
//! uid, gid and groups (set by init).
use anyhow::{Context, Result};
use nix::unistd::{setgroups, setresgid, setresuid, Gid, Uid};
use oci_spec::runtime::{LinuxIdMapping, User};
use std::path::Path;

pub fn map_lines(maps: &[LinuxIdMapping]) -> String {
    maps.iter()
        .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
        .collect()
}

/// Write /proc/PID/{uid_map,gid_map} for a process in a new user namespace.
pub fn write_id_maps(pid: i32, uids: &[LinuxIdMapping], gids: &[LinuxIdMapping]) -> Result<()> {
    if !gids.is_empty() {
        let p = format!("/proc/{pid}/gid_map");
        std::fs::write(&p, map_lines(gids)).with_context(|| format!("write {p}"))?;
    }
    if !uids.is_empty() {
        let p = format!("/proc/{pid}/uid_map");
        std::fs::write(&p, map_lines(uids)).with_context(|| format!("write {p}"))?;
    }
    Ok(())
}

/// Hand our stdio pipes and sockets (which the container inherits) to the container's root, so
/// it can reopen /proc/self/fd/N. Only anonymous ones (on pipefs or sockfs): a runtime that
/// fchowns a stdio fd pointing at /dev/null, a file or a named FIFO changes that host file.
pub fn chown_stdio(uids: &[LinuxIdMapping], gids: &[LinuxIdMapping]) {
    const PIPEFS_MAGIC: i64 = 0x5049_5045;
    const SOCKFS_MAGIC: i64 = 0x534f_434b;
    let host = |maps: &[LinuxIdMapping]| {
        maps.iter()
            .find(|m| m.container_id() == 0)
            .map(|m| m.host_id())
    };
    let (Some(uid), Some(gid)) = (host(uids), host(gids)) else {
        return;
    };
    for fd in 0..3 {
        // SAFETY: stdio fds stay open for the duration of this call.
        let bfd = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
        let Ok(st) = nix::sys::stat::fstat(bfd) else {
            continue;
        };
        let kind = st.st_mode & libc::S_IFMT;
        if kind != libc::S_IFIFO && kind != libc::S_IFSOCK {
            continue;
        }
        let anonymous = nix::sys::statfs::fstatfs(bfd)
            .is_ok_and(|f| matches!(f.filesystem_type().0 as i64, PIPEFS_MAGIC | SOCKFS_MAGIC));
        if anonymous {
            // SAFETY: fchown on an fd number; failure is harmless and ignored.
            unsafe { libc::fchown(fd, uid, gid) };
        }
    }
}

/// Become root of a new user namespace (after the parent wrote its maps).
pub fn become_ns_root() -> Result<()> {
    setresgid(Gid::from_raw(0), Gid::from_raw(0), Gid::from_raw(0))
        .context("setresgid to 0 in the user namespace")?;
    setresuid(Uid::from_raw(0), Uid::from_raw(0), Uid::from_raw(0))
        .context("setresuid to 0 in the user namespace")
}

/// setgroups, setresgid, setresuid. Capabilities survive through PR_SET_KEEPCAPS; the caller
/// sets the final sets afterwards.
pub fn switch(user: &User) -> Result<()> {
    let gids: Vec<Gid> = user
        .additional_gids()
        .iter()
        .flatten()
        .map(|g| Gid::from_raw(*g))
        .collect();
    // setgroups is denied in a user namespace whose setgroups file says "deny".
    let deny = std::fs::read_to_string("/proc/self/setgroups")
        .map(|s| s.trim() == "deny")
        .unwrap_or(false);
    if !deny {
        setgroups(&gids).with_context(|| format!("setgroups {gids:?}"))?;
    }
    // SAFETY: prctl with integer arguments only.
    unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 1, 0, 0, 0) };
    let (uid, gid) = (Uid::from_raw(user.uid()), Gid::from_raw(user.gid()));
    setresgid(gid, gid, gid).with_context(|| format!("setresgid to {gid}"))?;
    setresuid(uid, uid, uid).with_context(|| format!("setresuid to {uid}"))?;
    // SAFETY: as above.
    unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 0, 0, 0, 0) };
    Ok(())
}

/// The home directory of `uid` from the rootfs's /etc/passwd, "/" when it has none.
pub fn home_dir(etc_passwd: &Path, uid: u32) -> String {
    std::fs::read_to_string(etc_passwd)
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                (f.len() >= 6 && f[2].parse::<u32>().ok() == Some(uid)).then(|| f[5].to_string())
            })
        })
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "/".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_and_home() {
        let m: Vec<LinuxIdMapping> =
            serde_json::from_str(r#"[{"containerID":0,"hostID":1000,"size":65536}]"#).unwrap();
        assert_eq!(map_lines(&m), "0 1000 65536\n");
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("passwd");
        std::fs::write(
            &p,
            "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534::/nonexistent:/bin/false\n",
        )
        .unwrap();
        assert_eq!(home_dir(&p, 0), "/root");
        assert_eq!(home_dir(&p, 65534), "/nonexistent");
        assert_eq!(home_dir(&p, 5), "/");
    }
}
