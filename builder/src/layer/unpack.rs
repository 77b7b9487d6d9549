//! Layer tar -> directory, confined to the destination.
//!
//! Two modes:
//! - [`UnpackMode::Overlay`]: the directory becomes an overlayfs lowerdir: `.wh.NAME` ->
//!   a 0:0 char device NAME, `.wh..wh..opq` -> xattr `trusted.overlay.opaque=y` on its dir.
//! - [`UnpackMode::Flatten`]: layers applied one over another into one rootfs (`local`
//!   and `bundle` exports): `.wh.NAME` removes NAME, `.wh..wh..opq` removes what the
//!   lower layers put in its dir (what this layer put there stays).
//!
//! Hostile entries never reach outside `dest`:
//! - leading `/` is dropped (contained); a `..` component is refused;
//! - every parent directory is opened component by component from a dir fd with
//!   `O_NOFOLLOW|O_DIRECTORY`, so an entry through a symlink (or a non-directory) is
//!   refused rather than followed; leaf operations are *at() calls that do not follow a
//!   symlink in the last component (files are created with `O_EXCL|O_NOFOLLOW`);
//! - hardlink targets are resolved the same way, so they can only name something inside;
//! - `trusted.overlay.*` / `user.overlay.*` xattrs from the tar are ignored (only the
//!   OCI opaque marker makes a dir opaque).
//!
//! Device nodes, ownership, modes (incl. setuid), xattrs and mtimes are restored (we run
//! as root). The diff_id (sha256 of the uncompressed tar) is computed while reading.

use super::sys::{self, XattrTarget};
use super::tar::{clean_path, Header, Kind, TarReader};
use crate::store::hash::HashReader;
use berth_spec::image::Digest;
use std::collections::HashSet;
use std::ffi::CString;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnpackMode {
    Overlay,
    Flatten,
}

#[derive(Debug, Clone)]
pub struct UnpackOptions {
    pub mode: UnpackMode,
    /// Restore uid/gid (default true; needs root).
    pub same_owner: bool,
    /// Restore xattrs (default true).
    pub xattrs: bool,
}

impl UnpackOptions {
    pub fn overlay() -> UnpackOptions {
        UnpackOptions { mode: UnpackMode::Overlay, same_owner: true, xattrs: true }
    }
    pub fn flatten() -> UnpackOptions {
        UnpackOptions { mode: UnpackMode::Flatten, same_owner: true, xattrs: true }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnpackStats {
    /// sha256 of the uncompressed tar stream.
    pub diff_id: Digest,
    pub tar_size: u64,
    pub entries: u64,
    pub whiteouts: u64,
    /// Xattrs the destination refused (unsupported name or filesystem).
    pub xattr_errors: u64,
}

fn hostile(path: &[u8], why: &str) -> io::Error {
    io::Error::new(io::ErrorKind::PermissionDenied, format!("layer entry {:?}: {why}", String::from_utf8_lossy(path)))
}

fn split_parent(p: &[u8]) -> (&[u8], &[u8]) {
    match p.iter().rposition(|b| *b == b'/') {
        Some(i) => (&p[..i], &p[i + 1..]),
        None => (&[], p),
    }
}

/// The destination root and a one-entry cache of the last parent directory opened.
struct Dest {
    root: OwnedFd,
    key: Vec<u8>,
    fd: Option<OwnedFd>,
}

impl Dest {
    fn invalidate(&mut self) {
        self.fd = None;
        self.key.clear();
    }

    /// Walks `rel` (a clean relative path) from `start`, creating missing directories if
    /// `create`; refuses symlinks and non-directories on the way.
    fn walk(&self, start: Option<OwnedFd>, rel: &[u8], create: bool, whole: &[u8]) -> io::Result<Option<OwnedFd>> {
        let mut cur = start;
        for comp in rel.split(|b| *b == b'/') {
            let c = sys::cstr(comp)?;
            let base = cur.as_ref().map(|f| f.as_raw_fd()).unwrap_or(self.root.as_raw_fd());
            let next = match sys::open_dir_at(base, &c) {
                Ok(fd) => fd,
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                    if !create {
                        return Ok(None);
                    }
                    match sys::mkdirat(base, &c, 0o755) {
                        Ok(()) => {}
                        Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {}
                        Err(e) => return Err(e),
                    }
                    sys::open_dir_at(base, &c).map_err(|e| self.refuse(e, whole))?
                }
                Err(e) => return Err(self.refuse(e, whole)),
            };
            cur = Some(next);
        }
        Ok(cur)
    }

    fn refuse(&self, e: io::Error, whole: &[u8]) -> io::Error {
        match e.raw_os_error() {
            Some(libc::ELOOP) | Some(libc::ENOTDIR) => hostile(whole, "goes through a symlink or a non-directory"),
            _ => e,
        }
    }

    /// An fd of the directory `parent` (clean, relative; "" is the root), valid until the
    /// next call. None if it does not exist and `create` is false.
    fn dir(&mut self, parent: &[u8], create: bool, whole: &[u8]) -> io::Result<Option<RawFd>> {
        if parent.is_empty() {
            return Ok(Some(self.root.as_raw_fd()));
        }
        if self.fd.is_some() && self.key == parent {
            return Ok(self.fd.as_ref().map(|f| f.as_raw_fd()));
        }
        let (start, rest) = if self.fd.is_some() && parent.len() > self.key.len() && parent.starts_with(&self.key) && parent[self.key.len()] == b'/' {
            (self.fd.take(), &parent[self.key.len() + 1..])
        } else {
            (None, parent)
        };
        self.invalidate();
        let fd = self.walk(start, rest, create, whole)?;
        let Some(fd) = fd else { return Ok(None) };
        self.key.extend_from_slice(parent);
        self.fd = Some(fd);
        Ok(self.fd.as_ref().map(|f| f.as_raw_fd()))
    }

    /// An owned fd of a directory, without touching the cache.
    fn dir_owned(&self, parent: &[u8], whole: &[u8]) -> io::Result<Option<OwnedFd>> {
        if parent.is_empty() {
            // SAFETY: F_DUPFD_CLOEXEC duplicates an fd we own; the result is owned.
            let fd = unsafe { libc::fcntl(self.root.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 0) };
            if fd < 0 {
                return Err(io::Error::last_os_error());
            }
            // SAFETY: a fresh fd.
            return Ok(Some(unsafe { OwnedFd::from_raw_fd(fd) }));
        }
        self.walk(None, parent, false, whole)
    }
}

/// Removes `name` in `dir` whatever it is (a directory recursively), not following
/// symlinks. Missing is fine.
fn remove_at(dir: RawFd, name: &[u8]) -> io::Result<()> {
    let c = sys::cstr(name)?;
    match sys::fstatat(dir, &c) {
        Ok(st) if st.st_mode & libc::S_IFMT == libc::S_IFDIR => {
            // std's remove_dir_all never follows symlinks inside; the path reaches the
            // directory through our fd.
            let p = sys::proc_path(dir, name)?;
            std::fs::remove_dir_all(std::ffi::OsStr::from_bytes(p.as_bytes()))
        }
        Ok(_) => sys::unlinkat(dir, &c, false),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(()),
        Err(e) => Err(e),
    }
}

struct Unpacker {
    dest: Dest,
    opts: UnpackOptions,
    /// Directory mtimes, set at the end (creating children changes them).
    dir_times: Vec<(Vec<u8>, i64)>,
    /// Flatten mode: paths this layer created (and their ancestors).
    created: HashSet<Vec<u8>>,
    stats_entries: u64,
    stats_whiteouts: u64,
    xattr_errors: u64,
    buf: Vec<u8>,
}

/// Unpacks a layer (gzip, zstd or plain tar, by magic) from `r` into `dest` (an existing
/// directory). See the module doc for the modes and the containment rules.
pub fn unpack<R: Read + Send>(r: R, dest: &Path, opts: &UnpackOptions) -> io::Result<UnpackStats> {
    let root = sys::open(dest, libc::O_RDONLY | libc::O_DIRECTORY).map_err(|e| io::Error::new(e.kind(), format!("open {}: {e}", dest.display())))?;
    let mut u = Unpacker {
        dest: Dest { root, key: Vec::new(), fd: None },
        opts: opts.clone(),
        dir_times: Vec::new(),
        created: HashSet::new(),
        stats_entries: 0,
        stats_whiteouts: 0,
        xattr_errors: 0,
        buf: vec![0; 1 << 20],
    };
    // Decompression and the diff_id hash run on a second thread, a few 1 MiB chunks
    // ahead of the extraction (which is mostly system calls).
    std::thread::scope(|s| {
        let (tx, rx) = sync_channel::<io::Result<Vec<u8>>>(4);
        let (back_tx, back_rx) = sync_channel::<Vec<u8>>(6);
        let reader = std::thread::Builder::new().name("berth-unpack-z".into()).spawn_scoped(s, move || -> io::Result<(Digest, u64)> {
            let mut h = HashReader::new(match super::compress::decompress(r) {
                Ok(p) => p,
                Err(e) => {
                    let _ = tx.send(Err(io::Error::new(e.kind(), e.to_string())));
                    return Err(e);
                }
            });
            loop {
                let mut buf = back_rx.try_recv().unwrap_or_default();
                buf.resize(CHUNK, 0);
                let mut n = 0;
                while n < buf.len() {
                    match h.read(&mut buf[n..]) {
                        Ok(0) => break,
                        Ok(k) => n += k,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => {
                            let _ = tx.send(Err(io::Error::new(e.kind(), e.to_string())));
                            return Err(e);
                        }
                    }
                }
                if n == 0 {
                    let (_, d, size) = h.finish();
                    return Ok((d, size));
                }
                buf.truncate(n);
                if tx.send(Ok(buf)).is_err() {
                    return Err(io::Error::other("unpack stopped"));
                }
            }
        })?;
        let mut tr = TarReader::new(ChunkReader { rx, cur: Vec::new(), pos: 0, back: back_tx });
        let r = (|| -> io::Result<()> {
            while let Some(h) = tr.next_entry()? {
                u.stats_entries += 1;
                u.entry(&h, &mut tr).map_err(|e| {
                    if e.to_string().starts_with("layer entry") {
                        e
                    } else {
                        io::Error::new(e.kind(), format!("layer entry {:?}: {e}", String::from_utf8_lossy(&h.path)))
                    }
                })?;
            }
            // The diff_id covers the whole stream, padding after the end marker included.
            io::copy(&mut tr.into_inner(), &mut io::sink())?;
            Ok(())
        })();
        // On an error the reader sees the channel closed and stops.
        let hashed = reader.join().map_err(|_| io::Error::other("unpack reader thread panicked"))?;
        r?;
        let (diff_id, tar_size) = hashed?;
        u.finish_dirs();
        Ok(UnpackStats { diff_id, tar_size, entries: u.stats_entries, whiteouts: u.stats_whiteouts, xattr_errors: u.xattr_errors })
    })
}

const CHUNK: usize = 1 << 20;

/// The extraction side of the reader thread's chunks.
struct ChunkReader {
    rx: Receiver<io::Result<Vec<u8>>>,
    cur: Vec<u8>,
    pos: usize,
    back: SyncSender<Vec<u8>>,
}

impl Read for ChunkReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.cur.len() {
            match self.rx.recv() {
                Ok(Ok(next)) => {
                    let old = std::mem::replace(&mut self.cur, next);
                    let _ = self.back.try_send(old);
                    self.pos = 0;
                }
                Ok(Err(e)) => return Err(e),
                Err(_) => return Ok(0), // the reader finished: end of stream
            }
        }
        let n = out.len().min(self.cur.len() - self.pos);
        out[..n].copy_from_slice(&self.cur[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

impl Unpacker {
    fn flatten(&self) -> bool {
        self.opts.mode == UnpackMode::Flatten
    }

    fn mark_created(&mut self, path: &[u8]) {
        if !self.flatten() {
            return;
        }
        let mut p = path;
        loop {
            if !self.created.insert(p.to_vec()) {
                return;
            }
            match p.iter().rposition(|b| *b == b'/') {
                Some(i) => p = &p[..i],
                None => return,
            }
        }
    }

    fn set_xattrs(&mut self, t: XattrTarget, h: &Header) {
        if !self.opts.xattrs {
            return;
        }
        for (k, v) in &h.xattrs {
            if k.starts_with(b"trusted.overlay.") || k.starts_with(b"user.overlay.") {
                continue;
            }
            let ok = sys::cstr(k).and_then(|c| sys::set_xattr(&t, &c, v)).is_ok();
            if !ok {
                self.xattr_errors += 1;
            }
        }
    }

    fn entry<R: Read>(&mut self, h: &Header, data: &mut TarReader<R>) -> io::Result<()> {
        let path = clean_path(&h.path).ok_or_else(|| hostile(&h.path, "has a '..' component"))?;
        if path.is_empty() {
            // The root itself ("./"): its attributes, if it is a directory.
            if h.kind == Kind::Dir {
                let fd = self.dest.root.as_raw_fd();
                self.attrs_fd(fd, h)?;
                self.dir_times.push((Vec::new(), h.mtime));
            }
            return Ok(());
        }
        let (parent, name) = split_parent(&path);
        if let Some(target) = name.strip_prefix(b".wh.") {
            return self.whiteout(&path, parent, target, h);
        }
        if parent.split(|b| *b == b'/').any(|c| c.starts_with(b".wh.")) {
            return Err(hostile(&path, "a whiteout used as a directory"));
        }
        // The hardlink target first (it needs its own directory fd).
        let link_src = if h.kind == Kind::Hardlink {
            let t = clean_path(&h.link).filter(|t| !t.is_empty()).ok_or_else(|| hostile(&path, "hardlink target has a '..' component"))?;
            let (tp, tn) = split_parent(&t);
            let tfd = self.dest.dir_owned(tp, &t)?.ok_or_else(|| hostile(&path, "hardlink target does not exist"))?;
            Some((tfd, sys::cstr(tn)?))
        } else {
            None
        };
        let dfd = self.dest.dir(parent, true, &path)?.expect("created");
        let cname = sys::cstr(name)?;
        // Replace what is there, unless both are directories (merged).
        match sys::fstatat(dfd, &cname) {
            Ok(st) => {
                let is_dir = st.st_mode & libc::S_IFMT == libc::S_IFDIR;
                if !(is_dir && h.kind == Kind::Dir) {
                    if is_dir {
                        remove_at(dfd, name)?;
                        self.dest.invalidate();
                    } else {
                        sys::unlinkat(dfd, &cname, false)?;
                    }
                }
            }
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
            Err(e) => return Err(e),
        }
        // Removal may have dropped the cached fd: get it again.
        let dfd = self.dest.dir(parent, true, &path)?.expect("created");
        match h.kind {
            Kind::Dir => {
                match sys::mkdirat(dfd, &cname, 0o700) {
                    Ok(()) => {}
                    Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {}
                    Err(e) => return Err(e),
                }
                let fd = sys::open_dir_at(dfd, &cname).map_err(|e| self.dest.refuse(e, &path))?;
                self.attrs_fd(fd.as_raw_fd(), h)?;
                self.dir_times.push((path.clone(), h.mtime));
            }
            Kind::File => {
                let fd = sys::openat(dfd, &cname, libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW, 0o600)?;
                let mut f = File::from(fd);
                loop {
                    let n = data.read(&mut self.buf)?;
                    if n == 0 {
                        break;
                    }
                    f.write_all(&self.buf[..n])?;
                }
                self.attrs_fd(f.as_raw_fd(), h)?;
                sys::futimens(f.as_raw_fd(), h.mtime)?;
            }
            Kind::Symlink => {
                let target = sys::cstr(&h.link)?;
                sys::symlinkat(&target, dfd, &cname)?;
                self.attrs_at(dfd, name, &cname, h, false)?;
            }
            Kind::Hardlink => {
                let (tfd, tname) = link_src.expect("resolved above");
                sys::linkat(tfd.as_raw_fd(), &tname, dfd, &cname)
                    .map_err(|e| io::Error::new(e.kind(), format!("hardlink to {:?}: {e}", String::from_utf8_lossy(&h.link))))?;
            }
            Kind::Char | Kind::Block | Kind::Fifo => {
                let (t, dev) = match h.kind {
                    Kind::Char => (libc::S_IFCHR, sys::makedev(h.devmajor, h.devminor)),
                    Kind::Block => (libc::S_IFBLK, sys::makedev(h.devmajor, h.devminor)),
                    _ => (libc::S_IFIFO, 0),
                };
                sys::mknodat(dfd, &cname, t | 0o600, dev)?;
                self.attrs_at(dfd, name, &cname, h, true)?;
            }
        }
        self.mark_created(&path);
        Ok(())
    }

    /// Owner, mode, xattrs of an open file or directory.
    fn attrs_fd(&mut self, fd: RawFd, h: &Header) -> io::Result<()> {
        if self.opts.same_owner {
            sys::fchown(fd, h.uid as u32, h.gid as u32)?;
        }
        // After chown, which clears setuid/setgid.
        sys::fchmod(fd, h.mode & 0o7777)?;
        self.set_xattrs(XattrTarget::Fd(fd), h);
        Ok(())
    }

    /// Owner, mode (not for symlinks), xattrs and mtime of a node we just made.
    fn attrs_at(&mut self, dfd: RawFd, name: &[u8], cname: &CString, h: &Header, chmod: bool) -> io::Result<()> {
        if self.opts.same_owner {
            sys::fchownat(dfd, cname, h.uid as u32, h.gid as u32)?;
        }
        if chmod {
            sys::fchmodat(dfd, cname, h.mode & 0o7777)?;
        }
        if !h.xattrs.is_empty() {
            let p = sys::proc_path(dfd, name)?;
            self.set_xattrs(XattrTarget::Path(&p), h);
        }
        sys::utimensat(dfd, cname, h.mtime)
    }

    fn whiteout(&mut self, path: &[u8], parent: &[u8], target: &[u8], h: &Header) -> io::Result<()> {
        self.stats_whiteouts += 1;
        if target == b".wh..opq" {
            return self.opaque(path, parent, h);
        }
        if target.starts_with(b".wh.") {
            return Ok(()); // AUFS metadata (.wh..wh.plnk, .wh..wh.aufs): ignored, as Docker does
        }
        if target.is_empty() || target == b"." || target == b".." {
            return Err(hostile(path, "invalid whiteout name"));
        }
        let ctarget = sys::cstr(target)?;
        if self.flatten() {
            let Some(dfd) = self.dest.dir(parent, false, path)? else { return Ok(()) };
            let mut victim = parent.to_vec();
            if !victim.is_empty() {
                victim.push(b'/');
            }
            victim.extend_from_slice(target);
            if self.created.contains(&victim) {
                return Ok(()); // this layer made it (an odd tar): keep it
            }
            remove_at(dfd, target)?;
            self.dest.invalidate();
            return Ok(());
        }
        let dfd = self.dest.dir(parent, true, path)?.expect("created");
        remove_at(dfd, target)?;
        self.dest.invalidate();
        let dfd = self.dest.dir(parent, true, path)?.expect("created");
        sys::mknodat(dfd, &ctarget, libc::S_IFCHR, 0)?;
        if self.opts.same_owner {
            sys::fchownat(dfd, &ctarget, h.uid as u32, h.gid as u32)?;
        }
        if h.mode & 0o777 != 0 {
            // The whiteout's own mode (overlayfs makes them 0000; keep what the tar says so
            // that a diff of this dir gives the same layer again).
            sys::fchmodat(dfd, &ctarget, h.mode & 0o777)?;
        }
        sys::utimensat(dfd, &ctarget, h.mtime)
    }

    fn opaque(&mut self, path: &[u8], parent: &[u8], _h: &Header) -> io::Result<()> {
        if self.flatten() {
            let Some(dfd) = self.dest.dir(parent, false, path)? else { return Ok(()) };
            // SAFETY: duplicate for read_dir_names' own use.
            let dup = unsafe { libc::fcntl(dfd, libc::F_DUPFD_CLOEXEC, 0) };
            if dup < 0 {
                return Err(io::Error::last_os_error());
            }
            // SAFETY: a fresh fd.
            let dir = unsafe { OwnedFd::from_raw_fd(dup) };
            let names = sys::read_dir_names(&dir)?;
            for n in names {
                let mut p = parent.to_vec();
                if !p.is_empty() {
                    p.push(b'/');
                }
                p.extend_from_slice(&n);
                if !self.created.contains(&p) {
                    remove_at(dir.as_raw_fd(), &n)?;
                }
            }
            self.dest.invalidate();
            return Ok(());
        }
        let dfd = self.dest.dir(parent, true, path)?.expect("created");
        sys::set_xattr(&XattrTarget::Fd(dfd), c"trusted.overlay.opaque", b"y").map_err(|e| io::Error::new(e.kind(), format!("set trusted.overlay.opaque: {e}")))
    }

    fn finish_dirs(&mut self) {
        let times = std::mem::take(&mut self.dir_times);
        for (p, mtime) in times.iter().rev() {
            if p.is_empty() {
                let _ = sys::futimens(self.dest.root.as_raw_fd(), *mtime);
                continue;
            }
            let (parent, name) = split_parent(p);
            let Ok(c) = sys::cstr(name) else { continue };
            if let Ok(Some(dfd)) = self.dest.dir(parent, false, p) {
                let _ = sys::utimensat(dfd, &c, *mtime);
            }
        }
    }
}
