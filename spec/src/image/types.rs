//! The OCI image-spec documents (v1.1): descriptors, manifests, indexes, the image layout
//! files and the image config, with the Docker extensions berth-build writes and reads
//! (`Shell`, `OnBuild`, `Healthcheck`, `ArgsEscaped`). Field names follow the spec; unknown
//! fields are ignored when reading.

use super::digest::Digest;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A reference to content: what it is, its digest and its size.
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
        Descriptor { media_type: media_type.to_string(), digest, size, urls: Vec::new(), annotations: BTreeMap::new(), platform: None, artifact_type: None }
    }

    /// A descriptor of `data` (sha256).
    pub fn of(media_type: &str, data: &[u8]) -> Descriptor {
        Descriptor::new(media_type, Digest::sha256(data), data.len() as u64)
    }

    /// The same descriptor with one annotation set.
    pub fn with_annotation(mut self, key: &str, value: &str) -> Descriptor {
        self.annotations.insert(key.to_string(), value.to_string());
        self
    }
}

/// An image's platform; also os/architecture[/variant] as `--platform` takes it.
/// Field order is the image-spec's (and containerd's), which written indexes keep.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Platform {
    pub architecture: String,
    pub os: String,
    #[serde(default, rename = "os.version", skip_serializing_if = "Option::is_none")]
    pub os_version: Option<String>,
    #[serde(default, rename = "os.features", skip_serializing_if = "Vec::is_empty")]
    pub os_features: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

impl Platform {
    /// `os/architecture` with no variant.
    pub fn new(os: &str, architecture: &str) -> Platform {
        Platform { architecture: architecture.to_string(), os: os.to_string(), ..Platform::default() }
    }

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
        let mut p = Platform::new(&os.to_ascii_lowercase(), &arch.to_ascii_lowercase());
        p.variant = variant.map(|v| v.to_ascii_lowercase());
        p.normalize();
        Ok(p)
    }

    /// The platform of this machine as a pull requests it: [`super::host_platform`]
    /// normalized (arm64 without its default `v8`), so it compares with parsed ones.
    pub fn host() -> Platform {
        let mut p = super::host_platform();
        p.normalize();
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

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// An image manifest (OCI, or Docker v2 schema 2: the same shape).
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

impl Manifest {
    /// An OCI image manifest with these config and layers.
    pub fn new(config: Descriptor, layers: Vec<Descriptor>) -> Manifest {
        Manifest {
            schema_version: 2,
            media_type: Some(super::MEDIA_TYPE_OCI_MANIFEST.to_string()),
            artifact_type: None,
            config,
            layers,
            subject: None,
            annotations: BTreeMap::new(),
        }
    }
}

/// An image index (OCI), or a Docker manifest list; also the `index.json` of an image layout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    #[serde(default)]
    pub manifests: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Descriptor>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

impl Index {
    pub fn new(manifests: Vec<Descriptor>) -> Index {
        Index {
            schema_version: 2,
            media_type: Some(super::MEDIA_TYPE_OCI_INDEX.to_string()),
            artifact_type: None,
            manifests,
            subject: None,
            annotations: BTreeMap::new(),
        }
    }
}

impl Default for Index {
    fn default() -> Index {
        Index::new(Vec::new())
    }
}

/// The `oci-layout` file at the root of an image layout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OciLayout {
    #[serde(rename = "imageLayoutVersion")]
    pub image_layout_version: String,
}

impl Default for OciLayout {
    fn default() -> OciLayout {
        OciLayout { image_layout_version: super::IMAGE_LAYOUT_VERSION.to_string() }
    }
}

/// The image configuration (`application/vnd.oci.image.config.v1+json`, which Docker's
/// `application/vnd.docker.container.image.v1+json` matches field for field).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageConfig {
    /// RFC 3339 creation time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    /// GOARCH words: amd64, arm64, ...
    pub architecture: String,
    pub os: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    #[serde(default, rename = "os.version", skip_serializing_if = "Option::is_none")]
    pub os_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<ContainerConfig>,
    pub rootfs: RootFs,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<History>,
}

impl ImageConfig {
    /// The execution parameters, or empty ones.
    pub fn container_config(&self) -> ContainerConfig {
        self.config.clone().unwrap_or_default()
    }
}

/// An empty JSON object: the value type of `ExposedPorts` and `Volumes` (`{"80/tcp": {}}`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Empty {}

/// The execution parameters of an image (`config` in the image config).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty", deserialize_with = "null_default")]
    pub exposed_ports: BTreeMap<String, Empty>,
    #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "null_default")]
    pub env: Vec<String>,
    /// `None` (no ENTRYPOINT) differs from `Some([])` (`ENTRYPOINT []`) as in Docker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmd: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty", deserialize_with = "null_default")]
    pub volumes: BTreeMap<String, Empty>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty", deserialize_with = "null_default")]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    /// Windows images' escaped command line; kept so it round-trips.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub args_escaped: bool,
    /// Docker extension.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<HealthConfig>,
    /// Docker extension: the shell of shell-form RUN/CMD/ENTRYPOINT (`SHELL`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shell: Option<Vec<String>>,
    /// Docker extension: `ONBUILD` triggers, run by builds that use this image as a base.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_build: Option<Vec<String>>,
}

/// Docker's `Healthcheck`. Durations are nanoseconds; 0 means "inherit / default".
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HealthConfig {
    /// `["NONE"]`, `["CMD", args...]` or `["CMD-SHELL", command]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "null_default")]
    pub test: Vec<String>,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub interval: i64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub timeout: i64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub start_period: i64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub start_interval: i64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub retries: i64,
}

fn is_zero(v: &i64) -> bool {
    *v == 0
}

/// Docker writes `null` for empty maps and lists; read it as empty.
fn null_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RootFs {
    /// Always "layers".
    #[serde(rename = "type")]
    pub typ: String,
    /// The digests of the uncompressed layer tars, bottom first.
    #[serde(default, deserialize_with = "null_default")]
    pub diff_ids: Vec<Digest>,
}

impl Default for RootFs {
    fn default() -> RootFs {
        RootFs { typ: "layers".to_string(), diff_ids: Vec::new() }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct History {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// The step made no layer (ENV, CMD, ...).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub empty_layer: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    const E: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn docker_config_reads() {
        // As `docker inspect` shows a config blob, with Docker's nulls and extra fields.
        let text = format!(
            r#"{{"architecture":"amd64","os":"linux","created":"2024-01-02T03:04:05.123456789Z",
            "config":{{"Hostname":"","User":"app:app","Env":["PATH=/bin"],"Cmd":["sh"],"Entrypoint":null,
              "ExposedPorts":{{"80/tcp":{{}}}},"Volumes":null,"WorkingDir":"/w","Labels":null,
              "OnBuild":null,"Shell":["/bin/bash","-c"],"StopSignal":"SIGQUIT",
              "Healthcheck":{{"Test":["CMD-SHELL","true"],"Interval":30000000000,"Retries":3}}}},
            "container_config":{{}},"docker_version":"24",
            "rootfs":{{"type":"layers","diff_ids":["{E}"]}},
            "history":[{{"created":"2024-01-02T03:04:05Z","created_by":"/bin/sh -c #(nop) CMD [\"sh\"]","empty_layer":true}}]}}"#
        );
        let c: ImageConfig = serde_json::from_str(&text).unwrap();
        let cc = c.config.as_ref().unwrap();
        assert_eq!(cc.user.as_deref(), Some("app:app"));
        assert_eq!(cc.entrypoint, None);
        assert_eq!(cc.cmd, Some(vec!["sh".to_string()]));
        assert!(cc.exposed_ports.contains_key("80/tcp"));
        assert_eq!(cc.shell.as_ref().unwrap()[0], "/bin/bash");
        assert_eq!(cc.healthcheck.as_ref().unwrap().retries, 3);
        assert_eq!(c.rootfs.diff_ids[0].as_str(), E);
        assert!(c.history[0].empty_layer);
        // Written back: spec names, empty things left out, ExposedPorts as {"80/tcp":{}}.
        let v = serde_json::to_value(&c).unwrap();
        assert_eq!(v["config"]["ExposedPorts"], serde_json::json!({"80/tcp": {}}));
        assert!(v["config"].get("Volumes").is_none());
        assert!(v["config"].get("Entrypoint").is_none());
        assert_eq!(v["config"]["Healthcheck"], serde_json::json!({"Test":["CMD-SHELL","true"],"Interval":30000000000i64,"Retries":3}));
        assert_eq!(v["rootfs"]["type"], "layers");
        assert_eq!(v["history"][0]["empty_layer"], true);
    }

    // Image digests are digests of these bytes: field order and the omission of empty
    // fields are part of the format berth-build writes, and must not drift.
    #[test]
    fn image_documents_serialize_byte_for_byte() {
        let d = |n: u64| Descriptor::new(super::super::MEDIA_TYPE_OCI_LAYER_GZIP, E.parse().unwrap(), n);
        let m = Manifest::new(Descriptor::new(super::super::MEDIA_TYPE_OCI_CONFIG, E.parse().unwrap(), 2), vec![d(3)]);
        assert_eq!(
            serde_json::to_string(&m).unwrap(),
            format!(
                r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{E}","size":2}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"{E}","size":3}}]}}"#
            )
        );
        let mut p = Platform::parse("linux/arm/v7").unwrap();
        p.os_version = Some("1".into());
        let i = Index::new(vec![Descriptor { platform: Some(p), ..d(4) }.with_annotation("k", "v")]);
        assert_eq!(
            serde_json::to_string(&i).unwrap(),
            format!(
                r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"{E}","size":4,"annotations":{{"k":"v"}},"platform":{{"architecture":"arm","os":"linux","os.version":"1","variant":"v7"}}}}]}}"#
            )
        );
        let c = ImageConfig {
            created: Some("2024-01-02T03:04:05Z".into()),
            architecture: "amd64".into(),
            os: "linux".into(),
            config: Some(ContainerConfig { env: vec!["PATH=/bin".into()], cmd: Some(vec!["sh".into()]), working_dir: Some("/w".into()), ..Default::default() }),
            rootfs: RootFs { typ: "layers".into(), diff_ids: vec![E.parse().unwrap()] },
            history: vec![History { created_by: Some("RUN true".into()), empty_layer: true, ..Default::default() }],
            ..Default::default()
        };
        assert_eq!(
            serde_json::to_string(&c).unwrap(),
            format!(
                r#"{{"created":"2024-01-02T03:04:05Z","architecture":"amd64","os":"linux","config":{{"Env":["PATH=/bin"],"Cmd":["sh"],"WorkingDir":"/w"}},"rootfs":{{"type":"layers","diff_ids":["{E}"]}},"history":[{{"created_by":"RUN true","empty_layer":true}}]}}"#
            )
        );
    }

    #[test]
    fn manifest_and_index_round_trip() {
        let d = Descriptor::new(super::super::MEDIA_TYPE_OCI_CONFIG, E.parse().unwrap(), 2);
        let m = Manifest::new(d.clone(), vec![d.clone().with_annotation("a", "b")]);
        let v = serde_json::to_value(&m).unwrap();
        assert_eq!(v["schemaVersion"], 2);
        assert_eq!(v["mediaType"], super::super::MEDIA_TYPE_OCI_MANIFEST);
        assert_eq!(v["config"]["mediaType"], super::super::MEDIA_TYPE_OCI_CONFIG);
        assert!(v["config"].get("annotations").is_none());
        assert_eq!(v["layers"][0]["annotations"]["a"], "b");
        let back: Manifest = serde_json::from_value(v).unwrap();
        assert_eq!(back, m);
        let i = Index::new(vec![d]);
        let v = serde_json::to_value(&i).unwrap();
        assert_eq!(v["manifests"][0]["size"], 2);
        assert_eq!(serde_json::to_string(&OciLayout::default()).unwrap(), r#"{"imageLayoutVersion":"1.0.0"}"#);
        // A descriptor whose digest is a path trick is refused.
        let bad = r#"{"mediaType":"x","digest":"sha256:../../etc","size":1}"#;
        assert!(serde_json::from_str::<Descriptor>(bad).is_err());
    }
}
