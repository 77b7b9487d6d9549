//! Overlay mounts of a stage's layers.
//!
//! The lower dirs are the store's unpacked layer directories. The mount data of
//! mount(2) is limited to one page, and store paths are long (`<store>/layers/<64 hex>/fs`),
//! so each lower dir is reached through a short symlink in a per-build directory of the
//! store's tmp/, itself reached through the build's open descriptor of it
//! (`/proc/<pid>/fd/<n>/7`): ~20 bytes a layer instead of ~90 whatever the store's
//! path; the kernel follows the links when it parses the options. The shims' attach
//! sockets live there too (a socket path must fit in 108 bytes).
//!
//! Options: `metacopy=off` and `redirect_dir=off` so that an upper dir is a plain,
//! self-contained layer (a chmod copies the whole file up, a renamed directory is copied,
//! not recorded as a redirect xattr pointing into a lower layer); `index=off`,
//! `xino=off`: nothing ties the upper dir to these particular lower dirs.
//!
//! Every mount is registered with [`crate::cleanup`] so that an interrupted build leaves
//! none behind.

use std::collections::HashMap;
use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::cleanup;

/// Short names for lower dirs.
#[derive(Debug)]
pub struct LinkDir {
    /// The directory (in the store's tmp/; removed with the build's work dir).
    dir: PathBuf,
    /// `/proc/<pid>/fd/<n>`: the directory through `fd`, a short path to it.
    short: PathBuf,
    /// Open for as long as the links are used.
    _fd: std::fs::File,
    names: HashMap<PathBuf, String>,
    empty: Option<PathBuf>,
}

impl LinkDir {
    /// Makes `dir` (which must not exist) for the links.
    pub fn new(dir: &Path) -> io::Result<LinkDir> {
        use std::os::unix::fs::MetadataExt;
        std::fs::create_dir(dir).map_err(|e| io::Error::new(e.kind(), format!("create {}: {e}", dir.display())))?;
        let fd = std::fs::File::open(dir)?;
        let short = PathBuf::from(format!("/proc/{}/fd/{}", std::process::id(), std::os::fd::AsRawFd::as_raw_fd(&fd)));
        // /proc of another pid namespace than ours would name another process: then the
        // long path it is (fewer layers fit, and the socket path may be too long).
        let same = |a: &Path| std::fs::metadata(a).ok().map(|m| (m.dev(), m.ino()));
        let short = if same(&short).is_some() && same(&short) == same(dir) { short } else { dir.to_path_buf() };
        Ok(LinkDir { dir: dir.to_path_buf(), short, _fd: fd, names: HashMap::new(), empty: None })
    }

    /// The directory, by its short path.
    pub fn path(&self) -> &Path {
        &self.short
    }

    /// The short path of a lower dir (a symlink to it, made on first use).
    pub fn link(&mut self, target: &Path) -> io::Result<PathBuf> {
        if let Some(n) = self.names.get(target) {
            return Ok(self.short.join(n));
        }
        let name = format!("{:x}", self.names.len());
        std::os::unix::fs::symlink(target, self.dir.join(&name))?;
        self.names.insert(target.to_path_buf(), name.clone());
        Ok(self.short.join(name))
    }

    /// An empty directory (the lower of a stage with no layers yet).
    pub fn empty_dir(&mut self) -> io::Result<PathBuf> {
        if let Some(e) = &self.empty {
            return Ok(e.clone());
        }
        std::fs::create_dir(self.dir.join("empty"))?;
        let e = self.short.join("empty");
        self.empty = Some(e.clone());
        Ok(e)
    }
}

/// A mounted overlay (or a plain directory when there was nothing to mount); unmounted
/// on drop.
#[derive(Debug)]
pub struct Mounted {
    pub path: PathBuf,
    mounted: bool,
}

impl Mounted {
    /// Unmounts now, reporting an error (drop unmounts quietly).
    pub fn unmount(mut self) -> io::Result<()> {
        self.do_unmount()
    }

    fn do_unmount(&mut self) -> io::Result<()> {
        if !self.mounted {
            return Ok(());
        }
        self.mounted = false;
        let r = umount(&self.path);
        cleanup::remove_mount(&self.path);
        r
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = self.do_unmount();
    }
}

/// Mounts the overlay of `lowers` (bottom first, as an image lists its layers) on
/// `target`: read-write with `upper`/`work` = Some, else read-only. A read-only mount of
/// no layers is the empty directory itself (nothing is mounted).
pub fn mount(links: &mut LinkDir, lowers: &[PathBuf], rw: Option<(&Path, &Path)>, target: &Path) -> io::Result<Mounted> {
    // A layer may appear twice in a stack (two steps that made the same change): overlayfs
    // refuses a lower dir given twice (ELOOP), and only the topmost occurrence matters
    // (it redoes everything the lower one did), so the lower ones are left out.
    let mut short = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for l in lowers.iter().rev() {
        if seen.insert(l.clone()) {
            short.push(links.link(l)?);
        }
    }
    if short.is_empty() {
        if rw.is_none() {
            return Ok(Mounted { path: links.empty_dir()?, mounted: false });
        }
        short.push(links.empty_dir()?);
    }
    if short.len() == 1 && rw.is_none() {
        // overlayfs wants two lower dirs without an upper one: one is a read-only bind.
        return bind(&short[0], target, true);
    }
    let mut data = b"lowerdir=".to_vec();
    for (i, s) in short.iter().enumerate() {
        if i > 0 {
            data.push(b':');
        }
        data.extend_from_slice(s.as_os_str().as_bytes());
    }
    if let Some((upper, work)) = rw {
        data.extend_from_slice(b",upperdir=");
        data.extend_from_slice(upper.as_os_str().as_bytes());
        data.extend_from_slice(b",workdir=");
        data.extend_from_slice(work.as_os_str().as_bytes());
    }
    data.extend_from_slice(b",metacopy=off,redirect_dir=off,index=off,xino=off");
    if data.len() >= 4096 {
        return Err(io::Error::other(format!("too many layers for one overlay mount ({})", lowers.len())));
    }
    let flags = if rw.is_none() { libc::MS_RDONLY } else { 0 };
    mount_raw("overlay", target, "overlay", flags, Some(&data)).map_err(|e| io::Error::new(e.kind(), format!("mount overlay on {}: {e}", target.display())))?;
    cleanup::add_mount(target);
    Ok(Mounted { path: target.to_path_buf(), mounted: true })
}

/// A bind mount of `src` on `target` (read-only if asked), unmounted on drop.
pub fn bind(src: &Path, target: &Path, readonly: bool) -> io::Result<Mounted> {
    mount_raw_path(src, target, libc::MS_BIND | libc::MS_REC)?;
    cleanup::add_mount(target);
    let m = Mounted { path: target.to_path_buf(), mounted: true };
    if readonly {
        mount_raw("none", target, "", libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY, None)?;
    }
    Ok(m)
}

fn cpath(p: &Path) -> io::Result<CString> {
    CString::new(p.as_os_str().as_bytes()).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in path"))
}

fn mount_raw_path(src: &Path, target: &Path, flags: libc::c_ulong) -> io::Result<()> {
    let s = cpath(src)?;
    let t = cpath(target)?;
    // SAFETY: mount(2) with valid C strings and no data.
    let r = unsafe { libc::mount(s.as_ptr(), t.as_ptr(), std::ptr::null(), flags, std::ptr::null()) };
    if r < 0 {
        let e = io::Error::last_os_error();
        return Err(io::Error::new(e.kind(), format!("bind mount {} on {}: {e}", src.display(), target.display())));
    }
    Ok(())
}

fn mount_raw(source: &str, target: &Path, fstype: &str, flags: libc::c_ulong, data: Option<&[u8]>) -> io::Result<()> {
    let src = CString::new(source).unwrap_or_default();
    let t = cpath(target)?;
    let fs = CString::new(fstype).unwrap_or_default();
    let d = match data {
        Some(d) => Some(CString::new(d).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in mount data"))?),
        None => None,
    };
    let fs_ptr = if fstype.is_empty() { std::ptr::null() } else { fs.as_ptr() };
    let d_ptr = d.as_ref().map_or(std::ptr::null(), |d| d.as_ptr() as *const libc::c_void);
    // SAFETY: mount(2) with valid C strings (or null) and mount data.
    let r = unsafe { libc::mount(src.as_ptr(), t.as_ptr(), fs_ptr, flags, d_ptr) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Unmounts `target`; a busy mount is retried briefly, then detached.
pub fn umount(target: &Path) -> io::Result<()> {
    let t = cpath(target)?;
    for _ in 0..20 {
        // SAFETY: umount2(2) with a valid C string.
        if unsafe { libc::umount2(t.as_ptr(), 0) } == 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EBUSY) => std::thread::sleep(std::time::Duration::from_millis(25)),
            Some(libc::EINVAL) | Some(libc::ENOENT) => return Ok(()), // not mounted
            _ => return Err(e),
        }
    }
    // SAFETY: as above, lazily.
    if unsafe { libc::umount2(t.as_ptr(), libc::MNT_DETACH) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Puts this process in its own mount namespace whose mounts do not propagate back to the
/// host (`MS_SLAVE`): every overlay the build makes disappears with the last process
/// using the namespace, even if the builder is killed. Must be called while the process
/// is single-threaded (unshare(CLONE_NEWNS) implies CLONE_FS).
pub fn private_mount_namespace() -> io::Result<()> {
    // SAFETY: unshare(2) with a flag; no memory is involved.
    if unsafe { libc::unshare(libc::CLONE_NEWNS) } < 0 {
        return Err(io::Error::last_os_error());
    }
    mount_raw("none", Path::new("/"), "", libc::MS_REC | libc::MS_SLAVE, None)
}
