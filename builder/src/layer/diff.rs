//! Overlay upper dir -> OCI layer tar.
//!
//! The upper dir of an overlay mount holds exactly what a step changed: new and modified
//! files, whiteouts for deleted ones (char devices 0:0), and opaque directories (xattr
//! `trusted.overlay.opaque=y`, or `user.overlay.opaque` on userxattr mounts) that hide
//! everything below them. This writes them as an OCI layer:
//!
//! - whiteout `d/name` (0:0 char device, or a file with `trusted.overlay.whiteout` in a
//!   dir marked opaque=`x` by Linux 6.7+) -> empty file `d/.wh.name`;
//! - opaque dir `d` -> `d/` then an empty file `d/.wh..wh..opq`;
//! - regular files, dirs, symlinks, hardlinks (same inode -> a link entry to the first
//!   path), char/block devices, fifos with mode (incl. setuid/setgid/sticky), uid/gid,
//!   mtime (clamped to SOURCE_DATE_EPOCH when given) and xattrs (`security.capability`
//!   and others; never `trusted.overlay.*`, `user.overlay.*` or `security.selinux`);
//!   sockets are skipped (tar cannot hold them, as Docker).
//!
//! Reproducible: entries sorted by name at each level, no atime/ctime/uname/gname, the
//! same PAX rules every time, so a rebuild with the same content and SOURCE_DATE_EPOCH
//! gives the same diff_id and (same compressor and level) the same blob digest.
//!
//! Fast: one directory fd per level, *at() calls only, file content read straight into
//! the tar chunk, names of a directory kept in one buffer, reused header and path buffers.

use super::sys::{self, XattrTarget};
use super::tar::{ChunkSink, Header, Kind, TarWriter};
use std::collections::HashMap;
use std::ffi::CStr;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;

/// Options of [`super::diff`].
#[derive(Debug, Clone)]
pub struct DiffOptions {
    pub compression: super::Compression,
    /// Clamp every mtime to at most this (SOURCE_DATE_EPOCH).
    pub source_date_epoch: Option<i64>,
    /// Record extended attributes (default true).
    pub xattrs: bool,
}

impl Default for DiffOptions {
    fn default() -> DiffOptions {
        DiffOptions { compression: super::Compression::default(), source_date_epoch: None, xattrs: true }
    }
}

impl DiffOptions {
    /// Defaults, with `source_date_epoch` from `$SOURCE_DATE_EPOCH`.
    pub fn from_env() -> DiffOptions {
        DiffOptions { source_date_epoch: crate::store::source_date_epoch(), ..Default::default() }
    }
}

/// What a diff wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DiffStats {
    pub entries: u64,
    pub whiteouts: u64,
    pub opaque_dirs: u64,
    pub bytes: u64,
}

/// Names in a directory, kept in one buffer (NUL-terminated each).
struct Names {
    buf: Vec<u8>,
    idx: Vec<(u32, u32)>,
}

impl Names {
    fn read(dir: &OwnedFd) -> io::Result<Names> {
        let list = sys::read_dir_names(dir)?;
        let total: usize = list.iter().map(|n| n.len() + 1).sum();
        let mut buf = Vec::with_capacity(total);
        let mut idx = Vec::with_capacity(list.len());
        for n in &list {
            idx.push((buf.len() as u32, n.len() as u32));
            buf.extend_from_slice(n);
            buf.push(0);
        }
        let mut names = Names { buf, idx };
        let b = std::mem::take(&mut names.buf);
        names.idx.sort_unstable_by(|a, c| b[a.0 as usize..(a.0 + a.1) as usize].cmp(&b[c.0 as usize..(c.0 + c.1) as usize]));
        names.buf = b;
        Ok(names)
    }

    fn get(&self, i: usize) -> (&[u8], &CStr) {
        let (s, l) = self.idx[i];
        let (s, l) = (s as usize, l as usize);
        let c = CStr::from_bytes_with_nul(&self.buf[s..s + l + 1]).expect("names are NUL-terminated");
        (&self.buf[s..s + l], c)
    }
}

const OPAQUE_XATTRS: [&CStr; 2] = [c"trusted.overlay.opaque", c"user.overlay.opaque"];
const WHITEOUT_XATTRS: [&CStr; 2] = [c"trusted.overlay.whiteout", c"user.overlay.whiteout"];

fn skip_xattr(name: &[u8]) -> bool {
    name.starts_with(b"trusted.overlay.") || name.starts_with(b"user.overlay.") || name == b"security.selinux"
}

struct Walker<'a, S: ChunkSink> {
    tar: &'a mut TarWriter<S>,
    opts: &'a DiffOptions,
    path: Vec<u8>,
    hdr: Header,
    links: HashMap<(u64, u64), Vec<u8>>,
    stats: DiffStats,
}

/// Writes the OCI layer tar of the overlay upper dir `upper` into `tar` (without the
/// end-of-archive marker: the caller finishes the writer).
pub fn write_diff<S: ChunkSink>(upper: &Path, tar: &mut TarWriter<S>, opts: &DiffOptions) -> io::Result<DiffStats> {
    let root = sys::open(upper, libc::O_RDONLY | libc::O_DIRECTORY).map_err(|e| io::Error::new(e.kind(), format!("open {}: {e}", upper.display())))?;
    let mut w = Walker { tar, opts, path: Vec::with_capacity(4096), hdr: Header::default(), links: HashMap::new(), stats: DiffStats::default() };
    let root_opaque = w.opaque_value(root.as_raw_fd())?;
    w.walk(&root, root_opaque.as_deref() == Some(b"x"))
        .map_err(|e| io::Error::new(e.kind(), format!("diff {}: {}: {e}", upper.display(), String::from_utf8_lossy(&w.path))))?;
    Ok(w.stats)
}

impl<S: ChunkSink> Walker<'_, S> {
    fn mtime(&self, st: &libc::stat64) -> i64 {
        let m = st.st_mtime;
        match self.opts.source_date_epoch {
            Some(e) if m > e => e,
            _ => m,
        }
    }

    fn opaque_value(&self, fd: i32) -> io::Result<Option<Vec<u8>>> {
        for n in OPAQUE_XATTRS {
            if let Some(v) = sys::get_xattr(&XattrTarget::Fd(fd), n)? {
                return Ok(Some(v));
            }
        }
        Ok(None)
    }

    /// Fills `hdr` with the common fields of `st`, path = the current path.
    fn base(&mut self, kind: Kind, st: &libc::stat64) {
        let mtime = self.mtime(st);
        let h = &mut self.hdr;
        h.kind = kind;
        h.path.clear();
        h.path.extend_from_slice(&self.path);
        h.link.clear();
        h.mode = st.st_mode & 0o7777;
        h.uid = st.st_uid as u64;
        h.gid = st.st_gid as u64;
        h.size = 0;
        h.mtime = mtime;
        h.devmajor = 0;
        h.devminor = 0;
        h.xattrs.clear();
    }

    fn read_xattrs(&mut self, t: XattrTarget) -> io::Result<()> {
        if !self.opts.xattrs {
            return Ok(());
        }
        let mut names = sys::list_xattrs(&t)?;
        if names.is_empty() {
            return Ok(());
        }
        names.sort();
        for n in names {
            if skip_xattr(&n) {
                continue;
            }
            let c = sys::cstr(&n)?;
            if let Some(v) = sys::get_xattr(&t, &c)? {
                self.hdr.xattrs.push((n, v));
            }
        }
        Ok(())
    }

    fn emit(&mut self) -> io::Result<()> {
        self.stats.entries += 1;
        self.tar.append_header(&self.hdr)
    }

    /// `.wh.<name>` or `.wh..wh..opq` in the current dir (the path's last component is
    /// replaced by `marker`).
    fn emit_marker(&mut self, st: &libc::stat64, marker: &[u8], in_dir: bool) -> io::Result<()> {
        self.base(Kind::File, st);
        let h = &mut self.hdr;
        if in_dir {
            h.path.extend_from_slice(b"/");
            h.path.extend_from_slice(marker);
        } else {
            let cut = h.path.iter().rposition(|b| *b == b'/').map(|i| i + 1).unwrap_or(0);
            let name = h.path.split_off(cut);
            h.path.extend_from_slice(marker);
            h.path.extend_from_slice(&name);
        }
        h.mode &= 0o777;
        self.emit()
    }

    fn walk(&mut self, dir: &OwnedFd, xattr_whiteouts: bool) -> io::Result<()> {
        let names = Names::read(dir)?;
        let dfd = dir.as_raw_fd();
        for i in 0..names.idx.len() {
            let (name, cname) = names.get(i);
            let plen = self.path.len();
            if plen > 0 {
                self.path.push(b'/');
            }
            self.path.extend_from_slice(name);
            let st = sys::fstatat(dfd, cname)?;
            match st.st_mode & libc::S_IFMT {
                libc::S_IFDIR => {
                    let fd = sys::open_dir_at(dfd, cname)?;
                    self.base(Kind::Dir, &st);
                    self.read_xattrs(XattrTarget::Fd(fd.as_raw_fd()))?;
                    self.emit()?;
                    let opaque = self.opaque_value(fd.as_raw_fd())?;
                    if opaque.as_deref() == Some(b"y") {
                        self.stats.opaque_dirs += 1;
                        self.emit_marker(&st, b".wh..wh..opq", true)?;
                    }
                    self.walk(&fd, opaque.as_deref() == Some(b"x"))?;
                }
                libc::S_IFREG => {
                    let key = (st.st_dev, st.st_ino);
                    if st.st_nlink > 1 {
                        if let Some(first) = self.links.get(&key) {
                            let first = first.clone();
                            self.base(Kind::Hardlink, &st);
                            self.hdr.link = first;
                            self.emit()?;
                            self.path.truncate(plen);
                            continue;
                        }
                    }
                    let fd = sys::openat(dfd, cname, libc::O_RDONLY | libc::O_NOFOLLOW, 0)?;
                    if xattr_whiteouts && st.st_size == 0 {
                        let t = XattrTarget::Fd(fd.as_raw_fd());
                        let mut wh = false;
                        for n in WHITEOUT_XATTRS {
                            wh |= sys::get_xattr(&t, n)?.is_some();
                        }
                        if wh {
                            self.stats.whiteouts += 1;
                            self.emit_marker(&st, b".wh.", false)?;
                            self.path.truncate(plen);
                            continue;
                        }
                    }
                    if st.st_nlink > 1 {
                        self.links.insert(key, self.path.clone());
                    }
                    self.base(Kind::File, &st);
                    self.hdr.size = st.st_size as u64;
                    self.read_xattrs(XattrTarget::Fd(fd.as_raw_fd()))?;
                    self.emit()?;
                    let mut f = File::from(fd);
                    self.tar.copy_data(&mut f, st.st_size as u64)?;
                    self.stats.bytes += st.st_size as u64;
                }
                libc::S_IFLNK => {
                    let target = sys::readlinkat(dfd, cname)?;
                    self.base(Kind::Symlink, &st);
                    self.hdr.link = target;
                    if self.opts.xattrs {
                        let p = sys::proc_path(dfd, name)?;
                        self.read_xattrs(XattrTarget::Path(&p))?;
                    }
                    self.emit()?;
                }
                libc::S_IFCHR if st.st_rdev == 0 => {
                    self.stats.whiteouts += 1;
                    self.emit_marker(&st, b".wh.", false)?;
                }
                t @ (libc::S_IFCHR | libc::S_IFBLK | libc::S_IFIFO) => {
                    let kind = match t {
                        libc::S_IFCHR => Kind::Char,
                        libc::S_IFBLK => Kind::Block,
                        _ => Kind::Fifo,
                    };
                    self.base(kind, &st);
                    if kind != Kind::Fifo {
                        self.hdr.devmajor = sys::major(st.st_rdev);
                        self.hdr.devminor = sys::minor(st.st_rdev);
                    }
                    if self.opts.xattrs {
                        let p = sys::proc_path(dfd, name)?;
                        self.read_xattrs(XattrTarget::Path(&p))?;
                    }
                    self.emit()?;
                }
                _ => {} // sockets
            }
            self.path.truncate(plen);
        }
        Ok(())
    }
}
