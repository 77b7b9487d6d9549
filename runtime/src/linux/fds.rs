//! File descriptors crossing into the container: only stdio and the preserved ones.

/// Marks every fd from `first` up close-on-exec, so nothing the runtime opened (or
/// inherited from its caller) reaches the container's process (CVE-2024-21626).
pub fn cloexec_from(first: u32) {
    // SAFETY: close_range with the CLOEXEC flag only changes fd flags.
    let r = unsafe { libc::syscall(libc::SYS_close_range, first, u32::MAX, libc::CLOSE_RANGE_CLOEXEC) };
    if r != 0 {
        // Kernels before 5.11: walk /proc/self/fd.
        if let Ok(rd) = std::fs::read_dir("/proc/self/fd") {
            let fds: Vec<i32> = rd.flatten().filter_map(|e| e.file_name().to_str()?.parse().ok()).collect();
            for fd in fds.into_iter().filter(|&fd| fd >= first as i32) {
                set_cloexec(fd, true);
            }
        }
    }
}

pub fn set_cloexec(fd: i32, on: bool) {
    // SAFETY: fcntl on an integer fd; failures (a closed fd) are harmless here.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFD);
        if flags >= 0 {
            let nf = if on { flags | libc::FD_CLOEXEC } else { flags & !libc::FD_CLOEXEC };
            libc::fcntl(fd, libc::F_SETFD, nf);
        }
    }
}

/// Closes every fd from `first` up except those in `keep`: what a cloned child that
/// does not exec holds of its parent's files.
pub fn close_from_except(first: u32, keep: &[i32]) {
    let mut keep: Vec<u32> = keep.iter().filter(|&&k| k >= first as i32).map(|&k| k as u32).collect();
    keep.sort_unstable();
    let mut lo = first;
    for k in keep {
        if k > lo {
            close_range(lo, k - 1);
        }
        lo = k + 1;
    }
    close_range(lo, u32::MAX);
}

fn close_range(lo: u32, hi: u32) {
    // SAFETY: close_range on fds this process owns and no longer uses.
    let r = unsafe { libc::syscall(libc::SYS_close_range, lo, hi, 0) };
    if r != 0 {
        // Kernels before 5.11: walk /proc/self/fd.
        if let Ok(rd) = std::fs::read_dir("/proc/self/fd") {
            let fds: Vec<u32> = rd.flatten().filter_map(|e| e.file_name().to_str()?.parse().ok()).collect();
            for fd in fds.into_iter().filter(|&fd| fd >= lo && fd <= hi) {
                // SAFETY: as above.
                unsafe { libc::close(fd as i32) };
            }
        }
    }
}
