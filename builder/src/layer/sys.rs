//! Thin wrappers over the *at() system calls the layer code needs: every path operation is
//! relative to a directory fd and never follows a symlink in the last component, so that
//! extraction can be confined to a directory (see unpack.rs).

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

pub fn cstr(b: &[u8]) -> io::Result<CString> {
    CString::new(b).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"))
}

pub fn cpath(p: &Path) -> io::Result<CString> {
    cstr(p.as_os_str().as_bytes())
}

fn check(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// Retries a call interrupted by a signal.
fn retry<F: FnMut() -> libc::c_int>(mut f: F) -> io::Result<libc::c_int> {
    loop {
        match check(f()) {
            Err(e) if e.raw_os_error() == Some(libc::EINTR) => continue,
            r => return r,
        }
    }
}

pub fn open(path: &Path, flags: libc::c_int) -> io::Result<OwnedFd> {
    let c = cpath(path)?;
    // SAFETY: open(2) with a valid C string; the fd is owned by the result.
    let fd = retry(|| unsafe { libc::open(c.as_ptr(), flags | libc::O_CLOEXEC, 0o600) })?;
    // SAFETY: a fresh fd from open(2).
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

pub fn openat(dir: RawFd, name: &CStr, flags: libc::c_int, mode: libc::mode_t) -> io::Result<OwnedFd> {
    // SAFETY: openat(2) with a valid C string; the fd is owned by the result.
    let fd = retry(|| unsafe { libc::openat(dir, name.as_ptr(), flags | libc::O_CLOEXEC, mode as libc::c_uint) })?;
    // SAFETY: a fresh fd from openat(2).
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Opens a directory below `dir` without following a symlink.
pub fn open_dir_at(dir: RawFd, name: &CStr) -> io::Result<OwnedFd> {
    openat(dir, name, libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW, 0)
}

pub fn fstatat(dir: RawFd, name: &CStr) -> io::Result<libc::stat64> {
    // SAFETY: stat64 is plain data; fstatat64 fills it.
    let mut st: libc::stat64 = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointers to a C string and a stat buffer.
    check(unsafe { libc::fstatat64(dir, name.as_ptr(), &mut st, libc::AT_SYMLINK_NOFOLLOW) })?;
    Ok(st)
}

pub fn mkdirat(dir: RawFd, name: &CStr, mode: libc::mode_t) -> io::Result<()> {
    // SAFETY: mkdirat(2) with a valid C string.
    check(unsafe { libc::mkdirat(dir, name.as_ptr(), mode) }).map(drop)
}

pub fn mknodat(dir: RawFd, name: &CStr, mode: libc::mode_t, dev: libc::dev_t) -> io::Result<()> {
    // SAFETY: mknodat(2) with a valid C string.
    check(unsafe { libc::mknodat(dir, name.as_ptr(), mode, dev) }).map(drop)
}

pub fn symlinkat(target: &CStr, dir: RawFd, name: &CStr) -> io::Result<()> {
    // SAFETY: symlinkat(2) with valid C strings.
    check(unsafe { libc::symlinkat(target.as_ptr(), dir, name.as_ptr()) }).map(drop)
}

/// A hard link; never follows a symlink at the old path (links the symlink itself).
pub fn linkat(olddir: RawFd, oldname: &CStr, newdir: RawFd, newname: &CStr) -> io::Result<()> {
    // SAFETY: linkat(2) with valid C strings and no AT_SYMLINK_FOLLOW.
    check(unsafe { libc::linkat(olddir, oldname.as_ptr(), newdir, newname.as_ptr(), 0) }).map(drop)
}

pub fn unlinkat(dir: RawFd, name: &CStr, is_dir: bool) -> io::Result<()> {
    let flags = if is_dir { libc::AT_REMOVEDIR } else { 0 };
    // SAFETY: unlinkat(2) with a valid C string.
    check(unsafe { libc::unlinkat(dir, name.as_ptr(), flags) }).map(drop)
}

/// Reads a symlink's target (relative to `dir`).
pub fn readlinkat(dir: RawFd, name: &CStr) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; 256];
    loop {
        // SAFETY: readlinkat(2) into a buffer of the given length.
        let n = unsafe { libc::readlinkat(dir, name.as_ptr(), buf.as_mut_ptr() as *mut libc::c_char, buf.len()) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        if (n as usize) < buf.len() {
            buf.truncate(n as usize);
            return Ok(buf);
        }
        buf.resize(buf.len() * 4, 0);
    }
}

pub fn fchownat(dir: RawFd, name: &CStr, uid: u32, gid: u32) -> io::Result<()> {
    // SAFETY: fchownat(2) with a valid C string, not following symlinks.
    check(unsafe { libc::fchownat(dir, name.as_ptr(), uid, gid, libc::AT_SYMLINK_NOFOLLOW) }).map(drop)
}

pub fn fchown(fd: RawFd, uid: u32, gid: u32) -> io::Result<()> {
    // SAFETY: fchown(2) on an fd we own.
    check(unsafe { libc::fchown(fd, uid, gid) }).map(drop)
}

pub fn fchmod(fd: RawFd, mode: u32) -> io::Result<()> {
    // SAFETY: fchmod(2) on an fd we own.
    check(unsafe { libc::fchmod(fd, mode as libc::mode_t) }).map(drop)
}

/// chmod of a non-symlink below `dir` (fchmodat cannot refuse symlinks before Linux 6.6:
/// the callers only use it on a node they just created).
pub fn fchmodat(dir: RawFd, name: &CStr, mode: u32) -> io::Result<()> {
    // SAFETY: fchmodat(2) with a valid C string.
    check(unsafe { libc::fchmodat(dir, name.as_ptr(), mode as libc::mode_t, 0) }).map(drop)
}

fn timespec(secs: i64) -> libc::timespec {
    libc::timespec { tv_sec: secs as libc::time_t, tv_nsec: 0 }
}

/// Sets atime and mtime of a node below `dir`, not following symlinks.
pub fn utimensat(dir: RawFd, name: &CStr, mtime: i64) -> io::Result<()> {
    let ts = [timespec(mtime), timespec(mtime)];
    // SAFETY: utimensat(2) with a valid C string and two timespecs.
    check(unsafe { libc::utimensat(dir, name.as_ptr(), ts.as_ptr(), libc::AT_SYMLINK_NOFOLLOW) }).map(drop)
}

pub fn futimens(fd: RawFd, mtime: i64) -> io::Result<()> {
    let ts = [timespec(mtime), timespec(mtime)];
    // SAFETY: futimens(3) with two timespecs.
    check(unsafe { libc::futimens(fd, ts.as_ptr()) }).map(drop)
}

/// Names of the extended attributes of an open file, or of a path (not followed).
pub enum XattrTarget<'a> {
    Fd(RawFd),
    Path(&'a CStr),
}

pub fn list_xattrs(t: &XattrTarget) -> io::Result<Vec<Vec<u8>>> {
    let mut buf = vec![0u8; 1024];
    loop {
        // SAFETY: (f|l)listxattr into a buffer of the given length.
        let n = unsafe {
            match t {
                XattrTarget::Fd(fd) => libc::flistxattr(*fd, buf.as_mut_ptr() as *mut libc::c_char, buf.len()),
                XattrTarget::Path(p) => libc::llistxattr(p.as_ptr(), buf.as_mut_ptr() as *mut libc::c_char, buf.len()),
            }
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::ERANGE) => {
                    buf.resize(buf.len() * 4, 0);
                    continue;
                }
                Some(libc::ENOTSUP) => return Ok(Vec::new()),
                _ => return Err(e),
            }
        }
        return Ok(buf[..n as usize].split(|b| *b == 0).filter(|s| !s.is_empty()).map(|s| s.to_vec()).collect());
    }
}

/// The value of one attribute; `None` if it is not set.
pub fn get_xattr(t: &XattrTarget, name: &CStr) -> io::Result<Option<Vec<u8>>> {
    let mut buf = vec![0u8; 256];
    loop {
        // SAFETY: (f|l)getxattr into a buffer of the given length.
        let n = unsafe {
            match t {
                XattrTarget::Fd(fd) => libc::fgetxattr(*fd, name.as_ptr(), buf.as_mut_ptr() as *mut libc::c_void, buf.len()),
                XattrTarget::Path(p) => libc::lgetxattr(p.as_ptr(), name.as_ptr(), buf.as_mut_ptr() as *mut libc::c_void, buf.len()),
            }
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::ERANGE) => {
                    buf.resize(buf.len() * 4, 0);
                    continue;
                }
                Some(libc::ENODATA) | Some(libc::ENOTSUP) => return Ok(None),
                _ => return Err(e),
            }
        }
        buf.truncate(n as usize);
        return Ok(Some(buf));
    }
}

pub fn set_xattr(t: &XattrTarget, name: &CStr, value: &[u8]) -> io::Result<()> {
    // SAFETY: (f|l)setxattr with a valid name and a value buffer of the given length.
    let r = unsafe {
        match t {
            XattrTarget::Fd(fd) => libc::fsetxattr(*fd, name.as_ptr(), value.as_ptr() as *const libc::c_void, value.len(), 0),
            XattrTarget::Path(p) => libc::lsetxattr(p.as_ptr(), name.as_ptr(), value.as_ptr() as *const libc::c_void, value.len(), 0),
        }
    };
    check(r).map(drop)
}

/// The path of `name` in the directory `dir` through /proc, for the calls that have no
/// *at() form (lsetxattr, llistxattr). The directory is reached through its fd, so no
/// symlink on the way is followed; the last component is not followed by the l*() calls.
pub fn proc_path(dir: RawFd, name: &[u8]) -> io::Result<CString> {
    let mut p = format!("/proc/self/fd/{dir}/").into_bytes();
    p.extend_from_slice(name);
    cstr(&p)
}

/// Directory entry names of an open directory (without "." and ".."), unsorted.
pub fn read_dir_names(dir: &OwnedFd) -> io::Result<Vec<Vec<u8>>> {
    // fdopendir takes ownership of the fd it is given: hand it a duplicate.
    // SAFETY: dup(2) of an fd we own.
    let fd = check(unsafe { libc::fcntl(dir.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 0) })?;
    // SAFETY: fdopendir on a fresh fd; on failure we close it.
    let d = unsafe { libc::fdopendir(fd) };
    if d.is_null() {
        let e = io::Error::last_os_error();
        // SAFETY: closing the duplicate we made.
        unsafe { libc::close(fd) };
        return Err(e);
    }
    // The duplicate shares the file offset: start from the beginning.
    // SAFETY: rewinddir on a valid DIR*.
    unsafe { libc::rewinddir(d) };
    let mut out = Vec::new();
    loop {
        // SAFETY: errno is thread-local; reset it to tell the end from an error.
        unsafe { *libc::__errno_location() = 0 };
        // SAFETY: readdir64 on a valid DIR*; the entry is valid until the next call.
        let ent = unsafe { libc::readdir64(d) };
        if ent.is_null() {
            let errno = unsafe { *libc::__errno_location() };
            // SAFETY: closedir of the DIR* we opened (closes the duplicate fd).
            unsafe { libc::closedir(d) };
            if errno != 0 {
                return Err(io::Error::from_raw_os_error(errno));
            }
            return Ok(out);
        }
        // SAFETY: d_name is NUL-terminated within the entry.
        let name = unsafe { CStr::from_ptr((*ent).d_name.as_ptr()) }.to_bytes();
        if name != b"." && name != b".." {
            out.push(name.to_vec());
        }
    }
}

pub fn fsync(fd: RawFd) -> io::Result<()> {
    retry(|| unsafe { libc::fsync(fd) }).map(drop)
}

/// fsync of a directory, so a rename into it is durable.
pub fn fsync_dir(dir: &Path) -> io::Result<()> {
    let fd = open(dir, libc::O_RDONLY | libc::O_DIRECTORY)?;
    fsync(fd.as_raw_fd())
}

/// flock(2): `exclusive` or shared, blocking.
pub fn flock(fd: RawFd, exclusive: bool) -> io::Result<()> {
    let op = if exclusive { libc::LOCK_EX } else { libc::LOCK_SH };
    // SAFETY: flock(2) on an fd we own.
    retry(|| unsafe { libc::flock(fd, op) }).map(drop)
}

pub fn makedev(major: u64, minor: u64) -> libc::dev_t {
    libc::makedev(major as u32, minor as u32)
}

pub fn major(dev: u64) -> u64 {
    libc::major(dev as libc::dev_t) as u64
}

pub fn minor(dev: u64) -> u64 {
    libc::minor(dev as libc::dev_t) as u64
}
