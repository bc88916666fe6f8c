//! Code generation: from per-architecture rule sets to a BPF program.
//!
//! The program is emitted backwards (last instruction first), so that every
//! jump target already exists when a jump to it is emitted and its offset is
//! known. A conditional jump whose target is further than the 255
//! instructions `jt`/`jf` can express goes through a `BPF_JA` (32-bit
//! offset) placed right after it. Return instructions are shared while they
//! are in reach of a short jump and duplicated otherwise (a copy costs one
//! instruction, like the long jump it replaces).
//!
//! Layout:
//! ```text
//!   ld  arch
//!   jeq AUDIT_ARCH_A, section_A     ; one per architecture section
//!   ...
//!   ret bad_arch
//! section:
//!   ld  nr
//!   [x86_64 without x32: jge 0x40000000 -> (jeq -1 ? tree : bad_arch)]
//!   binary search tree of jge over the syscall-number intervals that share
//!   a verdict; each leaf is a ret, or the argument checks of one syscall
//!   (rules tried in order, first match wins, else the default action).
//! ```

use std::collections::{BTreeMap, HashMap};

use anyhow::{bail, Result};
use libc::sock_filter;

use super::bpf::{self, BPF_JA, BPF_JEQ, BPF_JGE, BPF_JGT, BPF_JMP, BPF_K, BPF_MAXINSNS};
use super::rules::{Cond, Op, Rule, SyscallRules};

/// The syscalls of one `seccomp_data.arch` value.
#[derive(Debug, Clone)]
pub(crate) struct Section {
    /// Value of `seccomp_data.arch` this section handles.
    pub audit_arch: u32,
    /// Kill (bad-arch action) x32 syscalls (`nr >= 0x40000000`, except the
    /// `-1` that tracers use to skip a syscall): x86_64 without x32.
    pub reject_x32: bool,
    /// Rules by syscall number, and whether the ABI's arguments are 64 bits
    /// wide (else only the low words are compared, with 32-bit values; x86_64
    /// and x32 share a section but not the width).
    pub syscalls: BTreeMap<u32, (SyscallRules, bool)>,
}

/// Everything the code generator needs.
#[derive(Debug, Clone)]
pub(crate) struct Program {
    pub default_action: u32,
    pub bad_arch_action: u32,
    pub sections: Vec<Section>,
}

/// Where a jump goes: an emitted instruction, or "return this action".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Target {
    /// Index in the reversed instruction vector.
    At(usize),
    Ret(u32),
}

struct Emitter {
    /// Instructions, last one first.
    rev: Vec<sock_filter>,
    /// Position of the most recent `ret` of each action.
    rets: HashMap<u32, usize>,
}

impl Emitter {
    /// Offset a jump placed at the next free position needs to reach `at`.
    fn distance(&self, at: usize) -> usize {
        self.rev.len() - at - 1
    }

    fn push(&mut self, ins: sock_filter) -> usize {
        self.rev.push(ins);
        self.rev.len() - 1
    }

    /// The position of a `ret action` in reach of the next instruction.
    fn ret(&mut self, action: u32) -> usize {
        match self.rets.get(&action) {
            Some(&at) if self.distance(at) <= u8::MAX as usize => at,
            _ => {
                let at = self.push(bpf::ret(action));
                self.rets.insert(action, at);
                at
            }
        }
    }

    fn resolve(&mut self, t: Target) -> usize {
        match t {
            Target::At(at) => at,
            Target::Ret(action) => self.ret(action),
        }
    }

    /// Makes `at` reachable with an 8-bit offset from the next instruction.
    fn near(&mut self, at: usize) -> usize {
        if self.distance(at) <= u8::MAX as usize {
            return at;
        }
        if let Some((&action, _)) = self.rets.iter().find(|(_, &p)| p == at) {
            // A copy of the return is as short as a long jump to it.
            let copy = self.push(self.rev[at]);
            self.rets.insert(action, copy);
            return copy;
        }
        let k = self.distance(at) as u32;
        self.push(bpf::stmt(BPF_JMP | BPF_JA, k))
    }

    /// Emits `if (A op k) goto t else goto f`.
    fn jump(&mut self, op: u16, k: u32, t: Target, f: Target) -> Target {
        let t = self.resolve(t);
        let f = self.resolve(f);
        let t = self.near(t);
        let f = self.near(f);
        // The long jump for `f` may have pushed `t` out of reach again.
        let t = self.near(t);
        let jt = self.distance(t) as u8;
        let jf = self.distance(f) as u8;
        Target::At(self.push(bpf::jump(BPF_JMP | op | BPF_K, k, jt, jf)))
    }

    /// Makes control flow from the next pushed statement continue at `t`.
    fn fall_into(&mut self, t: Target) {
        let at = self.resolve(t);
        if self.distance(at) != 0 {
            let k = self.distance(at) as u32;
            match self.rev[at] {
                ins if ins.code == bpf::BPF_RET | BPF_K => self.push(ins),
                _ => self.push(bpf::stmt(BPF_JMP | BPF_JA, k)),
            };
        }
    }

    /// Emits `A = word; [A &= mask]` in front of the jump at `t`.
    fn load(&mut self, off: u32, mask: u32, then: Target) -> Target {
        self.fall_into(then);
        if mask != u32::MAX {
            self.push(bpf::stmt(bpf::BPF_ALU | bpf::BPF_AND | BPF_K, mask));
        }
        Target::At(self.push(bpf::load(off)))
    }
}

/// Generates the program.
pub(crate) fn generate(p: &Program) -> Result<Vec<sock_filter>> {
    let mut e = Emitter {
        rev: Vec::with_capacity(512),
        rets: HashMap::new(),
    };
    e.ret(p.bad_arch_action);
    let mut entries = Vec::with_capacity(p.sections.len());
    for s in p.sections.iter().rev() {
        entries.push((s.audit_arch, section(&mut e, s, p)));
    }
    let mut next = Target::Ret(p.bad_arch_action);
    for (audit_arch, entry) in entries {
        next = e.jump(BPF_JEQ, audit_arch, entry, next);
    }
    e.load(bpf::OFF_ARCH, u32::MAX, next);
    if e.rev.len() > BPF_MAXINSNS {
        bail!(
            "the filter needs {} BPF instructions, more than the kernel's limit of {}",
            e.rev.len(),
            BPF_MAXINSNS
        );
    }
    e.rev.reverse();
    Ok(e.rev)
}

/// A run of syscall numbers `[start, next start)` with one verdict.
#[derive(Clone, Copy)]
struct Interval {
    start: u32,
    target: Target,
}

fn section(e: &mut Emitter, s: &Section, p: &Program) -> Target {
    let default = Target::Ret(p.default_action);
    // Argument checks first: the search tree's leaves jump to them.
    let mut intervals: Vec<Interval> = Vec::with_capacity(s.syscalls.len() * 2 + 1);
    let push = |iv: &mut Vec<Interval>, start: u32, target: Target| match iv.last() {
        Some(last) if last.target == target => {}
        _ => iv.push(Interval { start, target }),
    };
    push(&mut intervals, 0, default);
    let mut bodies: Vec<(u32, Target)> = Vec::new();
    for (&nr, (rules, wide)) in s.syscalls.iter().rev() {
        if let SyscallRules::Conditional(rules) = rules {
            bodies.push((nr, rule_chain(e, rules, default, *wide)));
        }
    }
    for (&nr, (rules, _)) in &s.syscalls {
        let target = match rules {
            SyscallRules::Always(action) => Target::Ret(*action),
            SyscallRules::Conditional(_) => {
                let i = bodies.iter().position(|(n, _)| *n == nr).unwrap_or(0);
                bodies[i].1
            }
        };
        push(&mut intervals, nr, target);
        if nr != u32::MAX {
            push(&mut intervals, nr + 1, default);
        }
    }
    let tree = search_tree(e, &intervals);
    let entry = if s.reject_x32 {
        let bad = Target::Ret(p.bad_arch_action);
        let minus_one = e.jump(BPF_JEQ, u32::MAX, tree, bad);
        e.jump(BPF_JGE, super::arch::X32_SYSCALL_BIT, minus_one, tree)
    } else {
        tree
    };
    if intervals.len() == 1 && !s.reject_x32 {
        // One verdict for every syscall: no need to look at the number.
        return entry;
    }
    e.load(bpf::OFF_NR, u32::MAX, entry)
}

/// A binary search over interval starts (`A` holds the syscall number).
fn search_tree(e: &mut Emitter, iv: &[Interval]) -> Target {
    if iv.len() == 1 {
        return iv[0].target;
    }
    let mid = iv.len() / 2;
    let right = search_tree(e, &iv[mid..]);
    let left = search_tree(e, &iv[..mid]);
    e.jump(BPF_JGE, iv[mid].start, right, left)
}

/// The checks of a syscall's conditional rules: first match wins, no match
/// gives `otherwise`.
fn rule_chain(e: &mut Emitter, rules: &[Rule], otherwise: Target, wide: bool) -> Target {
    let mut next = otherwise;
    for rule in rules.iter().rev() {
        let mut on_match = Target::Ret(rule.action);
        for c in rule.conds.iter().rev() {
            on_match = cond(e, c, on_match, next, wide);
        }
        next = on_match;
    }
    next
}

/// Emits one argument comparison: goes to `t` when it holds, else to `f`.
///
/// 64-bit values are compared on the two 32-bit halves of the argument,
/// high word first, all comparisons unsigned (as libseccomp does).
fn cond(e: &mut Emitter, c: &Cond, t: Target, f: Target, wide: bool) -> Target {
    let arg = u32::from(c.arg);
    let (lo_off, hi_off) = (bpf::arg_lo(arg), bpf::arg_hi(arg));
    let (vhi, vlo) = ((c.value >> 32) as u32, c.value as u32);
    let (mhi, mlo) = ((c.mask >> 32) as u32, c.mask as u32);
    if !wide {
        // 32-bit ABI: only the low word exists (values were truncated).
        let j = match c.op {
            Op::Eq | Op::MaskedEq => e.jump(BPF_JEQ, vlo, t, f),
            Op::Ne => e.jump(BPF_JEQ, vlo, f, t),
            Op::Gt => e.jump(BPF_JGT, vlo, t, f),
            Op::Ge => e.jump(BPF_JGE, vlo, t, f),
            Op::Lt => e.jump(BPF_JGE, vlo, f, t),
            Op::Le => e.jump(BPF_JGT, vlo, f, t),
        };
        return e.load(lo_off, mlo, j);
    }
    match c.op {
        Op::Eq | Op::MaskedEq | Op::Ne => {
            let (t, f) = if c.op == Op::Ne { (f, t) } else { (t, f) };
            let lo = if mlo == 0 {
                t // (x & 0) == 0 always holds
            } else {
                let j = e.jump(BPF_JEQ, vlo, t, f);
                e.load(lo_off, mlo, j)
            };
            if mhi == 0 {
                return lo;
            }
            let j = e.jump(BPF_JEQ, vhi, lo, f);
            e.load(hi_off, mhi, j)
        }
        Op::Gt | Op::Ge | Op::Lt | Op::Le => {
            // "greater" means: high word greater, or high word equal and
            // low word greater (or equal, for GE/LT).
            let (gt, le) = match c.op {
                Op::Gt | Op::Ge => (t, f),
                _ => (f, t),
            };
            let lo_op = match c.op {
                Op::Gt | Op::Le => BPF_JGT,
                _ => BPF_JGE,
            };
            let j = e.jump(lo_op, vlo, gt, le);
            let lo = e.load(lo_off, u32::MAX, j);
            let eq = e.jump(BPF_JEQ, vhi, lo, le);
            let j = e.jump(BPF_JGT, vhi, gt, eq);
            e.load(hi_off, u32::MAX, j)
        }
    }
}
