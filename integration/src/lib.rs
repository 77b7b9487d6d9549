//! Helpers shared by the end-to-end tests of the built `berth` binary (or any runtime
//! with runc's command line: `BERTH_RUNTIME=/usr/sbin/runc cargo test -p berth-integration`
//! runs the same tests against runc, which is how they are validated).
//!
//! Each test makes a [`Test`]: a fresh temp dir holding its state root (`--root`), its
//! bundles and the runtime's output files. Dropping it, even when the test panics,
//! force-deletes every container id the test asked for, unmounts what the test mounted,
//! reaps orphans and removes the dir. Tests run in parallel: ids carry the test's name
//! and the pid, and nothing is shared but the read-only base rootfs.
//!
//! Needs root, busybox-static (/bin/busybox) and a kernel with namespaces.
//!
//! Run: `cargo build -p berth --release && cargo test -p berth-integration` (the runtime
//! is `$BERTH_RUNTIME`, else target/release/berth if it exists, else target/debug/berth).
//! Validate against runc: `BERTH_RUNTIME=/usr/sbin/runc cargo test -p berth-integration`.
//! Where runc 1.1 differs on purpose or lacks a feature, a test branches on [`flavor()`]
//! and says why in a comment; every branch still asserts something.

pub mod bundle;
/// End-to-end suites with real engines (tests/engine_*.rs).
pub mod engines;
pub mod host;
pub mod paths;
pub mod procs;
pub mod rootfs;
pub mod runtime;
pub mod seccomp_agent;
/// The berth-shim tests' helpers (tests/shim.rs), kept apart from the runtime harness.
pub mod shim_support;
pub mod soak;
/// Temp dirs removed on drop.
pub mod tempdir;

pub use bundle::Bundle;
pub use paths::{flavor, Flavor};
pub use runtime::{Opts, Output, Running, Runtime};
pub use serde_json::{json, Value};

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

/// Tests that count processes take this exclusively; all others share it. (Processes a
/// failed create leaves behind cannot be told apart from a parallel test's containers.)
static EXCLUSIVE: RwLock<()> = RwLock::new(());
static COUNTER: AtomicUsize = AtomicUsize::new(0);

enum Lock {
    Shared(#[allow(dead_code)] RwLockReadGuard<'static, ()>),
    Exclusive(#[allow(dead_code)] RwLockWriteGuard<'static, ()>),
}

/// One test's temp dir, runtime and cleanup guard.
pub struct Test {
    pub name: String,
    /// The test's own temp dir; everything it makes lives here.
    pub dir: PathBuf,
    /// The runtime under test with `--root <dir>/state`.
    pub rt: Runtime,
    n: usize,
    ids: Mutex<Vec<String>>,
    mounts: Mutex<Vec<PathBuf>>,
    fds: Mutex<Vec<i32>>,
    bundles: AtomicUsize,
    // Last: released after Drop::drop has cleaned up.
    _lock: Lock,
}

impl Test {
    /// A test that may run in parallel with others.
    pub fn new(name: &str) -> Test {
        let g = EXCLUSIVE.read().unwrap_or_else(|e| e.into_inner());
        Test::make(name, Lock::Shared(g))
    }

    /// A test that runs alone in its test binary, so that it can check that no process
    /// is left behind.
    pub fn exclusive(name: &str) -> Test {
        let g = EXCLUSIVE.write().unwrap_or_else(|e| e.into_inner());
        Test::make(name, Lock::Exclusive(g))
    }

    fn make(name: &str, lock: Lock) -> Test {
        procs::init();
        rootfs::base();
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        // Short, so that socket paths under it stay within sun_path's 108 bytes.
        let dir = std::env::temp_dir().join(format!("berth-it-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create test dir");
        std::fs::write(dir.join("TEST"), name).expect("write test name");
        let rt = Runtime::new(paths::runtime(), dir.join("state"), dir.join("io"));
        Test {
            name: name.to_string(),
            dir,
            rt,
            n,
            ids: Mutex::new(Vec::new()),
            mounts: Mutex::new(Vec::new()),
            fds: Mutex::new(Vec::new()),
            bundles: AtomicUsize::new(0),
            _lock: lock,
        }
    }

    /// A container id unique to this test and process; deleted (forced) at the end.
    pub fn id(&self, suffix: &str) -> String {
        let id = if suffix.is_empty() { format!("{}-{}", self.name, std::process::id()) } else { format!("{}-{suffix}-{}", self.name, std::process::id()) };
        self.ids.lock().unwrap_or_else(|e| e.into_inner()).push(id.clone());
        id
    }

    /// A new bundle with its own rootfs copy and the base config.
    pub fn bundle(&self) -> Bundle {
        let k = self.bundles.fetch_add(1, Ordering::SeqCst);
        Bundle::new(&self.dir.join(format!("bundle{k}")))
    }

    /// Creates container `id` from a bundle of its own running `sleep 100` (created, not
    /// started), and asserts that the create succeeded.
    #[track_caller]
    pub fn create_sleeper(&self, id: &str) {
        let mut b = self.bundle();
        b.args(&["sleep", "100"]);
        self.rt.create(id, &b).ok();
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.join(rel)
    }

    /// A directory in the test dir (created).
    pub fn mkdir(&self, rel: &str) -> PathBuf {
        let p = self.dir.join(rel);
        std::fs::create_dir_all(&p).expect("mkdir in test dir");
        p
    }

    /// A cgroups path unique to this test (for linux.cgroupsPath).
    pub fn cgroups_path(&self, suffix: &str) -> String {
        format!("/berth-it-{}-{}-{suffix}", std::process::id(), self.n)
    }

    /// Mounts a tmpfs on `dir` (in the test dir); unmounted at the end.
    pub fn mount_tmpfs(&self, dir: &Path) {
        assert!(dir.starts_with(&self.dir), "mounts only inside the test dir");
        host::mount_tmpfs(dir).expect("mount tmpfs");
        self.mounts.lock().unwrap_or_else(|e| e.into_inner()).push(dir.to_path_buf());
    }

    /// Opens `path` without O_CLOEXEC; closed at the end.
    pub fn open_inheritable(&self, path: &Path) -> i32 {
        let fd = host::open_inheritable(path).expect("open without O_CLOEXEC");
        self.fds.lock().unwrap_or_else(|e| e.into_inner()).push(fd);
        fd
    }

    /// The processes descended from the test binary right now (see [`Test::exclusive`]).
    pub fn snapshot(&self) -> Snapshot {
        procs::reap_orphans();
        Snapshot { pids: procs::descendants().into_iter().map(|(p, _)| p).collect() }
    }

    /// Asserts that a failed (or deleted) container left nothing: no new process since
    /// `before`, no mount in the host's namespace under the test dir, no state (`list`
    /// is empty, no entry under --root), and no cgroup at `cgroups_path` if given.
    #[track_caller]
    pub fn assert_nothing_left(&self, before: &Snapshot, cgroups_path: Option<&str>) {
        assert!(matches!(self._lock, Lock::Exclusive(_)), "process checks need Test::exclusive");
        let new = before.new_processes();
        assert!(new.is_empty(), "processes left behind: {new:?}");
        let mounts = host::mounts_under(&self.dir);
        assert!(mounts.is_empty(), "mounts left in the host's mount namespace: {mounts:?}");
        let ids = self.rt.list_ids();
        assert!(ids.is_empty(), "list still shows {ids:?}");
        let entries: Vec<String> =
            std::fs::read_dir(&self.rt.root).map(|d| d.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect()).unwrap_or_default();
        // runc 1.1 leaves nothing; berth may keep a lock file at the root, never a container dir.
        let dirs: Vec<&String> = entries.iter().filter(|e| self.rt.root.join(e).is_dir()).collect();
        assert!(dirs.is_empty(), "state directories left under --root: {dirs:?}");
        if let Some(cg) = cgroups_path {
            let left = host::cgroup_dirs(cg);
            assert!(left.is_empty(), "cgroups left behind: {left:?}");
        }
    }

    /// What is left of the containers whose ids contain `name`, described: live
    /// processes started since `before` (a zombie counts as gone: PID 1 here reaps late),
    /// cgroup directories in any hierarchy, state directories under --root, mounts in
    /// the host's namespace under the test dir. Empty when nothing is. Waits a little for
    /// processes that are dying.
    pub fn leftovers(&self, before: &Snapshot, name: &str) -> Vec<String> {
        assert!(matches!(self._lock, Lock::Exclusive(_)), "process checks need Test::exclusive");
        let procs = before.new_processes();
        let mut out: Vec<String> = procs.into_iter().map(|(p, cmd)| format!("process {p}: {cmd}")).collect();
        out.extend(host::cgroup_dirs_named(name).into_iter().map(|d| format!("cgroup {}", d.display())));
        let states = std::fs::read_dir(&self.rt.root)
            .map(|d| d.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
            .unwrap_or_else(|_| Vec::new());
        out.extend(states.into_iter().filter(|e| e.contains(name)).map(|e| format!("state {}", self.rt.root.join(e).display())));
        out.extend(host::mounts_under(&self.dir).into_iter().map(|m| format!("mount {m}")));
        out
    }

    /// Removes the ids registered so far from cleanup (the test deleted them itself and
    /// wants to check that a later `delete --force` is not needed).
    pub fn forget_ids(&self) {
        self.ids.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }
}

pub struct Snapshot {
    pids: HashSet<i32>,
}

impl Snapshot {
    /// Our descendants started since the snapshot, after waiting up to 2 s for those
    /// being killed to go (a zombie counts as gone: PID 1 here reaps late).
    pub fn new_processes(&self) -> Vec<(i32, String)> {
        let deadline = Instant::now() + Duration::from_secs(2);
        loop {
            procs::reap_orphans();
            let new: Vec<(i32, String)> = procs::descendants().into_iter().filter(|(p, _)| !self.pids.contains(p)).collect();
            if new.is_empty() || Instant::now() > deadline {
                return new;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Test {
    fn drop(&mut self) {
        let panicking = std::thread::panicking();
        let mut problems = Vec::new();
        let ids: Vec<String> = std::mem::take(&mut *self.ids.lock().unwrap_or_else(|e| e.into_inner()));
        for id in ids.iter().rev() {
            let mut r = match self.rt.try_spawn(&["delete", "--force", id], &Opts::default()) {
                Ok(r) => r,
                Err(e) => {
                    problems.push(format!("cleanup: {e}"));
                    continue;
                }
            };
            // Not Running::wait: a panic here, while unwinding, would abort the binary.
            let deadline = Instant::now() + Duration::from_secs(30);
            let status = loop {
                if let Some(s) = r.try_wait() {
                    break Some(s);
                }
                if Instant::now() > deadline {
                    r.kill();
                    break None;
                }
                std::thread::sleep(Duration::from_millis(10));
            };
            match status {
                Some(s) if s.success() => {}
                other => {
                    problems.push(format!("cleanup: {} -> {:?}: {}", r.cmdline, other, std::fs::read_to_string(&r.stderr_path).unwrap_or_default().trim()))
                }
            }
        }
        procs::reap_orphans();
        for m in self.mounts.lock().unwrap_or_else(|e| e.into_inner()).drain(..).rev() {
            if let Err(e) = host::umount(&m) {
                problems.push(format!("cleanup: {e}"));
            }
        }
        for fd in self.fds.lock().unwrap_or_else(|e| e.into_inner()).drain(..) {
            host::close(fd);
        }
        let left = host::mounts_under(&self.dir);
        if left.is_empty() {
            let _ = std::fs::remove_dir_all(&self.dir);
        } else {
            // Removing the tree would reach into those mounts: leave it for a person.
            problems.push(format!("cleanup: kept {} because of mounts {left:?}", self.dir.display()));
        }
        if !problems.is_empty() {
            let msg = format!("test {}: {}", self.name, problems.join("\n"));
            if panicking {
                eprintln!("{msg}");
            } else {
                panic!("{msg}");
            }
        }
    }
}

/// Polls `f` until it returns true; panics with `what` after `timeout`.
#[track_caller]
pub fn wait_until(timeout: Duration, what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !f() {
        if Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The lines of `/proc/self/status` that a container prints, as a map.
pub fn status_fields(text: &str) -> std::collections::BTreeMap<String, String> {
    text.lines().filter_map(|l| l.split_once(':').map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))).collect()
}
pub mod builder_support;
pub mod cgroup_support;
/// A docker-registry and a podman for the berth-build registry tests.
pub mod registry_support;
