//! Arbitrary OCI artifacts under a reference: what `--cache-to/--cache-from
//! type=registry,ref=R` stores. An artifact is an OCI image manifest whose config and
//! layers have the caller's media types and annotations (and an `artifactType`), or
//! an index listing such manifests or blobs. The registry stores it like an image;
//! nothing here interprets the records.

use super::blobstore::BlobStore;
use super::client::Client;
use super::digest::Digest;
use super::pull::parse_json;
use super::push::{push, PushOptions, PushResult};
use super::reference::Reference;
use super::{run_parallel, Error, ErrorKind, ProgressFn, Result};
use berth_spec::image::{Descriptor, Index, Manifest};
use std::collections::BTreeMap;

/// The Accept header for artifacts: OCI manifest and index first, docker's as well.
pub const ARTIFACT_ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json, \
application/vnd.oci.image.index.v1+json, \
application/vnd.docker.distribution.manifest.v2+json, \
application/vnd.docker.distribution.manifest.list.v2+json";

/// `{}`: the content of the OCI empty descriptor.
pub const EMPTY_JSON: &[u8] = b"{}";

/// The OCI empty config descriptor (`application/vnd.oci.empty.v1+json`, `{}`).
pub fn empty_config() -> Descriptor {
    Descriptor::of(berth_spec::image::MEDIA_TYPE_OCI_EMPTY, EMPTY_JSON)
}

/// A blob held in memory, to become a layer or the config of an artifact.
#[derive(Debug, Clone)]
pub struct ArtifactBlob {
    pub media_type: String,
    pub data: Vec<u8>,
    pub annotations: BTreeMap<String, String>,
}

impl ArtifactBlob {
    pub fn new(media_type: &str, data: Vec<u8>) -> ArtifactBlob {
        ArtifactBlob { media_type: media_type.into(), data, annotations: BTreeMap::new() }
    }

    pub fn descriptor(&self) -> Descriptor {
        let mut d = Descriptor::of(&self.media_type, &self.data);
        d.annotations = self.annotations.clone();
        d
    }

    /// Puts the data into the store (if absent) and returns its descriptor.
    pub fn store(&self, store: &dyn BlobStore) -> Result<Descriptor> {
        let d = self.descriptor();
        if !store.has(&d.digest) {
            store.put(&d.digest, Some(d.size), &mut &self.data[..]).map_err(|e| Error::new(ErrorKind::Io, format!("store {}: {e}", d.digest)))?;
        }
        Ok(d)
    }
}

/// An OCI image manifest for an artifact: `config` (None: the empty config `{}`,
/// which must then be in the store — [`ArtifactBlob`] with [`EMPTY_JSON`] or
/// [`put_empty_config`]), `layers` as given (blobs already in the store, e.g. the
/// build's cached layers, or records from [`ArtifactBlob::store`]), the annotations,
/// and `artifactType`. Returns the exact bytes to push (media type
/// [`berth_spec::image::MEDIA_TYPE_OCI_MANIFEST`]).
pub fn build_artifact_manifest(artifact_type: &str, config: Option<Descriptor>, layers: Vec<Descriptor>, annotations: BTreeMap<String, String>) -> Vec<u8> {
    let m = Manifest {
        schema_version: 2,
        media_type: Some(berth_spec::image::MEDIA_TYPE_OCI_MANIFEST.into()),
        artifact_type: Some(artifact_type.into()).filter(|s: &String| !s.is_empty()),
        config: config.unwrap_or_else(empty_config),
        layers,
        subject: None,
        annotations,
    };
    serde_json::to_vec(&m).expect("manifest serializes")
}

/// Puts `{}` into the store (the empty config).
pub fn put_empty_config(store: &dyn BlobStore) -> Result<Descriptor> {
    ArtifactBlob::new(berth_spec::image::MEDIA_TYPE_OCI_EMPTY, EMPTY_JSON.to_vec()).store(store)
}

/// Pushes an artifact (manifest or index bytes of `media_type`) whose blobs are in
/// `store`, under `reference`. The same as [`push`], which takes any media types.
pub fn push_artifact(
    client: &Client,
    reference: &Reference,
    store: &dyn BlobStore,
    manifest: &[u8],
    media_type: &str,
    opts: &PushOptions<'_>,
) -> Result<PushResult> {
    push(client, reference, store, manifest, media_type, opts)
}

/// What [`pull_artifact`] fetched.
#[derive(Debug, Clone)]
pub struct PulledArtifact {
    pub reference: Reference,
    pub digest: Digest,
    pub media_type: String,
    pub bytes: Vec<u8>,
    /// Parsed, when it is a manifest (has `config`).
    pub manifest: Option<Manifest>,
    /// Parsed, when it is an index.
    pub index: Option<Index>,
    /// The config blob's content, when it is a manifest (fetched always: it is where
    /// cache exporters keep their records).
    pub config: Option<Vec<u8>>,
}

impl PulledArtifact {
    /// The layers (manifest) or listed descriptors (index).
    pub fn descriptors(&self) -> Vec<Descriptor> {
        match (&self.manifest, &self.index) {
            (Some(m), _) => m.layers.clone(),
            (_, Some(i)) => i.manifests.clone(),
            _ => vec![],
        }
    }
}

/// Fetches an artifact's manifest under `reference` (no platform selection) and its
/// config. Returns None when the reference does not exist (404: no cache yet).
/// With a store, also downloads the blobs that `want` selects (all with
/// `|_| true`) and the store lacks; otherwise blobs can be fetched later, one at a
/// time, with [`Client::fetch_blob`].
pub fn pull_artifact(
    client: &Client,
    reference: &Reference,
    store: Option<&dyn BlobStore>,
    want: &(dyn Fn(&Descriptor) -> bool + Sync),
    progress: Option<&ProgressFn<'_>>,
) -> Result<Option<PulledArtifact>> {
    let op = format!("pull {}", reference.familiar());
    let (bytes, media_type, digest) = match client.get_manifest(reference, ARTIFACT_ACCEPT) {
        Ok(x) => x,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.context(op)),
    };
    let mut a = PulledArtifact { reference: reference.clone(), digest, media_type, bytes, manifest: None, index: None, config: None };
    if berth_spec::image::is_index(&a.media_type) || (!berth_spec::image::is_manifest(&a.media_type) && serde_json::from_slice::<Index>(&a.bytes).is_ok()) {
        a.index = Some(parse_json(&a.bytes, "index").map_err(|e| e.context(op.clone()))?);
    } else {
        let m: Manifest = parse_json(&a.bytes, "manifest").map_err(|e| e.context(op.clone()))?;
        let cfg = client.get_blob_bytes(reference, &m.config.digest, 64 << 20).map_err(|e| e.context(op.clone()))?;
        a.config = Some(cfg);
        a.manifest = Some(m);
    }
    if let Some(store) = store {
        for (d, b) in [(&a.digest, &a.bytes)] {
            if !store.has(d) {
                store.put(d, Some(b.len() as u64), &mut &b[..]).map_err(|e| Error::new(ErrorKind::Io, format!("store {d}: {e}")).context(op.clone()))?;
            }
        }
        if let (Some(m), Some(cfg)) = (&a.manifest, &a.config) {
            if !store.has(&m.config.digest) {
                store
                    .put(&m.config.digest, Some(cfg.len() as u64), &mut &cfg[..])
                    .map_err(|e| Error::new(ErrorKind::Io, format!("store {}: {e}", m.config.digest)).context(op.clone()))?;
            }
        }
        let todo: Vec<Descriptor> = a
            .descriptors()
            .into_iter()
            .filter(|d| !berth_spec::image::is_manifest(&d.media_type) && !berth_spec::image::is_index(&d.media_type))
            .filter(|d| want(d) && !store.has(&d.digest))
            .collect();
        run_parallel(&todo, 3, |d| client.fetch_blob(reference, d, store, progress).map(|_| ())).map_err(|e| e.context(op.clone()))?;
    }
    Ok(Some(a))
}
