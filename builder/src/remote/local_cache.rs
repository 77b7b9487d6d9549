//! The build cache in a directory, for CI caches that keep directories between runs:
//! `--cache-to type=local,dest=DIR` writes the cache entries of the steps a build used
//! and their layer blobs, `--cache-from type=local,src=DIR` reads them into the store,
//! so a fresh machine's build finds every step it has in common with that build.
//!
//! The directory: `berth-cache.json` (`{"version":1,"entries":{<key hex>: CacheEntry}}`,
//! as the registry cache's records) and `blobs/sha256/<hex>`. Each export replaces the
//! records and drops blobs they no longer name, so the directory does not grow with
//! every build; blobs are checked against their digest when read back.

use crate::store::{ctx, CacheEntry, Store};
use berth_spec::image::Digest;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

const RECORDS: &str = "berth-cache.json";

#[derive(Debug, Default, Serialize, Deserialize)]
struct Records {
    version: u32,
    entries: BTreeMap<String, CacheEntry>,
}

/// `type=local,dest=DIR` (`--cache-to`) or `type=local,src=DIR` (`--cache-from`); `mode`
/// is accepted and ignored (every step used is exported). None for another type.
pub fn parse_spec(flag: &str, s: &str) -> Result<Option<PathBuf>, String> {
    let fields: Vec<(&str, &str)> = s.split(',').filter_map(|f| f.split_once('=')).collect();
    if !fields.contains(&("type", "local")) {
        return Ok(None);
    }
    let want = if flag == "--cache-to" { "dest" } else { "src" };
    let mut dir = None;
    for field in s.split(',') {
        match field.split_once('=') {
            Some(("type", _)) | Some(("mode", _)) | Some(("ignore-error", _)) => {}
            Some((k, v)) if k == want && !v.is_empty() => dir = Some(PathBuf::from(v)),
            _ => return Err(format!("invalid {flag} {s:?}: want type=local,{want}=DIR")),
        }
    }
    dir.map(Some).ok_or_else(|| format!("invalid {flag} {s:?}: want type=local,{want}=DIR"))
}

fn blob_path(dir: &Path, d: &Digest) -> PathBuf {
    dir.join("blobs/sha256").join(d.hex())
}

/// Writes the entries of `keys` (those still in the store) and their layer blobs into
/// `dir` (created). Returns how many entries it holds.
pub fn export(store: &Store, dir: &Path, keys: &[Digest]) -> Result<usize, String> {
    let op = |e: io::Error| format!("cache export to {}: {e}", dir.display());
    let blobs = dir.join("blobs/sha256");
    fs::create_dir_all(&blobs).map_err(ctx(blobs.display())).map_err(op)?;
    let mut records = Records { version: 1, entries: BTreeMap::new() };
    let mut kept = HashSet::new();
    for k in keys {
        let Some(e) = store.cache_get(k).map_err(op)? else { continue };
        if let Some(l) = &e.layer {
            let to = blob_path(dir, &l.blob.digest);
            if !to.metadata().is_ok_and(|m| m.len() == l.blob.size) {
                let tmp = to.with_extension("tmp");
                fs::copy(store.blob_path(&l.blob.digest), &tmp).map_err(ctx(format!("copy blob {}", l.blob.digest))).map_err(op)?;
                fs::rename(&tmp, &to).map_err(ctx(to.display())).map_err(op)?;
            }
            kept.insert(l.blob.digest.hex().to_string());
        }
        records.entries.insert(k.hex().to_string(), e);
    }
    let data = serde_json::to_vec_pretty(&records).map_err(|e| e.to_string())?;
    let (path, tmp) = (dir.join(RECORDS), dir.join(format!("{RECORDS}.tmp")));
    fs::write(&tmp, data).and_then(|_| fs::rename(&tmp, &path)).map_err(ctx(path.display())).map_err(op)?;
    for e in fs::read_dir(&blobs).map_err(ctx(blobs.display())).map_err(op)?.flatten() {
        if !kept.contains(e.file_name().to_string_lossy().as_ref()) {
            let _ = fs::remove_file(e.path());
        }
    }
    Ok(records.entries.len())
}

/// Reads the cache in `dir` into the store: the layer blobs the store lacks (checked
/// against their digests), then one cache entry per record (existing entries are kept).
/// Ok(None) when `dir` holds no cache yet (the first build).
pub fn import(store: &Store, dir: &Path) -> Result<Option<usize>, String> {
    let op = format!("cache import from {}", dir.display());
    let data = match fs::read(dir.join(RECORDS)) {
        Ok(d) => d,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("{op}: {e}")),
    };
    let records: Records = serde_json::from_slice(&data).map_err(|e| format!("{op}: {RECORDS}: {e}"))?;
    let _lease = store.lease().map_err(|e| format!("{op}: {e}"))?;
    let mut n = 0;
    for (hex, entry) in records.entries {
        let key = Digest::from_hex(&hex).map_err(|e| format!("{op}: {e}"))?;
        if let Some(l) = &entry.layer {
            if !store.has_blob(&l.blob.digest) {
                let Ok(mut f) = fs::File::open(blob_path(dir, &l.blob.digest)) else { continue };
                store
                    .put_blob_checked(&l.blob.media_type, Some(&l.blob.digest), Some(l.blob.size), &mut f)
                    .map_err(|e| format!("{op}: blob {}: {e}", l.blob.digest))?;
            }
        }
        if store.cache_get(&key).map_err(|e| e.to_string())?.is_none() {
            store.cache_put(&key, &entry).map_err(|e| format!("{op}: {e}"))?;
        }
        n += 1;
    }
    Ok(Some(n))
}

#[cfg(test)]
mod tests {
    use super::parse_spec;

    #[test]
    fn local_cache_specs_name_their_directory() {
        assert_eq!(parse_spec("--cache-to", "type=local,dest=/c,mode=max").unwrap().unwrap().to_str(), Some("/c"));
        assert_eq!(parse_spec("--cache-from", "type=local,src=/c").unwrap().unwrap().to_str(), Some("/c"));
        assert!(parse_spec("--cache-from", "type=registry,ref=r/x").unwrap().is_none());
        assert!(parse_spec("--cache-to", "type=local,src=/c").unwrap_err().contains("dest=DIR"));
        assert!(parse_spec("--cache-from", "type=local").unwrap_err().contains("--cache-from"));
    }
}
