//! A classic-BPF assembler for seccomp programs, built back to front.
//!
//! cBPF only jumps forward, and a conditional jump reaches at most 255 instructions
//! ahead (`jt`/`jf` are 8 bits). Emitting the program from its end makes every target
//! already placed when a jump to it is emitted, so each jump's distance is known at once:
//! when it is too far, a `ja` (32-bit offset) trampoline to the target, or a fresh copy of
//! the `ret` it leads to, is placed right after the jump. Every conditional jump names both
//! of its targets, so nothing ever falls into those inserted instructions by accident.
//!
//! Labels are positions counted from the end of the program: the label of an instruction
//! is the number of instructions from it to the end, itself included.

use std::collections::HashMap;

pub const LD_W_ABS: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS
pub const AND_K: u16 = 0x54; // BPF_ALU | BPF_AND | BPF_K
pub const JA: u16 = 0x05; // BPF_JMP | BPF_JA
pub const JEQ: u16 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
pub const JGT: u16 = 0x25; // BPF_JMP | BPF_JGT | BPF_K
pub const JGE: u16 = 0x35; // BPF_JMP | BPF_JGE | BPF_K
pub const RET_K: u16 = 0x06; // BPF_RET | BPF_K

/// The most instructions the kernel accepts in one program (BPF_MAXINSNS).
pub const MAX_INSNS: usize = 4096;

const MAX_JUMP: usize = 255;

/// Where a jump goes: an emitted instruction, or "return this action" (placed wherever
/// it is near enough).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Label(usize),
    Ret(u32),
}

#[derive(Default)]
pub struct Builder {
    /// The program, last instruction first.
    rev: Vec<libc::sock_filter>,
    /// For each returned value, the label of the nearest `ret` of it emitted so far.
    rets: HashMap<u32, usize>,
}

impl Builder {
    pub fn new() -> Builder {
        Builder::default()
    }

    fn push(&mut self, code: u16, jt: u8, jf: u8, k: u32) -> usize {
        self.rev.push(libc::sock_filter { code, jt, jf, k });
        self.rev.len()
    }

    /// The jump offset from the next instruction to `label`.
    fn dist(&self, label: usize) -> usize {
        self.rev.len() - label
    }

    /// A non-jump instruction (load, ALU): it falls through to the instruction emitted
    /// just before it, which must therefore be what it leads to (see [`Builder::at`]).
    pub fn stmt(&mut self, code: u16, k: u32) -> usize {
        self.push(code, 0, 0, k)
    }

    pub fn ret(&mut self, k: u32) -> usize {
        let l = self.push(RET_K, 0, 0, k);
        self.rets.insert(k, l);
        l
    }

    fn ja(&mut self, label: usize) -> usize {
        let off = self.dist(label) as u32;
        self.push(JA, 0, 0, off)
    }

    /// Makes `t` the most recently emitted instruction, so that a statement emitted next
    /// falls through to it.
    pub fn at(&mut self, t: Target) -> usize {
        match t {
            Target::Label(l) if l == self.rev.len() => l,
            Target::Label(l) => self.ja(l),
            Target::Ret(k) => self.ret(k),
        }
    }

    /// A label for `t` within a conditional jump's reach of the next instruction.
    fn near(&mut self, t: Target) -> usize {
        match t {
            Target::Ret(k) => match self.rets.get(&k) {
                Some(&l) if self.dist(l) <= MAX_JUMP => l,
                _ => self.ret(k),
            },
            Target::Label(l) if self.dist(l) <= MAX_JUMP => l,
            Target::Label(l) => self.ja(l),
        }
    }

    /// `if (A <code> k) goto jt; else goto jf;`
    pub fn jump(&mut self, code: u16, k: u32, jt: Target, jf: Target) -> usize {
        loop {
            let lt = self.near(jt);
            let lf = self.near(jf);
            // Placing jf's trampoline may have pushed jt just out of reach: then go again
            // (jt gets its own trampoline, and jf's is then one away).
            let (dt, df) = (self.dist(lt), self.dist(lf));
            if dt <= MAX_JUMP && df <= MAX_JUMP {
                return self.push(code, dt as u8, df as u8, k);
            }
        }
    }

    /// The program, first instruction first. The entry point is the instruction emitted last.
    pub fn finish(mut self) -> Vec<libc::sock_filter> {
        self.rev.reverse();
        self.rev
    }
}
