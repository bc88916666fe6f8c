//! Network namespaces: the loopback interface of a new one is brought up, as runc does, so
//! that 127.0.0.1 works in a container without a network (`podman --network none`, `ctr run`
//! without CNI) and between the members of a sandbox.
use anyhow::{Context, Result};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// Bring `lo` up in the caller's network namespace (a new one: a joined namespace is left
/// as its owner set it). Needs CAP_NET_ADMIN over that namespace.
pub fn loopback_up() -> Result<()> {
    // SAFETY: socket(2) with constant arguments; the new fd is owned below.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error()).context("bring up lo: socket");
    }
    // SAFETY: fd is a new socket that nothing else owns.
    let sock = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: ifreq is plain data; all zeroes is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (d, s) in req.ifr_name.iter_mut().zip(b"lo") {
        *d = *s as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS reads the name and writes the flags of a valid ifreq.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) } < 0 {
        return Err(std::io::Error::last_os_error()).context("bring up lo: get its flags");
    }
    // SAFETY: the flags member of the union was just filled by SIOCGIFFLAGS.
    unsafe { req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short };
    // SAFETY: SIOCSIFFLAGS reads a valid ifreq.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req) } < 0 {
        return Err(std::io::Error::last_os_error()).context("bring up lo");
    }
    Ok(())
}
