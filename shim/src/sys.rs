//! Thin wrappers over the few syscalls the shim makes. Nothing here allocates except
//! where it says so (building argv before a fork, long socket paths).

use alloc::borrow::ToOwned;
use alloc::ffi::CString;
use alloc::format;
use alloc::vec;
use alloc::vec::Vec;
use core::ffi::CStr;
use core::fmt;
use core::ptr;
use libc::{c_char, c_int, pid_t};

/// An errno value.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Errno(pub c_int);

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = unsafe { CStr::from_ptr(libc::strerror(self.0)) };
        f.write_str(&alloc::string::String::from_utf8_lossy(s.to_bytes()))
    }
}

pub type Result<T> = core::result::Result<T, Errno>;

pub fn errno() -> c_int {
    unsafe { *libc::__errno_location() }
}

pub fn last() -> Errno {
    Errno(errno())
}

pub fn cvt(r: c_int) -> Result<c_int> {
    if r < 0 {
        Err(last())
    } else {
        Ok(r)
    }
}

/// Write all of `s` to a descriptor, ignoring errors (for messages to stdout/stderr).
pub fn print(fd: c_int, s: &[u8]) {
    let _ = write_all(fd, s);
}

/// Make sure descriptors 0, 1 and 2 are open, so nothing we open later lands there.
pub fn ensure_stdio() {
    for fd in 0..3 {
        if unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
            let n = unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDWR) };
            if n >= 0 && n != fd {
                unsafe {
                    libc::dup2(n, fd);
                    libc::close(n);
                }
            }
        }
    }
}

/// The value of an environment variable.
pub fn getenv(name: &CStr) -> Option<&'static [u8]> {
    let p = unsafe { libc::getenv(name.as_ptr()) };
    if p.is_null() {
        None
    } else {
        Some(unsafe { CStr::from_ptr(p) }.to_bytes())
    }
}

/// The whole content of a (small) file.
pub fn read_file(path: &CStr) -> Result<Vec<u8>> {
    let fd = open(path, libc::O_RDONLY, 0)?;
    let mut out = Vec::new();
    let mut b = [0u8; 512];
    loop {
        let n = read(fd.raw(), &mut b)?;
        if n == 0 {
            return Ok(out);
        }
        out.extend_from_slice(&b[..n]);
    }
}

/// The target of a symlink.
pub fn readlink(path: &CStr) -> Result<Vec<u8>> {
    let mut b = alloc::vec![0u8; 4096];
    let n = unsafe { libc::readlink(path.as_ptr(), b.as_mut_ptr().cast(), b.len()) };
    if n < 0 {
        return Err(last());
    }
    b.truncate(n as usize);
    Ok(b)
}

/// An owned file descriptor, closed on drop.
pub struct Fd(c_int);

impl Fd {
    pub fn new(fd: c_int) -> Fd {
        Fd(fd)
    }
    pub fn raw(&self) -> c_int {
        self.0
    }
}

impl Drop for Fd {
    fn drop(&mut self) {
        if self.0 >= 0 {
            unsafe { libc::close(self.0) };
        }
    }
}

/// A close-on-exec pipe: (read end, write end).
pub fn pipe() -> Result<(Fd, Fd)> {
    let mut fds = [0 as c_int; 2];
    cvt(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) })?;
    Ok((Fd(fds[0]), Fd(fds[1])))
}

pub fn set_nonblock(fd: c_int) -> Result<()> {
    let fl = cvt(unsafe { libc::fcntl(fd, libc::F_GETFL) })?;
    cvt(unsafe { libc::fcntl(fd, libc::F_SETFL, fl | libc::O_NONBLOCK) })?;
    Ok(())
}

pub fn read(fd: c_int, buf: &mut [u8]) -> Result<usize> {
    loop {
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        if n >= 0 {
            return Ok(n as usize);
        }
        let e = last();
        if e.0 != libc::EINTR {
            return Err(e);
        }
    }
}

pub fn write(fd: c_int, buf: &[u8]) -> Result<usize> {
    loop {
        let n = unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) };
        if n >= 0 {
            return Ok(n as usize);
        }
        let e = last();
        if e.0 != libc::EINTR {
            return Err(e);
        }
    }
}

pub fn write_all(fd: c_int, mut buf: &[u8]) -> Result<()> {
    while !buf.is_empty() {
        let n = write(fd, buf)?;
        if n == 0 {
            return Err(Errno(libc::EIO));
        }
        buf = &buf[n..];
    }
    Ok(())
}

pub fn open(path: &CStr, flags: c_int, mode: libc::mode_t) -> Result<Fd> {
    loop {
        let fd = unsafe { libc::open(path.as_ptr(), flags | libc::O_CLOEXEC, mode as libc::c_uint) };
        if fd >= 0 {
            return Ok(Fd(fd));
        }
        let e = last();
        if e.0 != libc::EINTR {
            return Err(e);
        }
    }
}

/// `path` + `suffix` as a new C string (allocates; start-up only).
pub fn with_suffix(path: &CStr, suffix: &str) -> CString {
    let mut v = path.to_bytes().to_vec();
    v.extend_from_slice(suffix.as_bytes());
    CString::new(v).expect("no NUL in path")
}

/// Write `data` to `path` atomically: a temporary file beside it, then rename.
pub fn write_file_atomic(path: &CStr, data: &[u8]) -> Result<()> {
    let tmp = with_suffix(path, &format!(".tmp{}", unsafe { libc::getpid() }));
    let r = (|| {
        let fd = open(&tmp, libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC, 0o644)?;
        write_all(fd.raw(), data)?;
        cvt(unsafe { libc::rename(tmp.as_ptr(), path.as_ptr()) })?;
        Ok(())
    })();
    if r.is_err() {
        unsafe { libc::unlink(tmp.as_ptr()) };
    }
    r
}

/// `path` made absolute against the working directory (start-up only): what another
/// process, in another directory, can find later.
pub fn absolute(path: &CStr) -> CString {
    let b = path.to_bytes();
    if b.first() == Some(&b'/') {
        return path.to_owned();
    }
    let mut cwd = vec![0u8; libc::PATH_MAX as usize + 1];
    if unsafe { libc::getcwd(cwd.as_mut_ptr().cast(), cwd.len()) }.is_null() {
        return path.to_owned();
    }
    let n = cwd.iter().position(|&c| c == 0).unwrap_or(0);
    cwd.truncate(n);
    cwd.push(b'/');
    cwd.extend_from_slice(b);
    CString::new(cwd).unwrap_or_else(|_| path.to_owned())
}

/// The names in a directory (not `.` and `..`); empty if it cannot be read.
pub fn list_dir(dir: &CStr) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let d = unsafe { libc::opendir(dir.as_ptr()) };
    if d.is_null() {
        return out;
    }
    loop {
        let e = unsafe { libc::readdir(d) };
        if e.is_null() {
            break;
        }
        let name = unsafe { CStr::from_ptr((*e).d_name.as_ptr()) }.to_bytes();
        if name != b"." && name != b".." {
            out.push(name.to_vec());
        }
    }
    unsafe { libc::closedir(d) };
    out
}

pub fn unlink(path: &CStr) {
    unsafe { libc::unlink(path.as_ptr()) };
}

/// A listening unix socket of type `ty` (SOCK_STREAM or SOCK_SEQPACKET) at `path`,
/// non-blocking and close-on-exec. A stale socket at `path` is replaced. Paths too long
/// for `sockaddr_un` are bound through `/proc/self/fd/<dirfd>/<name>`.
pub fn unix_listen(path: &CStr, ty: c_int) -> Result<Fd> {
    let bytes = path.to_bytes();
    let fd = Fd(cvt(unsafe { libc::socket(libc::AF_UNIX, ty | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC, 0) })?);
    // Replace a leftover socket (never a regular file or directory).
    let mut st: libc::stat = unsafe { core::mem::zeroed() };
    if unsafe { libc::lstat(path.as_ptr(), &mut st) } == 0 && (st.st_mode & libc::S_IFMT) == libc::S_IFSOCK {
        unlink(path);
    }
    let mut addr: libc::sockaddr_un = unsafe { core::mem::zeroed() };
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    let _dir; // keeps the directory open while binding through /proc/self/fd
    let long;
    let name: &[u8] = if bytes.len() < addr.sun_path.len() {
        bytes
    } else {
        let slash = bytes.iter().rposition(|&b| b == b'/').ok_or(Errno(libc::ENAMETOOLONG))?;
        let dir = CString::new(if slash == 0 { &b"/"[..] } else { &bytes[..slash] }).unwrap();
        let d = open(&dir, libc::O_PATH | libc::O_DIRECTORY, 0)?;
        let mut v = format!("/proc/self/fd/{}", d.raw()).into_bytes();
        v.extend_from_slice(&bytes[slash..]);
        _dir = d;
        long = v;
        &long
    };
    if name.len() >= addr.sun_path.len() {
        return Err(Errno(libc::ENAMETOOLONG));
    }
    for (i, &b) in name.iter().enumerate() {
        addr.sun_path[i] = b as c_char;
    }
    let len = core::mem::size_of::<libc::sa_family_t>() + name.len() + 1;
    cvt(unsafe { libc::bind(fd.raw(), (&addr as *const libc::sockaddr_un).cast(), len as libc::socklen_t) })?;
    cvt(unsafe { libc::listen(fd.raw(), 64) })?;
    Ok(fd)
}

pub fn accept(fd: c_int) -> Result<Fd> {
    loop {
        let c = unsafe { libc::accept4(fd, ptr::null_mut(), ptr::null_mut(), libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC) };
        if c >= 0 {
            return Ok(Fd(c));
        }
        let e = last();
        if e.0 != libc::EINTR {
            return Err(e);
        }
    }
}

/// Receive one message carrying a file descriptor (SCM_RIGHTS), as runc's console-socket
/// protocol sends the pty master. Ok(None) when the peer closed without sending one.
pub fn recv_fd(sock: c_int) -> Result<Option<Fd>> {
    let mut data = [0u8; 512];
    let mut iov = libc::iovec { iov_base: data.as_mut_ptr().cast(), iov_len: data.len() };
    // Room for a few descriptors in case a runtime sends more than one.
    let mut cbuf = [0u64; 16];
    let mut msg: libc::msghdr = unsafe { core::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf.as_mut_ptr().cast();
    msg.msg_controllen = core::mem::size_of_val(&cbuf) as _;
    let n = loop {
        let n = unsafe { libc::recvmsg(sock, &mut msg, libc::MSG_CMSG_CLOEXEC | libc::MSG_DONTWAIT) };
        if n >= 0 {
            break n;
        }
        let e = last();
        if e.0 != libc::EINTR {
            return Err(e);
        }
    };
    let mut got: Option<Fd> = None;
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_RIGHTS {
                let count = ((*c).cmsg_len as usize - libc::CMSG_LEN(0) as usize) / core::mem::size_of::<c_int>();
                let p = libc::CMSG_DATA(c) as *const c_int;
                for i in 0..count {
                    let fd = Fd(ptr::read_unaligned(p.add(i)));
                    if got.is_none() {
                        got = Some(fd);
                    } // extra descriptors are closed by drop
                }
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
    }
    if got.is_none() && n > 0 {
        return Err(Errno(libc::EBADMSG));
    }
    Ok(got)
}

/// Restore what a child must not inherit from the shim: the blocked SIGCHLD and the
/// ignored SIGPIPE (both survive exec). Async-signal-safe.
unsafe fn reset_signals() {
    let mut set: libc::sigset_t = core::mem::zeroed();
    libc::sigemptyset(&mut set);
    libc::sigprocmask(libc::SIG_SETMASK, &set, ptr::null_mut());
    libc::signal(libc::SIGPIPE, libc::SIG_DFL);
}

/// fork + exec `argv` (PATH is searched when argv[0] has no slash) with the given
/// descriptors as stdin, stdout, stderr. The descriptors must not be 0, 1 or 2.
pub fn spawn(argv: &[CString], stdio: [c_int; 3]) -> Result<pid_t> {
    spawn_env(argv, stdio, None)
}

/// [`spawn`], with `env` ("NAME=VALUE") added to the child's environment.
pub fn spawn_env(argv: &[CString], stdio: [c_int; 3], env: Option<&CStr>) -> Result<pid_t> {
    let mut ptrs: Vec<*const c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    ptrs.push(ptr::null());
    let pid = cvt(unsafe { libc::fork() })?;
    if pid == 0 {
        unsafe {
            if let Some(e) = env {
                // The string outlives the exec (it is ours, in the child's copy of memory).
                libc::putenv(e.as_ptr() as *mut c_char);
            }
            reset_signals();
            for (i, &fd) in stdio.iter().enumerate() {
                libc::dup2(fd, i as c_int);
            }
            libc::execvp(ptrs[0], ptrs.as_ptr());
            let e = errno();
            let mut msg = Vec::with_capacity(256);
            msg.extend_from_slice(b"berth-shim: cannot execute ");
            msg.extend_from_slice(argv[0].to_bytes());
            msg.extend_from_slice(b": ");
            msg.extend_from_slice(CStr::from_ptr(libc::strerror(e)).to_bytes());
            msg.push(b'\n');
            libc::write(2, msg.as_ptr().cast(), msg.len());
            libc::_exit(127);
        }
    }
    Ok(pid)
}

/// waitpid that retries on EINTR. Returns (pid, status); pid 0 with WNOHANG and nothing to reap.
pub fn waitpid(pid: pid_t, flags: c_int) -> Result<(pid_t, c_int)> {
    loop {
        let mut st: c_int = 0;
        let r = unsafe { libc::waitpid(pid, &mut st, flags) };
        if r >= 0 {
            return Ok((r, st));
        }
        let e = last();
        if e.0 != libc::EINTR {
            return Err(e);
        }
    }
}

/// Reap every child that has already exited.
pub fn reap_all() {
    while let Ok((p, _)) = waitpid(-1, libc::WNOHANG) {
        if p <= 0 {
            break;
        }
    }
}

/// A wait status as a shell reports it: the exit code, or 128 + the signal.
pub fn exit_code(status: c_int) -> c_int {
    if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else if libc::WIFSIGNALED(status) {
        128 + libc::WTERMSIG(status)
    } else {
        255
    }
}

/// Format `n` in decimal into `buf`, returning the digits.
pub fn fmt_int(n: i64, buf: &mut [u8; 24]) -> &[u8] {
    let neg = n < 0;
    let mut v = n.unsigned_abs();
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    if neg {
        i -= 1;
        buf[i] = b'-';
    }
    &buf[i..]
}

pub struct Epoll(Fd);

impl Epoll {
    pub fn new() -> Result<Epoll> {
        Ok(Epoll(Fd(cvt(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })?)))
    }
    fn ctl(&self, op: c_int, fd: c_int, events: u32, token: u64) -> Result<()> {
        let mut ev = libc::epoll_event { events, u64: token };
        cvt(unsafe { libc::epoll_ctl(self.0.raw(), op, fd, &mut ev) }).map(|_| ())
    }
    pub fn add(&self, fd: c_int, events: u32, token: u64) -> Result<()> {
        self.ctl(libc::EPOLL_CTL_ADD, fd, events, token)
    }
    pub fn modify(&self, fd: c_int, events: u32, token: u64) -> Result<()> {
        self.ctl(libc::EPOLL_CTL_MOD, fd, events, token)
    }
    pub fn del(&self, fd: c_int) {
        let _ = self.ctl(libc::EPOLL_CTL_DEL, fd, 0, 0);
    }
    /// Wait without a timeout; EINTR yields zero events.
    pub fn wait(&self, events: &mut [libc::epoll_event]) -> usize {
        let n = unsafe { libc::epoll_wait(self.0.raw(), events.as_mut_ptr(), events.len() as c_int, -1) };
        if n < 0 {
            0
        } else {
            n as usize
        }
    }
}
