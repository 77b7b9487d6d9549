//! Pulling an image into the store, and finding one that is already there.

use crate::error::Context as _;
use crate::registry::{self, media, Client, Platform, ProgressFn, PullOptions, Reference};
use crate::store::blobstore::sha256_only;
use crate::store::Store;
use berth_spec::image::{layer_compression, Digest, ImageConfig, Manifest};
use std::io;

/// What [`pull_into`] stored.
#[derive(Debug, Clone)]
pub struct Pulled {
    /// The image manifest in the store (the image id).
    pub id: Digest,
    /// What the reference resolved to (the index's digest for an index): what
    /// `docker pull` prints.
    pub digest: Digest,
    /// The name it was tagged with (None for a digest-only reference).
    pub name: Option<String>,
    pub downloaded: usize,
    pub cached: usize,
}

/// The image manifest `name` names in the store, if there: a store name (`busybox`
/// is `busybox:latest`), the familiar name of a reference (`docker.io/library/busybox`
/// is `busybox:latest`), an id, or `repo@digest`; a stored index gives its entry for
/// `platform` when that manifest is stored too.
pub fn find_local(store: &Store, name: &str, platform: &Platform) -> io::Result<Option<Digest>> {
    let mut candidates = vec![name.to_string()];
    if let Ok(r) = Reference::parse(name) {
        if let Some(n) = super::store_name(&r).filter(|_| r.digest().is_none()) {
            candidates.push(n);
        }
    }
    for c in candidates {
        match store.resolve(&c) {
            Ok(d) => return image_of(store, &d, platform),
            Err(e) if matches!(e.kind(), io::ErrorKind::NotFound | io::ErrorKind::InvalidInput) => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(None)
}

fn image_of(store: &Store, d: &Digest, platform: &Platform) -> io::Result<Option<Digest>> {
    let bytes = store.read_blob(d)?;
    if !media::sniff_media_type(&bytes).is_some_and(|m| berth_spec::image::is_index(&m)) {
        return Ok(Some(d.clone()));
    }
    let index: berth_spec::image::Index = serde_json::from_slice(&bytes).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("index {d}: {e}")))?;
    let Ok(entry) = registry::pull::choose_platform(&index, platform) else { return Ok(None) };
    let m = sha256_only(&entry.digest)?.clone();
    Ok(store.has_blob(&m).then_some(m))
}

/// Pulls `r` into the store: manifest (and index), config and layers (only those the
/// store lacks; verified while streaming), checks that it is a runnable image (config
/// parses, one diff_id per layer, known layer media types), unpacks the layers (each
/// checked against its diff_id), and tags it with the reference's name.
pub fn pull_into(store: &Store, client: &Client, r: &Reference, platform: &Platform, progress: Option<&ProgressFn<'_>>) -> crate::Result<Pulled> {
    let op = format!("pull {}", r.familiar());
    let _lease = store.lease().context(&op)?;
    let opts = PullOptions { platform: platform.clone(), jobs: 3, progress };
    let p = registry::pull(client, r, store, &opts)?;
    let bad = |msg: String| format!("{op}: {msg}");
    let manifest: Manifest = serde_json::from_slice(&p.resolved.manifest_bytes).map_err(|e| bad(format!("manifest: {e}")))?;
    let config: ImageConfig = serde_json::from_slice(&p.config).map_err(|e| bad(format!("image config: {e}")))?;
    if let Some(l) = manifest.layers.iter().find(|l| layer_compression(&l.media_type).is_none()) {
        return Err(bad(format!("layer {} has media type {:?}, which is not an image layer", l.digest, l.media_type)).into());
    }
    if config.rootfs.diff_ids.len() != manifest.layers.len() {
        return Err(bad(format!("{} layers in the manifest but {} diff_ids in the config", manifest.layers.len(), config.rootfs.diff_ids.len())).into());
    }
    for (blob, id) in manifest.layers.iter().zip(&config.rootfs.diff_ids) {
        store.ensure_layer(blob, id).map_err(|e| bad(e.to_string()))?;
    }
    let id = sha256_only(&p.resolved.digest).map_err(|e| bad(e.to_string()))?.clone();
    let name = match super::store_name(r) {
        Some(n) => Some(store.tag(&n, &id).map_err(|e| bad(e.to_string()))?),
        None => None,
    };
    Ok(Pulled { id, digest: p.resolved.top_digest().clone(), name, downloaded: p.downloaded.len(), cached: p.cached.len() })
}

/// The image for a `FROM` or a `pull`: the store's if it has one, else pulled.
/// Returns the manifest digest in the store.
pub fn local_or_pull(store: &Store, name: &str, remote: &super::RemoteOptions, progress: Option<&ProgressFn<'_>>) -> crate::Result<Digest> {
    let platform = remote.platform()?;
    if let Some(d) = find_local(store, name, &platform)? {
        return Ok(d);
    }
    let r = Reference::parse(name)?;
    let client = remote.client(&[r.registry()])?;
    Ok(pull_into(store, &client, &r, &platform, progress)?.id)
}
