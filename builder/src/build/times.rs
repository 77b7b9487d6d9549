//! The times written into an image: the config's `created`, each history entry's, and
//! the file mtimes in layers.
//!
//! - With SOURCE_DATE_EPOCH (`--build-arg SOURCE_DATE_EPOCH=N`, BuildKit's way, else the
//!   environment variable): every new history entry and `created` are the epoch, and file
//!   mtimes newer than the epoch are clamped to it in the image's layer tars, cache hits
//!   included (see [`clamp_layers`]).
//! - Without: a step that runs gets now; a cache hit keeps the time of the run that made
//!   it; a metadata-only step (ENV, LABEL, CMD...) and the image take the latest time
//!   before them (the last history entry's, else the base's `created`), as BuildKit does.
//!   So an unchanged (fully cached) rebuild writes the same config: same digest, and CI
//!   does not re-push and redeploy.

use berth_spec::image::{rfc3339, History, ImageConfig};

use super::{Builder, LayerRef};
use crate::dockerfile::BuildArgs;
use crate::layer::DiffOptions;
use crate::store::{CacheEntry, CacheLayer};

pub const ARG: &str = "SOURCE_DATE_EPOCH";

/// The epoch of this build: the build arg wins over the environment (an empty value is
/// unset, as reproducible-builds.org says).
pub fn source_date_epoch(args: &BuildArgs) -> crate::Result<Option<i64>> {
    if let Some(v) = args.get(ARG) {
        return parse(v).map_err(|e| format!("--build-arg {ARG}={v:?}: {e}").into());
    }
    match std::env::var(ARG) {
        Ok(v) => parse(&v).map_err(|e| format!("environment variable {ARG}={v:?}: {e}").into()),
        Err(_) => Ok(None),
    }
}

fn parse(v: &str) -> Result<Option<i64>, String> {
    let v = v.trim();
    if v.is_empty() {
        return Ok(None);
    }
    match v.parse::<i64>() {
        Ok(n) if n >= 0 => Ok(Some(n)),
        _ => Err("want a Unix time in seconds (a non-negative integer)".into()),
    }
}

/// Now, as Unix seconds.
fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// The time of a step that runs now.
pub fn fresh(epoch: Option<i64>) -> String {
    rfc3339(epoch.unwrap_or_else(now))
}

/// The time of a cache hit: the epoch, else the time the entry was made.
pub fn cached(epoch: Option<i64>, entry: &CacheEntry) -> String {
    match epoch {
        Some(e) => rfc3339(e),
        None => entry.history.as_ref().and_then(|h| h.created.clone()).unwrap_or_else(|| fresh(None)),
    }
}

/// The time of a metadata-only step, or of the image: the epoch, else the latest time
/// before it. None when nothing before it has a time (scratch and metadata only).
pub fn inherited(epoch: Option<i64>, history: &[History], base_created: Option<&str>) -> Option<String> {
    if let Some(e) = epoch {
        return Some(rfc3339(e));
    }
    history.iter().rev().find_map(|h| h.created.clone()).or_else(|| base_created.map(str::to_string))
}

/// The image config's `created`.
pub fn set_image_created(epoch: Option<i64>, c: &mut ImageConfig) {
    c.created = inherited(epoch, &c.history, c.created.as_deref());
}

/// The layers of the image with mtimes newer than the epoch clamped to it (BuildKit's
/// rewrite-timestamp), at export: steps and the cache keep the real mtimes, so the cache
/// keys do not depend on the epoch (CI that sets it to the commit time keeps its cache),
/// and a cached step gives what a clean build with this epoch gives. The base image's
/// layers are kept as they are (as BuildKit does: they stay shared with the base). Each
/// rewrite is cached by (layer, epoch, compression).
pub fn clamp_layers(b: &Builder, layers: &[LayerRef]) -> crate::Result<Vec<LayerRef>> {
    let Some(e) = b.epoch else { return Ok(layers.to_vec()) };
    let mut out = Vec::with_capacity(layers.len());
    for l in layers {
        if b.base_layers.contains(&l.diff_id) {
            out.push(l.clone());
            continue;
        }
        let key = crate::cache::KeyBuilder::new("source-date-epoch", &l.diff_id)
            .field("epoch", &e.to_string())
            .field("media-type", b.compression.media_type())
            .finish();
        let clamped = match b.store.cache_get(&key).map_err(|e| e.to_string())?.and_then(|c| c.layer) {
            Some(c) => c,
            None => {
                let opts = DiffOptions { compression: b.compression, source_date_epoch: Some(e), xattrs: true };
                let blob = crate::layer::diff(&b.store, &l.dir, &opts).map_err(|e| format!("clamping the mtimes of a layer to {ARG}: {e}"))?;
                let c = CacheLayer { diff_id: blob.diff_id, blob: blob.descriptor };
                let entry = CacheEntry { layer: Some(c.clone()), ..Default::default() };
                b.store.cache_put(&key, &entry).map_err(|e| format!("writing the cache entry: {e}"))?;
                c
            }
        };
        // `dir` stays the unclamped one: the same files, and nothing mounts it any more
        // (a later build that bases on this image unpacks the clamped blob).
        out.push(LayerRef { diff_id: clamped.diff_id, blob: clamped.blob, dir: l.dir.clone() });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(created: Option<&str>) -> History {
        History { created: created.map(str::to_string), ..Default::default() }
    }

    #[test]
    fn epoch_parses_from_the_build_arg_before_the_environment() {
        let args = BuildArgs::from_flags(&["SOURCE_DATE_EPOCH=1700000000".into()], &|_| None);
        assert_eq!(source_date_epoch(&args).unwrap(), Some(1_700_000_000));
        let args = BuildArgs::from_flags(&["SOURCE_DATE_EPOCH=".into()], &|_| None);
        assert_eq!(source_date_epoch(&args).unwrap(), None);
        for bad in ["yesterday", "-1", "1.5"] {
            let args = BuildArgs::from_flags(&[format!("SOURCE_DATE_EPOCH={bad}")], &|_| None);
            let e = source_date_epoch(&args).unwrap_err().to_string();
            assert!(e.contains("--build-arg SOURCE_DATE_EPOCH") && e.contains(bad), "{e}");
        }
    }

    #[test]
    fn metadata_steps_take_the_latest_earlier_time_or_the_epoch() {
        let hist = [h(Some("2020-01-01T00:00:00Z")), h(Some("2021-01-01T00:00:00Z")), h(None)];
        assert_eq!(inherited(None, &hist, Some("2019-01-01T00:00:00Z")).as_deref(), Some("2021-01-01T00:00:00Z"));
        assert_eq!(inherited(None, &[], Some("2019-01-01T00:00:00Z")).as_deref(), Some("2019-01-01T00:00:00Z"));
        assert_eq!(inherited(None, &[], None), None);
        assert_eq!(inherited(Some(0), &hist, None).as_deref(), Some("1970-01-01T00:00:00Z"));
    }
}
