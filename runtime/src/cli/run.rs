//! `berth run [create flags] [--detach] ID`: create and start, then (unless detached)
//! wait for the process, forward signals to it, delete the container and exit with
//! the process's status (128+signal when it was killed).

use super::create;
use super::Global;
use crate::container::Container;
use crate::error::{Error, Result};
use crate::linux::signals;
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

pub fn main(g: &Global, a: &[String]) -> Result<i32> {
    let (o, p) = create::parse(a, "run")?;
    let (mut c, relay) = create::create(g, &o)?;
    // Interrupted as the create finished: the container was never started, so it goes.
    if let Some(sig) = signals::take_pending_interrupt() {
        c.kill_and_cleanup();
        let _ = std::fs::remove_dir_all(&c.dir);
        let name = signals::name(sig);
        return Err(Error::interrupted(sig, format!("interrupted by {name} while the container was being created; it was removed")));
    }
    // With a terminal and no console socket, the init sent us the pty master.
    let master = match &relay {
        Some(sock) => match crate::linux::tty::recv_fd(sock) {
            Ok(m) => Some(m),
            Err(e) => {
                c.kill_and_cleanup();
                let _ = std::fs::remove_dir_all(&c.dir);
                return Err(e);
            }
        },
        None => None,
    };
    if let Err(e) = super::start::start(&c) {
        c.kill_and_cleanup();
        let _ = std::fs::remove_dir_all(&c.dir);
        return Err(e);
    }
    if p.has("detach") {
        return Ok(0);
    }
    let pid = c.saved.pid;
    // Other commands (kill, state) must reach the container while we wait.
    c.unlock();
    let code = match &master {
        Some(m) => wait_with_terminal(pid, m),
        None => wait_forwarding_signals(pid),
    };
    // Not there any more: deleted by someone else meanwhile.
    if let Ok(c) = Container::load(&g.root, &o.id) {
        if let Err(e) = c.destroy() {
            crate::logging::warn(&format!("delete after run: {e}"));
        }
    }
    Ok(code)
}

/// Waits for the init (our child), passing on the signals a user sends to `berth run`.
pub fn wait_forwarding_signals(pid: i32) -> i32 {
    let mut set = SigSet::empty();
    for s in [
        Signal::SIGCHLD,
        Signal::SIGHUP,
        Signal::SIGINT,
        Signal::SIGQUIT,
        Signal::SIGTERM,
        Signal::SIGUSR1,
        Signal::SIGUSR2,
        Signal::SIGWINCH,
        Signal::SIGCONT,
        Signal::SIGTSTP,
        Signal::SIGALRM,
    ] {
        set.add(s);
    }
    let _ = nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&set), None);
    let child = Pid::from_raw(pid);
    loop {
        // Check before waiting: the child may have exited before the mask was set.
        match waitpid(child, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(_, code)) => return code,
            Ok(WaitStatus::Signaled(_, sig, _)) => return 128 + sig as i32,
            Ok(_) => {}
            Err(_) => return 255,
        }
        match set.wait() {
            Ok(Signal::SIGCHLD) | Err(_) => continue,
            Ok(sig) => {
                let _ = nix::sys::signal::kill(child, sig);
            }
        }
    }
}

/// Waits for our child while relaying the terminal between the caller's stdio and the
/// pty master (stdin in raw mode when it is a terminal).
pub fn wait_with_terminal(pid: i32, master: &std::os::fd::OwnedFd) -> i32 {
    use std::os::fd::AsRawFd;
    // SAFETY: isatty on fd 0.
    let saved = if unsafe { libc::isatty(0) } == 1 {
        if let Some(ws) = crate::linux::tty::caller_winsize() {
            crate::linux::tty::set_winsize(master.as_raw_fd(), &ws);
        }
        crate::linux::tty::make_raw(0)
    } else {
        None
    };
    let child = Pid::from_raw(pid);
    let mut status = None;
    crate::linux::tty::relay(master, || {
        // Blocked since create: passed on, as without a terminal.
        if let Some(sig) = signals::take_pending_interrupt() {
            // SAFETY: kill(2) with integers, to our own child.
            unsafe { libc::kill(pid, sig) };
        }
        match waitpid(child, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(_, c)) => {
                status = Some(c);
                true
            }
            Ok(WaitStatus::Signaled(_, s, _)) => {
                status = Some(128 + s as i32);
                true
            }
            Ok(_) => false,
            Err(_) => true,
        }
    });
    if let Some(t) = &saved {
        crate::linux::tty::restore(0, t);
    }
    match status {
        Some(s) => s,
        None => match waitpid(child, None) {
            Ok(WaitStatus::Exited(_, c)) => c,
            Ok(WaitStatus::Signaled(_, s, _)) => 128 + s as i32,
            _ => 255,
        },
    }
}
