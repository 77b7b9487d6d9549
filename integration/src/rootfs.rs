//! The busybox-static root filesystem the test containers run. It is built once per test
//! binary run under the temp dir and copied into each bundle, so that no two tests share
//! a writable rootfs.

use std::io;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

pub const BUSYBOX: &str = "/bin/busybox";

/// Applets linked in /bin: what the tests' shell commands use (`ulimit` and `umask` are
/// shell builtins, not applets).
pub const APPLETS: &[&str] = &[
    "sh", "cat", "echo", "ls", "id", "hostname", "sleep", "true", "false", "stat", "grep", "mount", "ps", "env", "pwd", "readlink", "touch", "wc", "test",
    "kill", "head", "cut", "awk", "sed", "mkdir", "tr", "sort", "printf", "seq", "tty", "rm", "ln", "mknod", "chmod", "dd", "uname", "tail", "xargs",
];

pub const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
test:x:1000:1000:test:/home/test:/bin/sh\n\
nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n";

pub const GROUP: &str = "root:x:0:\n\
tty:x:5:\n\
test:x:1000:\n\
extra:x:1001:test\n\
nogroup:x:65534:\n";

/// The base rootfs of this test binary run: built on first use, removed at exit.
pub fn base() -> &'static Path {
    static BASE: OnceLock<PathBuf> = OnceLock::new();
    BASE.get_or_init(|| {
        remove_stale_dirs();
        let dir = std::env::temp_dir().join(format!("berth-it-{}-rootfs", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        build(&dir).unwrap_or_else(|e| panic!("building the busybox rootfs in {}: {e}", dir.display()));
        extern "C" fn remove_base() {
            let dir = std::env::temp_dir().join(format!("berth-it-{}-rootfs", std::process::id()));
            let _ = std::fs::remove_dir_all(dir);
        }
        // SAFETY: registers a plain extern "C" function to run at exit.
        unsafe { libc::atexit(remove_base) };
        dir
    })
}

fn build(dir: &Path) -> io::Result<()> {
    if !Path::new(BUSYBOX).exists() {
        return Err(io::Error::new(io::ErrorKind::NotFound, "/bin/busybox is missing: install busybox-static"));
    }
    for d in ["bin", "proc", "sys", "dev", "tmp", "etc", "root", "home/test", "mnt"] {
        std::fs::create_dir_all(dir.join(d))?;
    }
    std::fs::set_permissions(dir.join("tmp"), std::fs::Permissions::from_mode(0o1777))?;
    std::fs::copy(BUSYBOX, dir.join("bin/busybox"))?;
    std::fs::set_permissions(dir.join("bin/busybox"), std::fs::Permissions::from_mode(0o755))?;
    for a in APPLETS {
        symlink("busybox", dir.join("bin").join(a))?;
    }
    std::fs::write(dir.join("etc/passwd"), PASSWD)?;
    std::fs::write(dir.join("etc/group"), GROUP)?;
    Ok(())
}

/// Copies the base rootfs to `dest` (files copied, symlinks recreated, modes kept).
pub fn copy_to(dest: &Path) -> io::Result<()> {
    copy_tree(base(), dest)
}

pub fn copy_tree(src: &Path, dest: &Path) -> io::Result<()> {
    let md = std::fs::symlink_metadata(src)?;
    if md.file_type().is_symlink() {
        symlink(std::fs::read_link(src)?, dest)
    } else if md.is_dir() {
        std::fs::create_dir(dest)?;
        for e in std::fs::read_dir(src)? {
            let e = e?;
            copy_tree(&e.path(), &dest.join(e.file_name()))?;
        }
        std::fs::set_permissions(dest, md.permissions())
    } else {
        std::fs::copy(src, dest).map(|_| ())
    }
}

/// Leftovers of earlier runs whose test process is gone (killed before its cleanup ran):
/// `berth-it-PID-*` in the temp dir, removed unless something is still mounted in them.
fn remove_stale_dirs() {
    let Ok(rd) = std::fs::read_dir(std::env::temp_dir()) else { return };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix("berth-it-") else { continue };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<i32>().ok()) else { continue };
        if Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        let path = e.path();
        if crate::host::mounts_under(&path).is_empty() {
            let _ = std::fs::remove_dir_all(&path);
        }
    }
}
