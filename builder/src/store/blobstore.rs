//! The store as the registry client's [`BlobStore`]: pulled blobs are committed by
//! [`Store::put_blob_checked`] (hashed while written, renamed into place only when the
//! digest and size match), pushed blobs are read straight from `blobs/sha256/`.

use super::Store;
use crate::registry::BlobStore;
use berth_spec::image::Digest;
use std::io::{self, Read};

/// The store keeps sha256 blobs only: another algorithm is refused (never "had").
pub fn sha256_only(d: &Digest) -> io::Result<&Digest> {
    if d.algorithm() == "sha256" {
        Ok(d)
    } else {
        Err(io::Error::new(io::ErrorKind::InvalidInput, format!("{d}: the store keeps sha256 digests only")))
    }
}

impl BlobStore for Store {
    fn has(&self, digest: &Digest) -> bool {
        sha256_only(digest).is_ok_and(|d| self.has_blob(d))
    }

    fn put(&self, digest: &Digest, size: Option<u64>, reader: &mut dyn Read) -> io::Result<u64> {
        let d = sha256_only(digest)?;
        // The media type only labels the returned descriptor; the blob is bytes.
        Ok(self.put_blob_checked("", Some(d), size, reader)?.size)
    }

    fn open(&self, digest: &Digest) -> io::Result<Box<dyn Read + Send>> {
        let f = self.open_blob(sha256_only(digest)?)?;
        Ok(Box::new(io::BufReader::with_capacity(256 << 10, f)))
    }

    fn size(&self, digest: &Digest) -> io::Result<u64> {
        self.blob_size(sha256_only(digest)?)
    }
}
