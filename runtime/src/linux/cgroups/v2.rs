//! cgroup v2 (one unified hierarchy): the [`V2`] manager, and resource limits written as
//! runc's `fs2` driver writes them, with runc's mappings from the v1-shaped OCI values:
//! - cpu.shares -> cpu.weight: `1 + ((shares - 2) * 9999) / 262142`
//! - quota/period -> cpu.max "QUOTA PERIOD" ("max" for no quota)
//! - memory.swap (memory+swap, as on v1) -> memory.swap.max = swap - limit
//! - memory.reservation -> memory.low; -1 -> "max"
//! - blockIO.weight -> io.bfq.weight when BFQ is there, else io.weight
//!   `1 + (weight - 10) * 9999 / 990`; throttles -> io.max "MAJ:MIN rbps=N"
//! - hugepageLimits -> hugetlb.SIZE.max; devices -> an eBPF filter (devices.rs)
//! - `linux.resources.unified` key/values, written last, as given.
//!
//! The freezer is `cgroup.freeze` (confirmed through `cgroup.events`), and OOM kills are
//! counted in `memory.events`.

use super::devices::{self, Rule};
use super::fs::{self, write_path};
use super::layout::Hierarchy;
use super::{stats, CgroupPaths, Manager, OomWatch};
use crate::error::{Error, Result};
use berth_spec::{BlockIo, Cpu, Linux, Memory, Resources};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

/// A container's cgroup in the unified hierarchy.
pub struct V2 {
    paths: CgroupPaths,
    /// The hierarchy's mountpoint, for create and for enabling controllers at apply.
    mountpoint: Option<PathBuf>,
}

impl V2 {
    /// The directory for `rel` in the unified hierarchy `h` (made by `create`).
    pub fn new(h: &Hierarchy, rel: &str, prune_parent: bool) -> Result<V2> {
        // A relative path goes beside the runtime's own cgroup, not below it: that cgroup
        // has processes (ours, a shell's, a service's), so no controller could be enabled
        // for a child of it (no internal processes). runc resolves it the same way.
        let dir = if rel.starts_with('/') {
            h.dir_for(rel)?
        } else {
            let parent = Path::new(&h.own).parent().and_then(Path::to_str).unwrap_or("/");
            h.dir_for(&format!("{}/{rel}", parent.trim_end_matches('/')))?
        };
        let mut paths = CgroupPaths::default();
        if prune_parent {
            paths.prune.extend(dir.parent().map(Path::to_path_buf));
        }
        paths.unified = Some(dir);
        Ok(V2 { paths, mountpoint: Some(h.mountpoint.clone()) })
    }

    /// An existing cgroup directory `dir` (the systemd driver's scope), below `mountpoint`.
    pub fn existing(mountpoint: &Path, dir: PathBuf) -> V2 {
        V2 { paths: CgroupPaths { unified: Some(dir), ..Default::default() }, mountpoint: Some(mountpoint.to_path_buf()) }
    }

    pub fn load(paths: CgroupPaths) -> V2 {
        V2 { paths, mountpoint: None }
    }

    fn dir(&self) -> &Path {
        self.paths.unified.as_deref().expect("a v2 manager has its directory")
    }
}

impl Manager for V2 {
    fn paths(&self) -> &CgroupPaths {
        &self.paths
    }

    fn plan(&self) -> CgroupPaths {
        let mut p = self.paths.clone();
        if let Some(m) = &self.mountpoint {
            p.created.extend(fs::missing_dirs(m, self.dir()));
        }
        p
    }

    fn create(&mut self) -> Result<()> {
        let Some(m) = &self.mountpoint else { return Ok(()) };
        let dir = self.dir().to_path_buf();
        fs::make_dirs(m, &dir, false, &mut self.paths.created)
    }

    fn join_files(&self) -> Result<Vec<OwnedFd>> {
        Ok(vec![fs::open_for_join(&self.dir().join("cgroup.procs"))?])
    }

    fn enter(&mut self, _init_pid: i32) -> Result<()> {
        Ok(())
    }

    fn add_process(&self, pid: i32) -> Result<()> {
        fs::add_pid(self.dir(), pid)
    }

    /// A container that enabled controllers for cgroups of its own (systemd or dockerd
    /// inside it) has moved its processes to leaves: its own cgroup now refuses processes
    /// with EBUSY (no internal processes), so the exec'd one joins the init's cgroup, as
    /// with runc and crun.
    fn add_exec(&self, pid: i32, init_pid: i32) -> Result<()> {
        let procs = self.dir().join("cgroup.procs");
        match std::fs::write(&procs, pid.to_string()) {
            Ok(()) => Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => fs::add_pid(&init_cgroup_below(self.dir(), init_pid)?, pid),
            Err(e) => Err(Error::new(format!("add pid {pid} to cgroup {}: {}", self.dir().display(), Error::from(e)))),
        }
    }

    fn apply(&self, linux: &Linux) -> Result<()> {
        let rules = devices::rules_for(linux)?;
        let blocked = self.mountpoint.as_deref().and_then(|m| enable_controllers(m, self.dir()));
        set(self.dir(), linux.resources.as_ref().unwrap_or(&Resources::default()), Some(&rules)).map_err(|e| match blocked {
            Some(busy) if e.msg().contains("controller is not available") => Error::new(format!(
                "{e}: cgroup {} has processes of its own, and cgroup v2 allows no internal processes (a cgroup with processes cannot enable controllers for its children); put the container beside those processes, not below them",
                busy.display()
            )),
            _ => e,
        })
    }

    fn update(&self, r: &Resources) -> Result<()> {
        set(self.dir(), r, None)
    }

    fn can_freeze(&self) -> bool {
        self.dir().join("cgroup.freeze").exists()
    }

    fn freeze(&self, frozen: bool) -> Result<()> {
        freeze(self.dir(), frozen)
    }

    fn is_frozen(&self) -> bool {
        is_frozen(self.dir())
    }

    fn stats(&self) -> stats::Stats {
        stats::collect_v2(self.dir())
    }

    fn pids(&self) -> Vec<i32> {
        fs::pids_below(self.dir())
    }

    fn oom_watch(&self) -> OomWatch {
        OomWatch::v2(self.dir())
    }

    fn destroy(&self) -> Result<()> {
        fs::remove_dirs(&[self.dir()], &self.paths.created, &self.paths.prune)
    }
}

pub fn shares_to_weight(shares: u64) -> u64 {
    if shares == 0 {
        return 0;
    }
    1 + (shares.saturating_sub(2) * 9999) / 262142
}

pub fn blkio_weight_to_io_weight(w: u16) -> u64 {
    if w == 0 {
        return 0;
    }
    1 + (w as u64).saturating_sub(10) * 9999 / 990
}

/// memory.swap.max from the OCI memory+swap value (0: leave alone, -1: max).
pub fn swap_to_v2(swap: i64, memory: i64) -> Result<i64> {
    // Memory unlimited and swap unset: both unlimited, as on v1.
    if memory == -1 && swap == 0 {
        return Ok(-1);
    }
    if swap == -1 || swap == 0 {
        return Ok(swap);
    }
    if memory == 0 || memory == -1 {
        return Err(Error::new("linux.resources.memory.swap: unable to set swap limit without memory limit"));
    }
    if memory < 0 {
        return Err(Error::new(format!("linux.resources.memory.limit: invalid memory value: {memory}")));
    }
    if swap < memory {
        return Err(Error::new("linux.resources.memory.swap: memory+swap limit should be >= memory limit"));
    }
    Ok(swap - memory)
}

/// 0 -> nothing, -1 -> "max", else the number.
fn num_to_str(v: i64) -> String {
    match v {
        0 => String::new(),
        -1 => "max".into(),
        v => v.to_string(),
    }
}

/// The controllers a v2 cgroup offers its members (its `cgroup.controllers`).
pub fn controllers(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("cgroup.controllers")).map(|s| s.split_whitespace().map(String::from).collect()).unwrap_or_default()
}

/// Writes `value` to `dir/file`; a missing file whose controller is not enabled for the
/// cgroup becomes an error that says so.
pub fn write(dir: &Path, file: &str, value: &str, field: &str) -> Result<()> {
    let p = dir.join(file);
    write_path(&p, value).map_err(|e| {
        let prefix = if field.is_empty() { String::new() } else { format!("linux.resources.{field}: ") };
        let ctrl = file.split('.').next().unwrap_or("");
        if matches!(e.raw_os_error(), Some(libc::ENOENT) | Some(libc::EPERM) | Some(libc::EACCES)) && ctrl != "cgroup" {
            let have = controllers(dir);
            if !have.iter().any(|c| c == ctrl) {
                return Error::new(format!(
                    "{prefix}the {ctrl} controller is not available in cgroup {} (cgroup.controllers: {:?})",
                    dir.display(),
                    have.join(" ")
                ));
            }
        }
        Error::new(format!("{prefix}write {value:?} to {}: {}", p.display(), Error::from(e)))
    })
}

/// Enables every controller the parents have for their children, from the hierarchy's
/// root down to `dir`'s parent (as runc does). Failures are left for the limit that needs
/// the controller to report; returns the first cgroup that refused and has processes of
/// its own, for that report.
pub fn enable_controllers(mountpoint: &Path, dir: &Path) -> Option<PathBuf> {
    let rel = dir.strip_prefix(mountpoint).ok()?;
    let mut cur = mountpoint.to_path_buf();
    let mut busy = None;
    let comps: Vec<_> = rel.components().collect();
    for (i, c) in comps.iter().enumerate() {
        let have = controllers(&cur);
        if !have.is_empty() {
            let file = cur.join("cgroup.subtree_control");
            let all = have.iter().map(|c| format!("+{c}")).collect::<Vec<_>>().join(" ");
            if write_path(&file, &all).is_err() {
                for c in all.split(' ') {
                    // EBUSY for a domain controller, or EOPNOTSUPP once the threaded
                    // ones made this populated cgroup a thread root.
                    if write_path(&file, c).is_err() && busy.is_none() && std::fs::read_to_string(cur.join("cgroup.procs")).is_ok_and(|p| !p.trim().is_empty())
                    {
                        busy = Some(cur.clone());
                    }
                }
            }
        }
        if i + 1 < comps.len() {
            cur.push(c);
        }
    }
    busy
}

/// The cgroup directory of the container's init, which must be `dir` or below it.
fn init_cgroup_below(dir: &Path, init_pid: i32) -> Result<PathBuf> {
    let own = std::fs::read_to_string(format!("/proc/{init_pid}/cgroup"))
        .map_err(|e| Error::new(format!("read the cgroup of the container's init {init_pid}: {}", Error::from(e))))?;
    let rel = own.lines().find_map(|l| l.strip_prefix("0::")).ok_or_else(|| Error::new(format!("/proc/{init_pid}/cgroup has no cgroup v2 entry")))?;
    let layout = super::layout::Layout::detect()?;
    let unified = layout.unified.ok_or_else(|| Error::new("no cgroup2 hierarchy is mounted"))?;
    let init_dir = unified.dir_for(rel)?;
    if !init_dir.starts_with(dir) {
        return Err(Error::new(format!("the container's init is in cgroup {}, outside the container's {}", init_dir.display(), dir.display())));
    }
    Ok(init_dir)
}

/// Applies the limits (and, at create, the device filter) to the v2 cgroup `dir`.
pub fn set(dir: &Path, r: &Resources, device_rules: Option<&[Rule]>) -> Result<()> {
    if let Some(p) = &r.pids {
        if p.limit != 0 {
            let v = if p.limit > 0 { p.limit.to_string() } else { "max".into() };
            write(dir, "pids.max", &v, "pids.limit")?;
        }
    }
    if let Some(m) = &r.memory {
        set_memory(dir, m)?;
    }
    if let Some(b) = &r.block_io {
        set_io(dir, b)?;
    }
    if let Some(c) = &r.cpu {
        set_cpu(dir, c)?;
    }
    if let Some(rules) = device_rules {
        devices::set_v2(dir, rules)?;
    }
    if let Some(c) = &r.cpu {
        for (file, field, v) in [("cpuset.cpus", "cpu.cpus", &c.cpus), ("cpuset.mems", "cpu.mems", &c.mems)] {
            if let Some(v) = v.as_deref().filter(|v| !v.is_empty()) {
                write(dir, file, v, field)?;
            }
        }
    }
    for (i, h) in r.hugepage_limits.iter().enumerate() {
        write(dir, &format!("hugetlb.{}.max", h.page_size), &h.limit.to_string(), &format!("hugepageLimits[{i}]"))?;
    }
    if let Some(rdma) = r.rdma.as_ref().and_then(|v| v.as_object()) {
        for (dev, lim) in rdma {
            write(dir, "rdma.max", &fs::rdma_line(dev, lim), "rdma")?;
        }
    }
    if let Some(n) = &r.network {
        if n.class_id.is_some() || !n.priorities.is_empty() {
            return Err(Error::new("linux.resources.network: net_cls and net_prio do not exist on cgroup v2 (this host's controllers are on cgroup v2)"));
        }
    }
    if let Some(u) = &r.unified {
        set_unified(dir, u)?;
    }
    Ok(())
}

fn set_memory(dir: &Path, m: &Memory) -> Result<()> {
    let limit = m.limit.unwrap_or(0);
    let swap = m.swap.unwrap_or(0);
    let reservation = m.reservation.unwrap_or(0);
    if m.kernel.unwrap_or(0) != 0 || m.kernel_tcp.unwrap_or(0) != 0 {
        crate::logging::warn("linux.resources.memory.kernel: kernel memory limits do not exist on cgroup v2; ignored");
    }
    if m.swappiness.is_some_and(|s| s as i64 != -1) {
        crate::logging::warn("linux.resources.memory.swappiness: no per-cgroup swappiness on cgroup v2; ignored");
    }
    if m.disable_oom_killer == Some(true) {
        crate::logging::warn("linux.resources.memory.disableOOMKiller: the OOM killer cannot be disabled per cgroup on cgroup v2; ignored");
    }
    if limit == 0 && swap == 0 && reservation == 0 {
        return Ok(());
    }
    let swap2 = swap_to_v2(swap, limit)?;
    let mut swap_str = num_to_str(swap2);
    if swap_str.is_empty() && swap2 == 0 && swap > 0 {
        // Memory and memory+swap equal: no swap.
        swap_str = "0".into();
    }
    if !swap_str.is_empty() {
        match write_path(&dir.join("memory.swap.max"), &swap_str) {
            Ok(()) => {}
            // Without swap accounting, "max" and "0" are what there is anyway.
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) && (swap_str == "max" || swap_str == "0") && controllers(dir).iter().any(|c| c == "memory") => {}
            Err(_) => write(dir, "memory.swap.max", &swap_str, "memory.swap")?,
        }
    }
    let v = num_to_str(limit);
    if !v.is_empty() {
        write(dir, "memory.max", &v, "memory.limit")?;
    }
    let v = num_to_str(reservation);
    if !v.is_empty() {
        write(dir, "memory.low", &v, "memory.reservation")?;
    }
    Ok(())
}

/// cpu.max's quota and period ("max 100000" -> ("max", Some(100000))).
pub fn read_cpu_max(dir: &Path) -> (String, Option<u64>) {
    let s = std::fs::read_to_string(dir.join("cpu.max")).unwrap_or_default();
    let mut it = s.split_whitespace();
    let q = it.next().unwrap_or("max").to_string();
    (q, it.next().and_then(|p| p.parse().ok()))
}

fn set_cpu(dir: &Path, c: &Cpu) -> Result<()> {
    let shares = c.shares.unwrap_or(0);
    let quota = c.quota.unwrap_or(0);
    let period = c.period.unwrap_or(0);
    if c.realtime_period.unwrap_or(0) != 0 || c.realtime_runtime.unwrap_or(0) != 0 {
        return Err(Error::new("linux.resources.cpu.realtimePeriod/realtimeRuntime: realtime scheduling limits do not exist on cgroup v2"));
    }
    if shares != 0 {
        write(dir, "cpu.weight", &shares_to_weight(shares).to_string(), "cpu.shares")?;
    }
    if let Some(i) = c.idle {
        write(dir, "cpu.idle", &i.to_string(), "cpu.idle")?;
    }
    if quota != 0 || period != 0 {
        // Given one of the two (an update), keep the other as it is.
        let (cur_q, cur_p) = read_cpu_max(dir);
        let q = match quota {
            0 => cur_q,
            q if q > 0 => q.to_string(),
            _ => "max".into(),
        };
        let mut v = q;
        if let Some(p) = Some(period).filter(|p| *p != 0).or(cur_p) {
            v.push_str(&format!(" {p}"));
        }
        write(dir, "cpu.max", &v, "cpu.quota")?;
    }
    if let Some(b) = c.burst {
        write(dir, "cpu.max.burst", &b.to_string(), "cpu.burst")?;
    }
    Ok(())
}

fn set_io(dir: &Path, b: &BlockIo) -> Result<()> {
    let weight = b.weight.unwrap_or(0);
    let bfq = dir.join("io.bfq.weight");
    let have_bfq = (weight != 0 || !b.weight_device.is_empty()) && bfq.exists();
    if weight != 0 {
        if have_bfq {
            write(dir, "io.bfq.weight", &weight.to_string(), "blockIO.weight")?;
        } else {
            write(dir, "io.weight", &blkio_weight_to_io_weight(weight).to_string(), "blockIO.weight")?;
        }
    }
    for (i, wd) in b.weight_device.iter().enumerate() {
        let Some(w) = wd.weight.filter(|w| *w != 0) else { continue };
        if !have_bfq {
            return Err(Error::new(format!(
                "linux.resources.blockIO.weightDevice[{i}]: per-device weights need the BFQ I/O scheduler (no io.bfq.weight in {})",
                dir.display()
            )));
        }
        write(dir, "io.bfq.weight", &format!("{}:{} {w}", wd.major, wd.minor), &format!("blockIO.weightDevice[{i}]"))?;
    }
    for (key, field, list) in [
        ("rbps", "blockIO.throttleReadBpsDevice", &b.throttle_read_bps_device),
        ("wbps", "blockIO.throttleWriteBpsDevice", &b.throttle_write_bps_device),
        ("riops", "blockIO.throttleReadIOPSDevice", &b.throttle_read_iops_device),
        ("wiops", "blockIO.throttleWriteIOPSDevice", &b.throttle_write_iops_device),
    ] {
        for (i, t) in list.iter().enumerate() {
            write(dir, "io.max", &format!("{}:{} {key}={}", t.major, t.minor, t.rate), &format!("{field}[{i}]"))?;
        }
    }
    Ok(())
}

fn set_unified(dir: &Path, u: &std::collections::BTreeMap<String, String>) -> Result<()> {
    for (k, v) in u {
        if k.contains('/') || k.is_empty() || k == "." || k == ".." {
            return Err(Error::new(format!("linux.resources.unified: {k:?} must be a file name (no slashes)")));
        }
        let field = format!("unified[{k:?}]");
        if let Err(e) = write_path(&dir.join(k), v) {
            if matches!(e.raw_os_error(), Some(libc::ENOENT) | Some(libc::EPERM)) {
                let Some((ctrl, _)) = k.split_once('.') else {
                    return Err(Error::new(format!("linux.resources.{field}: must be of the form CONTROLLER.PARAMETER")));
                };
                if ctrl != "cgroup" && !controllers(dir).iter().any(|c| c == ctrl) {
                    return Err(Error::new(format!("linux.resources.{field}: can't be set: controller {ctrl:?} not available")));
                }
            }
            return Err(Error::new(format!("linux.resources.{field}: write {v:?} to {}: {}", dir.join(k).display(), Error::from(e))));
        }
    }
    Ok(())
}

// ---- freezer ----

/// Writes cgroup.freeze and, when freezing, waits until cgroup.events says "frozen 1".
pub fn freeze(dir: &Path, frozen: bool) -> Result<()> {
    let f = dir.join("cgroup.freeze");
    if !f.exists() {
        if !frozen {
            return Ok(());
        }
        return Err(Error::new(format!("freezer not supported: no {}", f.display())));
    }
    write(dir, "cgroup.freeze", if frozen { "1" } else { "0" }, "")?;
    let want = if frozen { "1" } else { "0" };
    let got = std::fs::read_to_string(&f).unwrap_or_default();
    if got.trim() != want {
        return Err(Error::new(format!("expected \"cgroup.freeze\" to be in state {want:?} but was in {:?}", got.trim())));
    }
    if !frozen {
        return Ok(());
    }
    for _ in 0..1000 {
        let ev = std::fs::read_to_string(dir.join("cgroup.events")).unwrap_or_default();
        match ev.lines().find_map(|l| l.strip_prefix("frozen ")) {
            Some("1") => return Ok(()),
            Some(_) => std::thread::sleep(std::time::Duration::from_millis(10)),
            None => return Err(Error::new(format!("no \"frozen\" line in {}", dir.join("cgroup.events").display()))),
        }
    }
    let _ = write(dir, "cgroup.freeze", "0", "");
    Err(Error::new("timeout of 10s reached waiting for the cgroup to freeze"))
}

/// Whether cgroup.freeze of `dir` is set.
pub fn is_frozen(dir: &Path) -> bool {
    std::fs::read_to_string(dir.join("cgroup.freeze")).is_ok_and(|s| s.trim() == "1")
}

/// A key of a flat keyed file (memory.events, cpu.stat, ...).
pub fn keyed(dir: &Path, file: &str, key: &str) -> Option<u64> {
    let s = std::fs::read_to_string(dir.join(file)).ok()?;
    s.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

/// The OOM-kill count of the cgroup (memory.events "oom_kill").
pub fn oom_kills(dir: &Path) -> Option<u64> {
    keyed(dir, "memory.events", "oom_kill")
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_spec::Resources;

    /// A cgroup the test makes under the host's cgroup2 mount (the unified one on a
    /// hybrid host), removed with whatever runs in it at the end. None (the test is
    /// skipped) without root or a cgroup2 mount.
    struct TempCgroup {
        dir: std::path::PathBuf,
        children: Vec<std::process::Child>,
    }

    impl TempCgroup {
        fn new(name: &str) -> Option<TempCgroup> {
            // SAFETY: geteuid has no preconditions.
            if unsafe { libc::geteuid() } != 0 {
                eprintln!("skipped: needs root");
                return None;
            }
            let Some(u) = super::super::layout::Layout::detect().ok().and_then(|l| l.unified) else {
                eprintln!("skipped: no cgroup2 mount");
                return None;
            };
            let dir = u.mountpoint.join(format!("berth-unit-{}-{name}", std::process::id()));
            let _ = std::fs::remove_dir(&dir);
            std::fs::create_dir(&dir).ok()?;
            Some(TempCgroup { dir, children: Vec::new() })
        }

        /// Runs `sh -c script` inside the cgroup (it moves itself in before exec).
        fn spawn(&mut self, script: &str) -> &mut std::process::Child {
            use std::os::unix::process::CommandExt;
            let procs = std::ffi::CString::new(self.dir.join("cgroup.procs").to_str().unwrap()).unwrap();
            let mut cmd = std::process::Command::new("/bin/sh");
            cmd.args(["-c", script]).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
            // SAFETY: open/write/close only (async-signal-safe) between fork and exec.
            unsafe {
                cmd.pre_exec(move || {
                    let fd = libc::open(procs.as_ptr(), libc::O_WRONLY);
                    if fd < 0 || libc::write(fd, b"0".as_ptr().cast(), 1) != 1 {
                        return Err(std::io::Error::last_os_error());
                    }
                    libc::close(fd);
                    Ok(())
                });
            }
            self.children.push(cmd.spawn().expect("spawn sh in the test cgroup"));
            self.children.last_mut().unwrap()
        }
    }

    impl Drop for TempCgroup {
        fn drop(&mut self) {
            let _ = write_path(&self.dir.join("cgroup.freeze"), "0");
            for c in &mut self.children {
                let _ = c.kill();
                let _ = c.wait();
            }
            for _ in 0..100 {
                if std::fs::remove_dir(&self.dir).is_ok() || !self.dir.exists() {
                    return;
                }
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            eprintln!("could not remove {}", self.dir.display());
        }
    }

    #[test]
    fn the_v2_freezer_freezes_and_thaws_a_real_cgroup() {
        let Some(mut cg) = TempCgroup::new("freeze") else { return };
        let pid = cg.spawn("exec sleep 100").id();
        let dir = cg.dir.clone();
        assert!(std::fs::read_to_string(dir.join("cgroup.procs")).unwrap().contains(&pid.to_string()));
        freeze(&dir, true).unwrap();
        assert_eq!(keyed(&dir, "cgroup.events", "frozen"), Some(1));
        let m = V2::load(CgroupPaths { unified: Some(dir.clone()), ..Default::default() });
        assert!(m.paths().is_v2() && m.is_frozen());
        freeze(&dir, false).unwrap();
        assert_eq!(keyed(&dir, "cgroup.events", "frozen"), Some(0));
        assert!(!m.is_frozen());
    }

    #[test]
    fn the_device_filter_denies_what_the_rules_do_not_allow() {
        let Some(mut cg) = TempCgroup::new("devices") else { return };
        // Device nodes of our own: /dev/null's numbers and /dev/kmsg's (1:11, not allowed).
        let nodes = std::env::temp_dir().join(format!("berth-unit-{}-devnodes", std::process::id()));
        let _ = std::fs::remove_dir_all(&nodes);
        std::fs::create_dir_all(&nodes).unwrap();
        struct RmDir(std::path::PathBuf);
        impl Drop for RmDir {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
        let _rm = RmDir(nodes.clone());
        for (name, minor) in [("null", 3), ("kmsg", 11)] {
            let p = std::ffi::CString::new(nodes.join(name).to_str().unwrap()).unwrap();
            // SAFETY: mknod(2) with a valid path.
            assert_eq!(unsafe { libc::mknod(p.as_ptr(), libc::S_IFCHR | 0o600, libc::makedev(1, minor)) }, 0);
        }
        let linux = berth_spec::Linux {
            resources: Some(serde_json::from_value(serde_json::json!({"devices": [{"allow": false, "access": "rwm"}]})).unwrap()),
            ..Default::default()
        };
        let rules = devices::rules_for(&linux).unwrap();
        let dir = cg.dir.clone();
        devices::set_v2(&dir, &rules).unwrap();
        let n = nodes.display();
        let child = cg.spawn(&format!("exec 3<{n}/null && echo null-ok; exec 4<{n}/kmsg && echo kmsg-ok; exit 0"));
        let out = std::process::Child::wait_with_output(std::mem::replace(child, std::process::Command::new("true").spawn().unwrap())).unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stdout.contains("null-ok"), "stdout: {stdout}\nstderr: {stderr}");
        assert!(!stdout.contains("kmsg-ok"), "kmsg was allowed: {stdout}");
        assert!(stderr.to_lowercase().contains("not permitted"), "stderr: {stderr}");
    }

    #[test]
    fn a_relative_path_goes_beside_the_runtimes_own_cgroup_and_an_absolute_one_from_the_root() {
        let h = |own: &str| Hierarchy { mountpoint: "/sys/fs/cgroup".into(), root: "/".into(), controllers: vec![], own: own.into() };
        let dir = |own: &str, rel: &str| V2::new(&h(own), rel, false).unwrap().dir().to_path_buf();
        assert_eq!(dir("/user.slice/session-3.scope", "ctr/a"), Path::new("/sys/fs/cgroup/user.slice/ctr/a"));
        assert_eq!(dir("/", "ctr"), Path::new("/sys/fs/cgroup/ctr"));
        assert_eq!(dir("/x", "ctr"), Path::new("/sys/fs/cgroup/ctr"));
        assert_eq!(dir("/user.slice/session-3.scope", "/abs/ctr"), Path::new("/sys/fs/cgroup/abs/ctr"));
        assert!(V2::new(&h("/a/b"), "../escape", false).is_err());
    }

    #[test]
    fn value_mappings_are_runcs() {
        assert_eq!(shares_to_weight(0), 0);
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(1024), 39);
        assert_eq!(shares_to_weight(512), 20);
        assert_eq!(shares_to_weight(262144), 10000);
        assert_eq!(blkio_weight_to_io_weight(0), 0);
        assert_eq!(blkio_weight_to_io_weight(10), 1);
        assert_eq!(blkio_weight_to_io_weight(500), 4950);
        assert_eq!(blkio_weight_to_io_weight(1000), 10000);
        assert_eq!(swap_to_v2(0, -1).unwrap(), -1);
        assert_eq!(swap_to_v2(-1, 100).unwrap(), -1);
        assert_eq!(swap_to_v2(0, 100).unwrap(), 0);
        assert_eq!(swap_to_v2(300, 100).unwrap(), 200);
        assert_eq!(swap_to_v2(100, 100).unwrap(), 0);
        assert!(swap_to_v2(50, 100).unwrap_err().msg().contains(">= memory limit"));
        assert!(swap_to_v2(50, 0).unwrap_err().msg().contains("without memory limit"));
    }

    /// A directory with the files of a v2 cgroup that has every controller, for testing
    /// what is written where.
    fn fake_cgroup(files: &[(&str, &str)]) -> std::path::PathBuf {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let d = std::env::temp_dir().join(format!("berth-v2-fake-{}-{}", std::process::id(), N.fetch_add(1, std::sync::atomic::Ordering::SeqCst)));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("cgroup.controllers"), "cpuset cpu io memory hugetlb pids rdma").unwrap();
        for (f, v) in files {
            std::fs::write(d.join(f), v).unwrap();
        }
        d
    }

    fn read(d: &Path, f: &str) -> String {
        std::fs::read_to_string(d.join(f)).unwrap()
    }

    #[test]
    fn limits_land_in_the_v2_files() {
        let d = fake_cgroup(&[
            ("memory.max", "max"),
            ("memory.swap.max", "max"),
            ("memory.low", "0"),
            ("cpu.weight", "100"),
            ("cpu.max", "max 100000"),
            ("pids.max", "max"),
            ("io.weight", "default 100"),
            ("io.max", ""),
            ("cpuset.cpus", ""),
            ("cpuset.mems", ""),
            ("hugetlb.2MB.max", "max"),
            ("memory.high", "max"),
        ]);
        let r: Resources = serde_json::from_value(serde_json::json!({
            "memory": {"limit": 104857600, "swap": 209715200, "reservation": 52428800},
            "cpu": {"shares": 512, "quota": 50000, "period": 200000, "cpus": "0", "mems": "0"},
            "pids": {"limit": 42},
            "blockIO": {"weight": 500, "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1048576}]},
            "hugepageLimits": [{"pageSize": "2MB", "limit": 4194304}],
            "unified": {"memory.high": "90000000"}
        }))
        .unwrap();
        set(&d, &r, None).unwrap();
        assert_eq!(read(&d, "memory.max"), "104857600");
        assert_eq!(read(&d, "memory.swap.max"), "104857600");
        assert_eq!(read(&d, "memory.low"), "52428800");
        assert_eq!(read(&d, "cpu.weight"), "20");
        assert_eq!(read(&d, "cpu.max"), "50000 200000");
        assert_eq!(read(&d, "pids.max"), "42");
        assert_eq!(read(&d, "io.weight"), "4950");
        assert_eq!(read(&d, "io.max"), "8:0 rbps=1048576");
        assert_eq!(read(&d, "cpuset.cpus"), "0");
        assert_eq!(read(&d, "hugetlb.2MB.max"), "4194304");
        assert_eq!(read(&d, "memory.high"), "90000000");

        // An update of the quota alone keeps the period; -1 quota is "max".
        std::fs::write(d.join("cpu.max"), "50000 200000").unwrap();
        let r: Resources = serde_json::from_value(serde_json::json!({"cpu": {"quota": 30000}})).unwrap();
        set(&d, &r, None).unwrap();
        assert_eq!(read(&d, "cpu.max"), "30000 200000");
        let r: Resources = serde_json::from_value(serde_json::json!({"cpu": {"quota": -1}, "memory": {"limit": -1}, "pids": {"limit": -1}})).unwrap();
        set(&d, &r, None).unwrap();
        assert_eq!(read(&d, "cpu.max"), "max 200000");
        assert_eq!(read(&d, "memory.max"), "max");
        assert_eq!(read(&d, "memory.swap.max"), "max");
        assert_eq!(read(&d, "pids.max"), "max");
        // Equal memory and memory+swap: no swap.
        let r: Resources = serde_json::from_value(serde_json::json!({"memory": {"limit": 1000000, "swap": 1000000}})).unwrap();
        set(&d, &r, None).unwrap();
        assert_eq!(read(&d, "memory.swap.max"), "0");
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn controllers_are_enabled_from_the_root_down_to_the_parent() {
        let root = fake_cgroup(&[("cgroup.subtree_control", "")]);
        let a = root.join("a");
        std::fs::create_dir(&a).unwrap();
        std::fs::write(a.join("cgroup.controllers"), "cpu pids").unwrap();
        std::fs::write(a.join("cgroup.subtree_control"), "").unwrap();
        let leaf = a.join("leaf");
        std::fs::create_dir(&leaf).unwrap();
        std::fs::write(leaf.join("cgroup.subtree_control"), "untouched").unwrap();
        enable_controllers(&root, &leaf);
        assert_eq!(read(&root, "cgroup.subtree_control"), "+cpuset +cpu +io +memory +hugetlb +pids +rdma");
        assert_eq!(read(&a, "cgroup.subtree_control"), "+cpu +pids");
        assert_eq!(read(&leaf, "cgroup.subtree_control"), "untouched");
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn bfq_takes_the_weight_as_is() {
        let d = fake_cgroup(&[("io.bfq.weight", "default 100"), ("io.weight", "default 100")]);
        let r: Resources = serde_json::from_value(serde_json::json!({"blockIO": {"weight": 500}})).unwrap();
        set(&d, &r, None).unwrap();
        assert_eq!(read(&d, "io.bfq.weight"), "500");
        assert_eq!(read(&d, "io.weight"), "default 100");
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn missing_controllers_and_bad_unified_keys_are_named() {
        let d = fake_cgroup(&[]);
        std::fs::write(d.join("cgroup.controllers"), "cpu").unwrap();
        let r: Resources = serde_json::from_value(serde_json::json!({"memory": {"limit": 1000000}})).unwrap();
        let e = set(&d, &r, None).unwrap_err();
        assert!(e.msg().starts_with("linux.resources.memory.limit: the memory controller is not available"), "{e}");
        let r: Resources = serde_json::from_value(serde_json::json!({"unified": {"../x": "1"}})).unwrap();
        assert!(set(&d, &r, None).unwrap_err().msg().contains("no slashes"));
        let r: Resources = serde_json::from_value(serde_json::json!({"unified": {"memory.high": "1"}})).unwrap();
        assert!(set(&d, &r, None).unwrap_err().msg().contains("controller \"memory\" not available"));
        let r: Resources = serde_json::from_value(serde_json::json!({"cpu": {"realtimeRuntime": 1000}})).unwrap();
        assert!(set(&d, &r, None).unwrap_err().msg().contains("realtime"));
        let r: Resources = serde_json::from_value(serde_json::json!({"network": {"classID": 1}})).unwrap();
        assert!(set(&d, &r, None).unwrap_err().msg().starts_with("linux.resources.network"));
        let _ = std::fs::remove_dir_all(&d);
    }
}
