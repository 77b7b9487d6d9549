//! Resolving a path inside a root filesystem as if the root were `/`: `..` stops at the
//! root and symlinks (absolute or relative) are followed inside it, so a hostile rootfs
//! cannot point a mount destination at the host.

use crate::error::{Error, Result};
use std::path::{Component, Path, PathBuf};

/// Returns `root` joined with `unsafe_path` resolved inside `root` (the walk is
/// [`berth_spec::rootfs_path::secure_join`], shared with the builder). Components that
/// do not exist yet are kept as they are (the caller creates them).
pub fn secure_join(root: &Path, unsafe_path: &str) -> Result<PathBuf> {
    berth_spec::rootfs_path::secure_join(root, unsafe_path, true).map_err(|e| {
        // An errno keeps runc's words ("permission denied"); the loop error is ours.
        if e.raw_os_error().is_some() {
            Error::from(e)
        } else {
            Error::new(format!("secure join {e}"))
        }
    })
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

    #[test]
    fn within_is_lexical_and_stops_at_the_root() {
        let r = Path::new("/run/r");
        assert!(is_within(r, Path::new("/run/r")));
        assert!(is_within(r, Path::new("/run/r/a/../b")));
        assert!(!is_within(r, Path::new("/run/r/a/../../x")));
        assert!(!is_within(r, Path::new("/run/rx")));
    }

    #[test]
    fn a_symlink_loop_is_an_error_naming_the_path() {
        let d = std::env::temp_dir().join(format!("berth-sj-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        std::os::unix::fs::symlink("/loop", d.join("loop")).unwrap();
        let e = secure_join(&d, "/loop").unwrap_err();
        assert_eq!(e.msg(), "secure join /loop: too many levels of symbolic links");
        std::fs::remove_dir_all(&d).unwrap();
    }
}
