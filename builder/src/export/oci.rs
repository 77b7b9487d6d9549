//! OCI image layout: a directory, or the same as a tar archive.

use super::{archive_mtime, temp_beside, ExportOptions};
use crate::layer::tar::{Header, Kind, TarWriter, WriteSink};
use crate::store::{ctx, Image, Store};
use berth_spec::image::{Descriptor, Digest, Index, OciLayout, Platform, ANNOTATION_CONTAINERD_IMAGE_NAME, ANNOTATION_REF_NAME};
use std::fs;
use std::io::{self, BufWriter, Write};
use std::path::Path;

/// The manifest descriptor as an index names it: ref name, containerd name, platform.
fn index_entry(image: &Image, opts: &ExportOptions) -> Descriptor {
    let mut d = image.descriptor().with_annotation(ANNOTATION_REF_NAME, &opts.ref_name(image));
    d.annotations.extend(opts.descriptor_annotations.iter().map(|(k, v)| (k.clone(), v.clone())));
    if let Some(n) = opts.full_name(image) {
        d = d.with_annotation(ANNOTATION_CONTAINERD_IMAGE_NAME, &n);
    }
    d.platform = Some(Platform {
        architecture: image.config.architecture.clone(),
        os: image.config.os.clone(),
        variant: image.config.variant.clone(),
        ..Default::default()
    });
    d
}

/// Every blob of an image: manifest, config, layers.
fn blobs(image: &Image) -> Vec<(Digest, u64)> {
    let mut v = vec![(image.digest.clone(), image.manifest_size), (image.manifest.config.digest.clone(), image.manifest.config.size)];
    for l in &image.manifest.layers {
        if !v.iter().any(|(d, _)| *d == l.digest) {
            v.push((l.digest.clone(), l.size));
        }
    }
    v
}

fn write_atomic(path: &Path, data: &[u8]) -> io::Result<()> {
    let tmp = temp_beside(path);
    fs::write(&tmp, data).map_err(ctx(tmp.display()))?;
    fs::rename(&tmp, path).map_err(ctx(format!("rename to {}", path.display())))
}

/// Writes the image into the OCI image layout at `dest`, created if missing; an existing
/// layout keeps its other images (one with the same ref name is replaced).
pub fn export_oci_dir(store: &Store, image: &Image, dest: &Path, opts: &ExportOptions) -> io::Result<()> {
    let blob_dir = dest.join("blobs/sha256");
    fs::create_dir_all(&blob_dir).map_err(ctx(format!("create {}", blob_dir.display())))?;
    let layout = dest.join("oci-layout");
    if !layout.exists() {
        write_atomic(&layout, &serde_json::to_vec(&OciLayout::default()).map_err(io::Error::other)?)?;
    }
    for (d, size) in blobs(image) {
        let to = blob_dir.join(d.hex());
        if to.metadata().map(|m| m.len() == size).unwrap_or(false) {
            continue;
        }
        let tmp = temp_beside(&to);
        fs::copy(store.blob_path(&d), &tmp).map_err(ctx(format!("copy blob {d}")))?;
        fs::rename(&tmp, &to).map_err(ctx(format!("rename to {}", to.display())))?;
    }
    let index_path = dest.join("index.json");
    let mut index: Index = match fs::read(&index_path) {
        Ok(b) => serde_json::from_slice(&b).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("{}: {e}", index_path.display())))?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => Index::default(),
        Err(e) => return Err(ctx(index_path.display())(e)),
    };
    let entry = index_entry(image, opts);
    let rn = entry.annotations.get(ANNOTATION_REF_NAME).cloned();
    index.manifests.retain(|m| m.annotations.get(ANNOTATION_REF_NAME) != rn.as_ref());
    index.manifests.push(entry);
    index.annotations.extend(opts.index_annotations.iter().map(|(k, v)| (k.clone(), v.clone())));
    write_atomic(&index_path, &serde_json::to_vec_pretty(&index).map_err(io::Error::other)?)
}

/// The OCI image layout of the image as a tar file at `dest`.
pub fn export_oci_archive(store: &Store, image: &Image, dest: &Path, opts: &ExportOptions) -> io::Result<()> {
    let tmp = temp_beside(dest);
    let r = (|| -> io::Result<()> {
        let f = fs::File::create(&tmp).map_err(ctx(tmp.display()))?;
        let mut tw = TarWriter::new(WriteSink(BufWriter::with_capacity(1 << 20, f)), 1 << 20);
        let mtime = archive_mtime(image);
        let file = |path: &str, size: u64| Header { kind: Kind::File, path: path.as_bytes().to_vec(), mode: 0o644, size, mtime, ..Default::default() };
        let dir = |path: &str| Header { kind: Kind::Dir, path: path.as_bytes().to_vec(), mode: 0o755, mtime, ..Default::default() };

        let layout = serde_json::to_vec(&OciLayout::default()).map_err(io::Error::other)?;
        tw.append_header(&file("oci-layout", layout.len() as u64))?;
        tw.append_data(&layout)?;
        let mut index = Index::new(vec![index_entry(image, opts)]);
        index.annotations.extend(opts.index_annotations.iter().map(|(k, v)| (k.clone(), v.clone())));
        let index = serde_json::to_vec_pretty(&index).map_err(io::Error::other)?;
        tw.append_header(&file("index.json", index.len() as u64))?;
        tw.append_data(&index)?;
        tw.append_header(&dir("blobs"))?;
        tw.append_header(&dir("blobs/sha256"))?;
        for (d, _) in blobs(image) {
            let mut f = store.open_blob(&d)?;
            let size = f.metadata()?.len();
            tw.append_header(&file(&format!("blobs/sha256/{}", d.hex()), size))?;
            tw.copy_data(&mut f, size)?;
        }
        let (WriteSink(mut w), _) = tw.finish()?;
        w.flush()?;
        w.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        Ok(())
    })();
    if let Err(e) = r {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    fs::rename(&tmp, dest).map_err(ctx(format!("rename to {}", dest.display())))
}
