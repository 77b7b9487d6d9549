//! Layer tests: overlay whiteouts both ways (hand-made upper dirs and a real overlay
//! mount), hostile tar entries, reproducible digests, flattening, import. Need root.

use super::sys;
use super::tar::{Header, Kind, TarReader, TarWriter, WriteSink};
use super::*;
use crate::store::Store;
use std::ffi::CString;
use std::fs;
use std::io::Read;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

static N: AtomicUsize = AtomicUsize::new(0);

/// A temp dir removed (after unmounting what it registered) on drop.
pub(crate) struct Tmp {
    pub dir: PathBuf,
    mounts: Vec<PathBuf>,
}

impl Tmp {
    pub(crate) fn new(tag: &str) -> Tmp {
        let dir = std::env::temp_dir().join(format!("berth-layer-{tag}-{}-{}", std::process::id(), N.fetch_add(1, Ordering::SeqCst)));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        Tmp { dir, mounts: Vec::new() }
    }
    pub(crate) fn p(&self, rel: &str) -> PathBuf {
        self.dir.join(rel)
    }
    pub(crate) fn mkdir(&self, rel: &str) -> PathBuf {
        let p = self.p(rel);
        fs::create_dir_all(&p).unwrap();
        p
    }
    fn mount_overlay(&mut self, lower: &str, upper: &Path, work: &Path, merged: &Path) {
        let data = CString::new(format!("lowerdir={lower},upperdir={},workdir={}", upper.display(), work.display())).unwrap();
        let t = CString::new("overlay").unwrap();
        let m = CString::new(merged.to_str().unwrap()).unwrap();
        // SAFETY: mount(2) with valid C strings.
        let r = unsafe { libc::mount(t.as_ptr(), m.as_ptr(), t.as_ptr(), 0, data.as_ptr() as *const libc::c_void) };
        assert_eq!(r, 0, "mount overlay: {}", std::io::Error::last_os_error());
        self.mounts.push(merged.to_path_buf());
    }
    fn umount_all(&mut self) {
        for m in self.mounts.drain(..).rev() {
            let c = CString::new(m.to_str().unwrap()).unwrap();
            // SAFETY: umount2(2) with a valid C string.
            unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
        }
    }
}

impl Drop for Tmp {
    fn drop(&mut self) {
        self.umount_all();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

pub(crate) fn mknod(path: &Path, kind: libc::mode_t, major: u64, minor: u64) {
    let c = CString::new(path.to_str().unwrap()).unwrap();
    // SAFETY: mknod(2) with a valid C string.
    let r = unsafe { libc::mknod(c.as_ptr(), kind | 0o644, sys::makedev(major, minor)) };
    assert_eq!(r, 0, "mknod {}: {}", path.display(), std::io::Error::last_os_error());
}

pub(crate) fn set_xattr(path: &Path, name: &str, value: &[u8]) {
    let p = CString::new(path.to_str().unwrap()).unwrap();
    let n = CString::new(name).unwrap();
    sys::set_xattr(&sys::XattrTarget::Path(&p), &n, value).unwrap_or_else(|e| panic!("setxattr {name} on {}: {e}", path.display()));
}

pub(crate) fn get_xattr(path: &Path, name: &str) -> Option<Vec<u8>> {
    let p = CString::new(path.to_str().unwrap()).unwrap();
    let n = CString::new(name).unwrap();
    sys::get_xattr(&sys::XattrTarget::Path(&p), &n).unwrap()
}

/// The entries of a stored layer blob.
pub(crate) fn entries(store: &Store, blob: &berth_spec::image::Digest) -> Vec<(Header, Vec<u8>)> {
    let mut r = TarReader::new(compress::decompress(store.open_blob(blob).unwrap()).unwrap());
    let mut out = Vec::new();
    while let Some(h) = r.next_entry().unwrap() {
        let mut d = Vec::new();
        r.read_to_end(&mut d).unwrap();
        out.push((h, d));
    }
    out
}

fn names(e: &[(Header, Vec<u8>)]) -> Vec<String> {
    e.iter().map(|(h, _)| String::from_utf8_lossy(&h.path).into_owned()).collect()
}

fn find<'a>(e: &'a [(Header, Vec<u8>)], path: &str) -> &'a (Header, Vec<u8>) {
    e.iter().find(|(h, _)| h.path == path.as_bytes()).unwrap_or_else(|| panic!("no entry {path} in {:?}", names(e)))
}

fn is_whiteout_dev(p: &Path) -> bool {
    use std::os::unix::fs::FileTypeExt;
    fs::symlink_metadata(p).map(|m| m.file_type().is_char_device() && m.rdev() == 0).unwrap_or(false)
}

/// An upper dir made by hand the way overlayfs makes one.
fn sample_upper(t: &Tmp) -> PathBuf {
    let u = t.mkdir("upper");
    fs::create_dir_all(u.join("etc/opaque/sub")).unwrap();
    fs::write(u.join("etc/opaque/sub/new"), b"new").unwrap();
    set_xattr(&u.join("etc/opaque"), "trusted.overlay.opaque", b"y");
    mknod(&u.join("etc/deleted"), libc::S_IFCHR, 0, 0);
    fs::write(u.join("etc/file"), b"hello").unwrap();
    std::os::unix::fs::chown(u.join("etc/file"), Some(1000), Some(1001)).unwrap();
    fs::set_permissions(u.join("etc/file"), fs::Permissions::from_mode(0o4755)).unwrap();
    fs::hard_link(u.join("etc/file"), u.join("etc/hard")).unwrap();
    symlink("../etc/file", u.join("etc/sym")).unwrap();
    mknod(&u.join("etc/null"), libc::S_IFCHR, 1, 3);
    mknod(&u.join("etc/fifo"), libc::S_IFIFO, 0, 0);
    set_xattr(&u.join("etc/file"), "security.capability", &[1, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    set_xattr(&u.join("etc/file"), "user.note", b"kept");
    set_xattr(&u.join("etc/file"), "trusted.overlay.origin", b"dropped");
    fs::write(u.join("big"), vec![0x5a; 3 << 20]).unwrap();
    u
}

#[test]
fn diff_turns_overlay_whiteouts_into_oci_ones() {
    let t = Tmp::new("diff");
    let store = Store::open(t.p("store")).unwrap();
    let upper = sample_upper(&t);
    let blob = diff(&store, &upper, &DiffOptions::default()).unwrap();
    assert_eq!(blob.descriptor.media_type, berth_spec::image::MEDIA_TYPE_OCI_LAYER_GZIP);
    assert_eq!(blob.descriptor.size, store.blob_size(&blob.descriptor.digest).unwrap());
    let e = entries(&store, &blob.descriptor.digest);
    // Sorted, dirs first in their own position, the opaque marker right after its dir.
    let n = names(&e);
    assert_eq!(
        n,
        [
            "big",
            "etc/",
            "etc/.wh.deleted",
            "etc/fifo",
            "etc/file",
            "etc/hard",
            "etc/null",
            "etc/opaque/",
            "etc/opaque/.wh..wh..opq",
            "etc/opaque/sub/",
            "etc/opaque/sub/new",
            "etc/sym"
        ]
    );
    let (f, data) = find(&e, "etc/file");
    assert_eq!((f.kind, f.mode, f.uid, f.gid, data.as_slice()), (Kind::File, 0o4755, 1000, 1001, &b"hello"[..]));
    let xn: Vec<&[u8]> = f.xattrs.iter().map(|(k, _)| k.as_slice()).collect();
    assert_eq!(xn, [&b"security.capability"[..], b"user.note"], "trusted.overlay.* is never recorded");
    let (h, _) = find(&e, "etc/hard");
    assert_eq!((h.kind, h.link.as_slice()), (Kind::Hardlink, &b"etc/file"[..]));
    let (s, _) = find(&e, "etc/sym");
    assert_eq!((s.kind, s.link.as_slice()), (Kind::Symlink, &b"../etc/file"[..]));
    let (d, _) = find(&e, "etc/null");
    assert_eq!((d.kind, d.devmajor, d.devminor), (Kind::Char, 1, 3));
    assert_eq!(find(&e, "etc/fifo").0.kind, Kind::Fifo);
    let (w, _) = find(&e, "etc/.wh.deleted");
    assert_eq!((w.kind, w.size), (Kind::File, 0));
    assert_eq!(find(&e, "big").1.len(), 3 << 20);
    for (h, _) in &e {
        assert!(h.xattrs.iter().all(|(k, _)| !k.starts_with(b"trusted.overlay")));
    }
    // The diff_id is the sha256 of the uncompressed stream.
    let mut plain = Vec::new();
    compress::decompress(store.open_blob(&blob.descriptor.digest).unwrap()).unwrap().read_to_end(&mut plain).unwrap();
    assert_eq!(crate::store::hash::sha256(&plain), blob.diff_id);
    assert_eq!(plain.len() as u64, blob.tar_size);

    // And back: an overlay lowerdir with the overlay's own markers.
    let low = t.mkdir("lower-from-tar");
    let st = unpack_blob(&store, &blob.descriptor.digest, &low, &UnpackOptions::overlay()).unwrap();
    assert_eq!(st.diff_id, blob.diff_id);
    assert!(is_whiteout_dev(&low.join("etc/deleted")));
    assert_eq!(get_xattr(&low.join("etc/opaque"), "trusted.overlay.opaque").as_deref(), Some(&b"y"[..]));
    let md = fs::symlink_metadata(low.join("etc/file")).unwrap();
    assert_eq!((md.mode() & 0o7777, md.uid(), md.gid()), (0o4755, 1000, 1001));
    assert_eq!(md.ino(), fs::symlink_metadata(low.join("etc/hard")).unwrap().ino());
    assert_eq!(get_xattr(&low.join("etc/file"), "security.capability").unwrap()[0], 1);
    assert_eq!(get_xattr(&low.join("etc/file"), "user.note").as_deref(), Some(&b"kept"[..]));
    assert_eq!(fs::read_link(low.join("etc/sym")).unwrap(), Path::new("../etc/file"));
    assert_eq!(fs::symlink_metadata(low.join("etc/null")).unwrap().rdev(), sys::makedev(1, 3));
    // Same mtimes as the source (dirs too, set after their children).
    for p in ["etc", "etc/file", "etc/opaque/sub", "big"] {
        assert_eq!(fs::symlink_metadata(low.join(p)).unwrap().mtime(), fs::symlink_metadata(upper.join(p)).unwrap().mtime(), "{p}");
    }
    // Diffing the unpacked dir gives the same layer.
    let again = diff(&store, &low, &DiffOptions::default()).unwrap();
    let ea = entries(&store, &again.descriptor.digest);
    for (x, y) in e.iter().zip(&ea) {
        assert_eq!(x.0, y.0);
    }
    assert_eq!(again.diff_id, blob.diff_id);
    assert_eq!(again.descriptor.digest, blob.descriptor.digest);
}

#[test]
fn real_overlay_mount_round_trips() {
    let mut t = Tmp::new("ovl");
    let store = Store::open(t.p("store")).unwrap();
    let lower = t.mkdir("lower");
    fs::create_dir_all(lower.join("keep")).unwrap();
    fs::write(lower.join("keep/a"), b"a").unwrap();
    fs::write(lower.join("gone"), b"x").unwrap();
    fs::create_dir_all(lower.join("replaced/old")).unwrap();
    fs::write(lower.join("replaced/old/f"), b"old").unwrap();
    let (upper, work, merged) = (t.mkdir("upper"), t.mkdir("work"), t.mkdir("merged"));
    t.mount_overlay(lower.to_str().unwrap(), &upper, &work, &merged);
    fs::remove_file(merged.join("gone")).unwrap();
    fs::remove_dir_all(merged.join("replaced")).unwrap();
    fs::create_dir(merged.join("replaced")).unwrap();
    fs::write(merged.join("replaced/new"), b"new").unwrap();
    fs::write(merged.join("keep/b"), b"b").unwrap();
    t.umount_all();

    let blob = diff(&store, &upper, &DiffOptions::default()).unwrap();
    let e = entries(&store, &blob.descriptor.digest);
    let n = names(&e);
    assert!(n.contains(&".wh.gone".to_string()), "{n:?}");
    assert!(n.contains(&"replaced/.wh..wh..opq".to_string()), "{n:?}");
    assert!(n.contains(&"keep/b".to_string()) && !n.contains(&"keep/a".to_string()), "{n:?}");

    // Unpacked as a lowerdir over the same lower: the merged view is what the container saw.
    let layer = t.mkdir("layer");
    unpack_blob(&store, &blob.descriptor.digest, &layer, &UnpackOptions::overlay()).unwrap();
    let (u2, w2, m2) = (t.mkdir("upper2"), t.mkdir("work2"), t.mkdir("merged2"));
    t.mount_overlay(&format!("{}:{}", layer.display(), lower.display()), &u2, &w2, &m2);
    assert!(!m2.join("gone").exists());
    assert!(!m2.join("replaced/old").exists(), "opaque dir hides the lower contents");
    assert_eq!(fs::read(m2.join("replaced/new")).unwrap(), b"new");
    assert_eq!(fs::read(m2.join("keep/a")).unwrap(), b"a");
    assert_eq!(fs::read(m2.join("keep/b")).unwrap(), b"b");
    t.umount_all();

    // Flattened over the lower's own layer: the same tree.
    let lower_blob = diff(&store, &lower, &DiffOptions::default()).unwrap();
    let flat = t.mkdir("flat");
    unpack_blob(&store, &lower_blob.descriptor.digest, &flat, &UnpackOptions::flatten()).unwrap();
    unpack_blob(&store, &blob.descriptor.digest, &flat, &UnpackOptions::flatten()).unwrap();
    assert!(!flat.join("gone").exists());
    assert!(!flat.join("replaced/old").exists());
    assert_eq!(fs::read(flat.join("replaced/new")).unwrap(), b"new");
    assert_eq!(fs::read(flat.join("keep/a")).unwrap(), b"a");
    assert!(!flat.join(".wh.gone").exists() && !flat.join("replaced/.wh..wh..opq").exists());
}

#[test]
fn opaque_marker_keeps_what_the_same_layer_added_when_flattening() {
    // A tar where the opaque marker comes after the dir's new children (allowed by OCI).
    let t = Tmp::new("opq");
    let dest = t.mkdir("root");
    fs::create_dir_all(dest.join("d/old")).unwrap();
    fs::write(dest.join("d/oldfile"), b"o").unwrap();
    let tar = tar_of(&[(hdr(Kind::Dir, "d", ""), vec![]), (hdr(Kind::File, "d/new", ""), b"n".to_vec()), (hdr(Kind::File, "d/.wh..wh..opq", ""), vec![])]);
    unpack(&tar[..], &dest, &UnpackOptions::flatten()).unwrap();
    let mut left: Vec<String> = fs::read_dir(dest.join("d")).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    left.sort();
    assert_eq!(left, ["new"]);
}

pub(crate) fn hdr(kind: Kind, path: &str, link: &str) -> Header {
    Header { kind, path: path.as_bytes().to_vec(), link: link.as_bytes().to_vec(), mode: 0o644, ..Default::default() }
}

pub(crate) fn tar_of(entries: &[(Header, Vec<u8>)]) -> Vec<u8> {
    let mut w = TarWriter::new(WriteSink(Vec::new()), 4096);
    for (h, d) in entries {
        let mut h = h.clone();
        h.size = d.len() as u64;
        w.append_header(&h).unwrap();
        w.append_data(d).unwrap();
    }
    w.finish().unwrap().0 .0
}

#[test]
fn hostile_entries_are_refused_or_contained() {
    let t = Tmp::new("hostile");
    let outside = t.mkdir("outside");
    fs::write(outside.join("secret"), b"secret").unwrap();
    let outside_s = outside.to_str().unwrap().to_string();

    type Case<'a> = (&'a str, Vec<(Header, Vec<u8>)>);
    let cases: Vec<Case> = vec![
        ("dotdot", vec![(hdr(Kind::File, "../escape", ""), b"x".to_vec())]),
        ("dotdot-deep", vec![(hdr(Kind::File, "a/../../escape", ""), b"x".to_vec())]),
        ("through-symlink", vec![(hdr(Kind::Symlink, "link", &outside_s), vec![]), (hdr(Kind::File, "link/pwned", ""), b"x".to_vec())]),
        (
            "through-relative-symlink",
            vec![(hdr(Kind::Dir, "a", ""), vec![]), (hdr(Kind::Symlink, "a/up", "../../.."), vec![]), (hdr(Kind::File, "a/up/tmp/pwned", ""), b"x".to_vec())],
        ),
        ("through-symlink-dir-entry", vec![(hdr(Kind::Symlink, "link", &outside_s), vec![]), (hdr(Kind::Dir, "link/sub", ""), vec![])]),
        ("hardlink-dotdot", vec![(hdr(Kind::Hardlink, "h", "../outside/secret"), vec![])]),
        ("hardlink-through-symlink", vec![(hdr(Kind::Symlink, "link", &outside_s), vec![]), (hdr(Kind::Hardlink, "h", "link/secret"), vec![])]),
        ("whiteout-dotdot", vec![(hdr(Kind::File, "a/.wh...", ""), vec![])]),
        ("whiteout-as-dir", vec![(hdr(Kind::File, ".wh.x/y", ""), b"x".to_vec())]),
    ];
    for (name, ents) in cases {
        for mode in [UnpackOptions::overlay(), UnpackOptions::flatten()] {
            let dest = t.mkdir(&format!("dest-{name}-{:?}", mode.mode));
            let r = unpack(&tar_of(&ents)[..], &dest, &mode);
            assert!(r.is_err(), "{name} {:?}: accepted", mode.mode);
            let msg = r.unwrap_err().to_string();
            assert!(msg.contains("layer entry"), "{name}: {msg}");
        }
    }
    // Nothing was written outside.
    let left: Vec<_> = fs::read_dir(&outside).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(left, ["secret"]);
    assert!(!t.dir.join("escape").exists() && !Path::new("/tmp/pwned").exists());

    // Absolute paths and absolute hardlink targets are contained under dest.
    let dest = t.mkdir("dest-abs");
    let ents = vec![
        (hdr(Kind::File, "/etc/passwd-x", ""), b"inside".to_vec()),
        (hdr(Kind::Hardlink, "/etc/link", "/etc/passwd-x"), vec![]),
        (hdr(Kind::Symlink, "abs-link", "/etc/passwd"), vec![]),
    ];
    unpack(&tar_of(&ents)[..], &dest, &UnpackOptions::overlay()).unwrap();
    assert_eq!(fs::read(dest.join("etc/passwd-x")).unwrap(), b"inside");
    assert_eq!(fs::read(dest.join("etc/link")).unwrap(), b"inside");
    // A symlink is stored as is, never followed by unpack.
    assert_eq!(fs::read_link(dest.join("abs-link")).unwrap(), Path::new("/etc/passwd"));
    // A later entry over an existing symlink replaces the symlink, never writes through it.
    let dest = t.mkdir("dest-replace");
    let ents = vec![(hdr(Kind::Symlink, "f", &format!("{outside_s}/secret")), vec![]), (hdr(Kind::File, "f", ""), b"replaced".to_vec())];
    unpack(&tar_of(&ents)[..], &dest, &UnpackOptions::flatten()).unwrap();
    assert_eq!(fs::read(dest.join("f")).unwrap(), b"replaced");
    assert_eq!(fs::read(outside.join("secret")).unwrap(), b"secret");
    // A whiteout of a symlinked dir's child in flatten mode removes nothing outside.
    let dest = t.mkdir("dest-wh");
    symlink(&outside, dest.join("link")).unwrap();
    let r = unpack(&tar_of(&[(hdr(Kind::File, "link/.wh.secret", ""), vec![])])[..], &dest, &UnpackOptions::flatten());
    assert!(r.is_err());
    assert!(outside.join("secret").exists());
}

fn sample_tree(root: &Path, reverse: bool) {
    let mut files: Vec<String> = (0..50).map(|i| format!("d{}/f{i}", i % 7)).collect();
    if reverse {
        files.reverse();
    }
    for f in &files {
        let p = root.join(f);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, f.repeat(100)).unwrap();
    }
    symlink("d0/f0", root.join("link")).unwrap();
}

#[test]
fn digests_are_reproducible() {
    let t = Tmp::new("repro");
    let store = Store::open(t.p("store")).unwrap();
    let (a, b) = (t.mkdir("a"), t.mkdir("b"));
    sample_tree(&a, false);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    sample_tree(&b, true); // other inodes, other creation order, later mtimes
    let opts = DiffOptions { source_date_epoch: Some(1_000_000), ..Default::default() };
    for c in [Compression::Gzip(1), Compression::Gzip(6), Compression::Zstd(3), Compression::None] {
        let o = DiffOptions { compression: c, ..opts.clone() };
        let la = diff(&store, &a, &o).unwrap();
        let lb = diff(&store, &b, &o).unwrap();
        assert_eq!(la.diff_id, lb.diff_id, "{c:?}");
        assert_eq!(la.descriptor, lb.descriptor, "{c:?}");
        if c == Compression::None {
            assert_eq!(la.diff_id, la.descriptor.digest);
        }
    }
    // The parallel gzip output is what one thread makes of the same tar: it does not
    // depend on the number of cores.
    let big = t.mkdir("big");
    sample_tree(&big, false);
    fs::write(big.join("noise"), (0..3_000_000u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect::<Vec<u8>>()).unwrap();
    let lb = diff(&store, &big, &opts).unwrap();
    let blob = store.read_blob(&lb.descriptor.digest).unwrap();
    let mut plain = Vec::new();
    compress::decompress(&blob[..]).unwrap().read_to_end(&mut plain).unwrap();
    assert_eq!(pgzip::compress_all(&plain, 1, pipeline::CHUNK).unwrap(), blob);
    // Without the clamp the mtimes differ, and so do the digests.
    let la = diff(&store, &a, &DiffOptions::default()).unwrap();
    let lb = diff(&store, &b, &DiffOptions::default()).unwrap();
    assert_ne!(la.diff_id, lb.diff_id);
    // Mtimes are clamped, never raised.
    let e = entries(&store, &diff(&store, &a, &opts).unwrap().descriptor.digest);
    assert!(e.iter().all(|(h, _)| h.mtime == 1_000_000));
    let e = entries(&store, &diff(&store, &a, &DiffOptions { source_date_epoch: Some(i64::MAX), ..Default::default() }).unwrap().descriptor.digest);
    assert!(e.iter().all(|(h, _)| h.mtime < i64::MAX && h.mtime > 1_000_000));
}

#[test]
fn unpack_reads_other_tools_layers() {
    // GNU tar's own output (with ./ prefixes, gzip from gzip(1)) unpacks and hashes.
    let t = Tmp::new("gnutar");
    let src = t.mkdir("src");
    sample_tree(&src, false);
    let tgz = t.p("l.tgz");
    let st = std::process::Command::new("tar").arg("czf").arg(&tgz).arg("-C").arg(&src).arg(".").status().unwrap();
    assert!(st.success());
    let dest = t.mkdir("dest");
    let s = unpack(fs::File::open(&tgz).unwrap(), &dest, &UnpackOptions::overlay()).unwrap();
    assert_eq!(fs::read(dest.join("d3/f3")).unwrap(), "d3/f3".repeat(100).as_bytes());
    let mut plain = Vec::new();
    flate2::read::GzDecoder::new(fs::File::open(&tgz).unwrap()).read_to_end(&mut plain).unwrap();
    assert_eq!(s.diff_id, crate::store::hash::sha256(&plain));
    assert_eq!(s.tar_size, plain.len() as u64);
}

#[test]
fn import_makes_a_one_layer_image() {
    let t = Tmp::new("import");
    let store = Store::open(t.p("store")).unwrap();
    let src = t.mkdir("rootfs");
    sample_tree(&src, false);
    fs::set_permissions(&src, fs::Permissions::from_mode(0o755)).unwrap();
    let tgz = t.p("rootfs.tgz");
    let st = std::process::Command::new("tar").arg("czf").arg(&tgz).arg("-C").arg(&src).arg(".").status().unwrap();
    assert!(st.success());
    let opts = ImportOptions {
        config: Some(berth_spec::image::ContainerConfig { cmd: Some(vec!["sh".into()]), ..Default::default() }),
        message: Some("hello".into()),
        ..Default::default()
    };
    let imp = import_tarball(&store, &tgz, "imported", &opts).unwrap();
    assert_eq!(imp.name, "imported:latest");
    let img = store.inspect("imported").unwrap();
    assert_eq!(img.digest, imp.manifest.digest);
    assert_eq!(img.manifest.layers, vec![imp.layer.descriptor.clone()]);
    assert_eq!(img.config.rootfs.diff_ids, vec![imp.layer.diff_id.clone()]);
    assert_eq!(img.config.os, "linux");
    assert_eq!(img.config.history[0].comment.as_deref(), Some("hello"));
    assert_eq!(img.config.config.as_ref().unwrap().cmd.as_ref().unwrap(), &["sh"]);
    // Paths are canonical: no "./", no root entry.
    let e = entries(&store, &imp.layer.descriptor.digest);
    assert!(e.iter().all(|(h, _)| !h.path.starts_with(b".") && !h.path.starts_with(b"/")), "{:?}", names(&e));
    assert!(names(&e).contains(&"d0/f0".to_string()));
    // The same tarball imports to the same layer.
    let again = import_tarball(&store, &tgz, "again", &opts).unwrap();
    assert_eq!(again.layer, imp.layer);
    // A tarball with '..' is refused.
    let bad = t.p("bad.tar");
    fs::write(&bad, tar_of(&[(hdr(Kind::File, "../x", ""), b"x".to_vec())])).unwrap();
    assert!(import_tarball(&store, &bad, "bad", &ImportOptions::default()).is_err());
    assert!(store.resolve("bad").is_err());
}

/// Names in a store directory (blobs/sha256, layers, tmp).
fn listing(store: &Store, dir: &str) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(store.root().join(dir)).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    v.sort();
    v
}

#[test]
fn import_checks_the_tarball_as_load_does_naming_it_and_the_entry() {
    let t = Tmp::new("import-hostile");
    let store = Store::open(t.p("store")).unwrap();
    let gz = |data: &[u8]| {
        let mut e = compress::Encoder::new(Vec::new(), Compression::Gzip(1)).unwrap();
        std::io::Write::write_all(&mut e, data).unwrap();
        e.finish().unwrap()
    };
    let big = tar_of(&[
        (hdr(Kind::Dir, "bin", ""), vec![]),
        (hdr(Kind::File, "bin/big", ""), (0..400_000u32).map(|i| (i.wrapping_mul(2654435761) >> 7) as u8).collect()),
    ]);
    let whole = gz(&big);
    let truncated = whole[..whole.len() / 2].to_vec();
    type Case<'a> = (&'a str, Vec<u8>, &'a str);
    let cases: Vec<Case> = vec![
        ("hardlink-outside.tar", tar_of(&[(hdr(Kind::Hardlink, "h", "../etc/shadow"), vec![])]), "entry \"h\": hardlink to \"../etc/shadow\" points outside"),
        (
            "hardlink-missing.tar",
            tar_of(&[(hdr(Kind::Dir, "etc", ""), vec![]), (hdr(Kind::Hardlink, "etc/x", "/etc/shadow"), vec![])]),
            "entry \"etc/x\": hardlink to \"etc/shadow\"",
        ),
        (
            "through-symlink.tar",
            tar_of(&[(hdr(Kind::Symlink, "lnk", "/etc"), vec![]), (hdr(Kind::File, "lnk/passwd", ""), b"x".to_vec())]),
            "entry \"lnk/passwd\": goes through a symlink",
        ),
        (
            "hardlink-through-symlink.tar",
            tar_of(&[(hdr(Kind::Symlink, "lnk", "/etc"), vec![]), (hdr(Kind::Hardlink, "h", "lnk/passwd"), vec![])]),
            "entry \"lnk/passwd\": goes through a symlink",
        ),
        (
            "whiteout-empty.tar",
            tar_of(&[(hdr(Kind::Dir, "a", ""), vec![]), (hdr(Kind::File, "a/.wh.", ""), vec![])]),
            "entry \"a/.wh.\": invalid whiteout name",
        ),
        ("whiteout-dotdot.tar", tar_of(&[(hdr(Kind::File, "a/.wh...", ""), vec![])]), "entry \"a/.wh...\": invalid whiteout name"),
        ("whiteout-as-dir.tar", tar_of(&[(hdr(Kind::File, "a/.wh.b/c", ""), b"x".to_vec())]), "entry \"a/.wh.b/c\": a whiteout used as a directory"),
        ("dotdot.tar", tar_of(&[(hdr(Kind::File, "a/../../x", ""), b"x".to_vec())]), "entry \"a/../../x\": has a '..' component"),
        ("empty.tar", Vec::new(), "empty file, not a tar archive"),
        ("truncated.tar.gz", truncated, "entry \"bin/big\": truncated or corrupt gzip data"),
        ("not-a-tar.tar", b"this is not a tar archive, just text that is long enough to fill a header block".repeat(8), "header checksum mismatch"),
    ];
    for (name, data, want) in cases {
        let path = t.p(name);
        fs::write(&path, data).unwrap();
        let e = import_tarball(&store, &path, "hostile", &ImportOptions::default()).unwrap_err().to_string();
        assert!(e.starts_with(&format!("{}: ", path.display())), "{name}: the tarball is named: {e}");
        assert!(e.contains(want), "{name}: {e}");
        // Nothing stored, nothing tagged, no temp file left.
        assert!(store.resolve("hostile").is_err(), "{name}: tagged");
        assert_eq!(listing(&store, "blobs/sha256"), Vec::<String>::new(), "{name}");
        assert_eq!(listing(&store, "layers"), Vec::<String>::new(), "{name}");
        assert_eq!(listing(&store, "tmp"), Vec::<String>::new(), "{name}");
    }
    // A good tarball is checked the same way and leaves its layer unpacked, ready for FROM.
    let path = t.p("good.tar");
    fs::write(&path, &big).unwrap();
    let imp = import_tarball(&store, &path, "good", &ImportOptions::default()).unwrap();
    assert_eq!(listing(&store, "layers"), [imp.layer.diff_id.hex().to_string()]);
    assert_eq!(fs::read(store.layer_dir(&imp.layer.diff_id).join("bin/big")).unwrap().len(), 400_000);
}

#[test]
fn xattr_whiteouts_of_new_kernels_are_read() {
    // Linux 6.7+ can mark a whiteout as a zero-size file with trusted.overlay.whiteout in
    // a directory with trusted.overlay.opaque=x.
    let t = Tmp::new("xwh");
    let store = Store::open(t.p("store")).unwrap();
    let u = t.mkdir("upper");
    fs::create_dir(u.join("d")).unwrap();
    set_xattr(&u.join("d"), "trusted.overlay.opaque", b"x");
    fs::write(u.join("d/gone"), b"").unwrap();
    set_xattr(&u.join("d/gone"), "trusted.overlay.whiteout", b"");
    fs::write(u.join("d/empty"), b"").unwrap();
    let blob = diff(&store, &u, &DiffOptions::default()).unwrap();
    let n = names(&entries(&store, &blob.descriptor.digest));
    assert_eq!(n, ["d/", "d/empty", "d/.wh.gone"]);
}
