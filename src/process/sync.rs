//! The parent <-> container-init protocol over a SOCK_SEQPACKET socketpair.
//!
//! ```text
//!   coop (parent)                               init (child of clone3)
//!   ─────────────                               ──────────────────────
//!   clone3(ns flags, CLONE_PIDFD,
//!          CLONE_INTO_CGROUP) ────────────────▶ waits for Go
//!   write uid_map/gid_map (new userns)
//!   join cgroups (v1, and v2 if not cloned in)
//!   Go ──────────────────────────────────────▶
//!                                               [two-stage: setns paths, unshare]
//!                       ◀──────────────────── WriteIdMaps   (two-stage, new userns)
//!   write maps of the stage-1 pid
//!   IdMapsWritten ───────────────────────────▶
//!                                               [two-stage: fork; stage 1 exits]
//!                       ◀──────────────────── InitPid{pid} + SCM_RIGHTS(pidfd from clone3)
//!   (two-stage only)
//!                                               mounts, devices
//!   [or: Go first, then join the cgroups while init mounts, then Joined ──▶ awaited
//!    after pivot_root; see process::joins_while_init_prepares]
//!                       ◀──────────────────── RunHooks  (config has prestart/createRuntime/
//!   prestart, createRuntime hooks                          createContainer hooks)
//!   HooksDone{pid} ──────────────────────────▶ createContainer hooks
//!                                               pivot_root, ...
//!                       ◀──────────────────── Console + SCM_RIGHTS(pty master)
//!                       ◀──────────────────── Ready
//!   meta.json: created, pid, start time            open exec.fifo for writing: blocks
//!   pid file; exit                                  until `coop start` reads it, then exec
//!
//!   At any point:       ◀──────────────────── Error{msg}; init exits 1
//!   EOF before Ready: init died; coop reports how.
//! ```
use anyhow::{bail, Context, Result};
use nix::sys::socket::{
    recvmsg, sendmsg, socketpair, AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags,
    SockFlag, SockType,
};
use serde::{Deserialize, Serialize};
use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Message {
    /// parent -> init: id maps and cgroups are in place, go on (cgroups: unless
    /// [`super::joins_while_init_prepares`], then they follow as `Joined`).
    Go,
    /// parent -> init: init is in its cgroups now; sent after `Go` when the cgroup writes
    /// overlap init's filesystem setup.
    Joined,
    /// stage 1 -> parent: a new user namespace exists; write its maps.
    WriteIdMaps,
    /// parent -> stage 1: maps written.
    IdMapsWritten,
    /// stage 1 -> parent: the container's init was forked; its pid in coop's pid namespace.
    /// Its pidfd (from clone3) follows as SCM_RIGHTS.
    InitPid { pid: i32 },
    /// init -> parent: run the prestart and createRuntime hooks now (namespaces exist, the
    /// root is not pivoted yet).
    RunHooks,
    /// parent -> init: hooks done; the container's pid as the host sees it.
    HooksDone { pid: i32 },
    /// init -> parent: the terminal master follows as SCM_RIGHTS.
    Console,
    /// init -> parent: set up, now waiting on exec.fifo.
    Ready,
    /// init -> parent: setup failed.
    Error { msg: String },
}

pub struct Channel {
    fd: OwnedFd,
}

impl Channel {
    pub fn pair() -> Result<(Channel, Channel)> {
        let (a, b) = socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .context("create sync socketpair")?;
        Ok((Channel { fd: a }, Channel { fd: b }))
    }

    pub fn raw_fd(&self) -> i32 {
        self.fd.as_raw_fd()
    }

    pub fn send(&self, msg: &Message) -> Result<()> {
        self.send_with_fd(msg, None)
    }

    pub fn send_with_fd(&self, msg: &Message, fd: Option<BorrowedFd>) -> Result<()> {
        let data = serde_json::to_vec(msg)?;
        let iov = [IoSlice::new(&data)];
        let fds;
        let cmsgs: &[ControlMessage] = match fd {
            Some(f) => {
                fds = [f.as_raw_fd()];
                &[ControlMessage::ScmRights(&fds)]
            }
            None => &[],
        };
        sendmsg::<()>(
            self.fd.as_raw_fd(),
            &iov,
            cmsgs,
            MsgFlags::MSG_NOSIGNAL,
            None,
        )
        .context("send sync message")?;
        Ok(())
    }

    /// The next message, or None when the other side closed its end.
    pub fn recv(&self) -> Result<Option<(Message, Option<OwnedFd>)>> {
        let mut buf = vec![0u8; 64 * 1024];
        let mut cmsg = nix::cmsg_space!([std::os::fd::RawFd; 1]);
        let (n, fd) = loop {
            let mut iov = [IoSliceMut::new(&mut buf)];
            match recvmsg::<()>(
                self.fd.as_raw_fd(),
                &mut iov,
                Some(&mut cmsg),
                MsgFlags::MSG_CMSG_CLOEXEC,
            ) {
                Ok(r) => {
                    let mut fd = None;
                    for c in r.cmsgs().context("read control message")? {
                        if let ControlMessageOwned::ScmRights(fds) = c {
                            for f in fds {
                                // SAFETY: SCM_RIGHTS gave us a new fd that nothing else owns.
                                fd = Some(unsafe { OwnedFd::from_raw_fd(f) });
                            }
                        }
                    }
                    break (r.bytes, fd);
                }
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(e).context("receive sync message"),
            }
        };
        if n == 0 {
            return Ok(None);
        }
        let msg = serde_json::from_slice(&buf[..n]).context("malformed sync message")?;
        Ok(Some((msg, fd)))
    }

    /// Receive and require a specific message.
    pub fn expect(&self, want: &Message) -> Result<()> {
        match self.recv()? {
            Some((m, _)) if &m == want => Ok(()),
            Some((m, _)) => bail!("sync: expected {want:?}, got {m:?}"),
            None => bail!("sync: peer closed before {want:?}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn messages_and_fds_cross() {
        let (a, b) = Channel::pair().unwrap();
        a.send(&Message::InitPid { pid: 7 }).unwrap();
        assert_eq!(b.recv().unwrap().unwrap().0, Message::InitPid { pid: 7 });
        let f = std::fs::File::open("/dev/null").unwrap();
        b.send_with_fd(&Message::Console, Some(f.as_fd())).unwrap();
        let (m, fd) = a.recv().unwrap().unwrap();
        assert_eq!(m, Message::Console);
        assert!(fd.is_some());
        a.send(&Message::Error { msg: "x".into() }).unwrap();
        assert!(b.expect(&Message::Ready).is_err());
        drop(a);
        assert!(b.recv().unwrap().is_none());
    }
}
