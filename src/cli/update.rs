use super::Global;
use crate::container::update::{parse_size, update};
use anyhow::{Context, Result};
use oci_spec::runtime::LinuxResources;
use std::io::Read;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Container id (any unambiguous prefix of one works)
    #[arg(value_name = "ID")]
    pub id: String,
    /// JSON LinuxResources (runtime-spec linux.resources) from a file, or - for stdin; the
    /// flags below apply on top of it
    #[arg(short = 'r', long, value_name = "FILE|-")]
    pub resources: Option<String>,
    /// Memory limit in bytes, or with a unit k, m, g, t (powers of 1024; e.g. 256m); -1 for
    /// no limit
    #[arg(long, value_name = "SIZE", allow_hyphen_values = true)]
    pub memory: Option<String>,
    /// Memory + swap limit, same units as --memory (e.g. 512m); -1 for no limit
    #[arg(long = "memory-swap", value_name = "SIZE", allow_hyphen_values = true)]
    pub memory_swap: Option<String>,
    /// Memory soft limit (v1 soft_limit, v2 memory.low), same units as --memory (e.g. 128m)
    #[arg(
        long = "memory-reservation",
        value_name = "SIZE",
        allow_hyphen_values = true
    )]
    pub memory_reservation: Option<String>,
    /// CPU shares, a relative weight (default 1024; e.g. 512 for half)
    #[arg(long = "cpu-shares", value_name = "SHARES")]
    pub cpu_shares: Option<u64>,
    /// CPU time allowed per --cpu-period, in microseconds (e.g. 50000 of 100000 for half a
    /// CPU); -1 for no limit
    #[arg(
        long = "cpu-quota",
        allow_hyphen_values = true,
        value_name = "MICROSECONDS"
    )]
    pub cpu_quota: Option<i64>,
    /// Length of a CPU period in microseconds (default 100000)
    #[arg(long = "cpu-period", value_name = "MICROSECONDS")]
    pub cpu_period: Option<u64>,
    /// CPUs the container may run on (e.g. 0-1,3)
    #[arg(long = "cpuset-cpus", value_name = "LIST")]
    pub cpuset_cpus: Option<String>,
    /// Memory nodes the container may allocate from (e.g. 0)
    #[arg(long = "cpuset-mems", value_name = "LIST")]
    pub cpuset_mems: Option<String>,
    /// Most processes (and threads) in the container (e.g. 100); -1 for no limit
    #[arg(long = "pids-limit", allow_hyphen_values = true, value_name = "N")]
    pub pids_limit: Option<i64>,
    /// Block IO weight, 10 to 1000 (v2 io.weight; e.g. 500)
    #[arg(long = "blkio-weight", value_name = "WEIGHT")]
    pub blkio_weight: Option<u16>,
}

/// The resources to apply: -r's JSON, with the flags on top.
pub fn resources(a: &Args) -> Result<LinuxResources> {
    let mut r: LinuxResources = match a.resources.as_deref() {
        Some("-") => {
            let mut s = String::new();
            std::io::stdin()
                .read_to_string(&mut s)
                .context("read resources from stdin")?;
            crate::spec::parse_resources(s.as_bytes()).context("invalid resources on stdin")?
        }
        Some(f) => {
            let data = std::fs::read(f).with_context(|| format!("read {f}"))?;
            crate::spec::parse_resources(&data)
                .with_context(|| format!("invalid resources in {f}"))?
        }
        None => LinuxResources::default(),
    };
    // The default LinuxResources carries an empty device list: an update never touches
    // device rules unless the JSON names them.
    if a.resources.is_none() {
        r.set_devices(None);
    }
    let mut mem = r.memory().clone().unwrap_or_default();
    let mut mem_set = r.memory().is_some();
    if let Some(v) = &a.memory {
        mem.set_limit(Some(parse_size(v)?));
        mem_set = true;
    }
    if let Some(v) = &a.memory_swap {
        mem.set_swap(Some(parse_size(v)?));
        mem_set = true;
    }
    if let Some(v) = &a.memory_reservation {
        mem.set_reservation(Some(parse_size(v)?));
        mem_set = true;
    }
    if mem_set {
        r.set_memory(Some(mem));
    }
    if a.cpu_shares.is_some()
        || a.cpu_quota.is_some()
        || a.cpu_period.is_some()
        || a.cpuset_cpus.is_some()
        || a.cpuset_mems.is_some()
    {
        let mut cpu = r.cpu().clone().unwrap_or_default();
        if let Some(v) = a.cpu_shares {
            cpu.set_shares(Some(v));
        }
        if let Some(v) = a.cpu_quota {
            cpu.set_quota(Some(v));
        }
        if let Some(v) = a.cpu_period {
            cpu.set_period(Some(v));
        }
        if let Some(v) = &a.cpuset_cpus {
            cpu.set_cpus(Some(v.clone()));
        }
        if let Some(v) = &a.cpuset_mems {
            cpu.set_mems(Some(v.clone()));
        }
        r.set_cpu(Some(cpu));
    }
    if let Some(v) = a.pids_limit {
        let mut p = oci_spec::runtime::LinuxPids::default();
        p.set_limit(v);
        r.set_pids(Some(p));
    }
    if let Some(v) = a.blkio_weight {
        let mut b = r.block_io().clone().unwrap_or_default();
        b.set_weight(Some(v));
        r.set_block_io(Some(b));
    }
    Ok(r)
}

pub fn run(g: &Global, a: Args) -> Result<i32> {
    let r = resources(&a)?;
    update(&g.store(), &a.id, &r)?;
    Ok(0)
}
