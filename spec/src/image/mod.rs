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

pub use digest::{Digest, DigestError};
pub use runtime::{
    lexical_join, resolve_user, runtime_spec, ExecUser, ImageError, NetworkMode, RuntimeOptions, DEFAULT_PATH,
    DOCKER_DEFAULT_CAPS,
};
pub use crate::rootfs_path::read_in_rootfs;
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
        MEDIA_TYPE_OCI_LAYER_GZIP | MEDIA_TYPE_DOCKER_LAYER_GZIP | MEDIA_TYPE_DOCKER_FOREIGN_LAYER => {
            Some(LayerCompression::Gzip)
        }
        MEDIA_TYPE_OCI_LAYER_ZSTD | MEDIA_TYPE_DOCKER_LAYER_ZSTD => Some(LayerCompression::Zstd),
        // The non-distributable OCI types (deprecated) carry the same suffixes.
        m if m.starts_with("application/vnd.oci.image.layer.nondistributable.v1.tar") => {
            Some(if m.ends_with("+gzip") {
                LayerCompression::Gzip
            } else if m.ends_with("+zstd") {
                LayerCompression::Zstd
            } else {
                LayerCompression::None
            })
        }
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
    Platform {
        architecture: arch.to_string(),
        os: "linux".to_string(),
        os_version: None,
        os_features: Vec::new(),
        variant: variant.map(str::to_string),
    }
}

/// Days since 1970-01-01 -> (year, month, day), proleptic Gregorian (H. Hinnant's method).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Unix seconds -> RFC 3339 in UTC, whole seconds: `2024-01-02T03:04:05Z`.
pub fn rfc3339(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, mo, d) = civil_from_days(days);
    format!("{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem / 60 % 60, rem % 60)
}

/// RFC 3339 (`2024-01-02T03:04:05.123Z`, `...+02:00`) -> unix seconds (fraction dropped).
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let t = s.get(r)?;
        if t.bytes().all(|c| c.is_ascii_digit()) {
            t.parse().ok()
        } else {
            None
        }
    };
    let (y, mo, d, h, mi, se) = (num(0..4)?, num(5..7)?, num(8..10)?, num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    let mut i = 19;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return None;
        }
    }
    let offset = match b.get(i)? {
        b'Z' | b'z' if i + 1 == b.len() => 0,
        c @ (b'+' | b'-') if i + 6 == b.len() && b[i + 3] == b':' => {
            let off = num(i + 1..i + 3)? * 3600 + num(i + 4..i + 6)? * 60;
            if *c == b'+' {
                off
            } else {
                -off
            }
        }
        _ => return None,
    };
    Some(days_from_civil(y, mo as u32, d as u32) * 86_400 + h * 3600 + mi * 60 + se - offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_704_164_645), "2024-01-02T03:04:05Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        for t in [0, 1, 59, 86_399, 86_400, 951_782_400, 1_704_164_645, 4_102_444_800, -1] {
            assert_eq!(parse_rfc3339(&rfc3339(t)), Some(t), "{t}");
        }
        assert_eq!(parse_rfc3339("2024-01-02T03:04:05.123456789Z"), Some(1_704_164_645));
        assert_eq!(parse_rfc3339("2024-01-02T05:04:05+02:00"), Some(1_704_164_645));
        assert_eq!(parse_rfc3339("2024-01-02"), None);
        assert_eq!(parse_rfc3339("2024-13-02T03:04:05Z"), None);
        assert_eq!(parse_rfc3339("2024-01-02T03:04:05"), None);
    }

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
