//! The remote build cache: `--cache-to type=registry,ref=R` pushes the cache entries
//! of the steps a build used, with their layers, as one OCI artifact; `--cache-from
//! type=registry,ref=R` pulls it into the store's cache, so that a fresh machine's
//! build finds every step it has in common with that build.
//!
//! The artifact (`artifactType` [`ARTIFACT_TYPE`]): the config blob is the records
//! (JSON `{"version":1,"entries":{<key hex>: CacheEntry}}`, [`CONFIG_TYPE`]), the
//! layers are the entries' layer blobs, as stored (so the registry holds each layer
//! once, shared with the images that use it).

use crate::error::Context as _;
use crate::registry::{build_artifact_manifest, pull_artifact, push_artifact, ArtifactBlob, Client, PushOptions, Reference};
use crate::store::{CacheEntry, Store};
use berth_spec::image::Digest;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const ARTIFACT_TYPE: &str = "application/vnd.berth.build.cache.v1";
pub const CONFIG_TYPE: &str = "application/vnd.berth.build.cache.records.v1+json";

#[derive(Debug, Default, Serialize, Deserialize)]
struct Records {
    version: u32,
    entries: BTreeMap<String, CacheEntry>,
}

/// `type=registry,ref=R` (also `mode=...`, accepted and ignored: every step used is
/// exported). Returns the reference.
pub fn parse_cache_spec(flag: &str, s: &str) -> crate::Result<Reference> {
    let mut typ = None;
    let mut reference = None;
    for field in s.split(',') {
        match field.split_once('=') {
            Some(("type", v)) => typ = Some(v),
            Some(("ref", v)) => reference = Some(v),
            Some(("mode", _)) | Some(("ignore-error", _)) => {}
            _ => return Err(format!("invalid {flag} {s:?}: want type=registry,ref=REF").into()),
        }
    }
    match (typ, reference) {
        (Some("registry"), Some(r)) => Reference::parse(r).context(flag),
        (Some(t), _) if t != "registry" => Err(format!("invalid {flag} {s:?}: only type=registry is supported").into()),
        _ => Err(format!("invalid {flag} {s:?}: want type=registry,ref=REF").into()),
    }
}

/// Pushes the entries of `keys` (those still in the store) and their layers to `r`.
/// Returns the artifact's digest and how many entries it holds.
pub fn export(store: &Store, client: &Client, r: &Reference, keys: &[Digest]) -> crate::Result<(Digest, usize)> {
    let op = format!("cache export to {}", r.familiar());
    let mut records = Records { version: 1, entries: BTreeMap::new() };
    let mut layers: Vec<berth_spec::image::Descriptor> = Vec::new();
    for k in keys {
        let Some(e) = store.cache_get(k).context(&op)? else { continue };
        if let Some(l) = &e.layer {
            let d = l.blob.clone();
            if !layers.iter().any(|x| x.digest == d.digest) {
                layers.push(d);
            }
        }
        records.entries.insert(k.hex().to_string(), e);
    }
    let data = serde_json::to_vec(&records)?;
    let config = ArtifactBlob::new(CONFIG_TYPE, data).store(store).context(&op)?;
    let manifest = build_artifact_manifest(ARTIFACT_TYPE, Some(config), layers, BTreeMap::new());
    let opts = PushOptions::default();
    let res = push_artifact(client, r, store, &manifest, berth_spec::image::MEDIA_TYPE_OCI_MANIFEST, &opts)?;
    Ok((res.digest, records.entries.len()))
}

/// Pulls the cache at `r` into the store: its layer blobs the store lacks, then one
/// cache entry per record (existing entries are kept). Ok(None) when `r` does not exist
/// yet (the first build).
pub fn import(store: &Store, client: &Client, r: &Reference) -> crate::Result<Option<usize>> {
    let op = format!("cache import from {}", r.familiar());
    let _lease = store.lease().context(&op)?;
    let Some(a) = pull_artifact(client, r, Some(store), &|_| true, None)? else {
        return Ok(None);
    };
    let m = a.manifest.as_ref().ok_or_else(|| format!("{op}: the reference is an index, not a berth-build cache"))?;
    if m.config.media_type != CONFIG_TYPE {
        return Err(format!("{op}: not a berth-build cache (config media type {:?})", m.config.media_type).into());
    }
    let records: Records = serde_json::from_slice(a.config.as_deref().unwrap_or_default()).with_context(|| format!("{op}: records"))?;
    let mut n = 0;
    for (hex, entry) in records.entries {
        let key = Digest::from_hex(&hex).context(&op)?;
        if let Some(l) = &entry.layer {
            if !store.has_blob(&l.blob.digest) {
                continue; // not in the artifact: the entry would be a miss anyway
            }
        }
        if store.cache_get(&key)?.is_none() {
            store.cache_put(&key, &entry).context(&op)?;
        }
        n += 1;
    }
    Ok(Some(n))
}
