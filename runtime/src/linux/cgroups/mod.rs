//! Control groups: where a container's cgroup lives in each hierarchy, creating it,
//! moving the init into it, and removing it. Three layouts are found at run time:
//! v1 (a hierarchy per controller), v2 (one unified hierarchy) and hybrid (v1
//! controllers plus a cgroup2 mount, as systemd's hybrid mode sets up).
//! Resource limits per version are in `v1.rs` and `v2.rs`.

pub mod devices;
pub mod layout;
mod manage;
pub mod path;
pub mod stats;
pub mod v1;
pub mod v2;

pub use manage::{apply, can_freeze, freeze, kill_frozen, signal_all, update, OomWatch};

use crate::error::{Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The container's cgroup directories, as create made them.
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
}

impl CgroupPaths {
    /// The v1 directory of a controller, if that controller has a hierarchy.
    pub fn v1_dir(&self, controller: &str) -> Option<&Path> {
        self.v1
            .iter()
            .find(|(k, _)| k.split(',').any(|c| c == controller))
            .map(|(_, v)| v.as_path())
    }

    /// Whether the v2 hierarchy is the one holding the controllers.
    pub fn is_v2(&self) -> bool {
        self.v1.is_empty() && self.unified.is_some()
    }

    /// All directories to place a process in.
    pub fn all_dirs(&self) -> impl Iterator<Item = &Path> {
        self.v1.values().map(|p| p.as_path()).chain(self.unified.as_deref())
    }

    pub fn is_frozen(&self) -> bool {
        if let Some(d) = self.v1_dir("freezer") {
            return std::fs::read_to_string(d.join("freezer.state"))
                .map(|s| s.trim() == "FROZEN")
                .unwrap_or(false);
        }
        // Without a v1 freezer (v2, or hybrid without one), the v2 core freezer.
        if let Some(u) = &self.unified {
            return std::fs::read_to_string(u.join("cgroup.freeze"))
                .map(|s| s.trim() == "1")
                .unwrap_or(false);
        }
        false
    }

    /// Pids of every process in the container's cgroup.
    pub fn pids(&self) -> Vec<i32> {
        let dir = self
            .v1_dir("pids")
            .or_else(|| self.v1_dir("freezer"))
            .or(self.unified.as_deref())
            .or_else(|| self.v1.values().next().map(|p| p.as_path()));
        let Some(dir) = dir else { return Vec::new() };
        // The container may have made child cgroups (through its cgroup namespace).
        let mut out = Vec::new();
        let mut todo = vec![dir.to_path_buf()];
        while let Some(d) = todo.pop() {
            if let Ok(s) = std::fs::read_to_string(d.join("cgroup.procs")) {
                out.extend(s.lines().filter_map(|l| l.trim().parse::<i32>().ok()));
            }
            if let Ok(rd) = std::fs::read_dir(&d) {
                todo.extend(rd.flatten().filter(|e| e.file_type().is_ok_and(|t| t.is_dir())).map(|e| e.path()));
            }
        }
        out
    }

    /// The files through which a new init moves itself into every hierarchy's cgroup
    /// (see `join_self`), opened by the parent: they work from any namespace the child
    /// is in, and the permission checks use the opener's credentials.
    pub fn open_join_files(&self) -> Result<Vec<std::os::fd::OwnedFd>> {
        let v1 = self.v1.values().map(|d| d.join("tasks"));
        let v2 = self.unified.iter().map(|d| d.join("cgroup.procs"));
        v1.chain(v2)
            .map(|f| {
                let file = std::fs::OpenOptions::new().write(true).open(&f).with_ctx(|| format!("open {}", f.display()))?;
                Ok(std::os::fd::OwnedFd::from(file))
            })
            .collect()
    }

    /// Moves a process into every hierarchy's cgroup.
    pub fn add_pid(&self, pid: i32) -> Result<()> {
        let pid = pid.to_string();
        for d in self.all_dirs() {
            std::fs::write(d.join("cgroup.procs"), &pid).with_ctx(|| format!("add pid {pid} to cgroup {}", d.display()))?;
        }
        Ok(())
    }

    /// Removes the container's directories (failing while processes remain in them),
    /// then the parents create made or that are to be pruned, if nothing else uses them.
    pub fn remove(&self) -> Result<()> {
        let leaves: Vec<&Path> = self.all_dirs().collect();
        for d in self.created.iter().rev().filter(|d| leaves.contains(&d.as_path())) {
            remove_dir_retrying(d).with_ctx(|| format!("remove cgroup {}", d.display()))?;
        }
        let extra_prune = self.prune.iter().filter(|p| !self.created.contains(p));
        for d in self.created.iter().rev().chain(extra_prune) {
            if !leaves.contains(&d.as_path()) {
                let _ = std::fs::remove_dir(d);
            }
        }
        Ok(())
    }
}

/// In the new init, first thing: writes `0` (itself) to each file of
/// `CgroupPaths::open_join_files`, then closes them. A single-threaded process moving
/// itself through a v1 `tasks` file does not take the kernel's global threadgroup
/// lock for writing, which costs the parent's `cgroup.procs` write of the same pid
/// one RCU grace period (5-14 ms here) whenever that lock is in its fast mode. Only
/// write(2) and close(2): safe between clone and exec. Returns false if a write failed.
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

/// rmdir of a cgroup, retried briefly: a killed process can take a moment to leave it.
fn remove_dir_retrying(d: &Path) -> std::io::Result<()> {
    let mut delay = std::time::Duration::from_millis(1);
    for attempt in 0..12 {
        match std::fs::remove_dir(d) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                // Child cgroups the container made go first, deepest first; then wait
                // for processes that are still leaving.
                remove_children(d);
                if attempt > 0 {
                    std::thread::sleep(delay);
                    delay = (delay * 2).min(std::time::Duration::from_millis(100));
                }
            }
            Err(e) => return Err(e),
        }
    }
    std::fs::remove_dir(d)
}

fn remove_children(d: &Path) {
    if let Ok(rd) = std::fs::read_dir(d) {
        for e in rd.flatten().filter(|e| e.file_type().is_ok_and(|t| t.is_dir())) {
            remove_children(&e.path());
            let _ = std::fs::remove_dir(e.path());
        }
    }
}

/// Creates the container's cgroup in every hierarchy for `cgroups_path` (the config's
/// `linux.cgroupsPath`, or the default) and returns where it is.
pub fn create(cgroups_path: Option<&str>, id: &str, systemd: bool) -> Result<CgroupPaths> {
    let layout = layout::Layout::detect()?;
    let rel = path::resolve(cgroups_path, id, systemd)?;
    let mut paths = CgroupPaths::default();
    let result = (|| -> Result<()> {
        for h in &layout.v1 {
            let dir = h.dir_for(&rel)?;
            make_dirs(&h.mountpoint, &dir, h.controllers.iter().any(|c| c == "cpuset"), &mut paths.created)?;
            if cgroups_path.is_none() {
                paths.prune.extend(dir.parent().map(Path::to_path_buf));
            }
            paths.v1.insert(h.controllers.join(","), dir);
        }
        if let Some(u) = &layout.unified {
            let dir = u.dir_for(&rel)?;
            make_dirs(&u.mountpoint, &dir, false, &mut paths.created)?;
            if cgroups_path.is_none() {
                paths.prune.extend(dir.parent().map(Path::to_path_buf));
            }
            paths.unified = Some(dir);
        }
        Ok(())
    })();
    if let Err(e) = result {
        let _ = paths.remove();
        return Err(e);
    }
    Ok(paths)
}

/// mkdir -p below a hierarchy's mountpoint, remembering what it made. A new v1 cpuset
/// cgroup starts with no cpus or mems, so they are copied from the parent (and into
/// empty ancestors on the way).
fn make_dirs(mountpoint: &Path, dir: &Path, cpuset: bool, created: &mut Vec<PathBuf>) -> Result<()> {
    // A concurrent delete may prune a shared parent between our mkdirs: try again.
    for _ in 0..3 {
        match make_dirs_once(mountpoint, dir, cpuset, created) {
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => continue,
            r => return r.with_ctx(|| format!("mkdir {}", dir.display())),
        }
    }
    make_dirs_once(mountpoint, dir, cpuset, created).with_ctx(|| format!("mkdir {}", dir.display()))
}

fn make_dirs_once(mountpoint: &Path, dir: &Path, cpuset: bool, created: &mut Vec<PathBuf>) -> std::io::Result<()> {
    // The usual case first: the parent exists (and, for cpuset, has cpus and mems).
    if let Some(parent) = dir.parent().filter(|p| p.starts_with(mountpoint) && *p != mountpoint) {
        if std::fs::create_dir(dir).is_ok() {
            created.push(dir.to_path_buf());
            if !cpuset || copy_cpuset(parent, dir)? {
                return Ok(());
            }
            // An empty cpuset parent: fill the ancestors below.
        }
    }
    let rel = dir.strip_prefix(mountpoint).unwrap_or(Path::new(""));
    let mut cur = mountpoint.to_path_buf();
    for comp in rel.components() {
        let parent = cur.clone();
        cur.push(comp);
        let made = match std::fs::create_dir(&cur) {
            Ok(()) => {
                created.push(cur.clone());
                true
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => false,
            Err(e) => return Err(e),
        };
        if cpuset {
            // Top-down, so `parent` is filled already. An existing ancestor left empty
            // by whoever made it is filled as runc does: no process could join below it.
            for f in ["cpuset.cpus", "cpuset.mems"] {
                if !made && !std::fs::read_to_string(cur.join(f)).unwrap_or_default().trim().is_empty() {
                    continue;
                }
                let v = std::fs::read_to_string(parent.join(f)).unwrap_or_default();
                std::fs::write(cur.join(f), v.trim())?;
            }
        }
    }
    Ok(())
}

/// Copies cpuset.cpus and cpuset.mems from `parent` into the new `dir`. Returns false
/// (copying nothing) when the parent has none.
fn copy_cpuset(parent: &Path, dir: &Path) -> std::io::Result<bool> {
    let read = |f: &str| std::fs::read_to_string(parent.join(f)).unwrap_or_default().trim().to_string();
    let (cpus, mems) = (read("cpuset.cpus"), read("cpuset.mems"));
    if cpus.is_empty() || mems.is_empty() {
        return Ok(false);
    }
    std::fs::write(dir.join("cpuset.cpus"), cpus)?;
    std::fs::write(dir.join("cpuset.mems"), mems)?;
    Ok(true)
}
