//! `linux.netDevices`: move host network interfaces into the container's network namespace
//! (optionally renamed), keeping their permanent global addresses and setting them up, as
//! runtime-spec 1.3 and runc 1.3 do; and back to the host on delete when the namespace
//! outlives the container (one joined by path).
//!
//! rtnetlink by hand: RTM_GETADDR (dump), RTM_NEWLINK with IFLA_NET_NS_FD/IFLA_IFNAME (move,
//! rename), RTM_NEWADDR and RTM_NEWLINK with IFF_UP (inside the namespace).
use anyhow::{bail, Context, Result};
use oci_spec::runtime::{LinuxNamespaceType, Spec};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};

const NLMSG_HDR: usize = 16;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const RTM_NEWLINK: u16 = 16;
const RTM_NEWADDR: u16 = 20;
const RTM_GETADDR: u16 = 22;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_EXCL: u16 = 0x200;
const NLM_F_CREATE: u16 = 0x400;
const NLM_F_DUMP: u16 = 0x300;
const IFLA_IFNAME: u16 = 3;
const IFLA_NET_NS_FD: u16 = 28;
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const IFA_FLAGS: u16 = 8;
const IFA_F_PERMANENT: u32 = 0x80;
const RT_SCOPE_UNIVERSE: u8 = 0;

/// The devices to move: (host name, name in the container).
pub fn devices(spec: &Spec) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = spec
        .linux()
        .as_ref()
        .and_then(|l| l.net_devices().as_ref())
        .into_iter()
        .flatten()
        .map(|(host, d)| {
            let name = d
                .name()
                .as_deref()
                .filter(|n| !n.is_empty())
                .unwrap_or(host);
            (host.clone(), name.to_string())
        })
        .collect();
    out.sort();
    out
}

fn check_name(field: &str, n: &str) -> Result<()> {
    if n.is_empty() || n.len() > 15 || n == "." || n == ".." {
        bail!("{field}: invalid interface name {n:?} (1 to 15 bytes, not \".\" or \"..\")");
    }
    if n.bytes()
        .any(|b| b == b'/' || b == b':' || b.is_ascii_whitespace() || b == 0)
    {
        bail!("{field}: invalid interface name {n:?} (no '/', ':' or white space)");
    }
    Ok(())
}

/// Checks that need no kernel: names, a network namespace of the container's own, and
/// no two devices with the same name inside.
pub fn validate(spec: &Spec) -> Result<()> {
    let has_netns = spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .into_iter()
        .flatten()
        .any(|n| n.typ() == LinuxNamespaceType::Network);
    if !has_netns {
        bail!("\"linux.netDevices\" needs a network namespace (\"linux.namespaces\" has no \"network\")");
    }
    let mut seen = std::collections::HashSet::new();
    for (host, name) in devices(spec) {
        check_name("linux.netDevices", &host)?;
        check_name(&format!("linux.netDevices.{host}.name"), &name)?;
        if !name.contains("%d") && !seen.insert(name.clone()) {
            bail!("linux.netDevices: two devices are named {name:?} in the container");
        }
    }
    Ok(())
}

struct Netlink {
    fd: OwnedFd,
    seq: u32,
}

fn attr(buf: &mut Vec<u8>, typ: u16, data: &[u8]) {
    let len = 4 + data.len();
    buf.extend_from_slice(&(len as u16).to_ne_bytes());
    buf.extend_from_slice(&typ.to_ne_bytes());
    buf.extend_from_slice(data);
    while !buf.len().is_multiple_of(4) {
        buf.push(0);
    }
}

/// Attributes after a fixed header: (type, payload).
fn attrs(mut b: &[u8]) -> Vec<(u16, &[u8])> {
    let mut out = vec![];
    while b.len() >= 4 {
        let len = u16::from_ne_bytes([b[0], b[1]]) as usize;
        let typ = u16::from_ne_bytes([b[2], b[3]]) & 0x3fff;
        if len < 4 || len > b.len() {
            break;
        }
        out.push((typ, &b[4..len]));
        let next = (len + 3) & !3;
        b = &b[next.min(b.len())..];
    }
    out
}

fn ifinfomsg(index: i32, flags: u32, change: u32) -> Vec<u8> {
    let mut b = vec![0u8; 16];
    // ifi_family (AF_UNSPEC), pad, ifi_type: zero.
    b[4..8].copy_from_slice(&index.to_ne_bytes());
    b[8..12].copy_from_slice(&flags.to_ne_bytes());
    b[12..16].copy_from_slice(&change.to_ne_bytes());
    b
}

/// One permanent global address of a device, as RTM_NEWADDR wants it back.
#[derive(Debug, Clone)]
struct Addr {
    family: u8,
    prefix: u8,
    local: Option<Vec<u8>>,
    address: Option<Vec<u8>>,
}

impl Netlink {
    /// A NETLINK_ROUTE socket of the current network namespace (it stays in it).
    fn open() -> Result<Netlink> {
        // SAFETY: socket takes plain integers and returns a new fd.
        let fd = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                libc::NETLINK_ROUTE,
            )
        };
        if fd < 0 {
            return Err(std::io::Error::last_os_error()).context("open a netlink socket");
        }
        // SAFETY: a new fd that nothing else owns.
        Ok(Netlink {
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
            seq: 0,
        })
    }

    fn send(&mut self, typ: u16, flags: u16, body: &[u8]) -> Result<u32> {
        self.seq += 1;
        let mut msg = Vec::with_capacity(NLMSG_HDR + body.len());
        msg.extend_from_slice(&((NLMSG_HDR + body.len()) as u32).to_ne_bytes());
        msg.extend_from_slice(&typ.to_ne_bytes());
        msg.extend_from_slice(&(flags | NLM_F_REQUEST).to_ne_bytes());
        msg.extend_from_slice(&self.seq.to_ne_bytes());
        msg.extend_from_slice(&0u32.to_ne_bytes());
        msg.extend_from_slice(body);
        // SAFETY: valid buffer and length; the kernel is the default destination.
        let r = unsafe {
            libc::send(
                self.fd.as_raw_fd(),
                msg.as_ptr() as *const libc::c_void,
                msg.len(),
                0,
            )
        };
        if r < 0 {
            return Err(std::io::Error::last_os_error()).context("send to netlink");
        }
        Ok(self.seq)
    }

    /// Messages answering `seq` until DONE or an ACK/error; calls `each` for data messages.
    fn recv(&mut self, seq: u32, mut each: impl FnMut(u16, &[u8])) -> Result<()> {
        let mut buf = vec![0u8; 65536];
        loop {
            // SAFETY: valid buffer and length.
            let n = unsafe {
                libc::recv(
                    self.fd.as_raw_fd(),
                    buf.as_mut_ptr() as *mut libc::c_void,
                    buf.len(),
                    0,
                )
            };
            if n < 0 {
                return Err(std::io::Error::last_os_error()).context("receive from netlink");
            }
            let mut b = &buf[..n as usize];
            while b.len() >= NLMSG_HDR {
                let len = u32::from_ne_bytes(b[0..4].try_into().unwrap()) as usize;
                let typ = u16::from_ne_bytes([b[4], b[5]]);
                let mseq = u32::from_ne_bytes(b[8..12].try_into().unwrap());
                if len < NLMSG_HDR || len > b.len() {
                    bail!("netlink: truncated message");
                }
                let body = &b[NLMSG_HDR..len];
                if mseq == seq {
                    match typ {
                        NLMSG_DONE => return Ok(()),
                        NLMSG_ERROR => {
                            let err = i32::from_ne_bytes(body[0..4].try_into().unwrap());
                            if err == 0 {
                                return Ok(());
                            }
                            return Err(std::io::Error::from_raw_os_error(-err).into());
                        }
                        t => each(t, body),
                    }
                }
                b = &b[((len + 3) & !3).min(b.len())..];
            }
        }
    }

    fn request(&mut self, typ: u16, flags: u16, body: &[u8]) -> Result<()> {
        let seq = self.send(typ, flags | NLM_F_ACK, body)?;
        self.recv(seq, |_, _| {})
    }

    /// The permanent addresses of global scope of interface `index`.
    fn addresses(&mut self, index: i32) -> Result<Vec<Addr>> {
        // struct ifaddrmsg, all zero: every family.
        let seq = self.send(RTM_GETADDR, NLM_F_DUMP, &[0u8; 8])?;
        let mut out = vec![];
        self.recv(seq, |typ, body| {
            if typ != RTM_NEWADDR || body.len() < 8 {
                return;
            }
            let (family, prefix, flags8, scope) = (body[0], body[1], body[2], body[3]);
            let idx = i32::from_ne_bytes(body[4..8].try_into().unwrap());
            if idx != index || scope != RT_SCOPE_UNIVERSE {
                return;
            }
            let mut flags = flags8 as u32;
            let mut a = Addr {
                family,
                prefix,
                local: None,
                address: None,
            };
            for (t, v) in attrs(&body[8..]) {
                match t {
                    IFA_FLAGS if v.len() == 4 => flags = u32::from_ne_bytes(v.try_into().unwrap()),
                    IFA_LOCAL => a.local = Some(v.to_vec()),
                    IFA_ADDRESS => a.address = Some(v.to_vec()),
                    _ => {}
                }
            }
            if flags & IFA_F_PERMANENT != 0 {
                out.push(a);
            }
        })?;
        Ok(out)
    }

    fn add_address(&mut self, index: i32, a: &Addr) -> Result<()> {
        let mut body = vec![a.family, a.prefix, 0, RT_SCOPE_UNIVERSE];
        body.extend_from_slice(&index.to_ne_bytes());
        if let Some(l) = &a.local {
            attr(&mut body, IFA_LOCAL, l);
        }
        if let Some(ad) = &a.address {
            attr(&mut body, IFA_ADDRESS, ad);
        }
        self.request(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, &body)
    }

    /// Move interface `index` to the namespace `ns`, named `name` there.
    fn move_to(&mut self, index: i32, ns: &OwnedFd, name: &str) -> Result<()> {
        let mut body = ifinfomsg(index, 0, 0);
        attr(
            &mut body,
            IFLA_NET_NS_FD,
            &(ns.as_raw_fd() as u32).to_ne_bytes(),
        );
        let mut n = name.as_bytes().to_vec();
        n.push(0);
        attr(&mut body, IFLA_IFNAME, &n);
        self.request(RTM_NEWLINK, 0, &body)
    }

    fn set_up(&mut self, index: i32) -> Result<()> {
        let up = libc::IFF_UP as u32;
        self.request(RTM_NEWLINK, 0, &ifinfomsg(index, up, up))
    }
}

fn index_of(name: &str) -> Option<i32> {
    let c = std::ffi::CString::new(name).ok()?;
    // SAFETY: valid NUL-terminated name.
    let i = unsafe { libc::if_nametoindex(c.as_ptr()) };
    (i != 0).then_some(i as i32)
}

fn open_ns(path: &std::path::Path) -> Result<OwnedFd> {
    Ok(std::fs::File::open(path)
        .with_context(|| format!("open {}", path.display()))?
        .into())
}

/// Run `f` inside the network namespace `ns`, then come back (coop is single-threaded).
fn in_netns<T>(ns: &OwnedFd, f: impl FnOnce() -> Result<T>) -> Result<T> {
    let home = open_ns(std::path::Path::new("/proc/thread-self/ns/net"))?;
    nix::sched::setns(ns.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET)
        .context("join the container's network namespace")?;
    let r = f();
    nix::sched::setns(home.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET)
        .context("return to coop's network namespace")?;
    r
}

/// Move each device of `linux.netDevices` from our namespace into `netns` (a path such as
/// /proc/PID/ns/net), renamed, with its permanent global addresses, and set it up.
pub fn move_in(spec: &Spec, netns: &std::path::Path) -> Result<()> {
    let devs = devices(spec);
    if devs.is_empty() {
        return Ok(());
    }
    // All must exist before any moves: a half-done move would leave a device behind.
    for (hname, _) in &devs {
        if index_of(hname).is_none() {
            bail!("linux.netDevices.{hname}: no network interface {hname:?} on the host");
        }
    }
    let ns = open_ns(netns)?;
    let mut host = Netlink::open()?;
    for (hname, cname) in devs {
        let field = format!("linux.netDevices.{hname}");
        let index = index_of(&hname)
            .with_context(|| format!("{field}: no network interface {hname:?} on the host"))?;
        let addrs = host
            .addresses(index)
            .with_context(|| format!("{field}: read the addresses of {hname}"))?;
        host.move_to(index, &ns, &cname).with_context(|| {
            format!("{field}: move {hname} into the container's network namespace as {cname:?}")
        })?;
        in_netns(&ns, || {
            // A "%d" template got its number from the kernel: find the device by index.
            let mut nl = Netlink::open()?;
            let idx = if cname.contains("%d") {
                index
            } else {
                index_of(&cname).unwrap_or(index)
            };
            for a in &addrs {
                nl.add_address(idx, a)
                    .with_context(|| format!("{field}: add address {a:?} to {cname}"))?;
            }
            nl.set_up(idx)
                .with_context(|| format!("{field}: set {cname} up"))
        })?;
    }
    Ok(())
}

/// Move the devices back from `netns` (which outlives the container) to our namespace, with
/// their host names; a device already gone is skipped.
pub fn move_out(spec: &Spec, netns: &std::path::Path) -> Result<()> {
    let devs = devices(spec);
    if devs.is_empty() {
        return Ok(());
    }
    let ns = open_ns(netns)?;
    let home = open_ns(std::path::Path::new("/proc/thread-self/ns/net"))?;
    let back = in_netns(&ns, || {
        let mut nl = Netlink::open()?;
        let mut back = vec![];
        for (hname, cname) in &devs {
            let Some(index) = index_of(cname) else {
                continue;
            };
            let addrs = nl.addresses(index).unwrap_or_default();
            nl.move_to(index, &home, hname).with_context(|| {
                format!("linux.netDevices.{hname}: move {cname} back to the host")
            })?;
            back.push((hname.clone(), addrs));
        }
        Ok(back)
    })?;
    // Addresses are lost in the move: put them back on the host side.
    let mut nl = Netlink::open()?;
    for (hname, addrs) in back {
        if let Some(index) = index_of(&hname) {
            for a in &addrs {
                let _ = nl.add_address(index, a);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        check_name("f", "eth0").unwrap();
        check_name("f", "c%d").unwrap();
        assert!(check_name("f", "a/b").is_err());
        assert!(check_name("f", "0123456789abcdef").is_err());
        assert!(check_name("f", "").is_err());
    }

    #[test]
    fn attr_roundtrip() {
        let mut b = vec![];
        attr(&mut b, IFLA_IFNAME, b"eth0\0");
        attr(&mut b, IFLA_NET_NS_FD, &7u32.to_ne_bytes());
        let a = attrs(&b);
        assert_eq!(a[0], (IFLA_IFNAME, &b"eth0\0"[..]));
        assert_eq!(a[1], (IFLA_NET_NS_FD, &7u32.to_ne_bytes()[..]));
    }
}
