//! Paths inside a stage's root filesystem: [`secure_join`] resolves a path as if the
//! rootfs were `/` (`..` stops at the root, symlinks, absolute or relative, are followed
//! inside it), the idea of runtime/src/linux/secure_join.rs, copied here because the
//! runtime crate is not a dependency of the builder. Nothing runs in the rootfs while
//! the builder writes into it (COPY/ADD happen between containers), so a lexical walk
//! is enough; the last component is then created or opened with `O_NOFOLLOW`.
//!
//! Also: `--chown` user/group names resolved against the stage's /etc/passwd and
//! /etc/group.

use std::ffi::OsStr;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use berth_spec::image::read_in_rootfs;

const MAX_SYMLINKS: usize = 255;

/// `root` joined with `path` resolved inside `root`. Components that do not exist are
/// kept as written (the caller creates them). With `follow_last` false a symlink in the
/// last component is not followed (the caller replaces or opens it with O_NOFOLLOW).
pub fn secure_join(root: &Path, path: &str, follow_last: bool) -> io::Result<PathBuf> {
    let mut rest: Vec<Vec<u8>> = path.as_bytes().split(|&b| b == b'/').map(<[u8]>::to_vec).collect();
    rest.reverse();
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

fn join(root: &Path, comps: &[Vec<u8>]) -> PathBuf {
    let mut p = root.to_path_buf();
    for c in comps {
        p.push(OsStr::from_bytes(c));
    }
    p
}

/// A clean absolute path (`a/../b` -> `/b`).
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

/// Creates the directories of `path` (already resolved inside `root`, see
/// [`secure_join`]) that are missing, with mode 0755 and owner `owner`
/// (Docker gives created parents the chown of the copy). Every component is checked to be
/// a directory, not a symlink, on the way down.
pub fn mkdir_all(root: &Path, resolved: &Path, owner: Option<(u32, u32)>) -> io::Result<()> {
    let rel = resolved
        .strip_prefix(root)
        .map_err(|_| io::Error::other(format!("{} is outside {}", resolved.display(), root.display())))?;
    let mut cur = root.to_path_buf();
    for c in rel.components() {
        cur.push(c);
        match std::fs::symlink_metadata(&cur) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    format!("/{}: not a directory", cur.strip_prefix(root).unwrap_or(&cur).display()),
                ))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                std::fs::create_dir(&cur)?;
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&cur, std::fs::Permissions::from_mode(0o755))?;
                if let Some((u, g)) = owner {
                    std::os::unix::fs::lchown(&cur, Some(u), Some(g))?;
                }
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn read_text(root: Option<&Path>, inside: &str) -> String {
    match root {
        Some(r) => read_in_rootfs(r, inside)
            .ok()
            .flatten()
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default(),
        None => String::new(),
    }
}

/// Resolves `--chown=user[:group]` to ids. Numbers pass through; names are looked up in
/// the rootfs' /etc/passwd and /etc/group (`root` None: no files, only numbers work).
/// Without a group, the group is the user's primary group for a name, and the same
/// number for a uid (as BuildKit does: `--chown=1000` gives 1000:1000).
pub fn resolve_chown(spec: &str, root: Option<&Path>) -> Result<(u32, u32), String> {
    let (user, group) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let passwd = || read_text(root, "/etc/passwd");
    let groups = || read_text(root, "/etc/group");
    let lookup = |text: &str, name: &str, field: usize| -> Option<(u32, u32)> {
        text.lines().find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            if f.len() > field && f[0] == name {
                let a = f[2].parse().ok()?;
                let b = if field >= 3 { f[3].parse().ok()? } else { a };
                Some((a, b))
            } else {
                None
            }
        })
    };
    let (uid, primary) = if user.is_empty() {
        (0, 0)
    } else if let Ok(n) = user.parse::<u32>() {
        (n, n)
    } else {
        lookup(&passwd(), user, 3).ok_or_else(|| format!("unable to convert uid/gid chown string to host mapping: can't find uid for user {user}: no such user: {user}"))?
    };
    let gid = match group {
        None => primary,
        Some("") => primary,
        Some(g) => match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => lookup(&groups(), g, 2)
                .map(|x| x.0)
                .ok_or_else(|| format!("unable to convert uid/gid chown string to host mapping: can't find gid for group {g}: no such group: {g}"))?,
        },
    };
    Ok((uid, gid))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("bb-rootfs-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn joins_stay_inside() {
        let r = tmp("join");
        std::fs::create_dir(r.join("a")).unwrap();
        symlink("/etc", r.join("abs")).unwrap();
        symlink("../../../../etc", r.join("a/up")).unwrap();
        assert_eq!(secure_join(&r, "/../../etc/passwd", true).unwrap(), r.join("etc/passwd"));
        assert_eq!(secure_join(&r, "/abs/x", true).unwrap(), r.join("etc/x"));
        assert_eq!(secure_join(&r, "a/up/shadow", true).unwrap(), r.join("etc/shadow"));
        assert_eq!(secure_join(&r, "/abs", false).unwrap(), r.join("abs"));
        assert_eq!(secure_join(&r, "/abs/", false).unwrap(), r.join("abs"));
        symlink("/loop", r.join("loop")).unwrap();
        assert!(secure_join(&r, "/loop/x", true).is_err());
        mkdir_all(&r, &secure_join(&r, "/abs/new/deep", true).unwrap(), None).unwrap();
        assert!(r.join("etc/new/deep").is_dir());
        std::fs::remove_dir_all(&r).unwrap();
    }

    #[test]
    fn chown_names() {
        let r = tmp("chown");
        std::fs::create_dir(r.join("etc")).unwrap();
        std::fs::write(r.join("etc/passwd"), "root:x:0:0::/root:/bin/sh\napp:x:1000:1001::/home/app:/bin/sh\n")
            .unwrap();
        std::fs::write(r.join("etc/group"), "root:x:0:\nstaff:x:50:\n").unwrap();
        assert_eq!(resolve_chown("app", Some(&r)).unwrap(), (1000, 1001));
        assert_eq!(resolve_chown("app:staff", Some(&r)).unwrap(), (1000, 50));
        assert_eq!(resolve_chown("42", None).unwrap(), (42, 42));
        assert_eq!(resolve_chown("42:7", None).unwrap(), (42, 7));
        assert!(resolve_chown("ghost", Some(&r)).unwrap_err().contains("ghost"));
        assert!(resolve_chown("app:nogrp", Some(&r)).is_err());
        std::fs::remove_dir_all(&r).unwrap();
    }
}
