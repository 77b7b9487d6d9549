//! `bench`: issue 9's benchmark of berth against runc and crun (runtime), and of
//! berth-shim against conmon (shim), with a floor launcher (target/release/bench-floor)
//! showing what the kernel alone costs. See integration/BENCHMARKS.md.
//!
//! Sections (each can be chosen with `--only`):
//! - `lifecycle` ([`lifecycle`]): `run` of a busybox `/bin/true` bundle, and `create`,
//!   `state`, `start`, `kill`, `delete` one by one; the floor; `run` in the full hybrid
//!   cgroup layout.
//! - `scale` ([`scale`]): 100 containers created and started one after another and 8 at
//!   a time, `list` with 100 present, then killed and deleted.
//! - `shims` ([`shims`]): berth-shim and conmon, each holding a `sleep` container.
//! - `builder` ([`builder`]): berth-build against buildah and against BuildKit in dockerd
//!   ([`buildkit`]).
//!
//! Fairness: one machine, one run; within a round every subject runs the same step in
//! turn, and the order rotates from round to round; every figure is a median over the
//! rounds with its p90. All runtimes run in the bench's private mount namespace without
//! /sys/fs/cgroup/unified (crun refuses the hybrid layout), with the same bundle, the
//! same kind of state root, and stdio on files.

pub mod builder;
pub mod buildkit;
pub mod cleanup;
pub mod lifecycle;
pub mod procs;
pub mod report;
pub mod scale;
pub mod shims;
pub mod stats;

use procs::{Exit, Procs};
use serde_json::{json, Value};
use stats::Record;
use std::collections::HashSet;
use std::os::unix::fs::symlink;
use std::os::unix::io::RawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

pub type Result<T> = std::result::Result<T, String>;

/// How long one command may take before the bench gives up on it.
pub const TIMEOUT: Duration = Duration::from_secs(60);

const USAGE: &str = "usage: bench [--rounds N] [--json FILE] [--scale N] [--scale-rounds N] [--shim-rounds N]
             [--builder-rounds N] [--only lifecycle,scale,shims,builder] [--runtimes berth,runc,crun[,NAME=PATH]] [--wait-quiet SECS]
             [--berth P] [--runc P] [--crun P] [--berth-shim P] [--conmon P] [--floor P] [--berth-build P] [--buildah P] [--no-buildkit]

Runs as root. Defaults: 30 lifecycle rounds, 100 containers x 3 scale rounds, 5 shim rounds,
JSON to target/bench.json (next to the directory holding this binary). The builder section
compares with BuildKit in a dockerd of its own (/usr/sbin/dockerd, /usr/bin/docker) unless
--no-buildkit.";

#[derive(Clone, Debug)]
pub struct Opts {
    pub rounds: usize,
    pub scale: usize,
    pub scale_rounds: usize,
    pub shim_rounds: usize,
    pub builder_rounds: usize,
    pub json: PathBuf,
    pub only: Vec<String>,
    pub runtimes: Vec<String>,
    pub wait_quiet: u64,
    pub berth: PathBuf,
    pub runc: PathBuf,
    pub crun: PathBuf,
    pub berth_shim: PathBuf,
    pub conmon: PathBuf,
    pub floor: PathBuf,
    pub berth_build: PathBuf,
    pub buildah: PathBuf,
    /// Whether the builder section measures BuildKit (in a dockerd of its own).
    pub buildkit: bool,
}

impl Opts {
    pub fn wants(&self, section: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|s| s == section)
    }
}

fn parse_args() -> Result<Opts> {
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let bin_dir = exe.parent().unwrap_or(Path::new(".")).to_path_buf();
    let mut o = Opts {
        rounds: 30,
        scale: 100,
        scale_rounds: 3,
        shim_rounds: 5,
        builder_rounds: 3,
        json: bin_dir.parent().unwrap_or(Path::new(".")).join("bench.json"),
        only: vec![],
        runtimes: vec!["berth".into(), "runc".into(), "crun".into()],
        wait_quiet: 0,
        berth: bin_dir.join("berth"),
        runc: "/usr/sbin/runc".into(),
        crun: "/usr/bin/crun".into(),
        berth_shim: bin_dir.join("berth-shim"),
        conmon: "/usr/bin/conmon".into(),
        floor: bin_dir.join("bench-floor"),
        berth_build: bin_dir.join("berth-build"),
        buildah: "/usr/bin/buildah".into(),
        buildkit: true,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    let list = |s: &str| s.split(',').filter(|x| !x.is_empty()).map(String::from).collect::<Vec<_>>();
    while i < args.len() {
        let a = args[i].as_str();
        if a == "-h" || a == "--help" {
            println!("{USAGE}");
            std::process::exit(0);
        }
        if a == "--no-buildkit" {
            o.buildkit = false;
            i += 1;
            continue;
        }
        let (flag, inline) = match a.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v.to_string())),
            _ => (a, None),
        };
        let mut val = || -> Result<String> {
            if let Some(v) = &inline {
                return Ok(v.clone());
            }
            i += 1;
            args.get(i).cloned().ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))
        };
        let num = |v: String| -> Result<usize> { v.parse().map_err(|_| format!("{flag}: not a number: {v}")) };
        match flag {
            "--rounds" => o.rounds = num(val()?)?.max(1),
            "--scale" => o.scale = num(val()?)?.max(10),
            "--scale-rounds" => o.scale_rounds = num(val()?)?,
            "--shim-rounds" => o.shim_rounds = num(val()?)?,
            "--builder-rounds" => o.builder_rounds = num(val()?)?,
            "--json" => o.json = val()?.into(),
            "--only" => o.only = list(&val()?),
            "--runtimes" => o.runtimes = list(&val()?),
            "--wait-quiet" => o.wait_quiet = num(val()?)? as u64,
            "--berth" => o.berth = val()?.into(),
            "--runc" => o.runc = val()?.into(),
            "--crun" => o.crun = val()?.into(),
            "--berth-shim" => o.berth_shim = val()?.into(),
            "--conmon" => o.conmon = val()?.into(),
            "--floor" => o.floor = val()?.into(),
            "--berth-build" => o.berth_build = val()?.into(),
            "--buildah" => o.buildah = val()?.into(),
            _ => return Err(format!("unknown argument {a}\n{USAGE}")),
        }
        i += 1;
    }
    for s in &o.only {
        if !["lifecycle", "scale", "shims", "builder"].contains(&s.as_str()) {
            return Err(format!("--only: unknown section {s}"));
        }
    }
    Ok(o)
}

/// A runtime under test.
#[derive(Clone, Debug)]
pub struct Rt {
    pub name: String,
    pub bin: PathBuf,
    pub root: PathBuf,
    pub version: String,
    pub size: u64,
}

pub struct Ctx {
    pub opts: Opts,
    pub procs: Procs,
    /// The bench's temp dir.
    pub dir: PathBuf,
    /// The busybox rootfs every bundle points at (root.path, absolute).
    pub rootfs: PathBuf,
    /// The cgroup parent of every container, relative to each hierarchy's root.
    pub cg_parent: String,
    /// The host's mount namespace, for the hybrid-layout rows.
    pub host_ns: Option<RawFd>,
    pub rts: Vec<Rt>,
    pub rec: Record,
    /// Things the report should say (skipped parts, oddities).
    pub notes: Vec<String>,
    pub loads: Vec<(String, String)>,
    bundles: HashSet<PathBuf>,
}

pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg").unwrap_or_default().trim().to_string()
}

pub fn load1() -> f64 {
    loadavg().split_whitespace().next().and_then(|x| x.parse().ok()).unwrap_or(f64::NAN)
}

fn version_of(bin: &Path) -> Option<String> {
    let out = Command::new(bin).arg("--version").stdin(Stdio::null()).stderr(Stdio::null()).output().ok()?;
    if !out.status.success() {
        return None;
    }
    Some(String::from_utf8_lossy(&out.stdout).lines().next().unwrap_or("").trim().to_string())
}

pub fn file_size(p: &Path) -> u64 {
    std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)
}

impl Ctx {
    /// A bundle directory holding only a config.json: runc's default config with
    /// `process.args`, no terminal, root.path = the shared rootfs (absolute, read-only
    /// as in the default), and linux.cgroupsPath = /<bench parent>/<name>. Made once and
    /// reused (ids and cgroups are reused only after the container is deleted).
    pub fn bundle(&mut self, name: &str, args: &[&str]) -> Result<PathBuf> {
        let dir = self.dir.join("bundles").join(name);
        if self.bundles.contains(&dir) {
            return Ok(dir);
        }
        let mut c = berth_integration::bundle::base_config();
        c["process"]["args"] = json!(args);
        c["root"]["path"] = json!(self.rootfs.to_string_lossy());
        c["linux"]["cgroupsPath"] = json!(format!("/{}/{name}", self.cg_parent));
        std::fs::create_dir_all(&dir).map_err(|e| format!("mkdir {}: {e}", dir.display()))?;
        let text = serde_json::to_string_pretty(&c).map_err(|e| e.to_string())?;
        std::fs::write(dir.join("config.json"), text).map_err(|e| format!("write config.json: {e}"))?;
        self.bundles.insert(dir.clone());
        Ok(dir)
    }

    pub fn io_paths(&self, slot: &str) -> (PathBuf, PathBuf) {
        (self.dir.join("io").join(format!("{slot}.out")), self.dir.join("io").join(format!("{slot}.err")))
    }

    /// `<bin> [--root ROOT] args...` with stdin /dev/null and stdout/stderr on the slot's
    /// files (truncated); in the host's mount namespace when `host_ns`.
    pub fn command(&self, bin: &Path, root: Option<&Path>, args: &[&str], slot: &str, host_ns: bool) -> Result<Command> {
        let (out, err) = self.io_paths(slot);
        let mut cmd = Command::new(bin);
        if let Some(r) = root {
            cmd.arg("--root").arg(r);
        }
        cmd.args(args).current_dir(&self.dir).stdin(Stdio::null());
        cmd.stdout(std::fs::File::create(&out).map_err(|e| format!("{}: {e}", out.display()))?);
        cmd.stderr(std::fs::File::create(&err).map_err(|e| format!("{}: {e}", err.display()))?);
        // Always through a pre_exec hook, which makes std fork (not vfork/posix_spawn): at
        // exec the kernel folds the old mm's RSS high-water mark into the child's
        // ru_maxrss, and a vfork child's old mm is the bench's own (about 2.5 MiB), which
        // would hide every smaller peak. A forked child's mm holds only the bench's
        // anonymous pages (file pages are not copied on fork).
        let fd = if host_ns { Some(self.host_ns.ok_or("the host's mount namespace is not available")?) } else { None };
        // SAFETY: setns is async-signal-safe; the forked child is single-threaded.
        unsafe {
            cmd.pre_exec(move || {
                if let Some(fd) = fd {
                    if libc::setns(fd, libc::CLONE_NEWNS) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                Ok(())
            });
        }
        Ok(cmd)
    }

    pub fn describe_failure(&self, what: &str, slot: &str, e: &Exit) -> String {
        let (out, err) = self.io_paths(slot);
        let err = std::fs::read_to_string(err).unwrap_or_default();
        let out = std::fs::read_to_string(out).unwrap_or_default();
        format!("{what}: {}\nstderr: {}\nstdout: {}", e.describe(), err.trim(), out.trim())
    }

    /// Runs `rt --root ROOT args...` to completion; fails unless it exits 0.
    pub fn run_rt(&mut self, rt: &Rt, args: &[&str], slot: &str) -> Result<Exit> {
        let mut cmd = self.command(&rt.bin, Some(&rt.root), args, slot, false)?;
        let pid = self.procs.spawn(&mut cmd)?;
        let e = self.procs.wait(pid, TIMEOUT)?;
        if !e.success() {
            return Err(self.describe_failure(&format!("{} {}", rt.name, args.join(" ")), slot, &e));
        }
        Ok(e)
    }

    /// Starts `rt --root ROOT args...` and returns its pid.
    pub fn spawn_rt(&mut self, rt: &Rt, args: &[&str], slot: &str) -> Result<i32> {
        let mut cmd = self.command(&rt.bin, Some(&rt.root), args, slot, false)?;
        self.procs.spawn(&mut cmd)
    }

    pub fn note_load(&mut self, when: &str) {
        self.loads.push((when.to_string(), loadavg()));
    }
}

/// The subjects of one round in the order they run in it: rotated by the round number,
/// so that each goes first equally often.
pub fn rotated<T: Clone>(items: &[T], round: usize) -> Vec<T> {
    let n = items.len();
    (0..n).map(|i| items[(i + round) % n.max(1)].clone()).collect()
}

/// The busybox-static rootfs: bin/busybox and the applets true, sh and sleep, plus the
/// mount points of the default config.
fn build_rootfs(dir: &Path) -> Result<()> {
    let e = |what: &str, err: std::io::Error| format!("rootfs: {what}: {err}");
    for d in ["bin", "proc", "dev", "sys", "tmp", "etc", "root"] {
        std::fs::create_dir_all(dir.join(d)).map_err(|x| e(d, x))?;
    }
    if !Path::new("/bin/busybox").exists() {
        return Err("/bin/busybox is missing: install busybox-static".into());
    }
    std::fs::copy("/bin/busybox", dir.join("bin/busybox")).map_err(|x| e("copy busybox", x))?;
    for a in ["true", "sh", "sleep"] {
        symlink("busybox", dir.join("bin").join(a)).map_err(|x| e(a, x))?;
    }
    std::fs::write(dir.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").map_err(|x| e("passwd", x))?;
    std::fs::write(dir.join("etc/group"), "root:x:0:\n").map_err(|x| e("group", x))?;
    Ok(())
}

fn is_mount_point(p: &str) -> bool {
    berth_integration::host::mountinfo("self").iter().any(|m| m.mount_point == p)
}

/// Makes the cgroup parent of every container in each hierarchy before any runtime
/// runs, as an engine's parent (`/docker`, `machine.slice`) exists before its
/// containers. Without it the runtimes would not work alike: runc and crun leave a
/// parent they made behind, so they pay for it once, while berth removes the empty
/// parents it made with the container, so it would make and remove it every time.
/// A v1 cpuset cgroup starts empty: its cpus and mems come from the root.
fn make_cgroup_parent(parent: &str) -> Result<()> {
    let root = Path::new("/sys/fs/cgroup");
    let rd = std::fs::read_dir(root).map_err(|x| format!("read {}: {x}", root.display()))?;
    for h in rd.flatten().map(|h| h.path()).filter(|h| h.join("cgroup.procs").exists()) {
        let dir = h.join(parent);
        match std::fs::create_dir(&dir) {
            Err(x) if x.kind() != std::io::ErrorKind::AlreadyExists => return Err(format!("mkdir {}: {x}", dir.display())),
            _ => {}
        }
        for f in ["cpuset.cpus", "cpuset.mems"] {
            let (from, to) = (h.join(f), dir.join(f));
            if to.exists() {
                let v = std::fs::read_to_string(&from).map_err(|x| format!("read {}: {x}", from.display()))?;
                std::fs::write(&to, v.trim()).map_err(|x| format!("write {}: {x}", to.display()))?;
            }
        }
    }
    Ok(())
}

/// Leaves the host's mount namespace for a private one without the cgroup2 mount of the
/// hybrid layout (crun refuses hybrid; everything runs in the same layout). Returns
/// whether the layout was hybrid (the rows measured in the real hybrid layout go back
/// through the fd of the host's namespace that `setup` keeps).
fn private_mount_ns() -> Result<bool> {
    // SAFETY: unshare and mount with constant arguments; the bench is single-threaded.
    unsafe {
        if libc::unshare(libc::CLONE_NEWNS) != 0 {
            return Err(format!("unshare(CLONE_NEWNS): {}", std::io::Error::last_os_error()));
        }
        if libc::mount(std::ptr::null(), c"/".as_ptr(), std::ptr::null(), libc::MS_REC | libc::MS_PRIVATE, std::ptr::null()) != 0 {
            return Err(format!("make / private: {}", std::io::Error::last_os_error()));
        }
    }
    let unified = "/sys/fs/cgroup/unified";
    let hybrid = is_mount_point(unified);
    if hybrid {
        // SAFETY: umount2 with a constant path.
        if unsafe { libc::umount2(c"/sys/fs/cgroup/unified".as_ptr(), libc::MNT_DETACH) } != 0 {
            return Err(format!("umount {unified}: {}", std::io::Error::last_os_error()));
        }
    }
    Ok(hybrid)
}

fn machine(hybrid: bool) -> Value {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo.lines().find_map(|l| l.strip_prefix("model name")).map(|s| s.trim_start_matches([' ', '\t', ':']).to_string());
    let mem = std::fs::read_to_string("/proc/meminfo").unwrap_or_default().lines().next().unwrap_or("").to_string();
    // SAFETY: uname fills a plain struct.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    unsafe { libc::uname(&mut u) };
    let field = |f: &[libc::c_char]| -> String {
        // SAFETY: uname's fields are NUL-terminated.
        unsafe { std::ffi::CStr::from_ptr(f.as_ptr()) }.to_string_lossy().into_owned()
    };
    // SAFETY: sysconf with a constant.
    let ncpu = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    json!({
        "kernel": format!("{} {}", field(&u.sysname), field(&u.release)),
        "arch": field(&u.machine),
        "cpu": model,
        "cpus": ncpu,
        "memory": mem.trim_start_matches("MemTotal:").trim(),
        "cgroups": if hybrid { "hybrid (v1 controllers + cgroup2 at /sys/fs/cgroup/unified); measured in a private mount namespace without the cgroup2 mount, except the *_hybrid rows" } else { "as mounted" },
    })
}

fn find_runtimes(o: &Opts, dir: &Path, notes: &mut Vec<String>) -> Vec<Rt> {
    let mut v = Vec::new();
    for spec in &o.runtimes {
        // NAME=PATH adds another runc-compatible binary (e.g. an experimental berth).
        let (name, bin) = match spec.split_once('=') {
            Some((n, p)) => (n.to_string(), PathBuf::from(p)),
            None => (
                spec.clone(),
                match spec.as_str() {
                    "berth" => o.berth.clone(),
                    "runc" => o.runc.clone(),
                    "crun" => o.crun.clone(),
                    other => PathBuf::from(other),
                },
            ),
        };
        let name = &name;
        match version_of(&bin) {
            Some(version) => v.push(Rt { name: name.clone(), root: dir.join(format!("root-{name}")), size: file_size(&bin), version, bin }),
            None => notes.push(format!("{name} ({}) is missing or does not run: not measured", bin.display())),
        }
    }
    v
}

fn setup(opts: Opts) -> Result<Ctx> {
    // SAFETY: geteuid has no arguments.
    if unsafe { libc::geteuid() } != 0 {
        return Err("the bench needs root".into());
    }
    let mut notes = Vec::new();
    let procs = Procs::init()?;
    // SAFETY: open(2) of a namespace file; the fd is kept until cleanup.
    let fd = unsafe { libc::open(c"/proc/self/ns/mnt".as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
    let host_ns = (fd >= 0).then_some(fd);
    let dir = std::env::temp_dir().join(format!("berth-bench-{}", std::process::id()));
    let cg_parent = format!("berth-bench-{}", std::process::id());
    let rts_probe = find_runtimes(&opts, &dir, &mut notes);
    cleanup::register(cleanup::Registry {
        dir: dir.clone(),
        roots: rts_probe.iter().map(|r| (r.bin.clone(), r.root.clone())).collect(),
        cgroup_parent: cg_parent.clone(),
        host_mnt_ns: host_ns,
    });
    // Still in the host's mount namespace, so the cgroup2 hierarchy is reached too.
    make_cgroup_parent(&cg_parent)?;
    let hybrid = private_mount_ns()?;
    let _ = std::fs::remove_dir_all(&dir);
    for d in ["io", "bundles", "shims"] {
        std::fs::create_dir_all(dir.join(d)).map_err(|e| format!("mkdir {}: {e}", dir.display()))?;
    }
    for r in &rts_probe {
        std::fs::create_dir_all(&r.root).map_err(|e| format!("mkdir {}: {e}", r.root.display()))?;
    }
    let rootfs = dir.join("rootfs");
    build_rootfs(&rootfs)?;
    if !hybrid {
        notes.push("no cgroup2 mount at /sys/fs/cgroup/unified: the *_hybrid rows are skipped".into());
    }
    Ok(Ctx {
        opts,
        procs,
        dir,
        rootfs,
        cg_parent,
        host_ns: if hybrid { host_ns } else { None },
        rts: rts_probe,
        rec: Record::default(),
        notes,
        loads: Vec::new(),
        bundles: HashSet::new(),
    })
}

fn wait_quiet(ctx: &mut Ctx) -> Result<()> {
    let secs = ctx.opts.wait_quiet;
    if secs == 0 {
        return Ok(());
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(secs);
    while load1() >= 0.5 && std::time::Instant::now() < deadline {
        ctx.procs.sleep(Duration::from_secs(5))?;
    }
    Ok(())
}

fn run_sections(ctx: &mut Ctx) -> Result<()> {
    wait_quiet(ctx)?;
    ctx.note_load("start");
    if load1() >= 0.5 {
        let l = loadavg();
        ctx.notes.push(format!("the machine was not quiet at the start (loadavg {l})"));
        eprintln!("bench: warning: loadavg {l} (>= 0.5): other work may skew the figures");
    }
    if ctx.opts.wants("lifecycle") {
        lifecycle::run(ctx)?;
        ctx.note_load("after lifecycle");
    }
    if ctx.opts.wants("scale") && ctx.opts.scale_rounds > 0 {
        scale::run(ctx)?;
        ctx.note_load("after scale");
    }
    if ctx.opts.wants("shims") && ctx.opts.shim_rounds > 0 {
        shims::run(ctx)?;
        ctx.note_load("after shims");
    }
    if ctx.opts.wants("builder") && ctx.opts.builder_rounds > 0 {
        builder::run(ctx)?;
    }
    Ok(())
}

pub fn main() {
    let opts = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("bench: {e}");
            std::process::exit(2);
        }
    };
    cleanup::install_panic_hook();
    let started = std::time::SystemTime::now();
    let mut ctx = match setup(opts) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("bench: {e}");
            for p in cleanup::run() {
                eprintln!("bench: cleanup: {p}");
            }
            std::process::exit(1);
        }
    };
    let hybrid = ctx.host_ns.is_some();
    let result = run_sections(&mut ctx);
    ctx.procs.forget_unclaimed();
    let problems = cleanup::run();
    for p in &problems {
        eprintln!("bench: cleanup: {p}");
    }
    if let Err(e) = &result {
        eprintln!("bench: {e}");
        if cleanup::interrupted() {
            std::process::exit(130);
        }
    }
    let elapsed = started.elapsed().map(|d| d.as_secs_f64()).unwrap_or(0.0);
    let rep = report::Report::new(&ctx, machine(hybrid), elapsed, result.as_ref().err().cloned(), problems);
    print!("{}", rep.table());
    match rep.write_json(&ctx.opts.json) {
        Ok(()) => println!("JSON: {}", ctx.opts.json.display()),
        Err(e) => eprintln!("bench: writing {}: {e}", ctx.opts.json.display()),
    }
    if result.is_err() {
        std::process::exit(1);
    }
}
