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

/// The registry client's descriptor for a store descriptor (the same OCI descriptor;
/// the registry side also allows sha512 digests, hence two types).
pub fn to_registry_descriptor(d: &berth_spec::image::Descriptor) -> registry::Descriptor {
    let mut r = registry::Descriptor::new(&d.media_type, to_registry_digest(&d.digest), d.size);
    r.urls = d.urls.clone();
    r.annotations = d.annotations.clone();
    r.artifact_type = d.artifact_type.clone();
    r.platform = d.platform.as_ref().map(|p| registry::Platform {
        architecture: p.architecture.clone(),
        os: p.os.clone(),
        variant: p.variant.clone(),
        os_version: p.os_version.clone(),
        os_features: p.os_features.clone(),
    });
    r
}
