//! A container as the runtime keeps it between commands: a directory `<root>/<id>`
//! holding `state.json` (what create learned), `config.json` (the config it ran, so
//! later edits of the bundle do not change it) and `exec.fifo` while it is created but
//! not started. The status is never stored: it is derived from the init process.
//!
//! Create writes `state.json` before it makes anything outside the directory, marked
//! `creating`: first the cgroup directories (or systemd unit) it is about to make, then
//! the init's pid as soon as it exists, and at the end the finished record. An engine may
//! SIGKILL create at any moment; whatever it had made is then named in the record, and
//! `delete --force` removes it.

use crate::error::{Context, Error, Result};
use crate::linux::cgroups::CgroupPaths;
use crate::linux::proc;
use berth_spec::Spec;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

pub const DEFAULT_ROOT: &str = "/run/berth";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Saved {
    pub id: String,
    pub pid: i32,
    /// The init's start time in clock ticks since boot, to tell it from a reused pid.
    pub start_time: u64,
    pub bundle: String,
    pub rootfs: String,
    pub created: String,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    #[serde(default)]
    pub cgroup: CgroupPaths,
    /// Whether the init has its own pid namespace (`kill --all` and delete rely on it).
    #[serde(default)]
    pub own_pid_ns: bool,
    /// Create has not finished: `cgroup` is what it is about to make (or made), `pid`
    /// the init once it exists (0 before).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub creating: bool,
    /// Files a supervisor made for this container (berth-shim's sockets), named by
    /// `BERTH_OWNED_FILES` at create; delete removes those left stale.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub owned_files: Vec<String>,
    /// Without a mount namespace: the id of the rootfs bind create made in the caller's
    /// mount namespace, holding the container's mounts; delete detaches it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_root_mount: Option<u64>,
}

impl Saved {
    /// The record of a container whose directory exists without a `state.json`: create
    /// made the directory and had written nothing else yet.
    fn bare(id: &str) -> Saved {
        Saved {
            id: id.to_string(),
            pid: 0,
            start_time: 0,
            bundle: String::new(),
            rootfs: String::new(),
            created: String::new(),
            annotations: BTreeMap::new(),
            cgroup: CgroupPaths::default(),
            own_pid_ns: false,
            creating: true,
            owned_files: Vec::new(),
            host_root_mount: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Creating,
    Created,
    Running,
    Paused,
    Stopped,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        }
    }
}

/// The state as printed, fields in runc's order.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StateOut<'a> {
    pub oci_version: &'a str,
    pub id: &'a str,
    pub pid: i32,
    pub status: &'a str,
    pub bundle: &'a str,
    pub rootfs: &'a str,
    pub created: &'a str,
    pub owner: &'a str,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: &'a BTreeMap<String, String>,
}

pub struct Container {
    pub id: String,
    pub dir: PathBuf,
    pub saved: Saved,
    /// Another command held the container's lock when this one looked without taking
    /// it ([`Container::peek`]): for a record still `creating`, create is running.
    busy: bool,
    /// The state directory, flock'ed while this command works on the container.
    _lock: Option<OwnedFd>,
}

/// Refuses ids that could name a path outside the state root.
pub fn validate_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id != "."
        && id != ".."
        && id.len() <= 1024
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'+' | b'-' | b'.'));
    if !ok {
        return Err(Error::new(format!("invalid container id format: {id:?}")));
    }
    Ok(())
}

pub fn state_dir(root: &Path, id: &str) -> PathBuf {
    root.join(id)
}

impl Container {
    pub fn fifo_path(&self) -> PathBuf {
        self.dir.join("exec.fifo")
    }

    /// Loads a container and takes its lock (waiting for a command that holds it);
    /// `container does not exist` if it is not there. A container whose create was
    /// interrupted loads too, its record marked `creating`.
    pub fn load(root: &Path, id: &str) -> Result<Container> {
        validate_id(id)?;
        let dir = state_dir(root, id);
        let lock = match lock_dir(&dir, libc::LOCK_EX) {
            Ok(l) => l,
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Err(Error::new(format!("container {id} does not exist"))),
            Err(e) if e.raw_os_error() == Some(libc::ETIMEDOUT) => {
                let holder = lock_holder(&dir).map(|p| format!(" (pid {p})")).unwrap_or_default();
                return Err(Error::new(format!(
                    "container {id} is locked: another command{holder} has held it for {} s; try again, or end that command",
                    lock_timeout().as_secs()
                )));
            }
            Err(e) => return Err(Error::from(e)).with_ctx(|| format!("lock {}", dir.display())),
        };
        let saved = read_saved(&dir, id)?;
        Ok(Container { id: id.to_string(), dir, saved, busy: false, _lock: Some(lock) })
    }

    /// Reads a container without waiting for a command that works on it (`state`,
    /// `list`): a create in progress is seen as `creating`, never as `created` before it
    /// has finished.
    pub fn peek(root: &Path, id: &str) -> Result<Container> {
        validate_id(id)?;
        let dir = state_dir(root, id);
        // A shared lock is refused only while a command holds the exclusive one.
        let busy = match lock_dir(&dir, libc::LOCK_SH | libc::LOCK_NB) {
            Ok(_) => false,
            Err(e) if e.raw_os_error() == Some(libc::EWOULDBLOCK) => true,
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Err(Error::new(format!("container {id} does not exist"))),
            Err(e) => return Err(Error::from(e)).with_ctx(|| format!("lock {}", dir.display())),
        };
        let saved = read_saved(&dir, id)?;
        Ok(Container { id: id.to_string(), dir, saved, busy, _lock: None })
    }

    /// Makes the state directory of a new container, locked; fails if the id is taken.
    pub fn create_dir(root: &Path, id: &str) -> Result<(PathBuf, OwnedFd)> {
        validate_id(id)?;
        std::fs::create_dir_all(root).with_ctx(|| format!("mkdir {}", root.display()))?;
        let dir = state_dir(root, id);
        match std::fs::create_dir(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Err(Error::new(format!("container with id exists: {id}"))),
            Err(e) => return Err(e).with_ctx(|| format!("mkdir {}", dir.display())),
        }
        let lock = lock_dir(&dir, libc::LOCK_EX).with_ctx(|| format!("lock {}", dir.display()))?;
        Ok((dir, lock))
    }

    pub fn from_parts(id: &str, dir: PathBuf, saved: Saved, lock: OwnedFd) -> Container {
        Container { id: id.to_string(), dir, saved, busy: false, _lock: Some(lock) }
    }

    pub fn save(&self) -> Result<()> {
        let tmp = self.dir.join("state.json.tmp");
        std::fs::write(&tmp, serde_json::to_vec(&self.saved).expect("state serializes")).ctx("write state")?;
        std::fs::rename(&tmp, self.dir.join("state.json")).ctx("write state")?;
        Ok(())
    }

    /// The config the container was created with.
    pub fn config(&self) -> Result<Spec> {
        let f = self.dir.join("config.json");
        let raw = std::fs::read(&f).with_ctx(|| format!("read {}", f.display()))?;
        berth_spec::bundle::parse_config(&raw).map_err(|e| Error::new(format!("{}: {e}", f.display())))
    }

    /// Whether the init process we started is still alive (a zombie counts as exited).
    pub fn init_alive(&self) -> bool {
        proc::alive_with_start_time(self.saved.pid, self.saved.start_time)
    }

    pub fn status(&self) -> Status {
        if self.saved.creating {
            // Until create finishes; after it was killed, until its init is gone.
            return if self.busy || (self.saved.pid > 0 && self.init_alive()) { Status::Creating } else { Status::Stopped };
        }
        if self.saved.pid <= 0 || !self.init_alive() {
            return Status::Stopped;
        }
        // Paused first, as runc: a created container can be paused too.
        if self.cgroup().is_frozen() {
            return Status::Paused;
        }
        if self.fifo_path().exists() {
            return Status::Created;
        }
        Status::Running
    }

    /// The OCI state of the container, with runc's extra fields in runc's order.
    pub fn state_json(&self) -> serde_json::Value {
        serde_json::to_value(self.state_out()).expect("state serializes")
    }

    pub fn state_out(&self) -> StateOut<'_> {
        let status = self.status();
        let pid = if status == Status::Stopped { 0 } else { self.saved.pid };
        StateOut {
            oci_version: berth_spec::OCI_VERSION,
            id: &self.id,
            pid,
            status: status.as_str(),
            bundle: &self.saved.bundle,
            rootfs: &self.saved.rootfs,
            created: &self.saved.created,
            owner: "",
            annotations: &self.saved.annotations,
        }
    }

    pub fn state_text(&self) -> String {
        serde_json::to_string_pretty(&self.state_out()).expect("json")
    }
}

/// The saved record in `dir`; a directory without one is a create that had not written
/// it yet.
fn read_saved(dir: &Path, id: &str) -> Result<Saved> {
    let f = dir.join("state.json");
    match std::fs::read(&f) {
        Ok(raw) => serde_json::from_slice(&raw).map_err(|e| Error::new(format!("{}: {e}", f.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Saved::bare(id)),
        Err(e) => Err(e).ctx("read state.json"),
    }
}

/// Opens the state directory and flocks it (`how`: LOCK_EX or LOCK_SH, maybe with
/// LOCK_NB): concurrent commands on one container wait for each other.
fn lock_dir(dir: &Path, how: i32) -> std::io::Result<OwnedFd> {
    use std::os::unix::fs::OpenOptionsExt;
    let f = std::fs::OpenOptions::new().read(true).custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC).open(dir)?;
    let fd: OwnedFd = f.into();
    flock(fd.as_raw_fd(), how)?;
    // Removed while we waited for the lock (a delete held it): the container is gone.
    if nix::sys::stat::fstat(&fd).map_err(std::io::Error::from)?.st_nlink == 0 {
        return Err(std::io::Error::from_raw_os_error(libc::ENOENT));
    }
    Ok(fd)
}

/// How long a command waits for another one to release a container's lock. Those that
/// hold it only while they work (create, delete, kill, ...) take seconds; a holder that
/// never lets go (a stuck hook, a stopped process) must not hang the engine calling us.
/// `BERTH_LOCK_TIMEOUT` (seconds) overrides it.
fn lock_timeout() -> std::time::Duration {
    let secs = std::env::var("BERTH_LOCK_TIMEOUT").ok().and_then(|v| v.parse().ok()).unwrap_or(60);
    std::time::Duration::from_secs(secs)
}

/// flock(2): a blocking request waits at most [`lock_timeout`] (then ETIMEDOUT); the lock
/// goes with the fd.
fn flock(fd: i32, how: i32) -> std::io::Result<()> {
    // Uncontended, the lock is taken at once, with no timer.
    if try_flock(fd, how)? {
        return Ok(());
    }
    if how & libc::LOCK_NB != 0 {
        return Err(std::io::Error::from_raw_os_error(libc::EWOULDBLOCK));
    }
    let deadline = std::time::Instant::now() + lock_timeout();
    let _alarm = Alarm::arm();
    loop {
        // SAFETY: flock on an fd we own; no memory is passed. The alarm's signal makes a
        // blocked flock return EINTR once a second, to look at the clock.
        if unsafe { libc::flock(fd, how) } == 0 {
            return Ok(());
        }
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINTR) {
            return Err(e);
        }
        if std::time::Instant::now() >= deadline {
            return Err(std::io::Error::from_raw_os_error(libc::ETIMEDOUT));
        }
    }
}

/// One non-blocking attempt: whether the lock was taken.
fn try_flock(fd: i32, how: i32) -> std::io::Result<bool> {
    loop {
        // SAFETY: flock on an fd we own; no memory is passed.
        if unsafe { libc::flock(fd, how | libc::LOCK_NB) } == 0 {
            return Ok(true);
        }
        let e = std::io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(libc::EWOULDBLOCK) => return Ok(false),
            _ => return Err(e),
        }
    }
}

/// A SIGALRM every second while a command waits for a lock (a handler that does nothing,
/// installed without SA_RESTART, so that the waiting flock returns EINTR).
struct Alarm;

extern "C" fn on_alarm(_: libc::c_int) {}

impl Alarm {
    fn arm() -> Alarm {
        // SAFETY: sigaction with a handler that touches nothing; setitimer with a local
        // struct. Both only concern this short-lived command.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_alarm as extern "C" fn(libc::c_int) as usize;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(libc::SIGALRM, &sa, std::ptr::null_mut());
            let second = libc::timeval { tv_sec: 1, tv_usec: 0 };
            let t = libc::itimerval { it_interval: second, it_value: second };
            libc::setitimer(libc::ITIMER_REAL, &t, std::ptr::null_mut());
        }
        Alarm
    }
}

impl Drop for Alarm {
    fn drop(&mut self) {
        // SAFETY: as in arm: the timer stopped, then the default disposition back.
        unsafe {
            let zero = libc::timeval { tv_sec: 0, tv_usec: 0 };
            let t = libc::itimerval { it_interval: zero, it_value: zero };
            libc::setitimer(libc::ITIMER_REAL, &t, std::ptr::null_mut());
            libc::signal(libc::SIGALRM, libc::SIG_DFL);
        }
    }
}

/// The pid holding the flock on `dir`, from /proc/locks (for the error message).
fn lock_holder(dir: &Path) -> Option<i32> {
    use std::os::unix::fs::MetadataExt;
    let ino = std::fs::metadata(dir).ok()?.ino();
    let locks = std::fs::read_to_string("/proc/locks").ok()?;
    locks.lines().find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        // "1: FLOCK  ADVISORY  WRITE 1234 00:1f:5678 0 EOF"
        let (pid, dev_ino) = (f.get(4)?, f.get(5)?);
        (f.get(1) == Some(&"FLOCK") && dev_ino.rsplit(':').next()?.parse::<u64>().ok()? == ino).then(|| pid.parse().ok()).flatten()
    })
}

/// Ids of all containers under the root, sorted.
pub fn list_ids(root: &Path) -> Result<Vec<String>> {
    let mut ids = Vec::new();
    let rd = match std::fs::read_dir(root) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(ids),
        Err(e) => return Err(e).with_ctx(|| format!("open {}", root.display())),
    };
    for e in rd.flatten() {
        if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            if let Some(n) = e.file_name().to_str() {
                if validate_id(n).is_ok() {
                    ids.push(n.to_string());
                }
            }
        }
    }
    ids.sort();
    Ok(ids)
}

impl Container {
    /// Lets other commands work on the container while this one waits.
    pub fn unlock(&mut self) {
        self._lock = None;
    }

    /// The manager of the container's cgroup, for the driver create used.
    pub fn cgroup(&self) -> Box<dyn crate::linux::cgroups::Manager> {
        crate::linux::cgroups::load(&self.saved.cgroup)
    }

    pub fn signal_init(&self, sig: i32) -> Result<()> {
        if !self.init_alive() {
            return Err(Error::new("container not running"));
        }
        signal(self.saved.pid, sig).ctx("kill container init")
    }

    /// Every process in the container's cgroup (or just the init, without a cgroup).
    pub fn signal_all(&self, sig: i32) -> Result<()> {
        // Frozen while signalled, then thawed (also when it was paused), as runc does.
        if crate::linux::cgroups::signal_all(self.cgroup().as_ref(), sig) == 0 {
            return self.signal_init(sig);
        }
        Ok(())
    }

    /// Kills the init after a failed create and removes its cgroup; the caller removes
    /// the state directory.
    pub fn kill_and_cleanup(&self) {
        self.kill_everything();
        let _ = self.cgroup().destroy();
        let _ = self.unbind_root();
    }

    /// Detaches the container's mounts from the caller's mount namespace (a container
    /// without its own: see rootfs::bind_root_in_host).
    fn unbind_root(&self) -> Result<()> {
        match self.saved.host_root_mount {
            Some(id) => crate::linux::rootfs::unbind_root_in_host(Path::new(&self.saved.rootfs), id),
            None => Ok(()),
        }
    }

    fn kill_everything(&self) {
        if self.init_alive() {
            let _ = signal(self.saved.pid, libc::SIGKILL);
            // A paused container's processes die only once thawed.
            crate::linux::cgroups::kill_frozen(self.cgroup().as_ref());
            proc::wait_for_exit(self.saved.pid, self.saved.start_time, std::time::Duration::from_secs(10));
        }
        // Without its own pid namespace, the init's death does not end the others.
        for p in self.cgroup().pids() {
            let _ = signal(p, libc::SIGKILL);
        }
    }

    /// Deletes the container: kills what is left, removes its cgroup, runs the poststop
    /// hooks and removes its state. For a create that was interrupted, what its record
    /// names: the init, the cgroup directories or unit, the supervisor's files.
    pub fn destroy(self) -> Result<()> {
        crate::logging::debug(&format!("deleting container {}", self.id));
        self.kill_everything();
        self.cgroup().destroy()?;
        self.unbind_root()?;
        remove_stale_files(&self.saved.owned_files);
        // No hook runs for a create that never made an init: none of its hooks ran either.
        let had_init = !self.saved.creating || self.saved.pid > 0;
        if let Some(spec) = self.config().ok().filter(|_| had_init) {
            if let Some(h) = &spec.hooks {
                let mut st = self.state_json();
                st["status"] = "stopped".into();
                crate::hooks::run_all_warn("poststop", &h.poststop, &st);
            }
        }
        std::fs::remove_dir_all(&self.dir).with_ctx(|| format!("remove {}", self.dir.display()))
    }
}

/// Removes the files a supervisor named at create that are left over: a socket no one
/// listens on any more (its berth-shim was killed), or a regular file. A socket still
/// served is left to the process serving it, which removes it when it exits.
pub fn remove_stale_files(files: &[String]) {
    use std::os::unix::fs::FileTypeExt;
    for f in files {
        let Ok(md) = std::fs::symlink_metadata(f) else { continue };
        let stale = if md.file_type().is_socket() {
            match std::os::unix::net::UnixStream::connect(f) {
                Ok(_) => false,
                Err(e) => e.raw_os_error() == Some(libc::ECONNREFUSED),
            }
        } else {
            md.file_type().is_file()
        };
        if stale {
            let _ = std::fs::remove_file(f);
        }
    }
}

fn signal(pid: i32, sig: i32) -> std::io::Result<()> {
    // SAFETY: kill(2) with integers.
    if unsafe { libc::kill(pid, sig) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creating(pid: i32, start_time: u64, busy: bool) -> Container {
        let saved = Saved { pid, start_time, ..Saved::bare("c1") };
        Container { id: "c1".into(), dir: PathBuf::from("/nonexistent/c1"), saved, busy, _lock: None }
    }

    #[test]
    fn a_record_still_creating_reads_creating_only_while_create_runs_or_its_init_lives() {
        let me = std::process::id() as i32;
        let started = proc::start_time(me).unwrap();
        // create holds the lock: creating, with or without an init yet.
        assert_eq!(creating(0, 0, true).status(), Status::Creating);
        // create was killed: creating while its init lives, stopped once it is gone.
        assert_eq!(creating(me, started, false).status(), Status::Creating);
        assert_eq!(creating(me, started + 1, false).status(), Status::Stopped);
        assert_eq!(creating(0, 0, false).status(), Status::Stopped);
        let st = creating(me, started, false).state_json();
        assert_eq!(st["status"], "creating");
        assert_eq!(st["pid"], me);
    }

    #[test]
    fn the_creating_mark_and_owned_files_stay_out_of_a_finished_record() {
        let mut s = Saved::bare("c1");
        s.creating = false;
        let text = serde_json::to_string(&s).unwrap();
        assert!(!text.contains("creating") && !text.contains("owned_files"), "{text}");
        let back: Saved = serde_json::from_str(&text).unwrap();
        assert!(!back.creating);
        s.creating = true;
        s.owned_files = vec!["/run/x/attach".into()];
        let back: Saved = serde_json::from_str(&serde_json::to_string(&s).unwrap()).unwrap();
        assert!(back.creating && back.owned_files == ["/run/x/attach"]);
    }

    #[test]
    fn stale_files_go_and_served_sockets_stay() {
        let d = std::env::temp_dir().join(format!("berth-stale-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        let served = d.join("served.sock");
        let _listener = std::os::unix::net::UnixListener::bind(&served).unwrap();
        let stale = d.join("stale.sock");
        drop(std::os::unix::net::UnixListener::bind(&stale).unwrap());
        let file = d.join("pid");
        std::fs::write(&file, "1").unwrap();
        let sub = d.join("dir");
        std::fs::create_dir(&sub).unwrap();
        let names: Vec<String> = [&served, &stale, &file, &sub, &d.join("missing")].iter().map(|p| p.to_string_lossy().into_owned()).collect();
        remove_stale_files(&names);
        assert!(served.exists(), "a socket someone listens on was removed");
        assert!(!stale.exists() && !file.exists());
        assert!(sub.is_dir(), "a directory was removed");
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn ids_with_path_tricks_are_refused() {
        for bad in ["", ".", "..", "a/b", "../x", "a b", "x\0"] {
            assert!(validate_id(bad).is_err(), "{bad:?}");
        }
        for good in ["abc", "a.b-c_d+e", "123"] {
            assert!(validate_id(good).is_ok(), "{good:?}");
        }
    }
}
