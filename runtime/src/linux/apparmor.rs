//! AppArmor: `process.apparmorProfile` names the profile the process runs under. As runc
//! does, the init writes `exec PROFILE` to its own task's exec attribute just before it
//! execs, and the kernel confines the process from that execve on. The profile must be
//! loaded already (engines load their own: docker-default, containers-default-*).

use crate::error::{Error, Result};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Whether the kernel has AppArmor enabled.
pub fn enabled() -> bool {
    std::fs::read_to_string("/sys/module/apparmor/parameters/enabled").is_ok_and(|s| s.trim() == "Y")
}

/// Confines this task with `profile` from its next execve. Runs in the container, after
/// pivot_root, in the thread that will exec: /proc is the container's, and it must be
/// procfs (a container that put something else there must not get the write elsewhere,
/// as in CVE-2019-16884).
pub fn change_on_exec(profile: &str) -> Result<()> {
    // Since Linux 5.8 AppArmor has an attr directory of its own; before, only the shared one.
    let path = ["/proc/thread-self/attr/apparmor/exec", "/proc/thread-self/attr/exec"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .ok_or_else(|| Error::new(format!("apply AppArmor profile {profile:?}: no /proc/thread-self/attr/exec in the container")))?;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW)
        .open(path)
        .map_err(|e| Error::new(format!("apply AppArmor profile {profile:?}: open {path}: {e}")))?;
    // SAFETY: statfs is plain data; all zeroes is a valid value.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: fstatfs on an fd we own into a statfs we own.
    if unsafe { libc::fstatfs(std::os::fd::AsRawFd::as_raw_fd(&f), &mut st) } != 0 || st.f_type != libc::PROC_SUPER_MAGIC {
        return Err(Error::new(format!("apply AppArmor profile {profile:?}: {path} is not on procfs")));
    }
    // The kernel refuses a profile that is not loaded (ENOENT).
    f.write_all(format!("exec {profile}").as_bytes()).map_err(|e| Error::new(format!("apply AppArmor profile {profile:?}: {e}")))
}
