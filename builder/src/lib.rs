//! berth-build: parse -> plan -> execute -> snapshot -> store/export.
pub mod context;
pub mod dockerfile;
pub mod registry;
pub mod remote;
pub mod export;
pub mod layer;
pub mod store;
pub mod build;
pub mod cache;
pub mod cleanup;
pub mod cli;
pub mod copy;
pub mod exec;
pub mod overlay;
pub mod progress;
pub mod rootfs;
