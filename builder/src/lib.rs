//! berth-build: parse -> plan -> execute -> snapshot -> store/export.
#[cfg(test)]
pub(crate) mod alloc_count;
pub mod build;
pub mod cache;
pub mod cleanup;
pub mod cli;
pub mod context;
pub mod copy;
pub mod dockerfile;
pub mod error;
pub mod exec;
pub mod export;
#[cfg(test)]
mod hostile_input;
pub mod isolation;
pub mod layer;
pub mod overlay;
pub mod progress;
pub mod registry;
pub mod remote;
pub mod rootfs;
pub mod store;
pub mod working;

pub use error::{Context, Error, ErrorKind, Result};
