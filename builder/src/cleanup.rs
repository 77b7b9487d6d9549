//! What a build has set up and must take down whatever happens: containers (deleted with
//! `<runtime> delete --force`), mounts (unmounted, last first) and temporary directories.
//!
//! The normal path takes each down through its owner's `Drop`; this registry is for the
//! abnormal ones: SIGINT/SIGTERM/SIGHUP/SIGQUIT (a thread waits for them with sigwait, runs
//! [`run_all`] and exits 130) and a failed build ([`run_all`] before exiting non-zero).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;

#[derive(Default)]
struct Registry {
    containers: Vec<(PathBuf, PathBuf, String)>,
    mounts: Vec<PathBuf>,
    dirs: Vec<PathBuf>,
}

/// The signal that interrupted the build (0: none).
static INTERRUPTED: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);

/// The signal that interrupted the build, if one did: the build's own error (a killed
/// RUN) is then not the story, and the exit status is 128+signal.
pub fn interrupted() -> Option<i32> {
    match INTERRUPTED.load(std::sync::atomic::Ordering::SeqCst) {
        0 => None,
        s => Some(s),
    }
}

/// Held while a RUN's container is being created (from the shim's start until the
/// container is registered): an interrupt's cleanup waits for a create in flight, so the
/// container it makes is registered and deleted, not created after the cleanup ran.
static CREATING: Mutex<()> = Mutex::new(());

/// Hold while creating a container and until it is registered with [`add_container`].
/// None once the build was interrupted: no container may be made after the cleanup.
pub fn begin_create() -> Option<std::sync::MutexGuard<'static, ()>> {
    let g = CREATING.lock().unwrap_or_else(|e| e.into_inner());
    interrupted().is_none().then_some(g)
}

static REG: Mutex<Registry> = Mutex::new(Registry { containers: Vec::new(), mounts: Vec::new(), dirs: Vec::new() });

fn reg() -> std::sync::MutexGuard<'static, Registry> {
    REG.lock().unwrap_or_else(|e| e.into_inner())
}

pub fn add_container(runtime: &Path, root: &Path, id: &str) {
    reg().containers.push((runtime.to_path_buf(), root.to_path_buf(), id.to_string()));
}

pub fn remove_container(id: &str) {
    reg().containers.retain(|c| c.2 != id);
}

pub fn add_mount(p: &Path) {
    reg().mounts.push(p.to_path_buf());
}

pub fn remove_mount(p: &Path) {
    let mut r = reg();
    if let Some(i) = r.mounts.iter().rposition(|m| m == p) {
        r.mounts.remove(i);
    }
}

pub fn add_dir(p: &Path) {
    reg().dirs.push(p.to_path_buf());
}

pub fn remove_dir(p: &Path) {
    reg().dirs.retain(|d| d != p);
}

/// `<runtime> --root R delete --force ID`, quietly.
pub fn force_delete(runtime: &Path, root: &Path, id: &str) {
    let _ =
        Command::new(runtime).arg("--root").arg(root).args(["delete", "--force", id]).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).status();
}

/// Takes down everything still registered: containers, then mounts (newest first), then
/// directories.
pub fn run_all() {
    // Held for the whole cleanup: a second caller (the main thread, while the signal
    // thread cleans up) waits until everything is down.
    static RUNNING: Mutex<()> = Mutex::new(());
    let _g = RUNNING.lock().unwrap_or_else(|e| e.into_inner());
    let _c = CREATING.lock().unwrap_or_else(|e| e.into_inner());
    let (containers, mounts, dirs) = {
        let mut r = reg();
        (std::mem::take(&mut r.containers), std::mem::take(&mut r.mounts), std::mem::take(&mut r.dirs))
    };
    for (rt, root, id) in &containers {
        force_delete(rt, root, id);
    }
    for m in mounts.iter().rev() {
        let _ = crate::overlay::umount(m);
    }
    for d in dirs.iter().rev() {
        let _ = std::fs::remove_dir_all(d);
    }
}

/// Blocks SIGINT, SIGTERM, SIGHUP and SIGQUIT in this thread (and so in every thread started
/// after) and starts a thread that waits for them, cleans up and exits 128+signal. Child
/// processes get the default mask back (std resets it on spawn).
pub fn install_signal_thread() {
    // SAFETY: sigset manipulation on a local set, then pthread_sigmask on this thread.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        // SIGQUIT too: as the init of its PID namespace (isolation.rs) the build would
        // ignore it, not die of it.
        for s in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT] {
            libc::sigaddset(&mut set, s);
        }
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        let set_copy = set;
        std::thread::spawn(move || {
            let mut sig: libc::c_int = 0;
            // SAFETY: sigwait on a set of blocked signals.
            libc::sigwait(&set_copy, &mut sig);
            INTERRUPTED.store(sig, std::sync::atomic::Ordering::SeqCst);
            eprintln!("\nberth-build: interrupted, cleaning up");
            run_all();
            std::process::exit(128 + sig);
        });
    }
}
