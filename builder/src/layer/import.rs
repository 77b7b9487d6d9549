//! `import TARBALL`: a rootfs tarball (plain, gzip or zstd) becomes a one-layer image, as
//! `docker import` makes one. The tarball is read entry by entry and written again as a
//! canonical layer (paths cleaned: no `./` or leading `/`, the root entry dropped;
//! entries with `..` refused), so the layer is what any runtime unpacks the same way.

use super::pipeline::{LayerBlob, LayerWriter};
use super::tar::{clean_path, Kind, TarReader};
use super::Compression;
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
    import_reader(store, f, name, opts, &format!("berth-build import {}", path.display()))
}

/// Imports a tarball read from `r`; `created_by` goes into the history entry.
pub fn import_reader<R: Read + Send>(store: &Store, r: R, name: &str, opts: &ImportOptions, created_by: &str) -> io::Result<Imported> {
    let name = crate::store::normalize_name(name)?;
    let _lease = store.lease()?;
    let plain = super::compress::decompress(r)?;
    let mut tr = TarReader::new(plain);
    let mut w = LayerWriter::new(store, opts.compression)?;
    let mut entries = 0u64;
    while let Some(mut h) = tr.next_entry()? {
        let path = clean_path(&h.path).ok_or_else(|| {
            io::Error::new(io::ErrorKind::PermissionDenied, format!("tarball entry {:?} has a '..' component", String::from_utf8_lossy(&h.path)))
        })?;
        if path.is_empty() {
            continue;
        }
        h.path = path;
        if h.kind == Kind::Hardlink {
            h.link = clean_path(&h.link).filter(|l| !l.is_empty()).ok_or_else(|| {
                io::Error::new(io::ErrorKind::PermissionDenied, format!("tarball hardlink {:?} points outside", String::from_utf8_lossy(&h.path)))
            })?;
        }
        if let Some(e) = opts.source_date_epoch {
            h.mtime = h.mtime.min(e);
        }
        w.tar.append_header(&h)?;
        if h.kind == Kind::File {
            let size = h.size;
            w.tar.copy_data(&mut tr, size)?;
        }
        entries += 1;
    }
    let mut layer = w.finish(store)?;
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
