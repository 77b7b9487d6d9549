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

/// The fds among those `--preserve-fds` (or systemd's LISTEN_FDS) asks to pass on that
/// were not open when berth started, found by [`note_passed`].
static NOT_PASSED: std::sync::OnceLock<Vec<i32>> = std::sync::OnceLock::new();

/// Called first thing in main, before berth opens a file: notes which of the fds the
/// command line asks to pass on (fds 3 up) the caller really passed. Once berth runs, its
/// own files (the state dir's lock among them) take the lowest free numbers, and a
/// preserved range with a hole would hand one of them to the container: with the lock,
/// the container would stay locked for as long as its process lives.
pub fn note_passed() {
    let mut n: u64 = 0;
    let mut args = std::env::args_os().skip(1);
    while let Some(a) = args.next() {
        let a = a.to_string_lossy().into_owned();
        let flag = a.trim_start_matches('-');
        if a.starts_with('-') && flag == "preserve-fds" {
            n = n.max(args.next().and_then(|v| v.to_str()?.parse().ok()).unwrap_or(0));
        } else if let Some(v) = flag.strip_prefix("preserve-fds=").filter(|_| a.starts_with('-')) {
            n = n.max(v.parse().unwrap_or(0));
        }
    }
    if let Some(l) = std::env::var("LISTEN_FDS").ok().and_then(|v| v.parse().ok()) {
        n = n.max(l);
    }
    // More than any fd limit allows: the check below reports the first missing one.
    let n = n.min(1 << 20) as i32;
    let missing = (3..3 + n).filter(|&fd| !is_open(fd)).take(1).collect();
    let _ = NOT_PASSED.set(missing);
}

/// Refuses to pass on `n` fds (3 .. 3+n) when one of them was not open at start.
pub fn check_passed(n: u32) -> crate::error::Result<()> {
    match NOT_PASSED.get().and_then(|v| v.first()) {
        Some(&fd) if (fd as i64) < 3 + n as i64 => {
            Err(crate::error::Error::new(format!("--preserve-fds {n}: fd {fd} is not open (only fds berth was started with can be passed on)")))
        }
        _ => Ok(()),
    }
}

fn is_open(fd: i32) -> bool {
    // SAFETY: F_GETFD on an integer fd only reads its flags.
    unsafe { libc::fcntl(fd, libc::F_GETFD) >= 0 }
}

/// Opens /dev/null on whichever of fds 0-2 the caller left closed (criu runs its action
/// scripts so): otherwise the first pipe berth makes takes one of those numbers, and a
/// child given that pipe as its stdio finds it closed on exec (dup2 onto the same number
/// keeps close-on-exec).
pub fn open_missing_stdio() {
    for fd in 0..3 {
        if !is_open(fd) {
            // SAFETY: open(2) with a constant path; the lowest free number is `fd`, as the
            // lower ones are open.
            unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDWR) };
        }
    }
}
