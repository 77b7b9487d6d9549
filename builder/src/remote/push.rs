//! Pushing a stored image.

use crate::error::Context as _;
use crate::registry::{self, media, Client, ProgressFn, PushOptions, PushResult, Reference};
use crate::store::Store;

/// Pushes the stored image `source` (a name or id) to `dest`: the blobs the registry
/// lacks (HEAD first; mounted when the image came from another repository of the same
/// registry), then the manifest, as the exact bytes stored (its digest is the id).
pub fn push_image(
    store: &Store,
    client: &Client,
    source: &str,
    dest: &Reference,
    chunk_size: Option<u64>,
    progress: Option<&ProgressFn<'_>>,
) -> crate::Result<PushResult> {
    let op = format!("push {}", dest.familiar());
    let img = store.inspect(source).context(&op)?;
    let bytes = store.read_blob(&img.digest).context(&op)?;
    let media_type =
        img.manifest.media_type.clone().or_else(|| media::sniff_media_type(&bytes)).unwrap_or_else(|| berth_spec::image::MEDIA_TYPE_OCI_MANIFEST.to_string());
    let mut mount_from = Vec::new();
    if let Ok(src) = Reference::parse(source) {
        if src.registry() == dest.registry() && src.repository() != dest.repository() {
            mount_from.push(src.repository().to_string());
        }
    }
    let opts = PushOptions { chunk_size, jobs: 3, mount_from, progress };
    registry::push(client, dest, store, &bytes, &media_type, &opts)
}
