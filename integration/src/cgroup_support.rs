//! Reading a container's cgroup from the host side, for tests/cgroups.rs: the files of
//! its v1 hierarchies under /sys/fs/cgroup/<controller>, or of the unified (v2) one.

use std::path::{Path, PathBuf};

/// The pure cgroup v2 suite's helpers (tests/cgroups_v2.rs).
pub mod v2;

pub const ROOT: &str = "/sys/fs/cgroup";

/// Whether `controller` has a v1 hierarchy at /sys/fs/cgroup/<controller>.
pub fn has_v1(controller: &str) -> bool {
    Path::new(ROOT).join(controller).join("cgroup.procs").exists()
}

/// Pure cgroup v2: /sys/fs/cgroup is the unified hierarchy.
pub fn is_pure_v2() -> bool {
    Path::new(ROOT).join("cgroup.controllers").exists()
}

/// The directory of `cgroups_path` (absolute) in the v1 hierarchy of `controller`.
pub fn v1_dir(controller: &str, cgroups_path: &str) -> PathBuf {
    Path::new(ROOT).join(controller).join(cgroups_path.trim_start_matches('/'))
}

/// The directory of `cgroups_path` in the cgroup2 hierarchy (the unified mount on a
/// hybrid host).
pub fn v2_dir(cgroups_path: &str) -> PathBuf {
    let base = if is_pure_v2() { PathBuf::from(ROOT) } else { Path::new(ROOT).join("unified") };
    base.join(cgroups_path.trim_start_matches('/'))
}

/// A v1 cgroup file of the container, trimmed; panics with the path if unreadable.
#[track_caller]
pub fn read_v1(controller: &str, cgroups_path: &str, file: &str) -> String {
    let p = v1_dir(controller, cgroups_path).join(file);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("read {}: {e}", p.display())).trim().to_string()
}

/// The first of `files` that exists in the controller's directory (e.g. blkio.weight or
/// blkio.bfq.weight, depending on the I/O scheduler).
pub fn first_existing(controller: &str, cgroups_path: &str, files: &[&str]) -> Option<String> {
    let d = v1_dir(controller, cgroups_path);
    files.iter().find(|f| d.join(f).exists()).map(|f| f.to_string())
}

/// Whether a new cgroup in the v1 hierarchy of `controller` has `file` (some files, such
/// as blkio.bfq.weight, exist only below the root). Probes with a cgroup of its own.
pub fn v1_child_has(controller: &str, file: &str) -> bool {
    let probe = Path::new(ROOT).join(controller).join(format!("berth-it-probe-{}", std::process::id()));
    if std::fs::create_dir(&probe).is_err() && !probe.exists() {
        return false;
    }
    let has = probe.join(file).exists();
    let _ = std::fs::remove_dir(&probe);
    has
}

/// A pure cgroup v2 host inside a hybrid one, for the runtime's v2 code: a cgroup the
/// test makes under the unified mount, and a holder process in it with its own mount and
/// cgroup namespaces, in which the v1 hierarchies are unmounted and cgroup2 is mounted at
/// /sys/fs/cgroup (rooted at the test's cgroup, which has no controllers: the freezer,
/// the eBPF device filter, cgroup.* files and process membership work; limits of
/// controllers do not). `rt` runs the runtime there through nsenter. Dropping it deletes
/// the containers, kills the holder and removes the cgroup tree.
pub struct V2Sandbox {
    /// The sandbox's cgroup as the host sees it: the container cgroups are below it.
    pub cg: PathBuf,
    pub rt: crate::Runtime,
    holder: Option<std::process::Child>,
    ids: std::sync::Mutex<Vec<String>>,
}

impl V2Sandbox {
    /// None (with a message) when the host has no separate unified mount to borrow.
    pub fn new(t: &crate::Test) -> Option<V2Sandbox> {
        let unified = Path::new(ROOT).join("unified");
        if is_pure_v2() || !unified.join("cgroup.procs").exists() {
            eprintln!("skipped: no cgroup2 mount at /sys/fs/cgroup/unified to build a v2 sandbox from");
            return None;
        }
        for tool in ["/usr/bin/unshare", "/usr/bin/nsenter"] {
            if !Path::new(tool).exists() {
                eprintln!("skipped: {tool} is missing");
                return None;
            }
        }
        let cg = unified.join(format!("berth-it-v2-{}-{}", std::process::id(), t.dir.file_name().unwrap().to_string_lossy()));
        std::fs::create_dir(&cg).expect("create the sandbox cgroup");
        let ready = t.dir.join("v2-ready");
        let inner = format!(
            "for m in $(awk '{{for(i=7;i<=NF;i++) if($i==\"-\"){{if($(i+1)==\"cgroup\"||$(i+1)==\"cgroup2\") print $5; break}}}}' /proc/self/mountinfo | sort -r); do umount $m || exit 1; done; \
             mount -t cgroup2 cgroup2 /sys/fs/cgroup && touch {} && exec sleep 100000",
            ready.display()
        );
        let script = format!("echo $$ > {}/cgroup.procs && exec unshare -m -C --propagation private sh -c '{}'", cg.display(), inner.replace('\'', "'\\''"));
        let mut cmd = std::process::Command::new("/bin/sh");
        cmd.args(["-c", &script]).stdin(std::process::Stdio::null());
        let holder = crate::procs::spawn(&mut cmd).expect("start the sandbox holder");
        let pid = holder.id();
        let mut sb = V2Sandbox {
            cg,
            rt: crate::Runtime::new(PathBuf::new(), t.dir.join("state-v2"), t.dir.join("io-v2")),
            holder: Some(holder),
            ids: std::sync::Mutex::new(Vec::new()),
        };
        crate::wait_until(std::time::Duration::from_secs(10), "the v2 sandbox", || ready.exists());
        let wrapper = t.dir.join("runtime-in-v2");
        std::fs::write(&wrapper, format!("#!/bin/sh\nexec /usr/bin/nsenter -t {pid} -m -C -- {} \"$@\"\n", crate::paths::runtime().display())).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
        sb.rt.bin = wrapper;
        Some(sb)
    }

    /// A container id deleted (forced, in the sandbox) at the end.
    pub fn id(&self, t: &crate::Test, suffix: &str) -> String {
        let id = t.id(&format!("v2{suffix}"));
        self.ids.lock().unwrap().push(id.clone());
        id
    }
}

impl Drop for V2Sandbox {
    fn drop(&mut self) {
        for id in self.ids.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            let mut r = self.rt.spawn(&["delete", "--force", id], &crate::Opts::default());
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
            while r.try_wait().is_none() && std::time::Instant::now() < deadline {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            r.kill();
        }
        if let Some(mut h) = self.holder.take() {
            let _ = h.kill();
            let _ = h.wait();
            crate::procs::untrack(h.id());
        }
        // Whatever is left below the sandbox cgroup was started by this test.
        for _ in 0..100 {
            remove_tree(&self.cg);
            if !self.cg.exists() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        eprintln!("could not remove the v2 sandbox cgroup {}", self.cg.display());
    }
}

fn remove_tree(d: &Path) {
    if let Ok(rd) = std::fs::read_dir(d) {
        for e in rd.flatten().filter(|e| e.file_type().is_ok_and(|t| t.is_dir())) {
            remove_tree(&e.path());
        }
    }
    let _ = std::fs::write(d.join("cgroup.freeze"), "0");
    if let Ok(procs) = std::fs::read_to_string(d.join("cgroup.procs")) {
        for p in procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
            crate::procs::signal(p, libc::SIGKILL);
        }
    }
    let _ = std::fs::remove_dir(d);
}
