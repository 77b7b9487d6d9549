//! Idmapped bind mounts (a mount's `uidMappings`/`gidMappings`, `idmap`, `ridmap`): the
//! source's files appear with their ids mapped, an id `containerID + n` on disk showing
//! as `hostID + n`. The kernel takes the mapping only as a user namespace, only on a
//! mount nobody can see yet, and only from a caller privileged over the source's
//! filesystem; so the parent (in the host's user namespace) clones each source into a
//! detached mount and sets the mapping on it, and the init attaches it in the container
//! (rootfs.rs).

use super::{mount_api, mounts, namespaces};
use crate::error::{Context, Error, Result};
use berth_spec::{IdMapping, Mount, Spec};
use nix::mount::MsFlags;
use std::os::fd::{AsFd, OwnedFd};

fn describe(i: usize, m: &Mount) -> String {
    format!("mounts[{i}] ({} on {})", m.typ.as_deref().unwrap_or("bind"), m.destination)
}

fn is_idmapped(m: &Mount, opts: &mounts::MountOptions) -> bool {
    opts.idmap.is_some() || !m.uid_mappings.is_empty() || !m.gid_mappings.is_empty()
}

/// The runtime spec's rules, checked before anything is made.
pub fn validate(spec: &Spec) -> Result<()> {
    let userns = spec.namespace("user").is_some();
    for (i, m) in spec.mounts.iter().enumerate() {
        let opts = mounts::parse(&m.options);
        if !is_idmapped(m, &opts) {
            continue;
        }
        let name = describe(i, m);
        if m.uid_mappings.is_empty() != m.gid_mappings.is_empty() {
            crate::bail!("{name}: uidMappings and gidMappings must be given together");
        }
        if !(opts.is_bind() || m.typ.as_deref() == Some("bind")) {
            crate::bail!("{name}: idmapped mounts (uidMappings, gidMappings, idmap, ridmap) are only supported for bind mounts");
        }
        if m.uid_mappings.is_empty() && !userns {
            crate::bail!("{name}: idmap without uidMappings and gidMappings takes the container's user namespace mapping, and there is no user namespace in linux.namespaces");
        }
    }
    Ok(())
}

/// The detached, idmapped clones of the sources, by index in `spec.mounts`. A mount
/// without mappings of its own takes the container's user namespace: joined by path, or
/// the init's (`init`, its maps written).
pub fn prepare(spec: &Spec, init: i32) -> Result<Vec<(usize, OwnedFd)>> {
    let mut out = Vec::new();
    for (i, m) in spec.mounts.iter().enumerate() {
        let opts = mounts::parse(&m.options);
        if !is_idmapped(m, &opts) {
            continue;
        }
        let name = describe(i, m);
        let userns = if m.uid_mappings.is_empty() {
            match spec.namespace("user").and_then(|n| n.path.as_deref()) {
                Some(p) => namespaces::open(p)?,
                None => namespaces::open(&format!("/proc/{init}/ns/user"))?,
            }
        } else {
            userns_with(&m.uid_mappings, &m.gid_mappings).with_ctx(|| format!("{name}: user namespace for uidMappings/gidMappings"))?
        };
        let source = m.source.as_deref().ok_or_else(|| Error::new(format!("{name}: bind mount needs a source")))?;
        let c_source = std::ffi::CString::new(source).map_err(|_| Error::new(format!("{name}: source contains NUL")))?;
        let tree = mount_api::clone_tree(&c_source, opts.flags.contains(MsFlags::MS_REC)).with_ctx(|| format!("{name}: open_tree {source}"))?;
        mount_api::set_attr(tree.as_fd(), libc::MOUNT_ATTR_IDMAP, 0, Some(userns.as_fd()), opts.idmap == Some(true))
            .with_ctx(|| format!("{name}: set the id mapping (mount_setattr MOUNT_ATTR_IDMAP)"))?;
        out.push((i, tree));
    }
    Ok(out)
}

/// A user namespace with these maps: made by a helper child that only waits, whose
/// namespace outlives it through the returned fd.
fn userns_with(uid: &[IdMapping], gid: &[IdMapping]) -> Result<OwnedFd> {
    let pid = crate::spawn::raw_clone(nix::sched::CloneFlags::CLONE_NEWUSER)?;
    if pid == 0 {
        wait_to_be_killed();
    }
    let res = (|| {
        crate::spawn::write_id_map(pid, "uid_map", uid)?;
        crate::spawn::write_id_map(pid, "gid_map", gid)?;
        namespaces::open(&format!("/proc/{pid}/ns/user"))
    })();
    let p = nix::unistd::Pid::from_raw(pid);
    let _ = nix::sys::signal::kill(p, nix::sys::signal::Signal::SIGKILL);
    let _ = nix::sys::wait::waitpid(p, None);
    res
}

/// The helper child: between clone and its end only async-signal-safe calls.
fn wait_to_be_killed() -> ! {
    crate::spawn::die_with_parent();
    loop {
        // SAFETY: pause takes no arguments; it returns only on a handled signal.
        unsafe { libc::pause() };
    }
}
