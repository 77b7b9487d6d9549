//! The registry side of berth-build: references, the OCI distribution API client,
//! authentication, and pull/push of images and artifacts over an abstract blob store.
//!
//! ```text
//! reference.rs   name[:tag][@digest] parsing, docker.io and library/ defaults
//! digest.rs      streaming sha256/sha512 hashing, a reader that verifies while streaming
//! media.rs       the manifest Accept header, size limit, media type sniffing
//!
//! Digests, descriptors, manifests, indexes and platforms are berth-spec's image types.
//! blobstore.rs   trait BlobStore (has/put/open) and DirBlobStore (blobs/<algo>/<hex>)
//! auth.rs        credentials (login file, docker config.json, credential helpers),
//!                WWW-Authenticate parsing, base64
//! client.rs      Client: transport (TLS, http fallback for loopback/insecure registries,
//!                retries), the anonymous/basic/bearer auth flow, distribution endpoints
//! pull.rs        resolve (index -> platform manifest) and pull (parallel blob downloads)
//! push.rs        push an image or index: HEAD, cross-repo mount, monolithic or chunked
//!                upload, then the manifest
//! artifact.rs    arbitrary OCI artifacts under a ref (the remote build cache)
//! ```
//!
//! ## Why ureq and not oci-client
//!
//! `oci-client` (the former `oci-distribution`) is async: it brings tokio, reqwest,
//! hyper, h2 and tower — a runtime and well over a hundred crates — into a tool that is
//! otherwise synchronous, and it owns the pull/push loops (no hook to stream blobs into
//! our own store with our verification and progress, no request counts, no cross-repo
//! mount control, docker's credential files not read). The distribution API is a dozen
//! plain HTTP requests; with `ureq` 3 (blocking HTTP/1.1, rustls with ring, a handful of
//! small dependencies, maintained) this module drives them itself, in threads, and
//! keeps every policy (auth flow, retries, http fallback, mounts) in one place. TLS
//! trusts the system roots (`/etc/ssl/certs/ca-certificates.crt`, or `$SSL_CERT_FILE`)
//! plus any extra CA files; webpki's bundled roots are used only when no system bundle
//! is found.

pub mod artifact;
pub mod auth;
pub mod blobstore;
pub mod client;
pub mod digest;
pub mod media;
pub mod pull;
pub mod push;
pub mod reference;

#[cfg(test)]
mod tests;

pub use artifact::{build_artifact_manifest, pull_artifact, push_artifact, ArtifactBlob, PulledArtifact};
pub use auth::{AuthConfig, Credential};
pub use berth_spec::image::{Descriptor, Digest, Index, Manifest, Platform};
pub use blobstore::{BlobStore, DirBlobStore};
pub use client::{Client, ClientOptions, Stats};
pub use pull::{pull, resolve, PullOptions, PulledImage, ResolvedImage};
pub use push::{push, PushOptions, PushResult};
pub use reference::Reference;

/// Registry errors are the crate's [`Error`], with a kind for the callers that react
/// differently (fall back, retry, ask to log in). They display as `<op>: <detail>`, e.g.
/// `pull 127.0.0.1:5000/foo:nope: manifest unknown (404)`.
pub use crate::error::{Error, ErrorKind, Result};

/// Progress of a pull or push, for a progress display. Sent from the worker threads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// A reference resolved to a manifest (for an index: the platform's manifest).
    Resolved { reference: String, digest: Digest, media_type: String },
    /// A blob transfer starts.
    BlobStart { digest: Digest, size: u64 },
    /// Bytes transferred so far (sent at most every 256 KiB, and at the end).
    BlobBytes { digest: Digest, done: u64, total: u64 },
    /// A blob transfer finished (verified).
    BlobDone { digest: Digest, size: u64 },
    /// Nothing to transfer: the store (pull) or the registry (push) already has it.
    BlobExists { digest: Digest, size: u64 },
    /// Push: mounted from another repository of the same registry.
    BlobMounted { digest: Digest, from: String },
    /// Push: the manifest was stored under this reference.
    ManifestPushed { reference: String, digest: Digest },
    /// A transfer failed and is tried again.
    Retry { what: String, attempt: u32, error: String },
}

/// A progress callback.
pub type ProgressFn<'a> = dyn Fn(&Progress) + Sync + 'a;

pub(crate) fn emit(p: Option<&ProgressFn<'_>>, ev: Progress) {
    if let Some(f) = p {
        f(&ev);
    }
}

/// Runs `f` over `items` on up to `jobs` threads; stops handing out work after the
/// first error and returns it.
pub(crate) fn run_parallel<T: Sync>(items: &[T], jobs: usize, f: impl Fn(&T) -> Result<()> + Sync) -> Result<()> {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::Mutex;
    let jobs = jobs.clamp(1, 16).min(items.len().max(1));
    if jobs == 1 {
        return items.iter().try_for_each(&f);
    }
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let first_err: Mutex<Option<Error>> = Mutex::new(None);
    std::thread::scope(|s| {
        for _ in 0..jobs {
            s.spawn(|| loop {
                if failed.load(Ordering::SeqCst) {
                    return;
                }
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(item) = items.get(i) else { return };
                if let Err(e) = f(item) {
                    failed.store(true, Ordering::SeqCst);
                    first_err.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert(e);
                    return;
                }
            });
        }
    });
    match first_err.into_inner().unwrap_or_else(|p| p.into_inner()) {
        Some(e) => Err(e),
        None => Ok(()),
    }
}
