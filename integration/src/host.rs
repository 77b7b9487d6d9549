//! Looking at (and, for our own test dirs only, changing) the host side: mounts,
//! cgroups, file identities, namespaces.

use berth_spec::mountinfo::unescape;
use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// One line of /proc/PID/mountinfo.
#[derive(Debug, Clone)]
pub struct MountInfo {
    pub root: String,
    pub mount_point: String,
    pub options: String,
    /// Optional fields: "shared:N", "master:N", ...
    pub optional: Vec<String>,
    pub fs_type: String,
    pub source: String,
    pub super_options: String,
}

pub fn parse_mountinfo(text: &str) -> Vec<MountInfo> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            let dash = f.iter().position(|x| *x == "-")?;
            if dash < 6 || f.len() < dash + 4 {
                return None;
            }
            Some(MountInfo {
                root: unescape(f[3]),
                mount_point: unescape(f[4]),
                options: f[5].to_string(),
                optional: f[6..dash].iter().map(|s| s.to_string()).collect(),
                fs_type: f[dash + 1].to_string(),
                source: unescape(f[dash + 2]),
                super_options: f[dash + 3].to_string(),
            })
        })
        .collect()
}

pub fn mountinfo(pid: &str) -> Vec<MountInfo> {
    parse_mountinfo(&std::fs::read_to_string(format!("/proc/{pid}/mountinfo")).unwrap_or_default())
}

/// Mount points in this (the host's) mount namespace at or under `dir`.
pub fn mounts_under(dir: &Path) -> Vec<String> {
    let d = dir.to_string_lossy().trim_end_matches('/').to_string();
    mountinfo("self").into_iter().map(|m| m.mount_point).filter(|p| *p == d || p.starts_with(&format!("{d}/"))).collect()
}

fn cstr(p: &Path) -> CString {
    CString::new(p.as_os_str().as_bytes()).expect("path without NUL")
}

fn check(r: libc::c_int, what: String) -> io::Result<()> {
    if r == 0 {
        Ok(())
    } else {
        let e = io::Error::last_os_error();
        Err(io::Error::new(e.kind(), format!("{what}: {e}")))
    }
}

/// mount -t tmpfs tmpfs DIR (a mount the test creates and later removes itself).
pub fn mount_tmpfs(dir: &Path) -> io::Result<()> {
    let t = CString::new("tmpfs").unwrap();
    // SAFETY: mount(2) with valid C strings and no data.
    check(unsafe { libc::mount(t.as_ptr(), cstr(dir).as_ptr(), t.as_ptr(), 0, std::ptr::null()) }, format!("mount tmpfs on {}", dir.display()))
}

/// mount --make-shared DIR
pub fn make_shared(dir: &Path) -> io::Result<()> {
    // SAFETY: mount(2) changing propagation only.
    check(
        unsafe { libc::mount(std::ptr::null(), cstr(dir).as_ptr(), std::ptr::null(), libc::MS_SHARED, std::ptr::null()) },
        format!("make {} shared", dir.display()),
    )
}

/// umount -l DIR
pub fn umount(dir: &Path) -> io::Result<()> {
    // SAFETY: umount2(2) with a valid C string.
    check(unsafe { libc::umount2(cstr(dir).as_ptr(), libc::MNT_DETACH) }, format!("umount {}", dir.display()))
}

/// The cgroup directories that exist for `cgroups_path` (a container's
/// linux.cgroupsPath, absolute) in any hierarchy under /sys/fs/cgroup: v1 controllers,
/// the named systemd hierarchy and the unified (v2) one.
pub fn cgroup_dirs(cgroups_path: &str) -> Vec<PathBuf> {
    let rel = cgroups_path.trim_start_matches('/');
    let mut out = Vec::new();
    let root = Path::new("/sys/fs/cgroup");
    if root.join(rel).join("cgroup.procs").exists() {
        out.push(root.join(rel)); // pure cgroup v2
    }
    if let Ok(rd) = std::fs::read_dir(root) {
        for e in rd.flatten() {
            let p = e.path().join(rel);
            if p.join("cgroup.procs").exists() {
                out.push(p);
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

/// Every cgroup directory, in every hierarchy mounted under /sys/fs/cgroup (v1
/// controllers, named ones, the unified cgroup2), whose name contains `needle`.
pub fn cgroup_dirs_named(needle: &str) -> Vec<PathBuf> {
    fn walk(d: &Path, needle: &str, depth: usize, out: &mut Vec<PathBuf>) {
        let Ok(rd) = std::fs::read_dir(d) else { return };
        // DirEntry::file_type does not follow links: a "cpu" link to "cpu,cpuacct" is
        // not walked twice.
        for e in rd.flatten().filter(|e| e.file_type().is_ok_and(|t| t.is_dir())) {
            let p = e.path();
            if e.file_name().to_string_lossy().contains(needle) {
                out.push(p.clone());
            }
            if depth < 8 {
                walk(&p, needle, depth + 1, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(Path::new("/sys/fs/cgroup"), needle, 0, &mut out);
    out.sort();
    out
}

/// (device, inode) of a file, following symlinks (and /proc magic links).
pub fn identity(p: &Path) -> io::Result<(u64, u64)> {
    let m = std::fs::metadata(p)?;
    Ok((m.dev(), m.ino()))
}

/// The namespace link of `pid` ("self" for the test process), e.g. "net:[4026531833]".
pub fn ns_link(pid: &str, ns: &str) -> String {
    std::fs::read_link(format!("/proc/{pid}/ns/{ns}")).map(|p| p.to_string_lossy().into_owned()).unwrap_or_default()
}

/// Opens `path` read-only *without* O_CLOEXEC, so that every process this test binary
/// starts inherits it (until [`close`]). For the fd-leak tests.
pub fn open_inheritable(path: &Path) -> io::Result<i32> {
    // SAFETY: open(2) with a valid C string; the fd is ours to close.
    let fd = unsafe { libc::open(cstr(path).as_ptr(), libc::O_RDONLY) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(fd)
}

pub fn close(fd: i32) {
    // SAFETY: closes an fd this harness opened.
    unsafe { libc::close(fd) };
}

/// The fds of `pid` and what they point at, e.g. (3, "/tmp/x").
pub fn fds_of(pid: i32) -> Vec<(i32, String)> {
    let mut v: Vec<(i32, String)> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| {
            d.flatten()
                .filter_map(|e| {
                    let n: i32 = e.file_name().to_str()?.parse().ok()?;
                    let t = std::fs::read_link(e.path()).map(|p| p.to_string_lossy().into_owned()).unwrap_or_default();
                    Some((n, t))
                })
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// A field of /proc/PID/status, e.g. status_field(pid, "NoNewPrivs").
pub fn status_field(pid: i32, key: &str) -> Option<String> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines().find_map(|l| l.strip_prefix(&format!("{key}:")).map(|v| v.trim().to_string()))
}

/// Receives one fd sent with SCM_RIGHTS on a connected unix socket (as a runtime sends
/// the pty master to --console-socket). Returns the fd and the bytes sent with it.
pub fn recv_fd(sock: i32) -> io::Result<(std::os::fd::OwnedFd, Vec<u8>)> {
    use std::os::fd::FromRawFd;
    let mut buf = [0u8; 4096];
    let mut iov = libc::iovec { iov_base: buf.as_mut_ptr() as *mut libc::c_void, iov_len: buf.len() };
    // Room for one cmsghdr carrying a few fds, aligned for cmsghdr.
    let mut cbuf = [0u64; 16];
    // SAFETY: msghdr is plain data; we point it at buffers that outlive recvmsg.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf.as_mut_ptr() as *mut libc::c_void;
    msg.msg_controllen = std::mem::size_of_val(&cbuf) as _;
    // SAFETY: recvmsg into the buffers set up above.
    let n = unsafe { libc::recvmsg(sock, &mut msg, libc::MSG_CMSG_CLOEXEC) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: walking the control messages the kernel filled in, within msg_controllen.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_RIGHTS {
                let fd = std::ptr::read_unaligned(libc::CMSG_DATA(c) as *const i32);
                return Ok((std::os::fd::OwnedFd::from_raw_fd(fd), buf[..n as usize].to_vec()));
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
    }
    Err(io::Error::new(io::ErrorKind::InvalidData, "no fd in the message"))
}

/// Reads from `fd` until EOF or EIO (a pty master after the last slave closes), or until
/// `timeout` passes.
pub fn read_until_closed(fd: i32, timeout: std::time::Duration) -> Vec<u8> {
    let deadline = std::time::Instant::now() + timeout;
    let mut out = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return out;
        }
        let mut p = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
        // SAFETY: poll on one pollfd.
        let r = unsafe { libc::poll(&mut p, 1, left.as_millis().min(1000) as i32) };
        if r <= 0 {
            continue;
        }
        let mut buf = [0u8; 4096];
        // SAFETY: read into a local buffer.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr() as *mut libc::c_void, buf.len()) };
        if n <= 0 {
            return out;
        }
        out.extend_from_slice(&buf[..n as usize]);
    }
}
