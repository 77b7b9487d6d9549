//! A daemon the suite starts (containerd, dockerd): its own child, in the engine's
//! network namespace, output to a log file, stopped by pid (SIGTERM, wait, SIGKILL).

use crate::procs;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Daemon {
    pub name: String,
    pub pid: i32,
    pub log: PathBuf,
    child: Option<Child>,
}

impl Daemon {
    /// Starts `cmd` (in `netns`) with stdout and stderr to `log`. It gets SIGTERM if the
    /// test thread that started it dies without stopping it.
    pub fn start(name: &str, mut cmd: Command, netns: i32, log: &Path) -> Result<Daemon, String> {
        let f = File::create(log).map_err(|e| format!("create {}: {e}", log.display()))?;
        let f2 = f.try_clone().map_err(|e| e.to_string())?;
        cmd.stdin(Stdio::null()).stdout(f).stderr(f2);
        super::cli::prepare(&mut cmd, Some(netns), Vec::new(), true);
        let what = format!("{cmd:?}");
        let child = procs::spawn(&mut cmd).map_err(|e| format!("cannot start {name}: {what}: {e}"))?;
        Ok(Daemon { name: name.to_string(), pid: child.id() as i32, log: log.to_path_buf(), child: Some(child) })
    }

    pub fn alive(&mut self) -> bool {
        match self.child.as_mut().map(|c| c.try_wait()) {
            Some(Ok(None)) => true,
            Some(Ok(Some(_))) => {
                if let Some(c) = self.child.take() {
                    procs::untrack(c.id());
                }
                false
            }
            _ => false,
        }
    }

    /// The last `n` lines of its log.
    pub fn log_tail(&self, n: usize) -> String {
        let t = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = t.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// Waits until `ready()` holds, or fails if the daemon died or `timeout` passed.
    pub fn wait_ready(&mut self, timeout: Duration, mut ready: impl FnMut() -> bool) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        loop {
            if ready() {
                return Ok(());
            }
            if !self.alive() {
                return Err(format!("{} exited during startup; its log ends:\n{}", self.name, self.log_tail(30)));
            }
            if Instant::now() > deadline {
                return Err(format!("{} not ready after {timeout:?}; its log ends:\n{}", self.name, self.log_tail(30)));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// SIGTERM, wait up to `grace`, then SIGKILL; reaps it.
    pub fn stop(&mut self, grace: Duration) {
        let Some(mut c) = self.child.take() else { return };
        if let Ok(None) = c.try_wait() {
            procs::signal(c.id() as i32, libc::SIGTERM);
            let deadline = Instant::now() + grace;
            loop {
                match c.try_wait() {
                    Ok(Some(_)) | Err(_) => break,
                    Ok(None) if Instant::now() > deadline => {
                        eprintln!("berth-e2e: {} (pid {}) ignored SIGTERM for {grace:?}: SIGKILL", self.name, self.pid);
                        procs::signal(c.id() as i32, libc::SIGKILL);
                        let _ = c.wait();
                        break;
                    }
                    Ok(None) => std::thread::sleep(Duration::from_millis(50)),
                }
            }
        }
        procs::untrack(c.id());
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop(Duration::from_secs(20));
    }
}

/// Unmounts (lazily, deepest first) everything mounted at or under `dir` in our mount
/// namespace. Returns what is still mounted.
pub fn umount_under(dir: &Path) -> Vec<String> {
    for _ in 0..3 {
        let mut m = crate::host::mounts_under(dir);
        if m.is_empty() {
            break;
        }
        m.sort_by_key(|p| std::cmp::Reverse(p.len()));
        for p in m {
            let _ = crate::host::umount(Path::new(&p));
        }
    }
    crate::host::mounts_under(dir)
}

/// Removes a work dir once nothing is mounted under it (unless BERTH_E2E_KEEP=1).
pub fn remove_dir(dir: &Path) -> Result<(), String> {
    let left = umount_under(dir);
    if !left.is_empty() {
        return Err(format!("kept {}: still mounted: {left:?}", dir.display()));
    }
    if std::env::var("BERTH_E2E_KEEP").map(|v| v == "1").unwrap_or(false) {
        eprintln!("berth-e2e: kept {} (BERTH_E2E_KEEP=1)", dir.display());
        return Ok(());
    }
    std::fs::remove_dir_all(dir).map_err(|e| format!("remove {}: {e}", dir.display()))
}
