//! The rules of one syscall on one architecture, merged the way libseccomp
//! (and so runc) merges them.
//!
//! What libseccomp 2.5 does when several rules name the same syscall
//! (observed behaviour, checked against libseccomp by the differential
//! tests in `tests.rs`; see `src/db.c` of libseccomp, `db_rule_add()`):
//!
//! * A rule without argument conditions makes every other rule of the
//!   syscall irrelevant: the *first* unconditional rule wins, whatever its
//!   action; conditional rules added before it are dropped, rules added
//!   after it are ignored. There is no action precedence between rules of
//!   one filter (the kernel's KILL_PROCESS > KILL_THREAD > TRAP > ERRNO >
//!   USER_NOTIF > TRACE > LOG > ALLOW order only applies between separate
//!   filters stacked on a task).
//! * A rule with the default action is rejected by libseccomp (`-EACCES`);
//!   runc skips such rules before adding them, so does coop.
//! * Conditional rules are merged into a decision tree in which the
//!   comparisons of one level are sorted: higher argument index first; for
//!   one argument `==`, `!=` and masked `==` before `<`, `<=`, before `>`,
//!   `>=`; then larger values first (smaller first for `<`, `<=`). A rule
//!   whose conditions are a prefix of another's is tried before it. Rules
//!   that compare the same way keep the order they were added in. The first
//!   rule that matches gives the verdict, no match gives the default action.
//! * Two rules with the same conditions but different actions, or a rule
//!   that shortens an earlier rule with a different action, make libseccomp
//!   fail with `-EEXIST` (runc then fails): coop reports an error.
//! * A rule that extends an earlier rule (its conditions start with all of
//!   the earlier rule's) can never match first and is dropped.

use std::cmp::Ordering;

use anyhow::{bail, Result};

/// A comparison operator, as in `LinuxSeccompOperator`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Op {
    Ne,
    Lt,
    Le,
    Eq,
    Ge,
    Gt,
    MaskedEq,
}

/// One argument condition: `(args[arg] & mask) op value`; `mask` is all
/// ones except for `MaskedEq`, and `value` is already masked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Cond {
    pub arg: u8,
    pub op: Op,
    pub value: u64,
    pub mask: u64,
}

impl Cond {
    /// Builds a condition for an ABI with 64-bit (`wide`) or 32-bit
    /// arguments; `None` when it always holds (a zero mask), which
    /// libseccomp drops.
    pub fn new(arg: u8, op: Op, value: u64, value_two: u64, wide: bool) -> Option<Cond> {
        let width = if wide { u64::MAX } else { u64::from(u32::MAX) };
        let (mask, value) = match op {
            Op::MaskedEq => (value & width, value_two & value & width),
            _ => (width, value & width),
        };
        if mask == 0 {
            return None;
        }
        Some(Cond {
            arg,
            op,
            value,
            mask,
        })
    }

    /// Whether the condition holds for an argument value (used by tests).
    #[cfg(test)]
    pub fn holds(&self, v: u64) -> bool {
        let v = v & self.mask;
        match self.op {
            Op::Ne => v != self.value,
            Op::Lt => v < self.value,
            Op::Le => v <= self.value,
            Op::Eq | Op::MaskedEq => v == self.value,
            Op::Ge => v >= self.value,
            Op::Gt => v > self.value,
        }
    }

    /// libseccomp's ordering of comparisons within a tree level: returns
    /// `Greater` when `self` is tried before `other`.
    fn precedence(&self, other: &Cond) -> Ordering {
        let class = |op: Op| match op {
            Op::Eq | Op::Ne | Op::MaskedEq => 3,
            Op::Lt | Op::Le => 2,
            Op::Gt | Op::Ge => 1,
        };
        let value_key = |c: &Cond| match c.op {
            Op::Lt | Op::Le => !c.value,
            _ => c.value,
        };
        self.arg
            .cmp(&other.arg)
            .then(class(self.op).cmp(&class(other.op)))
            .then(value_key(self).cmp(&value_key(other)))
    }
}

/// A conditional rule: all conditions hold (sorted by argument index).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Rule {
    pub conds: Vec<Cond>,
    pub action: u32,
}

/// The merged rules of a syscall.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum SyscallRules {
    /// Unconditional.
    Always(u32),
    /// Tried in order; the first whose conditions hold wins.
    Conditional(Vec<Rule>),
}

impl SyscallRules {
    /// Starts with one rule (conditions in any order).
    pub fn new(mut conds: Vec<Cond>, action: u32) -> SyscallRules {
        if conds.is_empty() {
            return SyscallRules::Always(action);
        }
        conds.sort_by_key(|c| c.arg);
        SyscallRules::Conditional(vec![Rule { conds, action }])
    }

    /// Adds a rule after the existing ones, as libseccomp would.
    pub fn add(&mut self, mut conds: Vec<Cond>, action: u32) -> Result<()> {
        let rules = match self {
            SyscallRules::Always(_) => return Ok(()),
            SyscallRules::Conditional(rules) => rules,
        };
        if conds.is_empty() {
            *self = SyscallRules::Always(action);
            return Ok(());
        }
        conds.sort_by_key(|c| c.arg);
        let mut i = 0;
        while i < rules.len() {
            let old = &rules[i];
            if old.conds.starts_with(&conds) {
                // The new rule is the same as, or shorter than, an old one.
                if old.action != action {
                    bail!("a rule with the same argument conditions but another action exists");
                }
                if old.conds.len() != conds.len() {
                    rules.remove(i);
                    continue;
                }
                return Ok(());
            }
            if conds.starts_with(&old.conds) {
                // An older, shorter rule always matches first.
                return Ok(());
            }
            i += 1;
        }
        let new = Rule { conds, action };
        // Insert after every rule that is tried before or in the same place.
        let pos = rules
            .iter()
            .position(|r| rule_order(&new, r) == Ordering::Greater)
            .unwrap_or(rules.len());
        rules.insert(pos, new);
        Ok(())
    }
}

/// `Greater` when rule `a` is tried before rule `b`.
fn rule_order(a: &Rule, b: &Rule) -> Ordering {
    for (x, y) in a.conds.iter().zip(&b.conds) {
        match x.precedence(y) {
            Ordering::Equal if x == y => continue,
            Ordering::Equal => return Ordering::Equal,
            o => return o,
        }
    }
    // One is a prefix of the other: the shorter one comes first.
    b.conds.len().cmp(&a.conds.len())
}
