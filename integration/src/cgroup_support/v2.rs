//! The pure cgroup v2 suite (tests/cgroups_v2.rs): whether this machine has the unified
//! hierarchy with real controllers, a container's v2 files as the host sees them, and what
//! the tests make beside their containers (cgroups of their own with processes in them, a
//! loop device, reserved hugepages), each undone when dropped.
//!
//! The suite runs in the VM lane (`bash integration/scripts/vm-lane.sh cgroups_v2`), where
//! `BERTH_VM_LANE` is set.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use super::{is_pure_v2, ROOT};

/// Set by the VM lane: there a test that cannot run is a failure, not a skip.
pub fn in_vm_lane() -> bool {
    std::env::var_os("BERTH_VM_LANE").is_some_and(|v| !v.is_empty())
}

/// Whether the calling test, which needs pure cgroup v2 with `controllers`, can run here.
/// When it cannot: in the VM lane the test fails (the lane exists to run it), elsewhere
/// it is skipped with a message saying why and where it runs.
#[track_caller]
pub fn ready(controllers: &[&str]) -> bool {
    let Some(problem) = missing(controllers) else {
        return true;
    };
    // libtest runs each test on a thread named after it.
    let thread = std::thread::current();
    let test = thread.name().unwrap_or("this test");
    if in_vm_lane() {
        panic!("{test}: BERTH_VM_LANE is set but {problem}");
    }
    eprintln!(
        "skipped {test}: {problem}; the cgroup v2 suite runs in the VM lane \
         (bash integration/scripts/vm.sh -- env BERTH_VM_LANE=1 target/release/deps/cgroups_v2-HASH)"
    );
    false
}

fn missing(controllers: &[&str]) -> Option<String> {
    if !is_pure_v2() {
        return Some(format!("{ROOT} is not a pure cgroup v2 hierarchy (this host has v1 or hybrid cgroups)"));
    }
    let have = std::fs::read_to_string(Path::new(ROOT).join("cgroup.controllers")).unwrap_or_default();
    let have: Vec<&str> = have.split_whitespace().collect();
    let lack: Vec<&&str> = controllers.iter().filter(|c| !have.contains(c)).collect();
    if lack.is_empty() {
        None
    } else {
        Some(format!("the cgroup v2 root lacks the controllers {lack:?} (it has {have:?})"))
    }
}

/// The directory of an absolute cgroups path in the unified hierarchy.
pub fn dir(cgroups_path: &str) -> PathBuf {
    Path::new(ROOT).join(cgroups_path.trim_start_matches('/'))
}

/// A file of the cgroup, trimmed; panics with the path if it cannot be read.
#[track_caller]
pub fn read(cgroups_path: &str, file: &str) -> String {
    let p = dir(cgroups_path).join(file);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("read {}: {e}", p.display())).trim().to_string()
}

/// A key of a flat keyed file (memory.events, cpu.stat, pids.events ...); panics if the
/// file or the key is missing.
#[track_caller]
pub fn keyed(cgroups_path: &str, file: &str, key: &str) -> u64 {
    let text = read(cgroups_path, file);
    text.lines()
        .find_map(|l| {
            let (k, v) = l.split_once(' ')?;
            (k == key).then(|| v.trim().parse().ok()).flatten()
        })
        .unwrap_or_else(|| panic!("no {key:?} in {file} of {cgroups_path}:\n{text}"))
}

/// The cgroup v2 path of a process as the host sees it ("/a/b" from "0::/a/b").
pub fn cgroup_of(pid: i64) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("0::").map(str::to_string))
        .unwrap_or_default()
}

/// The pids in a cgroup's cgroup.procs (empty if it does not exist).
pub fn procs(dir: &Path) -> Vec<i64> {
    std::fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default().lines().filter_map(|l| l.trim().parse().ok()).collect()
}

/// A cgroup of the test's own, outside any container (for the runtime's own cgroup, or a
/// populated parent). Dropping it kills the processes it started and removes the whole
/// tree, with whatever a runtime left below it.
pub struct OwnCgroup {
    /// The absolute cgroups path ("/berth-it-...").
    pub path: String,
    pub dir: PathBuf,
    holders: Mutex<Vec<Child>>,
}

impl OwnCgroup {
    #[track_caller]
    pub fn new(path: &str) -> OwnCgroup {
        let d = dir(path);
        std::fs::create_dir(&d).unwrap_or_else(|e| panic!("create cgroup {}: {e}", d.display()));
        OwnCgroup { path: path.to_string(), dir: d, holders: Mutex::new(Vec::new()) }
    }

    /// A child cgroup (created), by its path below this one.
    #[track_caller]
    pub fn mkdir(&self, rel: &str) -> PathBuf {
        let d = self.dir.join(rel);
        std::fs::create_dir_all(&d).unwrap_or_else(|e| panic!("create cgroup {}: {e}", d.display()));
        d
    }

    /// Starts a process that sleeps in `cgroup_dir` (this cgroup or one below it) and
    /// returns once it is there: it keeps that cgroup populated.
    #[track_caller]
    pub fn hold(&self, cgroup_dir: &Path) -> u32 {
        assert!(cgroup_dir.starts_with(&self.dir), "holders live in the test's own cgroups");
        let script = format!("echo $$ > {}/cgroup.procs && exec sleep 100000", cgroup_dir.display());
        let mut cmd = Command::new("/bin/sh");
        cmd.args(["-c", &script]).stdin(Stdio::null());
        let child = crate::procs::spawn(&mut cmd).expect("start a holder process");
        let pid = child.id();
        self.holders.lock().unwrap_or_else(|e| e.into_inner()).push(child);
        crate::wait_until(Duration::from_secs(10), "the holder to join its cgroup", || procs(cgroup_dir).contains(&(pid as i64)));
        pid
    }
}

impl Drop for OwnCgroup {
    fn drop(&mut self) {
        for mut h in self.holders.lock().unwrap_or_else(|e| e.into_inner()).drain(..) {
            let _ = h.kill();
            let _ = h.wait();
            crate::procs::untrack(h.id());
        }
        for _ in 0..100 {
            super::remove_tree(&self.dir);
            if !self.dir.exists() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        eprintln!("could not remove the test's cgroup {}", self.dir.display());
    }
}

/// A runtime with the same `--root` as `rt` that runs from inside `cgroup_dir`: a wrapper
/// script moves itself there and execs the runtime under test, as a runtime started from
/// a shell in a session cgroup or by a service would be.
pub fn runtime_in(t: &crate::Test, cgroup_dir: &Path) -> crate::Runtime {
    use std::os::unix::fs::PermissionsExt;
    let wrapper = t.dir.join("runtime-in-cgroup");
    let script = format!("#!/bin/sh\necho $$ > {}/cgroup.procs || exit 125\nexec {} \"$@\"\n", cgroup_dir.display(), crate::paths::runtime().display());
    std::fs::write(&wrapper, script).expect("write the runtime wrapper");
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).expect("chmod the wrapper");
    crate::Runtime::new(wrapper, t.rt.root.clone(), t.dir.join("io-in-cgroup"))
}

/// A loop device over a file of the test's (there is no other block device in the VM),
/// detached when dropped.
pub struct LoopDevice {
    pub dev: PathBuf,
    pub major: u64,
    pub minor: u64,
}

impl LoopDevice {
    pub fn new(file: &Path, size: u64) -> Result<LoopDevice, String> {
        use std::os::unix::fs::FileTypeExt;
        use std::os::unix::fs::MetadataExt;
        let f = std::fs::File::create(file).map_err(|e| format!("create {}: {e}", file.display()))?;
        f.set_len(size).map_err(|e| format!("size {}: {e}", file.display()))?;
        drop(f);
        // The VM's initramfs loads only what it boots with; loop is a module.
        if !Path::new("/dev/loop-control").exists() {
            let o = crate::procs::output(Command::new("modprobe").arg("loop")).map_err(|e| format!("modprobe loop: {e}"))?;
            if !o.status.success() {
                return Err(format!("modprobe loop: {}", String::from_utf8_lossy(&o.stderr).trim()));
            }
        }
        let o = crate::procs::output(Command::new("losetup").args(["-f", "--show"]).arg(file)).map_err(|e| format!("losetup: {e}"))?;
        if !o.status.success() {
            return Err(format!("losetup -f --show {}: {}", file.display(), String::from_utf8_lossy(&o.stderr).trim()));
        }
        let dev = PathBuf::from(String::from_utf8_lossy(&o.stdout).trim());
        let md = std::fs::metadata(&dev).map_err(|e| format!("stat {}: {e}", dev.display()))?;
        if !md.file_type().is_block_device() {
            return Err(format!("{} is not a block device", dev.display()));
        }
        let rdev = md.rdev();
        Ok(LoopDevice { dev, major: libc::major(rdev) as u64, minor: libc::minor(rdev) as u64 })
    }
}

impl Drop for LoopDevice {
    fn drop(&mut self) {
        match crate::procs::output(Command::new("losetup").arg("-d").arg(&self.dev)) {
            Ok(o) if o.status.success() => {}
            Ok(o) => eprintln!("losetup -d {}: {}", self.dev.display(), String::from_utf8_lossy(&o.stderr).trim()),
            Err(e) => eprintln!("losetup -d {}: {e}", self.dev.display()),
        }
    }
}

/// 2 MiB hugepages added to the kernel's pool for one test; the pool is set back to
/// its size before when dropped.
pub struct Hugepages {
    before: u64,
}

const HUGEPAGES_2M: &str = "/sys/kernel/mm/hugepages/hugepages-2048kB";

impl Hugepages {
    pub fn reserve(n: u64) -> Result<Hugepages, String> {
        let nr = Path::new(HUGEPAGES_2M).join("nr_hugepages");
        let read = |f: &str| -> Result<u64, String> {
            let p = Path::new(HUGEPAGES_2M).join(f);
            std::fs::read_to_string(&p).map_err(|e| format!("read {}: {e}", p.display()))?.trim().parse().map_err(|e| format!("{}: {e}", p.display()))
        };
        let before = read("nr_hugepages")?;
        std::fs::write(&nr, (before + n).to_string()).map_err(|e| format!("write {}: {e}", nr.display()))?;
        let guard = Hugepages { before };
        let free = read("free_hugepages")?;
        if free < n {
            return Err(format!("the kernel gave {free} free 2 MiB hugepages, not {n}"));
        }
        Ok(guard)
    }
}

impl Drop for Hugepages {
    fn drop(&mut self) {
        let nr = Path::new(HUGEPAGES_2M).join("nr_hugepages");
        if let Err(e) = std::fs::write(&nr, self.before.to_string()) {
            eprintln!("could not set {} back to {}: {e}", nr.display(), self.before);
        }
    }
}
