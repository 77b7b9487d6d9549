//! The parent-init protocol: length-prefixed JSON messages over a socketpair. The parent
//! sends the init its setup; the init asks for the runtime-namespace hooks at the
//! point the spec puts them and reports ready or an error.

use crate::error::{Context, Error, Result};
use serde::{Deserialize, Serialize};
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum InitMode {
    /// A new container: make namespaces and the rootfs, then wait for `start`.
    Create,
    /// `berth exec`: join a running container's namespaces and exec at once.
    Exec,
}

/// What the init needs to set up the container (or the exec'd process).
#[derive(Debug, Serialize, Deserialize)]
pub struct InitConfig {
    pub mode: InitMode,
    pub id: String,
    pub bundle: String,
    pub rootfs: String,
    pub spec: berth_spec::Spec,
    pub cgroup: crate::linux::cgroups::CgroupPaths,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    pub preserve_fds: u32,
    /// The exec fifo fd the init waits on before exec (inherited; create only).
    pub fifo_fd: Option<i32>,
    /// `start` comes right away (`run`): the init need not shrink itself to wait.
    pub starts_now: bool,
    /// A connected console socket to send the pty master on (inherited), with a terminal.
    pub console_fd: Option<i32>,
    /// Whether the parent runs prestart/createRuntime hooks (then the init pauses for them).
    pub has_runtime_hooks: bool,
    /// Indexes in `spec.mounts` of the idmapped mounts (linux/idmap.rs) whose detached
    /// mounts follow this message, one fd each, in this order.
    #[serde(default)]
    pub idmapped_mounts: Vec<usize>,
    /// Exec into a container without a mount namespace: the root to chroot into (the
    /// init's `/proc/PID/root`), since there is no mount namespace to join for it.
    #[serde(default)]
    pub exec_root: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Msg {
    Config(Box<InitConfig>),
    /// Init -> parent: mounts are done; run prestart/createRuntime hooks now.
    RunHooks,
    /// Parent -> init: hooks ran.
    HooksDone,
    /// Init -> parent: the seccomp filter is loaded; its SCMP_ACT_NOTIFY listener fd
    /// follows ([`send_fd`]), for the parent to hand to the agent.
    SeccompListener,
    /// Parent -> init: the agent has the listener.
    ListenerSent,
    /// Init -> parent: fully set up, waiting for start.
    Ready,
    Error {
        msg: String,
    },
}

pub fn send(sock: &mut UnixStream, msg: &Msg) -> Result<()> {
    let body = serde_json::to_vec(msg).expect("messages serialize");
    let mut buf = Vec::with_capacity(body.len() + 4);
    buf.extend_from_slice(&(body.len() as u32).to_le_bytes());
    buf.extend_from_slice(&body);
    sock.write_all(&buf).ctx("sync: send")
}

/// Receives a message; Ok(None) when the other side closed the socket.
pub fn recv(sock: &mut UnixStream) -> Result<Option<Msg>> {
    let mut len = [0u8; 4];
    match sock.read_exact(&mut len) {
        Ok(()) => {}
        // The peer is gone (a reset: it exited without reading what we sent).
        Err(e) if matches!(e.kind(), std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::ConnectionReset) => return Ok(None),
        Err(e) => return Err(e).ctx("sync: receive"),
    }
    let n = u32::from_le_bytes(len) as usize;
    let mut body = vec![0u8; n];
    sock.read_exact(&mut body).ctx("sync: receive")?;
    serde_json::from_slice(&body).map(Some).map_err(|e| Error::new(format!("sync: bad message: {e}")))
}

/// Sends one fd (SCM_RIGHTS) with a single byte, after the message that announced it.
pub fn send_fd(sock: &UnixStream, fd: &impl AsRawFd) -> Result<()> {
    use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
    let fds = [fd.as_raw_fd()];
    let iov = [std::io::IoSlice::new(&[0u8])];
    sendmsg::<()>(sock.as_raw_fd(), &iov, &[ControlMessage::ScmRights(&fds)], MsgFlags::empty(), None).ctx("sync: send fd")?;
    Ok(())
}

/// Receives one fd sent by [`send_fd`]: reads its one byte only, so that the stream of
/// messages after it is left whole.
pub fn recv_fd(sock: &UnixStream) -> Result<OwnedFd> {
    crate::linux::tty::recv_fd_with(sock, &mut [0u8; 1], "sync: receive fd")
}
