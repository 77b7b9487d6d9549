//! End-to-end suites in which real engines use the runtime under test: podman (with
//! conmon), containerd 1.6 (with its runc shim v2, driven by `ctr`) and dockerd (Debian's
//! docker.io, which runs its own containerd). Each suite (tests/engine_*.rs) runs every
//! scenario twice in one run: once with runc and once with berth, as two `#[test]`s, so
//! that a failure runc shares is seen as the machine's and not berth's.
//!
//! Everything an engine makes lives under its own temp dir (`berth-e2e-PID-ENGINE-RT`):
//! daemon roots, state, sockets, pidfiles, configs, the runtime's wrapper and its call log.
//! Each engine runs in a network namespace the test makes (an fd, nothing named): its
//! bridges, veths and iptables rules go away with it. Daemons are stopped by pid (SIGTERM,
//! wait, SIGKILL), and teardown (containers, daemon, mounts, cgroups, dir) runs even when
//! scenarios fail; a later run removes what a killed run left (dirs, daemons whose
//! command line names those dirs, cgroups, slices) once that run's pid is gone.
//!
//! cgroups ([`cgroup::Driver`], chosen at run time): where PID 1 is systemd and
//! /sys/fs/cgroup is pure cgroup v2 (real hosts; the VM lane), every engine uses
//! systemd's driver as it does there (podman `cgroup_manager = "systemd"`, dockerd
//! `native.cgroupdriver=systemd`, ctr `--runc-systemd-cgroup`): its containers are scope
//! units in a slice of ours, `berth_e2e_PID_ENGINE_RT.slice`, which teardown stops.
//! Elsewhere (this repository's CI host: hybrid cgroups, no systemd) they use cgroupfs
//! under `/berth-e2e-PID-ENGINE-RT`. `BERTH_E2E_CGROUP_DRIVER=systemd|cgroupfs` overrides.
//!
//! The runtime is never called directly: the engine calls a wrapper script
//! ([`wrapper::Wrapper`]) that logs each call (argv, the calling program, stdin when it
//! is `-`, exit code and, on failure, the tail of the runtime's `--log`), then runs the
//! runtime. A failing scenario's report lists the runtime calls that failed during it.
//!
//! Scenarios are plain functions; [`suite::run`] runs them in order, catches each one's
//! panic, prints a table and fails the `#[test]` at the end if any failed.
//! `BERTH_E2E_ONLY=name,name` runs only those scenarios; `BERTH_E2E_LANE=v2-systemd` the
//! VM lane's subset ([`suite::LANE_V2_SYSTEMD`]; it fails unless the systemd driver is in
//! use); `BERTH_E2E_KEEP=1` keeps the temp dir (the daemons are still stopped).
//!
//! If an engine is not installed the suite says so loudly and passes, unless
//! `BERTH_E2E_REQUIRE_ENGINES=1` (set by .ci/run), where it fails.

pub mod cgroup;
pub mod cli;
pub mod compat;
pub mod containerd;
pub mod daemon;
pub mod docker;
pub mod image;
pub mod net;
pub mod podman;
pub mod pty;
pub mod suite;
pub mod systemd;
pub mod wrapper;

use std::path::{Path, PathBuf};
use std::time::Duration;

/// One of the two runtimes every suite runs with.
#[derive(Debug, Clone)]
pub struct RuntimeUnderTest {
    /// "runc" or "berth": the name engines know it by (podman picks behaviour by the
    /// binary's name, so the wrapper is called this too).
    pub name: &'static str,
    pub bin: PathBuf,
}

impl RuntimeUnderTest {
    /// runc: `$BERTH_E2E_RUNC`, else /usr/sbin/runc.
    pub fn runc() -> RuntimeUnderTest {
        let bin = std::env::var_os("BERTH_E2E_RUNC").filter(|v| !v.is_empty()).map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/usr/sbin/runc"));
        RuntimeUnderTest { name: "runc", bin }
    }
    /// berth: `$BERTH_RUNTIME`, else target/{release,debug}/berth (as the rest of the harness).
    pub fn berth() -> RuntimeUnderTest {
        RuntimeUnderTest { name: "berth", bin: crate::paths::runtime() }
    }
}

/// How long one engine command may take before the scenario fails (and it is killed).
pub const CMD_TIMEOUT: Duration = Duration::from_secs(120);

/// The temp dir of one engine with one runtime.
pub fn work_dir(engine: &str, rt: &str) -> PathBuf {
    std::env::temp_dir().join(format!("berth-e2e-{}-{engine}-{rt}", std::process::id()))
}

/// Whether a missing engine fails the suite (CI) or only skips it (a developer's box).
pub fn engines_required() -> bool {
    std::env::var("BERTH_E2E_REQUIRE_ENGINES").map(|v| v == "1").unwrap_or(false)
}

/// Says loudly that a suite cannot run here, then passes or (in CI) fails.
pub fn skip_or_fail(engine: &str, why: &str) {
    let msg = format!("ENGINE SUITE NOT RUN: {engine}: {why}");
    eprintln!("\n*** {msg} ***\n");
    suite::note_skipped(engine, why);
    if engines_required() {
        panic!("{msg} (BERTH_E2E_REQUIRE_ENGINES=1)");
    }
}

/// The first of `bins` that does not exist.
pub fn missing_binary(bins: &[&str]) -> Option<String> {
    bins.iter().find(|b| !Path::new(b).exists()).map(|b| b.to_string())
}

/// Removes what earlier runs left when they were killed before their teardown: dirs
/// `berth-e2e-PID-*`, cgroups `/berth-e2e-PID-*` and slices `berth_e2e_PID_*.slice` whose
/// PID is gone, after killing the processes of those runs (those whose command line names
/// such a dir, and those in such a cgroup; stopping such a slice stops its units) and
/// unmounting what is mounted under the dirs.
pub fn remove_stale() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let stale_pid = |name: &str| -> bool {
            let Some(rest) = name.strip_prefix("berth-e2e-").or_else(|| name.strip_prefix("berth_e2e_").filter(|_| name.ends_with(".slice"))) else {
                return false;
            };
            let Some(pid) = rest.split(['-', '_']).next().and_then(|p| p.parse::<i32>().ok()) else { return false };
            pid != std::process::id() as i32 && !Path::new(&format!("/proc/{pid}")).exists()
        };
        if systemd::booted() {
            for unit in systemd::units_matching("berth_e2e_*.slice") {
                if stale_pid(&unit) {
                    eprintln!("berth-e2e: stopping {unit} of a dead run");
                    for e in cgroup::stop_slice(&unit) {
                        eprintln!("berth-e2e: {e}");
                    }
                }
            }
        }
        let mut dirs = Vec::new();
        if let Ok(rd) = std::fs::read_dir(std::env::temp_dir()) {
            for e in rd.flatten() {
                if stale_pid(&e.file_name().to_string_lossy()) {
                    dirs.push(e.path());
                }
            }
        }
        let mut cgroups = Vec::new();
        if let Ok(rd) = std::fs::read_dir("/sys/fs/cgroup/pids").or_else(|_| std::fs::read_dir("/sys/fs/cgroup")) {
            for e in rd.flatten() {
                let n = e.file_name().to_string_lossy().into_owned();
                if stale_pid(&n) {
                    cgroups.push(format!("/{n}"));
                }
            }
        }
        if dirs.is_empty() && cgroups.is_empty() {
            return;
        }
        // Daemons and monitors of a dead run: their command lines name its dir.
        for pid in crate::procs::all_pids() {
            if let Some(cmd) = crate::procs::cmdline(pid) {
                if dirs.iter().any(|d| cmd.contains(&*d.to_string_lossy())) {
                    eprintln!("berth-e2e: killing process {pid} of a dead run: {cmd}");
                    crate::procs::signal(pid, libc::SIGKILL);
                }
            }
        }
        for cg in &cgroups {
            cgroup::remove_tree(cg);
        }
        std::thread::sleep(Duration::from_millis(200));
        for d in &dirs {
            daemon::umount_under(d);
            if crate::host::mounts_under(d).is_empty() {
                let _ = std::fs::remove_dir_all(d);
            }
        }
    });
}

/// Text between the first `start` and the following `end` markers (for outputs that mix
/// an engine's noise with the container's).
pub fn between<'a>(s: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let i = s.find(start)? + start.len();
    let j = s[i..].find(end)? + i;
    Some(&s[i..j])
}

/// A unique name for a container in this test binary.
pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    format!("{prefix}-{}", N.fetch_add(1, Ordering::SeqCst))
}

/// Polls `f` until it returns Some; panics with `what` (and the last value seen by
/// `describe`) after `timeout`.
#[track_caller]
pub fn poll<T>(timeout: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        if std::time::Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Bits of a /proc/PID/status capability mask (CapEff: 0000003fffffffff).
pub fn cap_mask(status: &str, field: &str) -> u64 {
    status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .unwrap_or_else(|| panic!("no {field} in {status:?}"))
}

pub const CAP_CHOWN: u32 = 0;
pub const CAP_NET_ADMIN: u32 = 12;
pub const CAP_NET_RAW: u32 = 13;
pub const CAP_SYS_ADMIN: u32 = 21;

/// A seccomp profile (docker/podman JSON) that allows everything but mkdir and mkdirat,
/// which fail with ENOSYS ("Function not implemented"): unmistakable when enforced.
pub fn write_mkdir_enosys_profile(dir: &Path) -> PathBuf {
    let p = dir.join("seccomp-mkdir-enosys.json");
    let profile = serde_json::json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32", "SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"],
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}],
    });
    std::fs::write(&p, serde_json::to_string_pretty(&profile).unwrap()).expect("write seccomp profile");
    p
}
