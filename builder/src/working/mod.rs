//! Working containers: buildah's scripted builds (`from`, `run`, `copy`, `config`,
//! `commit`, `rm`, `containers`), the `docker commit` workflow.
//!
//! ```text
//! <store>/containers/<name>/
//!   container.json   the record: the base's layers, the pending image config, what ran
//!   upper/ work/     the overlay upper and work dirs: the container's changes
//!   lock             flock'ed (exclusive) by each command on the container
//! ```
//!
//! A container is made in the store's tmp/ and renamed into place whole, so a name is
//! taken only by a complete record. Its overlay is mounted only while `run` or `copy`
//! works (in the command's own mount namespace, see [`crate::isolation`]), so
//! nothing stays mounted between commands. `commit` turns the upper dir into one layer,
//! as a RUN step's snapshot does ([`crate::layer::diff`], then the dir is adopted as the
//! layer's unpacked dir), writes the image and tags it; the container then continues
//! from the committed image, with an empty upper dir. Prune keeps what a container's
//! record references ([`referenced`]).

pub mod change;

use crate::error::Context as _;
use crate::store::Store;
use berth_spec::image::{Descriptor, Digest, History, ImageConfig, Manifest};
use serde::{Deserialize, Serialize};
use std::fs::{self, File};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

/// What `containers/<name>/container.json` holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    pub name: String,
    /// 64 hex digits (buildah's container id).
    pub id: String,
    /// The image it was made from, as given.
    pub from: String,
    /// The manifest digest of the image it continues from (`from`'s, then the last commit's).
    pub base: Option<Digest>,
    /// The base's layer blobs, bottom first.
    pub layers: Vec<Descriptor>,
    /// The image config to commit: the base's, with `config` changes and their history.
    pub config: ImageConfig,
    /// What `run` and `copy` did since the last commit (the new layer's history).
    #[serde(default)]
    pub pending: Vec<String>,
    pub created: String,
}

/// An opened working container, locked for as long as it lives.
pub struct Container {
    pub dir: PathBuf,
    pub record: Record,
    _lock: File,
    _lease: crate::store::Lease,
}

fn containers_dir(store: &Store) -> PathBuf {
    store.root().join("containers")
}

/// Docker's container-name rule.
pub fn valid_name(n: &str) -> bool {
    let mut c = n.chars();
    c.next().is_some_and(|f| f.is_ascii_alphanumeric()) && c.all(|x| x.is_ascii_alphanumeric() || "_.-".contains(x))
}

/// buildah's default name: the image's last path component, without tag or digest.
fn default_name(image: &str) -> String {
    if image.eq_ignore_ascii_case("scratch") {
        return "working-container".into();
    }
    let n = image.split('@').next().unwrap_or(image);
    let last = n.rsplit('/').next().unwrap_or(n);
    let base = last.split(':').next().unwrap_or(last);
    let base: String = base.chars().map(|c| if c.is_ascii_alphanumeric() || "_.-".contains(c) { c } else { '-' }).collect();
    let base = base.trim_start_matches(|c: char| !c.is_ascii_alphanumeric());
    format!("{}-working-container", if base.is_empty() { "image" } else { base })
}

fn random_hex() -> crate::Result<String> {
    let mut out = String::new();
    for _ in 0..4 {
        out.push_str(crate::store::unique_name("x")?.trim_start_matches("x."));
    }
    Ok(out)
}

/// `from IMAGE [--name NAME]`: makes a container on the image (pulled if not in the
/// store); returns its name.
pub fn from(store: &Store, image: &str, name: Option<&str>, remote: &crate::remote::RemoteOptions) -> crate::Result<String> {
    if let Some(n) = name {
        if !valid_name(n) {
            return Err(format!("invalid container name {n:?}: want [a-zA-Z0-9][a-zA-Z0-9_.-]*").into());
        }
    }
    let _lease = store.lease()?;
    let (base, layers, config) = if image.eq_ignore_ascii_case("scratch") {
        let p = berth_spec::image::host_platform();
        (None, Vec::new(), ImageConfig { architecture: p.architecture, os: p.os, variant: p.variant, ..Default::default() })
    } else {
        let d = match store.resolve(image) {
            Ok(d) => d,
            // An ambiguous id prefix is not a name to pull.
            Err(e) if e.kind() == std::io::ErrorKind::InvalidInput => return Err(e.into()),
            Err(_) => crate::remote::pull::local_or_pull(store, image, remote, None).map_err(|e| crate::Error::msg(format!("image {image:?}: {e}")))?,
        };
        let img = store.inspect(d.as_str())?;
        // Unpacked now: a container never waits for (or fails on) its base later.
        store.image_lowerdirs(&img)?;
        (Some(d), img.manifest.layers.clone(), img.config)
    };
    let record = Record {
        name: String::new(),
        id: random_hex()?,
        from: image.to_string(),
        base: base.clone(),
        layers,
        config,
        pending: Vec::new(),
        created: crate::store::now_rfc3339(),
    };
    fs::create_dir_all(containers_dir(store))?;
    let tmp = store.temp_dir("container")?;
    for d in ["upper", "work"] {
        fs::create_dir(tmp.path().join(d))?;
    }
    // Given by id, a container is named after the image's name, as buildah does.
    let by_id = base.as_ref().is_some_and(|d| crate::store::normalize_name(image).ok().and_then(|n| store.resolve(&n).ok()).as_ref() != Some(d));
    let named = if by_id { base.as_ref().and_then(|d| store.names_of(d).ok()).and_then(|n| n.into_iter().next()) } else { None };
    let wanted = name.map(str::to_string).unwrap_or_else(|| default_name(named.as_deref().unwrap_or(image)));
    for i in 0.. {
        let n = match (name, i) {
            (_, 0) => wanted.clone(),
            (Some(_), _) => return Err(format!("the container name {wanted:?} is already in use").into()),
            (None, i) => format!("{wanted}-{i}"),
        };
        let rec = Record { name: n.clone(), ..record.clone() };
        fs::write(tmp.path().join("container.json"), serde_json::to_vec_pretty(&rec)?)?;
        // rename(2) of a dir onto an existing, non-empty one fails: the name is taken.
        match fs::rename(tmp.path(), containers_dir(store).join(&n)) {
            Ok(()) => {
                tmp.keep();
                return Ok(n);
            }
            Err(e) if matches!(e.raw_os_error(), Some(libc::EEXIST) | Some(libc::ENOTEMPTY)) => continue,
            Err(e) => return Err(crate::Error::from(e).context(format!("create container {n}"))),
        }
    }
    unreachable!("the loop returns")
}

impl Container {
    /// Opens and locks the container `name`.
    pub fn open(store: &Store, name: &str) -> crate::Result<Container> {
        let lease = store.lease()?;
        let dir = containers_dir(store).join(name);
        if !valid_name(name) || !dir.join("container.json").is_file() {
            return Err(crate::Error::new(crate::ErrorKind::NotFound, format!("no working container named {name:?} (see `berth-build containers`)")));
        }
        let lock = fs::OpenOptions::new().create(true).truncate(false).write(true).open(dir.join("lock"))?;
        crate::layer::sys::flock(lock.as_raw_fd(), true)?;
        // Removed while we waited for the lock.
        let text =
            fs::read(dir.join("container.json")).map_err(|_| crate::Error::new(crate::ErrorKind::NotFound, format!("no working container named {name:?}")))?;
        let record: Record = serde_json::from_slice(&text).with_context(|| format!("container {name}: container.json"))?;
        Ok(Container { dir, record, _lock: lock, _lease: lease })
    }

    pub fn upper(&self) -> PathBuf {
        self.dir.join("upper")
    }

    /// Writes the record whole (temp file + rename).
    pub fn save(&self) -> crate::Result<()> {
        let tmp = self.dir.join("container.json.new");
        fs::write(&tmp, serde_json::to_vec_pretty(&self.record)?)?;
        fs::rename(&tmp, self.dir.join("container.json"))?;
        Ok(())
    }

    /// The unpacked layer dirs of the base, bottom first.
    pub fn lowers(&self, store: &Store) -> crate::Result<Vec<PathBuf>> {
        let ids = &self.record.config.rootfs.diff_ids;
        if ids.len() != self.record.layers.len() {
            return Err(format!("container {}: {} layers but {} diff_ids", self.record.name, self.record.layers.len(), ids.len()).into());
        }
        self.record.layers.iter().zip(ids).map(|(b, d)| Ok(store.ensure_layer(b, d)?)).collect()
    }

    /// Mounts the container's overlay on `target` (until the returned guard drops);
    /// `links` is the short-name dir of [`crate::overlay`].
    pub fn mount(&self, store: &Store, links: &mut crate::overlay::LinkDir, target: &Path) -> crate::Result<crate::overlay::Mounted> {
        let lowers = self.lowers(store)?;
        let (upper, work) = (self.upper(), self.dir.join("work"));
        for d in [&upper, &work] {
            fs::create_dir_all(d)?;
        }
        Ok(crate::overlay::mount(links, &lowers, Some((&upper, &work)), target)?)
    }

    /// `commit NAME IMAGE`: the changes as one new layer (none if there are none), the
    /// config with its history, tagged `image`. Returns the manifest and config digests.
    pub fn commit(&mut self, store: &Store, image: &str, compression: crate::layer::Compression) -> crate::Result<(Digest, Digest)> {
        let name = crate::store::normalize_name(image)?;
        let upper = self.upper();
        let _ = fs::remove_dir_all(self.dir.join("work"));
        let mut config = self.record.config.clone();
        let mut layers = self.record.layers.clone();
        let now = crate::store::now_rfc3339();
        let changed = !crate::build::is_empty_dir(&upper);
        if changed {
            let opts = crate::layer::DiffOptions { compression, source_date_epoch: crate::store::source_date_epoch(), xattrs: true };
            let blob = crate::layer::diff(store, &upper, &opts).context("writing the layer")?;
            config.rootfs.diff_ids.push(blob.diff_id.clone());
            layers.push(blob.descriptor.clone());
            // The upper dir is the layer's unpacked dir from now on (the container's
            // next lower); the container goes on with an empty one.
            store.adopt_layer_dir(&blob.diff_id, &upper)?;
            fs::create_dir_all(&upper)?;
        }
        if changed || !self.record.pending.is_empty() {
            let by = if self.record.pending.is_empty() { "berth-build commit".to_string() } else { self.record.pending.join(" && ") };
            config.history.push(History {
                created: Some(now.clone()),
                created_by: Some(by),
                author: None,
                comment: Some(format!("berth-build commit {}", self.record.name)),
                empty_layer: !changed,
            });
        }
        config.created = Some(now);
        let cdesc = store.put_config(&config)?;
        let mdesc = store.put_manifest(&Manifest::new(cdesc.clone(), layers.clone()))?;
        store.tag(&name, &mdesc.digest)?;
        self.record.base = Some(mdesc.digest.clone());
        self.record.layers = layers;
        self.record.config = config;
        self.record.pending.clear();
        self.save()?;
        Ok((mdesc.digest, cdesc.digest))
    }
}

/// `rm NAME`: waits for commands on it, then removes its directory.
pub fn remove(store: &Store, name: &str) -> crate::Result<()> {
    let c = Container::open(store, name)?;
    // Renamed out of the way first: a name is never left half removed.
    let gone = store.root().join("tmp").join(crate::store::unique_name("removed")?);
    fs::rename(&c.dir, &gone).with_context(|| format!("remove container {name}"))?;
    drop(c);
    fs::remove_dir_all(&gone).with_context(|| format!("remove container {name}"))?;
    Ok(())
}

/// Every container's record, by name.
pub fn list(store: &Store) -> crate::Result<Vec<Record>> {
    let mut out = Vec::new();
    let Ok(rd) = fs::read_dir(containers_dir(store)) else { return Ok(out) };
    for e in rd.flatten() {
        if let Ok(b) = fs::read(e.path().join("container.json")) {
            if let Ok(r) = serde_json::from_slice::<Record>(&b) {
                out.push(r);
            }
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// (blob digests, layer diff_ids) the containers under `root` reference: prune keeps them.
pub fn referenced(root: &Path) -> (Vec<Digest>, Vec<Digest>) {
    let (mut blobs, mut layers) = (Vec::new(), Vec::new());
    let Ok(rd) = fs::read_dir(root.join("containers")) else { return (blobs, layers) };
    for e in rd.flatten() {
        let Ok(b) = fs::read(e.path().join("container.json")) else { continue };
        let Ok(r) = serde_json::from_slice::<Record>(&b) else { continue };
        blobs.extend(r.layers.into_iter().map(|l| l.digest));
        layers.extend(r.config.rootfs.diff_ids);
    }
    (blobs, layers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_names_follow_buildah() {
        assert_eq!(default_name("busybox"), "busybox-working-container");
        assert_eq!(default_name("docker.io/library/alpine:3.19"), "alpine-working-container");
        assert_eq!(default_name("localhost:5000/a/b@sha256:00"), "b-working-container");
        assert_eq!(default_name("scratch"), "working-container");
        assert!(valid_name("a-b_c.1") && !valid_name("-a") && !valid_name("a/b") && !valid_name(""));
    }
}
