//! cgroupfs file and directory handling that every driver shares: writing a control
//! file, reading a number, making a cgroup's directories (remembering which were made),
//! removing them, and listing the processes of a cgroup tree.

use crate::error::{Context, Result};
use std::path::{Path, PathBuf};

/// Writes `value` to a control file (no O_CREAT: a missing file is an error, and
/// truncation is what the kernel expects of a new value).
pub fn write_path(p: &Path, value: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new().write(true).truncate(true).open(p)?;
    f.write_all(value.as_bytes())
}

/// A single-number control file; "max" reads as u64::MAX.
pub fn read_u64(p: &Path) -> Option<u64> {
    let s = std::fs::read_to_string(p).ok()?;
    let s = s.trim();
    if s == "max" {
        return Some(u64::MAX);
    }
    s.parse().ok()
}

/// mkdir -p of `dir` below a hierarchy's mountpoint, pushing what it made onto
/// `created`. `cpuset`: a new v1 cpuset cgroup starts with no cpus or mems (and no
/// process can join it), so they are copied from the parent, into empty ancestors too.
pub fn make_dirs(mountpoint: &Path, dir: &Path, cpuset: bool, created: &mut Vec<PathBuf>) -> Result<()> {
    // A concurrent delete may prune a shared parent between our mkdirs: try again.
    for _ in 0..3 {
        match make_dirs_once(mountpoint, dir, cpuset, created) {
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => continue,
            r => return r.with_ctx(|| format!("mkdir {}", dir.display())),
        }
    }
    make_dirs_once(mountpoint, dir, cpuset, created).with_ctx(|| format!("mkdir {}", dir.display()))
}

/// The directories from `mountpoint` down to `dir` that do not exist now, deepest last:
/// what [`make_dirs`] would make.
pub fn missing_dirs(mountpoint: &Path, dir: &Path) -> Vec<PathBuf> {
    let rel = dir.strip_prefix(mountpoint).unwrap_or(Path::new(""));
    let mut cur = mountpoint.to_path_buf();
    let mut out = Vec::new();
    for comp in rel.components() {
        cur.push(comp);
        if !out.is_empty() || !cur.exists() {
            out.push(cur.clone());
        }
    }
    out
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

/// Removes `leaves` (failing while processes remain in them), then the other `created`
/// directories and `prune` parents, deepest first, where nothing else uses them.
pub fn remove_dirs(leaves: &[&Path], created: &[PathBuf], prune: &[PathBuf]) -> Result<()> {
    for d in created.iter().rev().filter(|d| leaves.contains(&d.as_path())) {
        remove_dir_retrying(d).with_ctx(|| format!("remove cgroup {}", d.display()))?;
    }
    let extra_prune = prune.iter().filter(|p| !created.contains(p));
    for d in created.iter().rev().chain(extra_prune) {
        if !leaves.contains(&d.as_path()) {
            let _ = std::fs::remove_dir(d);
        }
    }
    Ok(())
}

/// rmdir of a cgroup, retried briefly: a killed process can take a moment to leave it.
pub fn remove_dir_retrying(d: &Path) -> std::io::Result<()> {
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
    match std::fs::remove_dir(d) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        r => r,
    }
}

fn remove_children(d: &Path) {
    if let Ok(rd) = std::fs::read_dir(d) {
        for e in rd.flatten().filter(|e| e.file_type().is_ok_and(|t| t.is_dir())) {
            remove_children(&e.path());
            let _ = std::fs::remove_dir(e.path());
        }
    }
}

/// Pids in `dir` and in the cgroups below it (the container may have made its own,
/// through its cgroup namespace).
pub fn pids_below(dir: &Path) -> Vec<i32> {
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

/// Opens `file` for writing, for a process to join a cgroup through it later.
pub fn open_for_join(file: &Path) -> Result<std::os::fd::OwnedFd> {
    let f = std::fs::OpenOptions::new().write(true).open(file).with_ctx(|| format!("open {}", file.display()))?;
    Ok(std::os::fd::OwnedFd::from(f))
}

/// Writes `pid` to `dir/cgroup.procs`.
pub fn add_pid(dir: &Path, pid: i32) -> Result<()> {
    let pid = pid.to_string();
    std::fs::write(dir.join("cgroup.procs"), &pid).with_ctx(|| format!("add pid {pid} to cgroup {}", dir.display()))
}

/// "mlx4_0 hca_handle=2 hca_object=2000" from {"hcaHandles": 2, "hcaObjects": 2000}.
pub fn rdma_line(dev: &str, lim: &serde_json::Value) -> String {
    let mut s = dev.to_string();
    if let Some(h) = lim.get("hcaHandles").and_then(|v| v.as_u64()) {
        s.push_str(&format!(" hca_handle={h}"));
    }
    if let Some(o) = lim.get("hcaObjects").and_then(|v| v.as_u64()) {
        s.push_str(&format!(" hca_object={o}"));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_dirs_are_those_below_the_deepest_existing_one() {
        let m = std::env::temp_dir().join(format!("berth-missing-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&m);
        std::fs::create_dir_all(m.join("a")).unwrap();
        assert_eq!(missing_dirs(&m, &m.join("a/b/c")), vec![m.join("a/b"), m.join("a/b/c")]);
        assert!(missing_dirs(&m, &m.join("a")).is_empty());
        std::fs::remove_dir_all(&m).unwrap();
    }
}
