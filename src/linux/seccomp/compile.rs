//! From linux.seccomp to a BPF program.
//!
//! Layout: check the architecture (an architecture the profile does not list gets
//! KILL_THREAD, as with libseccomp's default bad-arch action); per architecture, load the
//! syscall number and find it by binary search (a tree of `jge`), then try that syscall's
//! rules; anything unmatched gets the default action. On x86_64 an x32 call (number with
//! bit 30 set) is a bad-arch call unless the profile lists x32.
//!
//! Overlapping rules resolve as libseccomp resolves them: rules with argument conditions are
//! tried first, in profile order, the first that matches decides; then the syscall's rule
//! without conditions; then the default action. Rules whose action is the default action
//! are dropped (libseccomp refuses them). Several conditions on different arguments must all
//! hold; several conditions on the same argument become separate rules (runc's reading).
use super::bpf::{self, Asm, Label};
use anyhow::{bail, Result};
use oci_spec::runtime::{Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompOperator};
use std::collections::BTreeMap;
use std::str::FromStr;

pub const RET_KILL_THREAD: u32 = 0x0000_0000;
const X32_BIT: i64 = 0x4000_0000;

/// One alternative: all conditions must hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    pub conds: Vec<(u32, LinuxSeccompOperator, u64, u64)>,
    pub ret: u32,
}

pub fn action(a: LinuxSeccompAction, errno: Option<u32>) -> Result<u32> {
    use LinuxSeccompAction::*;
    Ok(match a {
        ScmpActKill | ScmpActKillThread => RET_KILL_THREAD,
        ScmpActKillProcess => 0x8000_0000,
        ScmpActTrap => 0x0003_0000,
        ScmpActErrno => 0x0005_0000 | (errno.unwrap_or(libc::EPERM as u32) & 0xffff),
        ScmpActTrace => 0x7ff0_0000 | (errno.unwrap_or(libc::EPERM as u32) & 0xffff),
        ScmpActLog => 0x7ffc_0000,
        ScmpActAllow => 0x7fff_0000,
        ScmpActNotify => {
            bail!("seccomp action SCMP_ACT_NOTIFY is not supported by this version of coop")
        }
    })
}

/// The syscall number of `name` on `arch`, or None where the architecture has no such call.
fn number(arch: Arch, name: &str) -> Option<i64> {
    match arch {
        Arch::ScmpArchX86_64 => syscalls::x86_64::Sysno::from_str(name)
            .ok()
            .map(|s| s.id() as i64),
        // x32 shares x86_64's numbers with bit 30 set (the x32-only entries above 511 are
        // the compat variants of a few calls, not in the syscalls table).
        Arch::ScmpArchX32 => syscalls::x86_64::Sysno::from_str(name)
            .ok()
            .map(|s| s.id() as i64 | X32_BIT),
        Arch::ScmpArchX86 => syscalls::x86::Sysno::from_str(name)
            .ok()
            .map(|s| s.id() as i64),
        Arch::ScmpArchAarch64 => syscalls::aarch64::Sysno::from_str(name)
            .ok()
            .map(|s| s.id() as i64),
        _ => None,
    }
}

fn native() -> Arch {
    if cfg!(target_arch = "aarch64") {
        Arch::ScmpArchAarch64
    } else {
        Arch::ScmpArchX86_64
    }
}

/// Architectures compiled into the filter: the listed ones this build knows, the native
/// one always.
fn arches(s: &LinuxSeccomp) -> Result<Vec<Arch>> {
    let mut out = vec![native()];
    for a in s.architectures().iter().flatten() {
        let a = if *a == Arch::ScmpArchNative {
            native()
        } else {
            *a
        };
        match a {
            Arch::ScmpArchX86_64
            | Arch::ScmpArchX86
            | Arch::ScmpArchX32
            | Arch::ScmpArchAarch64 => {}
            // Architectures this host can never run are harmless to leave out.
            other if is_foreign(other) => continue,
            other => bail!("seccomp architecture {other:?} is not supported"),
        }
        if !out.contains(&a) {
            out.push(a);
        }
    }
    Ok(out)
}

fn is_foreign(a: Arch) -> bool {
    let x86 = cfg!(target_arch = "x86_64");
    match a {
        Arch::ScmpArchX86 | Arch::ScmpArchX86_64 | Arch::ScmpArchX32 => !x86,
        Arch::ScmpArchAarch64 | Arch::ScmpArchArm => x86,
        _ => true,
    }
}

/// Rules per architecture and syscall number.
pub fn rules(s: &LinuxSeccomp) -> Result<(u32, Vec<(Arch, BTreeMap<i64, Vec<Rule>>)>)> {
    let default = action(s.default_action(), s.default_errno_ret())?;
    let mut out = vec![];
    for arch in arches(s)? {
        let mut table: BTreeMap<i64, (Vec<Rule>, Option<Rule>)> = BTreeMap::new();
        for call in s.syscalls().iter().flatten() {
            let ret = action(call.action(), call.errno_ret())?;
            if ret == default {
                continue;
            }
            let args = call.args().clone().unwrap_or_default();
            for a in &args {
                if a.index() > 5 {
                    bail!(
                        "seccomp rule for {:?}: argument index {} is out of range (0-5)",
                        call.names(),
                        a.index()
                    );
                }
            }
            let cond = |a: &oci_spec::runtime::LinuxSeccompArg| {
                (
                    a.index() as u32,
                    a.op(),
                    a.value(),
                    a.value_two().unwrap_or(0),
                )
            };
            let mut idx: Vec<usize> = args.iter().map(|a| a.index()).collect();
            idx.sort_unstable();
            idx.dedup();
            let alternatives: Vec<Rule> = if args.is_empty() {
                vec![Rule { conds: vec![], ret }]
            } else if idx.len() == args.len() {
                vec![Rule {
                    conds: args.iter().map(cond).collect(),
                    ret,
                }]
            } else {
                args.iter()
                    .map(|a| Rule {
                        conds: vec![cond(a)],
                        ret,
                    })
                    .collect()
            };
            for name in call.names() {
                let Some(nr) = number(arch, name) else {
                    continue;
                };
                let e = table.entry(nr).or_default();
                for r in &alternatives {
                    if r.conds.is_empty() {
                        e.1.get_or_insert(r.clone());
                    } else {
                        e.0.push(r.clone());
                    }
                }
            }
        }
        let table = table
            .into_iter()
            .map(|(nr, (mut conditional, plain))| {
                conditional.extend(plain);
                (nr, conditional)
            })
            .collect();
        out.push((arch, table));
    }
    Ok((default, out))
}

pub fn compile(s: &LinuxSeccomp) -> Result<Vec<libc::sock_filter>> {
    let (default, per_arch) = rules(s)?;
    let mut asm = Asm::default();
    let has_x32 = per_arch.iter().any(|(a, _)| *a == Arch::ScmpArchX32);
    let bad_arch = asm.label();
    let def = asm.label();
    let sections: Vec<(Arch, Label)> = per_arch.iter().map(|(a, _)| (*a, asm.label())).collect();
    asm.load(bpf::OFF_ARCH);
    for (arch, l) in &sections {
        // x32 shares AUDIT_ARCH_X86_64; its section is reached from x86_64's.
        if *arch != Arch::ScmpArchX32 {
            asm.goto_if(bpf::JEQ_K, *arch as u32, *l);
        }
    }
    asm.goto(bad_arch);
    for ((arch, table), (_, l)) in per_arch.iter().zip(&sections) {
        asm.mark(*l);
        asm.load(bpf::OFF_NR);
        if *arch == Arch::ScmpArchX86_64 {
            if has_x32 {
                let x32 = sections
                    .iter()
                    .find(|(a, _)| *a == Arch::ScmpArchX32)
                    .unwrap()
                    .1;
                asm.goto_if(bpf::JGE_K, X32_BIT as u32, x32);
            } else {
                asm.goto_if(bpf::JGE_K, X32_BIT as u32, bad_arch);
            }
        }
        dispatch(&mut asm, table, def);
    }
    asm.mark(bad_arch);
    asm.ret(RET_KILL_THREAD);
    asm.mark(def);
    asm.ret(default);
    let prog = asm.finish();
    if prog.len() > 4096 {
        bail!(
            "seccomp profile compiles to {} instructions, over the kernel's limit of 4096",
            prog.len()
        );
    }
    Ok(prog)
}

/// Dispatch on the syscall number (in A). The number line is cut into intervals of equal
/// treatment (a run of neighbouring syscalls with the same rules, or a gap that gets the
/// default action); a binary search over the interval starts jumps to one shared block per
/// distinct rule set. Profiles allow long runs of syscalls alike, so this stays compact:
/// podman's profile is a few hundred instructions per architecture.
fn dispatch(asm: &mut Asm, table: &BTreeMap<i64, Vec<Rule>>, def: Label) {
    let mut sets: Vec<&Vec<Rule>> = vec![];
    let mut intervals: Vec<(u32, Option<usize>)> = vec![];
    let mut next: i64 = 0;
    for (nr, rules) in table {
        let id = match sets.iter().position(|s| *s == rules) {
            Some(i) => i,
            None => {
                sets.push(rules);
                sets.len() - 1
            }
        };
        if *nr > next {
            intervals.push((next as u32, None));
        }
        match intervals.last() {
            Some((_, Some(last))) if *last == id && *nr == next => {}
            _ => intervals.push((*nr as u32, Some(id))),
        }
        next = nr + 1;
    }
    intervals.push((next as u32, None));
    let blocks: Vec<Label> = sets.iter().map(|_| asm.label()).collect();
    tree(asm, &intervals, &blocks, def);
    for (set, l) in sets.iter().zip(&blocks) {
        asm.mark(*l);
        emit_rules(asm, set, def);
    }
}

fn tree(asm: &mut Asm, iv: &[(u32, Option<usize>)], blocks: &[Label], def: Label) {
    if iv.len() == 1 {
        asm.goto(iv[0].1.map_or(def, |i| blocks[i]));
        return;
    }
    let mid = iv.len() / 2;
    let upper = asm.label();
    asm.goto_if(bpf::JGE_K, iv[mid].0, upper);
    tree(asm, &iv[..mid], blocks, def);
    asm.mark(upper);
    tree(asm, &iv[mid..], blocks, def);
}

/// A syscall's rules; the accumulator is clobbered, so nothing after may rely on it.
fn emit_rules(asm: &mut Asm, rules: &[Rule], def: Label) {
    for r in rules {
        if r.conds.is_empty() {
            // Unconditional: nothing after it can be reached.
            asm.ret(r.ret);
            return;
        }
        let fail = asm.label();
        for &(i, op, v, v2) in &r.conds {
            emit_cond(asm, i, op, v, v2, fail);
        }
        asm.ret(r.ret);
        asm.mark(fail);
    }
    asm.goto(def);
}

/// Fall through when argument `i` satisfies `op`; else jump to `fail`. 64-bit values are
/// compared as (high word, low word), unsigned, as libseccomp does.
fn emit_cond(asm: &mut Asm, i: u32, op: LinuxSeccompOperator, v: u64, v2: u64, fail: Label) {
    use LinuxSeccompOperator::*;
    let (hi, lo) = ((v >> 32) as u32, v as u32);
    let pass = asm.label();
    match op {
        ScmpCmpEq => {
            asm.load(bpf::off_arg_hi(i));
            asm.goto_unless(bpf::JEQ_K, hi, fail);
            asm.load(bpf::off_arg_lo(i));
            asm.goto_unless(bpf::JEQ_K, lo, fail);
        }
        ScmpCmpNe => {
            asm.load(bpf::off_arg_hi(i));
            asm.goto_unless(bpf::JEQ_K, hi, pass);
            asm.load(bpf::off_arg_lo(i));
            asm.goto_if(bpf::JEQ_K, lo, fail);
        }
        ScmpCmpMaskedEq => {
            // value is the mask, valueTwo the expected result (runtime-spec).
            let (mh, ml, eh, el) = ((v >> 32) as u32, v as u32, (v2 >> 32) as u32, v2 as u32);
            asm.load(bpf::off_arg_hi(i));
            asm.and(mh);
            asm.goto_unless(bpf::JEQ_K, eh, fail);
            asm.load(bpf::off_arg_lo(i));
            asm.and(ml);
            asm.goto_unless(bpf::JEQ_K, el, fail);
        }
        ScmpCmpGt | ScmpCmpGe => {
            asm.load(bpf::off_arg_hi(i));
            asm.goto_if(bpf::JGT_K, hi, pass);
            asm.goto_unless(bpf::JEQ_K, hi, fail);
            asm.load(bpf::off_arg_lo(i));
            let jop = if op == ScmpCmpGt {
                bpf::JGT_K
            } else {
                bpf::JGE_K
            };
            asm.goto_unless(jop, lo, fail);
        }
        ScmpCmpLt | ScmpCmpLe => {
            asm.load(bpf::off_arg_hi(i));
            asm.goto_unless(bpf::JGE_K, hi, pass); // hi < vh
            asm.goto_unless(bpf::JEQ_K, hi, fail); // hi > vh
            asm.load(bpf::off_arg_lo(i));
            // Lt: fail when lo >= vl; Le: fail when lo > vl.
            let jop = if op == ScmpCmpLt {
                bpf::JGE_K
            } else {
                bpf::JGT_K
            };
            asm.goto_if(jop, lo, fail);
        }
    }
    asm.mark(pass);
}
