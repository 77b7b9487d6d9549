//! The process's CPU scheduling: its policy and attributes (`process.scheduler`, through
//! sched_setattr(2)) and the CPUs an exec'd process runs on (`process.execCPUAffinity`,
//! through sched_setaffinity(2)).

use crate::error::{Context, Error, Result};
use crate::linux::bitmask;
use berth_spec::{CpuAffinity, Scheduler};

const POLICIES: &[(&str, u32)] =
    &[("SCHED_OTHER", 0), ("SCHED_FIFO", 1), ("SCHED_RR", 2), ("SCHED_BATCH", 3), ("SCHED_ISO", 4), ("SCHED_IDLE", 5), ("SCHED_DEADLINE", 6)];

const FLAGS: &[(&str, u64)] = &[
    ("SCHED_FLAG_RESET_ON_FORK", 0x01),
    ("SCHED_FLAG_RECLAIM", 0x02),
    ("SCHED_FLAG_DL_OVERRUN", 0x04),
    ("SCHED_FLAG_KEEP_POLICY", 0x08),
    ("SCHED_FLAG_KEEP_PARAMS", 0x10),
    ("SCHED_FLAG_UTIL_CLAMP_MIN", 0x20),
    ("SCHED_FLAG_UTIL_CLAMP_MAX", 0x40),
];

/// The kernel's struct sched_attr (SCHED_ATTR_SIZE_VER1).
#[repr(C)]
#[derive(Default)]
struct SchedAttr {
    size: u32,
    policy: u32,
    flags: u64,
    nice: i32,
    priority: u32,
    runtime: u64,
    deadline: u64,
    period: u64,
    util_min: u32,
    util_max: u32,
}

/// Checks `process.scheduler` before anything exists, as runc does; what only the kernel
/// knows (deadline bandwidth, privileges) is its answer at sched_setattr time.
pub fn validate(s: &Scheduler) -> Result<()> {
    let policy = policy(&s.policy)?;
    flags(&s.flags)?;
    if policy == 4 {
        return Err(Error::new("process.scheduler.policy SCHED_ISO is not implemented by Linux"));
    }
    if let Some(n) = s.nice.filter(|n| !(-20..=19).contains(n)) {
        return Err(Error::new(format!("process.scheduler.nice {n} is outside -20..19")));
    }
    let realtime = matches!(policy, 1 | 2);
    match s.priority.unwrap_or(0) {
        0 if !realtime => {}
        p if realtime && (1..=99).contains(&p) => {}
        p if realtime => return Err(Error::new(format!("process.scheduler.priority {p} is outside 1..99 for {}", s.policy))),
        p => return Err(Error::new(format!("process.scheduler.priority {p}: only SCHED_FIFO and SCHED_RR take a priority"))),
    }
    if policy != 6 && (s.runtime.unwrap_or(0) != 0 || s.deadline.unwrap_or(0) != 0 || s.period.unwrap_or(0) != 0) {
        return Err(Error::new("process.scheduler.runtime, deadline and period are for SCHED_DEADLINE only"));
    }
    Ok(())
}

fn policy(name: &str) -> Result<u32> {
    POLICIES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, v)| *v)
        .ok_or_else(|| Error::new(format!("process.scheduler.policy {name:?} is not a scheduling policy")))
}

fn flags(names: &[String]) -> Result<u64> {
    names.iter().try_fold(0, |acc, f| match FLAGS.iter().find(|(n, _)| n == f) {
        Some((_, v)) => Ok(acc | v),
        None => Err(Error::new(format!("process.scheduler.flags: {f:?} is not a scheduling flag"))),
    })
}

/// Gives this process (and so the container's process after execve) its policy. Done
/// before capabilities are dropped: real-time policies and negative nice values need
/// CAP_SYS_NICE.
pub fn apply(s: &Scheduler) -> Result<()> {
    let mut attr = SchedAttr {
        size: std::mem::size_of::<SchedAttr>() as u32,
        policy: policy(&s.policy)?,
        flags: flags(&s.flags)?,
        nice: s.nice.unwrap_or(0),
        priority: s.priority.unwrap_or(0) as u32,
        runtime: s.runtime.unwrap_or(0),
        deadline: s.deadline.unwrap_or(0),
        period: s.period.unwrap_or(0),
        ..Default::default()
    };
    if let Err(e) = sched_setattr(&mut attr) {
        // SCHED_DEADLINE needs a root-domain-wide cpuset, which a container's is not.
        let hint = if attr.policy == 6 && e.raw_os_error() == Some(libc::EPERM) { " (SCHED_DEADLINE cannot be used with a restricted cpuset)" } else { "" };
        return Err(e).with_ctx(|| format!("process.scheduler: sched_setattr {}{hint}", s.policy));
    }
    Ok(())
}

fn sched_setattr(attr: &mut SchedAttr) -> std::io::Result<()> {
    // SAFETY: sched_setattr(0 = this thread, attr, 0) reads attr->size bytes of the
    // #[repr(C)] struct we pass, which is exactly that size.
    if unsafe { libc::syscall(libc::SYS_sched_setattr, 0, attr as *mut SchedAttr, 0) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// The `initial` and `final` cpu sets of `process.execCPUAffinity`, checked.
pub struct Affinity {
    pub initial: Option<Vec<usize>>,
    pub final_: Option<Vec<usize>>,
}

impl Affinity {
    pub fn from_spec(a: &CpuAffinity) -> Result<Affinity> {
        let field = |name: &str, v: &Option<String>| -> Result<Option<Vec<usize>>> {
            match v.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
                None => Ok(None),
                Some(s) => bitmask::parse(s).map(Some).map_err(|e| Error::new(format!("process.execCPUAffinity.{name}: {e}"))),
            }
        };
        Ok(Affinity { initial: field("initial", &a.initial)?, final_: field("final", &a.final_)? })
    }
}

/// Current affinity of `pid` (0: this thread), to restore after a temporary change.
pub fn get_affinity(pid: i32) -> Result<Vec<libc::c_ulong>> {
    let mut mask = vec![0 as libc::c_ulong; 128];
    // SAFETY: the kernel writes at most the buffer's byte size into it.
    let n = unsafe { libc::syscall(libc::SYS_sched_getaffinity, pid, std::mem::size_of_val(&mask[..]), mask.as_mut_ptr()) };
    if n < 0 {
        return Err(std::io::Error::last_os_error()).ctx("sched_getaffinity");
    }
    Ok(mask)
}

/// Lets `pid` run on every CPU its cgroup's cpuset allows: the kernel intersects the
/// mask with the cpuset. A runtime started on a few CPUs (a caller pinned by its
/// service manager, say) would otherwise pass that pinning on to the container, as runc
/// 1.2 found. Best effort: the process runs where it was if the kernel refuses.
pub fn reset_affinity(pid: i32) {
    // Every CPU id the kernel can have (CONFIG_NR_CPUS is at most 8192).
    let all = [libc::c_ulong::MAX; 8192 / libc::c_ulong::BITS as usize];
    if let Err(e) = set_affinity(pid, &all) {
        crate::logging::debug(&format!("reset the CPU affinity of {pid}: {e}"));
    }
}

/// Restricts `pid` (0: this thread) to the CPUs of `mask`.
pub fn set_affinity(pid: i32, mask: &[libc::c_ulong]) -> std::io::Result<()> {
    // SAFETY: the kernel reads the buffer's byte size from it.
    if unsafe { libc::syscall(libc::SYS_sched_setaffinity, pid, std::mem::size_of_val(mask), mask.as_ptr()) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}
