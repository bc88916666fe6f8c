//! Signal names, and putting signal state back to defaults for the container.
use anyhow::{bail, Result};
use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, SigmaskHow, Signal};

/// `KILL`, `SIGKILL`, `kill`, `9`, and realtime `RTMIN+3` / `SIGRTMAX-1` all parse.
pub fn parse(s: &str) -> Result<i32> {
    let t = s.trim();
    if let Ok(n) = t.parse::<i32>() {
        if (1..=libc::SIGRTMAX()).contains(&n) {
            return Ok(n);
        }
        bail!("invalid signal {s:?}: out of range");
    }
    let up = t.to_ascii_uppercase();
    let name = up.strip_prefix("SIG").unwrap_or(&up);
    if let Some(rest) = name.strip_prefix("RTMIN") {
        return rt(s, libc::SIGRTMIN(), rest);
    }
    if let Some(rest) = name.strip_prefix("RTMAX") {
        return rt(s, libc::SIGRTMAX(), rest);
    }
    match format!("SIG{name}").parse::<Signal>() {
        Ok(sig) => Ok(sig as i32),
        Err(_) => bail!("invalid signal {s:?}"),
    }
}

fn rt(orig: &str, base: i32, rest: &str) -> Result<i32> {
    let n = if rest.is_empty() {
        base
    } else {
        match rest.parse::<i32>() {
            Ok(off) => base + off,
            Err(_) => bail!("invalid signal {orig:?}"),
        }
    };
    if !(libc::SIGRTMIN()..=libc::SIGRTMAX()).contains(&n) {
        bail!("invalid signal {orig:?}: out of range");
    }
    Ok(n)
}

/// Default dispositions for every signal and an empty mask: Rust ignores SIGPIPE and `run`
/// blocks the signals it forwards, and neither may leak into the container.
pub fn reset_all() {
    let dfl = SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty());
    for n in 1..=libc::SIGRTMAX() {
        if let Ok(sig) = Signal::try_from(n) {
            if sig != Signal::SIGKILL && sig != Signal::SIGSTOP {
                // SAFETY: installing SIG_DFL has no handler code to be unsafe about.
                let _ = unsafe { sigaction(sig, &dfl) };
            }
        } else {
            // Realtime signals have no nix Signal: use libc directly.
            // SAFETY: a zeroed sigaction with SIG_DFL is a valid argument.
            let r = unsafe {
                let mut sa: libc::sigaction = std::mem::zeroed();
                sa.sa_sigaction = libc::SIG_DFL;
                libc::sigaction(n, &sa, std::ptr::null_mut())
            };
            if r != 0 {
                // glibc refuses its own two (32 and 33, below SIGRTMIN), which an ignoring
                // parent leaves ignored across exec: ask the kernel directly.
                let dfl: [u64; 4] = [libc::SIG_DFL as u64, 0, 0, 0]; // handler, flags, restorer, mask
                                                                     // SAFETY: rt_sigaction reads a kernel sigaction (the layout above) and writes
                                                                     // nothing (old action NULL); the mask size is the kernel's 8 bytes.
                unsafe {
                    libc::syscall(
                        libc::SYS_rt_sigaction,
                        n,
                        dfl.as_ptr(),
                        std::ptr::null_mut::<u64>(),
                        8usize,
                    )
                };
            }
        }
    }
    let _ = nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_numbers() {
        for s in ["KILL", "SIGKILL", "kill", "9", " 9 "] {
            assert_eq!(parse(s).unwrap(), 9, "{s}");
        }
        assert_eq!(parse("TERM").unwrap(), 15);
        assert_eq!(parse("SIGUSR1").unwrap(), libc::SIGUSR1);
        assert_eq!(parse("RTMIN+2").unwrap(), libc::SIGRTMIN() + 2);
        assert_eq!(parse("SIGRTMAX").unwrap(), libc::SIGRTMAX());
        for bad in ["0", "65", "FOO", "RTMIN+99", ""] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
