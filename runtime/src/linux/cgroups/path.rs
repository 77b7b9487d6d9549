//! `linux.cgroupsPath` forms: absolute ("/a/b"), relative to the runtime's own cgroup
//! ("a/b"), and systemd's "slice:prefix:name", which is mapped onto cgroupfs as
//! systemd would lay it out (with `--systemd-cgroup`; berth does not talk to systemd).

use crate::error::{Error, Result};

/// The default, when the config names no path: one directory per container under /berth.
pub fn default_path(id: &str) -> String {
    format!("/berth/{id}")
}

pub fn resolve(cgroups_path: Option<&str>, id: &str, systemd: bool) -> Result<String> {
    let p = cgroups_path.unwrap_or("");
    if systemd || looks_like_systemd(p) {
        if p.is_empty() {
            return Ok(format!("/system.slice/berth-{id}.scope"));
        }
        return systemd_to_fs(p);
    }
    if p.is_empty() {
        return Ok(default_path(id));
    }
    Ok(p.to_string())
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
    let base = slice
        .strip_suffix(".slice")
        .ok_or_else(|| Error::new(format!("invalid systemd slice {slice:?}")))?;
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
        assert_eq!(resolve(Some("/a/b"), "x", false).unwrap(), "/a/b");
        assert_eq!(resolve(Some("rel"), "x", false).unwrap(), "rel");
        assert_eq!(resolve(None, "x", false).unwrap(), "/berth/x");
    }
}
