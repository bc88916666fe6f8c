//! Classic BPF for seccomp: instruction encoding, a tiny assembler with labels (every
//! conditional jump is 0 or 1 instructions long; far targets go through `ja`, whose offset is
//! 32 bits, so no program outgrows the 8-bit jump fields), and an interpreter for tests.
use libc::sock_filter;

pub const LD_W_ABS: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS
pub const JEQ_K: u16 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
pub const JGT_K: u16 = 0x25;
pub const JGE_K: u16 = 0x35;
pub const JA: u16 = 0x05;
pub const RET_K: u16 = 0x06;
pub const AND_K: u16 = 0x54; // BPF_ALU | BPF_AND | BPF_K

/// seccomp_data offsets.
pub const OFF_NR: u32 = 0;
pub const OFF_ARCH: u32 = 4;
pub fn off_arg_lo(i: u32) -> u32 {
    16 + 8 * i
}
pub fn off_arg_hi(i: u32) -> u32 {
    16 + 8 * i + 4
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Label(pub usize);

#[derive(Clone, Copy, Debug)]
enum Item {
    Insn(sock_filter),
    Jump(Label),
    Mark(Label),
}

#[derive(Default)]
pub struct Asm {
    items: Vec<Item>,
    labels: usize,
}

impl Asm {
    pub fn label(&mut self) -> Label {
        self.labels += 1;
        Label(self.labels - 1)
    }
    pub fn mark(&mut self, l: Label) {
        self.items.push(Item::Mark(l));
    }
    pub fn insn(&mut self, code: u16, jt: u8, jf: u8, k: u32) {
        self.items.push(Item::Insn(sock_filter { code, jt, jf, k }));
    }
    pub fn load(&mut self, off: u32) {
        self.insn(LD_W_ABS, 0, 0, off);
    }
    pub fn ret(&mut self, k: u32) {
        self.insn(RET_K, 0, 0, k);
    }
    pub fn and(&mut self, k: u32) {
        self.insn(AND_K, 0, 0, k);
    }
    pub fn goto(&mut self, l: Label) {
        self.items.push(Item::Jump(l));
    }
    /// Jump to `l` when `A <op> k` holds.
    pub fn goto_if(&mut self, op: u16, k: u32, l: Label) {
        self.insn(op, 0, 1, k);
        self.goto(l);
    }
    /// Jump to `l` when `A <op> k` does not hold.
    pub fn goto_unless(&mut self, op: u16, k: u32, l: Label) {
        self.insn(op, 1, 0, k);
        self.goto(l);
    }

    pub fn finish(self) -> Vec<sock_filter> {
        let mut pos = vec![0usize; self.labels];
        let mut n = 0;
        for it in &self.items {
            match it {
                Item::Mark(l) => pos[l.0] = n,
                _ => n += 1,
            }
        }
        let mut out = Vec::with_capacity(n);
        for it in self.items {
            match it {
                Item::Insn(i) => out.push(i),
                Item::Jump(l) => {
                    let here = out.len() + 1;
                    out.push(sock_filter {
                        code: JA,
                        jt: 0,
                        jf: 0,
                        k: (pos[l.0] - here) as u32,
                    });
                }
                Item::Mark(_) => {}
            }
        }
        out
    }
}

/// The input of a filter.
#[derive(Clone, Copy, Debug, Default)]
pub struct Data {
    pub nr: i32,
    pub arch: u32,
    pub args: [u64; 6],
}

/// Run `prog` on `d` as the kernel would; returns the verdict.
pub fn run(prog: &[sock_filter], d: &Data) -> u32 {
    let word = |off: u32| -> u32 {
        match off {
            OFF_NR => d.nr as u32,
            OFF_ARCH => d.arch,
            8 | 12 => 0,
            o if (16..64).contains(&o) => {
                let a = d.args[((o - 16) / 8) as usize];
                if (o - 16) % 8 == 0 {
                    a as u32
                } else {
                    (a >> 32) as u32
                }
            }
            o => panic!("load of offset {o}"),
        }
    };
    let (mut pc, mut a) = (0usize, 0u32);
    loop {
        let i = prog[pc];
        pc += 1;
        match i.code {
            LD_W_ABS => a = word(i.k),
            AND_K => a &= i.k,
            RET_K => return i.k,
            JA => pc += i.k as usize,
            JEQ_K | JGT_K | JGE_K => {
                let t = match i.code {
                    JEQ_K => a == i.k,
                    JGT_K => a > i.k,
                    _ => a >= i.k,
                };
                pc += if t { i.jt } else { i.jf } as usize;
            }
            c => panic!("unknown opcode {c:#x}"),
        }
    }
}
