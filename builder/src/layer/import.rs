//! `import TARBALL`: a rootfs tarball (plain, gzip or zstd) becomes a one-layer image, as
//! `docker import` makes one. The tarball is read entry by entry and written again as a
//! canonical layer (paths cleaned: no `./` or leading `/`, the root entry dropped;
//! entries with `..` refused), so the layer is what any runtime unpacks the same way.
//!
//! The layer is checked as `load` and `FROM` check one, before anything is stored or
//! tagged: it is unpacked into the store's layer dir with the same confinement rules
//! (no hardlink to a path outside, no entry through a symlink, no malformed whiteout),
//! so a hostile tarball fails here, naming the tarball and the entry, instead of at a
//! later `FROM` naming a layer digest. An empty file is not a tarball.

use super::pipeline::{LayerBlob, LayerWriter};
use super::tar::{clean_path, Kind, TarReader};
use super::{Compression, UnpackOptions};
use crate::store::{ctx, now_rfc3339, Store};
use berth_spec::image::{host_platform, ContainerConfig, Descriptor, History, ImageConfig, Manifest, Platform, RootFs};
use std::io::{self, Read};
use std::path::Path;

#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    pub compression: Compression,
    /// The image's execution config (`--change` in docker import): Cmd, Env, ...
    pub config: Option<ContainerConfig>,
    /// History comment (`--message`).
    pub message: Option<String>,
    /// Default: this host's (linux/amd64, ...).
    pub platform: Option<Platform>,
    /// Clamp mtimes to this (default: $SOURCE_DATE_EPOCH, read by [`ImportOptions::from_env`]).
    pub source_date_epoch: Option<i64>,
}

impl ImportOptions {
    pub fn from_env() -> ImportOptions {
        ImportOptions { source_date_epoch: crate::store::source_date_epoch(), ..Default::default() }
    }
}

#[derive(Debug, Clone)]
pub struct Imported {
    /// The normalized name tagged.
    pub name: String,
    pub manifest: Descriptor,
    pub config: Descriptor,
    pub layer: LayerBlob,
}

/// Imports the tarball at `path` and tags it `name`.
pub fn import_tarball(store: &Store, path: &Path, name: &str, opts: &ImportOptions) -> io::Result<Imported> {
    let f = std::fs::File::open(path).map_err(ctx(format!("open {}", path.display())))?;
    import_reader(store, f, name, opts, &path.display().to_string(), &format!("berth-build import {}", path.display()))
}

/// An error about the tarball `source` (and its entry `entry`, if given).
fn about(source: &str, entry: Option<&[u8]>, e: io::Error) -> io::Error {
    match entry {
        Some(p) => io::Error::new(e.kind(), format!("{source}: entry {:?}: {e}", String::from_utf8_lossy(p))),
        None => io::Error::new(e.kind(), format!("{source}: {e}")),
    }
}

fn refuse(source: &str, entry: &[u8], why: &str) -> io::Error {
    about(source, Some(entry), io::Error::new(io::ErrorKind::PermissionDenied, why.to_string()))
}

/// Imports a tarball read from `r`; `source` names it in errors, `created_by` goes into
/// the history entry.
pub fn import_reader<R: Read + Send>(store: &Store, r: R, name: &str, opts: &ImportOptions, source: &str, created_by: &str) -> io::Result<Imported> {
    let name = crate::store::normalize_name(name)?;
    let _lease = store.lease()?;
    let plain = super::compress::decompress(r).map_err(|e| about(source, None, e))?;
    let mut tr = TarReader::new(plain);
    let mut w = LayerWriter::new(store, opts.compression)?;
    let mut entries = 0u64;
    while let Some(mut h) = tr.next_entry().map_err(|e| about(source, None, e))? {
        let path = clean_path(&h.path).ok_or_else(|| refuse(source, &h.path, "has a '..' component"))?;
        if path.is_empty() {
            continue;
        }
        if h.kind == Kind::Hardlink {
            h.link = clean_path(&h.link)
                .filter(|l| !l.is_empty())
                .ok_or_else(|| refuse(source, &path, &format!("hardlink to {:?} points outside", String::from_utf8_lossy(&h.link))))?;
        }
        h.path = path;
        if let Some(e) = opts.source_date_epoch {
            h.mtime = h.mtime.min(e);
        }
        w.tar.append_header(&h)?;
        if h.kind == Kind::File {
            let size = h.size;
            w.tar.copy_data(&mut tr, size).map_err(|e| about(source, Some(&h.path), e))?;
        }
        entries += 1;
    }
    if entries == 0 && tr.offset == 0 {
        return Err(io::Error::new(io::ErrorKind::InvalidData, format!("{source}: empty file, not a tar archive")));
    }
    let pending = w.finish_pending()?;
    // The check: unpacked as FROM would unpack it (the store keeps the dir for FROM).
    let dir = store.temp_dir("layer")?;
    let f = std::fs::File::open(pending.path())?;
    let stats = super::unpack(f, dir.path(), &UnpackOptions::overlay()).map_err(|e| {
        // `layer entry "x": why` -> `<tarball>: entry "x": why`
        let msg = e.to_string();
        io::Error::new(e.kind(), format!("{source}: {}", msg.strip_prefix("layer ").unwrap_or(&msg)))
    })?;
    if stats.diff_id != pending.blob.diff_id {
        return Err(io::Error::other(format!("{source}: the layer written reads back as {}, not {}", stats.diff_id, pending.blob.diff_id)));
    }
    let mut layer: LayerBlob = pending.commit(store)?;
    store.adopt_layer_dir(&layer.diff_id, dir.path())?;
    layer.entries = entries;

    let created = now_rfc3339();
    let p = opts.platform.clone().unwrap_or_else(host_platform);
    let config = ImageConfig {
        created: Some(created.clone()),
        author: None,
        architecture: p.architecture,
        os: p.os,
        variant: p.variant,
        os_version: None,
        config: opts.config.clone(),
        rootfs: RootFs { typ: "layers".into(), diff_ids: vec![layer.diff_id.clone()] },
        history: vec![History {
            created: Some(created),
            created_by: Some(created_by.to_string()),
            author: None,
            comment: opts.message.clone(),
            empty_layer: false,
        }],
    };
    let config_desc = store.put_config(&config)?;
    let manifest = Manifest::new(config_desc.clone(), vec![layer.descriptor.clone()]);
    let manifest_desc = store.put_manifest(&manifest)?;
    let name = store.tag(&name, &manifest_desc.digest)?;
    Ok(Imported { name, manifest: manifest_desc, config: config_desc, layer })
}
