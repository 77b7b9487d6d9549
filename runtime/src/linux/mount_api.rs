//! The kernel's fd-based mount calls, for what mount(2) cannot do: mount_setattr(2)
//! changes the attributes of a whole tree of mounts at once (AT_RECURSIVE; a remount
//! only reaches the top one) and makes idmapped mounts; open_tree(2) clones a tree into
//! a detached mount that can be changed before move_mount(2) attaches it (an idmap can
//! only be set on a mount nobody can see yet).

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

/// mount_setattr(fd, "", AT_EMPTY_PATH[|AT_RECURSIVE]): set and clear MOUNT_ATTR_* bits on
/// the mount `fd` names; with `userns`, MOUNT_ATTR_IDMAP maps ids through that namespace.
pub fn set_attr(fd: BorrowedFd, set: u64, clr: u64, userns: Option<BorrowedFd>, recursive: bool) -> io::Result<()> {
    let attr = libc::mount_attr { attr_set: set, attr_clr: clr, propagation: 0, userns_fd: userns.map_or(0, |u| u.as_raw_fd() as u64) };
    let flags = libc::AT_EMPTY_PATH | if recursive { libc::AT_RECURSIVE } else { 0 };
    // SAFETY: the path is a NUL-terminated empty string and `attr` is a mount_attr of the
    // size passed; both outlive the call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd.as_raw_fd(),
            c"".as_ptr(),
            flags as libc::c_uint,
            &attr as *const libc::mount_attr,
            size_of::<libc::mount_attr>(),
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// open_tree(AT_FDCWD, path, OPEN_TREE_CLONE[|AT_RECURSIVE]): a detached copy of the mount
/// at `path` (with the mounts below it when `recursive`), as a bind mount would make.
pub fn clone_tree(path: &CStr, recursive: bool) -> io::Result<OwnedFd> {
    let flags = libc::OPEN_TREE_CLONE | libc::OPEN_TREE_CLOEXEC | if recursive { libc::AT_RECURSIVE as libc::c_uint } else { 0 };
    // SAFETY: `path` is a NUL-terminated string that outlives the call.
    let r = unsafe { libc::syscall(libc::SYS_open_tree, libc::AT_FDCWD, path.as_ptr(), flags) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: open_tree returned a new fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(r as i32) })
}

/// move_mount(from, "", to, "", F_EMPTY_PATH|T_EMPTY_PATH): attach the detached mount
/// `from` on the directory (or file) `to` names.
pub fn attach(from: BorrowedFd, to: BorrowedFd) -> io::Result<()> {
    let flags = libc::MOVE_MOUNT_F_EMPTY_PATH | libc::MOVE_MOUNT_T_EMPTY_PATH;
    // SAFETY: both paths are NUL-terminated empty strings; the fds are open.
    let r = unsafe { libc::syscall(libc::SYS_move_mount, from.as_raw_fd(), c"".as_ptr(), to.as_raw_fd(), c"".as_ptr(), flags) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The id of the mount at `path` (the top one if several are stacked there): the 64-bit
/// one the kernel never reuses where it has it (6.8), else the mountinfo id.
pub fn mount_id(path: &CStr) -> io::Result<u64> {
    for mask in [libc::STATX_MNT_ID_UNIQUE, libc::STATX_MNT_ID] {
        // SAFETY: statx is plain data, valid zeroed.
        let mut st: libc::statx = unsafe { std::mem::zeroed() };
        // SAFETY: `path` is NUL-terminated and `st` a statx buffer; both outlive the call.
        if unsafe { libc::statx(libc::AT_FDCWD, path.as_ptr(), libc::AT_SYMLINK_NOFOLLOW, mask, &mut st) } != 0 {
            return Err(io::Error::last_os_error());
        }
        if st.stx_mask & mask != 0 {
            return Ok(st.stx_mnt_id);
        }
    }
    Err(io::Error::from_raw_os_error(libc::ENOSYS))
}
