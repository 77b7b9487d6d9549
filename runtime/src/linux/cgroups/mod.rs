//! Control groups. A container's cgroup is driven through one [`Manager`], chosen once
//! at create and named in state.json, so every later command drives it the same way:
//! - [`v1::V1`]: cgroupfs on v1 hierarchies, a directory per controller; also hybrid
//!   hosts (v1 controllers plus a cgroup2 mount that only tracks membership);
//! - [`v2::V2`]: cgroupfs on the unified (v2) hierarchy;
//! - [`systemd::Systemd`]: a transient scope unit that systemd makes around the init
//!   (`--systemd-cgroup`), with the limits systemd owns set as unit properties and the
//!   rest written by the cgroupfs manager of the host's layout.
//!
//! Where the hierarchies are: `layout.rs`; cgroupsPath forms: `path.rs`; device rules
//! and the v2 eBPF filter: `devices.rs`; usage numbers: `stats.rs`; OOM kills: `oom.rs`.

pub mod devices;
pub mod fs;
pub mod layout;
pub mod oom;
pub mod path;
pub mod stats;
pub mod systemd;
pub mod v1;
pub mod v2;

pub use oom::OomWatch;

use crate::error::{Error, Result};
use berth_spec::{Linux, Resources};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

/// What a container's cgroup is, as create made it (saved in state.json).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CgroupPaths {
    /// v1 hierarchy name ("memory", "cpu,cpuacct", "name=systemd", ...) -> directory.
    #[serde(default)]
    pub v1: BTreeMap<String, PathBuf>,
    /// The directory in the cgroup2 hierarchy (the only one on v2; the `unified` one on hybrid).
    #[serde(default)]
    pub unified: Option<PathBuf>,
    /// The directories create made (and delete removes), deepest last.
    #[serde(default)]
    pub created: Vec<PathBuf>,
    /// Parent directories removed on delete when they are empty (the default `/berth`).
    #[serde(default)]
    pub prune: Vec<PathBuf>,
    /// With the systemd driver: the scope unit that holds the container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub systemd_unit: Option<String>,
}

impl CgroupPaths {
    /// The v1 directory of a controller, if that controller has a hierarchy.
    pub fn v1_dir(&self, controller: &str) -> Option<&Path> {
        self.v1.iter().find(|(k, _)| k.split(',').any(|c| c == controller)).map(|(_, v)| v.as_path())
    }

    /// Whether the v2 hierarchy is the one holding the controllers.
    pub fn is_v2(&self) -> bool {
        self.v1.is_empty() && self.unified.is_some()
    }

    /// All directories a process is placed in.
    pub fn all_dirs(&self) -> impl Iterator<Item = &Path> {
        self.v1.values().map(|p| p.as_path()).chain(self.unified.as_deref())
    }
}

/// One container's cgroup, whichever driver holds it. The order at create is
/// `create`, then `join_files` (the new init writes itself into them as its first
/// step), clone, `enter` with the init's pid, then `apply`; later commands rebuild the
/// manager from state.json with [`load`].
pub trait Manager {
    /// Where the cgroup is: saved in state.json once the init has entered it.
    fn paths(&self) -> &CgroupPaths;
    /// What `create` and `enter` are about to make, for the record create writes first
    /// (so that a delete after create was killed finds it): the directories, those
    /// missing now listed as made, and the systemd unit.
    fn plan(&self) -> CgroupPaths;
    /// Makes the cgroup before the init exists (cgroupfs); systemd makes its scope only
    /// around a process, at `enter`.
    fn create(&mut self) -> Result<()>;
    /// Files through which the new init moves itself in (see [`join_self`]); opened by
    /// the parent, so they work from any namespace the child is in.
    fn join_files(&self) -> Result<Vec<OwnedFd>>;
    /// The init exists (and has joined through `join_files`): systemd starts the scope
    /// with it here.
    fn enter(&mut self, init_pid: i32) -> Result<()>;
    /// Moves another process (`berth exec`'s) into the cgroup.
    fn add_process(&self, pid: i32) -> Result<()>;
    /// Moves `berth exec`'s process in beside the container's init (`init_pid`).
    fn add_exec(&self, pid: i32, _init_pid: i32) -> Result<()> {
        self.add_process(pid)
    }
    /// Applies `linux.resources` and the device rules, before the container's process runs.
    fn apply(&self, linux: &Linux) -> Result<()>;
    /// Changes limits of a running container (`berth update`); devices are left alone.
    fn update(&self, r: &Resources) -> Result<()>;
    fn can_freeze(&self) -> bool;
    /// Freezes (returning once everything is frozen) or thaws.
    fn freeze(&self, frozen: bool) -> Result<()>;
    fn is_frozen(&self) -> bool;
    fn stats(&self) -> stats::Stats;
    /// Every process in the cgroup, and in the cgroups the container made below it.
    fn pids(&self) -> Vec<i32>;
    fn oom_watch(&self) -> OomWatch;
    /// Removes the cgroup (its processes must be gone) and what create made for it.
    fn destroy(&self) -> Result<()>;
}

/// The manager for a new container's cgroup at `linux.cgroupsPath`, for this host's
/// layout, or systemd's with `--systemd-cgroup` (which also reads unit properties from
/// the config's `annotations`).
pub fn new(linux: &Linux, annotations: &BTreeMap<String, String>, id: &str, systemd: bool) -> Result<Box<dyn Manager>> {
    let layout = layout::Layout::detect()?;
    if systemd {
        return Ok(Box::new(systemd::Systemd::new(linux, annotations, id, layout)?));
    }
    let cgroups_path = linux.cgroups_path.as_deref();
    let rel = path::resolve(cgroups_path, id)?;
    // The default path's parent (`/berth`) goes when its last container does.
    let prune_parent = cgroups_path.is_none();
    match layout.unified {
        Some(u) if layout.v1.is_empty() => Ok(Box::new(v2::V2::new(&u, &rel, prune_parent)?)),
        _ => Ok(Box::new(v1::V1::new(&layout, &rel, prune_parent)?)),
    }
}

/// The manager of an existing container, from what create saved.
pub fn load(paths: &CgroupPaths) -> Box<dyn Manager> {
    if let Some(unit) = &paths.systemd_unit {
        return Box::new(systemd::Systemd::load(unit, paths.clone()));
    }
    if paths.is_v2() {
        Box::new(v2::V2::load(paths.clone()))
    } else {
        Box::new(v1::V1::load(paths.clone()))
    }
}

/// In the new init, first thing: writes `0` (itself) to each file of
/// [`Manager::join_files`], then closes them. A single-threaded process moving itself
/// through a v1 `tasks` file does not take the kernel's global threadgroup lock for
/// writing, which costs the parent's `cgroup.procs` write of the same pid one RCU grace
/// period (5-14 ms here) whenever that lock is in its fast mode. Only write(2) and
/// close(2): safe between clone and exec. Returns false if a write failed.
pub fn join_self(fds: &[i32]) -> bool {
    let mut ok = true;
    for &fd in fds {
        // SAFETY: write of a 1-byte static buffer and close, on fds the parent opened for us.
        unsafe {
            ok &= libc::write(fd, b"0".as_ptr() as *const libc::c_void, 1) == 1;
            libc::close(fd);
        }
    }
    ok
}

/// Signals every process in the cgroup with the cgroup frozen, so that nothing forks
/// past the signal, then thaws it (runc's `kill --all`). Returns how many it signalled.
pub fn signal_all(m: &dyn Manager, sig: i32) -> usize {
    let frozen = m.can_freeze() && {
        if let Err(e) = m.freeze(true) {
            crate::logging::warn(&format!("freeze before signalling: {e}"));
        }
        true
    };
    let pids = m.pids();
    for &p in &pids {
        // SAFETY: kill(2) with integers.
        unsafe { libc::kill(p, sig) };
    }
    if frozen {
        if let Err(e) = m.freeze(false) {
            crate::logging::warn(&format!("thaw after signalling: {e}"));
        }
    }
    pids.len()
}

/// For delete of a paused container: SIGKILL everything and thaw, so that the frozen
/// processes can die (a frozen v1 task does not act on SIGKILL until thawed).
pub fn kill_frozen(m: &dyn Manager) {
    if !m.is_frozen() {
        return;
    }
    for p in m.pids() {
        // SAFETY: kill(2) with integers.
        unsafe { libc::kill(p, libc::SIGKILL) };
    }
    let _ = m.freeze(false);
}

/// The error for a pause where there is no freezer.
pub fn no_freezer() -> Error {
    Error::new("the freezer cgroup controller is not available on this host")
}
