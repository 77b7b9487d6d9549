//! The compiler's semantics, pinned two ways: compiled programs run through a small cBPF
//! interpreter and compared with a direct reading of the profile (on hand-picked and on
//! random profiles and calls), and filters loaded for real in forked children.

use super::*;
use berth_spec::{SyscallArg, SyscallRule};
use serde_json::json;

// ---------------------------------------------------------------- interpreter

struct Data {
    nr: u32,
    arch: u32,
    args: [u64; 6],
}

impl Data {
    fn word(&self, off: u32) -> u32 {
        match off {
            0 => self.nr,
            4 => self.arch,
            8 | 12 => 0, // instruction_pointer
            16..=63 => {
                let a = self.args[((off - 16) / 8) as usize];
                if off.is_multiple_of(8) {
                    a as u32
                } else {
                    (a >> 32) as u32
                }
            }
            _ => panic!("load out of seccomp_data at {off}"),
        }
    }
}

/// Runs a program as the kernel would, checking what its verifier checks on the way:
/// known opcodes, aligned loads within seccomp_data, jumps inside the program. Returns
/// the action and the number of instructions executed.
fn run(prog: &[libc::sock_filter], d: &Data) -> (u32, usize) {
    assert!(!prog.is_empty() && prog.len() <= bpf::MAX_INSNS, "program length {}", prog.len());
    let (mut pc, mut a, mut steps) = (0usize, 0u32, 0usize);
    loop {
        let i = prog.get(pc).unwrap_or_else(|| panic!("fell off the program at {pc}"));
        steps += 1;
        let (jt, jf) = (pc + 1 + i.jt as usize, pc + 1 + i.jf as usize);
        pc = match i.code {
            bpf::LD_W_ABS => {
                assert!(i.k % 4 == 0, "unaligned load at {pc}");
                a = d.word(i.k);
                pc + 1
            }
            bpf::AND_K => {
                a &= i.k;
                pc + 1
            }
            bpf::JA => pc + 1 + i.k as usize,
            bpf::JEQ => {
                if a == i.k {
                    jt
                } else {
                    jf
                }
            }
            bpf::JGT => {
                if a > i.k {
                    jt
                } else {
                    jf
                }
            }
            bpf::JGE => {
                if a >= i.k {
                    jt
                } else {
                    jf
                }
            }
            bpf::RET_K => return (i.k, steps),
            c => panic!("unknown opcode {c:#x} at {pc}"),
        };
    }
}

fn eval(f: &Filter, arch: u32, nr: u32, args: [u64; 6]) -> u32 {
    run(&f.prog, &Data { nr, arch, args }).0
}

// ---------------------------------------------------------------- reference

/// The profile's meaning read directly, as documented at the top of seccomp.rs.
fn reference(s: &Seccomp, arch: u32, nr: u32, args: [u64; 6]) -> u32 {
    let default = action(&s.default_action, s.default_errno_ret, "").unwrap();
    let abi = match arch {
        AUDIT_ARCH_X86_64 if nr >= X32_SYSCALL_BIT => Abi::X32,
        AUDIT_ARCH_X86_64 => Abi::X86_64,
        AUDIT_ARCH_I386 => Abi::X86,
        _ => return RET_KILL_THREAD,
    };
    let listed = s.architectures.iter().any(|a| Abi::from_name(a) == Some(abi));
    if abi != Abi::X86_64 && !listed {
        return RET_KILL_THREAD;
    }
    let named = |r: &SyscallRule| r.names.iter().any(|n| abi.nr(n) == Some(nr));
    let max = s.syscalls.iter().flat_map(|r| r.names.iter()).filter_map(|n| abi.nr(n)).max();
    let enosys = RET_ERRNO | libc::ENOSYS as u32;
    if listed && !allows(default) && default != enosys && max.is_some_and(|m| nr > m) {
        return enosys;
    }
    let rules: Vec<(&SyscallRule, u32)> =
        s.syscalls.iter().map(|r| (r, action(&r.action, r.errno_ret, "").unwrap())).filter(|(r, a)| *a != default && named(r)).collect();
    if let Some((_, a)) = rules.iter().find(|(r, _)| r.args.is_empty()) {
        return *a;
    }
    let holds = |c: &SyscallArg| {
        let cond = Cond { index: c.index, op: Op::from_name(&c.op).unwrap(), value: c.value, value_two: c.value_two };
        cond.matches(args[c.index as usize], abi.args64())
    };
    for (r, a) in &rules {
        let repeats = r.args.iter().enumerate().any(|(j, c)| r.args[..j].iter().any(|d| d.index == c.index));
        let hit = if repeats { r.args.iter().any(holds) } else { r.args.iter().all(holds) };
        if hit {
            return *a;
        }
    }
    default
}

// ---------------------------------------------------------------- helpers

fn profile(v: serde_json::Value) -> Seccomp {
    serde_json::from_value(v).expect("a Seccomp")
}

fn nr64(name: &str) -> u32 {
    Abi::X86_64.nr(name).unwrap()
}

const NOARGS: [u64; 6] = [0; 6];

/// xorshift64*: reproducible randomness without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a, T>(&mut self, v: &'a [T]) -> &'a T {
        &v[self.below(v.len())]
    }
}

const ACTIONS: &[&str] = &[
    "SCMP_ACT_ALLOW",
    "SCMP_ACT_ERRNO",
    "SCMP_ACT_KILL",
    "SCMP_ACT_KILL_PROCESS",
    "SCMP_ACT_KILL_THREAD",
    "SCMP_ACT_TRAP",
    "SCMP_ACT_TRACE",
    "SCMP_ACT_LOG",
    "SCMP_ACT_NOTIFY",
];
const OPS: &[&str] = &["SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE", "SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_MASKED_EQ"];
/// Values around the edges of both 32-bit halves.
const VALUES: &[u64] = &[
    0,
    1,
    2,
    7,
    0xff,
    0x7fff_ffff,
    0x8000_0000,
    0xffff_fffe,
    0xffff_ffff,
    0x1_0000_0000,
    0x1_0000_0001,
    0x2_0000_0000,
    0xffff_ffff_0000_0000,
    u64::MAX - 1,
    u64::MAX,
];
/// Syscall names: common ones, one per ABI only (`_llseek` x86, `arch_prctl` not x86,
/// `rt_sigaction` with its x32 number), and unknown ones.
const NAMES: &[&str] = &[
    "read",
    "write",
    "openat",
    "mkdir",
    "mkdirat",
    "socket",
    "personality",
    "lseek",
    "_llseek",
    "arch_prctl",
    "rt_sigaction",
    "clone3",
    "listns",
    "no_such_syscall",
    "close",
];

fn random_value(rng: &mut Rng) -> u64 {
    match rng.below(3) {
        0 => rng.next(),
        1 => *rng.pick(VALUES) ^ (rng.below(2) as u64),
        _ => *rng.pick(VALUES),
    }
}

fn random_profile(rng: &mut Rng) -> Seccomp {
    let arches: Vec<&str> = ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32", "SCMP_ARCH_AARCH64"].into_iter().filter(|_| rng.below(2) == 0).collect();
    let mut rules = Vec::new();
    for _ in 0..rng.below(8) {
        let names: Vec<&str> = (0..1 + rng.below(3)).map(|_| *rng.pick(NAMES)).collect();
        let args: Vec<serde_json::Value> = (0..[0, 0, 1, 1, 2, 3][rng.below(6)])
            .map(|_| json!({"index": rng.below(3), "value": random_value(rng), "valueTwo": random_value(rng), "op": rng.pick(OPS)}))
            .collect();
        let mut act = *rng.pick(ACTIONS);
        if act == "SCMP_ACT_NOTIFY" && names.contains(&"write") {
            act = "SCMP_ACT_LOG";
        }
        let mut r = json!({"names": names, "action": act, "args": args});
        if rng.below(2) == 0 {
            r["errnoRet"] = json!(rng.below(100));
        }
        rules.push(r);
    }
    let mut p = json!({"defaultAction": rng.pick(ACTIONS), "architectures": arches, "syscalls": rules});
    if p["defaultAction"] == "SCMP_ACT_NOTIFY" {
        p["defaultAction"] = json!("SCMP_ACT_ERRNO");
    }
    if rng.below(3) == 0 {
        p["defaultErrnoRet"] = json!([1, 38, 13][rng.below(3)]);
    }
    profile(p)
}

/// A call to test against: one of the profile's values in each argument, mostly.
fn random_call(rng: &mut Rng, s: &Seccomp) -> (u32, u32, [u64; 6]) {
    let values: Vec<u64> = s.syscalls.iter().flat_map(|r| r.args.iter()).flat_map(|a| [a.value, a.value_two, a.value & a.value_two]).collect();
    let mut args = [0u64; 6];
    for a in args.iter_mut() {
        *a = match rng.below(4) {
            0 => random_value(rng),
            1 if !values.is_empty() => rng.pick(&values).wrapping_add(rng.below(3) as u64).wrapping_sub(1),
            _ if !values.is_empty() => *rng.pick(&values),
            _ => random_value(rng),
        };
    }
    let arch = *rng.pick(&[AUDIT_ARCH_X86_64, AUDIT_ARCH_X86_64, AUDIT_ARCH_I386, 0xc000_00b7]);
    let abi = match arch {
        AUDIT_ARCH_I386 => Abi::X86,
        _ if rng.below(4) == 0 => Abi::X32,
        _ => Abi::X86_64,
    };
    let nr = match rng.below(5) {
        0 => rng.next() as u32,
        1 => abi.nr("read").unwrap() + 1000,
        _ => {
            let name = *rng.pick::<&str>(NAMES);
            abi.nr(name).unwrap_or(3)
        }
    };
    (arch, nr, args)
}

// ---------------------------------------------------------------- tables

#[test]
fn syscall_tables_are_sorted_and_right() {
    for t in [syscalls::X86_64, syscalls::X86, syscalls::X32] {
        assert!(t.windows(2).all(|w| w[0].0 < w[1].0), "table not sorted by name");
        assert!(t.len() > 300);
    }
    assert_eq!(Abi::X86_64.nr("read"), Some(0));
    assert_eq!(Abi::X86_64.nr("mkdir"), Some(83));
    assert_eq!(Abi::X86_64.nr("clone3"), Some(435));
    assert_eq!(Abi::X86_64.nr("fchmodat2"), Some(452));
    assert_eq!(Abi::X86_64.nr("_llseek"), None);
    assert_eq!(Abi::X86.nr("getpid"), Some(20));
    assert_eq!(Abi::X86.nr("_llseek"), Some(140));
    assert_eq!(Abi::X86.nr("arch_prctl"), Some(384));
    assert_eq!(Abi::X32.nr("read"), Some(X32_SYSCALL_BIT));
    assert_eq!(Abi::X32.nr("execve"), Some(X32_SYSCALL_BIT + 520));
    assert_eq!(Abi::X32.nr("fchmodat2"), Some(X32_SYSCALL_BIT + 452));
    assert_eq!(libc::SYS_mkdir as u32, 83);
    assert_eq!(libc::SYS_lseek as u32, nr64("lseek"));
}

// ---------------------------------------------------------------- semantics

#[test]
fn errno_rule_denies_by_name_and_the_rest_gets_the_default() {
    let s = profile(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1},
        {"names": ["rmdir"], "action": "SCMP_ACT_ERRNO"},
        {"names": ["no_such_syscall"], "action": "SCMP_ACT_KILL"},
    ]}));
    let f = compile(&s).unwrap();
    assert_eq!(eval(&f, AUDIT_ARCH_X86_64, nr64("mkdir"), NOARGS), RET_ERRNO | 1);
    assert_eq!(eval(&f, AUDIT_ARCH_X86_64, nr64("mkdirat"), NOARGS), RET_ERRNO | 1);
    assert_eq!(eval(&f, AUDIT_ARCH_X86_64, nr64("rmdir"), NOARGS), RET_ERRNO | libc::EPERM as u32);
    assert_eq!(eval(&f, AUDIT_ARCH_X86_64, nr64("read"), NOARGS), RET_ALLOW);
    // Not listed: x86 and x32 calls get the bad-arch action; so do foreign archs.
    assert_eq!(eval(&f, AUDIT_ARCH_I386, 3, NOARGS), RET_KILL_THREAD);
    assert_eq!(eval(&f, AUDIT_ARCH_X86_64, X32_SYSCALL_BIT, NOARGS), RET_KILL_THREAD);
    assert_eq!(eval(&f, 0xc000_00b7, 63, NOARGS), RET_KILL_THREAD);
}

#[test]
fn every_action_has_its_kernel_value() {
    let names = ["read", "write", "openat", "mkdir", "mkdirat", "socket", "personality", "lseek", "close"];
    let rules: Vec<_> = ACTIONS.iter().zip(names).map(|(a, n)| json!({"names": [n], "action": a, "errnoRet": 7})).collect();
    let s = profile(json!({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": rules}));
    let f = compile(&s).unwrap();
    let want = [RET_ALLOW, RET_ERRNO | 7, RET_KILL_THREAD, RET_KILL_PROCESS, RET_KILL_THREAD, RET_TRAP, RET_TRACE | 7, RET_LOG, RET_USER_NOTIF];
    for ((n, w), a) in names.iter().zip(want).zip(ACTIONS) {
        assert_eq!(eval(&f, AUDIT_ARCH_X86_64, nr64(n), NOARGS), w, "{a}");
    }
    assert!(f.has_listener());
    assert_eq!(eval(&f, AUDIT_ARCH_X86_64, nr64("getpid"), NOARGS), RET_ERRNO | 1, "default ERRNO is EPERM");
    let s = profile(json!({"defaultAction": "SCMP_ACT_TRACE", "defaultErrnoRet": 99}));
    assert_eq!(eval(&compile(&s).unwrap(), AUDIT_ARCH_X86_64, 0, NOARGS), RET_TRACE | 99);
}

#[test]
fn argument_checks_and_or_like_libseccomp() {
    let s = profile(json!({"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_X86_64"], "defaultErrnoRet": 38, "syscalls": [
        {"names": ["personality"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 0xffff_ffffu64, "op": "SCMP_CMP_EQ"}]},
        {"names": ["personality"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]},
        // podman's socket rules: ANDed conditions first, then alternatives.
        {"names": ["socket"], "action": "SCMP_ACT_ERRNO", "errnoRet": 22, "args": [
            {"index": 0, "value": 16, "op": "SCMP_CMP_EQ"}, {"index": 2, "value": 9, "op": "SCMP_CMP_EQ"}]},
        {"names": ["socket"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 2, "value": 9, "op": "SCMP_CMP_NE"}]},
        {"names": ["socket"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 16, "op": "SCMP_CMP_NE"}]},
        // Two conditions on one argument: ORed (runc).
        {"names": ["kill"], "action": "SCMP_ACT_ALLOW", "args": [
            {"index": 1, "value": 9, "op": "SCMP_CMP_EQ"}, {"index": 1, "value": 15, "op": "SCMP_CMP_EQ"}]},
        // An unconditional rule overrides conditional ones, before or after it.
        {"names": ["close"], "action": "SCMP_ACT_LOG", "args": [{"index": 0, "value": 3, "op": "SCMP_CMP_EQ"}]},
        {"names": ["close"], "action": "SCMP_ACT_ALLOW"},
        {"names": ["close"], "action": "SCMP_ACT_KILL"},
    ]}));
    let f = compile(&s).unwrap();
    let call = |name: &str, args: [u64; 6]| eval(&f, AUDIT_ARCH_X86_64, nr64(name), args);
    let enosys = RET_ERRNO | 38;
    assert_eq!(call("personality", [0xffff_ffff, 0, 0, 0, 0, 0]), RET_ALLOW);
    assert_eq!(call("personality", [8, 0, 0, 0, 0, 0]), RET_ALLOW);
    assert_eq!(call("personality", [0x1_ffff_ffff, 0, 0, 0, 0, 0]), enosys, "64-bit compare");
    assert_eq!(call("personality", [0, 0, 0, 0, 0, 0]), enosys);
    assert_eq!(call("socket", [16, 3, 9, 0, 0, 0]), RET_ERRNO | 22);
    assert_eq!(call("socket", [16, 3, 0, 0, 0, 0]), RET_ALLOW);
    assert_eq!(call("socket", [2, 1, 9, 0, 0, 0]), RET_ALLOW);
    assert_eq!(call("kill", [1, 9, 0, 0, 0, 0]), RET_ALLOW);
    assert_eq!(call("kill", [1, 15, 0, 0, 0, 0]), RET_ALLOW);
    assert_eq!(call("kill", [1, 2, 0, 0, 0, 0]), enosys);
    assert_eq!(call("close", [3, 0, 0, 0, 0, 0]), RET_ALLOW);
    assert_eq!(call("close", [4, 0, 0, 0, 0, 0]), RET_ALLOW);
}

#[test]
fn every_operator_compares_unsigned_64_bit_values() {
    let v: u64 = 0x1_0000_0005;
    for op in OPS {
        let s = profile(json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"], "syscalls": [
            {"names": ["lseek", "_llseek"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 1, "value": v, "valueTwo": 0x5, "op": op}]},
        ]}));
        let f = compile(&s).unwrap();
        for &a in VALUES.iter().chain(&[v - 1, v, v + 1, 5, 4, 6, 0x2_0000_0005, 0x5_0000_0000]) {
            let args = [0, a, 0, 0, 0, 0];
            let want =
                |args64| if (Cond { index: 1, op: Op::from_name(op).unwrap(), value: v, value_two: 5 }).matches(a, args64) { RET_ERRNO | 1 } else { RET_ALLOW };
            assert_eq!(eval(&f, AUDIT_ARCH_X86_64, nr64("lseek"), args), want(true), "{op} {a:#x} on x86_64");
            assert_eq!(eval(&f, AUDIT_ARCH_I386, 140, args), want(false), "{op} {a:#x} on x86");
        }
    }
    // Spot checks of the reference itself.
    let c = |op, value, value_two| Cond { index: 0, op, value, value_two };
    assert!(c(Op::Gt, 0xffff_ffff, 0).matches(0x1_0000_0000, true));
    assert!(!c(Op::Gt, 0xffff_ffff, 0).matches(0x1_0000_0000, false));
    assert!(c(Op::Lt, 1, 0).matches(0, true) && !c(Op::Lt, 1, 0).matches(u64::MAX, true));
    assert!(c(Op::MaskedEq, 0xff00, 0x1200).matches(0xab12cd, true));
}

#[test]
fn architectures_select_tables_and_the_x32_bit() {
    let s = profile(
        json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32", "SCMP_ARCH_AARCH64"], "syscalls": [
            {"names": ["getpid", "_llseek", "rt_sigaction"], "action": "SCMP_ACT_ERRNO", "errnoRet": 5},
        ]}),
    );
    let f = compile(&s).unwrap();
    assert_eq!(eval(&f, AUDIT_ARCH_X86_64, 39, NOARGS), RET_ERRNO | 5, "x86_64 getpid");
    assert_eq!(eval(&f, AUDIT_ARCH_I386, 20, NOARGS), RET_ERRNO | 5, "x86 getpid");
    assert_eq!(eval(&f, AUDIT_ARCH_I386, 140, NOARGS), RET_ERRNO | 5, "x86 _llseek");
    assert_eq!(eval(&f, AUDIT_ARCH_I386, 39, NOARGS), RET_ALLOW, "39 is umask on x86");
    assert_eq!(eval(&f, AUDIT_ARCH_X86_64, 13, NOARGS), RET_ERRNO | 5, "x86_64 rt_sigaction");
    assert_eq!(eval(&f, AUDIT_ARCH_X86_64, X32_SYSCALL_BIT + 512, NOARGS), RET_ERRNO | 5, "x32 rt_sigaction");
    assert_eq!(eval(&f, AUDIT_ARCH_X86_64, X32_SYSCALL_BIT + 13, NOARGS), RET_ALLOW, "x32 has no 13");
    assert_eq!(eval(&f, AUDIT_ARCH_X86_64, X32_SYSCALL_BIT + 39, NOARGS), RET_ERRNO | 5, "x32 getpid");
    assert_eq!(eval(&f, 0xc000_00b7, 172, NOARGS), RET_KILL_THREAD, "aarch64 never reaches an x86 filter");
}

#[test]
fn newer_syscalls_than_the_profile_knows_get_enosys() {
    let s = profile(json!({"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"], "syscalls": [
        {"names": ["read", "write", "openat2"], "action": "SCMP_ACT_ALLOW"},
    ]}));
    let f = compile(&s).unwrap();
    assert_eq!(eval(&f, AUDIT_ARCH_X86_64, nr64("openat2"), NOARGS), RET_ALLOW);
    assert_eq!(eval(&f, AUDIT_ARCH_X86_64, nr64("close"), NOARGS), RET_ERRNO | 1);
    assert_eq!(eval(&f, AUDIT_ARCH_X86_64, nr64("faccessat2"), NOARGS), RET_ERRNO | libc::ENOSYS as u32);
    assert_eq!(eval(&f, AUDIT_ARCH_I386, 500, NOARGS), RET_ERRNO | libc::ENOSYS as u32);
    // Not when the default lets calls through, nor when it already is ENOSYS.
    for d in [json!({"defaultAction": "SCMP_ACT_LOG"}), json!({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38})] {
        let mut p = json!({"architectures": ["SCMP_ARCH_X86_64"], "syscalls": [{"names": ["read"], "action": "SCMP_ACT_KILL"}]});
        p.as_object_mut().unwrap().extend(d.as_object().unwrap().clone());
        let s = profile(p);
        let want = action(&s.default_action, s.default_errno_ret, "").unwrap();
        assert_eq!(eval(&compile(&s).unwrap(), AUDIT_ARCH_X86_64, 440, NOARGS), want);
    }
}

#[test]
fn rules_with_the_default_action_are_skipped() {
    let s = profile(json!({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
        {"names": ["read"], "action": "SCMP_ACT_ERRNO"},
        {"names": ["read"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"}]},
    ]}));
    let f = compile(&s).unwrap();
    assert_eq!(eval(&f, AUDIT_ARCH_X86_64, 0, [0, 0, 0, 0, 0, 0]), RET_ALLOW);
    assert_eq!(eval(&f, AUDIT_ARCH_X86_64, 0, [1, 0, 0, 0, 0, 0]), RET_ERRNO | 1);
}

#[test]
fn random_profiles_compile_to_their_meaning() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for case in 0..3000 {
        let s = random_profile(&mut rng);
        let f = compile(&s).unwrap_or_else(|e| panic!("case {case}: {e}\n{s:#?}"));
        for _ in 0..60 {
            let (arch, nr, args) = random_call(&mut rng, &s);
            let got = eval(&f, arch, nr, args);
            let want = reference(&s, arch, nr, args);
            assert_eq!(got, want, "case {case}: arch {arch:#x} nr {nr:#x} args {args:x?}\n{}", serde_json::to_string_pretty(&s).unwrap());
        }
    }
}

/// Hundreds of syscalls with argument checks: jumps past 255 instructions need
/// trampolines, and the result must still mean the profile.
#[test]
fn long_programs_use_trampolines_and_stay_right() {
    let names: Vec<&str> = syscalls::X86_64.iter().map(|(n, _)| *n).step_by(2).take(60).collect();
    let rules: Vec<_> = names
        .iter()
        .enumerate()
        .map(|(i, n)| {
            json!({"names": [n], "action": "SCMP_ACT_ERRNO", "errnoRet": i, "args": [
            {"index": 0, "value": i, "op": "SCMP_CMP_GE"}, {"index": 1, "value": 0xff00, "valueTwo": (i as u64) << 8, "op": "SCMP_CMP_MASKED_EQ"}]})
        })
        .chain(std::iter::once(json!({"names": names, "action": "SCMP_ACT_LOG", "args": [{"index": 2, "value": 0, "op": "SCMP_CMP_NE"}]})))
        .collect();
    let s = profile(json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"], "syscalls": rules}));
    let f = compile(&s).unwrap();
    assert!(f.len() > 1000, "{} instructions", f.len());
    assert!(f.prog.iter().any(|i| i.code == bpf::JA), "no trampoline in a long program");
    let mut rng = Rng(42);
    for _ in 0..20000 {
        let (arch, nr, mut args) = random_call(&mut rng, &s);
        let name = *rng.pick::<&str>(&names);
        let nr = if rng.below(2) == 0 { Abi::X86_64.nr(name).unwrap() } else { nr };
        if rng.below(2) == 0 {
            args[0] = rng.below(70) as u64;
            args[1] = (rng.below(70) as u64) << 8 | rng.below(2) as u64;
            args[2] = rng.below(2) as u64;
        }
        assert_eq!(eval(&f, arch, nr, args), reference(&s, arch, nr, args), "arch {arch:#x} nr {nr} args {args:x?}");
    }
}

#[test]
fn too_large_profiles_are_refused_by_size() {
    let rules: Vec<_> = syscalls::X86_64
        .iter()
        .map(|(n, _)| {
            json!({"names": [n], "action": "SCMP_ACT_ERRNO", "args": [
            {"index": 0, "value": 1, "op": "SCMP_CMP_GE"}, {"index": 1, "value": 1, "op": "SCMP_CMP_LE"}, {"index": 2, "value": 1, "op": "SCMP_CMP_NE"}]})
        })
        .collect();
    let s = profile(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": rules}));
    let e = compile(&s).unwrap_err().to_string();
    assert!(e.contains("more than the kernel's limit of 4096"), "{e}");
}

/// podman's default profile (Docker's format), turned into the OCI form podman passes to
/// runtimes, for a container with `caps`.
pub(crate) fn podman_default_profile(caps: &[&str]) -> Option<Seccomp> {
    let text = std::fs::read_to_string("/usr/share/containers/seccomp.json").ok()?;
    let d: serde_json::Value = serde_json::from_str(&text).ok()?;
    let arches: Vec<serde_json::Value> = d["archMap"]
        .as_array()?
        .iter()
        .filter(|m| m["architecture"] == "SCMP_ARCH_X86_64")
        .flat_map(|m| std::iter::once(m["architecture"].clone()).chain(m["subArchitectures"].as_array().cloned().unwrap_or_default()))
        .collect();
    let strs =
        |v: &serde_json::Value| -> Vec<String> { v.as_array().map(|a| a.iter().filter_map(|x| x.as_str().map(String::from)).collect()).unwrap_or_default() };
    let mut rules = Vec::new();
    for r in d["syscalls"].as_array()? {
        let (inc_caps, inc_arches) = (strs(&r["includes"]["caps"]), strs(&r["includes"]["arches"]));
        let (exc_caps, exc_arches) = (strs(&r["excludes"]["caps"]), strs(&r["excludes"]["arches"]));
        if !inc_caps.iter().all(|c| caps.contains(&c.as_str())) || (!inc_arches.is_empty() && !inc_arches.iter().any(|a| a == "amd64")) {
            continue;
        }
        if exc_caps.iter().any(|c| caps.contains(&c.as_str())) || exc_arches.iter().any(|a| a == "amd64") {
            continue;
        }
        let mut o = json!({"names": r["names"], "action": r["action"]});
        for k in ["errnoRet", "args"] {
            if !r[k].is_null() {
                o[k] = r[k].clone();
            }
        }
        rules.push(o);
    }
    let mut p = json!({"defaultAction": d["defaultAction"], "architectures": arches, "syscalls": rules});
    if !d["defaultErrnoRet"].is_null() {
        p["defaultErrnoRet"] = d["defaultErrnoRet"].clone();
    }
    Some(profile(p))
}

#[test]
fn podmans_default_profile_compiles_small_and_quick() {
    let Some(s) = podman_default_profile(&["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]) else {
        eprintln!("skipped: no /usr/share/containers/seccomp.json (containers-common)");
        return;
    };
    let f = compile(&s).unwrap();
    let x86_64: Vec<u32> = s.syscalls.iter().flat_map(|r| r.names.iter()).filter_map(|n| Abi::X86_64.nr(n)).collect();
    assert!(x86_64.len() > 300, "{} syscalls", x86_64.len());
    // A linear chain would be 300+ instructions per call; the tree takes a handful.
    let mut worst = 0;
    for &nr in &x86_64 {
        let (_, steps) = run(&f.prog, &Data { nr, arch: AUDIT_ARCH_X86_64, args: NOARGS });
        worst = worst.max(steps);
    }
    eprintln!("podman profile: {} instructions, at most {worst} run per call", f.len());
    assert!(worst < 40, "{worst} instructions for the slowest call");
    assert!(f.len() < 2000, "{} instructions", f.len());
    assert_eq!(eval(&f, AUDIT_ARCH_X86_64, nr64("read"), NOARGS), RET_ALLOW);
    assert_eq!(eval(&f, AUDIT_ARCH_X86_64, nr64("personality"), [8, 0, 0, 0, 0, 0]), RET_ALLOW);
    assert_eq!(eval(&f, AUDIT_ARCH_X86_64, nr64("personality"), [3, 0, 0, 0, 0, 0]), RET_ERRNO | 38);
    assert_eq!(eval(&f, AUDIT_ARCH_X86_64, nr64("bpf"), NOARGS), RET_ERRNO | 1);
    assert_eq!(eval(&f, AUDIT_ARCH_X86_64, nr64("kexec_load"), NOARGS), RET_ERRNO | 1);
    assert_eq!(eval(&f, AUDIT_ARCH_X86_64, nr64("add_key"), NOARGS), RET_ERRNO | 38, "not in the profile");
    assert_eq!(eval(&f, AUDIT_ARCH_I386, 3, NOARGS), RET_ALLOW, "x86 read");
    let mut rng = Rng(7);
    for _ in 0..5000 {
        let (arch, nr, args) = random_call(&mut rng, &s);
        let nr = if rng.below(2) == 0 { *rng.pick(&x86_64) } else { nr };
        assert_eq!(eval(&f, arch, nr, args), reference(&s, arch, nr, args));
    }
}

// ---------------------------------------------------------------- validation

#[test]
fn bad_names_are_refused_by_field() {
    let bad = |p: serde_json::Value, words: &str| {
        let e = validate(&profile(p)).unwrap_err().to_string();
        assert!(e.contains(words), "{e:?} does not say {words:?}");
    };
    bad(json!({"defaultAction": "SCMP_ACT_NOPE"}), r#"linux.seccomp.defaultAction: unknown action "SCMP_ACT_NOPE""#);
    bad(
        json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_Z80"]}),
        r#"linux.seccomp.architectures[1]: unknown architecture "SCMP_ARCH_Z80""#,
    );
    bad(
        json!({"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_NOPE"]}),
        r#"linux.seccomp.flags[0]: unknown flag "SECCOMP_FILTER_FLAG_NOPE""#,
    );
    bad(
        json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_LOG"}, {"names": ["read"], "action": "SCMP_ACT_ERRNO"}, {"names": ["read"], "action": "SCMP_ACT_LOG"}, {"names": ["read"], "action": "X"}]}),
        r#"linux.seccomp.syscalls[3].action: unknown action "X""#,
    );
    bad(
        json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}, {"index": 0, "value": 1, "op": "SCMP_CMP_SIMILAR"}]}]}),
        r#"linux.seccomp.syscalls[0].args[1].op: unknown operator "SCMP_CMP_SIMILAR""#,
    );
    bad(
        json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}]}),
        "linux.seccomp.syscalls[0].args[0].index: 6 is out of range",
    );
    bad(json!({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 70000}), "linux.seccomp.defaultAction: errnoRet 70000 is out of range");
    bad(
        json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": [""], "action": "SCMP_ACT_ERRNO"}]}),
        "linux.seccomp.syscalls[0].names: an empty string",
    );
    bad(json!({"defaultAction": "SCMP_ACT_NOTIFY"}), "linux.seccomp.defaultAction: SCMP_ACT_NOTIFY cannot be the default action");
    bad(
        json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["write"], "action": "SCMP_ACT_NOTIFY"}]}),
        "SCMP_ACT_NOTIFY cannot be used for the write syscall",
    );
    bad(
        json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_LOG"}, {"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]}),
        "linux.seccomp.syscalls[1].action: SCMP_ACT_NOTIFY needs linux.seccomp.listenerPath",
    );
    // Unknown syscall names are not errors; flags and foreign architectures are fine.
    validate(&profile(json!({"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"],
        "architectures": ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM", "SCMP_ARCH_S390X"], "syscalls": [{"names": ["no_such_syscall", "read"], "action": "SCMP_ACT_KILL_PROCESS"}]}))).unwrap();
}

// ---------------------------------------------------------------- loaded for real

enum Exit {
    Code(i32),
    Signal(i32),
}

/// Forks; the child sets no_new_privs, loads `f` and exits with what `body` returns
/// (99 if the filter could not be loaded). Only raw syscalls happen after the load.
fn in_child(f: &Filter, body: impl FnOnce(Option<OwnedFd>) -> i32) -> Exit {
    // SAFETY: the child only makes syscalls (and, for the notify test, a small sendmsg)
    // before _exit; glibc's malloc is fork-safe.
    unsafe {
        let pid = libc::fork();
        assert!(pid >= 0, "fork");
        if pid == 0 {
            let code = if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
                98
            } else {
                match f.load() {
                    Ok(listener) => body(listener),
                    Err(_) => 99,
                }
            };
            libc::_exit(code);
        }
        let mut st = 0;
        assert_eq!(libc::waitpid(pid, &mut st, 0), pid);
        if libc::WIFEXITED(st) {
            Exit::Code(libc::WEXITSTATUS(st))
        } else {
            Exit::Signal(libc::WTERMSIG(st))
        }
    }
}

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

#[test]
fn loaded_errno_rule_denies_mkdir() {
    let f = compile(&profile(json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_AARCH64"],
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]})))
    .unwrap();
    // A path where mkdir would fail otherwise with ENOENT, so nothing is made on the host.
    let r = in_child(&f, |_| {
        // SAFETY: a NUL-terminated path.
        let rc = unsafe { libc::mkdir(c"/nonexistent-berth-test/x".as_ptr(), 0o700) };
        if rc == -1 {
            errno()
        } else {
            0
        }
    });
    assert!(matches!(r, Exit::Code(libc::EPERM)), "mkdir was not denied with EPERM");
    let r = in_child(&f, |_| {
        // SAFETY: a NUL-terminated path.
        let rc = unsafe { libc::rmdir(c"/nonexistent-berth-test/x".as_ptr()) };
        if rc == -1 {
            errno()
        } else {
            0
        }
    });
    assert!(matches!(r, Exit::Code(libc::ENOENT)), "rmdir should reach the kernel");
}

#[test]
fn loaded_argument_checks_match_the_interpreter() {
    // lseek(-1, offset, whence) fails with EBADF when it reaches the kernel; the filter
    // returns 77 when its check on the 64-bit offset holds.
    let v: u64 = 0x1_0000_0005;
    // Eight of them: one bit each in the exit status.
    let offsets = [0u64, 5, 0xffff_ffff, 0x1_0000_0004, v, 0x1_0000_0006, 0x2_0000_0000, 0x8000_0000_0000_0005];
    for op in OPS {
        let s = profile(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["lseek"], "action": "SCMP_ACT_ERRNO", "errnoRet": 77, "args": [{"index": 1, "value": v, "valueTwo": 5, "op": op}]}]}));
        let f = compile(&s).unwrap();
        let r = in_child(&f, |_| {
            let mut bits = 0;
            for (i, off) in offsets.iter().enumerate() {
                // SAFETY: lseek on an invalid fd.
                let rc = unsafe { libc::syscall(libc::SYS_lseek, -1, *off as i64, 0) };
                if rc == -1 && errno() == 77 {
                    bits |= 1 << i;
                }
            }
            bits
        });
        let want = offsets
            .iter()
            .enumerate()
            .filter(|(_, o)| eval(&f, AUDIT_ARCH_X86_64, nr64("lseek"), [0, **o, 0, 0, 0, 0]) != RET_ALLOW)
            .fold(0, |b, (i, _)| b | 1 << i);
        match r {
            Exit::Code(got) => assert_eq!(got, want, "{op}: kernel and interpreter disagree"),
            Exit::Signal(s) => panic!("{op}: child killed by {s}"),
        }
    }
}

#[test]
fn loaded_socket_rule_by_family() {
    let f = compile(&profile(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["socket"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13, "args": [{"index": 0, "value": libc::AF_UNIX, "op": "SCMP_CMP_EQ"}]}]})))
    .unwrap();
    let r = in_child(&f, |_| {
        // SAFETY: socket with integer arguments; the fds are left to _exit.
        let unix = unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_STREAM, 0) };
        let unix_err = errno();
        let inet = unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0) };
        if unix == -1 && unix_err == libc::EACCES && inet >= 0 {
            0
        } else {
            1
        }
    });
    assert!(matches!(r, Exit::Code(0)), "AF_UNIX should be denied and AF_INET allowed");
}

#[test]
fn loaded_kill_trap_log_and_trace_actions() {
    let with = |act: &str| {
        compile(&profile(
            json!({"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_TSYNC"],
        "syscalls": [{"names": ["getppid"], "action": act}]}),
        ))
        .unwrap()
    };
    let call = |_: Option<OwnedFd>| {
        // SAFETY: getppid has no arguments.
        let r = unsafe { libc::syscall(libc::SYS_getppid) };
        if r == -1 {
            errno()
        } else {
            0
        }
    };
    for act in ["SCMP_ACT_KILL", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_TRAP"] {
        let r = in_child(&with(act), call);
        assert!(matches!(r, Exit::Signal(libc::SIGSYS)), "{act} did not end the process with SIGSYS");
    }
    assert!(matches!(in_child(&with("SCMP_ACT_LOG"), call), Exit::Code(0)));
    // Without a tracer, TRACE fails the call with ENOSYS.
    assert!(matches!(in_child(&with("SCMP_ACT_TRACE"), call), Exit::Code(libc::ENOSYS)));
}

/// getpid through the i386 entry (int 0x80), as a 32-bit program would call it.
#[cfg(target_arch = "x86_64")]
fn getpid_i386() -> i64 {
    let r: i64;
    // SAFETY: int 0x80 with eax = 20 (getpid on i386) takes no arguments; the compat
    // entry may clobber r8-r11.
    unsafe {
        std::arch::asm!("int 0x80", inlateout("rax") 20i64 => r, out("r8") _, out("r9") _, out("r10") _, out("r11") _, options(nostack));
    }
    r as i32 as i64
}

#[cfg(target_arch = "x86_64")]
#[test]
fn loaded_filter_handles_the_i386_entry() {
    let allow_all = compile(&profile(json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86"]}))).unwrap();
    // Is the i386 entry there at all (CONFIG_IA32_EMULATION, not disabled at boot)?
    let probe = in_child(&allow_all, |_| {
        // SAFETY: getpid.
        let pid = unsafe { libc::getpid() } as i64;
        if getpid_i386() == pid {
            0
        } else {
            1
        }
    });
    if !matches!(probe, Exit::Code(0)) {
        eprintln!("skipped: no i386 syscall entry on this kernel");
        return;
    }
    // Not listed: the bad-arch action kills.
    let native_only = compile(&profile(json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"]}))).unwrap();
    let r = in_child(&native_only, |_| {
        getpid_i386();
        0
    });
    assert!(matches!(r, Exit::Signal(libc::SIGSYS)), "an unlisted architecture should be killed");
    // Listed: its own numbers apply.
    let both = compile(&profile(json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
        "syscalls": [{"names": ["getpid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 42}]})))
    .unwrap();
    assert!(matches!(in_child(&both, |_| -getpid_i386() as i32), Exit::Code(42)));
}

#[test]
fn loaded_notify_hands_the_listener_to_an_agent() {
    use std::os::fd::{AsFd, AsRawFd};
    let f = compile(&profile(json!({"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"],
        "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_NOTIFY"}]})))
    .unwrap();
    assert!(f.has_listener());
    let (agent, init) = UnixStream::pair().unwrap();
    let state = notify::process_state(1234, Some("meta"), json!({"ociVersion": "1.0.2", "id": "c1", "status": "creating", "pid": 1234, "bundle": "/b"}));
    let agent_thread = std::thread::spawn(move || {
        use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
        let mut buf = vec![0u8; 4096];
        let mut iov = [std::io::IoSliceMut::new(&mut buf)];
        let mut space = nix::cmsg_space!([std::os::fd::RawFd; 1]);
        let msg = recvmsg::<()>(agent.as_raw_fd(), &mut iov, Some(&mut space), MsgFlags::MSG_CMSG_CLOEXEC).unwrap();
        let n = msg.bytes;
        let fd = msg.cmsgs().unwrap().find_map(|c| if let ControlMessageOwned::ScmRights(f) = c { f.first().copied() } else { None }).expect("an fd");
        // SAFETY: the kernel just installed it for us.
        let listener = unsafe { OwnedFd::from_raw_fd(fd) };
        let got: serde_json::Value = serde_json::from_slice(&buf[..n]).unwrap();
        let mut fds = [nix::poll::PollFd::new(listener.as_fd(), nix::poll::PollFlags::POLLIN)];
        assert_eq!(nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(10_000u16)).unwrap(), 1, "no notification");
        // SAFETY: RECV fills a zeroed seccomp_notif; SEND reads the response.
        unsafe {
            let mut req: libc::seccomp_notif = std::mem::zeroed();
            assert_eq!(libc::ioctl(listener.as_raw_fd(), libc::SECCOMP_IOCTL_NOTIF_RECV as _, &mut req), 0, "NOTIF_RECV");
            let resp = libc::seccomp_notif_resp { id: req.id, val: 4242, error: 0, flags: 0 };
            assert_eq!(libc::ioctl(listener.as_raw_fd(), libc::SECCOMP_IOCTL_NOTIF_SEND as _, &resp), 0, "NOTIF_SEND");
            (got, req.data.nr)
        }
    });
    let r = in_child(&f, |listener| {
        let Some(l) = listener else { return 2 };
        if notify::send(&init, &state, l.as_raw_fd()).is_err() {
            return 3;
        }
        drop(l);
        // SAFETY: getppid has no arguments; the agent answers 4242.
        let v = unsafe { libc::syscall(libc::SYS_getppid) };
        if v == 4242 {
            0
        } else {
            4
        }
    });
    let (got, nr) = agent_thread.join().unwrap();
    assert!(matches!(r, Exit::Code(0)), "the agent's answer did not come back");
    assert_eq!(nr as i64, libc::SYS_getppid);
    assert_eq!(got["fds"], json!(["seccompFd"]));
    assert_eq!(got["pid"], 1234);
    assert_eq!(got["metadata"], "meta");
    assert_eq!(got["state"]["id"], "c1");
}

#[test]
fn load_without_no_new_privs_or_cap_sys_admin_says_why() {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    if status.lines().any(|l| l.starts_with("NoNewPrivs:") && l.ends_with('1')) {
        eprintln!("skipped: the tests run with no_new_privs");
        return;
    }
    let f = compile(&profile(json!({"defaultAction": "SCMP_ACT_ALLOW"}))).unwrap();
    // SAFETY: the child drops CAP_SYS_ADMIN from its effective set and reports the load's errno.
    let r = unsafe {
        let pid = libc::fork();
        if pid == 0 {
            let mut hdr = [0x2008_0522u32, 0]; // _LINUX_CAPABILITY_VERSION_3, this process
            let mut data = [0u32; 6];
            libc::syscall(libc::SYS_capget, hdr.as_mut_ptr(), data.as_mut_ptr());
            data[0] &= !(1 << 21); // CAP_SYS_ADMIN
            libc::syscall(libc::SYS_capset, hdr.as_mut_ptr(), data.as_ptr());
            let code = match f.load() {
                Err(e) if e.to_string().contains("no_new_privs nor CAP_SYS_ADMIN") => 0,
                Err(_) => 1,
                Ok(_) => 2,
            };
            libc::_exit(code);
        }
        let mut st = 0;
        libc::waitpid(pid, &mut st, 0);
        libc::WEXITSTATUS(st)
    };
    assert_eq!(r, 0, "loading without privileges should fail with EACCES, explained");
}

use std::os::unix::net::UnixStream;
