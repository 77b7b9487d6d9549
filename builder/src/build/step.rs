//! A filesystem step: cache lookup, else overlay + operation + snapshot + cache entry.

use crate::error::Context as _;
use std::path::{Path, PathBuf};

use berth_spec::image::{Digest, History};

use super::stage::StageState;
use super::{is_empty_dir, times, Builder, LayerRef};
use crate::exec::Stubs;
use crate::layer::DiffOptions;
use crate::progress::StepId;
use crate::store::{CacheEntry, CacheLayer};

/// Where a step writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Into the overlay of the stage's layers (the upper dir is the layer).
    Overlay,
    /// Into an empty directory that is the layer by itself (`COPY --link`).
    Link,
}

/// What an operation gets.
pub struct StepEnv<'a> {
    /// The directory to write into: the merged dir, or the empty layer dir (Link).
    pub root: &'a Path,
    /// The step's own temp dir (for mounts, bundles, downloads).
    pub dir: &'a Path,
    /// The progress step.
    pub id: StepId,
}

/// An operation: returns the mount stubs to remove from the upper dir (RUN).
pub type Op<'a> = dyn FnMut(&mut Builder, &StepEnv) -> crate::Result<Option<Stubs>> + 'a;

fn history(created_by: &str, empty: bool, created: String) -> History {
    History { created: Some(created), created_by: Some(created_by.to_string()), author: None, comment: Some("berth-build".into()), empty_layer: empty }
}

/// Runs (or takes from the cache) one step. `display` is the progress line after the
/// label; errors are the step's message (the caller adds the Dockerfile line).
pub fn run(b: &mut Builder, st: &mut StageState, display: &str, key: Digest, created_by: &str, mode: Mode, op: &mut Op) -> crate::Result<()> {
    let label = st.label(b.multi);
    let id = b.progress.start(&format!("{label} {display}"));
    let r = run_inner(b, st, id, key, created_by, mode, op);
    match &r {
        Ok(Some(size)) => b.progress.done(id, (*size > 0).then_some(*size)),
        Ok(None) => {}
        Err(e) => b.progress.error(id, e),
    }
    r.map(drop)
}

/// Ok(Some(size)): ran; Ok(None): cache hit (already reported).
fn run_inner(b: &mut Builder, st: &mut StageState, id: StepId, key: Digest, created_by: &str, mode: Mode, op: &mut Op) -> crate::Result<Option<u64>> {
    b.cache_keys.push(key.clone());
    if !b.opts.no_cache {
        if let Some(entry) = b.store.cache_get(&key)? {
            if let Some(l) = &entry.layer {
                let layer = cached_layer(b, &key, &entry, l)?;
                st.layers.push(layer);
            }
            st.history.push(history(created_by, entry.layer.is_none(), times::cached(b.epoch, &entry)));
            b.progress.cached(id);
            return Ok(None);
        }
    }
    let step_dir = b.store.temp_dir("step")?;
    crate::cleanup::add_dir(step_dir.path());
    let r = run_step_dir(b, st, id, &key, created_by, mode, op, step_dir.path());
    crate::cleanup::remove_dir(step_dir.path());
    drop(step_dir);
    r
}

#[allow(clippy::too_many_arguments)]
fn run_step_dir(
    b: &mut Builder,
    st: &mut StageState,
    id: StepId,
    key: &Digest,
    created_by: &str,
    mode: Mode,
    op: &mut Op,
    step_dir: &Path,
) -> crate::Result<Option<u64>> {
    let (upper, work, merged) = (step_dir.join("u"), step_dir.join("w"), step_dir.join("m"));
    for d in [&upper, &work, &merged] {
        std::fs::create_dir(d).with_context(|| format!("{}", d.display()))?;
    }
    let stubs = match mode {
        Mode::Overlay => {
            let lowers = st.lowers();
            let m = crate::overlay::mount(&mut b.links, &lowers, Some((&upper, &work)), &merged)?;
            let env = StepEnv { root: &merged, dir: step_dir, id };
            let stubs = op(b, &env)?;
            m.unmount().with_context(|| format!("unmount {}", merged.display()))?;
            stubs
        }
        Mode::Link => {
            let env = StepEnv { root: &upper, dir: step_dir, id };
            op(b, &env)?
        }
    };
    if let Some(s) = stubs {
        s.remove_from(&upper);
    }
    let _ = std::fs::remove_dir_all(&work);
    let (layer, size) = if is_empty_dir(&upper) {
        (None, 0)
    } else {
        // The real mtimes: the epoch's clamp is applied at export (times::clamp_layers).
        let opts = DiffOptions { compression: b.compression, source_date_epoch: None, xattrs: true };
        // The commit of the step: diff, tar, compress, store. Its time is in the note
        // (the benchmark against buildah's commit reads it).
        let started = std::time::Instant::now();
        let blob = crate::layer::diff(&b.store, &upper, &opts).context("writing the layer")?;
        let dir = b.store.adopt_layer_dir(&blob.diff_id, &upper)?;
        b.progress.note(
            id,
            &format!(
                "layer {} {} in {:.3}s",
                blob.descriptor.digest.short(),
                crate::progress::human_size(blob.descriptor.size),
                started.elapsed().as_secs_f64()
            ),
        );
        let size = blob.descriptor.size;
        (Some(LayerRef { diff_id: blob.diff_id, blob: blob.descriptor, dir }), size)
    };
    let h = history(created_by, layer.is_none(), times::fresh(b.epoch));
    let entry = CacheEntry {
        layer: layer.as_ref().map(|l| CacheLayer { diff_id: l.diff_id.clone(), blob: l.blob.clone() }),
        history: Some(h.clone()),
        ..Default::default()
    };
    b.store.cache_put(key, &entry).context("writing the cache entry")?;
    if let Some(l) = layer {
        st.layers.push(l);
    }
    st.history.push(h);
    Ok(Some(size))
}

/// The layer of a cache hit, unpacked; recompressed (and the entry updated) when the
/// cached blob is not in the requested compression.
fn cached_layer(b: &mut Builder, key: &Digest, entry: &CacheEntry, l: &CacheLayer) -> crate::Result<LayerRef> {
    let dir: PathBuf = b.store.ensure_layer(&l.blob, &l.diff_id)?;
    if l.blob.media_type == b.compression.media_type() {
        return Ok(LayerRef { diff_id: l.diff_id.clone(), blob: l.blob.clone(), dir });
    }
    let opts = DiffOptions { compression: b.compression, source_date_epoch: None, xattrs: true };
    let blob = crate::layer::diff(&b.store, &dir, &opts).context("recompressing a cached layer")?;
    if blob.diff_id != l.diff_id {
        // Not reproducible from the unpacked dir: keep the stored blob.
        return Ok(LayerRef { diff_id: l.diff_id.clone(), blob: l.blob.clone(), dir });
    }
    let mut e = entry.clone();
    e.layer = Some(CacheLayer { diff_id: l.diff_id.clone(), blob: blob.descriptor.clone() });
    let _ = b.store.cache_put(key, &e);
    Ok(LayerRef { diff_id: l.diff_id.clone(), blob: blob.descriptor, dir })
}
