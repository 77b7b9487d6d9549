//! The systemd cgroup driver (`berth --systemd-cgroup`), as runc's: the container's
//! cgroup is a transient scope unit that systemd makes around the init
//! (`StartTransientUnit` over D-Bus, `Delegate=yes`, the init's pid), in the slice the
//! cgroupsPath `slice:prefix:name` names. The limits systemd owns are unit properties
//! (so a `daemon-reload` keeps them); everything else (devices, hugetlb, io.max, rdma,
//! `unified` keys, the freezer) goes to the files, through the cgroupfs manager of the
//! host's layout at the scope's directory. Delete stops the unit.
//!
//! Where systemd does not run (like a host without it as PID 1), the driver refuses with
//! a message that says so, rather than guessing at systemd's layout.

use super::layout::Layout;
use super::path::{self, Unit};
use super::v1::V1;
use super::v2::{self, V2};
use super::{fs, stats, CgroupPaths, Manager, OomWatch};
use crate::error::{Error, Result};
use crate::linux::dbus::{Conn, DbusError, Value};
use berth_spec::{Linux, Resources};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::os::fd::OwnedFd;
use std::path::Path;
use std::time::Duration;

const DEST: &str = "org.freedesktop.systemd1";
const OBJ: &str = "/org/freedesktop/systemd1";
const MANAGER: &str = "org.freedesktop.systemd1.Manager";
/// How long a call or a job may take (runc allows a unit 30 s to start).
const TIMEOUT: Duration = Duration::from_secs(30);
/// The prefix of config annotations that set extra unit properties, as runc reads them.
const PROPERTY_ANNOTATION: &str = "org.systemd.property.";

pub struct Systemd {
    unit: String,
    paths: CgroupPaths,
    /// What create needs: the slice, the container id, the layout, the initial
    /// properties. None for a manager loaded from state.
    new: Option<New>,
    /// The cgroupfs manager at the scope's directory (once the scope exists).
    fs: Option<Box<dyn Manager>>,
    /// Whether the unit is this container's to stop: loaded from state, or started by
    /// this create (a create refused because the name is taken must not stop the unit).
    owned: bool,
    conn: RefCell<Option<Conn>>,
}

struct New {
    unit: Unit,
    id: String,
    layout: Layout,
    properties: Vec<(String, Value)>,
}

impl Systemd {
    pub fn new(linux: &Linux, annotations: &BTreeMap<String, String>, id: &str, layout: Layout) -> Result<Systemd> {
        let unit = path::systemd_unit(linux.cgroups_path.as_deref(), id)?;
        if !Path::new("/run/systemd/system").exists() {
            return Err(Error::new(
                "--systemd-cgroup: systemd is not running on this host (no /run/systemd/system): run berth without --systemd-cgroup to use cgroupfs",
            ));
        }
        let v2 = layout.v1.is_empty();
        let empty = Resources::default();
        let mut properties = resource_properties(linux.resources.as_ref().unwrap_or(&empty), v2, None)?;
        properties.extend(annotation_properties(annotations)?);
        Ok(Systemd {
            unit: unit.name.clone(),
            paths: CgroupPaths { systemd_unit: Some(unit.name.clone()), ..Default::default() },
            new: Some(New { unit, id: id.to_string(), layout, properties }),
            fs: None,
            owned: false,
            conn: RefCell::new(None),
        })
    }

    pub fn load(unit: &str, paths: CgroupPaths) -> Systemd {
        let fs_paths = CgroupPaths { systemd_unit: None, ..paths.clone() };
        let fs = super::load(&fs_paths);
        Systemd { unit: unit.to_string(), paths, new: None, fs: Some(fs), owned: true, conn: RefCell::new(None) }
    }

    fn fs(&self) -> Result<&dyn Manager> {
        self.fs.as_deref().ok_or_else(|| Error::new(format!("systemd unit {} has not been started", self.unit)))
    }

    /// Runs `f` with the connection to systemd, made on first use.
    fn with_conn<T>(&self, f: impl FnOnce(&mut Conn) -> Result<T>) -> Result<T> {
        let mut c = self.conn.borrow_mut();
        if c.is_none() {
            *c = Some(connect()?);
        }
        f(c.as_mut().expect("connected above"))
    }

    /// Starts the scope around `pid`; on a unit of that name left failed or inactive by
    /// an earlier container, clears it and tries once more.
    fn start_unit(&self, pid: i32) -> Result<()> {
        let n = self.new.as_ref().expect("enter is only called on a new container");
        let mut props = vec![
            ("Description".to_string(), Value::Str(format!("berth container {}", n.id))),
            ("Slice".to_string(), Value::Str(n.unit.slice.clone())),
            ("Delegate".to_string(), Value::Bool(true)),
            ("PIDs".to_string(), Value::Array("u".into(), vec![Value::U32(pid as u32)])),
            // A container's scope is not stopped with the slice's ordinary dependencies.
            ("DefaultDependencies".to_string(), Value::Bool(false)),
            ("MemoryAccounting".to_string(), Value::Bool(true)),
            ("CPUAccounting".to_string(), Value::Bool(true)),
            ("TasksAccounting".to_string(), Value::Bool(true)),
        ];
        props.push(if n.layout.v1.is_empty() { ("IOAccounting".to_string(), Value::Bool(true)) } else { ("BlockIOAccounting".to_string(), Value::Bool(true)) });
        props.extend(n.properties.iter().cloned());
        let args = [
            Value::Str(self.unit.clone()),
            Value::Str("replace".into()),
            Value::Array("(sv)".into(), props.into_iter().map(|(k, v)| Value::Struct(vec![Value::Str(k), Value::Variant(Box::new(v))])).collect()),
            Value::Array("(sa(sv))".into(), vec![]),
        ];
        self.with_conn(|c| {
            watch_jobs(c)?;
            for attempt in 0..2 {
                match c.call(DEST, OBJ, MANAGER, "StartTransientUnit", &args, TIMEOUT)? {
                    Ok(reply) => {
                        let job = object_path(&reply)?;
                        return wait_job(c, &job, &format!("start unit {}", self.unit));
                    }
                    Err(e) if e.name == "org.freedesktop.systemd1.UnitExists" && attempt == 0 => {
                        let state = active_state(c, &self.unit)?;
                        if !matches!(state.as_str(), "failed" | "inactive") {
                            return Err(Error::new(format!(
                                "systemd unit {} already exists ({state}): is another container using cgroupsPath {:?}?",
                                self.unit, n.unit.name
                            )));
                        }
                        let _ = c.call(DEST, OBJ, MANAGER, "ResetFailedUnit", &[Value::Str(self.unit.clone())], TIMEOUT)?;
                    }
                    Err(e) => return Err(dbus_error(&format!("start unit {}", self.unit), e)),
                }
            }
            Err(Error::new(format!("systemd: start unit {}: the unit still exists", self.unit)))
        })
    }

    /// Stops the unit (systemd removes its cgroup) and clears a failed state.
    fn stop_unit(&self, c: &mut Conn) -> Result<()> {
        watch_jobs(c)?;
        match c.call(DEST, OBJ, MANAGER, "StopUnit", &[Value::Str(self.unit.clone()), Value::Str("replace".into())], TIMEOUT)? {
            Ok(reply) => wait_job(c, &object_path(&reply)?, &format!("stop unit {}", self.unit))?,
            Err(e) if e.name == "org.freedesktop.systemd1.NoSuchUnit" => {}
            Err(e) => return Err(dbus_error(&format!("stop unit {}", self.unit), e)),
        }
        let _ = c.call(DEST, OBJ, MANAGER, "ResetFailedUnit", &[Value::Str(self.unit.clone())], TIMEOUT)?;
        Ok(())
    }

    fn set_properties(&self, props: Vec<(String, Value)>) -> Result<()> {
        if props.is_empty() {
            return Ok(());
        }
        let args = [
            Value::Str(self.unit.clone()),
            Value::Bool(true),
            Value::Array("(sv)".into(), props.into_iter().map(|(k, v)| Value::Struct(vec![Value::Str(k), Value::Variant(Box::new(v))])).collect()),
        ];
        self.with_conn(|c| match c.call(DEST, OBJ, MANAGER, "SetUnitProperties", &args, TIMEOUT)? {
            Ok(_) => Ok(()),
            Err(e) => Err(dbus_error(&format!("set properties of unit {}", self.unit), e)),
        })
    }
}

impl Manager for Systemd {
    fn paths(&self) -> &CgroupPaths {
        &self.paths
    }

    /// The unit, so that delete can stop it; on v1 also the directories `enter` makes
    /// in the hierarchies systemd does not manage, at the path systemd gives the unit.
    fn plan(&self) -> CgroupPaths {
        let mut p = self.paths.clone();
        let Some(n) = &self.new else { return p };
        if !n.layout.v1.is_empty() {
            if let Ok(m) = path::unit_fs_path(&n.unit).and_then(|rel| V1::new(&n.layout, &rel, false)) {
                p = CgroupPaths { systemd_unit: p.systemd_unit, ..m.plan() };
            }
        }
        p
    }

    /// Connects to systemd before the init exists, so that a host without it fails
    /// create before anything is made.
    fn create(&mut self) -> Result<()> {
        self.with_conn(|_| Ok(()))
    }

    /// systemd moves the init into the scope when it starts it.
    fn join_files(&self) -> Result<Vec<OwnedFd>> {
        Ok(Vec::new())
    }

    fn enter(&mut self, init_pid: i32) -> Result<()> {
        self.start_unit(init_pid)?;
        self.owned = true;
        let n = self.new.as_ref().expect("a new container");
        // Where systemd put it: /proc/PID/cgroup, as the kernel reports it.
        let own =
            std::fs::read_to_string(format!("/proc/{init_pid}/cgroup")).map_err(|e| Error::new(format!("read /proc/{init_pid}/cgroup: {}", Error::from(e))))?;
        let v2 = n.layout.v1.is_empty();
        let key = if v2 { "" } else { "name=systemd" };
        let rel = own
            .lines()
            .find_map(|l| {
                let mut f = l.splitn(3, ':');
                let (_, ctrl, p) = (f.next()?, f.next()?, f.next()?);
                (ctrl == key).then(|| p.to_string())
            })
            .unwrap_or_else(|| path::unit_fs_path(&n.unit).unwrap_or_default());
        let mut fs: Box<dyn Manager> = if v2 {
            let u = n.layout.unified.as_ref().ok_or_else(|| Error::new("no cgroup2 hierarchy is mounted"))?;
            Box::new(V2::existing(&u.mountpoint, u.dir_for(&rel)?))
        } else {
            // systemd made the scope in its own hierarchies; the other controllers'
            // directories are made here, and the init joins them.
            let mut m = V1::new(&n.layout, &rel, false)?;
            m.create()?;
            m.add_process(init_pid)?;
            Box::new(m)
        };
        fs.enter(init_pid)?;
        self.paths = CgroupPaths { systemd_unit: Some(self.unit.clone()), ..fs.paths().clone() };
        self.fs = Some(fs);
        Ok(())
    }

    fn add_process(&self, pid: i32) -> Result<()> {
        self.fs()?.add_process(pid)
    }

    fn add_exec(&self, pid: i32, init_pid: i32) -> Result<()> {
        self.fs()?.add_exec(pid, init_pid)
    }

    fn apply(&self, linux: &Linux) -> Result<()> {
        self.fs()?.apply(linux)
    }

    /// The properties first (so systemd keeps them), then the files.
    fn update(&self, r: &Resources) -> Result<()> {
        let v2 = self.paths.is_v2();
        let period = self
            .paths
            .unified
            .as_deref()
            .filter(|_| v2)
            .and_then(|d| v2::read_cpu_max(d).1)
            .or_else(|| self.paths.v1_dir("cpu").and_then(|d| fs::read_u64(&d.join("cpu.cfs_period_us"))));
        self.set_properties(resource_properties(r, v2, period)?)?;
        self.fs()?.update(r)
    }

    fn can_freeze(&self) -> bool {
        self.fs.as_ref().is_some_and(|f| f.can_freeze())
    }

    fn freeze(&self, frozen: bool) -> Result<()> {
        self.fs()?.freeze(frozen)
    }

    fn is_frozen(&self) -> bool {
        self.fs.as_ref().is_some_and(|f| f.is_frozen())
    }

    fn stats(&self) -> stats::Stats {
        self.fs.as_ref().map(|f| f.stats()).unwrap_or_default()
    }

    fn pids(&self) -> Vec<i32> {
        self.fs.as_ref().map(|f| f.pids()).unwrap_or_default()
    }

    fn oom_watch(&self) -> OomWatch {
        self.fs.as_ref().map(|f| f.oom_watch()).unwrap_or(OomWatch::None)
    }

    /// Stops the unit, then removes what is left of the directories (those berth made
    /// in v1 hierarchies systemd does not manage). Without systemd to ask (it has gone
    /// since create), the directories alone.
    fn destroy(&self) -> Result<()> {
        if !self.owned {
            return Ok(());
        }
        let stopped = self.with_conn(|c| self.stop_unit(c));
        if let Err(e) = &stopped {
            crate::logging::warn(&format!("systemd: {e}"));
        }
        if let Some(f) = &self.fs {
            f.destroy()?;
        }
        for d in self.paths.all_dirs() {
            fs::remove_dir_retrying(d).map_err(|e| Error::new(format!("remove cgroup {}: {}", d.display(), Error::from(e))))?;
        }
        Ok(())
    }
}

/// The system bus, else (as root, where dbus-daemon is not running) systemd's own socket.
fn connect() -> Result<Conn> {
    match Conn::system() {
        Ok(c) => Ok(c),
        Err(e) => {
            let private = "/run/systemd/private";
            if Path::new(private).exists() {
                if let Ok(c) = Conn::connect(&format!("unix:path={private}"), false) {
                    return Ok(c);
                }
            }
            Err(Error::new(format!("--systemd-cgroup: cannot reach systemd over D-Bus: {e}")))
        }
    }
}

/// JobRemoved is sent to the client that queued the job; the match must exist before
/// the call, or a fast job's signal is missed.
fn watch_jobs(c: &mut Conn) -> Result<()> {
    c.add_match(&format!("type='signal',sender='{DEST}',path='{OBJ}',interface='{MANAGER}',member='JobRemoved'"))
}

fn wait_job(c: &mut Conn, job: &str, what: &str) -> Result<()> {
    let sig = c.wait_signal(TIMEOUT, |m| m.member.as_deref() == Some("JobRemoved") && matches!(m.body.get(1), Some(Value::ObjectPath(p)) if p == job))?;
    let Some(sig) = sig else {
        return Err(Error::new(format!("systemd: {what}: no answer within {}s", TIMEOUT.as_secs())));
    };
    match sig.body.get(3) {
        Some(Value::Str(r)) if r == "done" => Ok(()),
        Some(Value::Str(r)) => Err(Error::new(format!("systemd: {what}: job {r}"))),
        _ => Err(Error::new(format!("systemd: {what}: malformed JobRemoved signal"))),
    }
}

fn object_path(reply: &[Value]) -> Result<String> {
    match reply.first() {
        Some(Value::ObjectPath(p)) => Ok(p.clone()),
        other => Err(Error::new(format!("systemd: expected a job path, got {other:?}"))),
    }
}

fn active_state(c: &mut Conn, unit: &str) -> Result<String> {
    let path = match c.call(DEST, OBJ, MANAGER, "GetUnit", &[Value::Str(unit.into())], TIMEOUT)? {
        Ok(r) => object_path(&r)?,
        Err(e) if e.name == "org.freedesktop.systemd1.NoSuchUnit" => return Ok("inactive".into()),
        Err(e) => return Err(dbus_error(&format!("get unit {unit}"), e)),
    };
    let args = [Value::Str("org.freedesktop.systemd1.Unit".into()), Value::Str("ActiveState".into())];
    match c.call(DEST, &path, "org.freedesktop.DBus.Properties", "Get", &args, TIMEOUT)? {
        Ok(r) => match r.first() {
            Some(Value::Variant(v)) => match v.as_ref() {
                Value::Str(s) => Ok(s.clone()),
                other => Err(Error::new(format!("systemd: ActiveState of {unit} is {other:?}"))),
            },
            other => Err(Error::new(format!("systemd: ActiveState of {unit} is {other:?}"))),
        },
        Err(e) => Err(dbus_error(&format!("get ActiveState of {unit}"), e)),
    }
}

fn dbus_error(what: &str, e: DbusError) -> Error {
    Error::new(format!("systemd: {what}: {} ({})", e.message, e.name))
}

/// systemd's "infinity" for a limit.
const INFINITY: u64 = u64::MAX;

/// The unit properties for `linux.resources`, with the names and units of systemd's
/// cgroup v2 settings (systemd maps them onto v1 files on a hybrid host), converted as
/// runc converts them. `period`: the current CPU period, for a quota given alone.
pub fn resource_properties(r: &Resources, v2: bool, period: Option<u64>) -> Result<Vec<(String, Value)>> {
    let mut p: Vec<(String, Value)> = Vec::new();
    let mut set = |k: &str, v: Value| {
        p.retain(|(n, _)| n != k);
        p.push((k.to_string(), v));
    };
    let limit = |v: i64| if v < 0 { INFINITY } else { v as u64 };
    if let Some(m) = &r.memory {
        let mem = m.limit.unwrap_or(0);
        if mem != 0 {
            set("MemoryMax", Value::U64(limit(mem)));
        }
        if let Some(res) = m.reservation.filter(|v| *v != 0) {
            set("MemoryLow", Value::U64(limit(res)));
        }
        let swap = m.swap.unwrap_or(0);
        if v2 && (swap != 0 || mem == -1) {
            let s = v2::swap_to_v2(swap, mem)?;
            if s != 0 || swap != 0 {
                set("MemorySwapMax", Value::U64(limit(s)));
            }
        }
    }
    if let Some(c) = &r.cpu {
        if let Some(s) = c.shares.filter(|s| *s != 0) {
            set("CPUWeight", Value::U64(v2::shares_to_weight(s)));
        }
        let quota = c.quota.unwrap_or(0);
        let per = c.period.filter(|p| *p != 0);
        if let Some(pe) = per {
            set("CPUQuotaPeriodUSec", Value::U64(pe));
        }
        if quota != 0 {
            set("CPUQuotaPerSecUSec", Value::U64(quota_per_sec(quota, per.or(period).unwrap_or(100_000))));
        }
        if let Some(cpus) = c.cpus.as_deref().filter(|s| !s.is_empty() && v2) {
            set("AllowedCPUs", Value::Array("y".into(), list_to_bitmask(cpus, "cpu.cpus")?.into_iter().map(Value::Byte).collect()));
        }
        if let Some(mems) = c.mems.as_deref().filter(|s| !s.is_empty() && v2) {
            set("AllowedMemoryNodes", Value::Array("y".into(), list_to_bitmask(mems, "cpu.mems")?.into_iter().map(Value::Byte).collect()));
        }
    }
    if let Some(pids) = r.pids.as_ref().filter(|p| p.limit != 0) {
        set("TasksMax", Value::U64(limit(pids.limit)));
    }
    if let Some(w) = r.block_io.as_ref().and_then(|b| b.weight).filter(|w| *w != 0) {
        if v2 {
            set("IOWeight", Value::U64(v2::blkio_weight_to_io_weight(w)));
        } else {
            set("BlockIOWeight", Value::U64(w as u64));
        }
    }
    // `unified` keys systemd has a property for (the file is written too).
    for (k, v) in r.unified.iter().flatten() {
        let num = || -> Result<u64> {
            if v.trim() == "max" {
                return Ok(INFINITY);
            }
            v.trim().parse().map_err(|_| Error::new(format!("linux.resources.unified[{k:?}]: {v:?} is not a number or \"max\"")))
        };
        match k.as_str() {
            "memory.max" => set("MemoryMax", Value::U64(num()?)),
            "memory.high" => set("MemoryHigh", Value::U64(num()?)),
            "memory.low" => set("MemoryLow", Value::U64(num()?)),
            "memory.min" => set("MemoryMin", Value::U64(num()?)),
            "memory.swap.max" => set("MemorySwapMax", Value::U64(num()?)),
            "pids.max" => set("TasksMax", Value::U64(num()?)),
            "cpu.weight" => set("CPUWeight", Value::U64(num()?)),
            _ => {}
        }
    }
    Ok(p)
}

/// CPUQuotaPerSecUSec from a quota and period in µs, rounded up to systemd's 10 ms
/// granularity as runc rounds it (else systemd would round it down); -1 is no quota.
pub fn quota_per_sec(quota: i64, period: u64) -> u64 {
    if quota < 0 || period == 0 {
        return INFINITY;
    }
    let v = (quota as u64).saturating_mul(1_000_000) / period;
    v.div_ceil(10_000) * 10_000
}

/// "0-2,5" -> the bytes of a bitmask, cpu 0 the lowest bit of the first byte (systemd's
/// AllowedCPUs/AllowedMemoryNodes).
pub fn list_to_bitmask(list: &str, field: &str) -> Result<Vec<u8>> {
    let bad = || Error::new(format!("linux.resources.{field}: invalid list {list:?}"));
    let mut out: Vec<u8> = Vec::new();
    for part in list.trim().split(',').filter(|s| !s.is_empty()) {
        let (a, b) = match part.split_once('-') {
            Some((a, b)) => (a.trim().parse::<usize>().map_err(|_| bad())?, b.trim().parse::<usize>().map_err(|_| bad())?),
            None => {
                let n = part.trim().parse::<usize>().map_err(|_| bad())?;
                (n, n)
            }
        };
        if a > b || b >= 8192 {
            return Err(bad());
        }
        for i in a..=b {
            if out.len() <= i / 8 {
                out.resize(i / 8 + 1, 0);
            }
            out[i / 8] |= 1 << (i % 8);
        }
    }
    Ok(out)
}

/// `org.systemd.property.NAME` annotations: extra unit properties, their values in
/// GVariant's text form as runc reads them ("uint64 10", "true", "'text'", "5").
pub fn annotation_properties(annotations: &BTreeMap<String, String>) -> Result<Vec<(String, Value)>> {
    let mut out = Vec::new();
    for (k, v) in annotations {
        let Some(name) = k.strip_prefix(PROPERTY_ANNOTATION) else { continue };
        let value = parse_gvariant(v.trim()).ok_or_else(|| {
            Error::new(format!("annotations[{k:?}]: cannot read {v:?} as a systemd property value (examples: \"uint64 10\", \"true\", \"'text'\")"))
        })?;
        // The properties berth sets itself are not to be replaced.
        if matches!(name, "PIDs" | "Delegate" | "Slice" | "Description" | "DefaultDependencies") {
            return Err(Error::new(format!("annotations[{k:?}]: {name} is set by the runtime")));
        }
        out.push((name.to_string(), value));
    }
    Ok(out)
}

fn parse_gvariant(s: &str) -> Option<Value> {
    if let Some((ty, rest)) = s.split_once(' ') {
        let rest = rest.trim();
        return match ty {
            "byte" => rest.parse().ok().map(Value::Byte),
            "int16" => rest.parse().ok().map(Value::I16),
            "uint16" => rest.parse().ok().map(Value::U16),
            "int32" => rest.parse().ok().map(Value::I32),
            "uint32" => rest.parse().ok().map(Value::U32),
            "int64" => rest.parse().ok().map(Value::I64),
            "uint64" => rest.parse().ok().map(Value::U64),
            "double" => rest.parse().ok().map(Value::Double),
            "boolean" => parse_gvariant(rest).filter(|v| matches!(v, Value::Bool(_))),
            "string" => unquote(rest).map(Value::Str),
            "objectpath" => unquote(rest).map(Value::ObjectPath),
            _ => None,
        };
    }
    match s {
        "true" => return Some(Value::Bool(true)),
        "false" => return Some(Value::Bool(false)),
        _ => {}
    }
    if let Some(t) = unquote(s) {
        return Some(Value::Str(t));
    }
    // An untyped number is an int32 in GVariant's text form.
    s.parse().ok().map(Value::I32)
}

fn unquote(s: &str) -> Option<String> {
    let q = s.chars().next().filter(|c| *c == '\'' || *c == '"')?;
    let inner = s.strip_prefix(q)?.strip_suffix(q)?;
    (!inner.contains(q)).then(|| inner.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A new container's manager as `Systemd::new` makes it, without asking for systemd.
    fn new_manager(layout: Layout) -> Systemd {
        let unit = path::systemd_unit(Some("machine.slice:libpod:c1"), "c1").unwrap();
        Systemd {
            unit: unit.name.clone(),
            paths: CgroupPaths { systemd_unit: Some(unit.name.clone()), ..Default::default() },
            new: Some(New { unit, id: "c1".into(), layout, properties: Vec::new() }),
            fs: None,
            owned: false,
            conn: RefCell::new(None),
        }
    }

    #[test]
    fn the_record_create_writes_first_names_the_unit_for_delete_to_stop() {
        let hybrid = "31 30 0:27 / /nonexistent-cg/cpu rw - cgroup cgroup rw,cpu\n\
                      33 30 0:29 / /nonexistent-cg/systemd rw - cgroup cgroup rw,name=systemd\n\
                      34 30 0:30 / /nonexistent-cg/unified rw - cgroup2 cgroup2 rw";
        let plan = new_manager(Layout::parse(hybrid, "1:cpu:/\n0::/")).plan();
        assert_eq!(plan.systemd_unit.as_deref(), Some("libpod-c1.scope"));
        // On v1, also the directories enter makes beside systemd's, all missing here.
        let scope = Path::new("/nonexistent-cg/cpu/machine.slice/libpod-c1.scope");
        assert_eq!(plan.v1_dir("cpu"), Some(scope));
        assert!(plan.created.iter().any(|d| d == scope), "{:?}", plan.created);
        // What delete rebuilds from that record is the systemd driver, owning the unit.
        let m = super::super::load(&plan);
        assert_eq!(m.paths().systemd_unit.as_deref(), Some("libpod-c1.scope"));
        let v2 = new_manager(Layout::parse("35 1 0:30 / /nonexistent-cg rw - cgroup2 cgroup2 rw", "0::/")).plan();
        assert_eq!(v2.systemd_unit.as_deref(), Some("libpod-c1.scope"));
    }

    fn props(r: serde_json::Value, v2: bool) -> BTreeMap<String, Value> {
        let r: Resources = serde_json::from_value(r).unwrap();
        resource_properties(&r, v2, None).unwrap().into_iter().collect()
    }

    #[test]
    fn resources_become_the_unit_properties_runc_sets() {
        let p = props(
            serde_json::json!({
                "memory": {"limit": 104857600, "swap": 209715200, "reservation": 52428800},
                "cpu": {"shares": 512, "quota": 50000, "period": 100000, "cpus": "0-2,9", "mems": "0"},
                "pids": {"limit": 42},
                "blockIO": {"weight": 500},
                "unified": {"memory.high": "90000000"}
            }),
            true,
        );
        assert_eq!(p["MemoryMax"], Value::U64(104857600));
        assert_eq!(p["MemorySwapMax"], Value::U64(104857600));
        assert_eq!(p["MemoryLow"], Value::U64(52428800));
        assert_eq!(p["MemoryHigh"], Value::U64(90000000));
        assert_eq!(p["CPUWeight"], Value::U64(20));
        assert_eq!(p["CPUQuotaPerSecUSec"], Value::U64(500000));
        assert_eq!(p["CPUQuotaPeriodUSec"], Value::U64(100000));
        assert_eq!(p["AllowedCPUs"], Value::Array("y".into(), vec![Value::Byte(0b111), Value::Byte(0b10)]));
        assert_eq!(p["AllowedMemoryNodes"], Value::Array("y".into(), vec![Value::Byte(1)]));
        assert_eq!(p["TasksMax"], Value::U64(42));
        assert_eq!(p["IOWeight"], Value::U64(4950));
        let p = props(serde_json::json!({"memory": {"limit": -1}, "pids": {"limit": -1}, "cpu": {"quota": -1}}), true);
        assert_eq!(p["MemoryMax"], Value::U64(u64::MAX));
        assert_eq!(p["MemorySwapMax"], Value::U64(u64::MAX));
        assert_eq!(p["TasksMax"], Value::U64(u64::MAX));
        assert_eq!(p["CPUQuotaPerSecUSec"], Value::U64(u64::MAX));
        // On a hybrid host: no v2-only properties; the v1 weight as is.
        let p = props(serde_json::json!({"memory": {"limit": 1000, "swap": 2000}, "blockIO": {"weight": 500}, "cpu": {"cpus": "0"}}), false);
        assert!(!p.contains_key("MemorySwapMax") && !p.contains_key("AllowedCPUs"));
        assert_eq!(p["BlockIOWeight"], Value::U64(500));
        assert!(props(serde_json::json!({}), true).is_empty());
    }

    #[test]
    fn a_cpu_quota_is_rounded_up_to_systemds_10ms_as_runc_does() {
        assert_eq!(quota_per_sec(50000, 100000), 500000);
        assert_eq!(quota_per_sec(1, 100000), 10000);
        assert_eq!(quota_per_sec(12345, 100000), 130000);
        assert_eq!(quota_per_sec(150000, 100000), 1500000);
        // A quota alone keeps the current period.
        let r: Resources = serde_json::from_value(serde_json::json!({"cpu": {"quota": 20000}})).unwrap();
        let p: BTreeMap<_, _> = resource_properties(&r, true, Some(50000)).unwrap().into_iter().collect();
        assert_eq!(p["CPUQuotaPerSecUSec"], Value::U64(400000));
    }

    #[test]
    fn cpu_lists_become_bitmasks_and_bad_ones_name_the_field() {
        assert_eq!(list_to_bitmask("0", "cpu.cpus").unwrap(), vec![1]);
        assert_eq!(list_to_bitmask("1,3-4", "cpu.cpus").unwrap(), vec![0b11010]);
        assert_eq!(list_to_bitmask("8", "cpu.cpus").unwrap(), vec![0, 1]);
        assert!(list_to_bitmask("3-1", "cpu.cpus").unwrap_err().msg().starts_with("linux.resources.cpu.cpus"));
        assert!(list_to_bitmask("x", "cpu.mems").unwrap_err().msg().contains("cpu.mems"));
    }

    #[test]
    fn property_annotations_are_read_as_gvariant_text() {
        let a: BTreeMap<String, String> = [
            ("org.systemd.property.TimeoutStopUSec", "uint64 5000000"),
            ("org.systemd.property.CollectMode", "'inactive-or-failed'"),
            ("org.systemd.property.SendSIGKILL", "false"),
            ("org.systemd.property.Nice", "5"),
            ("other", "ignored"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let p: BTreeMap<_, _> = annotation_properties(&a).unwrap().into_iter().collect();
        assert_eq!(p.len(), 4);
        assert_eq!(p["TimeoutStopUSec"], Value::U64(5000000));
        assert_eq!(p["CollectMode"], Value::Str("inactive-or-failed".into()));
        assert_eq!(p["SendSIGKILL"], Value::Bool(false));
        assert_eq!(p["Nice"], Value::I32(5));
        let bad: BTreeMap<String, String> = [("org.systemd.property.X".to_string(), "[1, 2]".to_string())].into_iter().collect();
        assert!(annotation_properties(&bad).unwrap_err().msg().contains("org.systemd.property.X"));
        let ours: BTreeMap<String, String> = [("org.systemd.property.PIDs".to_string(), "5".to_string())].into_iter().collect();
        assert!(annotation_properties(&ours).unwrap_err().msg().contains("set by the runtime"));
    }
}
