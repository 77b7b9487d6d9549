//! Reading `/proc/<pid>/stat`: is a process alive, and is it still the one we started.

/// (state char, start time in ticks) of a process, or None if it is gone.
pub fn stat(pid: i32) -> Option<(u8, u64)> {
    let s = std::fs::read(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces and parens: fields start after the last ')'.
    let end = s.iter().rposition(|&b| b == b')')?;
    let rest = std::str::from_utf8(&s[end + 1..]).ok()?;
    let mut f = rest.split_ascii_whitespace();
    let state = f.next()?.as_bytes()[0];
    // Field 22 (starttime) is the 20th after the state (field 3).
    let start = f.nth(18)?.parse().ok()?;
    Some((state, start))
}

pub fn start_time(pid: i32) -> Option<u64> {
    stat(pid).map(|(_, t)| t)
}

/// True if `pid` runs and started at `start`: a zombie or a reused pid is not alive.
pub fn alive_with_start_time(pid: i32, start: u64) -> bool {
    match stat(pid) {
        Some((state, t)) => t == start && state != b'Z' && state != b'X',
        None => false,
    }
}

/// Waits until the process exits (a zombie counts), up to `timeout`. Uses a pidfd, so it
/// works for processes that are not our children.
pub fn wait_for_exit(pid: i32, start: u64, timeout: std::time::Duration) -> bool {
    // SAFETY: pidfd_open with integers; the fd is closed below.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) } as i32;
    if fd < 0 {
        return !alive_with_start_time(pid, start);
    }
    let deadline = std::time::Instant::now() + timeout;
    let mut done = false;
    while !done {
        // The pid may have been reused between our check and pidfd_open.
        if !alive_with_start_time(pid, start) {
            done = true;
            break;
        }
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            break;
        }
        let mut p = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
        // SAFETY: poll on one pollfd we own.
        let r = unsafe { libc::poll(&mut p, 1, left.as_millis().min(i32::MAX as u128) as i32) };
        if r > 0 {
            done = true;
        }
    }
    // SAFETY: closing the fd pidfd_open gave us.
    unsafe { libc::close(fd) };
    done
}

#[cfg(test)]
mod tests {
    #[test]
    fn own_process_is_alive_with_its_start_time() {
        let pid = std::process::id() as i32;
        let t = super::start_time(pid).unwrap();
        assert!(super::alive_with_start_time(pid, t));
        assert!(!super::alive_with_start_time(pid, t + 1));
    }
}
