//! Resolving a reference to a platform's manifest, and pulling its blobs into a store.

use super::blobstore::BlobStore;
use super::client::{Client, Counter};
use super::digest::Digest;
use super::media::{self, MANIFEST_ACCEPT};
use super::reference::Reference;
use super::{emit, run_parallel, Error, ErrorKind, Progress, ProgressFn, Result};
use berth_spec::image::{Descriptor, Index, Manifest, Platform};

/// Options of [`pull`].
pub struct PullOptions<'a> {
    /// The platform picked from an index (`--platform`; linux/amd64 by default).
    pub platform: Platform,
    /// Parallel blob downloads.
    pub jobs: usize,
    pub progress: Option<&'a ProgressFn<'a>>,
}

impl Default for PullOptions<'_> {
    fn default() -> Self {
        PullOptions { platform: Platform::new("linux", "amd64"), jobs: 3, progress: None }
    }
}

/// An index or manifest list the reference pointed at.
#[derive(Debug, Clone)]
pub struct ResolvedIndex {
    pub digest: Digest,
    pub media_type: String,
    pub bytes: Vec<u8>,
    pub index: Index,
}

/// A reference resolved to one image manifest.
#[derive(Debug, Clone)]
pub struct ResolvedImage {
    /// The reference as asked.
    pub reference: Reference,
    /// The image manifest (the platform's, when the reference names an index).
    pub digest: Digest,
    pub media_type: String,
    pub manifest_bytes: Vec<u8>,
    pub manifest: Manifest,
    /// The index the reference named, if it named one.
    pub index: Option<ResolvedIndex>,
    /// The platform of the chosen index entry.
    pub platform: Option<Platform>,
}

impl ResolvedImage {
    /// The digest the reference itself resolved to (the index's when there is one) —
    /// what `docker pull` prints and what a FROM line is pinned to.
    pub fn top_digest(&self) -> &Digest {
        self.index.as_ref().map(|i| &i.digest).unwrap_or(&self.digest)
    }

    /// `repo@<image manifest digest>`: pinned to exactly this platform's image.
    pub fn pinned(&self) -> Reference {
        self.reference.with_digest(self.digest.clone())
    }

    /// Config and layers, in order, without duplicates.
    pub fn blobs(&self) -> Vec<Descriptor> {
        let mut out: Vec<Descriptor> = Vec::new();
        for d in std::iter::once(&self.manifest.config).chain(self.manifest.layers.iter()) {
            if !out.iter().any(|o| o.digest == d.digest) {
                out.push(d.clone());
            }
        }
        out
    }
}

/// What [`pull`] did.
#[derive(Debug, Clone)]
pub struct PulledImage {
    pub resolved: ResolvedImage,
    /// The image config JSON (also in the store).
    pub config: Vec<u8>,
    /// Blobs downloaded now, and blobs the store already had.
    pub downloaded: Vec<Digest>,
    pub cached: Vec<Digest>,
}

/// Fetches the manifest a reference names; for an index or manifest list, picks
/// the entry for `platform` and fetches that manifest (each verified against its
/// digest). Downloads no blobs.
pub fn resolve(client: &Client, reference: &Reference, platform: &Platform) -> Result<ResolvedImage> {
    resolve_inner(client, reference, platform).map_err(|e| e.context(format!("pull {reference}")))
}

fn resolve_inner(client: &Client, reference: &Reference, platform: &Platform) -> Result<ResolvedImage> {
    let (bytes, media_type, digest) = client.get_manifest(reference, MANIFEST_ACCEPT)?;
    check_schema(&media_type)?;
    if berth_spec::image::is_index(&media_type) {
        let index: Index = parse_json(&bytes, "index")?;
        let entry = choose_platform(&index, platform)?.clone();
        let child_ref = reference.with_digest(entry.digest.clone());
        let (mbytes, mtype, mdigest) = client.get_manifest(&child_ref, MANIFEST_ACCEPT)?;
        check_schema(&mtype)?;
        if berth_spec::image::is_index(&mtype) {
            return Err(Error::new(ErrorKind::Protocol, format!("index entry {} for {platform} is itself an index", entry.digest)));
        }
        let manifest: Manifest = parse_json(&mbytes, "manifest")?;
        Ok(ResolvedImage {
            reference: reference.clone(),
            digest: mdigest,
            media_type: mtype,
            manifest_bytes: mbytes,
            manifest,
            index: Some(ResolvedIndex { digest, media_type, bytes, index }),
            platform: entry.platform.clone(),
        })
    } else {
        let manifest: Manifest = parse_json(&bytes, "manifest")?;
        Ok(ResolvedImage { reference: reference.clone(), digest, media_type, manifest_bytes: bytes, manifest, index: None, platform: None })
    }
}

fn check_schema(media_type: &str) -> Result<()> {
    if media_type == media::DOCKER_MANIFEST_V1 || media_type == media::DOCKER_MANIFEST_V1_SIGNED {
        return Err(Error::new(ErrorKind::Protocol, "docker schema 1 manifests are not supported (push the image again with a current tool)"));
    }
    Ok(())
}

pub(crate) fn parse_json<T: serde::de::DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| Error::new(ErrorKind::Protocol, format!("invalid {what}: {e}")))
}

/// The index entry for `platform`: an exact variant match first, then an entry
/// without (or with any) variant.
pub fn choose_platform<'i>(index: &'i Index, platform: &Platform) -> Result<&'i Descriptor> {
    let candidates: Vec<&Descriptor> = index
        .manifests
        .iter()
        .filter(|d| berth_spec::image::is_manifest(&d.media_type) || d.media_type.is_empty())
        .filter(|d| d.platform.as_ref().is_some_and(|p| platform.matches(p)))
        .collect();
    let exact = candidates.iter().find(|d| {
        let p = Platform::parse(&d.platform.as_ref().expect("filtered").to_string()).ok();
        p.map(|p| p.variant == platform.variant).unwrap_or(false)
    });
    if let Some(d) = exact.or(candidates.first()) {
        return Ok(d);
    }
    let mut avail: Vec<String> = index.manifests.iter().filter_map(|d| d.platform.as_ref()).filter(|p| p.os != "unknown").map(|p| p.to_string()).collect();
    avail.dedup();
    Err(Error::new(
        ErrorKind::Platform,
        format!("no image for platform {platform} (available: {})", if avail.is_empty() { "none".to_string() } else { avail.join(", ") }),
    ))
}

/// Resolves `reference` and downloads what the store lacks: the manifest (and index)
/// bytes, the config and the layers (in parallel, each verified while streaming).
/// Layers are stored as the registry has them (gzip, zstd, ...).
pub fn pull(client: &Client, reference: &Reference, store: &dyn BlobStore, opts: &PullOptions<'_>) -> Result<PulledImage> {
    let op = format!("pull {reference}");
    let resolved = resolve(client, reference, &opts.platform)?;
    emit(opts.progress, Progress::Resolved { reference: reference.to_string(), digest: resolved.digest.clone(), media_type: resolved.media_type.clone() });
    let mut docs: Vec<(&Digest, &[u8])> = vec![(&resolved.digest, &resolved.manifest_bytes)];
    if let Some(i) = &resolved.index {
        docs.push((&i.digest, &i.bytes));
    }
    for (d, b) in docs {
        if !store.has(d) {
            store.put(d, Some(b.len() as u64), &mut &b[..]).map_err(|e| Error::new(ErrorKind::Io, format!("store {d}: {e}")).context(op.clone()))?;
        }
    }
    let blobs = resolved.blobs();
    let mut todo = Vec::new();
    let mut cached = Vec::new();
    for b in &blobs {
        client.note_location(reference.registry(), reference.repository(), &b.digest);
        if store.has(&b.digest) {
            client.count(Counter::BlobsCached, 1);
            emit(opts.progress, Progress::BlobExists { digest: b.digest.clone(), size: b.size });
            cached.push(b.digest.clone());
        } else {
            todo.push(b.clone());
        }
    }
    run_parallel(&todo, opts.jobs, |d| client.fetch_blob(reference, d, store, opts.progress).map(|_| ())).map_err(|e| e.context(op.clone()))?;
    let config = store
        .read_all(&resolved.manifest.config.digest)
        .map_err(|e| Error::new(ErrorKind::Io, format!("read config {}: {e}", resolved.manifest.config.digest)).context(op.clone()))?;
    Ok(PulledImage { downloaded: todo.into_iter().map(|d| d.digest).collect(), cached, config, resolved })
}
