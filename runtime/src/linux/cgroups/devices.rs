//! The devices controller: which device nodes the container may open or create.
//!
//! The rule list is built as runc builds it: the config's `linux.resources.devices` in
//! order, then the devices every container may use (null, zero, full, random, urandom,
//! tty, ptmx, /dev/pts/*, tun, and mknod of anything), then an rwm allow for each of the
//! config's `linux.devices`. The rules are replayed through an emulator of the v1
//! kernel semantics (a default, allow or deny, plus exceptions; a rule of type `a`
//! resets both), which gives the same result on v1 and v2:
//! - v1: write `a` to `devices.deny` (or `devices.allow` for a default-allow list), then
//!   each exception;
//! - v2: an eBPF program of type CGROUP_DEVICE, attached to the container's cgroup, that
//!   returns the matching exception's verdict or the default.

use crate::error::{Context, Error, Result};
use berth_spec::Linux;
use std::path::Path;

pub const WILDCARD: i64 = -1;

/// Access bits (the same values as the kernel's BPF_DEVCG_ACC_*).
pub const ACC_MKNOD: u8 = 1;
pub const ACC_READ: u8 = 2;
pub const ACC_WRITE: u8 = 4;
pub const ACC_ALL: u8 = 7;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// 'a' (all), 'c' or 'b'.
    pub typ: char,
    /// -1 for any.
    pub major: i64,
    pub minor: i64,
    /// ACC_* bits.
    pub access: u8,
    pub allow: bool,
}

impl Rule {
    const fn allow(typ: char, major: i64, minor: i64, access: u8) -> Rule {
        Rule { typ, major, minor, access, allow: true }
    }
}

/// The devices every container may use (runc's `AllowedDevices`, in its order).
pub const DEFAULT_ALLOWED: &[Rule] = &[
    Rule::allow('c', WILDCARD, WILDCARD, ACC_MKNOD),
    Rule::allow('b', WILDCARD, WILDCARD, ACC_MKNOD),
    Rule::allow('c', 1, 3, ACC_ALL),          // /dev/null
    Rule::allow('c', 1, 8, ACC_ALL),          // /dev/random
    Rule::allow('c', 1, 7, ACC_ALL),          // /dev/full
    Rule::allow('c', 5, 0, ACC_ALL),          // /dev/tty
    Rule::allow('c', 1, 5, ACC_ALL),          // /dev/zero
    Rule::allow('c', 1, 9, ACC_ALL),          // /dev/urandom
    Rule::allow('c', 136, WILDCARD, ACC_ALL), // /dev/pts/*
    Rule::allow('c', 5, 2, ACC_ALL),          // /dev/ptmx
    Rule::allow('c', 10, 200, ACC_ALL),       // /dev/net/tun
];

pub fn parse_access(s: &str) -> Option<u8> {
    let mut a = 0;
    for c in s.chars() {
        a |= match c {
            'r' => ACC_READ,
            'w' => ACC_WRITE,
            'm' => ACC_MKNOD,
            _ => return None,
        };
    }
    Some(a)
}

pub fn access_string(a: u8) -> String {
    let mut s = String::new();
    if a & ACC_READ != 0 {
        s.push('r');
    }
    if a & ACC_WRITE != 0 {
        s.push('w');
    }
    if a & ACC_MKNOD != 0 {
        s.push('m');
    }
    s
}

fn num(n: i64) -> String {
    if n < 0 {
        "*".into()
    } else {
        n.to_string()
    }
}

/// The rule as devices.allow / devices.deny take it: "c 1:3 rwm".
pub fn v1_line(typ: char, major: i64, minor: i64, access: u8) -> String {
    if typ == 'a' {
        return "a".into();
    }
    format!("{typ} {}:{} {}", num(major), num(minor), access_string(access))
}

/// The container's device rules, in the order they apply.
pub fn rules_for(linux: &Linux) -> Result<Vec<Rule>> {
    let mut out = Vec::new();
    for (i, d) in linux.resources.iter().flat_map(|r| r.devices.iter()).enumerate() {
        let field = format!("linux.resources.devices[{i}]");
        let typ = match d.typ.as_deref().unwrap_or("a") {
            "" | "a" => 'a',
            "c" => 'c',
            "b" => 'b',
            t => return Err(Error::new(format!("{field}.type: invalid device type {t:?} (want a, b or c)"))),
        };
        let access = d.access.as_deref().unwrap_or("");
        if access.is_empty() {
            return Err(Error::new(format!("{field}.access: device access cannot be empty")));
        }
        let access = parse_access(access).ok_or_else(|| Error::new(format!("{field}.access: invalid device access {access:?} (want some of r, w, m)")))?;
        let major = d.major.unwrap_or(WILDCARD);
        let minor = d.minor.unwrap_or(WILDCARD);
        if major < WILDCARD || minor < WILDCARD || major > u32::MAX as i64 || minor > u32::MAX as i64 {
            return Err(Error::new(format!("{field}: invalid device number {major}:{minor}")));
        }
        out.push(Rule { typ, major, minor, access, allow: d.allow });
    }
    out.extend_from_slice(DEFAULT_ALLOWED);
    for d in &linux.devices {
        let typ = match d.typ.as_str() {
            "c" | "u" => 'c',
            "b" => 'b',
            // A fifo is no device to the cgroup.
            _ => continue,
        };
        out.push(Rule::allow(typ, d.major, d.minor, ACC_ALL));
    }
    Ok(out)
}

/// The v1 devices cgroup's state: a default and the exceptions to it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Emulator {
    pub default_allow: bool,
    /// (type, major, minor) -> access bits, in the order the kernel lists them
    /// (first insertion): runtimes must apply the config's entries in its order.
    pub exceptions: Vec<((char, i64, i64), u8)>,
}

impl Emulator {
    fn get(&self, key: &(char, i64, i64)) -> Option<u8> {
        self.exceptions.iter().find(|(k, _)| k == key).map(|(_, a)| *a)
    }
}

impl Emulator {
    /// Replays rules on a deny-all start (a new container's list).
    pub fn from_rules(rules: &[Rule]) -> Result<Emulator> {
        let mut e = Emulator::default();
        for r in rules {
            e.apply(r)?;
        }
        Ok(e)
    }

    pub fn apply(&mut self, r: &Rule) -> Result<()> {
        if r.typ == 'a' {
            // The kernel reads any "a" rule as "a *:* rwm": a reset.
            *self = Emulator { default_allow: r.allow, exceptions: Vec::new() };
            return Ok(());
        }
        let key = (r.typ, r.major, r.minor);
        if r.allow == self.default_allow {
            // Allowing on an allow-list default (or denying on a deny default) removes
            // the exception, but cannot punch a hole in a wildcard exception.
            self.remove(key, r.access)
        } else {
            match self.exceptions.iter_mut().find(|(k, _)| *k == key) {
                Some((_, a)) => *a |= r.access,
                None => self.exceptions.push((key, r.access)),
            }
            Ok(())
        }
    }

    fn remove(&mut self, key: (char, i64, i64), access: u8) -> Result<()> {
        let (t, maj, min) = key;
        for partial in [(t, WILDCARD, min), (t, maj, WILDCARD), (t, WILDCARD, WILDCARD)] {
            if partial == key {
                continue;
            }
            if let Some(a) = self.get(&partial) {
                if a & access != 0 {
                    return Err(Error::new(format!(
                        "device rule {} is not supported: it would punch a hole in the wildcard rule {}",
                        v1_line(t, maj, min, access),
                        v1_line(partial.0, partial.1, partial.2, a)
                    )));
                }
            }
        }
        if let Some((_, a)) = self.exceptions.iter_mut().find(|(k, _)| *k == key) {
            *a &= !access;
        }
        self.exceptions.retain(|(_, a)| *a != 0);
        Ok(())
    }

    /// What devices.allow / devices.deny get, in order: (file, line).
    pub fn v1_writes(&self) -> Vec<(&'static str, String)> {
        let (reset, except) = if self.default_allow { ("devices.allow", "devices.deny") } else { ("devices.deny", "devices.allow") };
        let mut w = vec![(reset, "a".to_string())];
        for &((t, maj, min), a) in &self.exceptions {
            w.push((except, v1_line(t, maj, min, a)));
        }
        w
    }
}

/// Applies the rules to a v1 devices cgroup.
pub fn set_v1(dir: &Path, rules: &[Rule]) -> Result<()> {
    use std::io::Write;
    let emu = Emulator::from_rules(rules).ctx("linux.resources.devices")?;
    // One open per file: the kernel takes each write(2) as one rule, in order.
    let mut open: Vec<(&str, std::fs::File)> = Vec::new();
    for (file, line) in emu.v1_writes() {
        let p = dir.join(file);
        let fail = |e: std::io::Error| Error::new(format!("linux.resources.devices: write {line:?} to {}: {}", p.display(), Error::from(e)));
        let f = match open.iter_mut().find(|(n, _)| *n == file) {
            Some((_, f)) => f,
            None => {
                let f = std::fs::OpenOptions::new().write(true).open(&p).map_err(fail)?;
                open.push((file, f));
                &mut open.last_mut().expect("just pushed").1
            }
        };
        f.write_all(line.as_bytes()).map_err(fail)?;
    }
    Ok(())
}

// ---- cgroup v2: an eBPF device filter ----

/// One eBPF instruction, as `struct bpf_insn` lays it out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    pub code: u8,
    pub dst: u8,
    pub src: u8,
    pub off: i16,
    pub imm: i32,
}

impl Insn {
    pub fn encode(&self) -> u64 {
        let regs = (self.dst & 0xf) | ((self.src & 0xf) << 4);
        u64::from_le_bytes({
            let mut b = [0u8; 8];
            b[0] = self.code;
            b[1] = regs;
            b[2..4].copy_from_slice(&self.off.to_le_bytes());
            b[4..8].copy_from_slice(&self.imm.to_le_bytes());
            b
        })
    }
}

// Opcodes (linux/bpf_common.h, linux/bpf.h).
const LDX_MEM_W: u8 = 0x61; // BPF_LDX | BPF_MEM | BPF_W
const ALU_AND_K: u8 = 0x54; // BPF_ALU | BPF_AND | BPF_K
const ALU_RSH_K: u8 = 0x74; // BPF_ALU | BPF_RSH | BPF_K
const ALU_MOV_K: u8 = 0xb4; // BPF_ALU | BPF_MOV | BPF_K
const ALU_MOV_X: u8 = 0xbc; // BPF_ALU | BPF_MOV | BPF_X
const JMP_JNE_K: u8 = 0x55; // BPF_JMP | BPF_JNE | BPF_K
const JMP_JNE_X: u8 = 0x5d; // BPF_JMP | BPF_JNE | BPF_X
const JMP_EXIT: u8 = 0x95; // BPF_JMP | BPF_EXIT

const DEVCG_DEV_BLOCK: i32 = 1;
const DEVCG_DEV_CHAR: i32 = 2;

fn ins(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn { code, dst, src, off, imm }
}

/// The device filter program for the emulated rules (runc's layout): load type, access,
/// major and minor from `struct bpf_cgroup_dev_ctx` into R2..R5, then one block per
/// exception that jumps to the next block on a mismatch and returns its verdict on a
/// match, and at the end return the default.
pub fn bpf_program(emu: &Emulator) -> Vec<Insn> {
    let mut p = vec![
        ins(LDX_MEM_W, 2, 1, 0, 0),
        ins(ALU_AND_K, 2, 0, 0, 0xffff),
        ins(LDX_MEM_W, 3, 1, 0, 0),
        ins(ALU_RSH_K, 3, 0, 0, 16),
        ins(LDX_MEM_W, 4, 1, 4, 0),
        ins(LDX_MEM_W, 5, 1, 8, 0),
    ];
    let verdict = !emu.default_allow as i32;
    for &((t, maj, min), access) in &emu.exceptions {
        let mut block: Vec<Insn> = Vec::new();
        // Jumps to the next block are patched once the block's length is known.
        block.push(ins(JMP_JNE_K, 2, 0, 0, if t == 'b' { DEVCG_DEV_BLOCK } else { DEVCG_DEV_CHAR }));
        if access != ACC_ALL {
            // if (access & rule) != access: next
            block.push(ins(ALU_MOV_X, 1, 3, 0, 0));
            block.push(ins(ALU_AND_K, 1, 0, 0, access as i32));
            block.push(ins(JMP_JNE_X, 1, 3, 0, 0));
        }
        if maj >= 0 {
            block.push(ins(JMP_JNE_K, 4, 0, 0, maj as u32 as i32));
        }
        if min >= 0 {
            block.push(ins(JMP_JNE_K, 5, 0, 0, min as u32 as i32));
        }
        block.push(ins(ALU_MOV_K, 0, 0, 0, verdict));
        block.push(ins(JMP_EXIT, 0, 0, 0, 0));
        let len = block.len();
        for (i, insn) in block.iter_mut().enumerate() {
            if insn.code == JMP_JNE_K || insn.code == JMP_JNE_X {
                insn.off = (len - i - 1) as i16;
            }
        }
        p.extend(block);
    }
    p.push(ins(ALU_MOV_K, 0, 0, 0, emu.default_allow as i32));
    p.push(ins(JMP_EXIT, 0, 0, 0, 0));
    p
}

/// Evaluates the program for one access, as the kernel would (for tests).
pub fn run_program(p: &[Insn], typ: char, major: u32, minor: u32, access: u8) -> i32 {
    let ctx: [u32; 3] = [(access as u32) << 16 | if typ == 'b' { 1 } else { 2 }, major, minor];
    let mut r = [0u64; 11];
    let mut pc = 0usize;
    loop {
        let i = p[pc];
        let (d, s) = (i.dst as usize, i.src as usize);
        pc += 1;
        match i.code {
            LDX_MEM_W => r[d] = ctx[(i.off / 4) as usize] as u64,
            ALU_AND_K => r[d] = (r[d] as u32 & i.imm as u32) as u64,
            ALU_RSH_K => r[d] = ((r[d] as u32) >> i.imm) as u64,
            ALU_MOV_K => r[d] = i.imm as u32 as u64,
            ALU_MOV_X => r[d] = r[s] as u32 as u64,
            JMP_JNE_K => {
                if r[d] != i.imm as i64 as u64 {
                    pc += i.off as usize;
                }
            }
            JMP_JNE_X => {
                if r[d] != r[s] {
                    pc += i.off as usize;
                }
            }
            JMP_EXIT => return r[0] as i32,
            c => panic!("unknown opcode {c:#x}"),
        }
    }
}

const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_ATTACH: libc::c_long = 8;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
const BPF_F_ALLOW_MULTI: u32 = 2;

/// Loads the filter for `rules` and attaches it to the cgroup v2 directory `dir`. The
/// attachment lives as long as the cgroup.
pub fn set_v2(dir: &Path, rules: &[Rule]) -> Result<()> {
    let emu = Emulator::from_rules(rules).ctx("linux.resources.devices")?;
    let prog = bpf_program(&emu);
    let attach = || -> std::io::Result<()> {
        let insns: Vec<u64> = prog.iter().map(Insn::encode).collect();
        let license = c"Apache";
        let load = |log: &mut [u8]| -> i64 {
            // union bpf_attr for BPF_PROG_LOAD: prog_type, insn_cnt, insns, license,
            // log_level, log_size, log_buf, ...; the rest zero.
            let mut attr = [0u8; 128];
            attr[0..4].copy_from_slice(&BPF_PROG_TYPE_CGROUP_DEVICE.to_ne_bytes());
            attr[4..8].copy_from_slice(&(insns.len() as u32).to_ne_bytes());
            attr[8..16].copy_from_slice(&(insns.as_ptr() as u64).to_ne_bytes());
            attr[16..24].copy_from_slice(&(license.as_ptr() as u64).to_ne_bytes());
            if !log.is_empty() {
                attr[24..28].copy_from_slice(&1u32.to_ne_bytes());
                attr[28..32].copy_from_slice(&(log.len() as u32).to_ne_bytes());
                attr[32..40].copy_from_slice(&(log.as_mut_ptr() as u64).to_ne_bytes());
            }
            // SAFETY: bpf(2) with a zeroed attr of the size we pass, pointing at buffers
            // (insns, license, log) that outlive the call.
            unsafe { libc::syscall(libc::SYS_bpf, BPF_PROG_LOAD, attr.as_mut_ptr(), attr.len() as u32) }
        };
        let mut fd = load(&mut []);
        if fd < 0 {
            let e = std::io::Error::last_os_error();
            // Again with the verifier's log, for the message.
            let mut log = vec![0u8; 1 << 20];
            fd = load(&mut log);
            if fd < 0 {
                let msg = String::from_utf8_lossy(&log[..log.iter().position(|&b| b == 0).unwrap_or(0)]).trim().to_string();
                let tail: String = msg.lines().rev().take(3).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("; ");
                return Err(if tail.is_empty() { e } else { std::io::Error::new(e.kind(), format!("{e}: {tail}")) });
            }
        }
        // SAFETY: a new fd from bpf(2), owned here.
        let prog_fd = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd as i32) };
        let cg = std::fs::File::open(dir)?;
        use std::os::fd::AsRawFd;
        let mut attr = [0u8; 128];
        attr[0..4].copy_from_slice(&(cg.as_raw_fd() as u32).to_ne_bytes());
        attr[4..8].copy_from_slice(&(prog_fd.as_raw_fd() as u32).to_ne_bytes());
        attr[8..12].copy_from_slice(&BPF_CGROUP_DEVICE.to_ne_bytes());
        attr[12..16].copy_from_slice(&BPF_F_ALLOW_MULTI.to_ne_bytes());
        // SAFETY: bpf(2) BPF_PROG_ATTACH with fds we hold open.
        let r = unsafe { libc::syscall(libc::SYS_bpf, BPF_PROG_ATTACH, attr.as_mut_ptr(), attr.len() as u32) };
        if r < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    };
    attach().with_ctx(|| format!("linux.resources.devices: load and attach the eBPF device filter to {}", dir.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn default_config_rules() -> Vec<Rule> {
        let linux = Linux {
            resources: Some(serde_json::from_value(serde_json::json!({"devices": [{"allow": false, "access": "rwm"}]})).unwrap()),
            ..Default::default()
        };
        rules_for(&linux).unwrap()
    }

    #[test]
    fn default_rules_are_deny_all_and_the_standard_allows() {
        let e = Emulator::from_rules(&default_config_rules()).unwrap();
        assert!(!e.default_allow);
        let w = e.v1_writes();
        assert_eq!(w[0], ("devices.deny", "a".to_string()));
        let lines: Vec<&str> = w[1..]
            .iter()
            .map(|(f, l)| {
                assert_eq!(*f, "devices.allow");
                l.as_str()
            })
            .collect();
        for want in
            ["c *:* m", "b *:* m", "c 1:3 rwm", "c 1:5 rwm", "c 1:7 rwm", "c 1:8 rwm", "c 1:9 rwm", "c 5:0 rwm", "c 5:2 rwm", "c 136:* rwm", "c 10:200 rwm"]
        {
            assert!(lines.contains(&want), "{want} missing from {lines:?}");
        }
        assert_eq!(lines.len(), 11);
    }

    #[test]
    fn allow_all_then_deny_makes_a_deny_list() {
        let rules = vec![
            Rule { typ: 'a', major: -1, minor: -1, access: ACC_ALL, allow: true },
            Rule { typ: 'c', major: 1, minor: 1, access: ACC_READ | ACC_WRITE, allow: false },
        ];
        let e = Emulator::from_rules(&rules).unwrap();
        assert_eq!(e.v1_writes(), vec![("devices.allow", "a".into()), ("devices.deny", "c 1:1 rw".into())]);
        let p = bpf_program(&e);
        assert_eq!(run_program(&p, 'c', 1, 1, ACC_READ), 0);
        assert_eq!(run_program(&p, 'c', 1, 1, ACC_MKNOD), 1);
        assert_eq!(run_program(&p, 'b', 8, 0, ACC_READ), 1);
    }

    #[test]
    fn a_deny_inside_an_allowed_wildcard_is_refused() {
        let mut rules = default_config_rules();
        rules.push(Rule { typ: 'c', major: 136, minor: 3, access: ACC_READ, allow: false });
        assert!(Emulator::from_rules(&rules).unwrap_err().msg().contains("punch a hole"));
        // An exact match is removed.
        let mut rules = default_config_rules();
        rules.push(Rule { typ: 'c', major: 1, minor: 9, access: ACC_WRITE, allow: false });
        let e = Emulator::from_rules(&rules).unwrap();
        assert_eq!(e.get(&('c', 1, 9)), Some(ACC_READ | ACC_MKNOD));
    }

    #[test]
    fn the_filter_program_matches_the_rules() {
        let e = Emulator::from_rules(&default_config_rules()).unwrap();
        let p = bpf_program(&e);
        assert_eq!(run_program(&p, 'c', 1, 3, ACC_READ | ACC_WRITE), 1); // /dev/null
        assert_eq!(run_program(&p, 'c', 136, 7, ACC_READ), 1); // a pty
        assert_eq!(run_program(&p, 'c', 1, 1, ACC_READ), 0); // /dev/mem
        assert_eq!(run_program(&p, 'c', 1, 1, ACC_MKNOD), 1); // mknod of anything
        assert_eq!(run_program(&p, 'b', 8, 0, ACC_READ), 0);
        assert_eq!(run_program(&p, 'b', 8, 0, ACC_MKNOD), 1);
        assert_eq!(run_program(&p, 'c', 10, 200, ACC_READ | ACC_WRITE), 1);
        // Encoding: the first instruction is r2 = *(u32 *)(r1 + 0).
        assert_eq!(p[0].encode(), 0x0000_0000_0000_1261);
    }

    #[test]
    fn bad_rules_name_their_field() {
        let mut linux = Linux {
            resources: Some(serde_json::from_value(serde_json::json!({"devices": [{"allow": true, "type": "x", "access": "r"}]})).unwrap()),
            ..Default::default()
        };
        assert!(rules_for(&linux).unwrap_err().msg().starts_with("linux.resources.devices[0].type"));
        linux.resources = Some(serde_json::from_value(serde_json::json!({"devices": [{"allow": true}]})).unwrap());
        assert!(rules_for(&linux).unwrap_err().msg().contains("access"));
    }
}
