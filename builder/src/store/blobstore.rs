//! The store as the registry client's [`BlobStore`]: pulled blobs are committed by
//! [`Store::put_blob_checked`] (hashed while written, renamed into place only when the
//! digest and size match), pushed blobs are read straight from `blobs/sha256/`.

use super::Store;
use crate::registry::{self, BlobStore};
use berth_spec::image::Digest;
use std::io::{self, Read};

/// The store's digest type for a registry digest. The store keeps sha256 only.
pub fn to_store_digest(d: &registry::Digest) -> io::Result<Digest> {
    Digest::parse(d.as_str()).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))
}

/// The registry client's digest type for a store digest (always valid: sha256).
pub fn to_registry_digest(d: &Digest) -> registry::Digest {
    registry::Digest::parse(d.as_str()).expect("a store digest is a valid sha256 digest")
}

impl BlobStore for Store {
    fn has(&self, digest: &registry::Digest) -> bool {
        to_store_digest(digest).is_ok_and(|d| self.has_blob(&d))
    }

    fn put(&self, digest: &registry::Digest, size: Option<u64>, reader: &mut dyn Read) -> io::Result<u64> {
        let d = to_store_digest(digest)?;
        // The media type only labels the returned descriptor; the blob is bytes.
        Ok(self.put_blob_checked("", Some(&d), size, reader)?.size)
    }

    fn open(&self, digest: &registry::Digest) -> io::Result<Box<dyn Read + Send>> {
        let f = self.open_blob(&to_store_digest(digest)?)?;
        Ok(Box::new(io::BufReader::with_capacity(256 << 10, f)))
    }

    fn size(&self, digest: &registry::Digest) -> io::Result<u64> {
        self.blob_size(&to_store_digest(digest)?)
    }
}
