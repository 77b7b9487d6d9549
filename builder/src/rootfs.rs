//! Paths inside a stage's root filesystem: [`secure_join`] resolves a path as if the
//! rootfs were `/` (`..` stops at the root, symlinks, absolute or relative, are followed
//! inside it; the walk is `berth_spec::rootfs_path`, shared with the runtime). Nothing
//! runs in the rootfs while the builder writes into it (COPY/ADD happen between
//! containers), so a lexical walk is enough; the last component is then created or
//! opened with `O_NOFOLLOW`.
//!
//! Also: `--chown` user/group names resolved against the stage's /etc/passwd and
//! /etc/group.

use std::io;
use std::path::Path;

use berth_spec::image::read_in_rootfs;

pub use berth_spec::rootfs_path::{clean_abs, secure_join};

/// Creates the directories of `path` (already resolved inside `root`, see
/// [`secure_join`]) that are missing, with mode 0755 and owner `owner`
/// (Docker gives created parents the chown of the copy). Every component is checked to be
/// a directory, not a symlink, on the way down.
pub fn mkdir_all(root: &Path, resolved: &Path, owner: Option<(u32, u32)>) -> io::Result<()> {
    let rel = resolved.strip_prefix(root).map_err(|_| io::Error::other(format!("{} is outside {}", resolved.display(), root.display())))?;
    let mut cur = root.to_path_buf();
    for c in rel.components() {
        cur.push(c);
        match std::fs::symlink_metadata(&cur) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(io::Error::new(io::ErrorKind::AlreadyExists, format!("/{}: not a directory", cur.strip_prefix(root).unwrap_or(&cur).display())))
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
        Some(r) => read_in_rootfs(r, inside).ok().flatten().map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default(),
        None => String::new(),
    }
}

/// Resolves `--chown=user[:group]` to ids. Numbers pass through; names are looked up in
/// the rootfs' /etc/passwd and /etc/group (`root` None: no files, only numbers work).
/// Without a group, the group is the user's primary group for a name, and the same
/// number for a uid (as BuildKit does: `--chown=1000` gives 1000:1000).
pub fn resolve_chown(spec: &str, root: Option<&Path>) -> crate::Result<(u32, u32)> {
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
        lookup(&passwd(), user, 3)
            .ok_or_else(|| format!("unable to convert uid/gid chown string to host mapping: can't find uid for user {user}: no such user: {user}"))?
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
    use std::path::PathBuf;

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("bb-rootfs-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn mkdir_all_through_an_absolute_symlink_stays_inside() {
        let r = tmp("join");
        symlink("/etc", r.join("abs")).unwrap();
        mkdir_all(&r, &secure_join(&r, "/abs/new/deep", true).unwrap(), None).unwrap();
        assert!(r.join("etc/new/deep").is_dir());
        std::fs::remove_dir_all(&r).unwrap();
    }

    #[test]
    fn chown_names() {
        let r = tmp("chown");
        std::fs::create_dir(r.join("etc")).unwrap();
        std::fs::write(r.join("etc/passwd"), "root:x:0:0::/root:/bin/sh\napp:x:1000:1001::/home/app:/bin/sh\n").unwrap();
        std::fs::write(r.join("etc/group"), "root:x:0:\nstaff:x:50:\n").unwrap();
        assert_eq!(resolve_chown("app", Some(&r)).unwrap(), (1000, 1001));
        assert_eq!(resolve_chown("app:staff", Some(&r)).unwrap(), (1000, 50));
        assert_eq!(resolve_chown("42", None).unwrap(), (42, 42));
        assert_eq!(resolve_chown("42:7", None).unwrap(), (42, 7));
        assert!(resolve_chown("ghost", Some(&r)).unwrap_err().to_string().contains("ghost"));
        assert!(resolve_chown("app:nogrp", Some(&r)).is_err());
        std::fs::remove_dir_all(&r).unwrap();
    }
}
