//! The network namespace an engine runs in, and talking to published ports from it.
//!
//! The namespace is held by an fd only (no /run/netns name, no holder process): it goes
//! away, with the bridges, veths and iptables rules the engine made in it, when the fd
//! is closed and the last process in it has exited.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::time::{Duration, Instant};

pub struct NetNs {
    pub fd: OwnedFd,
    /// The namespace's inode: what `readlink /proc/self/ns/net` shows as `net:[INODE]`.
    pub inode: u64,
}

impl NetNs {
    /// A new network namespace with its loopback up.
    pub fn new() -> Result<NetNs, String> {
        let ns = NetNs::bare()?;
        let mut cmd = std::process::Command::new("ip");
        cmd.args(["link", "set", "lo", "up"]);
        super::cli::prepare(&mut cmd, Some(ns.fd.as_raw_fd()), Vec::new(), false);
        let out = crate::procs::output(&mut cmd).map_err(|e| format!("ip link set lo up: {e}"))?;
        if !out.status.success() {
            return Err(format!("ip link set lo up: {}", String::from_utf8_lossy(&out.stderr)));
        }
        Ok(ns)
    }

    /// A new network namespace, loopback still down: for a caller that runs `ip link set
    /// lo up` in it with its own process handling (the bench).
    pub fn bare() -> Result<NetNs, String> {
        let fd = std::thread::spawn(|| -> Result<OwnedFd, String> {
            // SAFETY: unshare affects only this short-lived thread.
            if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
                return Err(format!("unshare(CLONE_NEWNET): {}", std::io::Error::last_os_error()));
            }
            let f = std::fs::File::open("/proc/thread-self/ns/net").map_err(|e| format!("open /proc/thread-self/ns/net: {e}"))?;
            Ok(OwnedFd::from(f))
        })
        .join()
        .map_err(|_| "netns thread panicked".to_string())??;
        let inode = std::fs::metadata(format!("/proc/self/fd/{}", fd.as_raw_fd())).map_err(|e| e.to_string())?.ino();
        Ok(NetNs { fd, inode })
    }

    pub fn raw(&self) -> i32 {
        self.fd.as_raw_fd()
    }

    /// `net:[INODE]`, as a process in this namespace sees its /proc/self/ns/net.
    pub fn link(&self) -> String {
        format!("net:[{}]", self.inode)
    }

    /// Runs `f` on a thread that has entered this namespace.
    pub fn within<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        // SAFETY: dup of an fd we own; the thread owns the copy.
        let fd = unsafe { OwnedFd::from_raw_fd(libc::dup(self.fd.as_raw_fd())) };
        std::thread::spawn(move || {
            // SAFETY: setns on this thread only (network namespaces are per thread).
            let r = unsafe { libc::setns(fd.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(r, 0, "setns: {}", std::io::Error::last_os_error());
            f()
        })
        .join()
        .expect("thread in netns panicked")
    }

    /// `GET /` from `addr` seen from this namespace, retried until `timeout`; the
    /// response (status line, headers and body), or the last error.
    pub fn http_get(&self, addr: &str, timeout: Duration) -> Result<String, String> {
        let addr: SocketAddr = addr.parse().map_err(|e| format!("{addr}: {e}"))?;
        self.within(move || {
            let deadline = Instant::now() + timeout;
            let mut last = String::new();
            while Instant::now() < deadline {
                match get_once(addr) {
                    Ok(s) if s.starts_with("HTTP/") => return Ok(s),
                    Ok(s) => last = format!("not an HTTP response: {s:?}"),
                    Err(e) => last = e.to_string(),
                }
                std::thread::sleep(Duration::from_millis(200));
            }
            Err(format!("GET http://{addr}/ from the engine's netns: {last}"))
        })
    }
}

fn get_once(addr: SocketAddr) -> std::io::Result<String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(3)))?;
    s.write_all(b"GET / HTTP/1.0\r\nHost: e2e\r\n\r\n")?;
    let mut out = Vec::new();
    s.read_to_end(&mut out)?;
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// A TCP port on the engine's host side that nothing else uses (the namespace is ours).
pub fn port(n: u16) -> u16 {
    18000 + n
}
