//! `linux.seccomp`: the profile compiled to a classic BPF program and loaded with
//! seccomp(2), with the meaning runc gives it (runc uses libseccomp).
//!
//! Our own compiler, not libseccomp (a C library to link and ship) nor the `seccompiler`
//! crate: seccompiler has no SCMP_ACT_NOTIFY, no per-architecture tables, and its argument
//! comparisons differ from libseccomp's (its rules are matched by its own precedence, and
//! LT/LE/GT/GE on 64-bit values are not libseccomp's unsigned two-word compares). What
//! container profiles need is small enough to own outright: this file turns the OCI profile
//! into per-architecture decision tables (with libseccomp's and runc's rules on conflicts,
//! below), and `bpf.rs` assembles them; `syscalls.rs` is generated from the kernel headers.
//!
//! The program: load `seccomp_data.arch`; dispatch on it (the host's architecture first);
//! an architecture that is neither native nor listed gets libseccomp's "bad arch" action,
//! KILL_THREAD. On x86_64, `nr >= 0x40000000` is an x32 call: the x32 table if x32 is
//! listed, else bad arch. For a listed architecture whose default action refuses, numbers
//! above the largest syscall the profile names return ENOSYS, so that callers of newer
//! syscalls fall back as on an older kernel (runc's patch to libseccomp's output). Then a
//! binary search on the syscall number (leaves of up to four `jeq`) reaches the syscall's
//! action, or its argument checks; anything else gets the default action.
//!
//! Rules, as runc feeds them to libseccomp:
//! - a rule whose action equals the default action is skipped;
//! - unknown syscall names are skipped (per architecture: `_llseek` exists on x86 only);
//! - the conditions of one rule are ANDed; several rules for a syscall are ORed, the first
//!   that matches giving the action; an unconditional rule overrides conditional ones and
//!   the first unconditional rule wins;
//! - when one rule has several conditions on the same argument, each becomes a rule of its
//!   own (ORed), runc's compatibility behaviour;
//! - comparisons are unsigned; MASKED_EQ is `(arg & value) == valueTwo`; on 64-bit
//!   architectures all 64 bits are compared, on x86 and x32 (32-bit to libseccomp) the low 32;
//! - SCMP_ACT_ERRNO and SCMP_ACT_TRACE return errnoRet, EPERM by default.
//!
//! Not done: libseccomp also turns x86 rules on the socket and SysV IPC calls into checks
//! on the `socketcall`/`ipc` multiplexers' first argument; here `socketcall` and `ipc` are
//! only what the profile says of them by name (Docker's and podman's profiles name them).
//! Other architectures than x86 have no tables (berth builds for x86_64).

mod bpf;
pub mod notify;
mod syscalls;

use crate::error::{Error, Result};
use berth_spec::Seccomp;
use bpf::{Builder, Target, AND_K, JEQ, JGE, JGT, LD_W_ABS};
use std::collections::BTreeMap;
use std::os::fd::{FromRawFd, OwnedFd};

// SECCOMP_RET_* (linux/seccomp.h)
pub const RET_KILL_PROCESS: u32 = 0x8000_0000;
pub const RET_KILL_THREAD: u32 = 0x0000_0000;
pub const RET_TRAP: u32 = 0x0003_0000;
pub const RET_ERRNO: u32 = 0x0005_0000;
pub const RET_USER_NOTIF: u32 = 0x7fc0_0000;
pub const RET_TRACE: u32 = 0x7ff0_0000;
pub const RET_LOG: u32 = 0x7ffc_0000;
pub const RET_ALLOW: u32 = 0x7fff_0000;
const RET_ACTION_FULL: u32 = 0xffff_0000;

// seccomp(2) operations and SECCOMP_FILTER_FLAG_*.
const SECCOMP_SET_MODE_FILTER: libc::c_ulong = 1;
const FLAG_TSYNC: u32 = 1 << 0;
const FLAG_LOG: u32 = 1 << 1;
const FLAG_SPEC_ALLOW: u32 = 1 << 2;
const FLAG_NEW_LISTENER: u32 = 1 << 3;
const FLAG_TSYNC_ESRCH: u32 = 1 << 4;
const FLAG_WAIT_KILLABLE_RECV: u32 = 1 << 5;

/// The flags a profile may ask for (runc's list).
const FLAGS: &[(&str, u32)] = &[
    ("SECCOMP_FILTER_FLAG_TSYNC", FLAG_TSYNC),
    ("SECCOMP_FILTER_FLAG_LOG", FLAG_LOG),
    ("SECCOMP_FILTER_FLAG_SPEC_ALLOW", FLAG_SPEC_ALLOW),
    ("SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV", FLAG_WAIT_KILLABLE_RECV),
];

pub const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
pub const AUDIT_ARCH_I386: u32 = 0x4000_0003;
pub const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// Every SCMP_ARCH_* libseccomp knows. Only the x86 family can reach the filter on the
/// hosts berth builds for; the others are accepted and have nothing to filter.
const ARCHES: &[&str] = &[
    "SCMP_ARCH_X86",
    "SCMP_ARCH_X86_64",
    "SCMP_ARCH_X32",
    "SCMP_ARCH_ARM",
    "SCMP_ARCH_AARCH64",
    "SCMP_ARCH_MIPS",
    "SCMP_ARCH_MIPS64",
    "SCMP_ARCH_MIPS64N32",
    "SCMP_ARCH_MIPSEL",
    "SCMP_ARCH_MIPSEL64",
    "SCMP_ARCH_MIPSEL64N32",
    "SCMP_ARCH_PPC",
    "SCMP_ARCH_PPC64",
    "SCMP_ARCH_PPC64LE",
    "SCMP_ARCH_S390",
    "SCMP_ARCH_S390X",
    "SCMP_ARCH_PARISC",
    "SCMP_ARCH_PARISC64",
    "SCMP_ARCH_RISCV64",
    "SCMP_ARCH_LOONGARCH64",
    "SCMP_ARCH_M68K",
    "SCMP_ARCH_SH",
    "SCMP_ARCH_SHEB",
];

/// The syscall ABIs of an x86 host, each with its own numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Abi {
    X86_64,
    X86,
    X32,
}

impl Abi {
    fn from_name(name: &str) -> Option<Abi> {
        match name {
            "SCMP_ARCH_X86_64" => Some(Abi::X86_64),
            "SCMP_ARCH_X86" => Some(Abi::X86),
            "SCMP_ARCH_X32" => Some(Abi::X32),
            _ => None,
        }
    }
    fn table(self) -> &'static [(&'static str, u32)] {
        match self {
            Abi::X86_64 => syscalls::X86_64,
            Abi::X86 => syscalls::X86,
            Abi::X32 => syscalls::X32,
        }
    }
    /// Whether libseccomp compares all 64 bits of an argument (x32 counts as 32-bit).
    fn args64(self) -> bool {
        self == Abi::X86_64
    }
    fn nr(self, name: &str) -> Option<u32> {
        let t = self.table();
        t.binary_search_by(|(n, _)| (*n).cmp(name)).ok().map(|i| t[i].1)
    }
}

/// The architecture berth runs on, always filtered (as libseccomp always adds it).
fn native() -> Option<Abi> {
    if cfg!(target_arch = "x86_64") {
        Some(Abi::X86_64)
    } else if cfg!(target_arch = "x86") {
        Some(Abi::X86)
    } else {
        None
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Ne,
    Lt,
    Le,
    Eq,
    Ge,
    Gt,
    MaskedEq,
}

impl Op {
    fn from_name(name: &str) -> Option<Op> {
        Some(match name {
            "SCMP_CMP_NE" => Op::Ne,
            "SCMP_CMP_LT" => Op::Lt,
            "SCMP_CMP_LE" => Op::Le,
            "SCMP_CMP_EQ" => Op::Eq,
            "SCMP_CMP_GE" => Op::Ge,
            "SCMP_CMP_GT" => Op::Gt,
            "SCMP_CMP_MASKED_EQ" => Op::MaskedEq,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Cond {
    index: u32,
    op: Op,
    value: u64,
    value_two: u64,
}

impl Cond {
    /// What the compiled check decides, for the tests' reference evaluator.
    #[cfg(test)]
    fn matches(&self, arg: u64, args64: bool) -> bool {
        let (a, v, v2) = if args64 { (arg, self.value, self.value_two) } else { (arg & 0xffff_ffff, self.value & 0xffff_ffff, self.value_two & 0xffff_ffff) };
        match self.op {
            Op::Ne => a != v,
            Op::Lt => a < v,
            Op::Le => a <= v,
            Op::Eq => a == v,
            Op::Ge => a >= v,
            Op::Gt => a > v,
            Op::MaskedEq => a & v == v2,
        }
    }
}

struct Rule<'a> {
    names: &'a [String],
    action: u32,
    /// Alternatives, ORed; each a list of conditions, ANDed. Empty: unconditional.
    alts: Vec<Vec<Cond>>,
}

/// A checked profile, ready to compile.
struct Profile<'a> {
    default: u32,
    /// The ABIs the filter accepts: the native one, then the listed ones.
    abis: Vec<Abi>,
    /// The ABIs the profile lists by name (those get the ENOSYS treatment).
    listed: Vec<Abi>,
    flags: u32,
    notify: bool,
    rules: Vec<Rule<'a>>,
}

/// The SECCOMP_RET_* value of an OCI action.
fn action(name: &str, errno: Option<u32>, field: &str) -> Result<u32> {
    let data = || -> Result<u32> {
        match errno {
            None => Ok(libc::EPERM as u32),
            Some(e) if e <= 0xffff => Ok(e),
            Some(e) => Err(Error::new(format!("{field}: errnoRet {e} is out of range (at most 65535)"))),
        }
    };
    Ok(match name {
        "SCMP_ACT_ALLOW" => RET_ALLOW,
        "SCMP_ACT_ERRNO" => RET_ERRNO | data()?,
        "SCMP_ACT_KILL" | "SCMP_ACT_KILL_THREAD" => RET_KILL_THREAD,
        "SCMP_ACT_KILL_PROCESS" => RET_KILL_PROCESS,
        "SCMP_ACT_TRAP" => RET_TRAP,
        "SCMP_ACT_TRACE" => RET_TRACE | data()?,
        "SCMP_ACT_LOG" => RET_LOG,
        "SCMP_ACT_NOTIFY" => RET_USER_NOTIF,
        _ => return Err(Error::new(format!("{field}: unknown action {name:?}"))),
    })
}

fn parse(s: &Seccomp) -> Result<Profile<'_>> {
    let Some(native) = native() else {
        return Err(Error::new("linux.seccomp: berth can compile seccomp filters only for x86 hosts"));
    };
    let default = action(&s.default_action, s.default_errno_ret, "linux.seccomp.defaultAction")?;
    if default == RET_USER_NOTIF {
        // Every syscall, write(2) included, would wait for an agent that cannot be reached yet.
        return Err(Error::new("linux.seccomp.defaultAction: SCMP_ACT_NOTIFY cannot be the default action"));
    }
    let mut abis = vec![native];
    let mut listed = Vec::new();
    for (i, a) in s.architectures.iter().enumerate() {
        if !ARCHES.contains(&a.as_str()) {
            return Err(Error::new(format!("linux.seccomp.architectures[{i}]: unknown architecture {a:?}")));
        }
        if let Some(abi) = Abi::from_name(a) {
            // x86_64 and x32 share a kernel; an i386 host runs neither.
            let runnable = native == Abi::X86_64 || abi == Abi::X86;
            if runnable && !abis.contains(&abi) {
                abis.push(abi);
            }
            if runnable && !listed.contains(&abi) {
                listed.push(abi);
            }
        }
    }
    let mut flags = 0;
    for (i, f) in s.flags.iter().enumerate() {
        match FLAGS.iter().find(|(n, _)| n == f) {
            Some((_, v)) => flags |= v,
            None => return Err(Error::new(format!("linux.seccomp.flags[{i}]: unknown flag {f:?}"))),
        }
    }
    let mut rules = Vec::with_capacity(s.syscalls.len());
    let mut notify = false;
    for (i, r) in s.syscalls.iter().enumerate() {
        let field = format!("linux.seccomp.syscalls[{i}]");
        let act = action(&r.action, r.errno_ret, &format!("{field}.action"))?;
        if r.names.iter().any(|n| n.is_empty()) {
            return Err(Error::new(format!("{field}.names: an empty string is not a syscall name")));
        }
        if act == RET_USER_NOTIF {
            notify = true;
            // The notification could never be answered: the listener fd is sent with write(2).
            if r.names.iter().any(|n| n == "write") {
                return Err(Error::new(format!("{field}.action: SCMP_ACT_NOTIFY cannot be used for the write syscall")));
            }
        }
        let mut conds = Vec::with_capacity(r.args.len());
        for (j, a) in r.args.iter().enumerate() {
            let op = Op::from_name(&a.op).ok_or_else(|| Error::new(format!("{field}.args[{j}].op: unknown operator {:?}", a.op)))?;
            if a.index > 5 {
                return Err(Error::new(format!("{field}.args[{j}].index: {} is out of range (syscalls have arguments 0 to 5)", a.index)));
            }
            conds.push(Cond { index: a.index, op, value: a.value, value_two: a.value_two });
        }
        let repeats = conds.iter().enumerate().any(|(j, c)| conds[..j].iter().any(|d| d.index == c.index));
        let alts = if conds.is_empty() {
            Vec::new()
        } else if repeats {
            conds.into_iter().map(|c| vec![c]).collect()
        } else {
            vec![conds]
        };
        rules.push(Rule { names: &r.names, action: act, alts });
    }
    Ok(Profile { default, abis, listed, flags, notify, rules })
}

/// A compiled profile.
pub struct Filter {
    prog: Vec<libc::sock_filter>,
    flags: u32,
    listener: bool,
}

impl std::fmt::Debug for Filter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Filter({} instructions, flags {:#x}, listener {})", self.prog.len(), self.flags, self.listener)
    }
}

impl Filter {
    /// The program's length in instructions.
    pub fn len(&self) -> usize {
        self.prog.len()
    }
    pub fn is_empty(&self) -> bool {
        self.prog.is_empty()
    }

    /// Whether the profile uses SCMP_ACT_NOTIFY (then [`Filter::load`] returns the listener).
    pub fn has_listener(&self) -> bool {
        self.listener
    }

    /// Loads the filter into the calling thread with seccomp(SECCOMP_SET_MODE_FILTER),
    /// which needs no_new_privs or CAP_SYS_ADMIN. Returns the notification listener fd
    /// (close-on-exec) when the profile uses SCMP_ACT_NOTIFY.
    ///
    /// Makes no allocation: with the filter in place only the syscalls the profile allows
    /// remain, so everything is prepared by [`compile`].
    pub fn load(&self) -> Result<Option<OwnedFd>> {
        let mut flags = self.flags;
        if self.listener {
            flags |= FLAG_NEW_LISTENER;
            if flags & FLAG_TSYNC != 0 {
                // The kernel refuses TSYNC with a listener unless failures are reported as
                // ESRCH (the return value is the fd): libseccomp adds this too.
                flags |= FLAG_TSYNC_ESRCH;
            }
        } else {
            // Meaningless without a listener, and refused by the kernel (EINVAL).
            flags &= !FLAG_WAIT_KILLABLE_RECV;
        }
        let prog = libc::sock_fprog { len: self.prog.len() as libc::c_ushort, filter: self.prog.as_ptr() as *mut libc::sock_filter };
        // SAFETY: seccomp reads `prog`, which points at our live instructions.
        let r = unsafe { libc::syscall(libc::SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags as libc::c_ulong, &prog as *const libc::sock_fprog) };
        if r < 0 {
            let e = std::io::Error::last_os_error();
            let why = match e.raw_os_error() {
                Some(libc::EACCES) => " (the process has neither no_new_privs nor CAP_SYS_ADMIN)".to_string(),
                Some(libc::EINVAL) if flags & !FLAG_NEW_LISTENER != 0 => format!(" (flags {flags:#x} may be unsupported by this kernel)"),
                _ => String::new(),
            };
            return Err(Error::new(format!("unable to init seccomp: load seccomp filter: {}{why}", Error::from(e))));
        }
        if self.listener {
            // SAFETY: with NEW_LISTENER, seccomp returns a new fd that we now own.
            return Ok(Some(unsafe { OwnedFd::from_raw_fd(r as i32) }));
        }
        if r > 0 {
            // TSYNC without a listener: the id of the thread that could not be synchronized.
            return Err(Error::new(format!("unable to init seccomp: thread {r} could not be synchronized to the filter")));
        }
        Ok(None)
    }
}

/// Checks a profile before anything is started: unknown actions, operators,
/// architectures and flags are errors naming the field, as is SCMP_ACT_NOTIFY without a
/// `listenerPath` to hand the listener to (see [`notify`]), and a program over the
/// kernel's size limit.
pub fn validate(s: &Seccomp) -> Result<()> {
    let f = compile(s)?;
    if f.listener && s.listener_path.as_deref().unwrap_or("").is_empty() {
        let i = s.syscalls.iter().position(|r| r.action == "SCMP_ACT_NOTIFY").unwrap_or(0);
        return Err(Error::new(format!("linux.seccomp.syscalls[{i}].action: SCMP_ACT_NOTIFY needs linux.seccomp.listenerPath (the agent's socket)")));
    }
    Ok(())
}

/// Compiles and loads the profile into the calling thread: [`compile`] then
/// [`Filter::load`]. Compile early and load late to run as few syscalls as possible under
/// the filter.
pub fn load(s: &Seccomp) -> Result<Option<OwnedFd>> {
    compile(s)?.load()
}

/// Compiles the profile to a BPF program.
pub fn compile(s: &Seccomp) -> Result<Filter> {
    let p = parse(s)?;
    let prog = program(&p);
    if prog.len() > bpf::MAX_INSNS {
        return Err(Error::new(format!(
            "linux.seccomp: the profile compiles to {} BPF instructions, more than the kernel's limit of {}",
            prog.len(),
            bpf::MAX_INSNS
        )));
    }
    Ok(Filter { prog, flags: p.flags, listener: p.notify })
}

/// What a syscall's number leads to.
#[derive(Debug)]
enum Kind<'a> {
    Uncond(u32),
    /// (conditions ANDed, action), tried in order.
    Conds(Vec<(&'a [Cond], u32)>),
}

/// The profile's decisions for one ABI, by syscall number, and the largest syscall number
/// it names.
fn table<'a>(p: &'a Profile, abi: Abi) -> (BTreeMap<u32, Kind<'a>>, Option<u32>) {
    let mut map: BTreeMap<u32, Kind> = BTreeMap::new();
    let mut max = None;
    for r in &p.rules {
        for name in r.names {
            let Some(nr) = abi.nr(name) else { continue };
            max = max.max(Some(nr));
            if r.action == p.default {
                continue;
            }
            if r.alts.is_empty() {
                if !matches!(map.get(&nr), Some(Kind::Uncond(_))) {
                    map.insert(nr, Kind::Uncond(r.action));
                }
            } else if let Kind::Conds(v) = map.entry(nr).or_insert_with(|| Kind::Conds(Vec::new())) {
                v.extend(r.alts.iter().map(|a| (a.as_slice(), r.action)));
            }
        }
    }
    (map, max)
}

/// Actions after which a syscall runs: refusing newer syscalls with ENOSYS would be wrong.
fn allows(action: u32) -> bool {
    matches!(action & RET_ACTION_FULL, RET_ALLOW | RET_LOG | RET_TRACE)
}

fn program(p: &Profile) -> Vec<libc::sock_filter> {
    let mut b = Builder::new();
    let bad_arch = Target::Ret(RET_KILL_THREAD);
    let has = |a: Abi| p.abis.contains(&a);
    // Built from the end: the i386 section, then x86_64 with x32, then the dispatch.
    let i386 = has(Abi::X86).then(|| {
        let t = section(&mut b, p, Abi::X86);
        b.at(t);
        b.stmt(LD_W_ABS, 0)
    });
    let amd64 = (has(Abi::X86_64) || has(Abi::X32)).then(|| {
        let x32 = if has(Abi::X32) { section(&mut b, p, Abi::X32) } else { bad_arch };
        let x64 = if has(Abi::X86_64) { section(&mut b, p, Abi::X86_64) } else { bad_arch };
        b.jump(JGE, X32_SYSCALL_BIT, x32, x64);
        b.stmt(LD_W_ABS, 0)
    });
    let mut arches = vec![(AUDIT_ARCH_X86_64, amd64), (AUDIT_ARCH_I386, i386)];
    if p.abis[0] == Abi::X86 {
        arches.reverse();
    }
    let mut next = bad_arch;
    for (audit, label) in arches.into_iter().rev() {
        if let Some(l) = label {
            next = Target::Label(b.jump(JEQ, audit, Target::Label(l), next));
        }
    }
    b.at(next);
    b.stmt(LD_W_ABS, 4);
    b.finish()
}

/// One ABI's part, entered with the syscall number in A.
fn section(b: &mut Builder, p: &Profile, abi: Abi) -> Target {
    let (map, max) = table(p, abi);
    let entries: Vec<(u32, Kind)> = map.into_iter().collect();
    let tree = tree(b, &entries, p.default, abi.args64());
    let enosys = p.listed.contains(&abi) && !allows(p.default) && p.default != RET_ERRNO | libc::ENOSYS as u32;
    match max {
        Some(max) if enosys => Target::Label(b.jump(JGT, max, Target::Ret(RET_ERRNO | libc::ENOSYS as u32), tree)),
        _ => tree,
    }
}

/// Syscalls per leaf of the search tree, checked one after the other.
const LEAF: usize = 4;

fn tree(b: &mut Builder, e: &[(u32, Kind)], default: u32, args64: bool) -> Target {
    if e.is_empty() {
        return Target::Ret(default);
    }
    if e.len() <= LEAF {
        // Argument checks first, so that they land right after the leaf's jumps.
        let mut targets: Vec<Target> = e
            .iter()
            .rev()
            .map(|(_, k)| match k {
                Kind::Uncond(a) => Target::Ret(*a),
                Kind::Conds(rules) => Target::Label(block(b, rules, default, args64)),
            })
            .collect();
        targets.reverse();
        let mut next = Target::Ret(default);
        for ((nr, _), t) in e.iter().zip(targets).rev() {
            next = Target::Label(b.jump(JEQ, *nr, t, next));
        }
        return next;
    }
    let mid = e.len() / 2;
    let hi = tree(b, &e[mid..], default, args64);
    let lo = tree(b, &e[..mid], default, args64);
    Target::Label(b.jump(JGE, e[mid].0, hi, lo))
}

/// A syscall's conditional rules: the first whose conditions all hold gives its action.
fn block(b: &mut Builder, rules: &[(&[Cond], u32)], default: u32, args64: bool) -> usize {
    let mut next = Target::Ret(default);
    for (conds, act) in rules.iter().rev() {
        let mut ok = Target::Ret(*act);
        for c in conds.iter().rev() {
            ok = Target::Label(cond(b, c, ok, next, args64));
        }
        next = ok;
    }
    match next {
        Target::Label(l) => l,
        Target::Ret(_) => unreachable!("conditional rules have conditions"),
    }
}

/// One comparison: to `t` if it holds, else to `f`. 64-bit values are compared high word
/// first (seccomp_data is in the host's order: little-endian here).
fn cond(b: &mut Builder, c: &Cond, t: Target, f: Target, args64: bool) -> usize {
    let lo_off = 16 + 8 * c.index;
    let hi_off = lo_off + 4;
    let (vlo, vhi) = (c.value as u32, (c.value >> 32) as u32);
    // `if hi(arg) > vhi goto gt; if hi(arg) == vhi goto low; goto lt`
    let ordered = |b: &mut Builder, low: usize, gt: Target, lt: Target| {
        let m = b.jump(JEQ, vhi, Target::Label(low), lt);
        b.jump(JGT, vhi, gt, Target::Label(m));
        b.stmt(LD_W_ABS, hi_off)
    };
    // `if (lo(arg) <code> k) goto t else f`, preceded by the load.
    let low = |b: &mut Builder, code: u16, k: u32, t: Target, f: Target| {
        b.jump(code, k, t, f);
        b.stmt(LD_W_ABS, lo_off)
    };
    match c.op {
        Op::Eq | Op::Ne => {
            let (t, f) = if c.op == Op::Eq { (t, f) } else { (f, t) };
            let l = low(b, JEQ, vlo, t, f);
            if !args64 {
                return l;
            }
            b.jump(JEQ, vhi, Target::Label(l), f);
            b.stmt(LD_W_ABS, hi_off)
        }
        Op::Gt | Op::Le => {
            let (t, f) = if c.op == Op::Gt { (t, f) } else { (f, t) };
            let l = low(b, JGT, vlo, t, f);
            if !args64 {
                return l;
            }
            ordered(b, l, t, f)
        }
        Op::Ge | Op::Lt => {
            let (t, f) = if c.op == Op::Ge { (t, f) } else { (f, t) };
            let l = low(b, JGE, vlo, t, f);
            if !args64 {
                return l;
            }
            ordered(b, l, t, f)
        }
        Op::MaskedEq => {
            let (mlo, mhi) = (c.value as u32, (c.value >> 32) as u32);
            let (dlo, dhi) = (c.value_two as u32, (c.value_two >> 32) as u32);
            b.jump(JEQ, dlo, t, f);
            b.stmt(AND_K, mlo);
            let l = b.stmt(LD_W_ABS, lo_off);
            if !args64 {
                return l;
            }
            b.jump(JEQ, dhi, Target::Label(l), f);
            b.stmt(AND_K, mhi);
            b.stmt(LD_W_ABS, hi_off)
        }
    }
}

#[cfg(test)]
mod tests;

/// What `berth features` reports of seccomp: exactly what `validate` accepts.
pub fn features() -> serde_json::Value {
    serde_json::json!({
        "enabled": true,
        "actions": ["SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS",
                    "SCMP_ACT_KILL_THREAD", "SCMP_ACT_LOG", "SCMP_ACT_NOTIFY", "SCMP_ACT_TRACE", "SCMP_ACT_TRAP"],
        "operators": ["SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_LE", "SCMP_CMP_LT",
                      "SCMP_CMP_MASKED_EQ", "SCMP_CMP_NE"],
        "archs": ARCHES,
        "knownFlags": FLAGS.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
        "supportedFlags": FLAGS.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
    })
}
