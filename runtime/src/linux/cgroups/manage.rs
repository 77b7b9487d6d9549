//! What the commands do with a container's cgroup, whichever version holds its
//! controllers: apply limits at create, update them, freeze and thaw, signal everything
//! in it, and watch for OOM kills. v1 (and hybrid, whose controllers are on v1) goes to
//! `v1.rs`, pure v2 to `v2.rs`.

use super::{devices, layout, v1, v2, CgroupPaths};
use crate::error::{Error, Result};
use berth_spec::{Linux, Resources};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Applies `linux.resources` and the device rules to a new cgroup, before the init joins it.
pub fn apply(cg: &CgroupPaths, linux: &Linux) -> Result<()> {
    let rules = devices::rules_for(linux)?;
    let empty = Resources::default();
    let r = linux.resources.as_ref().unwrap_or(&empty);
    if cg.is_v2() {
        let dir = cg.unified.as_deref().expect("v2 has a unified dir");
        if let Some(u) = layout::Layout::detect()?.unified {
            v2::enable_controllers(&u.mountpoint, dir);
        }
        v2::set(dir, r, Some(&rules))
    } else {
        v1::set(cg, r, Some(&rules))
    }
}

/// Changes limits of a running container (`berth update`); devices are left alone.
pub fn update(cg: &CgroupPaths, r: &Resources) -> Result<()> {
    if cg.is_v2() {
        v2::set(cg.unified.as_deref().expect("v2 has a unified dir"), r, None)
    } else {
        v1::set(cg, r, None)
    }
}

/// The v1 freezer if there is one, else the cgroup v2 core freezer (also on hybrid hosts
/// without a v1 freezer hierarchy).
pub fn can_freeze(cg: &CgroupPaths) -> bool {
    cg.v1_dir("freezer").is_some() || cg.unified.as_ref().is_some_and(|u| u.join("cgroup.freeze").exists())
}

pub fn freeze(cg: &CgroupPaths, frozen: bool) -> Result<()> {
    if let Some(d) = cg.v1_dir("freezer") {
        return v1::freeze(d, frozen);
    }
    if let Some(u) = &cg.unified {
        return v2::freeze(u, frozen);
    }
    if !frozen {
        return Ok(());
    }
    Err(Error::new("the freezer cgroup controller is not available on this host"))
}

/// Signals every process in the cgroup with the cgroup frozen, so that nothing forks
/// past the signal, then thaws it (runc's `kill --all`). Returns how many it signalled.
pub fn signal_all(cg: &CgroupPaths, sig: i32) -> usize {
    let frozen = can_freeze(cg) && {
        if let Err(e) = freeze(cg, true) {
            crate::logging::warn(&format!("freeze before signalling: {e}"));
        }
        true
    };
    let pids = cg.pids();
    for &p in &pids {
        // SAFETY: kill(2) with integers.
        unsafe { libc::kill(p, sig) };
    }
    if frozen {
        if let Err(e) = freeze(cg, false) {
            crate::logging::warn(&format!("thaw after signalling: {e}"));
        }
    }
    pids.len()
}

/// For delete of a paused container: SIGKILL everything and thaw, so that the frozen
/// processes can die (a frozen v1 task does not act on SIGKILL until thawed).
pub fn kill_frozen(cg: &CgroupPaths) {
    if !cg.is_frozen() {
        return;
    }
    for p in cg.pids() {
        // SAFETY: kill(2) with integers.
        unsafe { libc::kill(p, libc::SIGKILL) };
    }
    let _ = freeze(cg, false);
}

/// Waits for OOM kills in a container's cgroup.
pub enum OomWatch {
    V1(v1::OomEvents),
    V2 { dir: PathBuf, seen: u64 },
    None,
}

impl OomWatch {
    pub fn new(cg: &CgroupPaths) -> OomWatch {
        if cg.is_v2() {
            if let Some(u) = &cg.unified {
                if let Some(n) = v2::oom_kills(u) {
                    return OomWatch::V2 { dir: u.clone(), seen: n };
                }
            }
            return OomWatch::None;
        }
        match cg.v1_dir("memory").map(v1::OomEvents::register) {
            Some(Ok(e)) => OomWatch::V1(e),
            Some(Err(e)) => {
                crate::logging::warn(&format!("no OOM events: {e}"));
                OomWatch::None
            }
            None => OomWatch::None,
        }
    }

    /// Waits up to `timeout`; true if an OOM happened.
    pub fn wait(&mut self, timeout: Duration) -> bool {
        match self {
            OomWatch::V1(e) => e.wait(timeout),
            OomWatch::V2 { dir, seen } => {
                let deadline = Instant::now() + timeout;
                loop {
                    if let Some(n) = v2::oom_kills(dir) {
                        if n > *seen {
                            *seen = n;
                            return true;
                        }
                    }
                    let now = Instant::now();
                    if now >= deadline {
                        return false;
                    }
                    std::thread::sleep((deadline - now).min(Duration::from_millis(100)));
                }
            }
            OomWatch::None => {
                std::thread::sleep(timeout);
                false
            }
        }
    }
}
