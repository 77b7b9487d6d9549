//! Checkpoint and restore with criu (runc's `checkpoint`/`restore`), which berth drives
//! over criu's RPC (criu_rpc.rs): what both need from the container.
//!
//! criu dumps the init's process tree with its namespaces. Mounts whose source lies
//! outside the container (bind mounts, the /dev/null binds over masked files, the cgroup
//! file system) cannot be dumped: they are declared external, keyed by their
//! destination, and on restore each key is mapped to a path on the host again.

use crate::error::{Context, Error, Result};
use berth_spec::Spec;
use std::path::{Path, PathBuf};

/// The options checkpoint and restore share.
#[derive(Debug, Default, Clone)]
pub struct Options {
    /// The criu binary (`--criu`); `criu` on PATH when empty.
    pub criu: String,
    pub image_path: PathBuf,
    pub work_path: PathBuf,
    pub tcp_established: bool,
    pub ext_unix_sk: bool,
    pub shell_job: bool,
    pub file_locks: bool,
    /// soft, full, strict or ignore; criu's default (soft) when unset.
    pub manage_cgroups_mode: Option<String>,
}

/// Refuses a cgroup mode criu does not know before criu is run.
pub fn check_cgroups_mode(mode: &str) -> Result<()> {
    match mode {
        "soft" | "full" | "strict" | "ignore" => Ok(()),
        other => Err(Error::new(format!("invalid --manage-cgroups-mode {other:?}: want soft, full, strict or ignore"))),
    }
}

/// An external mount: its destination in the container, and where its source is on
/// the host at restore.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct External {
    pub dest: String,
    pub host_source: PathBuf,
}

/// The mounts of `spec` criu must take as external: bind mounts (source resolved against
/// the bundle), the cgroup file system (its host side is the container's own cgroup
/// directory, `cgroup_dir`), and masked paths that are files (/dev/null is bound over
/// them). `is_dir` tells a masked path's kind inside the container.
pub fn externals(spec: &Spec, bundle: &Path, cgroup_dir: Option<&Path>, is_dir: impl Fn(&str) -> Option<bool>) -> Vec<External> {
    let mut out = Vec::new();
    for m in &spec.mounts {
        let bind = m.typ.as_deref() == Some("bind") || m.options.iter().any(|o| o == "bind" || o == "rbind");
        let cgroup = matches!(m.typ.as_deref(), Some("cgroup") | Some("cgroup2"));
        if bind {
            let src = Path::new(m.source.as_deref().unwrap_or(""));
            let host_source = if src.is_absolute() { src.to_path_buf() } else { bundle.join(src) };
            out.push(External { dest: m.destination.clone(), host_source });
        } else if cgroup {
            let host_source = cgroup_dir.map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("/sys/fs/cgroup"));
            out.push(External { dest: m.destination.clone(), host_source });
        }
    }
    if let Some(linux) = &spec.linux {
        for p in &linux.masked_paths {
            // Directories get a tmpfs, which criu dumps; missing paths are not masked.
            if is_dir(p) == Some(false) {
                out.push(External { dest: p.clone(), host_source: PathBuf::from("/dev/null") });
            }
        }
    }
    out
}

/// The file in the image directory naming what the init's stdio were at the dump, as
/// runc names it (engines copy image directories between runtimes).
const DESCRIPTORS: &str = "descriptors.json";

/// Records the init's fds 0-2 (`pipe:[INODE]`, a path, ...) beside the images: a pipe to
/// the engine's stdio handler is outside the dumped tree, and at restore the new one
/// takes its place (see [`stdio_to_inherit`]).
pub fn write_descriptors(image_dir: &Path, pid: i32) -> Result<()> {
    let fds: Vec<String> =
        (0..3).map(|fd| std::fs::read_link(format!("/proc/{pid}/fd/{fd}")).map(|l| l.to_string_lossy().into_owned()).unwrap_or_default()).collect();
    let path = image_dir.join(DESCRIPTORS);
    std::fs::create_dir_all(image_dir).with_ctx(|| format!("mkdir {}", image_dir.display()))?;
    std::fs::write(&path, serde_json::to_vec(&fds).unwrap_or_default()).with_ctx(|| format!("write {}", path.display()))
}

/// The dumped stdio pipes, with the fd of ours (the caller's new stdio) criu is to put in
/// each one's place: `--inherit-fd fd[N]:pipe:[INODE]`. None when the images have no
/// record (not made by a runtime): criu then restores the pipes as it dumped them.
pub fn stdio_to_inherit(image_dir: &Path) -> Result<Vec<(i32, String)>> {
    let path = image_dir.join(DESCRIPTORS);
    let text = match std::fs::read(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::from(e)).with_ctx(|| format!("read {}", path.display())),
    };
    let fds: Vec<String> = serde_json::from_slice(&text).map_err(|e| Error::new(format!("{}: {e}", path.display())))?;
    Ok(pipes_of(&fds))
}

fn pipes_of(fds: &[String]) -> Vec<(i32, String)> {
    fds.iter().enumerate().filter(|(_, d)| d.starts_with("pipe:[")).map(|(i, d)| (i as i32, d.clone())).collect()
}

/// " (first error: ...)" from criu's log, or nothing: criu's first error is the cause;
/// the ones after it report the failure.
pub fn first_error(log: &Path) -> String {
    std::fs::read_to_string(log)
        .ok()
        .and_then(|t| t.lines().find(|l| l.contains("Error (")).map(|l| format!(" (first error: {})", l.trim())))
        .unwrap_or_default()
}

/// Binds `rootfs` on `at` (made if needed): criu's --root must be a mount point.
pub fn bind_root(rootfs: &Path, at: &Path) -> Result<()> {
    use nix::mount::{mount, MsFlags};
    std::fs::create_dir_all(at).with_ctx(|| format!("mkdir {}", at.display()))?;
    mount(Some(rootfs), at, None::<&str>, MsFlags::MS_BIND | MsFlags::MS_REC, None::<&str>)
        .with_ctx(|| format!("bind {} on {}", rootfs.display(), at.display()))?;
    // Private, so that the restore's mounts below it do not propagate to the host.
    mount(None::<&str>, at, None::<&str>, MsFlags::MS_PRIVATE | MsFlags::MS_REC, None::<&str>).with_ctx(|| format!("make {} private", at.display()))
}

/// Undoes [`bind_root`].
pub fn unbind_root(at: &Path) {
    let _ = nix::mount::umount2(at, nix::mount::MntFlags::MNT_DETACH);
    let _ = std::fs::remove_dir(at);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binds_cgroup_and_masked_files_are_external_and_the_rest_is_not() {
        let spec: Spec = serde_json::from_value(serde_json::json!({
            "ociVersion": "1.0.2",
            "mounts": [
                {"destination": "/proc", "type": "proc", "source": "proc"},
                {"destination": "/data", "type": "bind", "source": "data", "options": ["rbind"]},
                {"destination": "/etc/hosts", "source": "/etc/hosts", "options": ["bind", "ro"]},
                {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup"}
            ],
            "linux": {"maskedPaths": ["/proc/kcore", "/proc/acpi", "/proc/missing"]}
        }))
        .unwrap();
        let kind = |p: &str| match p {
            "/proc/kcore" => Some(false),
            "/proc/acpi" => Some(true),
            _ => None,
        };
        let ext = externals(&spec, Path::new("/b"), Some(Path::new("/sys/fs/cgroup/berth/x")), kind);
        let got: Vec<(&str, &str)> = ext.iter().map(|e| (e.dest.as_str(), e.host_source.to_str().unwrap())).collect();
        assert_eq!(got, [("/data", "/b/data"), ("/etc/hosts", "/etc/hosts"), ("/sys/fs/cgroup", "/sys/fs/cgroup/berth/x"), ("/proc/kcore", "/dev/null")]);
    }

    #[test]
    fn only_stdio_pipes_are_inherited_at_restore() {
        let fds = ["/dev/null".to_string(), "pipe:[77]".into(), "pipe:[78]".into()];
        assert_eq!(pipes_of(&fds), [(1, "pipe:[77]".to_string()), (2, "pipe:[78]".to_string())]);
        let dir = std::env::temp_dir().join(format!("berth-criu-desc-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        assert!(stdio_to_inherit(&dir).unwrap().is_empty(), "no record: nothing inherited");
        std::fs::write(dir.join(DESCRIPTORS), r#"["pipe:[5]","/dev/pts/0",""]"#).unwrap();
        assert_eq!(stdio_to_inherit(&dir).unwrap(), [(0, "pipe:[5]".to_string())]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_unknown_cgroup_mode_is_refused() {
        assert!(check_cgroups_mode("soft").is_ok());
        assert!(check_cgroups_mode("loose").unwrap_err().msg().contains("loose"));
    }
}
