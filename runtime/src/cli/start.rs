//! `berth start ID`: let a created container's init exec the process. Cheap by design:
//! one write to the exec fifo.

use super::args;
use super::Global;
use crate::container::{Container, Status};
use crate::error::{Context, Error, Result};

pub fn main(g: &Global, a: &[String]) -> Result<()> {
    let p = args::parse(a, &[], false)?;
    let id = super::require_id(&p, "start")?;
    let c = Container::load(&g.root, &id)?;
    start(&c)
}

pub fn start(c: &Container) -> Result<()> {
    match c.status() {
        Status::Created => {}
        Status::Stopped => return Err(Error::new("cannot start a container that has stopped")),
        Status::Running | Status::Paused => return Err(Error::new("cannot start an already running container")),
        Status::Creating => return Err(Error::new("cannot start a container that is being created")),
    }
    use std::os::unix::fs::OpenOptionsExt;
    let fifo = std::fs::OpenOptions::new().write(true).custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC).open(c.fifo_path());
    let mut fifo = match fifo {
        Ok(f) => f,
        Err(e) if e.raw_os_error() == Some(libc::ENXIO) => {
            return Err(Error::new("cannot start a container that has stopped"));
        }
        Err(e) => return Err(e).ctx("open exec fifo"),
    };
    use std::io::Write;
    fifo.write_all(b"0").ctx("write exec fifo")?;
    wait_for_exec(&fifo);
    drop(fifo);
    let _ = std::fs::remove_file(c.fifo_path());
    crate::logging::debug(&format!("container {} started", c.id));
    let spec = c.config()?;
    if let Some(h) = &spec.hooks {
        crate::hooks::run_all_warn("poststart", &h.poststart, &c.state_json());
    }
    Ok(())
}

/// The init holds the fifo open (close-on-exec) until it execs the process: once no
/// reader is left, the process runs (or the init failed), and a signal sent after
/// `start` returns reaches the process, not the init.
fn wait_for_exec(fifo: &std::fs::File) {
    use std::os::fd::AsRawFd;
    let mut p = libc::pollfd { fd: fifo.as_raw_fd(), events: 0, revents: 0 };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::time::Instant::now() < deadline {
        // SAFETY: poll on one pollfd we own; with no events asked, only POLLERR (no
        // readers left) or POLLHUP wakes it.
        let r = unsafe { libc::poll(&mut p, 1, 100) };
        if r > 0 {
            return;
        }
    }
}
