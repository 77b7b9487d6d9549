//! The engines' cgroups: which driver they use here ([`Driver`]), the parent every
//! container of one engine+runtime pair goes under ([`Parent`]: a cgroup or a systemd
//! slice of ours), where a container landed and with which limits, reading its cgroup
//! files from the host, and removing what the suites made (only `/berth-e2e-*` cgroups
//! and `berth_e2e_*.slice` units: never one this run did not create).

use super::systemd;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How the engines manage cgroups: as the engines choose on a host like this one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Driver {
    /// The engine (through the runtime) writes cgroupfs itself, under a path of ours.
    Cgroupfs,
    /// Containers are transient scope units that systemd makes in a slice of ours
    /// (`slice:prefix:name` cgroups paths, `--systemd-cgroup` for the runtime).
    Systemd,
}

impl Driver {
    /// `BERTH_E2E_CGROUP_DRIVER` (`systemd` or `cgroupfs`) when set; else systemd when PID 1
    /// is systemd and /sys/fs/cgroup is cgroup2 alone (as the engines are configured on
    /// such hosts), else cgroupfs.
    pub fn get() -> Driver {
        static D: std::sync::OnceLock<Driver> = std::sync::OnceLock::new();
        *D.get_or_init(|| match std::env::var("BERTH_E2E_CGROUP_DRIVER").ok().filter(|v| !v.is_empty()).as_deref() {
            Some("systemd") => Driver::Systemd,
            Some("cgroupfs") => Driver::Cgroupfs,
            Some(other) => panic!("BERTH_E2E_CGROUP_DRIVER={other}: must be systemd or cgroupfs"),
            None if systemd::booted() && crate::cgroup_support::is_pure_v2() => Driver::Systemd,
            None => Driver::Cgroupfs,
        })
    }

    /// The driver's name as the engines spell it.
    pub fn name(self) -> &'static str {
        match self {
            Driver::Cgroupfs => "cgroupfs",
            Driver::Systemd => "systemd",
        }
    }
}

/// The parent of every container of one engine with one runtime.
#[derive(Debug, Clone)]
pub struct Parent {
    pub driver: Driver,
    /// What the engine is given: the cgroup `/berth-e2e-PID-ENGINE-RT`, or the slice
    /// `berth_e2e_PID_ENGINE_RT.slice` (no `-`: in a slice's name it means nesting, and
    /// ours sits directly under the root slice).
    pub name: String,
    /// Its cgroup below a hierarchy's root: `/berth-e2e-...` or `/berth_e2e_....slice`.
    pub path: String,
}

/// Where a running container's process is.
#[derive(Debug, Clone)]
pub struct Placement {
    pub pid: i32,
    /// Its cgroup below the hierarchy's root (the unified one on pure v2, else pids').
    pub cgroup: String,
    /// That cgroup's directory.
    pub dir: PathBuf,
    /// With systemd: the scope unit the cgroup belongs to.
    pub unit: Option<String>,
}

/// A resource limit as the engine's flag sets it.
#[derive(Debug, Clone, Copy)]
pub enum Limit {
    /// `-m`: bytes (memory.limit_in_bytes / memory.max; the unit's MemoryMax).
    Memory(u64),
    /// `--pids-limit` (pids.max; TasksMax).
    Pids(u64),
    /// `--cpus`: CFS quota and period in µs (cpu.cfs_*_us / cpu.max; CPUQuotaPerSecUSec).
    Cpu { quota: u64, period: u64 },
}

impl Parent {
    /// The parent of `engine` with runtime `rt`, for the driver in use here.
    pub fn new(engine: &str, rt: &str) -> Parent {
        let pid = std::process::id();
        match Driver::get() {
            Driver::Cgroupfs => {
                let name = format!("/berth-e2e-{pid}-{engine}-{rt}");
                Parent { driver: Driver::Cgroupfs, path: name.clone(), name }
            }
            Driver::Systemd => {
                let name = format!("berth_e2e_{pid}_{engine}_{rt}.slice");
                Parent { driver: Driver::Systemd, path: format!("/{name}"), name }
            }
        }
    }

    /// The slice unit (systemd driver).
    pub fn slice(&self) -> Option<&str> {
        (self.driver == Driver::Systemd).then_some(self.name.as_str())
    }

    /// Where the container whose process is `pid` runs; asserts that it is ours: below our
    /// parent and, with systemd, in a scope unit directly in our slice that systemd knows,
    /// active, with that very cgroup, and delegated (`Delegate=yes`: the runtime writes
    /// the scope's cgroup files itself, as runc asks of systemd).
    #[track_caller]
    pub fn placement(&self, pid: i32) -> Placement {
        let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_else(|e| panic!("/proc/{pid}/cgroup: {e}"));
        let dir = dir_of(pid, "pids").unwrap_or_else(|| panic!("no pids cgroup for pid {pid}: {text}"));
        let cgroup = text
            .lines()
            .filter_map(|l| l.splitn(3, ':').nth(2))
            .find(|p| p.starts_with(&format!("{}/", self.path)))
            .unwrap_or_else(|| panic!("pid {pid} is not below {}: {text}", self.path))
            .to_string();
        let unit = self.slice().map(|slice| {
            let (parent, last) = cgroup.rsplit_once('/').unwrap_or(("", &cgroup));
            assert!(last.ends_with(".scope") && parent == self.path, "pid {pid} is in {cgroup}, not in a scope unit directly in {slice}");
            let p = systemd::show(last, &["LoadState", "ActiveState", "Slice", "ControlGroup", "Delegate"]).unwrap_or_else(|e| panic!("{e}"));
            let get = |k: &str| p.get(k).map(String::as_str).unwrap_or("");
            assert!(
                get("LoadState") == "loaded" && get("ActiveState") == "active" && get("Slice") == slice && get("ControlGroup") == cgroup,
                "systemd does not know pid {pid}'s cgroup {cgroup} as an active scope unit in {slice}: systemctl show {last} says {p:?}"
            );
            assert_eq!(get("Delegate"), "yes", "{last} is not delegated: systemctl show says {p:?}");
            last.to_string()
        });
        Placement { pid, cgroup, dir, unit }
    }

    /// Asserts every limit both in the container's cgroup files and, with systemd, in its
    /// scope unit's properties (all mismatches in one message).
    #[track_caller]
    pub fn assert_limits(&self, at: &Placement, limits: &[Limit]) {
        let pid = at.pid;
        // (what, got, wanted)
        let mut seen: Vec<(String, String, String)> = Vec::new();
        let props = at.unit.as_ref().map(|u| (u, systemd::show(u, &["MemoryMax", "TasksMax", "CPUQuotaPerSecUSec"]).unwrap_or_else(|e| panic!("{e}"))));
        for l in limits {
            match *l {
                Limit::Memory(b) => seen.push(("memory limit".into(), read(pid, "memory", "memory.limit_in_bytes", "memory.max"), b.to_string())),
                Limit::Pids(n) => seen.push(("pids.max".into(), read(pid, "pids", "pids.max", "pids.max"), n.to_string())),
                Limit::Cpu { quota, period } if is_v1(pid, "cpu") => {
                    seen.push(("cpu.cfs_quota_us".into(), read(pid, "cpu", "cpu.cfs_quota_us", "cpu.cfs_quota_us"), quota.to_string()));
                    seen.push(("cpu.cfs_period_us".into(), read(pid, "cpu", "cpu.cfs_period_us", "cpu.cfs_period_us"), period.to_string()));
                }
                Limit::Cpu { quota, period } => seen.push(("cpu.max".into(), read(pid, "cpu", "cpu.max", "cpu.max"), format!("{quota} {period}"))),
            }
            if let Some((unit, p)) = &props {
                let get = |k: &str| p.get(k).cloned().unwrap_or_default();
                match *l {
                    Limit::Memory(b) => seen.push((format!("{unit}'s MemoryMax"), get("MemoryMax"), b.to_string())),
                    Limit::Pids(n) => seen.push((format!("{unit}'s TasksMax"), get("TasksMax"), n.to_string())),
                    Limit::Cpu { quota, period } => {
                        // systemd prints it as a time span per second (`500ms`).
                        let got = get("CPUQuotaPerSecUSec");
                        let want = quota * 1_000_000 / period;
                        let got_us = systemd::parse_timespan(&got).map(|v| v.to_string()).unwrap_or(got);
                        seen.push((format!("{unit}'s CPUQuotaPerSecUSec (us)"), got_us, want.to_string()));
                    }
                }
            }
        }
        let wrong: Vec<String> = seen.iter().filter(|(_, got, want)| got != want).map(|(what, got, want)| format!("{what} is {got:?}, not {want:?}")).collect();
        assert!(wrong.is_empty(), "limits of pid {pid} in {}:\n  {}", at.cgroup, wrong.join("\n  "));
    }

    /// Waits until the container's cgroup directory and, with systemd, its scope unit are
    /// gone (after it stopped or was removed).
    #[track_caller]
    pub fn wait_gone(&self, at: &Placement) {
        let what = match &at.unit {
            Some(u) => format!("{} and the unit {u} to go", at.dir.display()),
            None => format!("{} to go", at.dir.display()),
        };
        super::poll(Duration::from_secs(15), &what, || {
            let unit_gone = at.unit.as_ref().map(|u| systemd::unit_gone(u).unwrap_or(false)).unwrap_or(true);
            (unit_gone && !at.dir.exists()).then_some(())
        });
    }

    /// What is left below our parent: child cgroups (but `keep`, which an engine leaves by
    /// design) and, with systemd, units still in our slice. Empty when nothing is.
    pub fn leftovers(&self, keep: &[&str]) -> Vec<String> {
        let mut left = Vec::new();
        for top in roots_of(&self.path) {
            let mut dirs = Vec::new();
            collect(&top, &mut dirs);
            for d in dirs.iter().skip(1) {
                let rel = d.strip_prefix(&top).map(|r| r.to_string_lossy().into_owned()).unwrap_or_default();
                if !keep.iter().any(|k| rel == *k || rel.starts_with(&format!("{k}/"))) {
                    left.push(format!("cgroup {}", d.display()));
                }
            }
        }
        if let Some(slice) = self.slice() {
            match systemd::property(slice, "SliceOf") {
                Ok(units) => left.extend(units.split_whitespace().map(|u| format!("unit {u} in {slice}"))),
                Err(e) => left.push(e),
            }
        }
        left.sort();
        left.dedup();
        left
    }

    /// Asserts that nothing is left below our parent (see [`Parent::leftovers`]), giving the
    /// engine a moment to finish its cleanup.
    #[track_caller]
    pub fn assert_empty(&self, keep: &[&str]) {
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        loop {
            let left = self.leftovers(keep);
            if left.is_empty() {
                return;
            }
            if std::time::Instant::now() > deadline {
                panic!("left below {} after every container was removed:\n  {}", self.name, left.join("\n  "));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// SIGKILLs (and thaws) every process below our parent; how many.
    pub fn kill_all(&self) -> usize {
        kill_all(&self.path)
    }

    /// Removes our parent: with systemd, stops our slice (see [`stop_slice`]), then
    /// checks that no cgroup is left, removing (and reporting) the cgroups systemd did
    /// not own. Returns the problems.
    pub fn teardown(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if let Some(slice) = self.slice() {
            problems.extend(stop_slice(slice));
            if exists(&self.path) {
                let mut dirs = Vec::new();
                for top in roots_of(&self.path) {
                    collect(&top, &mut dirs);
                }
                problems.push(format!("cgroups systemd did not remove with {slice} (removing them): {dirs:?}"));
            }
        }
        let left = remove_tree(&self.path);
        if !left.is_empty() {
            problems.push(format!("cgroups left: {left:?}"));
        }
        problems
    }
}

/// Stops one of our slices (`berth_e2e_*.slice`) and every unit in it, and checks that
/// systemd is done with them. What still runs in it is SIGKILLed first: a container's
/// init ignores the SIGTERM a stop sends (it is PID 1 of its namespace), and systemd
/// would wait its 90 s stop timeout. Units left failed are reset, so that systemd
/// forgets them. Returns the problems.
pub fn stop_slice(slice: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let units = systemd::property(slice, "SliceOf").unwrap_or_default();
    let killed = kill_all(&format!("/{slice}"));
    if killed > 0 {
        eprintln!("berth-e2e: killed {killed} process(es) still in {slice} before stopping it");
    }
    if let Err(e) = systemd::stop(slice) {
        problems.push(e);
    }
    for u in units.split_whitespace().chain([slice]) {
        if systemd::property(u, "ActiveState").is_ok_and(|s| s == "failed") {
            if let Err(e) = systemd::reset_failed(u) {
                problems.push(e);
            }
        }
    }
    match systemd::show(slice, &["ActiveState", "SliceOf"]) {
        Ok(p) => {
            if !matches!(p.get("ActiveState").map(String::as_str), Some("inactive") | None) || !p.get("SliceOf").is_none_or(|s| s.trim().is_empty()) {
                problems.push(format!("{slice} after systemctl stop: {p:?}"));
            }
        }
        Err(e) => problems.push(e),
    }
    problems
}

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

/// The freezer state of `pid`'s cgroup: "FROZEN"/"THAWED" (v1 freezer.state, or v2
/// cgroup.freeze "1"/"0").
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

/// On cgroup v2: whether the kernel reports `pid`'s cgroup frozen (cgroup.events' `frozen`,
/// which follows cgroup.freeze once every task has stopped). None on a v1 freezer.
pub fn frozen_event(pid: i32) -> Option<bool> {
    let d = dir_of(pid, "freezer")?;
    let events = std::fs::read_to_string(d.join("cgroup.events")).ok()?;
    events.lines().find_map(|l| l.strip_prefix("frozen ")).map(|v| v.trim() == "1")
}

/// Whether `rel` names one of the suites' own cgroups (or slices).
fn ours(rel: &str) -> bool {
    let r = rel.trim_start_matches('/');
    r.starts_with("berth-e2e-") || (r.starts_with("berth_e2e_") && r.split('/').next().is_some_and(|s| s.ends_with(".slice")))
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
    assert!(ours(rel), "only our own cgroups: {rel}");
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
/// ours: `/berth-e2e-...` or `/berth_e2e_....slice`). Returns what could not be removed.
pub fn remove_tree(rel: &str) -> Vec<PathBuf> {
    assert!(ours(rel), "only our own cgroups: {rel}");
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
