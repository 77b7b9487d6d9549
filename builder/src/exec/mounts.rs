//! `RUN --mount=...` -> config.json mounts.
//!
//! - `bind`: from the build context (`source` resolved inside it; leaving it is refused),
//!   or from another stage or a stored image (`from=`: its layers mounted read-only as an
//!   overlay in the run dir). Read-only unless `rw`; a read-write bind gets an overlay
//!   with a throw-away upper dir, so the writes never reach the source.
//! - `cache`: a directory of the store, `cache-mounts/<id>` (created with `mode`,
//!   `uid`, `gid`); `sharing=locked` holds an flock on it for the run.
//! - `tmpfs`: a tmpfs (`size=`).
//! - `secret`: the file of `--secret id=ID,src=FILE` (or `env=VAR`), copied to the run
//!   dir with `mode` (0400), `uid`, `gid`, bound read-only at the target
//!   (`/run/secrets/<id>` by default); with `env=NAME` also in the environment. A
//!   missing secret is an error when `required`, else the mount is left out.
//! - `ssh`: refused (no agent forwarding in berth-build).

use crate::error::Context as _;
use std::collections::BTreeMap;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use berth_spec::config::Mount;

use crate::context::Context;
use crate::dockerfile::{MountSpec, MountType, Sharing};
use crate::overlay::{self, LinkDir, Mounted};
use crate::rootfs::secure_join;

/// A `--secret` of the build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    File(PathBuf),
    Env(String),
}

/// `--secret id=x,src=FILE` / `id=x,env=VAR` / `id=x` (src defaults to the env var of
/// that name, as docker does when no file is named... here: it must exist).
pub fn parse_secret(s: &str) -> crate::Result<(String, SecretSource)> {
    let mut id = None;
    let mut src = None;
    let mut env = None;
    for field in s.split(',') {
        let (k, v) = field.split_once('=').ok_or_else(|| format!("invalid --secret {s:?}: want id=ID,src=FILE"))?;
        match k {
            "id" => id = Some(v.to_string()),
            "src" | "source" => src = Some(v.to_string()),
            "env" => env = Some(v.to_string()),
            "type" if v == "file" || v == "env" => {}
            _ => return Err(format!("invalid --secret {s:?}: unknown key {k:?}").into()),
        }
    }
    let id = id.ok_or_else(|| format!("invalid --secret {s:?}: id= is required"))?;
    let source = match (src, env) {
        (Some(f), _) => SecretSource::File(PathBuf::from(f)),
        (None, Some(e)) => SecretSource::Env(e),
        (None, None) => SecretSource::Env(id.clone()),
    };
    Ok((id, source))
}

fn secret_value(src: &SecretSource) -> crate::Result<Option<Vec<u8>>> {
    match src {
        SecretSource::File(p) => std::fs::read(p).map(Some).with_context(|| format!("secret file {}", p.display())),
        SecretSource::Env(v) => Ok(std::env::var_os(v).map(std::os::unix::ffi::OsStringExt::into_vec)),
    }
}

/// A cache id as a directory name: `[A-Za-z0-9._-]` kept, anything else `%XX`.
pub fn cache_dir_name(id: &str) -> String {
    let mut s = String::new();
    for b in id.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-') || (b == b'.' && !s.is_empty()) {
            s.push(b as char);
        } else {
            s.push_str(&format!("%{b:02X}"));
        }
    }
    s
}

/// What a RUN's mounts need from the build.
pub struct MountEnv<'a> {
    pub store_root: &'a Path,
    pub context: &'a Context,
    pub secrets: &'a BTreeMap<String, SecretSource>,
    /// The per-run directory (copies, mount points, throw-away uppers).
    pub run_dir: &'a Path,
    pub links: &'a mut LinkDir,
    /// `from=` -> the layer dirs (bottom first) of that stage or stored image.
    pub layers_of: &'a dyn Fn(&str) -> crate::Result<Vec<PathBuf>>,
    /// `--ssh ID=SOCKET`: the ssh-agent sockets `type=ssh` mounts bind.
    pub ssh: &'a BTreeMap<String, PathBuf>,
}

/// Prepared mounts; the guards are released (unmounted, unlocked) after the run.
#[derive(Default)]
pub struct Prepared {
    pub mounts: Vec<Mount>,
    pub env: Vec<String>,
    pub guards: Vec<Mounted>,
    pub locks: Vec<File>,
}

fn bind_mount(dest: String, src: &Path, readonly: bool) -> Mount {
    let mut options = vec!["rbind".to_string(), "rprivate".to_string()];
    if readonly {
        options.push("ro".into());
    }
    Mount {
        destination: dest,
        typ: Some("bind".into()),
        source: Some(src.to_string_lossy().into_owned()),
        options,
        uid_mappings: Vec::new(),
        gid_mappings: Vec::new(),
    }
}

/// Prepares `specs` (expanded) for a RUN whose working directory is `workdir`.
pub fn prepare(specs: &[MountSpec], workdir: &str, env: &mut MountEnv) -> crate::Result<Prepared> {
    let mut p = Prepared::default();
    for (i, m) in specs.iter().enumerate() {
        let target = m.resolved_target(workdir)?;
        match m.kind {
            MountType::Bind => {
                let src = bind_source(m, i, env, &mut p)?;
                let md = std::fs::metadata(&src).with_context(|| format!("bind mount source {}", m.source.as_deref().unwrap_or("/")))?;
                let src = if m.readonly {
                    src
                } else if md.is_dir() {
                    let upper = env.run_dir.join(format!("bu{i}"));
                    let work = env.run_dir.join(format!("bw{i}"));
                    let merged = env.run_dir.join(format!("bm{i}"));
                    for d in [&upper, &work, &merged] {
                        std::fs::create_dir_all(d).with_context(|| format!("{}", d.display()))?;
                    }
                    let g = overlay::mount(env.links, &[src], Some((&upper, &work)), &merged)?;
                    p.guards.push(g);
                    merged
                } else {
                    let copy = env.run_dir.join(format!("bf{i}"));
                    std::fs::copy(&src, &copy).context("copy bind source")?;
                    copy
                };
                p.mounts.push(bind_mount(target, &src, m.readonly));
            }
            MountType::Cache => {
                if m.from.is_some() {
                    return Err("RUN --mount=type=cache,from=... is not supported by berth-build".into());
                }
                let dir = env.store_root.join("cache-mounts").join(cache_dir_name(&m.cache_id()));
                if !dir.is_dir() {
                    std::fs::create_dir_all(&dir).with_context(|| format!("create cache mount {}", dir.display()))?;
                    let mode = m.mode.unwrap_or(0o755);
                    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(mode))?;
                    std::os::unix::fs::lchown(&dir, Some(m.uid.unwrap_or(0)), Some(m.gid.unwrap_or(0)))?;
                }
                if m.sharing == Some(Sharing::Locked) || m.sharing == Some(Sharing::Private) {
                    let f = File::open(&dir)?;
                    // SAFETY: flock on an fd we own.
                    unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) };
                    p.locks.push(f);
                }
                p.mounts.push(bind_mount(target, &dir, m.readonly));
            }
            MountType::Tmpfs => {
                let mut options = vec!["nosuid".to_string(), "nodev".to_string()];
                if let Some(s) = m.size {
                    options.push(format!("size={s}"));
                }
                p.mounts.push(Mount {
                    destination: target,
                    typ: Some("tmpfs".into()),
                    source: Some("tmpfs".into()),
                    options,
                    uid_mappings: Vec::new(),
                    gid_mappings: Vec::new(),
                });
            }
            MountType::Secret => {
                let id = m.secret_id().unwrap_or_default();
                let value = match env.secrets.get(&id) {
                    Some(src) => secret_value(src)?,
                    None => None,
                };
                let Some(value) = value else {
                    if m.required {
                        return Err(format!("secret {id} not found (give it with --secret id={id},src=FILE)").into());
                    }
                    continue;
                };
                if let Some(name) = &m.env {
                    p.env.push(format!("{name}={}", String::from_utf8_lossy(&value)));
                    if m.target.is_none() {
                        continue;
                    }
                }
                let file = env.run_dir.join(format!("secret{i}"));
                std::fs::write(&file, &value).context("write secret")?;
                std::fs::set_permissions(&file, std::fs::Permissions::from_mode(m.mode.unwrap_or(0o400)))?;
                std::os::unix::fs::lchown(&file, Some(m.uid.unwrap_or(0)), Some(m.gid.unwrap_or(0)))?;
                p.mounts.push(bind_mount(target, &file, true));
            }
            MountType::Ssh => {
                // The agent's socket itself, bound in: the keys never enter the container.
                let id = m.id.clone().unwrap_or_else(|| "default".into());
                let Some(sock) = env.ssh.get(&id) else {
                    if m.required {
                        return Err(format!("no ssh agent {id:?} forwarded (give it with --ssh {id}=SOCKET)").into());
                    }
                    continue;
                };
                p.env.push(format!("SSH_AUTH_SOCK={target}"));
                p.mounts.push(bind_mount(target, sock, false));
            }
        }
    }
    Ok(p)
}

/// The host path a bind mount's `source` names (checked to stay inside its context or
/// stage).
fn bind_source(m: &MountSpec, i: usize, env: &mut MountEnv, p: &mut Prepared) -> crate::Result<PathBuf> {
    let source = m.source.clone().unwrap_or_default();
    match &m.from {
        None => {
            if source.is_empty() || source == "/" || source == "." {
                return Ok(env.context.root().to_path_buf());
            }
            let resolved = env.context.resolve_sources(std::slice::from_ref(&source))?;
            let s = resolved.first().ok_or_else(|| format!("bind mount source {source:?} not found in the build context"))?;
            Ok(env.context.host_path(&s.path))
        }
        Some(from) => {
            let lowers = (env.layers_of)(from)?;
            let dir = env.run_dir.join(format!("from{i}"));
            std::fs::create_dir_all(&dir)?;
            let g = overlay::mount(env.links, &lowers, None, &dir)?;
            let root = g.path.clone();
            p.guards.push(g);
            let path = secure_join(&root, &source, true)?;
            if !path.exists() {
                return Err(format!("bind mount source {source:?} not found in {from}").into());
            }
            Ok(path)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_secrets() {
        assert_eq!(cache_dir_name("/root/.cache"), "%2Froot%2F.cache");
        assert_eq!(cache_dir_name("go-build"), "go-build");
        assert_eq!(cache_dir_name(".."), "%2E.");
        assert_eq!(parse_secret("id=tok,src=/x").unwrap(), ("tok".into(), SecretSource::File("/x".into())));
        assert_eq!(parse_secret("id=tok,env=T").unwrap(), ("tok".into(), SecretSource::Env("T".into())));
        assert!(parse_secret("src=/x").is_err());
    }
}
