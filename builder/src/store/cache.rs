//! Build-cache entries: what a build step produced, keyed by a digest the executor
//! computes from the step and its inputs (`cache/<key hex>` in the store).

use berth_spec::image::{ContainerConfig, Descriptor, Digest, History};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The layer a cached step made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheLayer {
    /// sha256 of the uncompressed layer tar (the config's rootfs.diff_ids entry).
    pub diff_id: Digest,
    /// The compressed blob in the store.
    pub blob: Descriptor,
}

/// One cached build step.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheEntry {
    /// The layer the step made; None for steps that change only the config (ENV, CMD..).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layer: Option<CacheLayer>,
    /// The image's execution config after the step, when the step changed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<ContainerConfig>,
    /// The history entry the step adds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history: Option<History>,
    /// Anything else the executor wants to keep with the entry.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub extra: BTreeMap<String, serde_json::Value>,
}
