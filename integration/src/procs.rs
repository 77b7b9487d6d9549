//! Child processes of the test binary: every command the harness starts is tracked, the
//! test process is a child subreaper, and a background thread reaps the orphans (the
//! detached container inits) that are reparented to it, as containerd-shim or conmon
//! would. PID 1 on the test machines does not reap, so without this every stopped
//! container would stay a zombie.

use std::collections::HashSet;
use std::io;
use std::process::{Child, Command};
use std::sync::{Mutex, MutexGuard, Once};
use std::time::Duration;

/// Pids of children spawned through [`spawn`] that have not been waited for yet. The
/// reaper never touches them: their `Child` owner waits for them. Holding this lock
/// across spawn and insert means the reaper cannot see such a child untracked.
static TRACKED: Mutex<Option<HashSet<i32>>> = Mutex::new(None);

fn tracked() -> MutexGuard<'static, Option<HashSet<i32>>> {
    TRACKED.lock().unwrap_or_else(|e| e.into_inner())
}

/// Makes this process a child subreaper and starts the reaper thread, once.
pub fn init() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // SAFETY: prctl with integer arguments only.
        let r = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1 as libc::c_ulong, 0, 0, 0) };
        assert_eq!(r, 0, "prctl(PR_SET_CHILD_SUBREAPER): {}", io::Error::last_os_error());
        std::thread::Builder::new()
            .name("berth-it-reaper".into())
            .spawn(|| loop {
                reap_orphans();
                std::thread::sleep(Duration::from_millis(25));
            })
            .expect("spawn reaper thread");
        // SAFETY: registers a plain extern "C" function to run at exit.
        unsafe { libc::atexit(kill_leftovers) };
    });
}

/// At exit: every process still below this test binary was started by it (directly or
/// by the runtime it ran) and would otherwise be reparented to PID 1, which never reaps.
/// Such a process means a runtime leaked it, so say so, then kill it by pid.
extern "C" fn kill_leftovers() {
    let left = descendants();
    for (pid, cmd) in &left {
        eprintln!("berth-integration: killing process {pid} left behind by the runtime: {cmd}");
        signal(*pid, libc::SIGKILL);
    }
    if !left.is_empty() {
        std::thread::sleep(Duration::from_millis(100));
        reap_orphans();
    }
}

/// Spawns `cmd` and tracks its pid until [`untrack`] is called after it was waited for.
pub fn spawn(cmd: &mut Command) -> io::Result<Child> {
    init();
    let mut g = tracked();
    let child = cmd.spawn()?;
    g.get_or_insert_with(HashSet::new).insert(child.id() as i32);
    Ok(child)
}

pub fn untrack(pid: u32) {
    if let Some(s) = tracked().as_mut() {
        s.remove(&(pid as i32));
    }
}

/// One line of `/proc/PID/stat`, the fields we need.
#[derive(Debug, Clone)]
pub struct ProcStat {
    pub pid: i32,
    pub comm: String,
    pub state: char,
    pub ppid: i32,
}

pub fn stat(pid: i32) -> Option<ProcStat> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // comm may hold spaces and parentheses: it ends at the last ')'.
    let open = s.find('(')?;
    let close = s.rfind(')')?;
    let comm = s[open + 1..close].to_string();
    let mut rest = s[close + 1..].split_whitespace();
    let state = rest.next()?.chars().next()?;
    let ppid = rest.next()?.parse().ok()?;
    Some(ProcStat { pid, comm, state, ppid })
}

pub fn all_pids() -> Vec<i32> {
    let mut v: Vec<i32> = std::fs::read_dir("/proc").map(|d| d.flatten().filter_map(|e| e.file_name().to_str()?.parse().ok()).collect()).unwrap_or_default();
    v.sort();
    v
}

/// Reaps zombies that are our children but were not spawned by us: container processes
/// reparented to this subreaper.
pub fn reap_orphans() {
    let me = std::process::id() as i32;
    let g = tracked();
    let skip = g.as_ref();
    for pid in all_pids() {
        if skip.is_some_and(|s| s.contains(&pid)) {
            continue;
        }
        if let Some(st) = stat(pid) {
            if st.ppid == me && st.state == 'Z' {
                let mut status = 0;
                // SAFETY: waitpid on a specific zombie child of ours.
                unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
            }
        }
    }
}

/// Live (non-zombie) processes descended from this test process, other than the
/// children the harness spawned and still tracks, with their command lines.
pub fn descendants() -> Vec<(i32, String)> {
    let me = std::process::id() as i32;
    let stats: Vec<ProcStat> = all_pids().into_iter().filter_map(stat).collect();
    let mut tree: HashSet<i32> = HashSet::from([me]);
    // Parents usually have smaller pids, but not always (pid wrap): iterate to a fixpoint.
    loop {
        let before = tree.len();
        for s in &stats {
            if tree.contains(&s.ppid) {
                tree.insert(s.pid);
            }
        }
        if tree.len() == before {
            break;
        }
    }
    let g = tracked();
    let skip = g.as_ref();
    stats
        .iter()
        .filter(|s| s.pid != me && tree.contains(&s.pid) && s.state != 'Z')
        .filter(|s| !skip.is_some_and(|t| t.contains(&s.pid)))
        // Threads of this process are not in /proc's top level; anything here is a process.
        .map(|s| (s.pid, cmdline(s.pid).unwrap_or_else(|| format!("[{}]", s.comm))))
        .collect()
}

pub fn cmdline(pid: i32) -> Option<String> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let s: Vec<String> = raw.split(|b| *b == 0).filter(|p| !p.is_empty()).map(|p| String::from_utf8_lossy(p).into_owned()).collect();
    if s.is_empty() {
        None
    } else {
        Some(s.join(" "))
    }
}

pub fn alive(pid: i32) -> bool {
    matches!(stat(pid), Some(s) if s.state != 'Z' && s.state != 'X')
}

/// Sends `sig` to a process this harness started (never by name).
pub fn signal(pid: i32, sig: i32) {
    // SAFETY: kill(2) with integers.
    unsafe { libc::kill(pid, sig) };
}

/// `Command::output()` for a tracked child (an untracked one could be reaped by the
/// reaper thread before `output()` waits for it). For short host commands whose output
/// goes to pipes; runtime commands go through `runtime::Runtime` instead.
pub fn output(cmd: &mut Command) -> io::Result<std::process::Output> {
    use std::process::Stdio;
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let child = spawn(cmd)?;
    let pid = child.id();
    let r = child.wait_with_output();
    untrack(pid);
    r
}
