//! Switching to the process's user: its stdio handed over, supplementary groups, gid, uid
//! (keeping the capabilities across the switch so the configured sets can be applied
//! after it).

use crate::error::{Context, Result};
use berth_spec::User;
use std::os::fd::{AsFd, BorrowedFd};

/// Makes `uid` the owner of the process's stdio when it is a pipe or a socket (or, with
/// `own_tty`, the container's pty), as runc does before it switches user. The caller made
/// them as root: reopening one through /proc/self/fd (`echo > /dev/stdout`, nginx's logs)
/// checks the inode's owner, so a non-root process could not. A host tty or a file is
/// left alone: its owner is the host's, not the container's. Owners the kernel will not
/// let us change (unmapped in a user namespace, a read-only fs) are left as they are.
pub fn give_stdio(uid: u32, own_tty: bool) -> Result<()> {
    let (i, o, e) = (std::io::stdin(), std::io::stdout(), std::io::stderr());
    let fds: [(BorrowedFd, &str); 3] = [(i.as_fd(), "stdin"), (o.as_fd(), "stdout"), (e.as_fd(), "stderr")];
    for (fd, name) in fds {
        let Ok(st) = nix::sys::stat::fstat(fd) else { continue };
        let kind = st.st_mode & libc::S_IFMT;
        let ours = kind == libc::S_IFIFO || kind == libc::S_IFSOCK || (own_tty && kind == libc::S_IFCHR);
        if !ours || st.st_uid == uid {
            continue;
        }
        match nix::unistd::fchown(fd, Some(uid.into()), None) {
            Ok(()) | Err(nix::Error::EPERM) | Err(nix::Error::EROFS) | Err(nix::Error::EINVAL) => {}
            Err(e) => return Err(e).with_ctx(|| format!("hand {name} to uid {uid}")),
        }
    }
    Ok(())
}

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
