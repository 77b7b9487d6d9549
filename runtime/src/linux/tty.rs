//! Terminals: the container's pty is made inside the container (on its own devpts),
//! and the master is sent over the console socket with SCM_RIGHTS, as runc's
//! console-socket protocol does (the message's data is the pty's name).

use crate::error::{Context, Error, Result};
use berth_spec::ConsoleSize;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;

/// Connects to the caller's console socket (a unix stream socket path).
pub fn connect_console_socket(path: &str) -> Result<UnixStream> {
    UnixStream::connect(path).with_ctx(|| format!("connect to console socket {path}"))
}

/// Opens a new pty in the current mount namespace: (master, slave).
pub fn open_pty() -> Result<(OwnedFd, OwnedFd)> {
    let master =
        nix::fcntl::open("/dev/ptmx", nix::fcntl::OFlag::O_RDWR | nix::fcntl::OFlag::O_NOCTTY | nix::fcntl::OFlag::O_CLOEXEC, nix::sys::stat::Mode::empty())
            .ctx("open /dev/ptmx")?;
    let unlock: libc::c_int = 0;
    // SAFETY: TIOCSPTLCK reads one int; TIOCGPTPEER returns a new fd we take ownership of.
    unsafe {
        if libc::ioctl(master.as_raw_fd(), libc::TIOCSPTLCK, &unlock) != 0 {
            return Err(std::io::Error::last_os_error()).ctx("unlock pty");
        }
        let slave = libc::ioctl(master.as_raw_fd(), libc::TIOCGPTPEER, libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC);
        if slave < 0 {
            return Err(std::io::Error::last_os_error()).ctx("open pty peer");
        }
        Ok((master, OwnedFd::from_raw_fd(slave)))
    }
}

pub fn set_winsize(fd: RawFd, size: &ConsoleSize) {
    let ws = libc::winsize { ws_row: size.height as u16, ws_col: size.width as u16, ws_xpixel: 0, ws_ypixel: 0 };
    // SAFETY: TIOCSWINSZ reads one winsize struct.
    unsafe { libc::ioctl(fd, libc::TIOCSWINSZ, &ws) };
}

/// The pty's path (/dev/pts/N), for the message and for /dev/console.
pub fn pty_name(slave: &OwnedFd) -> String {
    std::fs::read_link(format!("/proc/self/fd/{}", slave.as_raw_fd())).map(|p| p.to_string_lossy().into_owned()).unwrap_or_else(|_| "/dev/ptmx".into())
}

/// Sends `fd` with `name` as the data, in one message.
pub fn send_fd(sock: &UnixStream, name: &str, fd: RawFd) -> Result<()> {
    use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
    let iov = [std::io::IoSlice::new(name.as_bytes())];
    let fds = [fd];
    let cmsg = [ControlMessage::ScmRights(&fds)];
    sendmsg::<()>(sock.as_raw_fd(), &iov, &cmsg, MsgFlags::empty(), None).ctx("send pty master over console socket")?;
    Ok(())
}

/// Receives one fd sent with `send_fd`.
pub fn recv_fd(sock: &UnixStream) -> Result<OwnedFd> {
    recv_fd_with(sock, &mut [0u8; 4096], "receive pty master")
}

/// Receives one message into `data` and the fd that came with it (SCM_RIGHTS). `data`'s
/// length bounds what is read, so a caller with more messages behind this one reads
/// only its own bytes; `what` names the step in errors.
pub fn recv_fd_with(sock: &UnixStream, data: &mut [u8], what: &str) -> Result<OwnedFd> {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    let mut iov = [std::io::IoSliceMut::new(data)];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let msg = recvmsg::<()>(sock.as_raw_fd(), &mut iov, Some(&mut space), MsgFlags::MSG_CMSG_CLOEXEC).ctx(what)?;
    for c in msg.cmsgs().ctx(what)? {
        if let ControlMessageOwned::ScmRights(fds) = c {
            if let Some(&fd) = fds.first() {
                // SAFETY: the kernel just installed this fd for us.
                return Ok(unsafe { OwnedFd::from_raw_fd(fd) });
            }
        }
    }
    Err(Error::new(format!("{what}: no fd received")))
}

/// Makes `slave` the process's controlling terminal and its stdin, stdout and stderr.
pub fn become_console(slave: &OwnedFd) -> Result<()> {
    nix::unistd::setsid().ctx("setsid")?;
    // SAFETY: TIOCSCTTY with an integer argument.
    if unsafe { libc::ioctl(slave.as_raw_fd(), libc::TIOCSCTTY, 0) } != 0 {
        return Err(std::io::Error::last_os_error()).ctx("set controlling terminal");
    }
    for target in 0..3 {
        // SAFETY: dup2 onto the standard fds.
        if unsafe { libc::dup2(slave.as_raw_fd(), target) } < 0 {
            return Err(std::io::Error::last_os_error()).ctx("dup2 pty");
        }
    }
    Ok(())
}

/// Puts a terminal in raw mode; returns the old settings to restore.
pub fn make_raw(fd: RawFd) -> Option<nix::sys::termios::Termios> {
    use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg};
    // SAFETY: the fd is the caller's stdin, valid for the duration of the call.
    let bfd = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
    let old = tcgetattr(bfd).ok()?;
    let mut raw = old.clone();
    cfmakeraw(&mut raw);
    tcsetattr(bfd, SetArg::TCSANOW, &raw).ok()?;
    Some(old)
}

pub fn restore(fd: RawFd, t: &nix::sys::termios::Termios) {
    // SAFETY: as in make_raw.
    let bfd = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
    let _ = nix::sys::termios::tcsetattr(bfd, nix::sys::termios::SetArg::TCSANOW, t);
}

/// Copies between the caller's stdio and the pty master until the master closes (the
/// container's side of the pty is gone) or `done()` says the process exited.
pub fn relay(master: &OwnedFd, mut done: impl FnMut() -> bool) {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use std::os::fd::AsFd;
    let stdin = std::io::stdin();
    let mut stdin_open = true;
    let mut buf = [0u8; 8192];
    loop {
        let mut fds = vec![PollFd::new(master.as_fd(), PollFlags::POLLIN)];
        if stdin_open {
            fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
        }
        match poll(&mut fds, PollTimeout::from(100u16)) {
            Err(nix::Error::EINTR) => continue,
            Err(_) => return,
            Ok(0) => {
                if done() {
                    return;
                }
                continue;
            }
            Ok(_) => {}
        }
        let m = fds[0].revents().unwrap_or(PollFlags::empty());
        let s = fds.get(1).and_then(|f| f.revents()).unwrap_or(PollFlags::empty());
        if m.intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR) {
            match nix::unistd::read(master, &mut buf) {
                Ok(n) if n > 0 => {
                    let _ = write_all(1, &buf[..n]);
                }
                Err(nix::Error::EINTR) | Err(nix::Error::EAGAIN) => {}
                _ => return, // EIO: no slave left open
            }
        }
        if s.intersects(PollFlags::POLLIN | PollFlags::POLLHUP) {
            match nix::unistd::read(&stdin, &mut buf) {
                Ok(n) if n > 0 => {
                    let _ = write_all(master.as_raw_fd(), &buf[..n]);
                }
                _ => stdin_open = false,
            }
        }
    }
}

fn write_all(fd: RawFd, mut b: &[u8]) -> nix::Result<()> {
    // SAFETY: fd is open for the duration of the relay.
    let bfd = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
    while !b.is_empty() {
        match nix::unistd::write(bfd, b) {
            Ok(n) => b = &b[n..],
            Err(nix::Error::EINTR) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// The window size of the caller's terminal on stdin.
pub fn caller_winsize() -> Option<ConsoleSize> {
    let mut ws = libc::winsize { ws_row: 0, ws_col: 0, ws_xpixel: 0, ws_ypixel: 0 };
    // SAFETY: TIOCGWINSZ writes one winsize struct.
    if unsafe { libc::ioctl(0, libc::TIOCGWINSZ, &mut ws) } != 0 {
        return None;
    }
    Some(ConsoleSize { height: ws.ws_row as u32, width: ws.ws_col as u32 })
}
