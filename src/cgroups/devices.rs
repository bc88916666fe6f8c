//! cgroup v2 device rules: an eBPF program of type BPF_PROG_TYPE_CGROUP_DEVICE generated from
//! linux.resources.devices, attached to the container's cgroup (and replacing the program an
//! earlier create or update attached).
//!
//! Semantics as on cgroup v1: rules apply in order and the last one that matches decides; no
//! matching rule denies. An allow rule matches when the access asked for is within the rule's
//! access; a deny rule when any of the access asked for is in it. Kernels since 5.11 account
//! BPF memory to the cgroup, so no RLIMIT_MEMLOCK is needed (raised only as a best effort).
use anyhow::{Context, Result};
use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

/// One eBPF instruction.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Insn {
    pub code: u8,
    pub regs: u8, // dst in the low nibble, src in the high one
    pub off: i16,
    pub imm: i32,
}

const LDX_W: u8 = 0x61; // BPF_LDX | BPF_MEM | BPF_W
const AND32_K: u8 = 0x54;
const RSH32_K: u8 = 0x74;
const MOV64_K: u8 = 0xb7;
const MOV64_X: u8 = 0xbf;
const JNE_K: u8 = 0x55;
const JEQ_K: u8 = 0x15;
const EXIT: u8 = 0x95;

fn i(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        regs: dst | (src << 4),
        off,
        imm,
    }
}

const ACC_MKNOD: i32 = 1;
const ACC_READ: i32 = 2;
const ACC_WRITE: i32 = 4;

fn access_mask(a: &str) -> i32 {
    a.chars().fold(0, |m, c| {
        m | match c {
            'm' => ACC_MKNOD,
            'r' => ACC_READ,
            'w' => ACC_WRITE,
            _ => 0,
        }
    })
}

/// The program for `rules`.
pub fn program(rules: &[LinuxDeviceCgroup]) -> Vec<Insn> {
    // r1: struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; }
    let mut p = vec![
        i(LDX_W, 2, 1, 0, 0), // r2 = access_type
        i(MOV64_X, 3, 2, 0, 0),
        i(AND32_K, 3, 0, 0, 0xffff), // r3 = device type (1 block, 2 char)
        i(MOV64_X, 4, 2, 0, 0),
        i(RSH32_K, 4, 0, 0, 16), // r4 = access asked for
        i(LDX_W, 5, 1, 4, 0),    // r5 = major
        i(LDX_W, 6, 1, 8, 0),    // r6 = minor
    ];
    // Last match wins: test the rules from the last one back.
    for r in rules.iter().rev() {
        let mut block: Vec<Insn> = vec![];
        let mut to_next: Vec<usize> = vec![];
        let ty = match r.typ().unwrap_or(LinuxDeviceType::A) {
            LinuxDeviceType::B => Some(1),
            LinuxDeviceType::C | LinuxDeviceType::U => Some(2),
            LinuxDeviceType::P => continue, // not a device to the kernel's filter
            LinuxDeviceType::A => None,
        };
        if let Some(t) = ty {
            to_next.push(block.len());
            block.push(i(JNE_K, 3, 0, 0, t));
        }
        let mask = access_mask(r.access().as_deref().unwrap_or("rwm"));
        if mask != ACC_MKNOD | ACC_READ | ACC_WRITE {
            block.push(i(MOV64_X, 7, 4, 0, 0));
            if r.allow() {
                // allow: nothing asked for outside the rule
                block.push(i(AND32_K, 7, 0, 0, !mask & 7));
                to_next.push(block.len());
                block.push(i(JNE_K, 7, 0, 0, 0));
            } else {
                // deny: something asked for inside the rule
                block.push(i(AND32_K, 7, 0, 0, mask));
                to_next.push(block.len());
                block.push(i(JEQ_K, 7, 0, 0, 0));
            }
        }
        for (reg, v) in [(5u8, r.major()), (6u8, r.minor())] {
            if let Some(v) = v.filter(|v| *v >= 0) {
                to_next.push(block.len());
                block.push(i(JNE_K, reg, 0, 0, v as i32));
            }
        }
        block.push(i(MOV64_K, 0, 0, 0, r.allow() as i32));
        block.push(i(EXIT, 0, 0, 0, 0));
        let unconditional = to_next.is_empty();
        let end = block.len();
        for j in to_next {
            block[j].off = (end - j - 1) as i16;
        }
        p.extend(block);
        if unconditional {
            // Matches everything: nothing after it is reachable (the verifier refuses
            // unreachable instructions).
            return p;
        }
    }
    p.push(i(MOV64_K, 0, 0, 0, 0));
    p.push(i(EXIT, 0, 0, 0, 0));
    p
}

/// Evaluate `p` for a device access (for tests): 1 allows, 0 denies.
pub fn eval(p: &[Insn], dev_type: u32, access: u32, major: u32, minor: u32) -> u64 {
    let ctx = [dev_type | (access << 16), major, minor];
    let mut r = [0u64; 11];
    let mut pc = 0usize;
    loop {
        let x = p[pc];
        let (d, s) = ((x.regs & 0xf) as usize, (x.regs >> 4) as usize);
        pc += 1;
        match x.code {
            LDX_W => r[d] = ctx[(x.off / 4) as usize] as u64,
            MOV64_X => r[d] = r[s],
            MOV64_K => r[d] = x.imm as i64 as u64,
            AND32_K => r[d] = (r[d] as u32 & x.imm as u32) as u64,
            RSH32_K => r[d] = ((r[d] as u32) >> x.imm) as u64,
            JNE_K if r[d] != x.imm as i64 as u64 => pc = (pc as i64 + x.off as i64) as usize,
            JEQ_K if r[d] == x.imm as i64 as u64 => pc = (pc as i64 + x.off as i64) as usize,
            JNE_K | JEQ_K => {}
            EXIT => return r[0],
            c => panic!("opcode {c:#x}"),
        }
    }
}

fn bpf(cmd: u32, attr: &mut [u8; 128]) -> std::io::Result<i64> {
    // SAFETY: attr is a zero-padded bpf_attr of the size passed; the kernel reads (and for
    // queries writes) only within it and the buffers it points at, which outlive the call.
    let r = unsafe { libc::syscall(libc::SYS_bpf, cmd, attr.as_mut_ptr(), attr.len()) };
    if r < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(r)
}

fn put32(a: &mut [u8; 128], off: usize, v: u32) {
    a[off..off + 4].copy_from_slice(&v.to_ne_bytes());
}
fn put64(a: &mut [u8; 128], off: usize, v: u64) {
    a[off..off + 8].copy_from_slice(&v.to_ne_bytes());
}

const BPF_PROG_LOAD: u32 = 5;
const BPF_PROG_ATTACH: u32 = 8;
const BPF_PROG_DETACH: u32 = 9;
const BPF_PROG_GET_FD_BY_ID: u32 = 13;
const BPF_PROG_QUERY: u32 = 16;
const PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const ATTACH_CGROUP_DEVICE: u32 = 6;
const F_ALLOW_MULTI: u32 = 2;

/// Load the program for `rules` and make it the only device filter of the cgroup at `dir`.
pub fn apply(dir: &Path, rules: &[LinuxDeviceCgroup]) -> Result<()> {
    let prog = program(rules);
    let license = c"Apache-2.0";
    let mut a = [0u8; 128];
    put32(&mut a, 0, PROG_TYPE_CGROUP_DEVICE);
    put32(&mut a, 4, prog.len() as u32);
    put64(&mut a, 8, prog.as_ptr() as u64);
    put64(&mut a, 16, license.as_ptr() as u64);
    let mut log = vec![0u8; 64 * 1024];
    let fd = match bpf(BPF_PROG_LOAD, &mut a) {
        Ok(fd) => fd,
        Err(e) => {
            // Load again with the verifier's log, to say why.
            put32(&mut a, 24, 1);
            put32(&mut a, 28, log.len() as u32);
            put64(&mut a, 32, log.as_mut_ptr() as u64);
            let _ = bpf(BPF_PROG_LOAD, &mut a);
            let text = String::from_utf8_lossy(&log);
            let text = text.trim_end_matches('\0').trim();
            return Err(e)
                .with_context(|| format!("load the eBPF device filter (verifier: {text})"));
        }
    };
    // SAFETY: BPF_PROG_LOAD returned a new fd owned only here.
    let prog_fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    let cg: OwnedFd = std::fs::File::open(dir)
        .with_context(|| format!("open cgroup {}", dir.display()))?
        .into();
    let old = attached(&cg).unwrap_or_default();
    let mut a = [0u8; 128];
    put32(&mut a, 0, cg.as_raw_fd() as u32);
    put32(&mut a, 4, prog_fd.as_raw_fd() as u32);
    put32(&mut a, 8, ATTACH_CGROUP_DEVICE);
    put32(&mut a, 12, F_ALLOW_MULTI);
    bpf(BPF_PROG_ATTACH, &mut a)
        .with_context(|| format!("attach the device filter to {}", dir.display()))?;
    // The new filter is in; the ones it replaces go.
    for id in old {
        let mut a = [0u8; 128];
        put32(&mut a, 0, id);
        let Ok(fd) = bpf(BPF_PROG_GET_FD_BY_ID, &mut a) else {
            continue;
        };
        // SAFETY: a new fd owned only here.
        let old_fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
        let mut a = [0u8; 128];
        put32(&mut a, 0, cg.as_raw_fd() as u32);
        put32(&mut a, 4, old_fd.as_raw_fd() as u32);
        put32(&mut a, 8, ATTACH_CGROUP_DEVICE);
        let _ = bpf(BPF_PROG_DETACH, &mut a);
    }
    Ok(())
}

/// Ids of the device programs attached to the cgroup itself.
fn attached(cg: &OwnedFd) -> Result<Vec<u32>> {
    let mut ids = [0u32; 64];
    let mut a = [0u8; 128];
    put32(&mut a, 0, cg.as_raw_fd() as u32);
    put32(&mut a, 4, ATTACH_CGROUP_DEVICE);
    put64(&mut a, 16, ids.as_mut_ptr() as u64);
    put32(&mut a, 24, ids.len() as u32);
    bpf(BPF_PROG_QUERY, &mut a).context("query device filters")?;
    let n = u32::from_ne_bytes(a[24..28].try_into().unwrap()) as usize;
    Ok(ids[..n.min(ids.len())].to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(json: &str) -> Vec<LinuxDeviceCgroup> {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn last_match_wins_and_default_denies() {
        let p = program(&rules(
            r#"[{"allow":false,"access":"rwm"},
            {"allow":true,"type":"c","major":1,"minor":3,"access":"rwm"},
            {"allow":true,"type":"c","major":136,"access":"rw"},
            {"allow":false,"type":"c","major":1,"minor":3,"access":"w"}]"#,
        ));
        let (r, w, m) = (2, 4, 1);
        assert_eq!(eval(&p, 2, r, 1, 3), 1); // read /dev/null
        assert_eq!(eval(&p, 2, r | w, 1, 3), 0); // ... but not write: the last rule denies
        assert_eq!(eval(&p, 2, r | w, 136, 7), 1); // any pts
        assert_eq!(eval(&p, 2, m, 136, 7), 0); // mknod not in "rw"
        assert_eq!(eval(&p, 1, r, 8, 0), 0); // a block device: denied by default
        assert_eq!(eval(&p, 2, r, 1, 5), 0); // zero: not allowed
        let all = program(&rules(r#"[{"allow":true,"access":"rwm"}]"#));
        assert_eq!(eval(&all, 1, r | w | m, 8, 0), 1);
        assert_eq!(eval(&program(&[]), 2, r, 1, 3), 0);
    }
}
