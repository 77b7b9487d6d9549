//! `berth run [create flags] [--detach] ID`: create and start, then (unless detached)
//! wait for the process, forward signals to it, delete the container and exit with
//! the process's status (128+signal when it was killed).

use super::create;
use super::Global;
use crate::container::Container;
use crate::error::Result;
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

pub fn main(g: &Global, a: &[String]) -> Result<i32> {
    let (o, p) = create::parse(a, "run")?;
    let mut c = create::create(g, &o)?;
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
    let code = wait_forwarding_signals(pid);
    match Container::load(&g.root, &o.id) {
        Ok(c) => {
            if let Err(e) = c.destroy() {
                crate::logging::warn(&format!("delete after run: {e}"));
            }
        }
        Err(_) => {} // deleted by someone else meanwhile
    }
    Ok(code)
}

/// Waits for the init (our child), passing on the signals a user sends to `berth run`.
fn wait_forwarding_signals(pid: i32) -> i32 {
    let mut set = SigSet::empty();
    for s in [
        Signal::SIGCHLD, Signal::SIGHUP, Signal::SIGINT, Signal::SIGQUIT, Signal::SIGTERM, Signal::SIGUSR1,
        Signal::SIGUSR2, Signal::SIGWINCH, Signal::SIGCONT, Signal::SIGTSTP, Signal::SIGALRM,
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
