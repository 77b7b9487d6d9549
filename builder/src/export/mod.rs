//! Outputs of an image in the store:
//!
//! | format | what | read by |
//! | --- | --- | --- |
//! | `oci` | an OCI image layout dir (`oci-layout`, `index.json`, `blobs/sha256/`); the manifest is named in index.json by `org.opencontainers.image.ref.name` = the tag (and `io.containerd.image.name` = the full name); an existing layout gets the image added (same ref name replaced) | `skopeo ... oci:DIR:TAG`, `umoci --image DIR:TAG`, `podman pull oci:DIR:TAG` |
//! | `oci-archive` | that layout as one tar file | `skopeo ... oci-archive:FILE`, `ctr import`, `podman load` |
//! | `docker-archive` | `docker save` format: `manifest.json` [{Config, RepoTags, Layers}], the config as `<hex>.json`, layers as `<diffid hex>/layer.tar` (uncompressed, default) or the compressed blobs (`docker_compressed`), `repositories` | `docker load`, `podman load`, `skopeo ... docker-archive:FILE` |
//! | `local` | the flattened rootfs (layers applied in order, whiteouts applied) | anything |
//! | `bundle` | an OCI runtime bundle: `rootfs/` + `config.json` from the image config | `berth run`, `runc run` |
//! | `tar` | the flattened rootfs as one tar file | `tar`, `docker import` |
//! | `docker-dir` | the docker-archive's files in a directory (buildx's `type=docker,tar=false`) | anything |
//!
//! Archives are written to a temp file beside the destination and renamed into place.

mod docker;
mod oci;
mod rootfs;
mod tarout;

pub use docker::export_docker_archive;
pub use oci::{export_oci_archive, export_oci_dir};
pub use rootfs::{export_bundle, export_local};
pub use tarout::{export_docker_dir, export_rootfs_tar};

use crate::store::{Image, Store};
use berth_spec::image::RuntimeOptions;
use std::io;
use std::path::Path;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    Oci,
    OciArchive,
    DockerArchive,
    Local,
    Bundle,
    /// The flattened rootfs as a tar file.
    Tar,
    /// A docker-archive unpacked into a directory.
    DockerDir,
}

impl FromStr for ExportFormat {
    type Err = crate::Error;
    fn from_str(s: &str) -> crate::Result<ExportFormat> {
        Ok(match s {
            "oci" => ExportFormat::Oci,
            "oci-archive" => ExportFormat::OciArchive,
            "docker-archive" | "docker" => ExportFormat::DockerArchive,
            "local" => ExportFormat::Local,
            "bundle" => ExportFormat::Bundle,
            _ => return Err(format!("output type {s:?}: want oci, oci-archive, docker-archive, local or bundle").into()),
        })
    }
}

#[derive(Debug, Clone, Default)]
pub struct ExportOptions {
    /// The full name (`name:tag`) the image is exported under; default: the name it was
    /// resolved by. Gives the OCI ref name (its tag) and the docker RepoTags.
    pub name: Option<String>,
    /// OCI layouts: the `org.opencontainers.image.ref.name` value; default: the tag.
    pub ref_name: Option<String>,
    /// docker-archive: keep layers compressed as stored (docker and podman load both);
    /// default: uncompressed `layer.tar`, as `docker save` writes.
    pub docker_compressed: bool,
    /// bundle: overrides for the runtime config (`root_path` is always "rootfs").
    pub runtime: RuntimeOptions,
    /// OCI layouts: annotations of the manifest's entry in index.json (buildx's
    /// `manifest-descriptor:`), and of index.json itself (`index:`).
    pub descriptor_annotations: std::collections::BTreeMap<String, String>,
    pub index_annotations: std::collections::BTreeMap<String, String>,
}

impl ExportOptions {
    /// The full name to write, if any.
    fn full_name(&self, image: &Image) -> Option<String> {
        self.name.as_deref().and_then(|n| crate::store::normalize_name(n).ok()).or_else(|| image.name.clone())
    }

    /// The OCI ref name: given, else the tag of the name, else "latest".
    fn ref_name(&self, image: &Image) -> String {
        if let Some(r) = &self.ref_name {
            return r.clone();
        }
        self.full_name(image).and_then(|n| crate::store::names::split_name(&n).ok().map(|(_, t)| t)).unwrap_or_else(|| "latest".to_string())
    }
}

/// Exports the image `name` (anything [`Store::resolve`] takes) in `format` to `dest`.
pub fn export(store: &Store, name: &str, format: ExportFormat, dest: &Path, opts: &ExportOptions) -> io::Result<()> {
    let _lease = store.lease()?;
    let image = store.inspect(name)?;
    match format {
        ExportFormat::Oci => export_oci_dir(store, &image, dest, opts),
        ExportFormat::OciArchive => export_oci_archive(store, &image, dest, opts),
        ExportFormat::DockerArchive => export_docker_archive(store, &image, dest, opts),
        ExportFormat::Local => export_local(store, &image, dest).map(drop),
        ExportFormat::Bundle => export_bundle(store, &image, dest, &opts.runtime),
        ExportFormat::Tar => export_rootfs_tar(store, &image, dest),
        ExportFormat::DockerDir => export_docker_dir(store, &image, dest, opts),
    }
}

/// A temp path beside `dest` for an atomic replace (random: every build is PID 1 of its
/// own namespace, so a pid would not tell two of them apart).
fn temp_beside(dest: &Path) -> std::path::PathBuf {
    let name = dest.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "out".into());
    let tag = crate::store::unique_name("tmp").unwrap_or_else(|_| format!("tmp-{}", std::process::id()));
    dest.with_file_name(format!(".{name}.{tag}"))
}

/// mtime for archive entries: the image's creation time (reproducible), else 0.
fn archive_mtime(image: &Image) -> i64 {
    image.config.created.as_deref().and_then(berth_spec::image::parse_rfc3339).unwrap_or(0).max(0)
}

#[cfg(test)]
mod tests;
