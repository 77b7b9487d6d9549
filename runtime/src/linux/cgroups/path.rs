//! `linux.cgroupsPath` forms: absolute ("/a/b"), relative to the runtime's own cgroup
//! ("a/b"), and systemd's "slice:prefix:name": the scope unit `prefix-name.scope` in
//! that slice for the systemd driver, or the directory systemd would give it when a
//! cgroupfs driver is handed such a path.

use crate::error::{Error, Result};

/// The default, when the config names no path: one directory per container under /berth.
pub fn default_path(id: &str) -> String {
    format!("/berth/{id}")
}

/// The cgroupfs path (absolute, or relative to the runtime's own cgroup) for a cgroupfs driver.
pub fn resolve(cgroups_path: Option<&str>, id: &str) -> Result<String> {
    let p = cgroups_path.unwrap_or("");
    if looks_like_systemd(p) {
        return systemd_to_fs(p);
    }
    if p.is_empty() {
        return Ok(default_path(id));
    }
    Ok(p.to_string())
}

/// The systemd driver's unit for a cgroupsPath: its slice and its name.
#[derive(Debug, PartialEq, Eq)]
pub struct Unit {
    pub slice: String,
    pub name: String,
}

/// "system.slice:docker:abc" -> docker-abc.scope in system.slice; an empty path gives
/// berth-ID.scope in system.slice, as runc gives runc-ID.scope.
pub fn systemd_unit(cgroups_path: Option<&str>, id: &str) -> Result<Unit> {
    let p = cgroups_path.unwrap_or("");
    if p.is_empty() {
        return Ok(Unit { slice: "system.slice".into(), name: format!("berth-{id}.scope") });
    }
    let parts: Vec<&str> = p.split(':').collect();
    if parts.len() != 3 {
        return Err(Error::new(format!("linux.cgroupsPath: expected slice:prefix:name for the systemd cgroup driver, got {p:?}")));
    }
    let (slice, prefix, name) = (parts[0], parts[1], parts[2]);
    let slice = if slice.is_empty() { "system.slice" } else { slice };
    expand_slice(slice).map_err(|e| Error::new(format!("linux.cgroupsPath: {e}")))?;
    if name.is_empty() || name.contains('/') {
        return Err(Error::new(format!("linux.cgroupsPath: invalid unit name {name:?} in {p:?}")));
    }
    if name.ends_with(".slice") {
        return Err(Error::new(format!(
            "linux.cgroupsPath: a container in the slice unit {name:?} is not supported by berth: name a scope (slice:prefix:name)"
        )));
    }
    let name = if prefix.is_empty() { format!("{name}.scope") } else { format!("{prefix}-{name}.scope") };
    Ok(Unit { slice: slice.to_string(), name })
}

/// The cgroupfs path systemd gives `unit` ("/system.slice/docker-abc.scope").
pub fn unit_fs_path(unit: &Unit) -> Result<String> {
    Ok(format!("{}/{}", expand_slice(&unit.slice)?, unit.name))
}

fn looks_like_systemd(p: &str) -> bool {
    !p.starts_with('/') && p.split(':').count() == 3
}

/// "system.slice:docker:abc" -> "/system.slice/docker-abc.scope";
/// "a-b.slice:p:n" -> "/a.slice/a-b.slice/p-n.scope".
pub fn systemd_to_fs(p: &str) -> Result<String> {
    let parts: Vec<&str> = p.split(':').collect();
    if parts.len() != 3 {
        return Err(Error::new(format!("expected cgroupsPath of the form slice:prefix:name, got {p:?}")));
    }
    let (slice, prefix, name) = (parts[0], parts[1], parts[2]);
    let mut out = expand_slice(if slice.is_empty() { "system.slice" } else { slice })?;
    let unit = if name.ends_with(".slice") {
        return Ok(format!("{out}/{}", expand_slice(name)?.rsplit('/').next().unwrap_or(name)));
    } else if prefix.is_empty() {
        format!("{name}.scope")
    } else {
        format!("{prefix}-{name}.scope")
    };
    out.push('/');
    out.push_str(&unit);
    Ok(out)
}

/// "a-b-c.slice" -> "/a.slice/a-b.slice/a-b-c.slice"; "-.slice" is the root.
fn expand_slice(slice: &str) -> Result<String> {
    let base = slice.strip_suffix(".slice").ok_or_else(|| Error::new(format!("invalid systemd slice {slice:?}")))?;
    if base == "-" {
        return Ok(String::new());
    }
    if base.contains('/') || base.starts_with('-') || base.ends_with('-') || base.contains("--") {
        return Err(Error::new(format!("invalid systemd slice {slice:?}")));
    }
    let mut out = String::new();
    let mut acc = String::new();
    for part in base.split('-') {
        if !acc.is_empty() {
            acc.push('-');
        }
        acc.push_str(part);
        out.push('/');
        out.push_str(&acc);
        out.push_str(".slice");
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn systemd_paths_map_to_cgroupfs() {
        assert_eq!(systemd_to_fs("system.slice:docker:abc").unwrap(), "/system.slice/docker-abc.scope");
        assert_eq!(systemd_to_fs("machine-x.slice:libpod:1").unwrap(), "/machine.slice/machine-x.slice/libpod-1.scope");
        assert_eq!(systemd_to_fs("-.slice:p:n").unwrap(), "/p-n.scope");
        assert!(systemd_to_fs("bad:x").is_err());
    }

    #[test]
    fn plain_paths_pass_through_and_default_is_per_container() {
        assert_eq!(resolve(Some("/a/b"), "x").unwrap(), "/a/b");
        assert_eq!(resolve(Some("rel"), "x").unwrap(), "rel");
        assert_eq!(resolve(None, "x").unwrap(), "/berth/x");
        assert_eq!(resolve(Some("system.slice:p:n"), "x").unwrap(), "/system.slice/p-n.scope");
    }

    #[test]
    fn the_systemd_driver_names_a_scope_in_a_slice() {
        let u = systemd_unit(Some("machine-x.slice:libpod:1"), "id").unwrap();
        assert_eq!(u, Unit { slice: "machine-x.slice".into(), name: "libpod-1.scope".into() });
        assert_eq!(unit_fs_path(&u).unwrap(), "/machine.slice/machine-x.slice/libpod-1.scope");
        assert_eq!(systemd_unit(Some(":p:n"), "id").unwrap().slice, "system.slice");
        assert_eq!(systemd_unit(Some("s.slice::n"), "id").unwrap().name, "n.scope");
        assert_eq!(systemd_unit(None, "c1").unwrap().name, "berth-c1.scope");
        assert!(systemd_unit(Some("/abs/path"), "id").unwrap_err().msg().contains("slice:prefix:name"));
        assert!(systemd_unit(Some("bad:p:n"), "id").is_err());
        assert!(systemd_unit(Some("s.slice:p:k.slice"), "id").unwrap_err().msg().contains("not supported"));
    }
}
