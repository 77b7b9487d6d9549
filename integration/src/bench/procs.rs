//! Child processes and their cost. The bench is single-threaded, a child subreaper, and
//! keeps SIGCHLD, SIGINT, SIGTERM and SIGHUP blocked: it sleeps in `sigtimedwait` and
//! collects every exit with `wait4(-1)`, so a command's wall time ends within
//! microseconds of its exit and its rusage (user+sys CPU, peak RSS, page faults of the
//! process and of the children it waited for) comes from the kernel. Exits of processes
//! it did not spawn (container inits and shims reparented to it) are kept by pid until
//! claimed. A pending SIGINT/SIGTERM/SIGHUP turns the next wait into an error, so the
//! caller unwinds through its cleanup.

use super::Result;
use std::collections::HashMap;
use std::process::Command;
use std::time::{Duration, Instant};

/// One finished process.
#[derive(Clone, Copy)]
pub struct Exit {
    pub pid: i32,
    /// The raw wait status.
    pub status: i32,
    /// From spawn to the reaping `wait4`; None for a process the bench did not spawn.
    pub wall: Option<Duration>,
    pub ru: libc::rusage,
}

fn tv_ms(t: libc::timeval) -> f64 {
    t.tv_sec as f64 * 1e3 + t.tv_usec as f64 / 1e3
}

impl Exit {
    pub fn success(&self) -> bool {
        libc::WIFEXITED(self.status) && libc::WEXITSTATUS(self.status) == 0
    }
    pub fn describe(&self) -> String {
        if libc::WIFEXITED(self.status) {
            format!("exit status {}", libc::WEXITSTATUS(self.status))
        } else if libc::WIFSIGNALED(self.status) {
            format!("killed by signal {}", libc::WTERMSIG(self.status))
        } else {
            format!("wait status {:#x}", self.status)
        }
    }
    pub fn wall_ms(&self) -> f64 {
        self.wall.map(|d| d.as_secs_f64() * 1e3).unwrap_or(f64::NAN)
    }
    pub fn user_ms(&self) -> f64 {
        tv_ms(self.ru.ru_utime)
    }
    pub fn sys_ms(&self) -> f64 {
        tv_ms(self.ru.ru_stime)
    }
    pub fn cpu_ms(&self) -> f64 {
        self.user_ms() + self.sys_ms()
    }
    /// ru_maxrss: the largest RSS of the process or any descendant it waited for (KiB).
    pub fn maxrss_kb(&self) -> f64 {
        self.ru.ru_maxrss as f64
    }
    pub fn minflt(&self) -> f64 {
        self.ru.ru_minflt as f64
    }
    pub fn majflt(&self) -> f64 {
        self.ru.ru_majflt as f64
    }
    /// Voluntary + involuntary context switches.
    pub fn csw(&self) -> f64 {
        (self.ru.ru_nvcsw + self.ru.ru_nivcsw) as f64
    }
}

pub struct Procs {
    started: HashMap<i32, Instant>,
    finished: HashMap<i32, Exit>,
    sigset: libc::sigset_t,
}

impl Procs {
    /// Blocks the signals the bench waits for and makes it a child subreaper.
    pub fn init() -> Result<Procs> {
        // SAFETY: sigset manipulation on a local set, then sigprocmask and prctl with
        // integer arguments. The bench has no other threads.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            for s in [libc::SIGCHLD, libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
                libc::sigaddset(&mut set, s);
            }
            if libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) != 0 {
                return Err(format!("sigprocmask: {}", std::io::Error::last_os_error()));
            }
            if libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1 as libc::c_ulong, 0, 0, 0) != 0 {
                return Err(format!("prctl(PR_SET_CHILD_SUBREAPER): {}", std::io::Error::last_os_error()));
            }
            Ok(Procs { started: HashMap::new(), finished: HashMap::new(), sigset: set })
        }
    }

    /// Spawns `cmd`; its wall time starts now. (std resets the signal mask in the child.)
    pub fn spawn(&mut self, cmd: &mut Command) -> Result<i32> {
        let t = Instant::now();
        let child = cmd.spawn().map_err(|e| format!("cannot run {:?}: {e}", cmd.get_program()))?;
        let pid = child.id() as i32;
        // A stale exit under a reused pid is no longer anyone's.
        self.finished.remove(&pid);
        self.started.insert(pid, t);
        // `child` is dropped without waiting: wait4 below reaps it.
        Ok(pid)
    }

    /// Reaps every exited child without blocking.
    fn collect(&mut self) {
        loop {
            let mut status = 0;
            // SAFETY: rusage is plain data that wait4 fills in.
            let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
            // SAFETY: wait4 for any child, not blocking.
            let pid = unsafe { libc::wait4(-1, &mut status, libc::WNOHANG | libc::__WALL, &mut ru) };
            if pid <= 0 {
                return;
            }
            let now = Instant::now();
            let wall = self.started.remove(&pid).map(|t| now - t);
            self.finished.insert(pid, Exit { pid, status, wall, ru });
        }
    }

    /// Sleeps until a child exits, a stop signal arrives, or `deadline`.
    fn pump(&mut self, deadline: Instant) -> Result<()> {
        self.collect();
        let left = deadline.saturating_duration_since(Instant::now());
        let ts = libc::timespec { tv_sec: left.as_secs() as libc::time_t, tv_nsec: left.subsec_nanos() as libc::c_long };
        // SAFETY: sigtimedwait on our blocked set with a local timespec.
        let sig = unsafe { libc::sigtimedwait(&self.sigset, std::ptr::null_mut(), &ts) };
        if sig == libc::SIGINT || sig == libc::SIGTERM || sig == libc::SIGHUP {
            super::cleanup::note_interrupted();
            return Err(format!("interrupted by signal {sig}"));
        }
        self.collect();
        Ok(())
    }

    /// Takes the exit of `pid` if it has been reaped.
    pub fn take(&mut self, pid: i32) -> Option<Exit> {
        self.collect();
        self.finished.remove(&pid)
    }

    /// Forgets exits nobody claimed (pids that may be reused).
    pub fn forget_unclaimed(&mut self) {
        self.collect();
        self.finished.clear();
    }

    /// Forgets a stale exit of `pid` (a process known to be alive now has that pid).
    pub fn forget(&mut self, pid: i32) {
        self.finished.remove(&pid);
    }

    /// Waits for `pid` (spawned by us or reparented to us). Past `timeout`, kills it if
    /// the bench spawned it, and fails.
    pub fn wait(&mut self, pid: i32, timeout: Duration) -> Result<Exit> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(e) = self.take(pid) {
                return Ok(e);
            }
            if Instant::now() >= deadline {
                if self.started.contains_key(&pid) {
                    // SAFETY: kill(2) of our own child by pid.
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                }
                return Err(format!("process {pid} did not exit within {timeout:?}"));
            }
            self.pump(deadline)?;
        }
    }

    /// Waits for whichever of `pids` exits first.
    pub fn wait_any(&mut self, pids: &[i32], timeout: Duration) -> Result<Exit> {
        let deadline = Instant::now() + timeout;
        loop {
            self.collect();
            if let Some(p) = pids.iter().find(|p| self.finished.contains_key(p)) {
                return Ok(self.finished.remove(p).expect("present"));
            }
            if Instant::now() >= deadline {
                return Err(format!("none of {pids:?} exited within {timeout:?}"));
            }
            self.pump(deadline)?;
        }
    }

    /// Sleeps for `d`, reaping meanwhile (and failing on a stop signal).
    pub fn sleep(&mut self, d: Duration) -> Result<()> {
        let deadline = Instant::now() + d;
        while Instant::now() < deadline {
            self.pump(deadline)?;
        }
        Ok(())
    }

    /// Polls `f` every millisecond until it is true, or fails after `timeout`.
    pub fn poll_until(&mut self, timeout: Duration, what: &str, mut f: impl FnMut() -> bool) -> Result<()> {
        let deadline = Instant::now() + timeout;
        while !f() {
            if Instant::now() >= deadline {
                return Err(format!("timed out after {timeout:?} waiting for {what}"));
            }
            self.pump((Instant::now() + Duration::from_millis(1)).min(deadline))?;
        }
        Ok(())
    }
}

/// sum_exec_runtime of one process so far, from /proc/PID/schedstat (ms): its own CPU
/// time, excluding children. For a container init that has not exited yet.
pub fn sched_cpu_ms(pid: i32) -> Option<f64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/schedstat")).ok()?;
    s.split_whitespace().next()?.parse::<f64>().ok().map(|ns| ns / 1e6)
}

/// Rss, Pss, Pss_Anon, Pss_File (KiB) from /proc/PID/smaps_rollup.
pub fn smaps_rollup(pid: i32) -> Option<[f64; 4]> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?;
    let field = |k: &str| -> Option<f64> { s.lines().find_map(|l| l.strip_prefix(k)?.strip_prefix(':')?.trim().trim_end_matches("kB").trim().parse().ok()) };
    Some([field("Rss")?, field("Pss")?, field("Pss_Anon").unwrap_or(f64::NAN), field("Pss_File").unwrap_or(f64::NAN)])
}

/// The pid in a pid file, once it holds a whole one.
pub fn read_pid_file(p: &std::path::Path) -> Option<i32> {
    std::fs::read_to_string(p).ok()?.trim().parse().ok().filter(|p| *p > 0)
}
