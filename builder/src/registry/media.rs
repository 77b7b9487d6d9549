//! Media types and the few manifest structures the registry code reads. These are
//! parsed, never re-serialized for push: a manifest is pushed as the exact bytes given,
//! since its digest is the digest of those bytes.

use super::digest::Digest;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_MANIFEST_V1: &str = "application/vnd.docker.distribution.manifest.v1+json";
pub const DOCKER_MANIFEST_V1_SIGNED: &str = "application/vnd.docker.distribution.manifest.v1+prettyjws";

pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
/// An empty JSON object `{}`, the config of artifacts that need none (OCI 1.1).
pub const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";

/// The Accept header for manifests: all four image media types.
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
application/vnd.docker.distribution.manifest.list.v2+json, \
application/vnd.oci.image.manifest.v1+json, \
application/vnd.docker.distribution.manifest.v2+json";

/// Largest manifest accepted (as containerd).
pub const MAX_MANIFEST_SIZE: u64 = 4 << 20;

pub fn is_index(media_type: &str) -> bool {
    media_type == OCI_INDEX || media_type == DOCKER_MANIFEST_LIST
}

pub fn is_manifest(media_type: &str) -> bool {
    media_type == OCI_MANIFEST || media_type == DOCKER_MANIFEST
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub urls: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
}

impl Descriptor {
    pub fn new(media_type: &str, digest: Digest, size: u64) -> Descriptor {
        Descriptor { media_type: media_type.into(), digest, size, urls: vec![], annotations: BTreeMap::new(), platform: None, artifact_type: None }
    }

    /// A descriptor of `data` (sha256).
    pub fn of(media_type: &str, data: &[u8]) -> Descriptor {
        Descriptor::new(media_type, Digest::sha256(data), data.len() as u64)
    }
}

/// An image manifest (OCI or Docker v2 schema 2), or an OCI artifact manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    pub config: Descriptor,
    #[serde(default)]
    pub layers: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Descriptor>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// An image index (OCI) or manifest list (Docker).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    pub manifests: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Descriptor>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

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
        return Some(OCI_INDEX.into());
    }
    if p.config.is_some() {
        return Some(OCI_MANIFEST.into());
    }
    None
}

/// os/architecture[/variant], as `--platform` takes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Platform {
    pub architecture: String,
    pub os: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    #[serde(rename = "os.version", default, skip_serializing_if = "Option::is_none")]
    pub os_version: Option<String>,
    #[serde(rename = "os.features", default, skip_serializing_if = "Vec::is_empty")]
    pub os_features: Vec<String>,
}

impl Default for Platform {
    /// linux/amd64.
    fn default() -> Platform {
        Platform { architecture: "amd64".into(), os: "linux".into(), variant: None, os_version: None, os_features: vec![] }
    }
}

impl Platform {
    /// Parses `os/arch[/variant]` (or `arch` alone, meaning linux); normalizes
    /// `x86_64`→`amd64`, `aarch64`→`arm64`, and drops arm64's default variant `v8`.
    pub fn parse(s: &str) -> Result<Platform, String> {
        let parts: Vec<&str> = s.split('/').collect();
        let (os, arch, variant) = match parts.as_slice() {
            [a] => ("linux", *a, None),
            [o, a] => (*o, *a, None),
            [o, a, v] => (*o, *a, Some(*v)),
            _ => return Err(format!("invalid platform {s:?}: want os/arch[/variant]")),
        };
        if os.is_empty() || arch.is_empty() || variant == Some("") {
            return Err(format!("invalid platform {s:?}: want os/arch[/variant]"));
        }
        let mut p = Platform {
            architecture: arch.to_ascii_lowercase(),
            os: os.to_ascii_lowercase(),
            variant: variant.map(|v| v.to_ascii_lowercase()),
            ..Platform::default()
        };
        p.normalize();
        Ok(p)
    }

    /// The platform of this machine (linux and the compile-time architecture).
    pub fn host() -> Platform {
        let arch = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "x86" => "386",
            "arm" => "arm",
            "powerpc64" => "ppc64le",
            "s390x" => "s390x",
            "riscv64" => "riscv64",
            other => other,
        };
        let mut p = Platform { architecture: arch.into(), ..Platform::default() };
        if arch == "arm" {
            p.variant = Some("v7".into());
        }
        p
    }

    fn normalize(&mut self) {
        let arch = match self.architecture.as_str() {
            "x86_64" | "x86-64" => "amd64",
            "aarch64" => "arm64",
            "i386" | "i686" => "386",
            "armhf" => {
                self.variant.get_or_insert_with(|| "v7".into());
                "arm"
            }
            "armel" => {
                self.variant.get_or_insert_with(|| "v6".into());
                "arm"
            }
            other => other,
        }
        .to_string();
        self.architecture = arch;
        if self.architecture == "arm64" && self.variant.as_deref() == Some("v8") {
            self.variant = None;
        }
    }

    /// Whether an index entry's platform satisfies this (requested) one: same os and
    /// architecture; the variant must match when both name one (a missing variant
    /// on either side matches, arm64 `v8` equals none).
    pub fn matches(&self, other: &Platform) -> bool {
        let mut o = other.clone();
        o.architecture = o.architecture.to_ascii_lowercase();
        o.os = o.os.to_ascii_lowercase();
        o.normalize();
        if o.os != self.os || o.architecture != self.architecture {
            return false;
        }
        match (&self.variant, &o.variant) {
            (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
            _ => true,
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}
