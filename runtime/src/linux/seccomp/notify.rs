//! Handing a SCMP_ACT_NOTIFY listener to a seccomp agent, as runc does: connect to the
//! unix socket at `linux.seccomp.listenerPath` and send one message holding runc's
//! ContainerProcessState JSON, with the listener fd in SCM_RIGHTS.
//!
//! The agent's socket is a host path and the state carries the container process's pid as
//! the host sees it, so the sending belongs to the parent (`spawn.rs`), which receives the
//! listener from the init (or exec'd process) over the sync socket right after it loaded
//! the filter; the init waits until the agent has it.

use crate::error::{Context, Result};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;

/// runc's `ContainerProcessState`: `{"ociVersion","fds":["seccompFd"],"pid","metadata","state"}`,
/// `state` being the container's OCI state.
pub fn process_state(pid: i32, metadata: Option<&str>, state: serde_json::Value) -> serde_json::Value {
    let mut v = serde_json::json!({
        "ociVersion": berth_spec::OCI_VERSION,
        "fds": ["seccompFd"],
        "pid": pid,
        "state": state,
    });
    if let Some(m) = metadata.filter(|m| !m.is_empty()) {
        v["metadata"] = serde_json::json!(m);
    }
    v
}

/// Connects to the agent at `listener_path` and sends it `state` (see [`process_state`])
/// with the listener fd.
pub fn send_to_agent(listener_path: &str, state: &serde_json::Value, listener: RawFd) -> Result<()> {
    let sock = UnixStream::connect(listener_path).with_ctx(|| format!("connect to seccomp agent at {listener_path}"))?;
    send(&sock, state, listener).with_ctx(|| format!("send seccomp listener to {listener_path}"))
}

/// Sends `state` with the listener fd over a connected socket.
pub fn send(sock: &UnixStream, state: &serde_json::Value, listener: RawFd) -> Result<()> {
    use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
    let body = serde_json::to_vec(state).expect("JSON values serialize");
    let iov = [std::io::IoSlice::new(&body)];
    let fds = [listener];
    let cmsg = [ControlMessage::ScmRights(&fds)];
    let n = sendmsg::<()>(sock.as_raw_fd(), &iov, &cmsg, MsgFlags::empty(), None).ctx("sendmsg")?;
    if n != body.len() {
        return Err(crate::error::Error::new(format!("sendmsg: short write ({n} of {} bytes)", body.len())));
    }
    Ok(())
}
