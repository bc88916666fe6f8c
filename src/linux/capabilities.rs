//! Capabilities: the bounding set is reduced while init still has CAP_SETPCAP (before it
//! changes user); effective, permitted, inheritable and ambient are set after.
use anyhow::{Context, Result};
use caps::{CapSet, CapsHashSet};
use oci_spec::runtime::{Capabilities, LinuxCapabilities};
use std::str::FromStr;

/// The capabilities this kernel has, probed once (one prctl each) rather than once per set.
fn supported() -> &'static CapsHashSet {
    static SUPPORTED: std::sync::OnceLock<CapsHashSet> = std::sync::OnceLock::new();
    SUPPORTED.get_or_init(caps::runtime::thread_all_supported)
}

fn convert(set: &Capabilities) -> Result<CapsHashSet> {
    let supported = supported();
    let mut out = CapsHashSet::new();
    for c in set {
        let name = serde_json::to_value(c)?;
        let name = name.as_str().unwrap_or_default();
        let cap = caps::Capability::from_str(name)
            .with_context(|| format!("capability {name} is not known to this build"))?;
        // A capability this kernel does not have cannot be granted; runc skips it too.
        if supported.contains(&cap) {
            out.insert(cap);
        }
    }
    Ok(out)
}

pub fn drop_bounding(c: &LinuxCapabilities) -> Result<()> {
    let keep = convert(c.bounding().as_ref().unwrap_or(&Default::default()))?;
    for &cap in supported() {
        if !keep.contains(&cap) {
            caps::drop(None, CapSet::Bounding, cap)
                .with_context(|| format!("drop {cap} from the bounding set"))?;
        }
    }
    Ok(())
}

pub fn apply(c: &LinuxCapabilities) -> Result<()> {
    let empty = Capabilities::default();
    let get = |o: &Option<Capabilities>| convert(o.as_ref().unwrap_or(&empty));
    let (eff, perm, inh, amb) = (
        get(c.effective())?,
        get(c.permitted())?,
        get(c.inheritable())?,
        get(c.ambient())?,
    );
    // A capability outside the bounding set cannot become inheritable: say which.
    let bounding = if inh.is_empty() {
        CapsHashSet::new()
    } else {
        caps::read(None, CapSet::Bounding).unwrap_or_default()
    };
    let outside: Vec<String> = inh
        .iter()
        .filter(|c| !bounding.contains(c))
        .map(|c| c.to_string())
        .collect();
    if !outside.is_empty() {
        anyhow::bail!(
            "set inheritable capabilities: {} not in the bounding set (this host may not allow it)",
            outside.join(", ")
        );
    }
    caps::set(None, CapSet::Inheritable, &inh).context("set inheritable capabilities")?;
    // Effective before permitted: each capset call must leave effective within permitted.
    caps::set(None, CapSet::Effective, &eff).context("set effective capabilities")?;
    caps::set(None, CapSet::Permitted, &perm).context("set permitted capabilities")?;
    // Ambient capabilities must be permitted and inheritable; like runc, skip the others.
    caps::clear(None, CapSet::Ambient).ok();
    for cap in amb.iter().filter(|c| perm.contains(c) && inh.contains(c)) {
        caps::raise(None, CapSet::Ambient, *cap)
            .with_context(|| format!("raise ambient capability {cap}"))?;
    }
    Ok(())
}
