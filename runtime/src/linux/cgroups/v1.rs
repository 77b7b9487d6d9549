//! cgroup v1 (and hybrid hosts, whose controllers are v1 hierarchies): the [`V1`]
//! manager, and resource limits written as runc's `fs` driver writes them: same files,
//! same order, same special cases.
//!
//! A limit whose controller has no hierarchy is an error naming the config field.

use super::devices::{self, Rule};
use super::fs::{self, read_u64, write_path};
use super::layout::Layout;
use super::{stats, CgroupPaths, Manager, OomWatch};
use crate::error::{Error, Result};
use berth_spec::{BlockIo, Cpu, Linux, Memory, Network, Resources};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

/// A container's cgroup in every v1 hierarchy, plus the unified one on a hybrid host.
pub struct V1 {
    paths: CgroupPaths,
    /// For create: each hierarchy's mountpoint, the directory in it, and whether it
    /// has the cpuset controller.
    plan: Vec<(PathBuf, PathBuf, bool)>,
}

impl V1 {
    /// The directories for `rel` in each hierarchy of `layout` (made by `create`).
    pub fn new(layout: &Layout, rel: &str, prune_parent: bool) -> Result<V1> {
        let mut paths = CgroupPaths::default();
        let mut plan = Vec::new();
        for h in &layout.v1 {
            let dir = h.dir_for(rel)?;
            if prune_parent {
                paths.prune.extend(dir.parent().map(Path::to_path_buf));
            }
            plan.push((h.mountpoint.clone(), dir.clone(), h.controllers.iter().any(|c| c == "cpuset")));
            paths.v1.insert(h.controllers.join(","), dir);
        }
        if let Some(u) = &layout.unified {
            let dir = u.dir_for(rel)?;
            if prune_parent {
                paths.prune.extend(dir.parent().map(Path::to_path_buf));
            }
            plan.push((u.mountpoint.clone(), dir.clone(), false));
            paths.unified = Some(dir);
        }
        Ok(V1 { paths, plan })
    }

    pub fn load(paths: CgroupPaths) -> V1 {
        V1 { paths, plan: Vec::new() }
    }

    /// For the systemd driver: the paths after systemd made its scope.
    pub fn paths_mut(&mut self) -> &mut CgroupPaths {
        &mut self.paths
    }
}

impl Manager for V1 {
    fn paths(&self) -> &CgroupPaths {
        &self.paths
    }

    fn plan(&self) -> CgroupPaths {
        let mut p = self.paths.clone();
        for (mountpoint, dir, _) in &self.plan {
            p.created.extend(fs::missing_dirs(mountpoint, dir));
        }
        p
    }

    fn create(&mut self) -> Result<()> {
        let mut created = std::mem::take(&mut self.paths.created);
        let r = self.plan.iter().try_for_each(|(mountpoint, dir, cpuset)| fs::make_dirs(mountpoint, dir, *cpuset, &mut created));
        self.paths.created = created;
        if r.is_err() {
            let _ = self.destroy();
        }
        r
    }

    fn join_files(&self) -> Result<Vec<OwnedFd>> {
        let v1 = self.paths.v1.values().map(|d| d.join("tasks"));
        let v2 = self.paths.unified.iter().map(|d| d.join("cgroup.procs"));
        v1.chain(v2).map(|f| fs::open_for_join(&f)).collect()
    }

    fn enter(&mut self, _init_pid: i32) -> Result<()> {
        Ok(())
    }

    fn add_process(&self, pid: i32) -> Result<()> {
        self.paths.all_dirs().try_for_each(|d| fs::add_pid(d, pid))
    }

    fn apply(&self, linux: &Linux) -> Result<()> {
        let rules = devices::rules_for(linux)?;
        set(&self.paths, linux.resources.as_ref().unwrap_or(&Resources::default()), Some(&rules))
    }

    fn update(&self, r: &Resources) -> Result<()> {
        set(&self.paths, r, None)
    }

    /// The v1 freezer, else the cgroup2 core freezer of a hybrid host's unified mount.
    fn can_freeze(&self) -> bool {
        self.paths.v1_dir("freezer").is_some() || self.paths.unified.as_ref().is_some_and(|u| u.join("cgroup.freeze").exists())
    }

    fn freeze(&self, frozen: bool) -> Result<()> {
        if let Some(d) = self.paths.v1_dir("freezer") {
            return freeze(d, frozen);
        }
        if let Some(u) = &self.paths.unified {
            return super::v2::freeze(u, frozen);
        }
        if frozen {
            return Err(super::no_freezer());
        }
        Ok(())
    }

    fn is_frozen(&self) -> bool {
        if let Some(d) = self.paths.v1_dir("freezer") {
            return std::fs::read_to_string(d.join("freezer.state")).is_ok_and(|s| s.trim() == "FROZEN");
        }
        self.paths.unified.as_deref().is_some_and(super::v2::is_frozen)
    }

    fn stats(&self) -> stats::Stats {
        stats::collect_v1(&self.paths)
    }

    fn pids(&self) -> Vec<i32> {
        let p = &self.paths;
        let dir = p.v1_dir("pids").or_else(|| p.v1_dir("freezer")).or(p.unified.as_deref()).or_else(|| p.v1.values().next().map(|p| p.as_path()));
        dir.map(fs::pids_below).unwrap_or_default()
    }

    fn oom_watch(&self) -> OomWatch {
        OomWatch::v1(self.paths.v1_dir("memory"))
    }

    fn destroy(&self) -> Result<()> {
        let leaves: Vec<&Path> = self.paths.all_dirs().collect();
        fs::remove_dirs(&leaves, &self.paths.created, &self.paths.prune)
    }
}

/// Writes `value` to `dir/file` (no O_CREAT: a missing file is an error).
pub fn write(dir: &Path, file: &str, value: &str, field: &str) -> Result<()> {
    let p = dir.join(file);
    write_path(&p, value).map_err(|e| {
        let prefix = if field.is_empty() { String::new() } else { format!("linux.resources.{field}: ") };
        Error::new(format!("{prefix}write {value:?} to {}: {}", p.display(), Error::from(e)))
    })
}

/// The directory of `controller`, or an error naming `field` when it is not mounted.
fn need<'a>(cg: &'a CgroupPaths, controller: &str, field: &str) -> Result<&'a Path> {
    cg.v1_dir(controller).ok_or_else(|| {
        Error::new(format!(
            "linux.resources.{field}: the {controller} cgroup controller is not available on this host (no cgroup v1 hierarchy with {controller} is mounted)"
        ))
    })
}

/// Applies the limits (and, at create, the device rules). `resources` may be a partial
/// update: unset and zero values change nothing, as in runc.
pub fn set(cg: &CgroupPaths, r: &Resources, device_rules: Option<&[Rule]>) -> Result<()> {
    if r.unified.as_ref().is_some_and(|u| !u.is_empty()) {
        return Err(Error::new("linux.resources.unified: cannot be used with cgroup v1 (this host's controllers are on cgroup v1 hierarchies)"));
    }
    if let Some(c) = &r.cpu {
        set_cpuset(cg, c)?;
    }
    if let Some(rules) = device_rules {
        match cg.v1_dir("devices") {
            Some(d) => devices::set_v1(d, rules)?,
            None => {
                // Nothing to enforce with: only refuse if the config asked for more than the default.
                if r.devices.iter().any(|d| d.allow) {
                    need(cg, "devices", "devices")?;
                }
            }
        }
    }
    if let Some(m) = &r.memory {
        set_memory(cg, m)?;
    }
    if let Some(c) = &r.cpu {
        set_cpu(cg, c)?;
    }
    if let Some(p) = &r.pids {
        if p.limit != 0 {
            let d = need(cg, "pids", "pids.limit")?;
            let v = if p.limit > 0 { p.limit.to_string() } else { "max".into() };
            write(d, "pids.max", &v, "pids.limit")?;
        }
    }
    if let Some(b) = &r.block_io {
        set_blkio(cg, b)?;
    }
    for (i, h) in r.hugepage_limits.iter().enumerate() {
        let field = format!("hugepageLimits[{i}]");
        let d = need(cg, "hugetlb", &field)?;
        let file = format!("hugetlb.{}.limit_in_bytes", h.page_size);
        if !d.join(&file).exists() {
            return Err(Error::new(format!("linux.resources.{field}.pageSize: hugepage size {:?} is not supported on this host", h.page_size)));
        }
        write(d, &file, &h.limit.to_string(), &field)?;
    }
    if let Some(n) = &r.network {
        set_network(cg, n)?;
    }
    if let Some(rdma) = r.rdma.as_ref().and_then(|v| v.as_object()).filter(|o| !o.is_empty()) {
        let d = need(cg, "rdma", "rdma")?;
        for (dev, lim) in rdma {
            write(d, "rdma.max", &fs::rdma_line(dev, lim), "rdma")?;
        }
    }
    Ok(())
}

fn set_cpuset(cg: &CgroupPaths, c: &Cpu) -> Result<()> {
    for (file, field, v) in [("cpuset.cpus", "cpu.cpus", &c.cpus), ("cpuset.mems", "cpu.mems", &c.mems)] {
        if let Some(v) = v.as_deref().filter(|v| !v.is_empty()) {
            let d = need(cg, "cpuset", field)?;
            write(d, file, v, field)?;
        }
    }
    Ok(())
}

fn set_memory(cg: &CgroupPaths, m: &Memory) -> Result<()> {
    let limit = m.limit.unwrap_or(0);
    let mut swap = m.swap.unwrap_or(0);
    let reservation = m.reservation.unwrap_or(0);
    let kernel = m.kernel.unwrap_or(0);
    let kernel_tcp = m.kernel_tcp.unwrap_or(0);
    let any = limit != 0 || swap != 0 || reservation != 0 || kernel != 0 || kernel_tcp != 0 || m.disable_oom_killer == Some(true) || m.swappiness.is_some();
    if !any {
        return Ok(());
    }
    let d = need(cg, "memory", "memory")?;
    const LIMIT: &str = "memory.limit_in_bytes";
    const SWAP: &str = "memory.memsw.limit_in_bytes";
    // "-1" for memory alone means memory and swap unlimited.
    if limit == -1 && swap == 0 && d.join(SWAP).exists() {
        swap = -1;
    }
    let set_limit = |v: i64| -> Result<()> {
        if v == 0 {
            return Ok(());
        }
        match write_path(&d.join(LIMIT), &v.to_string()) {
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                let usage = read_u64(&d.join("memory.usage_in_bytes")).unwrap_or(0);
                let max = read_u64(&d.join("memory.max_usage_in_bytes")).unwrap_or(0);
                Err(Error::new(format!("linux.resources.memory.limit: unable to set memory limit to {v} (current usage: {usage}, peak usage: {max})")))
            }
            Err(_) => write(d, LIMIT, &v.to_string(), "memory.limit"),
            Ok(()) => Ok(()),
        }
    };
    let set_swap = |v: i64| -> Result<()> {
        if v == 0 {
            return Ok(());
        }
        if !d.join(SWAP).exists() {
            return Err(Error::new(format!("linux.resources.memory.swap: swap accounting is not enabled on this host (no {SWAP})")));
        }
        write(d, SWAP, &v.to_string(), "memory.swap")
    };
    // The kernel wants memory <= memory+swap at every step: raise swap first when the
    // new swap limit is above the current memory limit.
    if limit != 0 && swap != 0 {
        let cur = read_u64(&d.join(LIMIT)).unwrap_or(0);
        if swap == -1 || cur < swap as u64 {
            set_swap(swap)?;
            set_limit(limit)?;
        } else {
            set_limit(limit)?;
            set_swap(swap)?;
        }
    } else {
        set_limit(limit)?;
        set_swap(swap)?;
    }
    for (v, file, field) in [(kernel, "memory.kmem.limit_in_bytes", "memory.kernel"), (kernel_tcp, "memory.kmem.tcp.limit_in_bytes", "memory.kernelTCP")] {
        if v == 0 {
            continue;
        }
        if d.join(file).exists() {
            write(d, file, &v.to_string(), field)?;
        } else {
            crate::logging::warn(&format!("linux.resources.{field}: this kernel has no kernel memory limit ({file}); ignored"));
        }
    }
    if reservation != 0 {
        write(d, "memory.soft_limit_in_bytes", &reservation.to_string(), "memory.reservation")?;
    }
    if m.disable_oom_killer == Some(true) {
        write(d, "memory.oom_control", "1", "memory.disableOOMKiller")?;
    }
    if let Some(s) = m.swappiness {
        if s as i64 == -1 {
            // Unset.
        } else if s <= 100 {
            write(d, "memory.swappiness", &s.to_string(), "memory.swappiness")?;
        } else {
            return Err(Error::new(format!("linux.resources.memory.swappiness: invalid memory swappiness value: {s} (valid range is 0-100)")));
        }
    }
    Ok(())
}

fn set_cpu(cg: &CgroupPaths, c: &Cpu) -> Result<()> {
    let shares = c.shares.unwrap_or(0);
    let period = c.period.unwrap_or(0);
    let quota = c.quota.unwrap_or(0);
    let burst = c.burst;
    let rt_period = c.realtime_period.unwrap_or(0);
    let rt_runtime = c.realtime_runtime.unwrap_or(0);
    if shares == 0 && period == 0 && quota == 0 && burst.is_none() && rt_period == 0 && rt_runtime == 0 && c.idle.is_none() {
        return Ok(());
    }
    let field = if shares != 0 {
        "cpu.shares"
    } else if quota != 0 || period != 0 {
        "cpu.quota"
    } else {
        "cpu"
    };
    let d = need(cg, "cpu", field)?;
    if shares != 0 {
        write(d, "cpu.shares", &shares.to_string(), "cpu.shares")?;
        let got = read_u64(&d.join("cpu.shares")).unwrap_or(shares);
        if shares > got {
            return Err(Error::new(format!("linux.resources.cpu.shares: the maximum allowed cpu-shares is {got}")));
        } else if shares < got {
            return Err(Error::new(format!("linux.resources.cpu.shares: the minimum allowed cpu-shares is {got}")));
        }
    }
    // A period below the current one may be refused until the quota fits it: then set
    // the quota and retry the period.
    let mut period_pending = None;
    if period != 0 {
        match write_path(&d.join("cpu.cfs_period_us"), &period.to_string()) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) && quota != 0 => period_pending = Some(period),
            Err(_) => write(d, "cpu.cfs_period_us", &period.to_string(), "cpu.period")?,
        }
    }
    if quota != 0 {
        write(d, "cpu.cfs_quota_us", &quota.to_string(), "cpu.quota")?;
        if let Some(p) = period_pending {
            write(d, "cpu.cfs_period_us", &p.to_string(), "cpu.period")?;
        }
    }
    if let Some(b) = burst {
        write(d, "cpu.cfs_burst_us", &b.to_string(), "cpu.burst")?;
    }
    if let Some(i) = c.idle {
        write(d, "cpu.idle", &i.to_string(), "cpu.idle")?;
    }
    if rt_period != 0 {
        write(d, "cpu.rt_period_us", &rt_period.to_string(), "cpu.realtimePeriod")?;
    }
    if rt_runtime != 0 {
        write(d, "cpu.rt_runtime_us", &rt_runtime.to_string(), "cpu.realtimeRuntime")?;
    }
    Ok(())
}

/// The weight files: `blkio.weight` with CFQ, `blkio.bfq.weight` with BFQ.
pub fn blkio_weight_files(d: &Path) -> (&'static str, &'static str) {
    if d.join("blkio.weight").exists() {
        ("blkio.weight", "blkio.weight_device")
    } else {
        ("blkio.bfq.weight", "blkio.bfq.weight_device")
    }
}

fn set_blkio(cg: &CgroupPaths, b: &BlockIo) -> Result<()> {
    let weight = b.weight.unwrap_or(0);
    let leaf = b.leaf_weight.unwrap_or(0);
    let throttles = [
        ("blkio.throttle.read_bps_device", "blockIO.throttleReadBpsDevice", &b.throttle_read_bps_device),
        ("blkio.throttle.write_bps_device", "blockIO.throttleWriteBpsDevice", &b.throttle_write_bps_device),
        ("blkio.throttle.read_iops_device", "blockIO.throttleReadIOPSDevice", &b.throttle_read_iops_device),
        ("blkio.throttle.write_iops_device", "blockIO.throttleWriteIOPSDevice", &b.throttle_write_iops_device),
    ];
    if weight == 0 && leaf == 0 && b.weight_device.is_empty() && throttles.iter().all(|t| t.2.is_empty()) {
        return Ok(());
    }
    let d = need(cg, "blkio", "blockIO")?;
    let (wfile, wdfile) = blkio_weight_files(d);
    if weight != 0 {
        write(d, wfile, &weight.to_string(), "blockIO.weight")?;
    }
    if leaf != 0 {
        write(d, "blkio.leaf_weight", &leaf.to_string(), "blockIO.leafWeight")?;
    }
    for (i, wd) in b.weight_device.iter().enumerate() {
        let field = format!("blockIO.weightDevice[{i}]");
        if let Some(w) = wd.weight.filter(|w| *w != 0) {
            write(d, wdfile, &format!("{}:{} {w}", wd.major, wd.minor), &field)?;
        }
        if let Some(w) = wd.leaf_weight.filter(|w| *w != 0) {
            write(d, "blkio.leaf_weight_device", &format!("{}:{} {w}", wd.major, wd.minor), &field)?;
        }
    }
    for (file, field, list) in throttles {
        for (i, t) in list.iter().enumerate() {
            write(d, file, &format!("{}:{} {}", t.major, t.minor, t.rate), &format!("{field}[{i}]"))?;
        }
    }
    Ok(())
}

fn set_network(cg: &CgroupPaths, n: &Network) -> Result<()> {
    if let Some(id) = n.class_id {
        let d = need(cg, "net_cls", "network.classID")?;
        write(d, "net_cls.classid", &id.to_string(), "network.classID")?;
    }
    for (i, p) in n.priorities.iter().enumerate() {
        let field = format!("network.priorities[{i}]");
        let d = need(cg, "net_prio", &field)?;
        write(d, "net_prio.ifpriomap", &format!("{} {}", p.name, p.priority), &field)?;
    }
    Ok(())
}

// ---- freezer ----

/// Freezes (waiting until the state reads back FROZEN) or thaws the v1 freezer cgroup,
/// retrying as runc does while new processes keep appearing.
pub fn freeze(dir: &Path, frozen: bool) -> Result<()> {
    let state = dir.join("freezer.state");
    let w = |v: &str| write(dir, "freezer.state", v, "");
    if !frozen {
        return w("THAWED");
    }
    let r = (|| -> Result<()> {
        for i in 0..1000 {
            if i % 50 == 49 {
                // An occasional thaw and sleep lets a forking workload settle.
                let _ = w("THAWED");
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            w("FROZEN")?;
            if i % 25 == 24 {
                std::thread::sleep(std::time::Duration::from_micros(10));
            }
            let s = std::fs::read_to_string(&state).map_err(|e| Error::new(format!("read {}: {}", state.display(), Error::from(e))))?;
            match s.trim() {
                "FREEZING" => continue,
                "FROZEN" => return Ok(()),
                other => return Err(Error::new(format!("unexpected freezer state {other:?} while freezing"))),
            }
        }
        Err(Error::new("unable to freeze"))
    })();
    if r.is_err() {
        // Never leave it half frozen.
        let _ = w("THAWED");
    }
    r
}

// ---- OOM notification ----

/// An eventfd registered on memory.oom_control through cgroup.event_control.
pub struct OomEvents {
    pub efd: std::os::fd::OwnedFd,
    _oom_control: std::fs::File,
    event_control: PathBuf,
}

impl OomEvents {
    pub fn register(memory_dir: &Path) -> Result<OomEvents> {
        use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
        let oc = std::fs::File::open(memory_dir.join("memory.oom_control")).map_err(|e| Error::new(format!("open memory.oom_control: {}", Error::from(e))))?;
        // SAFETY: eventfd(2) with integers; the new fd is owned below.
        let efd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
        if efd < 0 {
            return Err(Error::from(std::io::Error::last_os_error()));
        }
        // SAFETY: a new fd from eventfd(2).
        let efd = unsafe { OwnedFd::from_raw_fd(efd) };
        let event_control = memory_dir.join("cgroup.event_control");
        write_path(&event_control, &format!("{} {}", efd.as_raw_fd(), oc.as_raw_fd()))
            .map_err(|e| Error::new(format!("register OOM notification: {}", Error::from(e))))?;
        Ok(OomEvents { efd, _oom_control: oc, event_control })
    }

    /// Waits up to `timeout` for an OOM; false on timeout. The eventfd also fires when
    /// the cgroup is removed: that is no OOM.
    pub fn wait(&self, timeout: std::time::Duration) -> bool {
        use std::os::fd::AsRawFd;
        let mut pfd = libc::pollfd { fd: self.efd.as_raw_fd(), events: libc::POLLIN, revents: 0 };
        // SAFETY: poll(2) on one pollfd we own.
        let n = unsafe { libc::poll(&mut pfd, 1, timeout.as_millis().min(i32::MAX as u128) as i32) };
        if n <= 0 {
            return false;
        }
        let mut buf = [0u8; 8];
        // SAFETY: read(2) of 8 bytes into a local buffer.
        let r = unsafe { libc::read(self.efd.as_raw_fd(), buf.as_mut_ptr().cast(), 8) };
        if r != 8 || !self.event_control.exists() {
            return false;
        }
        // The kernel notifies at every failed charge while the victim dies: take the
        // notifications of the next moment as the same OOM.
        let settle = std::time::Instant::now() + std::time::Duration::from_millis(100);
        loop {
            let left = settle.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                break;
            }
            pfd.revents = 0;
            // SAFETY: as above.
            if unsafe { libc::poll(&mut pfd, 1, left.as_millis() as i32 + 1) } <= 0 {
                break;
            }
            // SAFETY: as above.
            unsafe { libc::read(self.efd.as_raw_fd(), buf.as_mut_ptr().cast(), 8) };
        }
        true
    }
}
