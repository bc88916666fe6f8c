//! `linux.personality`: the execution domain (LINUX, LINUX32) with personality(2).
use anyhow::{bail, Context, Result};
use oci_spec::runtime::{LinuxPersonality, LinuxPersonalityDomain};

const PER_LINUX: libc::c_ulong = 0x0000;
const PER_LINUX32: libc::c_ulong = 0x0008;

/// The spec defines no flag yet: any flag is refused rather than ignored.
pub fn validate(p: &LinuxPersonality) -> Result<()> {
    if let Some(f) = p.flags().iter().flatten().next() {
        bail!(
            "linux.personality.flags: {f:?} is not supported (runtime-spec 1.3 defines no flags)"
        );
    }
    Ok(())
}

pub fn apply(p: &LinuxPersonality) -> Result<()> {
    validate(p)?;
    let domain = match p.domain() {
        LinuxPersonalityDomain::PerLinux => PER_LINUX,
        LinuxPersonalityDomain::PerLinux32 => PER_LINUX32,
    };
    // SAFETY: personality takes a plain integer.
    if unsafe { libc::personality(domain) } == -1 {
        return Err(std::io::Error::last_os_error())
            .with_context(|| format!("linux.personality: set domain {}", p.domain()));
    }
    Ok(())
}
