//! The store meets the registry: pulling images into the store (`pull`, `FROM`),
//! pushing stored images (`push`, `--output type=registry`, `--push`), the remote build
//! cache (`--cache-to/--cache-from type=registry`), and the client options the CLI
//! flags make (`--tls-verify`, `--insecure-registry`, `--creds`, `--authfile`,
//! `--platform`). The distribution client itself is [`crate::registry`].

pub mod cache;
pub mod load;
pub mod local_cache;
pub mod pull;
pub mod push;

#[cfg(test)]
mod tests;

use crate::error::Context as _;
use crate::registry::{self, AuthConfig, Client, ClientOptions, Credential, Platform, Reference};
use std::path::PathBuf;

/// How berth-build reaches registries (from flags and the environment).
#[derive(Debug, Clone, Default)]
pub struct RemoteOptions {
    /// `--tls-verify=false`: no certificate checks, http fallback everywhere.
    pub tls_verify_off: bool,
    /// `--insecure-registry HOST` and `$BERTH_INSECURE_REGISTRIES` (comma separated).
    pub insecure_registries: Vec<String>,
    /// `--cert-file PEM`: extra trusted CAs.
    pub ca_files: Vec<PathBuf>,
    /// `--creds USER:PASS`, used for every registry this command talks to.
    pub creds: Option<(String, String)>,
    /// `--authfile FILE`: the only credential file (and where `login` writes).
    pub authfile: Option<PathBuf>,
    /// `--platform os/arch[/variant]` for picking from an index; the host's by default.
    pub platform: Option<String>,
    /// `--chunk-size BYTES`: upload blobs in PATCH chunks (default: one PUT).
    pub chunk_size: Option<u64>,
}

impl RemoteOptions {
    /// The auth configuration: `--authfile`, else berth's login file then docker's
    /// config.json.
    pub fn auth(&self) -> AuthConfig {
        match &self.authfile {
            Some(f) => AuthConfig::with_files(vec![f.clone()]),
            None => AuthConfig::from_env(),
        }
    }

    /// A client for talking to `registries` (`--creds` applies to them).
    pub fn client(&self, registries: &[&str]) -> crate::Result<Client> {
        let mut auth = self.auth();
        if let Some((u, p)) = &self.creds {
            for r in registries {
                auth.set(r, Credential::basic(u, p));
            }
        }
        let mut insecure = self.insecure_registries.clone();
        if let Ok(v) = std::env::var("BERTH_INSECURE_REGISTRIES") {
            insecure.extend(v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(String::from));
        }
        let opts = ClientOptions {
            tls_verify: !self.tls_verify_off,
            insecure_registries: insecure,
            extra_ca_files: self.ca_files.clone(),
            auth,
            ..ClientOptions::default()
        };
        Client::new(opts)
    }

    pub fn platform(&self) -> crate::Result<Platform> {
        match &self.platform {
            Some(p) => Platform::parse(p).context("--platform"),
            None => Ok(Platform::host()),
        }
    }
}

/// `--creds USER:PASS`.
pub fn parse_creds(s: &str) -> crate::Result<(String, String)> {
    match s.split_once(':') {
        Some((u, p)) if !u.is_empty() => Ok((u.to_string(), p.to_string())),
        _ => Err(format!("invalid --creds {s:?}: want USER:PASSWORD").into()),
    }
}

/// The store name of a pulled reference: its familiar form without the digest
/// (`alpine:3`, `127.0.0.1:5000/app:1`); None for a digest-only reference.
pub fn store_name(r: &Reference) -> Option<String> {
    r.tag()?;
    let f = r.familiar();
    Some(f.split_once('@').map(|x| x.0.to_string()).unwrap_or(f))
}

/// A progress callback printing one line per finished blob to stderr (`pull`, `push`).
pub fn stderr_progress(verb: &'static str) -> impl Fn(&registry::Progress) + Sync {
    move |p: &registry::Progress| {
        if let Some(line) = describe(verb, p) {
            eprintln!("{line}");
        }
    }
}

/// One line for a progress event, for the events worth a line.
pub fn describe(verb: &str, p: &registry::Progress) -> Option<String> {
    use registry::Progress as P;
    let short = |d: &berth_spec::image::Digest| d.hex().chars().take(12).collect::<String>();
    Some(match p {
        P::Resolved { reference, digest, .. } => format!("{reference}: resolved to {digest}"),
        P::BlobDone { digest, size } => format!("{verb} blob {} done ({})", short(digest), crate::progress::human_size(*size)),
        P::BlobExists { digest, .. } => format!("blob {} exists, skipped", short(digest)),
        P::BlobMounted { digest, from } => format!("blob {} mounted from {from}", short(digest)),
        P::ManifestPushed { reference, digest } => format!("manifest {digest} pushed to {reference}"),
        P::Retry { what, attempt, error } => format!("retrying {what} (attempt {attempt}): {error}"),
        P::BlobStart { .. } | P::BlobBytes { .. } => return None,
    })
}
