//! Resolving a path inside a root filesystem as if the root were `/`: `..` stops at the
//! root and symlinks, absolute or relative, are followed inside it, so a hostile rootfs
//! cannot point a mount destination, a COPY target or an /etc/passwd lookup at the host.
//! One walk, shared by the runtime (mount destinations, before anything in the container
//! runs) and the builder (COPY/ADD between containers, user lookups). It is lexical:
//! callers that act on the result while the rootfs may change open the last component
//! with `O_NOFOLLOW` or pin it.

use std::ffi::OsStr;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// As many links as one resolution may follow (filepath-securejoin's limit).
const MAX_SYMLINKS: usize = 255;

/// `root` joined with `path` resolved inside `root`. Components that do not exist are
/// kept as written (the caller creates them). With `follow_last` false a symlink in the
/// last component is not followed (the caller replaces it or opens it with O_NOFOLLOW).
pub fn secure_join(root: &Path, path: &str, follow_last: bool) -> io::Result<PathBuf> {
    let mut rest: Vec<Vec<u8>> = path.as_bytes().split(|&b| b == b'/').rev().map(<[u8]>::to_vec).collect();
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
        let is_last = rest.iter().all(|c| c.is_empty() || c == b".");
        let candidate = join(root, &resolved).join(OsStr::from_bytes(&comp));
        match std::fs::symlink_metadata(&candidate) {
            Ok(m) if m.file_type().is_symlink() && (follow_last || !is_last) => {
                links += 1;
                if links > MAX_SYMLINKS {
                    return Err(io::Error::other(format!("{path}: too many levels of symbolic links")));
                }
                let target = std::fs::read_link(&candidate)?;
                let t = target.as_os_str().as_bytes();
                if t.starts_with(b"/") {
                    resolved.clear();
                }
                rest.extend(t.split(|&b| b == b'/').rev().map(<[u8]>::to_vec));
            }
            _ => resolved.push(comp),
        }
    }
    Ok(join(root, &resolved))
}

/// An absolute, lexically clean path (`a/../b` -> `/b`, `..` stops at `/`): how an image
/// or a Dockerfile path is read relative to the root.
pub fn clean_abs(p: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for seg in p.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            s => parts.push(s),
        }
    }
    format!("/{}", parts.join("/"))
}

fn join(root: &Path, comps: &[Vec<u8>]) -> PathBuf {
    let mut p = root.to_path_buf();
    for c in comps {
        p.push(OsStr::from_bytes(c));
    }
    p
}

/// The contents of the regular file at `inside` in the rootfs (resolved by
/// [`secure_join`]); `Ok(None)` if there is none (missing, a directory, a component that
/// is not a directory).
pub fn read_in_rootfs(root: &Path, inside: &str) -> io::Result<Option<Vec<u8>>> {
    let p = secure_join(root, inside, true)?;
    match std::fs::metadata(&p) {
        Ok(md) if md.is_file() => std::fs::read(&p).map(Some),
        Ok(_) => Ok(None),
        Err(e) if matches!(e.kind(), io::ErrorKind::NotFound | io::ErrorKind::NotADirectory) => Ok(None),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("berth-rp-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn clean_abs_is_lexical() {
        assert_eq!(clean_abs(""), "/");
        assert_eq!(clean_abs("app/../x"), "/x");
        assert_eq!(clean_abs("/../../a/./b/"), "/a/b");
    }

    #[test]
    fn dotdot_stops_at_the_root() {
        let r = tmp("dotdot");
        assert_eq!(secure_join(&r, "/../../etc/passwd", true).unwrap(), r.join("etc/passwd"));
        assert_eq!(secure_join(&r, "a/./b/../../..", true).unwrap(), r);
        std::fs::remove_dir_all(&r).unwrap();
    }

    #[test]
    fn absolute_symlink_resolves_inside_the_root() {
        let r = tmp("abs");
        symlink("/tmp/hostdir", r.join("evil")).unwrap();
        assert_eq!(secure_join(&r, "/evil/x", true).unwrap(), r.join("tmp/hostdir/x"));
        std::fs::remove_dir_all(&r).unwrap();
    }

    #[test]
    fn relative_symlink_cannot_climb_out() {
        let r = tmp("rel");
        std::fs::create_dir(r.join("a")).unwrap();
        symlink("../../../../etc", r.join("a/up")).unwrap();
        assert_eq!(secure_join(&r, "a/up/shadow", true).unwrap(), r.join("etc/shadow"));
        std::fs::remove_dir_all(&r).unwrap();
    }

    #[test]
    fn a_last_symlink_is_kept_unless_followed() {
        let r = tmp("last");
        symlink("/etc", r.join("abs")).unwrap();
        assert_eq!(secure_join(&r, "/abs", false).unwrap(), r.join("abs"));
        assert_eq!(secure_join(&r, "/abs/", false).unwrap(), r.join("abs"));
        assert_eq!(secure_join(&r, "/abs/.", false).unwrap(), r.join("abs"));
        assert_eq!(secure_join(&r, "/abs", true).unwrap(), r.join("etc"));
        assert_eq!(secure_join(&r, "/abs/x", false).unwrap(), r.join("etc/x"));
        std::fs::remove_dir_all(&r).unwrap();
    }

    #[test]
    fn symlink_loops_are_an_error() {
        let r = tmp("loop");
        symlink("/loop", r.join("loop")).unwrap();
        let e = secure_join(&r, "/loop/x", true).unwrap_err();
        assert!(e.to_string().contains("too many levels of symbolic links"), "{e}");
        std::fs::remove_dir_all(&r).unwrap();
    }

    #[test]
    fn read_in_rootfs_follows_links_inside_and_misses_cleanly() {
        let r = tmp("read");
        std::fs::create_dir(r.join("etc")).unwrap();
        std::fs::write(r.join("etc/passwd"), "root:x:0:0::/root:/bin/sh\n").unwrap();
        symlink("/etc/passwd", r.join("etc/link")).unwrap();
        symlink("../../../../etc/hostname", r.join("etc/escape")).unwrap();
        assert_eq!(read_in_rootfs(&r, "/etc/link").unwrap().unwrap(), b"root:x:0:0::/root:/bin/sh\n");
        assert_eq!(read_in_rootfs(&r, "etc/../etc/./passwd").unwrap().unwrap(), b"root:x:0:0::/root:/bin/sh\n");
        assert_eq!(read_in_rootfs(&r, "/etc/escape").unwrap(), None, "resolved inside: there is no etc/hostname");
        assert_eq!(read_in_rootfs(&r, "/etc/passwd/x").unwrap(), None);
        assert_eq!(read_in_rootfs(&r, "/etc").unwrap(), None);
        std::fs::remove_dir_all(&r).unwrap();
    }
}
