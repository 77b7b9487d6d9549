//! The container's root filesystem, in the container's mount namespace: propagation,
//! the config's mounts (each destination resolved inside the rootfs and pinned by an
//! O_PATH fd before mounting), pivot_root, masked and read-only paths.

use super::cgroups::CgroupPaths;
use super::mount_api;
use super::mounts::{self, MountOptions};
use super::secure_join::{is_within, secure_join};
use crate::error::{Context, Error, Result};
use berth_spec::{Mount, Spec};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

pub struct RootfsSetup<'a> {
    pub spec: &'a Spec,
    pub rootfs: PathBuf,
    pub cgroup: &'a CgroupPaths,
    pub new_cgroup_ns: bool,
    pub in_userns: bool,
    /// The idmapped mounts the parent made (linux/idmap.rs), by index in `spec.mounts`:
    /// attached in place of a bind of their source.
    pub idmapped: &'a [(usize, OwnedFd)],
}

const NONE: Option<&str> = None;

/// Propagation for "/" and a bind of the rootfs onto itself, so that it is a mount point
/// pivot_root can use and host mounts do not propagate into the container.
pub fn prepare_root(spec: &Spec, rootfs: &Path) -> Result<()> {
    let prop = root_propagation(spec)?.unwrap_or(MsFlags::MS_SLAVE | MsFlags::MS_REC);
    mount(NONE, "/", NONE, prop, NONE).ctx("make / propagation")?;
    make_parent_mount_private(rootfs)?;
    mount(Some(rootfs), rootfs, NONE, MsFlags::MS_BIND | MsFlags::MS_REC, NONE).with_ctx(|| format!("bind mount rootfs {}", rootfs.display()))?;
    Ok(())
}

fn root_propagation(spec: &Spec) -> Result<Option<MsFlags>> {
    match spec.linux.as_ref().and_then(|l| l.rootfs_propagation.as_deref()) {
        None | Some("") => Ok(None),
        Some(p) => mounts::propagation(p).map(Some).ok_or_else(|| Error::new(format!("linux.rootfsPropagation: unknown mode {p:?}"))),
    }
}

/// pivot_root fails when the new root's parent mount is shared: make it private.
fn make_parent_mount_private(rootfs: &Path) -> Result<()> {
    let mut p = rootfs.to_path_buf();
    loop {
        match mount(NONE, &p, NONE, MsFlags::MS_PRIVATE, NONE) {
            Ok(()) => return Ok(()),
            // Not a mount point: try the parent directory.
            Err(nix::Error::EINVAL) if p.pop() => continue,
            Err(e) => return Err(e).with_ctx(|| format!("make {} private", p.display())),
        }
    }
}

impl RootfsSetup<'_> {
    pub fn mount_all(&self) -> Result<()> {
        for (i, m) in self.spec.mounts.iter().enumerate() {
            self.mount_one(i, m).with_ctx(|| format!("mounts[{i}] ({} on {})", m.typ.as_deref().unwrap_or("bind"), m.destination))?;
        }
        Ok(())
    }

    fn mount_one(&self, i: usize, m: &Mount) -> Result<()> {
        let opts = mounts::parse(&m.options);
        let typ = m.typ.as_deref().unwrap_or("");
        if opts.is_bind() || typ == "bind" {
            return self.mount_bind(i, m, &opts, &secure_join(&self.rootfs, &m.destination)?);
        }
        let dest = match typ {
            "proc" | "sysfs" => self.ordinary_dir(m, typ)?,
            _ => secure_join(&self.rootfs, &m.destination)?,
        };
        if matches!(typ, "cgroup" | "cgroup2") {
            return self.mount_cgroup(&opts, &dest);
        }
        std::fs::create_dir_all(&dest).with_ctx(|| format!("mkdir {}", dest.display()))?;
        let target = PinnedPath::open(&self.rootfs, &dest)?;
        let source = m.source.as_deref().unwrap_or(typ);
        let data = opts.data_string();
        let flags = opts.flags & !MsFlags::MS_REMOUNT;
        let res = if typ == "tmpfs" && opts.tmpcopyup {
            self.mount_tmpfs_copyup(&target, flags, data.as_deref())
        } else {
            mount(Some(source), target.path(), Some(typ), flags, data.as_deref()).map_err(Error::from)
        };
        match res {
            Err(_) if typ == "mqueue" && self.in_userns => {
                // A user namespace may not mount mqueue: share the host's, as runc does.
                mount(Some("/dev/mqueue"), target.path(), NONE, MsFlags::MS_BIND | MsFlags::MS_REC, NONE)?
            }
            r => r?,
        }
        self.finish_new(&target, &opts)
    }

    /// Where proc or sysfs goes: exactly the destination (its parent resolved inside the
    /// rootfs), which must be a directory or missing. Following a symlink there would put
    /// the filesystem wherever the image's link points and leave the destination without
    /// it (a container without /proc), so a link is refused, as runc does.
    fn ordinary_dir(&self, m: &Mount, typ: &str) -> Result<PathBuf> {
        let clean = berth_spec::rootfs_path::clean_abs(&m.destination);
        let (parent, name) = clean.rsplit_once('/').unwrap_or(("", ""));
        let dest = secure_join(&self.rootfs, parent)?.join(name);
        match std::fs::symlink_metadata(&dest) {
            Ok(md) if md.is_symlink() => crate::bail!("filesystem {typ:?} must be mounted on ordinary directory: {clean} is a symlink"),
            Ok(md) if !md.is_dir() => crate::bail!("filesystem {typ:?} must be mounted on ordinary directory: {clean} is not a directory"),
            _ => Ok(dest),
        }
    }

    /// Recursive attributes and propagation flags on the mount just made on `target`
    /// (found by opening the path again: the pinned fd names the directory underneath).
    /// Nothing to do without them.
    fn finish_new(&self, target: &PinnedPath, opts: &MountOptions) -> Result<()> {
        if opts.propagation.is_empty() && opts.rec.is_empty() {
            return Ok(());
        }
        let target = target.reopen(&self.rootfs)?;
        set_recursive_attrs(&target, opts)?;
        apply_propagation(&target, opts)
    }

    fn mount_bind(&self, i: usize, m: &Mount, opts: &MountOptions, dest: &Path) -> Result<()> {
        let source = m.source.as_deref().ok_or_else(|| Error::new("bind mount needs a source"))?;
        let src_md = std::fs::metadata(source).with_ctx(|| format!("stat {source}"))?;
        if src_md.is_dir() {
            std::fs::create_dir_all(dest).with_ctx(|| format!("mkdir {}", dest.display()))?;
        } else {
            if let Some(parent) = dest.parent() {
                std::fs::create_dir_all(parent).with_ctx(|| format!("mkdir {}", parent.display()))?;
            }
            if std::fs::symlink_metadata(dest).is_err() {
                std::fs::File::create(dest).with_ctx(|| format!("create {}", dest.display()))?;
            }
        }
        let target = PinnedPath::open(&self.rootfs, dest)?;
        match self.idmapped.iter().find(|(j, _)| *j == i) {
            Some((_, tree)) => mount_api::attach(tree.as_fd(), target.as_fd()).with_ctx(|| format!("attach idmapped {source} (move_mount)"))?,
            None => {
                let bind = opts.flags & (MsFlags::MS_BIND | MsFlags::MS_REC);
                mount(Some(source), target.path(), NONE, bind | MsFlags::MS_BIND, NONE).with_ctx(|| format!("bind {source}"))?
            }
        }
        let extra = opts.flags & !(MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_REMOUNT);
        if extra.is_empty() && opts.propagation.is_empty() && opts.rec.is_empty() {
            return Ok(());
        }
        let target = target.reopen(&self.rootfs)?;
        if !extra.is_empty() {
            remount(target.path(), extra | MsFlags::MS_BIND)?;
        }
        set_recursive_attrs(&target, opts)?;
        apply_propagation(&target, opts)
    }

    /// tmpfs with the destination's old contents copied in (runc's `tmpcopyup`). The
    /// tmpfs goes straight onto the destination: the pinned fd still names the directory
    /// underneath, so the old contents are read through it, with no staging directory on
    /// the host that a create killed mid-copy would leave behind.
    fn mount_tmpfs_copyup(&self, target: &PinnedPath, flags: MsFlags, data: Option<&str>) -> Result<()> {
        mount(Some("tmpfs"), target.path(), Some("tmpfs"), flags & !MsFlags::MS_RDONLY, data)?;
        let top = target.reopen(&self.rootfs)?;
        copy_tree(target.path(), top.path())?;
        if flags.contains(MsFlags::MS_RDONLY) {
            remount(top.path(), flags)?;
        }
        Ok(())
    }

    /// The cgroup filesystem as the container sees it: with its own cgroup namespace,
    /// fresh mounts rooted at its cgroup; without, binds of its host cgroup directories.
    /// On v1 the hierarchies go into a tmpfs mounted here first: everything below it is
    /// ours (no container process exists yet), so they are reached through the tmpfs's
    /// own fd rather than resolved and pinned one by one.
    fn mount_cgroup(&self, opts: &MountOptions, dest: &Path) -> Result<()> {
        std::fs::create_dir_all(dest).with_ctx(|| format!("mkdir {}", dest.display()))?;
        let flags = opts.flags & !(MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_REC);
        let target = PinnedPath::open(&self.rootfs, dest)?;
        if self.cgroup.is_v2() {
            if self.mount_cgroup2(target.path(), flags, self.cgroup.unified.as_deref())? {
                // The pinned fd names the directory underneath the bind: open it again.
                remount(target.reopen(&self.rootfs)?.path(), flags | MsFlags::MS_BIND)?;
            }
            return self.finish_new(&target, opts);
        }
        mount(Some("tmpfs"), target.path(), Some("tmpfs"), flags & !MsFlags::MS_RDONLY, Some("mode=755"))?;
        let tmpfs = target.reopen(&self.rootfs)?;
        let top = tmpfs.path();
        for (ctrls, host_dir) in &self.cgroup.v1 {
            let name = ctrls.strip_prefix("name=").unwrap_or(ctrls);
            let sub = top.join(name);
            std::fs::create_dir(&sub).with_ctx(|| format!("mkdir {}", dest.join(name).display()))?;
            if self.new_cgroup_ns {
                let data = if ctrls.starts_with("name=") { format!("none,{ctrls}") } else { ctrls.clone() };
                mount(Some("cgroup"), &sub, Some("cgroup"), flags, Some(data.as_str())).with_ctx(|| format!("mount cgroup {ctrls}"))?;
            } else {
                mount(Some(host_dir.as_path()), &sub, NONE, MsFlags::MS_BIND | MsFlags::MS_REC, NONE)?;
                remount(&sub, flags | MsFlags::MS_BIND)?;
            }
            // "cpu,cpuacct" is also reachable as "cpu" and "cpuacct", as on the host.
            if ctrls.contains(',') {
                for c in ctrls.split(',') {
                    let _ = std::os::unix::fs::symlink(name, top.join(c));
                }
            }
        }
        if let Some(unified) = &self.cgroup.unified {
            let sub = top.join("unified");
            std::fs::create_dir(&sub).with_ctx(|| format!("mkdir {}", dest.join("unified").display()))?;
            if self.mount_cgroup2(&sub, flags, Some(unified))? {
                remount(&sub, flags | MsFlags::MS_BIND)?;
            }
        }
        if flags.contains(MsFlags::MS_RDONLY) {
            remount(top, flags)?;
        }
        set_recursive_attrs(&tmpfs, opts)?;
        apply_propagation(&tmpfs, opts)
    }

    /// Mounts cgroup2 (own cgroup namespace) or binds the host's directory on `target`.
    /// Returns true for a bind, which the caller remounts with `flags`.
    fn mount_cgroup2(&self, target: &Path, flags: MsFlags, host_dir: Option<&Path>) -> Result<bool> {
        if self.new_cgroup_ns {
            mount(Some("cgroup2"), target, Some("cgroup2"), flags, NONE).ctx("mount cgroup2")?;
        } else if let Some(h) = host_dir {
            mount(Some(h), target, NONE, MsFlags::MS_BIND | MsFlags::MS_REC, NONE).ctx("bind cgroup2")?;
            return Ok(true);
        }
        Ok(false)
    }
}

/// `rro`, `rnosuid`, ...: a remount changes one mount, so the submounts an rbind brought
/// along would keep their own flags; mount_setattr with AT_RECURSIVE changes them all.
fn set_recursive_attrs(target: &PinnedPath, opts: &MountOptions) -> Result<()> {
    if opts.rec.is_empty() {
        return Ok(());
    }
    mount_api::set_attr(target.as_fd(), opts.rec.set, opts.rec.clr, None, true).ctx("set recursive mount attributes (mount_setattr)")
}

fn apply_propagation(target: &PinnedPath, opts: &MountOptions) -> Result<()> {
    propagate(target.path(), opts)
}

fn propagate(target: &Path, opts: &MountOptions) -> Result<()> {
    for p in &opts.propagation {
        mount(NONE, target, NONE, *p, NONE).ctx("set mount propagation")?;
    }
    Ok(())
}

/// Remounts with `flags`, keeping the flags the kernel locks (nosuid, nodev, noexec,
/// atime modes) when the mount came from a more privileged namespace.
fn remount(target: &Path, flags: MsFlags) -> Result<()> {
    let flags = flags | MsFlags::MS_REMOUNT;
    match mount(NONE, target, NONE, flags, NONE) {
        Err(nix::Error::EPERM) => {
            let locked = statvfs_flags(target)?;
            mount(NONE, target, NONE, flags | locked, NONE).ctx("remount")
        }
        r => r.ctx("remount"),
    }
}

fn statvfs_flags(p: &Path) -> Result<MsFlags> {
    use nix::sys::statvfs::{statvfs, FsFlags};
    let f = statvfs(p)?.flags();
    let mut out = MsFlags::empty();
    for (a, b) in [
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
        (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
        (FsFlags::ST_RDONLY, MsFlags::MS_RDONLY),
    ] {
        if f.contains(a) {
            out |= b;
        }
    }
    Ok(out)
}

/// A destination opened with O_PATH and checked to be inside the rootfs; mounting on
/// `/proc/self/fd/N` then hits exactly that inode, even if the path is swapped for a
/// symlink in between.
pub struct PinnedPath {
    fd: OwnedFd,
    path: PathBuf,
}

impl PinnedPath {
    pub fn open(rootfs: &Path, p: &Path) -> Result<PinnedPath> {
        let fd = nix::fcntl::open(p, nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_NOFOLLOW | nix::fcntl::OFlag::O_CLOEXEC, nix::sys::stat::Mode::empty())
            .with_ctx(|| format!("open {}", p.display()))?;
        let path = PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()));
        let real = std::fs::read_link(&path).with_ctx(|| format!("readlink {}", path.display()))?;
        if !is_within(rootfs, &real) {
            return Err(Error::new(format!("mount destination {} is outside the rootfs ({})", p.display(), real.display())));
        }
        Ok(PinnedPath { fd, path })
    }
    pub fn path(&self) -> &Path {
        &self.path
    }
    /// The same path opened again: after a mount on it, this names the new mount (the
    /// old fd still names the directory underneath).
    pub fn reopen(&self, rootfs: &Path) -> Result<PinnedPath> {
        let real = std::fs::read_link(&self.path).with_ctx(|| format!("readlink {}", self.path.display()))?;
        PinnedPath::open(rootfs, &real)
    }
}

impl AsFd for PinnedPath {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AsRawFd for PinnedPath {
    fn as_raw_fd(&self) -> i32 {
        self.fd.as_raw_fd()
    }
}

/// Copies a directory's entries (files, dirs, symlinks) with their modes.
fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let Ok(rd) = std::fs::read_dir(from) else { return Ok(()) };
    for e in rd.flatten() {
        let md = e.metadata()?;
        let dst = to.join(e.file_name());
        let ft = md.file_type();
        if ft.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(e.path())?, &dst)?;
        } else if ft.is_dir() {
            std::fs::create_dir(&dst)?;
            copy_tree(&e.path(), &dst)?;
        } else if ft.is_file() {
            std::fs::copy(e.path(), &dst)?;
        } else {
            continue;
        }
        if !ft.is_symlink() {
            std::fs::set_permissions(&dst, std::fs::Permissions::from_mode(md.mode() & 0o7777))?;
            let _ = std::os::unix::fs::lchown(&dst, Some(md.uid()), Some(md.gid()));
        }
    }
    Ok(())
}

/// Before a restore: criu remounts the dumped mounts but makes none of their mount
/// points, and a rootfs other than the one dumped (podman's `restore --import` into a new
/// container) lacks those that create made (/etc/hosts, /run/.containerenv, ...). Each
/// mount's destination is made as create makes it, resolved inside the rootfs: a file for
/// a bind of a file, else a directory; none below a tmpfs mount (criu brings back the
/// tmpfs with what was in it) or for cgroup mounts (inside /sys).
pub fn make_mountpoints(spec: &Spec, bundle: &Path, rootfs: &Path) -> Result<()> {
    let tmpfs: Vec<String> =
        spec.mounts.iter().filter(|m| m.typ.as_deref() == Some("tmpfs")).map(|m| berth_spec::rootfs_path::clean_abs(&m.destination)).collect();
    for (i, m) in spec.mounts.iter().enumerate() {
        let clean = berth_spec::rootfs_path::clean_abs(&m.destination);
        let typ = m.typ.as_deref().unwrap_or("");
        if matches!(typ, "cgroup" | "cgroup2") || tmpfs.iter().any(|t| clean != *t && is_within(Path::new(t), Path::new(&clean))) {
            continue;
        }
        let dest = secure_join(rootfs, &clean)?;
        let bind = typ == "bind" || mounts::parse(&m.options).is_bind();
        let file = bind && m.source.as_deref().is_some_and(|s| std::fs::metadata(bundle.join(s)).is_ok_and(|md| !md.is_dir()));
        let made = if file {
            dest.parent().map_or(Ok(()), std::fs::create_dir_all).and_then(|_| match std::fs::symlink_metadata(&dest) {
                Ok(_) => Ok(()),
                Err(_) => std::fs::File::create(&dest).map(drop),
            })
        } else {
            std::fs::create_dir_all(&dest)
        };
        made.with_ctx(|| format!("mounts[{i}]: make the mount point {clean} for the restore"))?;
    }
    Ok(())
}

/// Makes the rootfs "/" with pivot_root, and detaches the old root.
pub fn pivot_root(rootfs: &Path) -> Result<()> {
    use nix::fcntl::{open, OFlag};
    use nix::sys::stat::Mode;
    let old = open("/", OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty()).ctx("open /")?;
    let new = open(rootfs, OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty()).ctx("open rootfs")?;
    nix::unistd::fchdir(&new).ctx("chdir rootfs")?;
    // pivot_root(".", ".") stacks the old root on top of the new one at "/".
    nix::unistd::pivot_root(".", ".").ctx("pivot_root")?;
    nix::unistd::fchdir(&old).ctx("chdir old root")?;
    // Keep the unmount of the old root from propagating to the host.
    mount(NONE, ".", NONE, MsFlags::MS_SLAVE | MsFlags::MS_REC, NONE).ctx("make old root rslave")?;
    umount2(".", MntFlags::MNT_DETACH).ctx("unmount old root")?;
    nix::unistd::chdir("/").ctx("chdir /")?;
    Ok(())
}

/// Stdio that is the caller's /dev/null becomes the container's own /dev/null, as runc
/// does: an open file of the host's /dev keeps a mount of the host reachable from the
/// container, and criu cannot dump it ("Can't lookup mount ... path=/dev/null"), so
/// `podman container checkpoint` of a detached container would fail.
pub fn reopen_dev_null() -> Result<()> {
    use nix::sys::stat::{fstat, major, minor, SFlag};
    let mut null: Option<OwnedFd> = None;
    for fd in 0..3 {
        // SAFETY: fds 0-2 stay open for the init's whole life; this borrow ends here.
        let Ok(st) = fstat(unsafe { BorrowedFd::borrow_raw(fd) }) else { continue };
        let is_null = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFCHR && major(st.st_rdev) == 1 && minor(st.st_rdev) == 3;
        if !is_null {
            continue;
        }
        let n = match &null {
            Some(n) => n,
            None => null.insert(
                nix::fcntl::open("/dev/null", nix::fcntl::OFlag::O_RDWR | nix::fcntl::OFlag::O_CLOEXEC, nix::sys::stat::Mode::empty())
                    .ctx("open the container's /dev/null")?,
            ),
        };
        dup_onto(n.as_fd(), fd).with_ctx(|| format!("put the container's /dev/null on fd {fd}"))?;
    }
    Ok(())
}

/// dup3(2) of `from` onto `to`, without close-on-exec (stdio stays open across exec).
fn dup_onto(from: BorrowedFd, to: i32) -> std::io::Result<()> {
    // SAFETY: dup3 takes two fd numbers; `to` is replaced atomically, nothing else changes.
    if unsafe { libc::dup3(from.as_raw_fd(), to, 0) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Without a mount namespace the container's mounts are made in the caller's, where
/// berth must be able to take them all back: the rootfs is bound onto itself, made
/// private (so nothing mounted below it propagates into other namespaces, where delete
/// could not reach it), the container's mounts go below that bind, and delete detaches
/// the bind with everything under it. Returns the bind's mount id, so that delete
/// unmounts only what berth made.
pub fn bind_root_in_host(rootfs: &Path) -> Result<u64> {
    mount(Some(rootfs), rootfs, NONE, MsFlags::MS_BIND | MsFlags::MS_REC, NONE).with_ctx(|| format!("bind mount rootfs {}", rootfs.display()))?;
    let id = (|| {
        mount(NONE, rootfs, NONE, MsFlags::MS_PRIVATE | MsFlags::MS_REC, NONE).ctx("make rootfs bind private")?;
        mount_api::mount_id(&cpath(rootfs)?).ctx("mount id of rootfs bind")
    })();
    if id.is_err() {
        let _ = umount2(rootfs, MntFlags::MNT_DETACH);
    }
    id
}

/// Undoes [`bind_root_in_host`]: detaches the bind (and every mount the container made
/// below it) if the top mount at `rootfs` is still the one with `id`.
pub fn unbind_root_in_host(rootfs: &Path, id: u64) -> Result<()> {
    match cpath(rootfs).and_then(|p| mount_api::mount_id(&p).map_err(Error::from)) {
        Ok(top) if top == id => umount2(rootfs, MntFlags::MNT_DETACH).with_ctx(|| format!("unmount rootfs bind {}", rootfs.display())),
        // Gone already (unmounted, or the rootfs removed): nothing of ours is left there.
        _ => Ok(()),
    }
}

fn cpath(p: &Path) -> Result<std::ffi::CString> {
    use std::os::unix::ffi::OsStrExt;
    std::ffi::CString::new(p.as_os_str().as_bytes()).map_err(|_| Error::new(format!("{}: path contains NUL", p.display())))
}

/// Without a mount namespace: chroot into the rootfs. pivot_root and MS_MOVE would move
/// the caller's own root.
pub fn chroot_into(rootfs: &Path) -> Result<()> {
    nix::unistd::chdir(rootfs).ctx("chdir rootfs")?;
    chroot_here()
}

/// The same for `exec`, into a root opened beforehand (the init's `/proc/PID/root`).
pub fn chroot_into_fd(root: &OwnedFd) -> Result<()> {
    nix::unistd::fchdir(root).ctx("chdir to the container's root")?;
    chroot_here()
}

fn chroot_here() -> Result<()> {
    nix::unistd::chroot(".").ctx("chroot")?;
    nix::unistd::chdir("/").ctx("chdir /")?;
    Ok(())
}

/// `--no-pivot`: move the rootfs onto "/" and chroot into it (for ramfs roots, where
/// pivot_root cannot work).
pub fn move_root(rootfs: &Path) -> Result<()> {
    nix::unistd::chdir(rootfs).ctx("chdir rootfs")?;
    mount(Some(rootfs), "/", NONE, MsFlags::MS_MOVE, NONE).ctx("move rootfs to /")?;
    nix::unistd::chroot(".").ctx("chroot")?;
    nix::unistd::chdir("/").ctx("chdir /")?;
    Ok(())
}

/// After pivot: the propagation the config asked for on "/" (it applies to the mount
/// that is now the root, which did not exist as such before pivot).
pub fn apply_root_propagation(spec: &Spec) -> Result<()> {
    if let Some(p) = root_propagation(spec)? {
        mount(NONE, "/", NONE, p, NONE).ctx("set / propagation")?;
    }
    Ok(())
}

/// Bind /dev/null over masked files and an empty read-only tmpfs over masked directories.
pub fn mask_paths(paths: &[String]) -> Result<()> {
    for p in paths {
        let md = match std::fs::metadata(p) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e).with_ctx(|| format!("maskedPaths: stat {p}")),
        };
        let r = if md.is_dir() {
            mount(Some("tmpfs"), p.as_str(), Some("tmpfs"), MsFlags::MS_RDONLY, NONE)
        } else {
            mount(Some("/dev/null"), p.as_str(), NONE, MsFlags::MS_BIND, NONE)
        };
        r.with_ctx(|| format!("maskedPaths: mask {p}"))?;
    }
    Ok(())
}

pub fn readonly_paths(paths: &[String]) -> Result<()> {
    for p in paths {
        match mount(Some(p.as_str()), p.as_str(), NONE, MsFlags::MS_BIND | MsFlags::MS_REC, NONE) {
            Err(nix::Error::ENOENT) => continue,
            r => r.with_ctx(|| format!("readonlyPaths: bind {p}"))?,
        }
        let locked = statvfs_flags(Path::new(p))?;
        mount(NONE, p.as_str(), NONE, locked | MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | MsFlags::MS_REC, NONE)
            .with_ctx(|| format!("readonlyPaths: remount {p} read-only"))?;
    }
    Ok(())
}

pub fn readonly_root() -> Result<()> {
    let locked = statvfs_flags(Path::new("/"))?;
    mount(NONE, "/", NONE, locked | MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY, NONE).ctx("remount / read-only")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restore_mountpoints_are_files_for_file_binds_and_none_below_a_tmpfs() {
        let base = std::env::temp_dir().join(format!("berth-mountpoints-{}", std::process::id()));
        let (bundle, rootfs) = (base.join("bundle"), base.join("bundle/rootfs"));
        std::fs::create_dir_all(&rootfs).unwrap();
        std::fs::write(bundle.join("hosts"), "").unwrap();
        std::fs::create_dir_all(bundle.join("data")).unwrap();
        let spec: Spec = serde_json::from_value(serde_json::json!({
            "ociVersion": "1.0.2",
            "mounts": [
                {"destination": "/dev", "type": "tmpfs", "source": "tmpfs"},
                {"destination": "/dev/pts", "type": "devpts", "source": "devpts"},
                {"destination": "/etc/hosts", "type": "bind", "source": "hosts", "options": ["rbind"]},
                {"destination": "/srv/data", "source": base.join("bundle/data"), "options": ["bind"]},
                {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup"}
            ]
        }))
        .unwrap();
        make_mountpoints(&spec, &bundle, &rootfs).unwrap();
        assert!(rootfs.join("dev").is_dir());
        assert!(!rootfs.join("dev/pts").exists(), "made below a tmpfs");
        assert!(rootfs.join("etc/hosts").is_file());
        assert!(rootfs.join("srv/data").is_dir());
        assert!(!rootfs.join("sys").exists(), "made a cgroup mount point");
        std::fs::remove_dir_all(&base).unwrap();
    }
}
