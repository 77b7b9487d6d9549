//! `linux.sysctl`: only namespaced keys are allowed, and only when the container has the
//! namespace they belong to (as runc checks), so a container cannot change the host.

use crate::error::{Context, Error, Result};
use berth_spec::Spec;

pub fn validate(spec: &Spec) -> Result<()> {
    let Some(linux) = &spec.linux else { return Ok(()) };
    let has = |t: &str| spec.namespace(t).is_some();
    for key in linux.sysctl.keys() {
        let ok = if key.starts_with("net.") {
            has("network")
        } else if key.starts_with("kernel.msg") || key.starts_with("kernel.shm") || key == "kernel.sem" || key.starts_with("fs.mqueue.") {
            has("ipc")
        } else if key == "kernel.hostname" || key == "kernel.domainname" {
            has("uts")
        } else {
            return Err(Error::new(format!("linux.sysctl: {key:?} is not a namespaced sysctl and cannot be set for a container")));
        };
        if !ok {
            return Err(Error::new(format!("linux.sysctl: {key:?} needs the container to have its own namespace for it")));
        }
    }
    Ok(())
}

/// Writes the values; runs after pivot_root, with the container's /proc mounted.
pub fn apply(spec: &Spec) -> Result<()> {
    let Some(linux) = &spec.linux else { return Ok(()) };
    for (k, v) in &linux.sysctl {
        let path = format!("/proc/sys/{}", k.replace('.', "/"));
        std::fs::write(&path, v).with_ctx(|| format!("linux.sysctl: write {k}"))?;
    }
    Ok(())
}
