//! A seccomp agent for tests of SCMP_ACT_NOTIFY: listens on a unix socket, receives the
//! runtime's process-state message with the listener fd (SCM_RIGHTS), and answers every
//! notification with one errno, so a test sees both what the runtime sent and that the
//! agent, not the kernel, decided the syscall.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

/// struct seccomp_notif (linux/seccomp.h): id, pid, flags, then struct seccomp_data.
#[repr(C)]
#[derive(Default)]
struct Notif {
    id: u64,
    pid: u32,
    flags: u32,
    nr: i32,
    arch: u32,
    ip: u64,
    args: [u64; 6],
}

/// struct seccomp_notif_resp.
#[repr(C)]
struct NotifResp {
    id: u64,
    val: i64,
    error: i32,
    flags: u32,
}

// _IOWR('!', 0, struct seccomp_notif) and _IOWR('!', 1, struct seccomp_notif_resp).
const NOTIF_RECV: libc::c_ulong = 0xc050_2100;
const NOTIF_SEND: libc::c_ulong = 0xc018_2101;

/// What the agent saw, once the listener is closed (every filtered process is gone).
#[derive(Debug)]
pub struct Seen {
    /// The runtime's message (ContainerProcessState) of each connection.
    pub messages: Vec<serde_json::Value>,
    /// The syscall numbers notified.
    pub syscalls: Vec<i32>,
}

pub struct Agent {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Seen>>,
}

impl Agent {
    /// Listens at `path`; answers every notified syscall with `-errno`.
    pub fn start(path: &Path, errno: i32) -> Agent {
        let listener = UnixListener::bind(path).expect("bind the agent's socket");
        listener.set_nonblocking(true).expect("nonblocking");
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let thread = std::thread::spawn(move || serve(listener, errno, &stop2));
        Agent { stop, thread: Some(thread) }
    }

    /// Stops waiting for new connections and listeners, and returns what was seen.
    pub fn finish(mut self) -> Seen {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.take().expect("running").join().expect("agent thread")
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(listener: UnixListener, errno: i32, stop: &AtomicBool) -> Seen {
    let mut seen = Seen { messages: Vec::new(), syscalls: Vec::new() };
    let mut fds: Vec<OwnedFd> = Vec::new();
    while !stop.load(Ordering::SeqCst) || !fds.is_empty() {
        if let Ok((conn, _)) = listener.accept() {
            conn.set_nonblocking(false).expect("blocking");
            match recv_with_fd(conn.as_raw_fd()) {
                Ok((msg, fd)) => {
                    seen.messages.push(serde_json::from_slice(&msg).unwrap_or_else(|e| serde_json::json!({"unparsable": e.to_string()})));
                    fds.extend(fd);
                }
                Err(e) => seen.messages.push(serde_json::json!({"error": e.to_string()})),
            }
        }
        let mut polls: Vec<libc::pollfd> = fds.iter().map(|f| libc::pollfd { fd: f.as_raw_fd(), events: libc::POLLIN, revents: 0 }).collect();
        // SAFETY: poll on our own array of pollfds.
        unsafe { libc::poll(polls.as_mut_ptr(), polls.len() as libc::nfds_t, 20) };
        let mut closed = Vec::new();
        for (i, p) in polls.iter().enumerate() {
            if p.revents & libc::POLLIN != 0 {
                if let Some(nr) = answer(p.fd, errno) {
                    seen.syscalls.push(nr);
                }
            } else if p.revents & (libc::POLLHUP | libc::POLLERR) != 0 {
                closed.push(i);
            }
        }
        for i in closed.into_iter().rev() {
            fds.remove(i);
        }
        if stop.load(Ordering::SeqCst) && fds.is_empty() {
            break;
        }
    }
    seen
}

/// Receives one notification and answers it with `-errno`; its syscall number.
fn answer(fd: RawFd, errno: i32) -> Option<i32> {
    let mut n = Notif::default();
    // SAFETY: NOTIF_RECV fills a struct seccomp_notif we own.
    if unsafe { libc::ioctl(fd, NOTIF_RECV, &mut n as *mut Notif) } != 0 {
        return None; // the process went away first
    }
    let resp = NotifResp { id: n.id, val: 0, error: -errno, flags: 0 };
    // SAFETY: NOTIF_SEND reads the response we own.
    unsafe { libc::ioctl(fd, NOTIF_SEND, &resp as *const NotifResp) };
    Some(n.nr)
}

/// One message and the fd that came with it.
fn recv_with_fd(sock: RawFd) -> io::Result<(Vec<u8>, Option<OwnedFd>)> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut iov = libc::iovec { iov_base: buf.as_mut_ptr() as *mut libc::c_void, iov_len: buf.len() };
    let mut control = [0u64; 8];
    // SAFETY: a zeroed msghdr pointing at our buffers.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr() as *mut libc::c_void;
    msg.msg_controllen = std::mem::size_of_val(&control);
    // SAFETY: recvmsg into the buffers msg points at.
    let n = unsafe { libc::recvmsg(sock, &mut msg, libc::MSG_CMSG_CLOEXEC) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    buf.truncate(n as usize);
    let mut fd = None;
    // SAFETY: walking the control messages the kernel wrote into `control`.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_RIGHTS {
                fd = Some(OwnedFd::from_raw_fd(std::ptr::read_unaligned(libc::CMSG_DATA(c) as *const RawFd)));
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
    }
    Ok((buf, fd))
}
