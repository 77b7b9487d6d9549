//! COPY and ADD: writing resolved sources into a stage's rootfs (the overlay merged dir of
//! the step, whose upper dir becomes the layer; or, with `--link`, an empty directory that
//! is the layer by itself).
//!
//! Destination rules (Docker's): a relative destination is relative to WORKDIR; a
//! destination ending in `/` (or `.`) is a directory; several sources need one; a file
//! copied onto an existing directory goes inside it; a directory source copies its
//! contents. Every destination path is resolved inside the rootfs
//! ([`crate::rootfs::secure_join`]: no symlink or `..` leads out of it) and the last
//! component is created with `O_NOFOLLOW` after removing what was there.
//!
//! Ownership is 0:0 or `--chown`, also for the parent directories it creates; `--chmod`
//! applies to every copied file and directory; modes otherwise, and mtimes, come from
//! the source.

pub mod archive;
pub mod chmod;
pub mod git;
pub mod http;

use std::fs::{self, File};
use std::io;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use crate::context::{Context, EntryKind, Source, SourceKind};
use crate::dockerfile::Chmod;
use crate::rootfs::{clean_abs, mkdir_all, secure_join};

/// How to write.
#[derive(Debug, Clone)]
pub struct CopyParams<'a> {
    /// The rootfs written into.
    pub root: &'a Path,
    /// The destination as written (expanded).
    pub dest: &'a str,
    pub workdir: &'a str,
    pub owner: (u32, u32),
    pub chmod: Option<&'a Chmod>,
    /// mtime of inline (heredoc) files.
    pub now: i64,
}

impl CopyParams<'_> {
    /// The absolute destination, and whether it names a directory by its syntax.
    pub fn dest_abs(&self) -> (String, bool) {
        let d = self.dest;
        let is_dir = d.ends_with('/') || d == "." || d.ends_with("/.") || d == ".." || d.ends_with("/..");
        let abs = if d.starts_with('/') { clean_abs(d) } else { clean_abs(&format!("{}/{}", self.workdir, d)) };
        (abs, is_dir)
    }
}

fn err(what: &str, e: io::Error) -> crate::Error {
    crate::Error::from(e).context(what)
}

fn join(dir: &str, name: &str) -> String {
    if name.is_empty() {
        dir.to_string()
    } else if dir == "/" {
        format!("/{name}")
    } else {
        format!("{dir}/{name}")
    }
}

/// One item to place: a file/dir/link at an absolute path of the rootfs.
enum Item<'a> {
    Entry { src: &'a Context, entry: &'a crate::context::Entry },
    Inline { data: &'a [u8] },
}

/// Whether `abs` is an existing directory in the rootfs (following symlinks inside it).
pub fn is_dir_in(root: &Path, abs: &str) -> bool {
    secure_join(root, abs, true).map(|p| p.is_dir()).unwrap_or(false)
}

/// Copies resolved `sources` of `ctx` and inline files (`(name, content)`) to the
/// destination. Returns the number of entries written.
pub fn copy(p: &CopyParams, ctx: &Context, sources: &[Source], inline: &[(String, Vec<u8>)]) -> crate::Result<u64> {
    let (dest, dest_is_dir_syntax) = p.dest_abs();
    let items = sources.len() + inline.len();
    if items > 1 && !dest_is_dir_syntax {
        return Err("When using COPY with more than one source file, the destination must be a directory and end with a /".into());
    }
    let mut n = 0;
    for s in sources {
        match s.kind {
            SourceKind::Dir => {
                // The destination directory itself, with the source dir's mode if created.
                let target = secure_join(p.root, &dest, true).map_err(|e| err(&dest, e))?;
                if !target.is_dir() {
                    mkdir_all(p.root, &target, Some(p.owner)).map_err(|e| err(&dest, e))?;
                    let mode = p.chmod.map(|c| chmod::apply(c, s.mode & 0o7777, true)).unwrap_or(s.mode & 0o7777);
                    fs::set_permissions(&target, fs::Permissions::from_mode(mode)).map_err(|e| err(&dest, e))?;
                }
                for e in &s.entries {
                    place(p, &join(&dest, &e.dest), Item::Entry { src: ctx, entry: e })?;
                    n += 1;
                }
            }
            SourceKind::File | SourceKind::Other => {
                for e in &s.entries {
                    let into_dir = dest_is_dir_syntax || is_dir_in(p.root, &dest);
                    let target = if into_dir { join(&dest, &e.dest) } else { dest.clone() };
                    place(p, &target, Item::Entry { src: ctx, entry: e })?;
                    n += 1;
                }
            }
        }
    }
    for (name, data) in inline {
        let into_dir = dest_is_dir_syntax || is_dir_in(p.root, &dest);
        let target = if into_dir { join(&dest, name) } else { dest.clone() };
        place(p, &target, Item::Inline { data })?;
        n += 1;
    }
    Ok(n)
}

/// Writes one item at `abs` (absolute in the rootfs).
fn place(p: &CopyParams, abs: &str, item: Item) -> crate::Result<()> {
    let (parent, name) = match abs.rfind('/') {
        Some(i) => (if i == 0 { "/" } else { &abs[..i] }, &abs[i + 1..]),
        None => ("/", abs),
    };
    if name.is_empty() {
        return Ok(());
    }
    let parent_host = secure_join(p.root, parent, true).map_err(|e| err(parent, e))?;
    mkdir_all(p.root, &parent_host, Some(p.owner)).map_err(|e| err(parent, e))?;
    let full = parent_host.join(name);
    let existing = fs::symlink_metadata(&full).ok();
    let (uid, gid) = p.owner;
    match item {
        Item::Inline { data } => {
            remove_non_dir(&full, existing.as_ref(), abs)?;
            let mut f = create(&full, abs)?;
            io::Write::write_all(&mut f, data).map_err(|e| err(abs, e))?;
            finish_file(&f, uid, gid, p.chmod.map(|c| chmod::apply(c, 0o644, false)).unwrap_or(0o644), p.now, abs)?;
        }
        Item::Entry { src, entry } => {
            let host = src.host_path(&entry.path);
            let md = fs::symlink_metadata(&host).map_err(|e| err(&entry.path, e))?;
            let mode = |is_dir: bool| p.chmod.map(|c| chmod::apply(c, entry.perm(), is_dir)).unwrap_or(entry.perm());
            match &entry.kind {
                EntryKind::Dir => {
                    match &existing {
                        Some(m) if m.is_dir() => {}
                        _ => {
                            remove_non_dir(&full, existing.as_ref(), abs)?;
                            fs::create_dir(&full).map_err(|e| err(abs, e))?;
                        }
                    }
                    std::os::unix::fs::lchown(&full, Some(uid), Some(gid)).map_err(|e| err(abs, e))?;
                    fs::set_permissions(&full, fs::Permissions::from_mode(mode(true))).map_err(|e| err(abs, e))?;
                    archive::set_mtime(&full, md.mtime());
                }
                EntryKind::File => {
                    remove_non_dir(&full, existing.as_ref(), abs)?;
                    let mut from = File::open(&host).map_err(|e| err(&entry.path, e))?;
                    let mut f = create(&full, abs)?;
                    io::copy(&mut from, &mut f).map_err(|e| err(abs, e))?;
                    finish_file(&f, uid, gid, mode(false), md.mtime(), abs)?;
                }
                EntryKind::Symlink { target } => {
                    remove_non_dir(&full, existing.as_ref(), abs)?;
                    std::os::unix::fs::symlink(target, &full).map_err(|e| err(abs, e))?;
                    std::os::unix::fs::lchown(&full, Some(uid), Some(gid)).map_err(|e| err(abs, e))?;
                    archive::set_mtime(&full, md.mtime());
                }
                EntryKind::Other => {
                    remove_non_dir(&full, existing.as_ref(), abs)?;
                    let c = std::ffi::CString::new(std::os::unix::ffi::OsStrExt::as_bytes(full.as_os_str())).map_err(crate::Error::msg)?;
                    // SAFETY: mknod(2) with a valid C string.
                    if unsafe { libc::mknod(c.as_ptr(), (md.mode() & libc::S_IFMT) | 0o600, md.rdev() as libc::dev_t) } < 0 {
                        let e = io::Error::last_os_error();
                        if md.mode() & libc::S_IFMT == libc::S_IFSOCK {
                            return Ok(()); // sockets are not copied
                        }
                        return Err(err(abs, e));
                    }
                    std::os::unix::fs::lchown(&full, Some(uid), Some(gid)).map_err(|e| err(abs, e))?;
                    fs::set_permissions(&full, fs::Permissions::from_mode(mode(false))).map_err(|e| err(abs, e))?;
                    archive::set_mtime(&full, md.mtime());
                }
            }
        }
    }
    Ok(())
}

fn create(full: &Path, abs: &str) -> crate::Result<File> {
    fs::OpenOptions::new().write(true).create_new(true).custom_flags(libc::O_NOFOLLOW).mode(0o600).open(full).map_err(|e| err(abs, e))
}

fn finish_file(f: &File, uid: u32, gid: u32, mode: u32, mtime: i64, abs: &str) -> crate::Result<()> {
    // chown first: it clears setuid/setgid, which the chmod then sets.
    std::os::unix::fs::fchown(f, Some(uid), Some(gid)).map_err(|e| err(abs, e))?;
    f.set_permissions(fs::Permissions::from_mode(mode)).map_err(|e| err(abs, e))?;
    let ts = [libc::timespec { tv_sec: mtime as libc::time_t, tv_nsec: 0 }, libc::timespec { tv_sec: mtime as libc::time_t, tv_nsec: 0 }];
    // SAFETY: futimens on an fd we own with two timespecs.
    unsafe { libc::futimens(std::os::fd::AsRawFd::as_raw_fd(f), ts.as_ptr()) };
    Ok(())
}

fn remove_non_dir(full: &Path, existing: Option<&fs::Metadata>, abs: &str) -> crate::Result<()> {
    match existing {
        None => Ok(()),
        Some(m) if m.is_dir() => Err(format!("cannot copy to {abs}: a directory is in the way").into()),
        Some(_) => fs::remove_file(full).map_err(|e| err(abs, e)),
    }
}

/// Writes a downloaded or single file (ADD of a URL) at the destination: into it when it
/// is a directory, else as it. Mode `mode`, mtime `mtime`.
pub fn place_file(p: &CopyParams, file: &Path, name: &str, mode: u32, mtime: i64) -> crate::Result<()> {
    let (dest, dir_syntax) = p.dest_abs();
    let target = if dir_syntax || is_dir_in(p.root, &dest) { join(&dest, name) } else { dest };
    let data = fs::read(file).map_err(|e| err(&file.display().to_string(), e))?;
    let (parent, leaf) = match target.rfind('/') {
        Some(i) => (if i == 0 { "/".to_string() } else { target[..i].to_string() }, target[i + 1..].to_string()),
        None => ("/".to_string(), target.clone()),
    };
    let parent_host = secure_join(p.root, &parent, true).map_err(|e| err(&parent, e))?;
    mkdir_all(p.root, &parent_host, Some(p.owner)).map_err(|e| err(&parent, e))?;
    let full = parent_host.join(&leaf);
    let existing = fs::symlink_metadata(&full).ok();
    remove_non_dir(&full, existing.as_ref(), &target)?;
    let mut f = create(&full, &target)?;
    io::Write::write_all(&mut f, &data).map_err(|e| err(&target, e))?;
    let mode = p.chmod.map(|c| chmod::apply(c, mode, false)).unwrap_or(mode);
    finish_file(&f, p.owner.0, p.owner.1, mode, mtime, &target)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::PatternMatcher;

    fn tmp(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("bb-copy-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn copies_with_docker_rules() {
        let base = tmp("rules");
        let ctxdir = base.join("ctx");
        let root = base.join("root");
        fs::create_dir_all(ctxdir.join("dir/sub")).unwrap();
        fs::create_dir_all(root.join("etc")).unwrap();
        fs::write(ctxdir.join("a.txt"), "A").unwrap();
        fs::write(ctxdir.join("dir/sub/b.txt"), "B").unwrap();
        std::os::unix::fs::symlink("/etc", root.join("link")).unwrap();
        let ctx = Context::open(&ctxdir, PatternMatcher::default()).unwrap();
        let params = |dest: &'static str| CopyParams { root: &root, dest, workdir: "/work", owner: (7, 8), chmod: None, now: 0 };

        let s = ctx.resolve_sources(&["a.txt".into()]).unwrap();
        copy(&params("rel.txt"), &ctx, &s, &[]).unwrap();
        assert_eq!(fs::read_to_string(root.join("work/rel.txt")).unwrap(), "A");
        assert_eq!(fs::metadata(root.join("work")).unwrap().uid(), 7);
        copy(&params("/link/"), &ctx, &s, &[]).unwrap();
        assert_eq!(fs::read_to_string(root.join("etc/a.txt")).unwrap(), "A");
        let s = ctx.resolve_sources(&["dir".into()]).unwrap();
        copy(&params("/d"), &ctx, &s, &[]).unwrap();
        assert_eq!(fs::read_to_string(root.join("d/sub/b.txt")).unwrap(), "B");
        let s = ctx.resolve_sources(&["a.txt".into(), "dir".into()]).unwrap();
        assert!(copy(&params("/x"), &ctx, &s, &[]).unwrap_err().to_string().contains("must be a directory"));
        copy(&params("/x/"), &ctx, &[], &[("inline".into(), b"hi\n".to_vec())]).unwrap();
        assert_eq!(fs::read_to_string(root.join("x/inline")).unwrap(), "hi\n");
        let c = Chmod::Octal(0o700);
        let s = ctx.resolve_sources(&["a.txt".into()]).unwrap();
        copy(&CopyParams { chmod: Some(&c), ..params("/m.txt") }, &ctx, &s, &[]).unwrap();
        assert_eq!(fs::metadata(root.join("m.txt")).unwrap().mode() & 0o7777, 0o700);
        fs::remove_dir_all(&base).unwrap();
    }
}
