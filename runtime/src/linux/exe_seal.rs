//! The binary the container's init runs from: a sealed in-memory copy of berth, so a
//! process in the container that reaches /proc/<init>/exe can only see that copy and
//! never write to the host's berth binary (CVE-2019-5736).

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
