//! Everything the bench makes is registered here and removed by [`run`]: at the end, on
//! an error, on SIGINT/SIGTERM (seen by the next wait), and from the panic hook (release
//! builds abort on panic, so Drop guards would not run). Removal order: every container
//! under each runtime's --root (`delete --force`), then any process still below the
//! bench (ours by ancestry; killed by pid, never by name) and reaped, then the cgroups
//! under the bench's own parent in every hierarchy (from the host's mount namespace, so
//! that /sys/fs/cgroup/unified is seen too), then the temp dir.

use std::os::unix::io::RawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct Registry {
    pub dir: PathBuf,
    /// (runtime binary, its --root)
    pub roots: Vec<(PathBuf, PathBuf)>,
    /// The bench's cgroup parent, relative to each hierarchy's root ("berth-bench-PID").
    pub cgroup_parent: String,
    /// The host's mount namespace (the bench runs in a private one).
    pub host_mnt_ns: Option<RawFd>,
}

static REG: Mutex<Option<Registry>> = Mutex::new(None);
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

pub fn register(r: Registry) {
    *REG.lock().unwrap_or_else(|e| e.into_inner()) = Some(r);
}

pub fn note_interrupted() {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

pub fn install_panic_hook() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        default(info);
        eprintln!("bench: cleaning up after the panic");
        for p in run() {
            eprintln!("bench: cleanup: {p}");
        }
    }));
}

/// Blocking wait for one child with a timeout (cleanup cannot use the Procs loop: it
/// also runs from the panic hook).
fn wait_pid(pid: i32, timeout: Duration) -> Option<i32> {
    let deadline = Instant::now() + timeout;
    loop {
        let mut st = 0;
        // SAFETY: waitpid on our own child, not blocking.
        let r = unsafe { libc::waitpid(pid, &mut st, libc::WNOHANG) };
        if r == pid {
            return Some(st);
        }
        if r < 0 || Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn reap_all() {
    loop {
        let mut st = 0;
        // SAFETY: reaps any exited child without blocking.
        if unsafe { libc::waitpid(-1, &mut st, libc::WNOHANG | libc::__WALL) } <= 0 {
            return;
        }
    }
}

/// Removes everything registered; returns what could not be removed. Idempotent.
pub fn run() -> Vec<String> {
    let Some(reg) = REG.lock().unwrap_or_else(|e| e.into_inner()).take() else { return vec![] };
    let mut problems = Vec::new();
    for (bin, root) in &reg.roots {
        let ids: Vec<String> = std::fs::read_dir(root)
            .map(|d| d.flatten().filter(|e| e.path().is_dir()).map(|e| e.file_name().to_string_lossy().into_owned()).collect())
            .unwrap_or_default();
        for id in ids {
            let child = std::process::Command::new(bin)
                .arg("--root")
                .arg(root)
                .args(["delete", "--force", &id])
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn();
            match child {
                Ok(c) => {
                    let pid = c.id() as i32;
                    match wait_pid(pid, Duration::from_secs(30)) {
                        Some(st) if libc::WIFEXITED(st) && libc::WEXITSTATUS(st) == 0 => {}
                        other => problems.push(format!("{} --root {} delete --force {id}: {other:?}", bin.display(), root.display())),
                    }
                }
                Err(e) => problems.push(format!("{}: {e}", bin.display())),
            }
        }
    }
    // Shims exit once their container is gone; anything else below us is a leak.
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        reap_all();
        let left = berth_integration::procs::descendants();
        if left.is_empty() {
            break;
        }
        if Instant::now() > deadline {
            for (pid, cmd) in &left {
                problems.push(format!("killed process {pid} left behind: {cmd}"));
                // SAFETY: kill(2) by pid of a process descended from the bench.
                unsafe { libc::kill(*pid, libc::SIGKILL) };
            }
            std::thread::sleep(Duration::from_millis(100));
            reap_all();
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    problems.extend(remove_cgroups(&reg));
    let d = reg.dir.to_string_lossy().trim_end_matches('/').to_string();
    unmount_below(&d);
    let mounted: Vec<String> =
        berth_integration::host::mountinfo("self").into_iter().map(|m| m.mount_point).filter(|p| *p == d || p.starts_with(&format!("{d}/"))).collect();
    if mounted.is_empty() {
        if let Err(e) = std::fs::remove_dir_all(&reg.dir) {
            if reg.dir.exists() {
                problems.push(format!("remove {}: {e}", reg.dir.display()));
            }
        }
    } else {
        problems.push(format!("kept {} because of mounts {mounted:?}", reg.dir.display()));
    }
    if let Some(fd) = reg.host_mnt_ns {
        // SAFETY: closes the fd we opened.
        unsafe { libc::close(fd) };
    }
    problems
}

/// Removes `<hierarchy>/<cgroup_parent>` trees in a child that went back to the host's
/// mount namespace. A cgroup that still holds processes (ours, by construction) has
/// them killed first.
fn remove_cgroups(reg: &Registry) -> Vec<String> {
    if reg.cgroup_parent.is_empty() {
        return vec![];
    }
    // SAFETY: fork of the single-threaded bench; the child only does file-system calls
    // and exits with _exit.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        if let Some(fd) = reg.host_mnt_ns {
            // SAFETY: setns into the host's mount namespace (single-threaded child).
            unsafe { libc::setns(fd, libc::CLONE_NEWNS) };
        }
        let mut bad = 0;
        if let Ok(rd) = std::fs::read_dir("/sys/fs/cgroup") {
            for h in rd.flatten() {
                let top = h.path().join(&reg.cgroup_parent);
                if top.exists() && !remove_tree(&top) {
                    eprintln!("bench: cleanup: could not remove cgroup {}", top.display());
                    bad += 1;
                }
            }
        }
        // SAFETY: leave the forked child without running the parent's atexit handlers.
        unsafe { libc::_exit(if bad == 0 { 0 } else { 1 }) };
    }
    if pid < 0 {
        return vec!["fork for cgroup cleanup failed".into()];
    }
    match wait_pid(pid, Duration::from_secs(30)) {
        Some(st) if libc::WIFEXITED(st) && libc::WEXITSTATUS(st) == 0 => vec![],
        _ => vec![format!("some cgroups under {} were not removed", reg.cgroup_parent)],
    }
}

fn remove_tree(dir: &Path) -> bool {
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                remove_tree(&e.path());
            }
        }
    }
    for _ in 0..50 {
        if std::fs::remove_dir(dir).is_ok() {
            return true;
        }
        let procs = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
        for p in procs.split_whitespace().filter_map(|p| p.parse::<i32>().ok()) {
            // SAFETY: kill(2) by pid of a process in the bench's own cgroup.
            unsafe { libc::kill(p, libc::SIGKILL) };
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    std::fs::remove_dir(dir).is_ok()
}

/// Detaches every mount at or below `dir` in the bench's mount namespace, deepest first:
/// a builder (buildah's overlay storage) interrupted mid-build leaves its mounts there,
/// and they are ours by construction (the directory is the bench's own temp dir).
fn unmount_below(dir: &str) {
    let mut points: Vec<String> =
        berth_integration::host::mountinfo("self").into_iter().map(|m| m.mount_point).filter(|p| p == dir || p.starts_with(&format!("{dir}/"))).collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for p in points {
        if let Ok(c) = std::ffi::CString::new(p) {
            // SAFETY: umount2 of a NUL-terminated path below our own temp dir.
            unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
        }
    }
}
