//! Device nodes in the container's /dev: the default set every container gets, the
//! config's `linux.devices`, and the usual symlinks (/dev/fd, /dev/stdin, /dev/ptmx ...).

use super::rootfs::PinnedPath;
use super::secure_join::{is_within, secure_join};
use crate::error::{Context, Error, Result};
use berth_spec::rootfs_path::clean_abs;
use berth_spec::{Device, Spec};
use nix::sys::stat::{makedev, mknod, Mode, SFlag};
use std::path::{Path, PathBuf};

/// (path, major, minor): what runc and the spec call the default devices.
const DEFAULT_DEVICES: &[(&str, u64, u64)] =
    &[("/dev/null", 1, 3), ("/dev/zero", 1, 5), ("/dev/full", 1, 7), ("/dev/random", 1, 8), ("/dev/urandom", 1, 9), ("/dev/tty", 5, 0)];

/// Whether /dev comes from a bind mount of the host's: then nothing is created in it.
fn dev_is_bound(spec: &Spec) -> bool {
    spec.mounts
        .iter()
        .any(|m| clean_abs(&m.destination) == "/dev" && (m.typ.as_deref() == Some("bind") || m.options.iter().any(|o| o == "bind" || o == "rbind")))
}

pub fn create_devices(spec: &Spec, rootfs: &Path, in_userns: bool) -> Result<()> {
    if dev_is_bound(spec) {
        return Ok(());
    }
    let old = nix::sys::stat::umask(Mode::empty());
    let res = (|| -> Result<()> {
        let config_devs = spec.linux.as_ref().map(|l| l.devices.as_slice()).unwrap_or(&[]);
        for &(path, major, minor) in DEFAULT_DEVICES {
            if config_devs.iter().any(|d| clean_abs(&d.path) == path) {
                continue;
            }
            let d = Device { typ: "c".into(), path: path.into(), major: major as i64, minor: minor as i64, file_mode: Some(0o666), uid: Some(0), gid: Some(0) };
            let dest = resolve_in_dev(rootfs, path).with_ctx(|| format!("create device {path}"))?;
            create_device(rootfs, &dest, &d, in_userns).with_ctx(|| format!("create device {path}"))?;
        }
        for (i, d) in config_devs.iter().enumerate() {
            let field = || format!("linux.devices[{i}].path {:?}", d.path);
            let dest = resolve_in_dev(rootfs, &d.path).with_ctx(field)?;
            create_device(rootfs, &dest, d, in_userns).with_ctx(field)?;
        }
        Ok(())
    })();
    nix::sys::stat::umask(old);
    res?;
    symlinks(spec, rootfs)
}

/// Where a device node goes: `path` resolved inside the rootfs (symlinks followed
/// there, `..` stopping at its root), which must land below the container's /dev (itself
/// resolved the same way). Config validation already refused paths that leave /dev as
/// text; this catches a rootfs whose symlinks would lead a node elsewhere.
fn resolve_in_dev(rootfs: &Path, path: &str) -> Result<PathBuf> {
    let dev = secure_join(rootfs, "/dev")?;
    let dest = secure_join(rootfs, &clean_abs(path))?;
    if dest == dev || !is_within(&dev, &dest) {
        let inside = dest.strip_prefix(rootfs).map(|p| format!("/{}", p.display())).unwrap_or_else(|_| dest.display().to_string());
        return Err(Error::new(format!("resolves to {inside} in the rootfs, not below /dev")));
    }
    Ok(dest)
}

fn create_device(rootfs: &Path, dest: &Path, d: &Device, in_userns: bool) -> Result<()> {
    if let Some(parent) = dest.parent() {
        std::fs::create_dir_all(parent)?;
    }
    if in_userns {
        // mknod is not allowed in a user namespace: bind the host's node instead.
        if std::fs::symlink_metadata(dest).is_err() {
            std::fs::File::create(dest)?;
        }
        let target = PinnedPath::open(rootfs, dest)?;
        return nix::mount::mount(Some(d.path.as_str()), target.path(), None::<&str>, nix::mount::MsFlags::MS_BIND, None::<&str>).map_err(Error::from);
    }
    let kind = match d.typ.as_str() {
        "c" | "u" => SFlag::S_IFCHR,
        "b" => SFlag::S_IFBLK,
        "p" => SFlag::S_IFIFO,
        t => return Err(Error::new(format!("unknown device type {t:?}"))),
    };
    let mode = Mode::from_bits_truncate(d.file_mode.unwrap_or(0o666) & 0o7777);
    match std::fs::symlink_metadata(dest) {
        Ok(md) if md.file_type().is_symlink() || md.is_dir() => {
            return Err(Error::new(format!("{} exists and is not a device", d.path)));
        }
        Ok(_) => std::fs::remove_file(dest)?,
        Err(_) => {}
    }
    mknod(dest, kind, mode, makedev(d.major as u64, d.minor as u64)).ctx("mknod")?;
    nix::unistd::chown(dest, Some(d.uid.unwrap_or(0).into()), Some(d.gid.unwrap_or(0).into())).ctx("chown")?;
    Ok(())
}

fn symlinks(spec: &Spec, rootfs: &Path) -> Result<()> {
    let mut links =
        vec![("/proc/self/fd", "/dev/fd"), ("/proc/self/fd/0", "/dev/stdin"), ("/proc/self/fd/1", "/dev/stdout"), ("/proc/self/fd/2", "/dev/stderr")];
    if Path::new("/proc/kcore").exists() {
        links.push(("/proc/kcore", "/dev/core"));
    }
    for (target, link) in links {
        let dest = secure_join(rootfs, link)?;
        match std::os::unix::fs::symlink(target, &dest) {
            Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => {
                return Err(e).with_ctx(|| format!("symlink {link}"));
            }
            _ => {}
        }
    }
    // With a private devpts, /dev/ptmx must be its ptmx, not a host node.
    if spec.mounts.iter().any(|m| m.destination.trim_end_matches('/') == "/dev/pts" && m.typ.as_deref() == Some("devpts")) {
        let dest = secure_join(rootfs, "/dev/ptmx")?;
        let _ = std::fs::remove_file(&dest);
        std::os::unix::fs::symlink("pts/ptmx", &dest).ctx("symlink /dev/ptmx")?;
    }
    Ok(())
}
