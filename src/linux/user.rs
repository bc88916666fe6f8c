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

/// Write /proc/PID/{uid_map,gid_map} for a process in a new user namespace, as runc does:
/// directly when coop may (root in the parent namespace, or a single mapping of the caller's
/// own id, after denying setgroups as the kernel demands), otherwise through newuidmap and
/// newgidmap (package uidmap), which check the ranges against /etc/subuid and /etc/subgid.
pub fn write_id_maps(pid: i32, uids: &[LinuxIdMapping], gids: &[LinuxIdMapping]) -> Result<()> {
    let euid = nix::unistd::geteuid().as_raw();
    let egid = nix::unistd::getegid().as_raw();
    if !gids.is_empty() {
        write_map(pid, Ids::Gid, gids, euid, egid)?;
    }
    if !uids.is_empty() {
        write_map(pid, Ids::Uid, uids, euid, euid)?;
    }
    Ok(())
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Ids {
    Uid,
    Gid,
}

impl Ids {
    fn file(self) -> &'static str {
        match self {
            Ids::Uid => "uid_map",
            Ids::Gid => "gid_map",
        }
    }
    fn tool(self) -> &'static str {
        match self {
            Ids::Uid => "newuidmap",
            Ids::Gid => "newgidmap",
        }
    }
}

/// How a map gets written: by coop, or by the setuid helper.
#[derive(Debug, PartialEq, Eq)]
enum Writer {
    Direct,
    /// An unprivileged caller mapping its own id: setgroups must be denied first (gid_map).
    DirectOwnId,
    Tool,
}

fn writer(euid: u32, own: u32, maps: &[LinuxIdMapping]) -> Writer {
    match maps {
        _ if euid == 0 => Writer::Direct,
        [m] if m.host_id() == own && m.size() == 1 => Writer::DirectOwnId,
        _ => Writer::Tool,
    }
}

fn write_map(pid: i32, ids: Ids, maps: &[LinuxIdMapping], euid: u32, own: u32) -> Result<()> {
    let p = format!("/proc/{pid}/{}", ids.file());
    match writer(euid, own, maps) {
        Writer::Direct => std::fs::write(&p, map_lines(maps)).with_context(|| format!("write {p}")),
        Writer::DirectOwnId => {
            if ids == Ids::Gid {
                let sg = format!("/proc/{pid}/setgroups");
                std::fs::write(&sg, "deny").with_context(|| format!("write deny to {sg}"))?;
            }
            std::fs::write(&p, map_lines(maps)).with_context(|| {
                format!(
                    "write {p} (an unprivileged user may map only its own {} once)",
                    if ids == Ids::Gid { "gid" } else { "uid" }
                )
            })
        }
        Writer::Tool => run_tool(pid, ids, maps),
    }
}

/// newuidmap PID inside outside count...: the only way for an unprivileged user to map
/// more than its own id.
fn run_tool(pid: i32, ids: Ids, maps: &[LinuxIdMapping]) -> Result<()> {
    let tool = find_tool(ids.tool()).with_context(|| {
        format!(
            "{} mappings other than the caller's own id need {} (package uidmap): not found",
            ids.file(),
            ids.tool()
        )
    })?;
    let mut cmd = std::process::Command::new(&tool);
    cmd.arg(pid.to_string());
    for m in maps {
        cmd.args([
            m.container_id().to_string(),
            m.host_id().to_string(),
            m.size().to_string(),
        ]);
    }
    let out = cmd
        .stdin(std::process::Stdio::null())
        .output()
        .with_context(|| format!("run {}", tool.display()))?;
    if !out.status.success() {
        anyhow::bail!(
            "{} {pid} {}: {} ({}: the ranges must be in /etc/sub{} for this user)",
            tool.display(),
            map_lines(maps).trim().replace('\n', " "),
            String::from_utf8_lossy(&out.stderr).trim(),
            out.status,
            if ids == Ids::Gid { "gid" } else { "uid" }
        );
    }
    Ok(())
}

/// `name` in PATH, else in the usual directories (podman may call us without a PATH).
fn find_tool(name: &str) -> Option<std::path::PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    let found = path
        .split(':')
        .filter(|d| !d.is_empty())
        .chain(["/usr/bin", "/usr/sbin", "/bin", "/sbin"])
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file());
    found
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
        assert_eq!(writer(0, 0, &m), Writer::Direct);
        assert_eq!(writer(1000, 1000, &m), Writer::Tool);
        let own: Vec<LinuxIdMapping> =
            serde_json::from_str(r#"[{"containerID":0,"hostID":1000,"size":1}]"#).unwrap();
        assert_eq!(writer(1000, 1000, &own), Writer::DirectOwnId);
        assert_eq!(writer(1001, 1001, &own), Writer::Tool);
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
