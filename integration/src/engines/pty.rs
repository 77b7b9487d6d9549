//! Running a client on a pty, as a person at a terminal would (`podman run -it`,
//! `ctr run -t`, `docker exec -it`): the client's stdin, stdout and stderr are the slave
//! of a new pty and its controlling terminal; the test reads the master, waits for text
//! and types.

use crate::procs;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// One step of a terminal session.
#[derive(Debug, Clone)]
pub enum Step {
    /// Wait until everything read so far contains this text.
    Expect(String),
    /// Type these bytes.
    Send(String),
}

pub fn expect(s: &str) -> Step {
    Step::Expect(s.to_string())
}
pub fn send(s: &str) -> Step {
    Step::Send(s.to_string())
}

#[derive(Debug)]
pub struct PtyOutput {
    pub cmdline: String,
    pub status: ExitStatus,
    /// Everything the client wrote to the terminal (with `\r\n` line ends).
    pub text: String,
}

impl PtyOutput {
    pub fn code(&self) -> i32 {
        self.status.code().unwrap_or_else(|| 128 + self.status.signal().unwrap_or(0))
    }
    pub fn describe(&self) -> String {
        format!("command (on a pty): {}\nstatus: {}\nterminal:\n{}", self.cmdline, self.status, self.text)
    }
}

fn openpty() -> (OwnedFd, OwnedFd) {
    let mut master = -1;
    let mut slave = -1;
    // A sane size: some clients refuse a 0x0 terminal.
    let ws = libc::winsize { ws_row: 24, ws_col: 80, ws_xpixel: 0, ws_ypixel: 0 };
    // SAFETY: openpty writes two fds; the name and termios pointers may be null.
    let r = unsafe { libc::openpty(&mut master, &mut slave, std::ptr::null_mut(), std::ptr::null(), &ws) };
    assert_eq!(r, 0, "openpty: {}", std::io::Error::last_os_error());
    // SAFETY: both fds were just opened and are owned here.
    unsafe {
        libc::fcntl(master, libc::F_SETFD, libc::FD_CLOEXEC);
        libc::fcntl(slave, libc::F_SETFD, libc::FD_CLOEXEC);
        (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave))
    }
}

fn read_some(fd: i32, buf: &mut Vec<u8>, wait: Duration) -> bool {
    let mut p = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
    // SAFETY: poll on one pollfd.
    let r = unsafe { libc::poll(&mut p, 1, wait.as_millis().min(200) as i32) };
    if r <= 0 {
        return true;
    }
    let mut b = [0u8; 4096];
    // SAFETY: read into a local buffer.
    let n = unsafe { libc::read(fd, b.as_mut_ptr() as *mut libc::c_void, b.len()) };
    if n <= 0 {
        return false; // EOF, or EIO once no process has the slave open
    }
    buf.extend_from_slice(&b[..n as usize]);
    true
}

/// Runs `cmd` on a new pty, plays `steps`, then reads until it exits. Panics (after
/// killing it) if a step or the whole session takes longer than `timeout`.
#[track_caller]
pub fn run(mut cmd: Command, cmdline: String, steps: &[Step], timeout: Duration) -> PtyOutput {
    let (master, slave) = openpty();
    let s = slave.as_raw_fd();
    cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
    // SAFETY: setsid, ioctl and dup2 are async-signal-safe.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setsid() < 0 || libc::ioctl(s, libc::TIOCSCTTY as _, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            for to in 0..3 {
                if libc::dup2(s, to) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    let mut child = procs::spawn(&mut cmd).unwrap_or_else(|e| panic!("cannot run {cmdline}: {e}"));
    drop(slave);
    let m = master.as_raw_fd();
    let deadline = Instant::now() + timeout;
    let mut buf = Vec::new();
    let fail = |child: &mut std::process::Child, buf: &[u8], what: &str| -> ! {
        let _ = child.kill();
        let _ = child.wait();
        procs::untrack(child.id());
        panic!("{cmdline} (on a pty): {what}\nterminal so far:\n{}", String::from_utf8_lossy(buf));
    };
    for step in steps {
        match step {
            Step::Expect(t) => loop {
                if String::from_utf8_lossy(&buf).contains(t.as_str()) {
                    break;
                }
                if Instant::now() > deadline {
                    fail(&mut child, &buf, &format!("timed out waiting for {t:?}"));
                }
                if !read_some(m, &mut buf, Duration::from_millis(100)) {
                    fail(&mut child, &buf, &format!("the terminal closed before {t:?}"));
                }
            },
            Step::Send(t) => {
                // SAFETY: write from a live buffer to the master.
                let n = unsafe { libc::write(m, t.as_ptr() as *const libc::c_void, t.len()) };
                if n != t.len() as isize {
                    fail(&mut child, &buf, &format!("short write of {t:?}"));
                }
            }
        }
    }
    let status = loop {
        let alive = read_some(m, &mut buf, Duration::from_millis(50));
        match child.try_wait() {
            Ok(Some(st)) => {
                // Whatever is still buffered on the master.
                while read_some(m, &mut buf, Duration::from_millis(20)) {
                    if Instant::now() > deadline {
                        break;
                    }
                    let mut p = libc::pollfd { fd: m, events: libc::POLLIN, revents: 0 };
                    // SAFETY: poll on one pollfd.
                    if unsafe { libc::poll(&mut p, 1, 0) } <= 0 {
                        break;
                    }
                }
                break st;
            }
            Ok(None) => {}
            Err(e) => panic!("waiting for {cmdline}: {e}"),
        }
        if Instant::now() > deadline {
            fail(&mut child, &buf, "timed out waiting for it to exit");
        }
        if !alive {
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    procs::untrack(child.id());
    PtyOutput { cmdline, status, text: String::from_utf8_lossy(&buf).into_owned() }
}
