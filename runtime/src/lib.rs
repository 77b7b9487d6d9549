//! berth: a low-level OCI runtime with runc's command line.
//!
//! Reading order for `berth create`: `cli/mod.rs` (dispatch) -> `cli/create.rs` ->
//! `spawn.rs` (clone into namespaces, the parent's half of the setup) -> `init.rs`
//! (the container's half, in the new namespaces) -> `linux/exec.rs` (`execve`).

pub mod cli;
pub mod container;
pub mod error;
pub mod hooks;
pub mod init;
pub mod linux;
pub mod logging;
pub mod spawn;
pub mod sync;

pub use error::{Context, Error, Result};
