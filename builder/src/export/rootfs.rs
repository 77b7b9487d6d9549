//! The flattened rootfs (`local`) and an OCI runtime bundle (`bundle`).

use crate::layer::{unpack, UnpackOptions};
use crate::store::{ctx, invalid, Image, Store};
use berth_spec::image::{runtime_spec, RuntimeOptions};
use std::fs;
use std::io;
use std::path::Path;

/// Applies the image's layers in order into `dest` (created if missing; must be empty),
/// whiteouts applied. Each layer's diff_id is checked. Returns the number of layers.
pub fn export_local(store: &Store, image: &Image, dest: &Path) -> io::Result<usize> {
    fs::create_dir_all(dest).map_err(ctx(format!("create {}", dest.display())))?;
    if fs::read_dir(dest)?.next().is_some() {
        return Err(io::Error::new(io::ErrorKind::AlreadyExists, format!("{} is not empty", dest.display())));
    }
    let ids = &image.config.rootfs.diff_ids;
    if ids.len() != image.manifest.layers.len() {
        return Err(invalid(format!("image {}: layers and diff_ids differ in number", image.digest)));
    }
    for (blob, id) in image.manifest.layers.iter().zip(ids) {
        let st = unpack(store.open_blob(&blob.digest)?, dest, &UnpackOptions::flatten()).map_err(ctx(format!("layer {}", blob.digest)))?;
        if st.diff_id != *id {
            return Err(invalid(format!("layer {}: uncompressed digest {}, the config says {id}", blob.digest, st.diff_id)));
        }
    }
    Ok(ids.len())
}

/// An OCI runtime bundle at `dest`: `rootfs/` (flattened) and `config.json` from the
/// image config (see [`berth_spec::image::runtime`]), with `root.path` = "rootfs".
pub fn export_bundle(store: &Store, image: &Image, dest: &Path, opts: &RuntimeOptions) -> io::Result<()> {
    let rootfs = dest.join("rootfs");
    export_local(store, image, &rootfs)?;
    let mut o = opts.clone();
    o.root_path = Some("rootfs".into());
    let spec = runtime_spec(&image.config, &rootfs, &o).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
    let text = serde_json::to_vec_pretty(&spec).map_err(io::Error::other)?;
    fs::write(dest.join("config.json"), text).map_err(ctx(dest.join("config.json").display()))
}
