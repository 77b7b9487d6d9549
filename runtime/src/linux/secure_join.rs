//! Resolving a path inside a root filesystem as if the root were `/`: `..` stops at the
//! root and symlinks (absolute or relative) are followed inside it, so a hostile rootfs
//! cannot point a mount destination at the host.

use crate::error::{Error, Result};
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

const MAX_SYMLINKS: usize = 255;

/// Returns `root` joined with `unsafe_path` resolved inside `root`. Components that do
/// not exist yet are kept as they are (the caller creates them).
pub fn secure_join(root: &Path, unsafe_path: &str) -> Result<PathBuf> {
    let mut rest: Vec<Vec<u8>> = split(unsafe_path.as_bytes());
    rest.reverse(); // a stack: the next component is last
    let mut resolved: Vec<Vec<u8>> = Vec::new();
    let mut links = 0;
    while let Some(comp) = rest.pop() {
        match comp.as_slice() {
            b"" | b"." => continue,
            b".." => {
                resolved.pop();
                continue;
            }
            _ => {}
        }
        let candidate = join(root, &resolved).join(OsStr::from_bytes(&comp));
        match std::fs::symlink_metadata(&candidate) {
            Ok(m) if m.file_type().is_symlink() => {
                links += 1;
                if links > MAX_SYMLINKS {
                    return Err(Error::new(format!("secure join {unsafe_path}: too many levels of symbolic links")));
                }
                let target = std::fs::read_link(&candidate)?;
                let t = target.as_os_str().as_bytes();
                if t.starts_with(b"/") {
                    resolved.clear();
                }
                let mut parts = split(t);
                parts.reverse();
                rest.extend(parts);
            }
            _ => resolved.push(comp),
        }
    }
    Ok(join(root, &resolved))
}

fn split(p: &[u8]) -> Vec<Vec<u8>> {
    p.split(|&b| b == b'/').map(|s| s.to_vec()).collect()
}

fn join(root: &Path, comps: &[Vec<u8>]) -> PathBuf {
    let mut p = root.to_path_buf();
    for c in comps {
        p.push(OsStr::from_bytes(c));
    }
    p
}

/// Whether `p` (already resolved) lies at or below `root`, lexically.
pub fn is_within(root: &Path, p: &Path) -> bool {
    let mut depth = 0i64;
    let Ok(rel) = p.strip_prefix(root) else { return false };
    for c in rel.components() {
        match c {
            Component::ParentDir => depth -= 1,
            Component::Normal(_) => depth += 1,
            _ => {}
        }
        if depth < 0 {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("berth-sj-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn dotdot_stops_at_the_root() {
        let r = tmp("dotdot");
        assert_eq!(secure_join(&r, "/../../etc/passwd").unwrap(), r.join("etc/passwd"));
        std::fs::remove_dir_all(&r).unwrap();
    }

    #[test]
    fn absolute_symlink_resolves_inside_the_root() {
        let r = tmp("abs");
        symlink("/tmp/hostdir", r.join("evil")).unwrap();
        assert_eq!(secure_join(&r, "/evil/x").unwrap(), r.join("tmp/hostdir/x"));
        std::fs::remove_dir_all(&r).unwrap();
    }

    #[test]
    fn relative_symlink_cannot_climb_out() {
        let r = tmp("rel");
        std::fs::create_dir(r.join("a")).unwrap();
        symlink("../../../../etc", r.join("a/up")).unwrap();
        assert_eq!(secure_join(&r, "a/up/shadow").unwrap(), r.join("etc/shadow"));
        std::fs::remove_dir_all(&r).unwrap();
    }

    #[test]
    fn symlink_loops_are_an_error() {
        let r = tmp("loop");
        symlink("/loop", r.join("loop")).unwrap();
        assert!(secure_join(&r, "/loop").is_err());
        std::fs::remove_dir_all(&r).unwrap();
    }
}
