//! Pushing an image (manifest), an index with its manifests, or any OCI artifact.

use super::blobstore::BlobStore;
use super::client::{Client, Counter, Mount, Scope};
use super::digest::Digest;
use super::media;
use super::pull::parse_json;
use super::reference::Reference;
use super::{emit, run_parallel, Error, ErrorKind, Progress, ProgressFn, Result};
use berth_spec::image::{Descriptor, Index, Manifest};

/// Options of [`push`].
pub struct PushOptions<'a> {
    /// Upload blobs in PATCH chunks of this many bytes; None: one PUT per blob.
    pub chunk_size: Option<u64>,
    /// Parallel blob uploads.
    pub jobs: usize,
    /// Repositories on the same registry to try mounting blobs from (besides those
    /// this client saw holding them).
    pub mount_from: Vec<String>,
    pub progress: Option<&'a ProgressFn<'a>>,
}

impl Default for PushOptions<'_> {
    fn default() -> Self {
        PushOptions { chunk_size: None, jobs: 3, mount_from: vec![], progress: None }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushResult {
    /// Where it was pushed (the reference, pinned to the digest).
    pub reference: Reference,
    /// The manifest's digest (the registry's `Docker-Content-Digest`, checked).
    pub digest: Digest,
    pub size: u64,
    pub media_type: String,
}

/// Pushes `manifest` (exact bytes, of `media_type`) under `reference` (its tag, or
/// its digest when it has no tag), after every blob it references: blobs come from
/// `store` and are skipped when the repository has them (HEAD), mounted when another
/// repository of the registry has them, uploaded otherwise. For an index, each
/// manifest it lists is read from `store` and pushed first (recursively, by digest).
/// Works for any OCI artifact: custom config/layer media types and annotations.
pub fn push(client: &Client, reference: &Reference, store: &dyn BlobStore, manifest: &[u8], media_type: &str, opts: &PushOptions<'_>) -> Result<PushResult> {
    let op = format!("push {}", reference.familiar());
    push_inner(client, reference, store, manifest, media_type, opts, 0).map_err(|e| e.context(op))
}

fn push_inner(
    client: &Client,
    reference: &Reference,
    store: &dyn BlobStore,
    manifest: &[u8],
    media_type: &str,
    opts: &PushOptions<'_>,
    depth: usize,
) -> Result<PushResult> {
    if depth > 4 {
        return Err(Error::new(ErrorKind::Protocol, "indexes nested too deep"));
    }
    let mut blobs: Vec<Descriptor> = Vec::new();
    let mut children: Vec<Descriptor> = Vec::new();
    if berth_spec::image::is_index(media_type) || (!berth_spec::image::is_manifest(media_type) && looks_like_index(manifest)) {
        let index: Index = parse_json(manifest, "index")?;
        for d in index.manifests {
            if berth_spec::image::is_index(&d.media_type) || berth_spec::image::is_manifest(&d.media_type) {
                children.push(d);
            } else {
                blobs.push(d);
            }
        }
    } else {
        let m: Manifest = parse_json(manifest, "manifest")?;
        blobs.push(m.config);
        blobs.extend(m.layers);
    }
    let mut uniq: Vec<Descriptor> = Vec::new();
    for b in blobs {
        if !uniq.iter().any(|u| u.digest == b.digest) {
            uniq.push(b);
        }
    }
    for c in &children {
        let bytes = store.read_all(&c.digest).map_err(|e| Error::new(ErrorKind::Io, format!("manifest {} from the store: {e}", c.digest)))?;
        let child_ref = reference.by_digest(c.digest.clone());
        push_inner(client, &child_ref, store, &bytes, &c.media_type, opts, depth + 1)?;
    }
    let mut scope = Scope::push(reference.repository());
    for s in mount_sources(client, reference, &uniq, opts) {
        scope.add_pull(&s);
    }
    run_parallel(&uniq, opts.jobs, |d| push_blob(client, reference, &scope, d, store, opts))?;
    let digest = client.put_manifest(reference, manifest, media_type)?;
    emit(opts.progress, Progress::ManifestPushed { reference: reference.to_string(), digest: digest.clone() });
    let pinned = match reference.tag() {
        Some(_) => reference.with_digest(digest.clone()),
        None => reference.clone(),
    };
    Ok(PushResult { reference: pinned, digest, size: manifest.len() as u64, media_type: media_type.to_string() })
}

fn looks_like_index(bytes: &[u8]) -> bool {
    media::sniff_media_type(bytes).is_some_and(|m| berth_spec::image::is_index(&m))
}

fn mount_sources(client: &Client, reference: &Reference, blobs: &[Descriptor], opts: &PushOptions<'_>) -> Vec<String> {
    let mut out: Vec<String> = opts.mount_from.iter().filter(|r| r.as_str() != reference.repository()).cloned().collect();
    for b in blobs {
        for r in client.known_locations(reference.registry(), &b.digest) {
            if r != reference.repository() && !out.contains(&r) {
                out.push(r);
            }
        }
    }
    out
}

/// Pushes one blob unless the repository has it; mounts it when possible.
pub fn push_blob_with(client: &Client, reference: &Reference, desc: &Descriptor, store: &dyn BlobStore, opts: &PushOptions<'_>) -> Result<()> {
    let mut scope = Scope::push(reference.repository());
    for s in mount_sources(client, reference, std::slice::from_ref(desc), opts) {
        scope.add_pull(&s);
    }
    push_blob(client, reference, &scope, desc, store, opts)
}

fn push_blob(client: &Client, reference: &Reference, scope: &Scope, desc: &Descriptor, store: &dyn BlobStore, opts: &PushOptions<'_>) -> Result<()> {
    let progress = opts.progress;
    if client.blob_exists_scoped(reference, &desc.digest, scope)?.is_some() {
        client.count(Counter::BlobsExisting, 1);
        client.note_location(reference.registry(), reference.repository(), &desc.digest);
        emit(progress, Progress::BlobExists { digest: desc.digest.clone(), size: desc.size });
        return Ok(());
    }
    if !store.has(&desc.digest) {
        return Err(Error::new(ErrorKind::Io, format!("blob {} is neither in the registry nor in the local store", desc.digest)));
    }
    let mut session: Option<String> = None;
    let mut sources = opts.mount_from.clone();
    for r in client.known_locations(reference.registry(), &desc.digest) {
        if !sources.contains(&r) {
            sources.push(r);
        }
    }
    for from in sources.iter().filter(|r| r.as_str() != reference.repository()) {
        match client.mount_blob(reference, &desc.digest, from, scope)? {
            Mount::Mounted => {
                client.count(Counter::BlobsMounted, 1);
                client.note_location(reference.registry(), reference.repository(), &desc.digest);
                emit(progress, Progress::BlobMounted { digest: desc.digest.clone(), from: from.clone() });
                return Ok(());
            }
            Mount::Started(loc) => {
                session = Some(loc);
                break;
            }
            Mount::Failed => {}
        }
    }
    let mut attempt = 0;
    loop {
        let loc = match session.take() {
            Some(l) => l,
            None => client.start_upload(reference, scope)?,
        };
        match client.upload_blob(reference, scope, loc, desc, store, opts.chunk_size, progress) {
            Ok(()) => return Ok(()),
            Err(e) if e.is_transient() && attempt < client.options().max_retries => {
                emit(progress, Progress::Retry { what: desc.digest.to_string(), attempt: attempt + 1, error: e.to_string() });
                client.backoff(attempt, None);
                attempt += 1;
            }
            Err(e) => return Err(e.context(format!("blob {}", desc.digest))),
        }
    }
}
