//! What the registry side needs beyond berth-spec's image types and media types: the
//! manifest Accept header, the size limit, schema-1 types (refused) and media type
//! sniffing. Manifests are parsed into berth-spec's types, never re-serialized for
//! push: a manifest is pushed as the exact bytes given, since its digest is theirs.

use berth_spec::image::{MEDIA_TYPE_OCI_INDEX, MEDIA_TYPE_OCI_MANIFEST};
use serde::Deserialize;

pub const DOCKER_MANIFEST_V1: &str = "application/vnd.docker.distribution.manifest.v1+json";
pub const DOCKER_MANIFEST_V1_SIGNED: &str = "application/vnd.docker.distribution.manifest.v1+prettyjws";

/// The Accept header for manifests: all four image media types.
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
application/vnd.docker.distribution.manifest.list.v2+json, \
application/vnd.oci.image.manifest.v1+json, \
application/vnd.docker.distribution.manifest.v2+json";

/// Largest manifest accepted (as containerd).
pub const MAX_MANIFEST_SIZE: u64 = 4 << 20;

/// The media type a manifest document claims in its own `mediaType` field, with the
/// shape as a fallback (`manifests` = index, `config` = OCI manifest).
pub fn sniff_media_type(bytes: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Probe {
        #[serde(default)]
        media_type: Option<String>,
        #[serde(default)]
        schema_version: Option<u32>,
        #[serde(default)]
        manifests: Option<serde_json::Value>,
        #[serde(default)]
        config: Option<serde_json::Value>,
        #[serde(default)]
        fs_layers: Option<serde_json::Value>,
    }
    let p: Probe = serde_json::from_slice(bytes).ok()?;
    if let Some(m) = p.media_type {
        return Some(m);
    }
    if p.schema_version == Some(1) || p.fs_layers.is_some() {
        return Some(DOCKER_MANIFEST_V1.into());
    }
    if p.manifests.is_some() {
        return Some(MEDIA_TYPE_OCI_INDEX.into());
    }
    if p.config.is_some() {
        return Some(MEDIA_TYPE_OCI_MANIFEST.into());
    }
    None
}
