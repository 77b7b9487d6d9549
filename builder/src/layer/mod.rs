//! Layers: overlay upper dir -> OCI layer blob ([`diff`]), layer blob -> directory
//! ([`unpack`], as an overlay lowerdir or flattened into a rootfs), and rootfs tarball ->
//! one-layer image ([`import_tarball`]).
//!
//! - `tar.rs`: the tar writer (reproducible, chunked) and reader (USTAR/PAX/GNU).
//! - `compress.rs`: gzip (zlib-rs) / zstd encoders, decompression by magic.
//! - `pipeline.rs`: tar producer -> compressor threads -> store, both digests on the way.
//! - `pgzip.rs`: parallel, adaptive gzip (pigz technique; output independent of threads).
//! - `diff.rs`: the overlay upper walker (whiteouts, opaque dirs, hardlinks, xattrs).
//! - `unpack.rs`: confined extraction (no `..`, no symlink traversal, no escape).
//! - `import.rs`: `import TARBALL`.

pub mod compress;
pub mod diff;
pub mod import;
pub mod pgzip;
pub mod pipeline;
pub(crate) mod sys;
pub mod tar;
pub mod unpack;

// Measurements, not checks: built only with `--features bench-layer`.
#[cfg(all(test, feature = "bench-layer"))]
mod bench;
#[cfg(test)]
pub(crate) mod tests;

pub use compress::Compression;
pub use diff::{DiffOptions, DiffStats};
pub use import::{import_reader, import_tarball, ImportOptions, Imported};
pub use pipeline::{LayerBlob, LayerWriter};
pub use unpack::{unpack, UnpackMode, UnpackOptions, UnpackStats};

use crate::store::Store;
use std::io;
use std::path::Path;

/// Writes the overlay upper dir `upper` as a compressed OCI layer blob into `store`
/// (diff_id and blob digest computed in the same pass; the blob is committed atomically).
pub fn diff(store: &Store, upper: &Path, opts: &DiffOptions) -> io::Result<LayerBlob> {
    let _lease = store.lease()?;
    let mut w = LayerWriter::new(store, opts.compression)?;
    let stats = diff::write_diff(upper, &mut w.tar, opts)?;
    let mut blob = w.finish(store)?;
    blob.entries = stats.entries;
    Ok(blob)
}

/// Unpacks a stored layer blob into `dest` (see [`unpack`]).
pub fn unpack_blob(store: &Store, blob: &berth_spec::image::Digest, dest: &Path, opts: &UnpackOptions) -> io::Result<UnpackStats> {
    unpack(store.open_blob(blob)?, dest, opts)
}
