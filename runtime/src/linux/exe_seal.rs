//! The binary a berth process inside a container runs from, and when it must be a
//! sealed in-memory copy of berth: a process in the container that reaches
//! /proc/<pid>/exe of a berth process could otherwise hold the host's berth binary and
//! write it once no berth runs (CVE-2019-5736).
//!
//! Copying the 2 MB binary on every create is the largest cost of `run` (see
//! integration/BENCHMARKS.md), so the create path runs the init's code in the cloned
//! child itself, without exec, when no container process can reach that child:
//! it is non-dumpable (so /proc/<init>/exe is closed to anyone without CAP_SYS_PTRACE
//! in the host's user namespace) and the only process of its new pid namespace until it
//! execs the container's process. `init_needs_sealed_copy` lists when that is not so.

use crate::error::{Context, Result};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

pub fn sealed_copy_of_self() -> Result<OwnedFd> {
    let exe = std::fs::File::open("/proc/self/exe").ctx("open /proc/self/exe")?;
    let size = exe.metadata().ctx("stat /proc/self/exe")?.len();
    // SAFETY: memfd_create with a static NUL-terminated name; we own the returned fd.
    let raw = unsafe { libc::memfd_create(c"berth".as_ptr(), libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING) };
    if raw < 0 {
        return Err(std::io::Error::last_os_error()).ctx("memfd_create");
    }
    // SAFETY: raw is a fresh fd that nothing else owns.
    let memfd = unsafe { OwnedFd::from_raw_fd(raw) };
    let mut left = size as usize;
    while left > 0 {
        // SAFETY: sendfile between two fds we hold, with no offset pointer.
        let n = unsafe { libc::sendfile(memfd.as_raw_fd(), exe.as_raw_fd(), std::ptr::null_mut(), left) };
        if n < 0 {
            return Err(std::io::Error::last_os_error()).ctx("copy berth binary to memfd");
        }
        if n == 0 {
            break;
        }
        left -= n as usize;
    }
    let seals = libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;
    // SAFETY: fcntl on our memfd.
    if unsafe { libc::fcntl(memfd.as_raw_fd(), libc::F_ADD_SEALS, seals) } != 0 {
        return Err(std::io::Error::last_os_error()).ctx("seal berth memfd");
    }
    Ok(memfd)
}

/// Whether a process with these capabilities could hold CAP_SYS_PTRACE, which passes
/// the kernel's check on a non-dumpable process's /proc/<pid>/exe (no bounding
/// set given means berth leaves root's full set).
pub fn may_ptrace(caps: Option<&berth_spec::Capabilities>) -> bool {
    let Some(b) = caps.and_then(|c| c.bounding.as_ref()) else { return true };
    b.iter().any(|c| c.eq_ignore_ascii_case("CAP_SYS_PTRACE"))
}

/// Whether the create path must exec the init from a sealed copy rather than run it in
/// the cloned child: when another process may share its pid namespace (joined by path,
/// or none of its own), when hooks run inside the container before the init execs
/// (createContainer, startContainer), or when the container's process may hold
/// CAP_SYS_PTRACE (a `berth exec` of it could open the waiting init's exe).
pub fn init_needs_sealed_copy(spec: &berth_spec::Spec) -> bool {
    let own_pid_ns = spec.namespace("pid").is_some_and(|n| n.path.is_none());
    let hooks = spec.hooks.as_ref();
    let in_container_hooks = hooks.is_some_and(|h| !h.create_container.is_empty() || !h.start_container.is_empty());
    let process_caps = spec.process.as_ref().and_then(|p| p.capabilities.as_ref());
    !own_pid_ns || in_container_hooks || may_ptrace(process_caps)
}

/// Whether `pid` runs from a sealed memfd copy (its exe is `/memfd:...`).
pub fn runs_sealed(pid: i32) -> bool {
    std::fs::read_link(format!("/proc/{pid}/exe")).is_ok_and(|p| p.to_string_lossy().starts_with("/memfd:"))
}

/// Marks this process non-dumpable: /proc/<pid>/exe, fd/, mem and ptrace are then
/// closed to processes without CAP_SYS_PTRACE over it. execve resets it.
pub fn make_non_dumpable() {
    // SAFETY: prctl with integer arguments only.
    unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) };
}

/// The name the in-process init gives itself until it execs (visible in ps).
pub const IN_PROCESS_INIT_NAME: &str = "berth:init";

/// A container that joins another's pid namespace by path and may hold CAP_SYS_PTRACE
/// could open the exe of that namespace's init while it still runs berth's code
/// unsealed (a created container): refuse, as `exec` does. Scans /proc only then.
pub fn check_pid_ns_join(spec: &berth_spec::Spec) -> Result<()> {
    let Some(path) = spec.namespace("pid").and_then(|n| n.path.as_deref()) else { return Ok(()) };
    if !may_ptrace(spec.process.as_ref().and_then(|p| p.capabilities.as_ref())) {
        return Ok(());
    }
    let Ok(target) = std::fs::read_link(path) else { return Ok(()) }; // reported when joined
    let Ok(rd) = std::fs::read_dir("/proc") else { return Ok(()) };
    for e in rd.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else { continue };
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        if comm.trim_end() != IN_PROCESS_INIT_NAME {
            continue;
        }
        if std::fs::read_link(format!("/proc/{pid}/ns/pid")).is_ok_and(|ns| ns == target) {
            return Err(crate::error::Error::new(format!(
                "linux.namespaces: the pid namespace {path} belongs to a container that is created but not started \
                 (init pid {pid}); a process that may hold CAP_SYS_PTRACE cannot join it until it starts"
            )));
        }
    }
    Ok(())
}
