//! Resource usage of a container's cgroup, in the JSON shape of runc's `events` (its
//! `types.Stats`: same field names, same omitted-when-zero fields, same order).

use super::CgroupPaths;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;

fn is_zero(v: &u64) -> bool {
    *v == 0
}

#[derive(Debug, Default, Serialize)]
pub struct Stats {
    pub cpu: Cpu,
    pub cpuset: CpuSet,
    pub memory: Memory,
    pub pids: Pids,
    pub blkio: Blkio,
    pub hugetlb: BTreeMap<String, Hugetlb>,
    pub intel_rdt: BTreeMap<String, serde_json::Value>,
    pub network_interfaces: Option<Vec<serde_json::Value>>,
}

#[derive(Debug, Default, Serialize)]
pub struct Cpu {
    pub usage: CpuUsage,
    pub throttling: Throttling,
}

#[derive(Debug, Default, Serialize)]
pub struct CpuUsage {
    #[serde(skip_serializing_if = "is_zero")]
    pub total: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu: Vec<u64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu_kernel: Vec<u64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu_user: Vec<u64>,
    pub kernel: u64,
    pub user: u64,
}

#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Throttling {
    #[serde(skip_serializing_if = "is_zero")]
    pub periods: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub throttled_periods: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub throttled_time: u64,
}

#[derive(Debug, Default, Serialize)]
pub struct CpuSet {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cpus: Vec<u16>,
    pub cpu_exclusive: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub mems: Vec<u16>,
    pub mem_hardwall: u64,
    pub mem_exclusive: u64,
    pub memory_migrate: u64,
    pub memory_spread_page: u64,
    pub memory_spread_slab: u64,
    pub memory_pressure: u64,
    pub sched_load_balance: u64,
    pub sched_relax_domain_level: i64,
}

#[derive(Debug, Default, Serialize)]
pub struct MemoryEntry {
    pub limit: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub usage: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub max: u64,
    pub failcnt: u64,
}

#[derive(Debug, Default, Serialize)]
pub struct Memory {
    #[serde(skip_serializing_if = "is_zero")]
    pub cache: u64,
    pub usage: MemoryEntry,
    pub swap: MemoryEntry,
    pub kernel: MemoryEntry,
    #[serde(rename = "kernelTCP")]
    pub kernel_tcp: MemoryEntry,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub raw: BTreeMap<String, u64>,
}

#[derive(Debug, Default, Serialize)]
pub struct Pids {
    #[serde(skip_serializing_if = "is_zero")]
    pub current: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub limit: u64,
}

#[derive(Debug, Default, Serialize, Clone, PartialEq)]
pub struct BlkioEntry {
    #[serde(skip_serializing_if = "is_zero")]
    pub major: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub minor: u64,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub op: String,
    #[serde(skip_serializing_if = "is_zero")]
    pub value: u64,
}

#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Blkio {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub io_service_bytes_recursive: Vec<BlkioEntry>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub io_serviced_recursive: Vec<BlkioEntry>,
    #[serde(rename = "ioQueueRecursive", skip_serializing_if = "Vec::is_empty")]
    pub io_queued_recursive: Vec<BlkioEntry>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub io_service_time_recursive: Vec<BlkioEntry>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub io_wait_time_recursive: Vec<BlkioEntry>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub io_merged_recursive: Vec<BlkioEntry>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub io_time_recursive: Vec<BlkioEntry>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sectors_recursive: Vec<BlkioEntry>,
}

#[derive(Debug, Default, Serialize)]
pub struct Hugetlb {
    #[serde(skip_serializing_if = "is_zero")]
    pub usage: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub max: u64,
    pub failcnt: u64,
}

fn read(p: &Path) -> Option<String> {
    std::fs::read_to_string(p).ok()
}

/// A single number; "max" reads as u64::MAX.
fn num(p: &Path) -> u64 {
    super::fs::read_u64(p).unwrap_or(0)
}

/// "key value" lines.
pub fn flat_keyed(text: &str) -> BTreeMap<String, u64> {
    text.lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(' ')?;
            Some((k.to_string(), v.trim().parse().ok()?))
        })
        .collect()
}

/// "0-2,5" -> [0, 1, 2, 5]
pub fn parse_list(s: &str) -> Vec<u16> {
    let mut out = Vec::new();
    for part in s.trim().split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                if let (Ok(a), Ok(b)) = (a.parse::<u16>(), b.parse::<u16>()) {
                    out.extend(a..=b);
                }
            }
            None => out.extend(part.parse::<u16>().ok()),
        }
    }
    out
}

/// "8:0 Read 4096" lines ("Total N" lines are skipped).
pub fn blkio_entries(text: &str) -> Vec<BlkioEntry> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let (mm, op, v) = match f.as_slice() {
                [mm, op, v] => (*mm, op.to_string(), *v),
                [mm, v] if mm.contains(':') => (*mm, String::new(), *v),
                _ => return None,
            };
            let (ma, mi) = mm.split_once(':')?;
            Some(BlkioEntry { major: ma.parse().ok()?, minor: mi.parse().ok()?, op, value: v.parse().ok()? })
        })
        .collect()
}

fn clock_ticks() -> u64 {
    // SAFETY: sysconf with a constant.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as u64
    } else {
        100
    }
}

/// From v1 hierarchies.
pub fn collect_v1(cg: &CgroupPaths) -> Stats {
    let mut s = Stats::default();
    if let Some(d) = cg.v1_dir("cpuacct") {
        let u = &mut s.cpu.usage;
        u.total = num(&d.join("cpuacct.usage"));
        u.percpu = read(&d.join("cpuacct.usage_percpu")).map(|t| t.split_whitespace().filter_map(|v| v.parse().ok()).collect()).unwrap_or_default();
        if let Some(all) = read(&d.join("cpuacct.usage_all")) {
            for l in all.lines().skip(1) {
                let f: Vec<u64> = l.split_whitespace().filter_map(|v| v.parse().ok()).collect();
                if f.len() == 3 {
                    u.percpu_user.push(f[1]);
                    u.percpu_kernel.push(f[2]);
                }
            }
        }
        if let Some(st) = read(&d.join("cpuacct.stat")) {
            let st = flat_keyed(&st);
            let ns = 1_000_000_000 / clock_ticks();
            u.user = st.get("user").copied().unwrap_or(0) * ns;
            u.kernel = st.get("system").copied().unwrap_or(0) * ns;
        }
    }
    if let Some(d) = cg.v1_dir("cpu") {
        if let Some(st) = read(&d.join("cpu.stat")) {
            let st = flat_keyed(&st);
            s.cpu.throttling = Throttling {
                periods: st.get("nr_periods").copied().unwrap_or(0),
                throttled_periods: st.get("nr_throttled").copied().unwrap_or(0),
                throttled_time: st.get("throttled_time").copied().unwrap_or(0),
            };
        }
    }
    if let Some(d) = cg.v1_dir("cpuset") {
        let c = &mut s.cpuset;
        c.cpus = read(&d.join("cpuset.cpus")).map(|t| parse_list(&t)).unwrap_or_default();
        c.mems = read(&d.join("cpuset.mems")).map(|t| parse_list(&t)).unwrap_or_default();
        c.cpu_exclusive = num(&d.join("cpuset.cpu_exclusive"));
        c.mem_hardwall = num(&d.join("cpuset.mem_hardwall"));
        c.mem_exclusive = num(&d.join("cpuset.mem_exclusive"));
        c.memory_migrate = num(&d.join("cpuset.memory_migrate"));
        c.memory_spread_page = num(&d.join("cpuset.memory_spread_page"));
        c.memory_spread_slab = num(&d.join("cpuset.memory_spread_slab"));
        c.memory_pressure = num(&d.join("cpuset.memory_pressure"));
        c.sched_load_balance = num(&d.join("cpuset.sched_load_balance"));
        c.sched_relax_domain_level = read(&d.join("cpuset.sched_relax_domain_level")).and_then(|t| t.trim().parse().ok()).unwrap_or(0);
    }
    if let Some(d) = cg.v1_dir("memory") {
        let entry = |prefix: &str| {
            let f = |n: &str| d.join(format!("{prefix}{n}"));
            MemoryEntry { limit: num(&f("limit_in_bytes")), usage: num(&f("usage_in_bytes")), max: num(&f("max_usage_in_bytes")), failcnt: num(&f("failcnt")) }
        };
        s.memory.usage = entry("memory.");
        s.memory.swap = entry("memory.memsw.");
        s.memory.kernel = entry("memory.kmem.");
        s.memory.kernel_tcp = entry("memory.kmem.tcp.");
        s.memory.raw = read(&d.join("memory.stat")).map(|t| flat_keyed(&t)).unwrap_or_default();
        s.memory.cache = s.memory.raw.get("cache").copied().unwrap_or(0);
    }
    if let Some(d) = cg.v1_dir("pids") {
        s.pids = pids(d);
    }
    if let Some(d) = cg.v1_dir("blkio") {
        let b = &mut s.blkio;
        let e = |f: &str| read(&d.join(f)).map(|t| blkio_entries(&t)).unwrap_or_default();
        if d.join("blkio.io_service_bytes_recursive").exists() {
            // CFQ
            b.sectors_recursive = e("blkio.sectors_recursive");
            b.io_service_bytes_recursive = e("blkio.io_service_bytes_recursive");
            b.io_serviced_recursive = e("blkio.io_serviced_recursive");
            b.io_queued_recursive = e("blkio.io_queued_recursive");
            b.io_service_time_recursive = e("blkio.io_service_time_recursive");
            b.io_wait_time_recursive = e("blkio.io_wait_time_recursive");
            b.io_merged_recursive = e("blkio.io_merged_recursive");
            b.io_time_recursive = e("blkio.time_recursive");
        } else if d.join("blkio.bfq.io_service_bytes_recursive").exists() {
            b.io_service_bytes_recursive = e("blkio.bfq.io_service_bytes_recursive");
            b.io_serviced_recursive = e("blkio.bfq.io_serviced_recursive");
        } else {
            b.io_service_bytes_recursive = e("blkio.throttle.io_service_bytes_recursive");
            b.io_serviced_recursive = e("blkio.throttle.io_serviced_recursive");
        }
    }
    if let Some(d) = cg.v1_dir("hugetlb") {
        for size in hugepage_sizes(d, ".limit_in_bytes") {
            let f = |n: &str| d.join(format!("hugetlb.{size}.{n}"));
            s.hugetlb.insert(size.clone(), Hugetlb { usage: num(&f("usage_in_bytes")), max: num(&f("max_usage_in_bytes")), failcnt: num(&f("failcnt")) });
        }
    }
    s
}

/// Page sizes with a hugetlb.SIZE<suffix> file in `d` ("rsvd" files excluded).
fn hugepage_sizes(d: &Path, suffix: &str) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(d)
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| {
                    let n = e.file_name().to_string_lossy().into_owned();
                    let size = n.strip_prefix("hugetlb.")?.strip_suffix(suffix)?.to_string();
                    (!size.contains('.')).then_some(size)
                })
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn pids(d: &Path) -> Pids {
    let limit = num(&d.join("pids.max"));
    Pids { current: num(&d.join("pids.current")), limit: if limit == u64::MAX { 0 } else { limit } }
}

/// From the unified hierarchy's cgroup `d`.
pub fn collect_v2(d: &Path) -> Stats {
    let mut s = Stats::default();
    if let Some(st) = read(&d.join("cpu.stat")) {
        let st = flat_keyed(&st);
        let g = |k: &str| st.get(k).copied().unwrap_or(0);
        s.cpu.usage.total = g("usage_usec") * 1000;
        s.cpu.usage.user = g("user_usec") * 1000;
        s.cpu.usage.kernel = g("system_usec") * 1000;
        s.cpu.throttling = Throttling { periods: g("nr_periods"), throttled_periods: g("nr_throttled"), throttled_time: g("throttled_usec") * 1000 };
    }
    if let Some(c) = read(&d.join("cpuset.cpus.effective")) {
        s.cpuset.cpus = parse_list(&c);
    }
    if let Some(m) = read(&d.join("cpuset.mems.effective")) {
        s.cpuset.mems = parse_list(&m);
    }
    if d.join("memory.current").exists() {
        s.memory.raw = read(&d.join("memory.stat")).map(|t| flat_keyed(&t)).unwrap_or_default();
        s.memory.cache = s.memory.raw.get("file").copied().unwrap_or(0);
        let events = read(&d.join("memory.events")).map(|t| flat_keyed(&t)).unwrap_or_default();
        let usage = num(&d.join("memory.current"));
        let limit = num(&d.join("memory.max"));
        s.memory.usage = MemoryEntry { limit, usage, max: num(&d.join("memory.peak")), failcnt: events.get("max").copied().unwrap_or(0) };
        // As on v1, "swap" is memory+swap.
        if d.join("memory.swap.current").exists() {
            let swap = num(&d.join("memory.swap.current"));
            let swap_max = num(&d.join("memory.swap.max"));
            s.memory.swap = MemoryEntry { limit: limit.saturating_add(swap_max), usage: usage + swap, max: 0, failcnt: 0 };
        }
    }
    if d.join("pids.current").exists() {
        s.pids = pids(d);
    }
    if let Some(io) = read(&d.join("io.stat")) {
        for l in io.lines() {
            let mut f = l.split_whitespace();
            let Some((ma, mi)) = f.next().and_then(|mm| mm.split_once(':')) else { continue };
            let (Ok(major), Ok(minor)) = (ma.parse(), mi.parse()) else { continue };
            for kv in f {
                let Some((k, v)) = kv.split_once('=') else { continue };
                let Ok(value) = v.parse() else { continue };
                let (list, op) = match k {
                    "rbytes" => (&mut s.blkio.io_service_bytes_recursive, "Read"),
                    "wbytes" => (&mut s.blkio.io_service_bytes_recursive, "Write"),
                    "rios" => (&mut s.blkio.io_serviced_recursive, "Read"),
                    "wios" => (&mut s.blkio.io_serviced_recursive, "Write"),
                    _ => continue,
                };
                list.push(BlkioEntry { major, minor, op: op.into(), value });
            }
        }
    }
    for size in hugepage_sizes(d, ".max") {
        let f = |n: &str| d.join(format!("hugetlb.{size}.{n}"));
        let failcnt = read(&f("events")).map(|t| flat_keyed(&t)).and_then(|m| m.get("max").copied()).unwrap_or(0);
        s.hugetlb.insert(size.clone(), Hugetlb { usage: num(&f("current")), max: 0, failcnt });
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parsers() {
        assert_eq!(parse_list("0-2,5\n"), vec![0, 1, 2, 5]);
        assert_eq!(parse_list(""), Vec::<u16>::new());
        let e = blkio_entries("8:0 Read 4096\n8:0 Write 0\n8:0 Total 4096\nTotal 4096\n");
        assert_eq!(e.len(), 3);
        assert_eq!(e[0], BlkioEntry { major: 8, minor: 0, op: "Read".into(), value: 4096 });
        assert_eq!(flat_keyed("cache 1\nrss 2\n")["rss"], 2);
    }

    #[test]
    fn empty_stats_have_runcs_shape() {
        let v = serde_json::to_value(Stats::default()).unwrap();
        assert_eq!(v["cpu"]["usage"], serde_json::json!({"kernel": 0, "user": 0}));
        assert_eq!(v["memory"]["usage"], serde_json::json!({"limit": 0, "failcnt": 0}));
        assert_eq!(v["pids"], serde_json::json!({}));
        assert_eq!(v["network_interfaces"], serde_json::Value::Null);
        assert_eq!(v["hugetlb"], serde_json::json!({}));
    }
}
