//! `docker save` format, as `docker load` and `podman load` read it.

use super::{archive_mtime, temp_beside, ExportOptions};
use crate::layer::compress::decompress;
use crate::layer::tar::{Header, Kind, TarWriter, WriteSink};
use crate::store::hash::HashReader;
use crate::store::{ctx, invalid, Image, Store};
use berth_spec::image::{layer_compression, LayerCompression};
use serde_json::json;
use std::collections::BTreeMap;
use std::fs;
use std::io::{self, BufWriter, Write};
use std::path::Path;

/// Writes the image as a docker-archive tar at `dest`.
pub fn export_docker_archive(store: &Store, image: &Image, dest: &Path, opts: &ExportOptions) -> io::Result<()> {
    let tmp = temp_beside(dest);
    let r = write(store, image, &tmp, opts);
    if let Err(e) = r {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    fs::rename(&tmp, dest).map_err(ctx(format!("rename to {}", dest.display())))
}

fn write(store: &Store, image: &Image, path: &Path, opts: &ExportOptions) -> io::Result<()> {
    let diff_ids = &image.config.rootfs.diff_ids;
    if diff_ids.len() != image.manifest.layers.len() {
        return Err(invalid(format!("image {}: layers and diff_ids differ in number", image.digest)));
    }
    let f = fs::File::create(path).map_err(ctx(path.display()))?;
    let mut tw = TarWriter::new(WriteSink(BufWriter::with_capacity(1 << 20, f)), 1 << 20);
    let mtime = archive_mtime(image);
    let file = |path: &str, size: u64| Header { kind: Kind::File, path: path.as_bytes().to_vec(), mode: 0o644, size, mtime, ..Default::default() };
    let dir = |path: &str| Header { kind: Kind::Dir, path: path.as_bytes().to_vec(), mode: 0o755, mtime, ..Default::default() };

    let mut layer_paths: Vec<String> = Vec::new();
    let mut written: Vec<String> = Vec::new();
    for (blob, diff_id) in image.manifest.layers.iter().zip(diff_ids) {
        let kind = layer_compression(&blob.media_type).unwrap_or(LayerCompression::Gzip);
        let name = if opts.docker_compressed {
            let ext = match kind {
                LayerCompression::None => "tar",
                LayerCompression::Gzip => "tar.gz",
                LayerCompression::Zstd => "tar.zst",
            };
            format!("{}.{ext}", blob.digest.hex())
        } else {
            format!("{}/layer.tar", diff_id.hex())
        };
        if !written.contains(&name) {
            if opts.docker_compressed {
                let mut f = store.open_blob(&blob.digest)?;
                let size = f.metadata()?.len();
                tw.append_header(&file(&name, size))?;
                tw.copy_data(&mut f, size)?;
            } else {
                // First pass: the uncompressed size (and a check of the diff_id), then the
                // content: a tar header needs the size before the data.
                let mut hr = HashReader::new(decompress(store.open_blob(&blob.digest)?)?);
                io::copy(&mut hr, &mut io::sink())?;
                let (_, got, size) = hr.finish();
                if got != *diff_id {
                    return Err(invalid(format!("layer {}: uncompressed digest {got}, the config says {diff_id}", blob.digest)));
                }
                tw.append_header(&dir(diff_id.hex()))?;
                tw.append_header(&file(&name, size))?;
                let mut r = decompress(store.open_blob(&blob.digest)?)?;
                tw.copy_data(&mut r, size)?;
            }
            written.push(name.clone());
        }
        layer_paths.push(name);
    }

    let config_name = format!("{}.json", image.manifest.config.digest.hex());
    let config = store.read_blob(&image.manifest.config.digest)?;
    tw.append_header(&file(&config_name, config.len() as u64))?;
    tw.append_data(&config)?;

    let full = opts.full_name(image);
    let repo_tags: Vec<String> = full.iter().cloned().collect();
    let manifest = json!([{"Config": config_name, "RepoTags": repo_tags, "Layers": layer_paths}]);
    let manifest = serde_json::to_vec(&manifest).map_err(io::Error::other)?;
    tw.append_header(&file("manifest.json", manifest.len() as u64))?;
    tw.append_data(&manifest)?;

    // The legacy `repositories` file names the top layer's directory.
    if let (Some(n), false, Some(top)) = (&full, opts.docker_compressed, diff_ids.last()) {
        let (repo, tag) = crate::store::names::split_name(n)?;
        let mut tags = BTreeMap::new();
        tags.insert(tag, top.hex().to_string());
        let mut repos = BTreeMap::new();
        repos.insert(repo, tags);
        let text = serde_json::to_vec(&repos).map_err(io::Error::other)?;
        tw.append_header(&file("repositories", text.len() as u64))?;
        tw.append_data(&text)?;
    }
    let (WriteSink(mut w), _) = tw.finish()?;
    w.flush()?;
    w.into_inner().map_err(|e| e.into_error())?.sync_all()
}
