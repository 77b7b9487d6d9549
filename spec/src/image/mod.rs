//! OCI image formats (image-spec v1.1) and the image config -> runtime config conversion.
//! Shared by berth-build (which writes images) and the runtime side; no syscalls here.
//!
//! - [`Digest`]: `sha256:<64 hex>`, validated everywhere it comes in.
//! - [`Descriptor`], [`Manifest`], [`Index`], [`OciLayout`], [`ImageConfig`] and friends:
//!   serde types with the spec's field names.
//! - [`runtime_spec`]: an image config + a rootfs + overrides -> a runtime [`crate::Spec`],
//!   as umoci and containerd convert them.
//! - [`rfc3339`], [`parse_rfc3339`], [`host_platform`]: small helpers the formats need.

pub mod digest;
pub mod runtime;
pub mod types;

pub use crate::rootfs_path::read_in_rootfs;
pub use crate::time::{parse_rfc3339, rfc3339};
pub use digest::{Digest, DigestError};
pub use runtime::{lexical_join, resolve_user, runtime_spec, ExecUser, ImageError, NetworkMode, RuntimeOptions, DEFAULT_PATH, DOCKER_DEFAULT_CAPS};
pub use types::*;

pub const MEDIA_TYPE_OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const MEDIA_TYPE_OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const MEDIA_TYPE_OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const MEDIA_TYPE_OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
pub const MEDIA_TYPE_OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const MEDIA_TYPE_OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
pub const MEDIA_TYPE_OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";

pub const MEDIA_TYPE_DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const MEDIA_TYPE_DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const MEDIA_TYPE_DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const MEDIA_TYPE_DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar";
pub const MEDIA_TYPE_DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
pub const MEDIA_TYPE_DOCKER_LAYER_ZSTD: &str = "application/vnd.docker.image.rootfs.diff.tar.zstd";
pub const MEDIA_TYPE_DOCKER_FOREIGN_LAYER: &str = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";

/// The `imageLayoutVersion` of the `oci-layout` file.
pub const IMAGE_LAYOUT_VERSION: &str = "1.0.0";

/// Annotation naming a manifest in an image layout's index.json (`skopeo ... oci:DIR:NAME`).
pub const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";
/// Annotation containerd's importer reads for the full image name.
pub const ANNOTATION_CONTAINERD_IMAGE_NAME: &str = "io.containerd.image.name";
pub const ANNOTATION_CREATED: &str = "org.opencontainers.image.created";

/// How a layer media type says its blob is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerCompression {
    None,
    Gzip,
    Zstd,
}

/// The compression of a layer media type, or None if it is not a layer type we know.
pub fn layer_compression(media_type: &str) -> Option<LayerCompression> {
    match media_type {
        MEDIA_TYPE_OCI_LAYER | MEDIA_TYPE_DOCKER_LAYER => Some(LayerCompression::None),
        MEDIA_TYPE_OCI_LAYER_GZIP | MEDIA_TYPE_DOCKER_LAYER_GZIP | MEDIA_TYPE_DOCKER_FOREIGN_LAYER => Some(LayerCompression::Gzip),
        MEDIA_TYPE_OCI_LAYER_ZSTD | MEDIA_TYPE_DOCKER_LAYER_ZSTD => Some(LayerCompression::Zstd),
        // The non-distributable OCI types (deprecated) carry the same suffixes.
        m if m.starts_with("application/vnd.oci.image.layer.nondistributable.v1.tar") => Some(if m.ends_with("+gzip") {
            LayerCompression::Gzip
        } else if m.ends_with("+zstd") {
            LayerCompression::Zstd
        } else {
            LayerCompression::None
        }),
        _ => None,
    }
}

/// Whether a media type is an image manifest (OCI or Docker schema 2).
pub fn is_manifest(media_type: &str) -> bool {
    media_type == MEDIA_TYPE_OCI_MANIFEST || media_type == MEDIA_TYPE_DOCKER_MANIFEST
}

/// Whether a media type is an index (OCI) or a manifest list (Docker).
pub fn is_index(media_type: &str) -> bool {
    media_type == MEDIA_TYPE_OCI_INDEX || media_type == MEDIA_TYPE_DOCKER_MANIFEST_LIST
}

/// The image-spec platform of this build of berth: GOARCH words (amd64, arm64, ...) and
/// the variant where one is customary (arm64 -> v8, arm -> v7).
pub fn host_platform() -> Platform {
    let (arch, variant) = match std::env::consts::ARCH {
        "x86_64" => ("amd64", None),
        "x86" => ("386", None),
        "aarch64" => ("arm64", Some("v8")),
        "arm" => ("arm", Some("v7")),
        "powerpc64" if cfg!(target_endian = "little") => ("ppc64le", None),
        "powerpc64" => ("ppc64", None),
        "s390x" => ("s390x", None),
        "riscv64" => ("riscv64", None),
        "mips64" if cfg!(target_endian = "little") => ("mips64le", None),
        "loongarch64" => ("loong64", None),
        other => (other, None),
    };
    Platform { architecture: arch.to_string(), os: "linux".to_string(), os_version: None, os_features: Vec::new(), variant: variant.map(str::to_string) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compression_of_media_types() {
        assert_eq!(layer_compression(MEDIA_TYPE_OCI_LAYER_GZIP), Some(LayerCompression::Gzip));
        assert_eq!(layer_compression(MEDIA_TYPE_DOCKER_LAYER_GZIP), Some(LayerCompression::Gzip));
        assert_eq!(layer_compression(MEDIA_TYPE_OCI_LAYER_ZSTD), Some(LayerCompression::Zstd));
        assert_eq!(layer_compression(MEDIA_TYPE_OCI_LAYER), Some(LayerCompression::None));
        assert_eq!(layer_compression(MEDIA_TYPE_OCI_CONFIG), None);
        assert!(is_manifest(MEDIA_TYPE_DOCKER_MANIFEST) && is_index(MEDIA_TYPE_OCI_INDEX));
        assert_eq!(host_platform().os, "linux");
    }
}
