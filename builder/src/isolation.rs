//! Where a build runs: as PID 1 of a PID namespace of its own, in a mount namespace of
//! its own, tied to the process that started it.
//!
//! `berth-build build` forks once. The parent (the process CI started and may kill)
//! only waits: it forwards SIGINT, SIGTERM, SIGHUP and SIGQUIT to the child and exits
//! with its status. The child has `PR_SET_PDEATHSIG(SIGKILL)`, so it dies with the
//! parent whatever kills it, and as the init of its PID namespace it takes every process
//! of the build with it: the kernel kills the namespace's processes when its init dies,
//! including the shims and the containers of RUN (their PID namespaces are nested in
//! it). A SIGKILL of berth-build thus ends the build's containers at once instead of
//! leaving them to run their command to the end; their overlay mounts go with the mount
//! namespace; what stays (temp dirs, cgroup dirs, runtime state) is reclaimed by the next
//! build or prune (see store/temp.rs), or by the parent when only the child was killed.
//!
//! The child mounts a /proc of its PID namespace (in its own mount namespace, not
//! propagated to the host): the runtime it runs reads /proc for the pids it made.

use crate::error::Context as _;
use std::io;
use std::path::Path;

fn errno<T>(what: &str) -> crate::Result<T> {
    Err(format!("{what}: {}", io::Error::last_os_error()).into())
}

/// Forks the build into its namespaces. Returns in the child, ready to build; the parent
/// never returns (it exits with the child's status). Must be called while the process is
/// single-threaded.
pub fn enter(store: &Path) -> crate::Result<()> {
    // To go back to after the fork: the parent's later children (the runtime it runs to
    // reclaim a killed build's containers) cannot be made in a namespace whose init died.
    let own = std::fs::File::open("/proc/self/ns/pid").context("open /proc/self/ns/pid")?;
    // SAFETY: unshare(2) with a flag; it only affects the children made after it.
    if unsafe { libc::unshare(libc::CLONE_NEWPID) } < 0 {
        return errno("cannot make a PID namespace for the build (berth-build needs root)");
    }
    // The signals the parent waits for, blocked before the fork so none is lost; the
    // child gets the old mask back.
    // SAFETY: sigset manipulation on local sets, then sigprocmask for this (only) thread.
    let (set, old) = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT, libc::SIGCHLD] {
            libc::sigaddset(&mut set, s);
        }
        libc::sigprocmask(libc::SIG_BLOCK, &set, &mut old);
        (set, old)
    };
    // The child learns that the parent died before PR_SET_PDEATHSIG took effect from
    // this pipe: the parent holds the write end until it exits.
    let mut fds = [0; 2];
    // SAFETY: pipe2(2) into a local array.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } < 0 {
        return errno("pipe");
    }
    // SAFETY: fork(2) of a single-threaded process.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return errno("fork");
    }
    if pid > 0 {
        // SAFETY: closing the read end we do not use; setns(2) back into our own PID
        // namespace (for children only) through an fd we own.
        unsafe {
            libc::close(fds[0]);
            libc::setns(std::os::fd::AsRawFd::as_raw_fd(&own), libc::CLONE_NEWPID);
        }
        drop(own);
        supervise(pid, &set, store);
    }
    drop(own);
    // The child: PID 1 of the new namespace.
    // SAFETY: prctl, close, poll and sigprocmask with plain arguments and local data.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0, 0, 0);
        libc::close(fds[1]);
        let mut p = libc::pollfd { fd: fds[0], events: libc::POLLIN, revents: 0 };
        if libc::poll(&mut p, 1, 0) > 0 && p.revents & libc::POLLHUP != 0 {
            libc::_exit(137); // the parent is gone already
        }
        libc::close(fds[0]);
        libc::sigprocmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
    }
    crate::overlay::private_mount_namespace().context("cannot make a private mount namespace (berth-build needs root)")?;
    mount_proc().context("cannot mount /proc for the build's PID namespace")
}

/// A /proc of our PID namespace over /proc (in our mount namespace only).
fn mount_proc() -> io::Result<()> {
    // SAFETY: mount(2) with static C strings and no data.
    let r = unsafe { libc::mount(c"proc".as_ptr(), c"/proc".as_ptr(), c"proc".as_ptr(), libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC, std::ptr::null()) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The parent: forwards the stop signals to the build and exits as it exits. If the
/// build was killed (only it: the OOM killer, a kill of its pid), its temp dirs and its
/// containers' cgroups are reclaimed here at once.
fn supervise(child: libc::pid_t, set: &libc::sigset_t, store: &Path) -> ! {
    loop {
        // SAFETY: sigwaitinfo on a set of blocked signals into a local siginfo.
        let sig = unsafe {
            let mut info: libc::siginfo_t = std::mem::zeroed();
            libc::sigwaitinfo(set, &mut info)
        };
        if sig < 0 {
            continue; // EINTR
        }
        if sig != libc::SIGCHLD {
            // SAFETY: kill(2) of our own child.
            unsafe { libc::kill(child, sig) };
            continue;
        }
        let mut status = 0;
        // SAFETY: waitpid of our own child.
        let r = unsafe { libc::waitpid(child, &mut status, libc::WNOHANG) };
        if r != child {
            continue;
        }
        if libc::WIFEXITED(status) {
            std::process::exit(libc::WEXITSTATUS(status));
        }
        let sig = libc::WTERMSIG(status);
        if let Ok(s) = crate::store::Store::open(store) {
            let _ = s.reclaim_temp(false);
        }
        eprintln!("berth-build: the build was killed by signal {sig}");
        std::process::exit(128 + sig);
    }
}
