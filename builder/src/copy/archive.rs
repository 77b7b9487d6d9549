//! ADD of a local tar archive (plain, gzip, zstd; bzip2 and xz through the host's
//! `bzip2`/`xz`): extracted into the destination directory as Docker does, owners and
//! modes from the archive (unless `--chown`), whiteout files not interpreted.
//!
//! Hostile archives: an entry path with `..` is refused; every entry is placed with the
//! destination directory as its root (a symlink in the archive, absolute or relative, can
//! only lead elsewhere inside that directory, like Docker's chrooted untar); hard links
//! must point inside it too; the last component is never followed.

use crate::error::Context as _;
use std::ffi::OsStr;
use std::fs::{self, File};
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::context::ArchiveKind;
use crate::layer::tar::{clean_path, Kind, TarReader};
use crate::rootfs::{mkdir_all, secure_join};

/// A decompressing reader for `path` of archive kind `kind`.
pub fn open_archive(path: &Path, kind: ArchiveKind) -> crate::Result<Box<dyn Read + Send>> {
    let f = File::open(path).with_context(|| path.display().to_string())?;
    match kind {
        ArchiveKind::Tar | ArchiveKind::Gzip | ArchiveKind::Zstd => crate::layer::compress::decompress(f).with_context(|| path.display().to_string()),
        ArchiveKind::Bzip2 | ArchiveKind::Xz => {
            let tool = if kind == ArchiveKind::Bzip2 { "bzip2" } else { "xz" };
            let mut child = Command::new(tool)
                .arg("-dc")
                .stdin(Stdio::from(f))
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .with_context(|| format!("{}: a {tool} archive needs the host's {tool} command", path.display()))?;
            let out = child.stdout.take().expect("piped");
            Ok(Box::new(ChildReader { out, child }))
        }
    }
}

struct ChildReader {
    out: std::process::ChildStdout,
    child: std::process::Child,
}

impl Read for ChildReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.out.read(buf)?;
        if n == 0 {
            let st = self.child.wait()?;
            if !st.success() {
                return Err(io::Error::other(format!("decompressor failed: {st}")));
            }
        }
        Ok(n)
    }
}

impl Drop for ChildReader {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether the (decompressed) stream of `path` starts with a tar header: a compressed
/// file that is not a tar is copied as is, as Docker does.
pub fn is_tar(path: &Path, kind: ArchiveKind) -> bool {
    let Ok(mut r) = open_archive(path, kind) else { return false };
    let mut head = [0u8; 512];
    let mut n = 0;
    while n < head.len() {
        match r.read(&mut head[n..]) {
            Ok(0) | Err(_) => break,
            Ok(k) => n += k,
        }
    }
    crate::context::add::is_tar_header(&head[..n])
}

fn io_msg(what: &str, e: io::Error) -> String {
    format!("{what}: {e}")
}

/// Extracts the tar stream `r` into `dest` (a directory, resolved inside `root`, created).
pub fn extract(root: &Path, dest_abs: &str, r: impl Read, chown: Option<(u32, u32)>) -> crate::Result<u64> {
    let dest = secure_join(root, dest_abs, true).map_err(|e| io_msg(dest_abs, e))?;
    mkdir_all(root, &dest, chown).map_err(|e| io_msg(dest_abs, e))?;
    let mut tr = TarReader::new(r);
    let mut dirs: Vec<(PathBuf, i64)> = Vec::new();
    let mut count = 0u64;
    while let Some(h) = tr.next_entry().context("reading archive")? {
        let shown = String::from_utf8_lossy(&h.path).into_owned();
        let rel = clean_path(&h.path).ok_or_else(|| format!("archive entry {shown:?} climbs out of the destination (..): refused"))?;
        if rel.is_empty() {
            continue;
        }
        let rel_str = String::from_utf8_lossy(&rel).into_owned();
        let (parent_rel, name) = match rel.iter().rposition(|b| *b == b'/') {
            Some(i) => (String::from_utf8_lossy(&rel[..i]).into_owned(), rel[i + 1..].to_vec()),
            None => (String::new(), rel.clone()),
        };
        let parent = secure_join(&dest, &parent_rel, true).map_err(|e| io_msg(&shown, e))?;
        mkdir_all(&dest, &parent, chown).map_err(|e| io_msg(&shown, e))?;
        let full = parent.join(OsStr::from_bytes(&name));
        if let Ok(md) = fs::symlink_metadata(&full) {
            if !(md.is_dir() && h.kind == Kind::Dir) {
                if md.is_dir() {
                    fs::remove_dir_all(&full).map_err(|e| io_msg(&shown, e))?;
                } else {
                    fs::remove_file(&full).map_err(|e| io_msg(&shown, e))?;
                }
            }
        }
        let (uid, gid) = chown.unwrap_or((h.uid as u32, h.gid as u32));
        match h.kind {
            Kind::Dir => {
                if !full.is_dir() {
                    fs::create_dir(&full).map_err(|e| io_msg(&shown, e))?;
                }
                dirs.push((full.clone(), h.mtime));
            }
            Kind::File => {
                let mut f = fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .custom_flags(libc::O_NOFOLLOW)
                    .mode(0o600)
                    .open(&full)
                    .map_err(|e| io_msg(&shown, e))?;
                io::copy(&mut (&mut tr).take(h.size), &mut f).map_err(|e| io_msg(&shown, e))?;
            }
            Kind::Symlink => {
                std::os::unix::fs::symlink(OsStr::from_bytes(&h.link), &full).map_err(|e| io_msg(&shown, e))?;
            }
            Kind::Hardlink => {
                let target_rel = clean_path(&h.link).ok_or_else(|| format!("archive hard link {shown:?} points out of the destination: refused"))?;
                let target = secure_join(&dest, &String::from_utf8_lossy(&target_rel), false).map_err(|e| io_msg(&shown, e))?;
                fs::hard_link(&target, &full).map_err(|e| io_msg(&format!("{shown} (link to {})", String::from_utf8_lossy(&h.link)), e))?;
                count += 1;
                continue; // shares the target's inode: metadata is the target's
            }
            Kind::Char | Kind::Block | Kind::Fifo => {
                let t = match h.kind {
                    Kind::Char => libc::S_IFCHR,
                    Kind::Block => libc::S_IFBLK,
                    _ => libc::S_IFIFO,
                };
                let c = std::ffi::CString::new(full.as_os_str().as_bytes()).map_err(crate::Error::msg)?;
                let dev = libc::makedev(h.devmajor as u32, h.devminor as u32);
                // SAFETY: mknod(2) with a valid C string.
                if unsafe { libc::mknod(c.as_ptr(), t | 0o600, dev) } < 0 {
                    return Err(io_msg(&shown, io::Error::last_os_error()).into());
                }
            }
        }
        std::os::unix::fs::lchown(&full, Some(uid), Some(gid)).map_err(|e| io_msg(&shown, e))?;
        if h.kind != Kind::Symlink {
            fs::set_permissions(&full, fs::Permissions::from_mode(h.mode)).map_err(|e| io_msg(&shown, e))?;
        }
        for (k, v) in &h.xattrs {
            set_xattr(&full, k, v);
        }
        if h.kind != Kind::Dir {
            set_mtime(&full, h.mtime);
        }
        let _ = rel_str;
        count += 1;
    }
    // Directory times last: adding entries changed them.
    for (d, t) in dirs.iter().rev() {
        set_mtime(d, *t);
    }
    Ok(count)
}

fn set_xattr(p: &Path, name: &[u8], value: &[u8]) {
    let (Ok(cp), Ok(cn)) = (std::ffi::CString::new(p.as_os_str().as_bytes()), std::ffi::CString::new(name)) else {
        return;
    };
    // SAFETY: lsetxattr with valid C strings and a value buffer; failures are ignored
    // (best effort, as Docker on filesystems without xattrs).
    unsafe { libc::lsetxattr(cp.as_ptr(), cn.as_ptr(), value.as_ptr() as *const libc::c_void, value.len(), 0) };
}

/// Sets atime and mtime of `p` (not following a symlink).
pub fn set_mtime(p: &Path, secs: i64) {
    let Ok(c) = std::ffi::CString::new(p.as_os_str().as_bytes()) else { return };
    let ts = [libc::timespec { tv_sec: secs as libc::time_t, tv_nsec: 0 }, libc::timespec { tv_sec: secs as libc::time_t, tv_nsec: 0 }];
    // SAFETY: utimensat with a valid C string and two timespecs.
    unsafe { libc::utimensat(libc::AT_FDCWD, c.as_ptr(), ts.as_ptr(), libc::AT_SYMLINK_NOFOLLOW) };
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer::tar::{Header, TarWriter, WriteSink};

    fn tarball(entries: &[(Kind, &str, &str, &[u8])]) -> Vec<u8> {
        let mut w = TarWriter::new(WriteSink(Vec::new()), 4096);
        for (kind, path, link, data) in entries {
            let h = Header {
                kind: *kind,
                path: path.as_bytes().to_vec(),
                link: link.as_bytes().to_vec(),
                mode: if *kind == Kind::Dir { 0o755 } else { 0o644 },
                size: data.len() as u64,
                mtime: 1_000_000,
                ..Default::default()
            };
            w.append_header(&h).unwrap();
            if !data.is_empty() {
                w.append_data(data).unwrap();
            }
        }
        let (sink, _) = w.finish().unwrap();
        sink.0
    }

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("bb-archive-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn extracts_and_confines() {
        let root = tmp("ok");
        let t = tarball(&[
            (Kind::Dir, "app", "", b""),
            (Kind::File, "app/a.txt", "", b"hello"),
            (Kind::Symlink, "app/evil", "/etc", b""),
            (Kind::File, "app/evil/passwd", "", b"pwned"),
            (Kind::Hardlink, "app/b.txt", "app/a.txt", b""),
        ]);
        extract(&root, "/dst", &t[..], None).unwrap();
        assert_eq!(fs::read_to_string(root.join("dst/app/a.txt")).unwrap(), "hello");
        assert_eq!(fs::read_to_string(root.join("dst/app/b.txt")).unwrap(), "hello");
        // The symlink to /etc resolved inside dst: nothing outside it was written.
        assert_eq!(fs::read_to_string(root.join("dst/etc/passwd")).unwrap(), "pwned");
        assert!(!root.join("etc").exists());
        let bad = tarball(&[(Kind::File, "../../escape", "", b"x")]);
        assert!(extract(&root, "/dst", &bad[..], None).unwrap_err().to_string().contains("refused"));
        assert!(!root.parent().unwrap().join("escape").exists());
        fs::remove_dir_all(&root).unwrap();
    }
}
