//! Namespace types as the config names them, their clone flags and /proc names.

use crate::error::{Context, Result};
use nix::sched::CloneFlags;
use std::os::fd::OwnedFd;

pub fn clone_flag(typ: &str) -> CloneFlags {
    match typ {
        "pid" => CloneFlags::CLONE_NEWPID,
        "network" => CloneFlags::CLONE_NEWNET,
        "mount" => CloneFlags::CLONE_NEWNS,
        "ipc" => CloneFlags::CLONE_NEWIPC,
        "uts" => CloneFlags::CLONE_NEWUTS,
        "user" => CloneFlags::CLONE_NEWUSER,
        "cgroup" => CloneFlags::CLONE_NEWCGROUP,
        "time" => CloneFlags::from_bits_retain(libc::CLONE_NEWTIME),
        _ => CloneFlags::empty(),
    }
}

/// The name under /proc/<pid>/ns/.
pub fn proc_name(typ: &str) -> &'static str {
    match typ {
        "pid" => "pid",
        "network" => "net",
        "mount" => "mnt",
        "ipc" => "ipc",
        "uts" => "uts",
        "user" => "user",
        "cgroup" => "cgroup",
        "time" => "time",
        _ => "",
    }
}

pub fn open(path: &str) -> Result<OwnedFd> {
    nix::fcntl::open(path, nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC, nix::sys::stat::Mode::empty())
        .with_ctx(|| format!("open namespace {path}"))
}

pub fn join(fd: &OwnedFd, typ: &str, path: &str) -> Result<()> {
    nix::sched::setns(fd, clone_flag(typ)).with_ctx(|| format!("join {typ} namespace {path}"))
}

/// Order for joining: the user namespace first, so the others are joined with its
/// privileges; the mount namespace last, as later paths may not resolve after it.
pub fn join_order(typ: &str) -> u8 {
    match typ {
        "user" => 0,
        "mount" => 2,
        _ => 1,
    }
}
