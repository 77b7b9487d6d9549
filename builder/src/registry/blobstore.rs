//! Where pulled blobs go and pushed blobs come from. The builder's content store
//! implements [`BlobStore`]; [`DirBlobStore`] is a plain directory in the OCI image
//! layout's shape (`blobs/<algo>/<hex>`), used by the tests and usable as is.

use super::digest::{Digest, VerifyingReader};
use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Content-addressed blob storage, as the registry code needs it. Shared between the
/// download threads, so `Sync`.
pub trait BlobStore: Sync {
    /// Whether the blob is stored (complete and committed).
    fn has(&self, digest: &Digest) -> bool;

    /// Stores the content read from `reader` under `digest`. Must verify the digest
    /// (and `size`, when given) while streaming and commit atomically, only after a
    /// clean end of stream that matched: a failed or mismatching put leaves nothing.
    /// Returns the size stored. (The registry code also verifies what it streams in,
    /// so a store that cannot hash still never gets bad content committed.)
    fn put(&self, digest: &Digest, size: Option<u64>, reader: &mut dyn Read) -> io::Result<u64>;

    /// Opens a stored blob for reading.
    fn open(&self, digest: &Digest) -> io::Result<Box<dyn Read + Send>>;

    /// The stored blob's size. The default opens and reads it; stores should answer
    /// from metadata.
    fn size(&self, digest: &Digest) -> io::Result<u64> {
        io::copy(&mut self.open(digest)?, &mut io::sink())
    }

    /// Reads a whole (small) blob: manifests, configs.
    fn read_all(&self, digest: &Digest) -> io::Result<Vec<u8>> {
        let mut v = Vec::new();
        self.open(digest)?.read_to_end(&mut v)?;
        Ok(v)
    }
}

/// `root/blobs/<algo>/<hex>`, written to a temporary file beside it and renamed into
/// place after verification.
pub struct DirBlobStore {
    root: PathBuf,
}

static TMP_SEQ: AtomicU64 = AtomicU64::new(0);

impl DirBlobStore {
    /// Opens (creating) a store at `root`.
    pub fn new(root: impl Into<PathBuf>) -> io::Result<DirBlobStore> {
        let root = root.into();
        fs::create_dir_all(root.join("blobs"))?;
        Ok(DirBlobStore { root })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn path(&self, digest: &Digest) -> PathBuf {
        self.root.join("blobs").join(digest.algorithm()).join(digest.hex())
    }

    /// Stores bytes already in memory.
    pub fn put_bytes(&self, data: &[u8]) -> io::Result<Digest> {
        let d = Digest::sha256(data);
        self.put(&d, Some(data.len() as u64), &mut &data[..])?;
        Ok(d)
    }

    /// Every stored digest (any algorithm).
    pub fn list(&self) -> io::Result<Vec<Digest>> {
        let mut out = Vec::new();
        for algo in fs::read_dir(self.root.join("blobs"))? {
            let algo = algo?;
            if !algo.file_type()?.is_dir() {
                continue;
            }
            let a = algo.file_name().to_string_lossy().into_owned();
            for f in fs::read_dir(algo.path())? {
                let name = f?.file_name().to_string_lossy().into_owned();
                if let Ok(d) = Digest::parse(&format!("{a}:{name}")) {
                    out.push(d);
                }
            }
        }
        out.sort();
        Ok(out)
    }
}

impl BlobStore for DirBlobStore {
    fn has(&self, digest: &Digest) -> bool {
        self.path(digest).is_file()
    }

    fn put(&self, digest: &Digest, size: Option<u64>, reader: &mut dyn Read) -> io::Result<u64> {
        let dir = self.root.join("blobs").join(digest.algorithm());
        fs::create_dir_all(&dir)?;
        let tmp = dir.join(format!(".tmp-{}-{}-{}", digest.hex(), std::process::id(), TMP_SEQ.fetch_add(1, Ordering::Relaxed)));
        let result = (|| {
            let mut f = fs::OpenOptions::new().write(true).create_new(true).open(&tmp)?;
            let mut v = VerifyingReader::new(reader, Some(digest.clone()), size);
            let n = io::copy(&mut v, &mut f)?;
            if !v.verified() {
                return Err(io::Error::new(io::ErrorKind::InvalidData, "blob not verified"));
            }
            f.flush()?;
            f.sync_all()?;
            drop(f);
            fs::rename(&tmp, self.path(digest))?;
            Ok(n)
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result
    }

    fn open(&self, digest: &Digest) -> io::Result<Box<dyn Read + Send>> {
        let p = self.path(digest);
        let f = fs::File::open(&p).map_err(|e| io::Error::new(e.kind(), format!("blob {digest}: {e}")))?;
        Ok(Box::new(io::BufReader::with_capacity(256 << 10, f)))
    }

    fn size(&self, digest: &Digest) -> io::Result<u64> {
        Ok(fs::metadata(self.path(digest))?.len())
    }
}
