//! berth-spec: the OCI data formats berth reads and writes, and the one walk that
//! resolves a path inside a rootfs. No container syscalls (namespaces, mounts, cgroups)
//! live here: it reads files (bundles, a rootfs's /etc files) and nothing else.
//!
//! We keep our own serde types for the runtime config instead of the `oci-spec` crate:
//! it pulls in regex, derive_builder and getset, and every berth command is a fresh
//! process whose start-up cost matters. These types also let errors name the field.

pub mod bundle;
pub mod config;
pub mod default_config;
pub mod image;
pub mod mountinfo;
pub mod rootfs_path;
pub mod state;
pub mod time;

pub use bundle::{load_bundle, Bundle, BundleError};
pub use config::*;

/// The runtime-spec version berth implements.
pub const OCI_VERSION: &str = "1.0.2";
