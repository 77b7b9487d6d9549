//! The content-addressed image store.
//!
//! ```text
//! <root>/                     default /var/lib/berth (CLI: --store, $BERTH_STORE)
//!   blobs/sha256/<hex>        blobs (layers, configs, manifests) named by their digest
//!   layers/<diffid hex>/      unpacked layers, in overlayfs lowerdir format (whiteouts as
//!                             0:0 char devices, opaque dirs as trusted.overlay.opaque=y)
//!   images.json               {"images": {"name:tag": {"digest": manifest digest, ...}}}
//!   images.lock               flock'ed (exclusive) around every images.json update
//!   cache/<key hex>           build-cache entries (JSON: layer diff_id + blob, config)
//!   gc.lock                   flock: shared by writers (a [`Lease`]), exclusive by prune
//!   tmp/                      temp files and dirs, renamed into place when complete; each
//!                             flock'ed by the process that made it (see temp.rs)
//!   tmp.lock                  flock: shared while a tmp/ entry is made, exclusive to
//!                             reclaim half-made ones
//! ```
//!
//! Crash and concurrency safety:
//! - A blob is written to `tmp/`, hashed while it is written (and checked against the
//!   expected digest and size when one is given), fsync'ed, then renamed to its digest
//!   name: a crash never leaves a partial blob under a digest name, and two writers of
//!   the same blob both rename the same content.
//! - A layer is unpacked into `tmp/` (its diff_id checked while unpacking), then renamed
//!   to `layers/<hex>`; if another build got there first, its copy is kept and ours is
//!   removed.
//! - `images.json` and cache entries are replaced whole by rename; readers never lock.
//!   Read-modify-write of `images.json` holds `images.lock`, so concurrent tags are not
//!   lost.
//! - Every write holds a shared lock on `gc.lock` while it works, and a build holds one
//!   ([`Store::lease`]) for its whole run (its blobs are not tagged until the end, its
//!   layer dirs are mounted); [`Store::prune`] takes it exclusively, so it never removes
//!   what a running build is using. (Prune from a thread that holds a lease blocks.)
//!
//! An image is named in images.json by its manifest digest; its IMAGE ID (what `images`
//! shows and what id prefixes match) is its config digest, as docker and podman show it.

pub mod blobstore;
pub mod cache;
pub mod hash;
pub mod names;
mod temp;

pub use cache::{CacheEntry, CacheLayer};
pub use names::normalize_name;
pub(crate) use temp::unique as unique_name;
pub use temp::{disk_usage, Reclaimed, TempDir, TempFile, RUNTIME_FILE, STATE_DIR};

use crate::layer::sys;
use berth_spec::image::{Descriptor, Digest, ImageConfig, Manifest, MEDIA_TYPE_OCI_CONFIG, MEDIA_TYPE_OCI_MANIFEST};
use hash::{HashWriter, Hasher};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

/// The store used when neither `--store` nor `$BERTH_STORE` names one.
pub const DEFAULT_STORE: &str = "/var/lib/berth";

/// The store directory: the `--store` flag, else `$BERTH_STORE`, else [`DEFAULT_STORE`].
pub fn store_dir(flag: Option<&Path>) -> PathBuf {
    if let Some(p) = flag {
        return p.to_path_buf();
    }
    match std::env::var_os("BERTH_STORE") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => PathBuf::from(DEFAULT_STORE),
    }
}

/// An io::Error with the kind kept and `what` in front of the message.
pub(crate) fn ctx(what: impl std::fmt::Display) -> impl FnOnce(io::Error) -> io::Error {
    move |e| io::Error::new(e.kind(), format!("{what}: {e}"))
}

pub(crate) fn not_found(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, msg)
}

pub(crate) fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

/// A shared lock on the store's gc.lock: while one is held, prune waits.
pub struct Lease {
    _f: File,
}

/// One tagged image, as `images` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImageSummary {
    pub name: String,
    /// The manifest digest.
    pub digest: Digest,
    /// The config digest (the IMAGE ID); None when the manifest cannot be read.
    pub id: Option<Digest>,
    /// The config's creation time (RFC 3339), if it has one.
    pub created: Option<String>,
    /// The config's labels.
    pub labels: BTreeMap<String, String>,
    /// Manifest + config + layer blobs, as stored (compressed).
    pub size: u64,
}

/// A resolved image: its manifest and config.
#[derive(Debug, Clone)]
pub struct Image {
    /// The normalized name it was resolved by (None when resolved by digest).
    pub name: Option<String>,
    pub digest: Digest,
    pub manifest_size: u64,
    pub manifest: Manifest,
    pub config: ImageConfig,
}

impl Image {
    /// The manifest's descriptor (for an index or an export).
    pub fn descriptor(&self) -> Descriptor {
        let mt = self.manifest.media_type.clone().unwrap_or_else(|| MEDIA_TYPE_OCI_MANIFEST.to_string());
        Descriptor::new(&mt, self.digest.clone(), self.manifest_size)
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct ImagesFile {
    #[serde(default)]
    images: BTreeMap<String, TagRecord>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct TagRecord {
    digest: Digest,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tagged: Option<String>,
}

/// What prune removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PruneReport {
    pub blobs: usize,
    pub layers: usize,
    pub cache_entries: usize,
    pub temp: usize,
    /// Containers killed builds left (deleted with their cgroups).
    pub containers: usize,
    /// Disk space freed (allocated blocks, as `du` counts).
    pub bytes: u64,
}

#[derive(Debug, Clone, Default)]
pub struct PruneOptions {
    /// Also drop every build-cache entry (then their blobs and layers go too).
    pub cache: bool,
}

#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

impl Store {
    /// Opens the store at `dir`, creating its directories.
    pub fn open(dir: impl AsRef<Path>) -> io::Result<Store> {
        let root = dir.as_ref().to_path_buf();
        for d in ["blobs/sha256", "layers", "cache", "tmp"] {
            fs::create_dir_all(root.join(d)).map_err(ctx(format!("store {}: create {d}", root.display())))?;
        }
        Ok(Store { root })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn lock_file(&self, name: &str, exclusive: bool) -> io::Result<File> {
        let p = self.root.join(name);
        let f = fs::OpenOptions::new().create(true).truncate(false).write(true).open(&p).map_err(ctx(p.display()))?;
        sys::flock(f.as_raw_fd(), exclusive).map_err(ctx(format!("lock {}", p.display())))?;
        Ok(f)
    }

    /// A shared lock that keeps prune away; hold it for the length of a build.
    pub fn lease(&self) -> io::Result<Lease> {
        Ok(Lease { _f: self.lock_file("gc.lock", false)? })
    }

    // ---- blobs ----

    pub fn blob_path(&self, d: &Digest) -> PathBuf {
        self.root.join("blobs/sha256").join(d.hex())
    }

    pub fn has_blob(&self, d: &Digest) -> bool {
        self.blob_path(d).is_file()
    }

    pub fn open_blob(&self, d: &Digest) -> io::Result<File> {
        File::open(self.blob_path(d)).map_err(|e| {
            if e.kind() == io::ErrorKind::NotFound {
                not_found(format!("blob {d} is not in the store"))
            } else {
                ctx(format!("open blob {d}"))(e)
            }
        })
    }

    pub fn blob_size(&self, d: &Digest) -> io::Result<u64> {
        Ok(self.open_blob(d)?.metadata()?.len())
    }

    pub fn read_blob(&self, d: &Digest) -> io::Result<Vec<u8>> {
        let mut v = Vec::new();
        self.open_blob(d)?.read_to_end(&mut v)?;
        Ok(v)
    }

    /// Makes a finished temp file the blob `digest`: fsync, rename, fsync of the dir.
    /// The caller vouches that the content hashes to `digest` (it hashed it while writing).
    pub fn commit_blob(&self, mut tmp: TempFile, digest: &Digest) -> io::Result<()> {
        let f = tmp.file.take().expect("temp file is open");
        f.sync_all().map_err(ctx(format!("fsync {}", tmp.path.display())))?;
        drop(f);
        let dest = self.blob_path(digest);
        if dest.is_file() {
            return Ok(()); // same content already there; tmp is removed on drop
        }
        fs::rename(&tmp.path, &dest).map_err(ctx(format!("rename blob into {}", dest.display())))?;
        sys::fsync_dir(&self.root.join("blobs/sha256"))
    }

    /// Stores what `r` yields as a blob; returns its descriptor.
    pub fn put_blob(&self, media_type: &str, r: &mut dyn Read) -> io::Result<Descriptor> {
        self.put_blob_checked(media_type, None, None, r)
    }

    /// Stores a blob that must hash to `expected` (and be `size` bytes, if given): a
    /// mismatch stores nothing and is an InvalidData error.
    pub fn put_blob_checked(&self, media_type: &str, expected: Option<&Digest>, size: Option<u64>, r: &mut dyn Read) -> io::Result<Descriptor> {
        let mut tmp = self.temp_file()?;
        let (digest, n) = {
            let mut w = HashWriter::new(io::BufWriter::with_capacity(1 << 20, tmp.file()));
            io::copy(r, &mut w).map_err(ctx("writing blob"))?;
            let (mut inner, d, n) = w.finish();
            inner.flush()?;
            (d, n)
        };
        if let Some(e) = expected {
            if *e != digest {
                return Err(invalid(format!("blob digest mismatch: expected {e}, got {digest}")));
            }
        }
        if let Some(s) = size {
            if s != n {
                return Err(invalid(format!("blob {digest}: expected {s} bytes, got {n}")));
            }
        }
        self.commit_blob(tmp, &digest)?;
        Ok(Descriptor::new(media_type, digest, n))
    }

    pub fn put_blob_bytes(&self, media_type: &str, data: &[u8]) -> io::Result<Descriptor> {
        let d = hash::sha256(data);
        if self.has_blob(&d) {
            return Ok(Descriptor::new(media_type, d, data.len() as u64));
        }
        let mut tmp = self.temp_file()?;
        tmp.file().write_all(data)?;
        self.commit_blob(tmp, &d)?;
        Ok(Descriptor::new(media_type, d, data.len() as u64))
    }

    pub fn put_config(&self, config: &ImageConfig) -> io::Result<Descriptor> {
        let data = serde_json::to_vec(config).map_err(io::Error::other)?;
        self.put_blob_bytes(MEDIA_TYPE_OCI_CONFIG, &data)
    }

    pub fn put_manifest(&self, manifest: &Manifest) -> io::Result<Descriptor> {
        let data = serde_json::to_vec(manifest).map_err(io::Error::other)?;
        let mt = manifest.media_type.clone().unwrap_or_else(|| MEDIA_TYPE_OCI_MANIFEST.to_string());
        self.put_blob_bytes(&mt, &data)
    }

    pub fn get_manifest(&self, d: &Digest) -> io::Result<Manifest> {
        let b = self.read_blob(d)?;
        serde_json::from_slice(&b).map_err(|e| invalid(format!("manifest {d}: {e}")))
    }

    pub fn get_config(&self, d: &Digest) -> io::Result<ImageConfig> {
        let b = self.read_blob(d)?;
        serde_json::from_slice(&b).map_err(|e| invalid(format!("image config {d}: {e}")))
    }

    // ---- names ----

    fn read_images(&self) -> io::Result<ImagesFile> {
        match fs::read(self.root.join("images.json")) {
            Ok(b) => serde_json::from_slice(&b).map_err(|e| invalid(format!("{}: {e}", self.root.join("images.json").display()))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(ImagesFile::default()),
            Err(e) => Err(ctx("read images.json")(e)),
        }
    }

    /// Read-modify-write of images.json under images.lock.
    fn update_images<T>(&self, f: impl FnOnce(&mut ImagesFile) -> io::Result<T>) -> io::Result<T> {
        let _l = self.lock_file("images.lock", true)?;
        let mut idx = self.read_images()?;
        let out = f(&mut idx)?;
        let data = serde_json::to_vec_pretty(&idx).map_err(io::Error::other)?;
        self.atomic_write(&self.root.join("images.json"), &data)?;
        Ok(out)
    }

    /// Writes `path` whole: temp file in tmp/, fsync, rename.
    fn atomic_write(&self, path: &Path, data: &[u8]) -> io::Result<()> {
        let mut tmp = self.temp_file()?;
        tmp.file().write_all(data)?;
        let f = tmp.file.take().expect("open");
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp.path, path).map_err(ctx(format!("rename into {}", path.display())))?;
        if let Some(parent) = path.parent() {
            sys::fsync_dir(parent)?;
        }
        Ok(())
    }

    /// Points `name` (normalized: `busybox` -> `busybox:latest`) at a manifest in the
    /// store. Returns the normalized name.
    pub fn tag(&self, name: &str, manifest: &Digest) -> io::Result<String> {
        let n = normalize_name(name)?;
        if !self.has_blob(manifest) {
            return Err(not_found(format!("tag {n}: manifest {manifest} is not in the store")));
        }
        let _lease = self.lease()?;
        self.update_images(|idx| {
            idx.images.insert(n.clone(), TagRecord { digest: manifest.clone(), tagged: Some(now_rfc3339()) });
            Ok(())
        })?;
        Ok(n)
    }

    /// The manifest digest of a name (`name[:tag]`, `name@sha256:...`), a full digest
    /// (`sha256:...`) of a manifest in the store or of a tagged image's config (its id),
    /// or a unique prefix (>= 4 hex digits) of a tagged image's id (or manifest digest).
    /// An ambiguous prefix is an InvalidInput error listing the candidates.
    pub fn resolve(&self, name: &str) -> io::Result<Digest> {
        if let Ok(d) = Digest::parse(name) {
            if let Some(m) = self.tagged_ids()?.into_iter().find(|(_, c)| *c == d).map(|(m, _)| m) {
                return Ok(m);
            }
            return if self.has_blob(&d) { Ok(d) } else { Err(not_found(format!("image {name} is not in the store"))) };
        }
        if let Some((_, d)) = name.split_once('@') {
            let d = Digest::parse(d).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
            return if self.has_blob(&d) { Ok(d) } else { Err(not_found(format!("image {name} is not in the store"))) };
        }
        let idx = self.read_images()?;
        if let Ok(n) = normalize_name(name) {
            if let Some(r) = idx.images.get(&n) {
                return Ok(r.digest.clone());
            }
        }
        let hex = name.strip_prefix("sha256:").unwrap_or(name);
        if hex.len() >= 4 && hex.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()) {
            let mut matches: Vec<(Digest, Digest)> =
                self.tagged_ids()?.into_iter().filter(|(m, c)| c.hex().starts_with(hex) || m.hex().starts_with(hex)).collect();
            matches.sort();
            matches.dedup_by(|a, b| a.0 == b.0);
            if matches.len() == 1 {
                return Ok(matches.remove(0).0);
            }
            if matches.len() > 1 {
                let names = |m: &Digest| idx.images.iter().filter(|(_, r)| r.digest == *m).map(|(n, _)| n.as_str()).collect::<Vec<_>>().join(", ");
                let list: Vec<String> = matches.iter().map(|(m, c)| format!("{} ({})", &c.hex()[..12], names(m))).collect();
                return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("image id prefix {name} is ambiguous: it matches {}", list.join(", "))));
            }
        }
        Err(not_found(format!("image {name} is not in the store")))
    }

    /// (manifest digest, config digest) of every tagged image, once each.
    fn tagged_ids(&self) -> io::Result<Vec<(Digest, Digest)>> {
        let idx = self.read_images()?;
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for r in idx.images.values() {
            if seen.insert(r.digest.clone()) {
                if let Ok(m) = self.get_manifest(&r.digest) {
                    out.push((r.digest.clone(), m.config.digest));
                }
            }
        }
        Ok(out)
    }

    /// The names that point at the manifest `digest`.
    pub fn names_of(&self, digest: &Digest) -> io::Result<Vec<String>> {
        Ok(self.read_images()?.images.into_iter().filter(|(_, r)| r.digest == *digest).map(|(n, _)| n).collect())
    }

    /// The image a name resolves to, with its manifest and config.
    pub fn inspect(&self, name: &str) -> io::Result<Image> {
        let digest = self.resolve(name)?;
        let manifest_size = self.blob_size(&digest)?;
        let manifest = self.get_manifest(&digest)?;
        let config = self.get_config(&manifest.config.digest)?;
        let name = if Digest::parse(name).is_ok() || name.contains('@') { None } else { normalize_name(name).ok() };
        Ok(Image { name, digest, manifest_size, manifest, config })
    }

    /// Every tagged image, sorted by name.
    pub fn images(&self) -> io::Result<Vec<ImageSummary>> {
        let idx = self.read_images()?;
        let mut out = Vec::new();
        for (name, r) in &idx.images {
            let (id, created, labels, size) = match self.get_manifest(&r.digest) {
                Ok(m) => {
                    let c = self.get_config(&m.config.digest).ok();
                    let labels = c.as_ref().and_then(|c| c.config.as_ref()).map(|cc| cc.labels.clone()).unwrap_or_default();
                    let size = self.blob_size(&r.digest).unwrap_or(0) + m.config.size + m.layers.iter().map(|l| l.size).sum::<u64>();
                    (Some(m.config.digest), c.and_then(|c| c.created), labels, size)
                }
                Err(_) => (None, None, BTreeMap::new(), 0),
            };
            out.push(ImageSummary { name: name.clone(), digest: r.digest.clone(), id, created, labels, size });
        }
        Ok(out)
    }

    /// Removes a tag; returns the manifest digest it pointed at. The blobs stay until
    /// [`Store::prune`] finds them unreferenced.
    pub fn rmi(&self, name: &str) -> io::Result<Digest> {
        let n = normalize_name(name)?;
        self.update_images(|idx| idx.images.remove(&n).map(|r| r.digest).ok_or_else(|| not_found(format!("image {n} is not in the store"))))
    }

    /// `rmi NAME-OR-ID`: a name removes that tag; an id (or unique prefix, or digest)
    /// removes every name of the image, which with more than one name needs `force`
    /// (as docker refuses). Returns the names removed and the manifest digest.
    pub fn rmi_any(&self, name: &str, force: bool) -> io::Result<(Vec<String>, Digest)> {
        if let Ok(n) = normalize_name(name) {
            if self.read_images()?.images.contains_key(&n) {
                return Ok((vec![n.clone()], self.rmi(&n)?));
            }
        }
        let d = self.resolve(name)?;
        self.update_images(|idx| {
            let names: Vec<String> = idx.images.iter().filter(|(_, r)| r.digest == d).map(|(n, _)| n.clone()).collect();
            if names.is_empty() {
                return Err(not_found(format!("image {name} has no name in the store")));
            }
            if names.len() > 1 && !force {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("image {name} has several names ({}): remove them by name, or use --force", names.join(", ")),
                ));
            }
            for n in &names {
                idx.images.remove(n);
            }
            Ok((names, d.clone()))
        })
    }

    // ---- layers ----

    pub fn layer_dir(&self, diff_id: &Digest) -> PathBuf {
        self.root.join("layers").join(diff_id.hex())
    }

    pub fn has_layer_dir(&self, diff_id: &Digest) -> bool {
        self.layer_dir(diff_id).is_dir()
    }

    /// The unpacked layer dir of `diff_id`, unpacking `blob` (checked against `diff_id`)
    /// if it is not there yet.
    pub fn ensure_layer(&self, blob: &Descriptor, diff_id: &Digest) -> io::Result<PathBuf> {
        let dest = self.layer_dir(diff_id);
        if dest.is_dir() {
            return Ok(dest);
        }
        let _lease = self.lease()?;
        let tmp = self.temp_dir("layer")?;
        let f = self.open_blob(&blob.digest)?;
        let stats = crate::layer::unpack(f, tmp.path(), &crate::layer::UnpackOptions::overlay()).map_err(ctx(format!("unpack layer {}", blob.digest)))?;
        if stats.diff_id != *diff_id {
            return Err(invalid(format!("layer {}: uncompressed digest is {}, the config says {diff_id}", blob.digest, stats.diff_id)));
        }
        // Renamed away, or removed because another build was first: dropping tmp then
        // finds nothing to remove.
        self.adopt_layer_dir(diff_id, tmp.path())
    }

    /// Moves a finished layer dir (e.g. an overlay upper dir in tmp/, or anywhere on the
    /// store's filesystem) to `layers/<diff_id hex>`. If that exists already, `dir` is
    /// removed and the existing one is returned.
    pub fn adopt_layer_dir(&self, diff_id: &Digest, dir: &Path) -> io::Result<PathBuf> {
        let dest = self.layer_dir(diff_id);
        match fs::rename(dir, &dest) {
            Ok(()) => {
                sys::fsync_dir(&self.root.join("layers"))?;
                Ok(dest)
            }
            Err(e) if dest.is_dir() && matches!(e.raw_os_error(), Some(libc::EEXIST) | Some(libc::ENOTEMPTY)) => {
                let _ = fs::remove_dir_all(dir);
                Ok(dest)
            }
            Err(e) => Err(ctx(format!("rename {} to {}", dir.display(), dest.display()))(e)),
        }
    }

    /// The layer dirs of an image, unpacked as needed, top layer first (the order of an
    /// overlay `lowerdir=` list).
    pub fn image_lowerdirs(&self, image: &Image) -> io::Result<Vec<PathBuf>> {
        let ids = &image.config.rootfs.diff_ids;
        if ids.len() != image.manifest.layers.len() {
            return Err(invalid(format!(
                "image {}: {} layers in the manifest but {} diff_ids in the config",
                image.digest,
                image.manifest.layers.len(),
                ids.len()
            )));
        }
        let mut out = Vec::with_capacity(ids.len());
        for (blob, id) in image.manifest.layers.iter().zip(ids) {
            out.push(self.ensure_layer(blob, id)?);
        }
        out.reverse();
        Ok(out)
    }

    // ---- build cache ----

    fn cache_path(&self, key: &Digest) -> PathBuf {
        self.root.join("cache").join(key.hex())
    }

    /// The cache entry for `key`, if there is one whose layer blob is still stored.
    pub fn cache_get(&self, key: &Digest) -> io::Result<Option<CacheEntry>> {
        let b = match fs::read(self.cache_path(key)) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(ctx(format!("cache {key}"))(e)),
        };
        let Ok(entry) = serde_json::from_slice::<CacheEntry>(&b) else { return Ok(None) };
        if let Some(l) = &entry.layer {
            if !self.has_blob(&l.blob.digest) {
                return Ok(None);
            }
        }
        Ok(Some(entry))
    }

    pub fn cache_put(&self, key: &Digest, entry: &CacheEntry) -> io::Result<()> {
        let _lease = self.lease()?;
        let data = serde_json::to_vec_pretty(entry).map_err(io::Error::other)?;
        self.atomic_write(&self.cache_path(key), &data)
    }

    // ---- prune ----

    /// Removes blobs and layer dirs that no tag (through its manifest and config) and no
    /// cache entry references, and what dead processes left in tmp/ (the containers of a
    /// killed build first). Waits for running leases, so what a running build uses is
    /// never taken. Reports the disk space freed.
    pub fn prune(&self, opts: &PruneOptions) -> io::Result<PruneReport> {
        let _x = self.lock_file("gc.lock", true)?;
        let mut report = PruneReport::default();
        let mut blobs: HashSet<String> = HashSet::new();
        let mut layers: HashSet<String> = HashSet::new();
        for r in self.read_images()?.images.values() {
            blobs.insert(r.digest.hex().to_string());
            let Ok(m) = self.get_manifest(&r.digest) else { continue };
            blobs.insert(m.config.digest.hex().to_string());
            for l in &m.layers {
                blobs.insert(l.digest.hex().to_string());
            }
            if let Ok(c) = self.get_config(&m.config.digest) {
                for d in &c.rootfs.diff_ids {
                    layers.insert(d.hex().to_string());
                }
            }
        }
        // Working containers live on their base's layers (the base may have no name left).
        let (cblobs, clayers) = crate::working::referenced(&self.root);
        blobs.extend(cblobs.iter().map(|d| d.hex().to_string()));
        layers.extend(clayers.iter().map(|d| d.hex().to_string()));
        for e in fs::read_dir(self.root.join("cache"))?.flatten() {
            let p = e.path();
            if opts.cache {
                let size = disk_usage(&p);
                if fs::remove_file(&p).is_ok() {
                    report.cache_entries += 1;
                    report.bytes += size;
                }
                continue;
            }
            let Ok(b) = fs::read(&p) else { continue };
            let Ok(entry) = serde_json::from_slice::<CacheEntry>(&b) else { continue };
            if let Some(l) = &entry.layer {
                blobs.insert(l.blob.digest.hex().to_string());
                layers.insert(l.diff_id.hex().to_string());
            }
        }
        for e in fs::read_dir(self.root.join("blobs/sha256"))?.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if !blobs.contains(&name) {
                let size = disk_usage(&e.path());
                if fs::remove_file(e.path()).is_ok() {
                    report.blobs += 1;
                    report.bytes += size;
                }
            }
        }
        for e in fs::read_dir(self.root.join("layers"))?.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if !layers.contains(&name) {
                let size = disk_usage(&e.path());
                if fs::remove_dir_all(e.path()).is_ok() {
                    report.layers += 1;
                    report.bytes += size;
                }
            }
        }
        // Every writer holds a lease, and we hold the lock exclusively: what is in tmp/
        // and unlocked is left over, whatever its name.
        let r = self.reclaim_temp(true)?;
        report.temp = r.entries;
        report.containers = r.containers;
        report.bytes += r.bytes;
        Ok(report)
    }
}

/// Now, or `$SOURCE_DATE_EPOCH` when set, as RFC 3339.
pub fn now_rfc3339() -> String {
    berth_spec::image::rfc3339(now_or_epoch())
}

/// Unix seconds: `$SOURCE_DATE_EPOCH` if set and valid, else now.
pub fn now_or_epoch() -> i64 {
    if let Some(e) = source_date_epoch() {
        return e;
    }
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// `$SOURCE_DATE_EPOCH`, if set to a number.
pub fn source_date_epoch() -> Option<i64> {
    std::env::var("SOURCE_DATE_EPOCH").ok().and_then(|s| s.trim().parse().ok())
}

/// A running hash for callers that stream into the store themselves.
pub fn hasher() -> Hasher {
    Hasher::new()
}

#[cfg(test)]
mod tests;
