//! Reading a container's cgroup files from the host, and removing the cgroup trees the
//! suites made (only `/berth-e2e-*`: never a cgroup this run did not create).

use std::path::{Path, PathBuf};
use std::time::Duration;

/// The directory of `pid`'s cgroup for `controller` ("memory", "pids", "cpu", "freezer"):
/// the v1 hierarchy that has it, else the unified one.
pub fn dir_of(pid: i32, controller: &str) -> Option<PathBuf> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    let mut unified = None;
    for line in text.lines() {
        let mut f = line.splitn(3, ':');
        let (_, ctrls, path) = (f.next()?, f.next()?, f.next()?);
        if ctrls.is_empty() {
            unified = Some(path.to_string());
            continue;
        }
        if ctrls.split(',').any(|c| c == controller) {
            // The hierarchy is mounted under its controller list, e.g. cpu,cpuacct, or
            // (on this machine kind) each controller alone.
            for name in [ctrls, controller] {
                let p = Path::new("/sys/fs/cgroup").join(name).join(path.trim_start_matches('/'));
                if p.exists() {
                    return Some(p);
                }
            }
        }
    }
    let path = unified?;
    for base in ["/sys/fs/cgroup/unified", "/sys/fs/cgroup"] {
        let p = Path::new(base).join(path.trim_start_matches('/'));
        if p.join("cgroup.controllers").exists() && is_cgroup2(Path::new(base)) {
            return Some(p);
        }
    }
    None
}

fn is_cgroup2(p: &Path) -> bool {
    crate::host::mountinfo("self").iter().any(|m| Path::new(&m.mount_point) == p && m.fs_type == "cgroup2")
}

/// The value of a cgroup file of `pid`, trimmed; `v1` is the cgroup v1 file name and
/// `v2` the unified one (e.g. memory.limit_in_bytes / memory.max). Panics if neither
/// exists.
#[track_caller]
pub fn read(pid: i32, controller: &str, v1: &str, v2: &str) -> String {
    let dir =
        dir_of(pid, controller).unwrap_or_else(|| panic!("no {controller} cgroup for pid {pid}: {:?}", std::fs::read_to_string(format!("/proc/{pid}/cgroup"))));
    for f in [v1, v2] {
        if let Ok(s) = std::fs::read_to_string(dir.join(f)) {
            return s.trim().to_string();
        }
    }
    panic!("neither {v1} nor {v2} in {}", dir.display());
}

/// Whether the cgroup v1 hierarchy of `controller` is in use (else unified names apply).
pub fn is_v1(pid: i32, controller: &str) -> bool {
    dir_of(pid, controller).is_some_and(|d| d.starts_with(format!("/sys/fs/cgroup/{controller}")) || !d.join("cgroup.controllers").exists())
}

/// The freezer state of `pid`'s cgroup: "FROZEN"/"THAWED" (v1), or "1"/"0" (v2 cgroup.freeze).
pub fn freezer_state(pid: i32) -> String {
    if let Some(d) = dir_of(pid, "freezer") {
        if let Ok(s) = std::fs::read_to_string(d.join("freezer.state")) {
            return s.trim().to_string();
        }
        if let Ok(s) = std::fs::read_to_string(d.join("cgroup.freeze")) {
            return if s.trim() == "1" { "FROZEN".into() } else { "THAWED".into() };
        }
    }
    "unknown".into()
}

/// Every directory `/sys/fs/cgroup/*/REL` (and `/sys/fs/cgroup/REL` on pure v2).
fn roots_of(rel: &str) -> Vec<PathBuf> {
    let rel = rel.trim_start_matches('/');
    let mut out = Vec::new();
    let root = Path::new("/sys/fs/cgroup");
    if root.join(rel).join("cgroup.procs").exists() {
        out.push(root.join(rel));
    }
    if let Ok(rd) = std::fs::read_dir(root) {
        for e in rd.flatten() {
            let p = e.path().join(rel);
            if p.join("cgroup.procs").exists() {
                out.push(p);
            }
        }
    }
    out
}

/// Whether any cgroup directory `REL` exists.
pub fn exists(rel: &str) -> bool {
    !roots_of(rel).is_empty()
}

/// SIGKILLs every process in the cgroups under `/REL` (one of ours), and thaws them, so
/// that a container wedged in a runtime call lets its engine go on; returns how many.
pub fn kill_all(rel: &str) -> usize {
    assert!(rel.trim_start_matches('/').starts_with("berth-e2e-"), "only our own cgroups: {rel}");
    let mut killed = std::collections::HashSet::new();
    for top in roots_of(rel) {
        let mut dirs = Vec::new();
        collect(&top, &mut dirs);
        for d in &dirs {
            if let Ok(p) = std::fs::read_to_string(d.join("cgroup.procs")) {
                for pid in p.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
                    if killed.insert(pid) {
                        crate::procs::signal(pid, libc::SIGKILL);
                    }
                }
            }
            let _ = std::fs::write(d.join("freezer.state"), "THAWED");
            let _ = std::fs::write(d.join("cgroup.freeze"), "0");
        }
    }
    killed.len()
}

/// Kills what is left in, and removes, every cgroup under `/REL` (which must be one of
/// ours: `/berth-e2e-...`). Returns what could not be removed.
pub fn remove_tree(rel: &str) -> Vec<PathBuf> {
    assert!(rel.trim_start_matches('/').starts_with("berth-e2e-"), "only our own cgroups: {rel}");
    let mut left = Vec::new();
    for top in roots_of(rel) {
        let mut dirs = Vec::new();
        collect(&top, &mut dirs);
        // Deepest first.
        dirs.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
        for d in &dirs {
            if let Ok(p) = std::fs::read_to_string(d.join("cgroup.procs")) {
                for pid in p.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
                    crate::procs::signal(pid, libc::SIGKILL);
                }
            }
        }
        for d in &dirs {
            let mut ok = false;
            for _ in 0..50 {
                // A frozen cgroup cannot lose its killed tasks: thaw it first.
                let _ = std::fs::write(d.join("freezer.state"), "THAWED");
                let _ = std::fs::write(d.join("cgroup.freeze"), "0");
                if std::fs::remove_dir(d).is_ok() || !d.exists() {
                    ok = true;
                    break;
                }
                crate::procs::reap_orphans();
                std::thread::sleep(Duration::from_millis(20));
            }
            if !ok {
                left.push(d.clone());
            }
        }
    }
    left
}

fn collect(d: &Path, out: &mut Vec<PathBuf>) {
    out.push(d.to_path_buf());
    if let Ok(rd) = std::fs::read_dir(d) {
        for e in rd.flatten() {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                collect(&e.path(), out);
            }
        }
    }
}
