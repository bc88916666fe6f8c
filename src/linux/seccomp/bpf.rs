//! Classic BPF instruction encoding for seccomp, and a small interpreter.
//!
//! The interpreter evaluates a seccomp program against a `seccomp_data`
//! record the way the kernel does (for the subset of classic BPF that
//! seccomp filters use). It is used by the tests to check the generated
//! programs, both coop's and the ones libseccomp exports.

use libc::sock_filter;

// Instruction classes and fields (linux/bpf_common.h).
pub const BPF_LD: u16 = 0x00;
pub const BPF_LDX: u16 = 0x01;
pub const BPF_ST: u16 = 0x02;
pub const BPF_STX: u16 = 0x03;
pub const BPF_ALU: u16 = 0x04;
pub const BPF_JMP: u16 = 0x05;
pub const BPF_RET: u16 = 0x06;
pub const BPF_MISC: u16 = 0x07;
pub const BPF_W: u16 = 0x00;
pub const BPF_ABS: u16 = 0x20;
pub const BPF_IMM: u16 = 0x00;
pub const BPF_MEM: u16 = 0x60;
pub const BPF_LEN: u16 = 0x80;
pub const BPF_AND: u16 = 0x50;
pub const BPF_OR: u16 = 0x40;
pub const BPF_ADD: u16 = 0x00;
pub const BPF_SUB: u16 = 0x10;
pub const BPF_RSH: u16 = 0x70;
pub const BPF_LSH: u16 = 0x60;
pub const BPF_JA: u16 = 0x00;
pub const BPF_JEQ: u16 = 0x10;
pub const BPF_JGT: u16 = 0x20;
pub const BPF_JGE: u16 = 0x30;
pub const BPF_JSET: u16 = 0x40;
pub const BPF_K: u16 = 0x00;
pub const BPF_X: u16 = 0x08;
pub const BPF_A: u16 = 0x10;
pub const BPF_TAX: u16 = 0x00;
pub const BPF_TXA: u16 = 0x80;

/// The kernel's limit on the length of a classic BPF program.
pub const BPF_MAXINSNS: usize = 4096;

/// Offsets in `struct seccomp_data` (little-endian layout: the low word of
/// each 64-bit argument comes first).
pub const OFF_NR: u32 = 0;
pub const OFF_ARCH: u32 = 4;
pub const OFF_ARGS: u32 = 16;

/// Offset of the low 32 bits of argument `i`.
pub const fn arg_lo(i: u32) -> u32 {
    OFF_ARGS + 8 * i
}

/// Offset of the high 32 bits of argument `i`.
pub const fn arg_hi(i: u32) -> u32 {
    OFF_ARGS + 8 * i + 4
}

/// A statement (non-jump) instruction.
pub const fn stmt(code: u16, k: u32) -> sock_filter {
    sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

/// A jump instruction.
pub const fn jump(code: u16, k: u32, jt: u8, jf: u8) -> sock_filter {
    sock_filter { code, jt, jf, k }
}

/// `A = seccomp_data[off]` (32-bit word).
pub const fn load(off: u32) -> sock_filter {
    stmt(BPF_LD | BPF_W | BPF_ABS, off)
}

/// `return k`.
pub const fn ret(k: u32) -> sock_filter {
    stmt(BPF_RET | BPF_K, k)
}

/// The input of a seccomp filter: `struct seccomp_data`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SeccompData {
    pub nr: u32,
    pub arch: u32,
    pub ip: u64,
    pub args: [u64; 6],
}

impl SeccompData {
    /// The 32-bit word at byte offset `off`, as `BPF_LD|BPF_W|BPF_ABS` reads it.
    fn word(&self, off: u32) -> Option<u32> {
        if !off.is_multiple_of(4) {
            return None;
        }
        let lohi = |v: u64, high: bool| if high { (v >> 32) as u32 } else { v as u32 };
        match off {
            0 => Some(self.nr),
            4 => Some(self.arch),
            8 | 12 => Some(lohi(self.ip, off == 12)),
            16..=63 => {
                let i = ((off - 16) / 8) as usize;
                Some(lohi(self.args[i], (off - 16) % 8 == 4))
            }
            _ => None,
        }
    }
}

/// Why a program could not be evaluated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EvalError {
    /// Jump or fall-through past the end of the program.
    OutOfBounds(usize),
    /// Load outside `seccomp_data` or misaligned.
    BadLoad(usize),
    /// An opcode the interpreter (and seccomp) does not accept.
    BadOpcode(usize, u16),
}

/// Runs `prog` on `data` and returns the filter's verdict (`SECCOMP_RET_*`).
///
/// Like the kernel's checker, every jump only goes forward, so the loop ends.
pub fn run(prog: &[sock_filter], data: &SeccompData) -> Result<u32, EvalError> {
    let mut a: u32 = 0;
    let mut x: u32 = 0;
    let mut mem = [0u32; 16];
    let mut pc = 0usize;
    loop {
        let ins = prog.get(pc).ok_or(EvalError::OutOfBounds(pc))?;
        let k = ins.k;
        let class = ins.code & 0x07;
        match class {
            BPF_LD | BPF_LDX => {
                let mode = ins.code & 0xe0;
                let v = match mode {
                    BPF_ABS if ins.code & 0x18 == BPF_W => {
                        data.word(k).ok_or(EvalError::BadLoad(pc))?
                    }
                    BPF_IMM => k,
                    BPF_MEM => *mem.get(k as usize).ok_or(EvalError::BadLoad(pc))?,
                    BPF_LEN => 64,
                    _ => return Err(EvalError::BadOpcode(pc, ins.code)),
                };
                if class == BPF_LD {
                    a = v;
                } else {
                    x = v;
                }
            }
            BPF_ST | BPF_STX => {
                let slot = mem.get_mut(k as usize).ok_or(EvalError::BadLoad(pc))?;
                *slot = if class == BPF_ST { a } else { x };
            }
            BPF_ALU => {
                let src = if ins.code & BPF_X != 0 { x } else { k };
                a = match ins.code & 0xf0 {
                    BPF_ADD => a.wrapping_add(src),
                    BPF_SUB => a.wrapping_sub(src),
                    BPF_AND => a & src,
                    BPF_OR => a | src,
                    BPF_LSH => a.checked_shl(src).unwrap_or(0),
                    BPF_RSH => a.checked_shr(src).unwrap_or(0),
                    0x80 => a.wrapping_neg(),
                    _ => return Err(EvalError::BadOpcode(pc, ins.code)),
                };
            }
            BPF_JMP => {
                let src = if ins.code & BPF_X != 0 { x } else { k };
                let op = ins.code & 0xf0;
                let next = if op == BPF_JA {
                    pc + 1 + k as usize
                } else {
                    let taken = match op {
                        BPF_JEQ => a == src,
                        BPF_JGT => a > src,
                        BPF_JGE => a >= src,
                        BPF_JSET => a & src != 0,
                        _ => return Err(EvalError::BadOpcode(pc, ins.code)),
                    };
                    pc + 1 + if taken { ins.jt } else { ins.jf } as usize
                };
                pc = next;
                continue;
            }
            BPF_RET => {
                return match ins.code & 0x18 {
                    BPF_K => Ok(k),
                    BPF_A => Ok(a),
                    _ => Err(EvalError::BadOpcode(pc, ins.code)),
                };
            }
            BPF_MISC => match ins.code & 0xf8 {
                BPF_TAX => x = a,
                BPF_TXA => a = x,
                _ => return Err(EvalError::BadOpcode(pc, ins.code)),
            },
            _ => return Err(EvalError::BadOpcode(pc, ins.code)),
        }
        pc += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interpreter_basics() {
        let prog = [
            load(OFF_ARCH),
            jump(BPF_JMP | BPF_JEQ | BPF_K, 7, 1, 0),
            ret(0),
            load(arg_hi(1)),
            stmt(BPF_ALU | BPF_AND | BPF_K, 0xf0),
            jump(BPF_JMP | BPF_JGE | BPF_K, 0x20, 0, 1),
            ret(1),
            stmt(BPF_JMP | BPF_JA, 1),
            ret(2),
            ret(3),
        ];
        let mut d = SeccompData {
            arch: 7,
            ..Default::default()
        };
        assert_eq!(run(&prog, &d), Ok(3));
        d.args[1] = 0x25 << 32;
        assert_eq!(run(&prog, &d), Ok(1));
        d.arch = 8;
        assert_eq!(run(&prog, &d), Ok(0));
        assert_eq!(run(&prog[..2], &d), Err(EvalError::OutOfBounds(2)));
        assert_eq!(run(&[load(3), ret(0)], &d), Err(EvalError::BadLoad(0)));
        assert_eq!(run(&[load(64), ret(0)], &d), Err(EvalError::BadLoad(0)));
    }

    #[test]
    fn words_of_seccomp_data() {
        let d = SeccompData {
            nr: 1,
            arch: 2,
            ip: 0x3_0000_0004,
            args: [0x5_0000_0006, 0, 0, 0, 0, 0x7_0000_0008],
        };
        assert_eq!(d.word(0), Some(1));
        assert_eq!(d.word(4), Some(2));
        assert_eq!(d.word(8), Some(4));
        assert_eq!(d.word(12), Some(3));
        assert_eq!(d.word(arg_lo(0)), Some(6));
        assert_eq!(d.word(arg_hi(0)), Some(5));
        assert_eq!(d.word(arg_lo(5)), Some(8));
        assert_eq!(d.word(arg_hi(5)), Some(7));
    }
}
