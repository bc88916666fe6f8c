//! `linux.memoryPolicy`: the NUMA memory policy with set_mempolicy(2).
use anyhow::{bail, Context, Result};
use oci_spec::runtime::{LinuxMemoryPolicy, MemoryPolicyFlagType, MemoryPolicyModeType};

fn mode_number(m: MemoryPolicyModeType) -> libc::c_int {
    match m {
        MemoryPolicyModeType::MpolDefault => 0,
        MemoryPolicyModeType::MpolPreferred => 1,
        MemoryPolicyModeType::MpolBind => 2,
        MemoryPolicyModeType::MpolInterleave => 3,
        MemoryPolicyModeType::MpolLocal => 4,
        MemoryPolicyModeType::MpolPreferredMany => 5,
        MemoryPolicyModeType::MpolWeightedInterleave => 6,
    }
}

fn flag_bit(f: MemoryPolicyFlagType) -> libc::c_int {
    match f {
        MemoryPolicyFlagType::MpolFStaticNodes => 1 << 15,
        MemoryPolicyFlagType::MpolFRelativeNodes => 1 << 14,
        MemoryPolicyFlagType::MpolFNumaBalancing => 1 << 13,
    }
}

/// The node mask as the kernel reads it (64-bit words) and the number of bits.
fn node_mask(p: &LinuxMemoryPolicy) -> Result<Vec<libc::c_ulong>> {
    let nodes = p.nodes().as_deref().unwrap_or("").trim();
    let mode = p.mode();
    let empty_ok = matches!(
        mode,
        MemoryPolicyModeType::MpolDefault
            | MemoryPolicyModeType::MpolLocal
            | MemoryPolicyModeType::MpolPreferred
    );
    if nodes.is_empty() {
        if !empty_ok {
            bail!("linux.memoryPolicy: mode {mode} needs \"nodes\"");
        }
        return Ok(vec![]);
    }
    if matches!(
        mode,
        MemoryPolicyModeType::MpolDefault | MemoryPolicyModeType::MpolLocal
    ) {
        bail!("linux.memoryPolicy: mode {mode} takes no \"nodes\" (got {nodes:?})");
    }
    let mut mask: Vec<libc::c_ulong> = vec![];
    for (a, b) in super::sched::parse_list("linux.memoryPolicy.nodes", nodes)? {
        if b >= 4096 {
            bail!("linux.memoryPolicy.nodes: node {b} is out of range");
        }
        for n in a..=b {
            let word = n / 64;
            if mask.len() <= word {
                mask.resize(word + 1, 0);
            }
            mask[word] |= 1 << (n % 64);
        }
    }
    Ok(mask)
}

pub fn validate(p: &LinuxMemoryPolicy) -> Result<()> {
    let flags: Vec<_> = p.flags().iter().flatten().collect();
    if flags.contains(&&MemoryPolicyFlagType::MpolFStaticNodes)
        && flags.contains(&&MemoryPolicyFlagType::MpolFRelativeNodes)
    {
        bail!("linux.memoryPolicy.flags: MPOL_F_STATIC_NODES and MPOL_F_RELATIVE_NODES exclude each other");
    }
    node_mask(p).map(|_| ())
}

pub fn apply(p: &LinuxMemoryPolicy) -> Result<()> {
    validate(p)?;
    let mask = node_mask(p)?;
    let mode = p
        .flags()
        .iter()
        .flatten()
        .fold(mode_number(p.mode()), |acc, f| acc | flag_bit(*f));
    // The kernel reads maxnode - 1 bits.
    let maxnode = if mask.is_empty() {
        0
    } else {
        mask.len() * 64 + 1
    };
    let ptr = if mask.is_empty() {
        std::ptr::null()
    } else {
        mask.as_ptr()
    };
    // SAFETY: `ptr` is null or points to `mask`, which holds maxnode - 1 bits; the kernel
    // only reads it.
    let r = unsafe { libc::syscall(libc::SYS_set_mempolicy, mode, ptr, maxnode) };
    if r != 0 {
        return Err(std::io::Error::last_os_error()).with_context(|| {
            format!(
                "linux.memoryPolicy: set_mempolicy mode {} nodes {:?}",
                p.mode(),
                p.nodes().as_deref().unwrap_or("")
            )
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(json: &str) -> Result<()> {
        validate(&serde_json::from_str(json).unwrap())
    }

    #[test]
    fn checks() {
        check(r#"{"mode":"MPOL_BIND","nodes":"0"}"#).unwrap();
        check(r#"{"mode":"MPOL_LOCAL"}"#).unwrap();
        assert!(check(r#"{"mode":"MPOL_BIND"}"#).is_err());
        assert!(check(r#"{"mode":"MPOL_DEFAULT","nodes":"0"}"#).is_err());
        assert!(check(r#"{"mode":"MPOL_BIND","nodes":"0","flags":["MPOL_F_STATIC_NODES","MPOL_F_RELATIVE_NODES"]}"#).is_err());
        let p: LinuxMemoryPolicy =
            serde_json::from_str(r#"{"mode":"MPOL_BIND","nodes":"0-1,65"}"#).unwrap();
        assert_eq!(node_mask(&p).unwrap(), vec![3, 2]);
    }
}
