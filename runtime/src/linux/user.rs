//! Switching to the process's user: supplementary groups, gid, uid (keeping the
//! capabilities across the switch so the configured sets can be applied after it).

use crate::error::{Context, Result};
use berth_spec::User;

pub fn switch(user: &User, set_groups: bool) -> Result<()> {
    // SAFETY: prctl with integer arguments only.
    unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 1, 0, 0, 0) };
    if set_groups {
        let gids: Vec<libc::gid_t> = user.additional_gids.clone();
        // SAFETY: setgroups reads `len` gids from the pointer.
        let r = unsafe { libc::setgroups(gids.len(), gids.as_ptr()) };
        if r != 0 {
            return Err(std::io::Error::last_os_error()).ctx("setgroups");
        }
    }
    // SAFETY: plain syscalls on integers. setresgid/setresuid apply to the whole process
    // here because init is single-threaded.
    if unsafe { libc::setresgid(user.gid, user.gid, user.gid) } != 0 {
        return Err(std::io::Error::last_os_error()).with_ctx(|| format!("setgid {}", user.gid));
    }
    if unsafe { libc::setresuid(user.uid, user.uid, user.uid) } != 0 {
        return Err(std::io::Error::last_os_error()).with_ctx(|| format!("setuid {}", user.uid));
    }
    unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 0, 0, 0, 0) };
    Ok(())
}

/// HOME for the process when its env does not set one: the user's home in the
/// container's /etc/passwd, else "/".
pub fn home_dir(uid: u32) -> String {
    if let Ok(s) = std::fs::read_to_string("/etc/passwd") {
        for l in s.lines() {
            let f: Vec<&str> = l.split(':').collect();
            if f.len() >= 6 && f[2].parse::<u32>().ok() == Some(uid) && !f[5].is_empty() {
                return f[5].to_string();
            }
        }
    }
    "/".to_string()
}
