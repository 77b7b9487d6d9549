//! The store's `tmp/`: temp files and dirs, and reclaiming what dead processes left there.
//!
//! Every temp entry is `tmp/<prefix>.<random>` and is flock'ed (exclusively) by the
//! process that made it for as long as the entry exists. It is made as `~<name>`, locked,
//! then renamed, so under its name it is never unlocked while its maker lives. A process
//! that dies (SIGKILL, OOM, a crash) leaves its entries unlocked, and
//! [`Store::reclaim_temp`] takes exactly those: the next build (or prune) cleans what a
//! killed build left, and never what a running one holds. A build's work dir records
//! the runtime and its state root ([`RUNTIME_FILE`], [`STATE_DIR`]), so that the
//! containers a killed build left (their cgroups) are deleted before its dir is removed.
//!
//! A `~` entry is one whose maker was killed before the rename: makers hold `tmp.lock`
//! shared from the creation to the rename, so a reclaimer holding it exclusively knows
//! every `~` entry is such a one (and empty). Entries of another form (the
//! `prefix-pid-...` names of older versions, which did not lock theirs) are removed only
//! by prune, which holds `gc.lock` exclusively: no writer is running then.

use super::{ctx, Lease, Store};
use crate::layer::sys;
use std::collections::HashSet;
use std::fs::{self, File};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Held (shared) from the creation of a `~` entry to its rename, and exclusively by a
/// reclaimer that removes `~` entries: then every one is what a dead process left.
const MAKING_LOCK: &str = "tmp.lock";

/// In a build's work dir: the path of the OCI runtime its containers were made with.
pub const RUNTIME_FILE: &str = "runtime";
/// In a build's work dir: the runtime's `--root`.
pub const STATE_DIR: &str = "state";

/// A file in the store's tmp/ that is removed on drop unless committed.
pub struct TempFile {
    pub(super) path: PathBuf,
    pub(super) file: Option<File>,
    /// A second descriptor of the same open file: the flock stays while `file` is
    /// closed before the rename of a commit.
    _lock: File,
    _lease: Lease,
}

impl TempFile {
    pub fn path(&self) -> &Path {
        &self.path
    }
    pub fn file(&mut self) -> &mut File {
        self.file.as_mut().expect("temp file is open")
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        self.file.take();
        let _ = fs::remove_file(&self.path);
    }
}

/// A directory in the store's tmp/ (same filesystem as layers/), removed on drop unless
/// [`TempDir::keep`] was called.
pub struct TempDir {
    path: PathBuf,
    keep: bool,
    _lock: File,
    _lease: Lease,
}

impl TempDir {
    pub fn path(&self) -> &Path {
        &self.path
    }
    /// Leaves the directory in place (the caller renamed or will remove it).
    pub fn keep(mut self) -> PathBuf {
        self.keep = true;
        self.path.clone()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if !self.keep {
            let _ = fs::remove_dir_all(&self.path);
        }
    }
}

/// A name no other process will pick: the prefix and 64 random bits.
pub(crate) fn unique(prefix: &str) -> io::Result<String> {
    let mut b = [0u8; 8];
    // SAFETY: getrandom(2) into a local buffer of the given length.
    let n = unsafe { libc::getrandom(b.as_mut_ptr() as *mut libc::c_void, b.len(), 0) };
    if n != b.len() as isize {
        return Err(io::Error::last_os_error());
    }
    Ok(format!("{prefix}.{:016x}", u64::from_ne_bytes(b)))
}

/// Whether a tmp/ entry is of the locked kind (see the module doc).
fn is_locked_kind(name: &str) -> bool {
    name.split_once('.')
        .is_some_and(|(p, r)| !p.is_empty() && p.bytes().all(|c| c.is_ascii_lowercase()) && r.len() == 16 && r.bytes().all(|c| c.is_ascii_hexdigit()))
}

fn try_lock(f: &File) -> io::Result<bool> {
    // SAFETY: flock(2) on an fd we own.
    if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
        return Ok(true);
    }
    let e = io::Error::last_os_error();
    if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
        Ok(false)
    } else {
        Err(e)
    }
}

/// What [`Store::reclaim_temp`] took.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reclaimed {
    /// Entries of tmp/ removed.
    pub entries: usize,
    /// Containers of dead builds deleted (with their cgroups).
    pub containers: usize,
    /// Disk space freed.
    pub bytes: u64,
}

impl Store {
    /// A new temp file in tmp/ (removed on drop unless committed).
    pub fn temp_file(&self) -> io::Result<TempFile> {
        let lease = self.lease()?;
        let name = unique("blob")?;
        let tmp = self.root.join("tmp");
        let (creating, path) = (tmp.join(format!("~{name}")), tmp.join(&name));
        let _making = self.lock_file(MAKING_LOCK, false)?;
        let file = fs::OpenOptions::new().read(true).write(true).create_new(true).open(&creating).map_err(ctx(creating.display()))?;
        let lock = file.try_clone()?;
        sys::flock(lock.as_raw_fd(), true)?;
        if let Err(e) = fs::rename(&creating, &path) {
            let _ = fs::remove_file(&creating);
            return Err(ctx(format!("rename {}", creating.display()))(e));
        }
        Ok(TempFile { path, file: Some(file), _lock: lock, _lease: lease })
    }

    /// A new directory in tmp/ (removed on drop unless kept).
    pub fn temp_dir(&self, prefix: &str) -> io::Result<TempDir> {
        let lease = self.lease()?;
        let name = unique(prefix)?;
        let tmp = self.root.join("tmp");
        let (creating, path) = (tmp.join(format!("~{name}")), tmp.join(&name));
        let _making = self.lock_file(MAKING_LOCK, false)?;
        fs::create_dir(&creating).map_err(ctx(creating.display()))?;
        let made = (|| {
            fs::set_permissions(&creating, std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
            let lock = File::from(sys::open(&creating, libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW)?);
            sys::flock(lock.as_raw_fd(), true)?;
            fs::rename(&creating, &path)?;
            Ok::<File, io::Error>(lock)
        })();
        match made {
            Ok(lock) => Ok(TempDir { path, keep: false, _lock: lock, _lease: lease }),
            Err(e) => {
                let _ = fs::remove_dir(&creating);
                Err(ctx(creating.display())(e))
            }
        }
    }

    /// Removes what dead processes left in tmp/: every entry of the locked kind that no
    /// live process holds (after deleting the containers of a dead build's work dir),
    /// and with `all` (prune, holding gc.lock exclusively) every other entry no one holds.
    /// An entry with a mount under it, or whose containers cannot be deleted, stays.
    pub fn reclaim_temp(&self, all: bool) -> io::Result<Reclaimed> {
        let tmp = self.root.join("tmp");
        let mut r = Reclaimed::default();
        let mounted = mount_points_under(&tmp);
        let rd = match fs::read_dir(&tmp) {
            Ok(rd) => rd,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(r),
            Err(e) => return Err(ctx(tmp.display())(e)),
        };
        let mut half_made = Vec::new();
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with('~') {
                half_made.push(e.path());
                continue;
            }
            if !all && !is_locked_kind(&name) {
                continue;
            }
            let path = e.path();
            if mounted.iter().any(|m| m.starts_with(&path)) {
                continue;
            }
            let Ok(md) = fs::symlink_metadata(&path) else { continue };
            // Held while it is removed: a second reclaimer skips it.
            let lock = if md.is_dir() {
                sys::open(&path, libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW)
            } else {
                sys::open(&path, libc::O_RDONLY | libc::O_NOFOLLOW)
            };
            let Ok(lock) = lock.map(File::from) else { continue };
            if !try_lock(&lock).unwrap_or(false) {
                continue; // a live process holds it
            }
            // Measured first: deleting the containers removes their state dirs.
            let bytes = disk_usage(&path);
            if md.is_dir() {
                match delete_containers(&path) {
                    Ok(n) => r.containers += n,
                    Err(_) => continue,
                }
            }
            let removed = if md.is_dir() { fs::remove_dir_all(&path) } else { fs::remove_file(&path) };
            if removed.is_ok() {
                r.entries += 1;
                r.bytes += bytes;
            }
        }
        // Made by a process killed before it locked and renamed them (so still empty):
        // with no one making an entry now, every `~` entry is such a one.
        if !half_made.is_empty() {
            let _x = self.lock_file(MAKING_LOCK, true)?;
            for p in half_made {
                let bytes = disk_usage(&p);
                if fs::remove_dir(&p).or_else(|_| fs::remove_file(&p)).is_ok() {
                    r.entries += 1;
                    r.bytes += bytes;
                }
            }
        }
        Ok(r)
    }
}

/// Deletes the containers a (dead) build left under `dir/state`, with the runtime it
/// recorded (else `berth` beside this binary): their cgroups go with them. Returns how
/// many; an error if one could not be deleted (its state is kept to try again).
fn delete_containers(dir: &Path) -> io::Result<usize> {
    let state = dir.join(STATE_DIR);
    let Ok(rd) = fs::read_dir(&state) else { return Ok(0) };
    let runtime = fs::read_to_string(dir.join(RUNTIME_FILE))
        .ok()
        .map(|s| PathBuf::from(s.trim()))
        .filter(|p| p.is_file())
        .unwrap_or_else(|| crate::build::beside_exe("berth"));
    let mut n = 0;
    for e in rd.flatten() {
        if !e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            continue;
        }
        let id = e.file_name().to_string_lossy().into_owned();
        crate::cleanup::force_delete(&runtime, &state, &id);
        if e.path().exists() {
            return Err(io::Error::other(format!("{} --root {} delete --force {id} left the container", runtime.display(), state.display())));
        }
        n += 1;
    }
    Ok(n)
}

/// Mount points (in this mount namespace) at or under `dir`.
fn mount_points_under(dir: &Path) -> Vec<PathBuf> {
    let text = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    text.lines().filter_map(|l| l.split(' ').nth(4)).map(|m| PathBuf::from(berth_spec::mountinfo::unescape(m))).filter(|m| m.starts_with(dir)).collect()
}

/// Disk space of `path` and everything under it, as `du` counts it (allocated blocks;
/// a hardlinked file once; not crossing into other filesystems).
pub fn disk_usage(path: &Path) -> u64 {
    let Ok(md) = fs::symlink_metadata(path) else { return 0 };
    let mut seen = HashSet::new();
    let mut total = 0;
    let mut stack = vec![(path.to_path_buf(), md)];
    let dev = stack[0].1.dev();
    while let Some((p, md)) = stack.pop() {
        if md.dev() != dev || (md.nlink() > 1 && !md.is_dir() && !seen.insert(md.ino())) {
            continue;
        }
        total += md.blocks() * 512;
        if md.is_dir() {
            for e in fs::read_dir(&p).into_iter().flatten().flatten() {
                if let Ok(m) = e.metadata() {
                    stack.push((e.path(), m));
                }
            }
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_of_the_locked_kind() {
        assert!(is_locked_kind(&unique("build").unwrap()));
        assert!(is_locked_kind("blob.0123456789abcdef"));
        for other in ["~blob.0123456789abcdef", "build-1234-0-5f3a", "blob.0123", "Blob.0123456789abcdef", "x"] {
            assert!(!is_locked_kind(other), "{other}");
        }
    }
}
