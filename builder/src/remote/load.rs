//! `berth-build load FILE [NAME]`: an oci-archive (an OCI image layout in a tar) or a
//! docker-archive (`docker save`'s format) into the store. The archive is read twice:
//! once for its table (`index.json`, or `manifest.json`), once to store only the blobs
//! the images need (each checked against its digest while it is written), so nothing
//! unrelated lands in the store. Layers are unpacked (checked against the diff_ids)
//! before any name is tagged: a bad archive leaves no name behind.

use crate::error::Context as _;
use crate::layer::compress::{decompress, sniff};
use crate::layer::tar::{clean_path, Kind, TarReader};
use crate::registry::{self, media, Platform};
use crate::store::blobstore::sha256_only;
use crate::store::Store;
use berth_spec::image::{
    Descriptor, Digest, ImageConfig, LayerCompression, Manifest, ANNOTATION_CONTAINERD_IMAGE_NAME, ANNOTATION_REF_NAME, MEDIA_TYPE_OCI_CONFIG,
    MEDIA_TYPE_OCI_LAYER, MEDIA_TYPE_OCI_LAYER_GZIP, MEDIA_TYPE_OCI_LAYER_ZSTD,
};
use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

/// What was loaded: (name or None, manifest digest) per image.
pub type Loaded = Vec<(Option<String>, Digest)>;

/// The archive's tar stream (a `docker save | gzip` archive is decompressed).
fn open(path: &Path) -> crate::Result<TarReader<Box<dyn Read + Send>>> {
    let f = File::open(path)?;
    let plain = decompress(BufReader::with_capacity(1 << 20, f))?;
    Ok(TarReader::new(plain))
}

/// Reads the archive, calling `f(path, kind, link, reader)` for each entry. An entry
/// with a `..` component is refused: nothing in an image archive has one. (Errors do
/// not name the archive: [`load`] puts it in front of every one.)
fn each(path: &Path, mut f: impl FnMut(&str, Kind, &str, &mut dyn Read) -> crate::Result<()>) -> crate::Result<()> {
    let mut tr = open(path)?;
    while let Some(h) = tr.next_entry()? {
        let Some(p) = clean_path(&h.path) else {
            return Err(format!("entry {:?} has a '..' component", String::from_utf8_lossy(&h.path)).into());
        };
        let p = String::from_utf8_lossy(&p).into_owned();
        let link = String::from_utf8_lossy(&h.link).into_owned();
        f(&p, h.kind, &link, &mut tr)?;
    }
    Ok(())
}

/// A symlink entry of a docker-archive: where it points, or why it may not be followed.
type Links = HashMap<String, crate::Result<String>>;

/// Loads `archive`; `name` (if given) names the (single) image instead of the
/// names the archive carries.
pub fn load(store: &Store, archive: &Path, name: Option<&str>, platform: &Platform) -> crate::Result<Loaded> {
    let _lease = store.lease()?;
    let op = format!("load {}", archive.display());
    let ctx = |e: crate::Error| e.context(&op);
    let (mut index, mut docker, mut links) = (None, None, HashMap::new());
    each(archive, |p, kind, link, r| {
        match (p, kind) {
            ("index.json", Kind::File) => index = Some(read_small(r, p)?),
            ("manifest.json", Kind::File) => docker = Some(read_small(r, p)?),
            (_, Kind::Symlink) => {
                // Docker writes `<id>/layer.tar -> ../<other id>/layer.tar` for shared layers.
                let dir = p.rsplit_once('/').map_or("", |(d, _)| d);
                let target = match link_target(dir, link) {
                    Some(t) => Ok(t),
                    None => Err(crate::Error::msg(format!("is a symlink to {link:?}, which leaves the archive"))),
                };
                links.insert(p.to_string(), target);
            }
            _ => {}
        }
        Ok(())
    })
    .map_err(ctx)?;
    let images = match (index, docker) {
        (_, Some(m)) => load_docker(store, archive, &m, &links).map_err(ctx)?,
        (Some(i), None) => load_oci(store, archive, &i, platform).map_err(ctx)?,
        (None, None) => return Err(ctx("neither an oci-archive (index.json) nor a docker-archive (manifest.json)".into())),
    };
    if name.is_some() && images.len() != 1 {
        return Err(ctx(format!("NAME given but the archive holds {} images", images.len()).into()));
    }
    // Everything checked before the first name is set.
    for (_, id) in &images {
        let img = store.inspect(id.as_str()).map_err(|e| ctx(e.into()))?;
        store.image_lowerdirs(&img).map_err(|e| ctx(e.into()))?;
    }
    let mut out = Vec::new();
    for (names, id) in images {
        let names: Vec<String> = match name {
            Some(n) => vec![n.to_string()],
            None => names,
        };
        let mut first = None;
        for n in names {
            let t = store.tag(&n, &id).map_err(|e| ctx(e.into()))?;
            first.get_or_insert(t);
        }
        out.push((first, id));
    }
    Ok(out)
}

/// The archive path a relative symlink in `dir` points to (`..` resolved, not above
/// the archive's root); None when it leaves the archive or is absolute.
fn link_target(dir: &str, link: &str) -> Option<String> {
    if link.starts_with('/') {
        return None;
    }
    let mut parts: Vec<&str> = dir.split('/').filter(|c| !c.is_empty() && *c != ".").collect();
    for c in link.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            c => parts.push(c),
        }
    }
    Some(parts.join("/"))
}

fn read_small(r: &mut dyn Read, what: &str) -> crate::Result<Vec<u8>> {
    let mut v = Vec::new();
    r.take(media::MAX_MANIFEST_SIZE + 1).read_to_end(&mut v).context(what)?;
    if v.len() as u64 > media::MAX_MANIFEST_SIZE {
        return Err(format!("{what} is too large").into());
    }
    Ok(v)
}

/// Stores the archive entries in `want` (path -> expected digest, or None to hash).
fn store_entries(store: &Store, archive: &Path, want: &HashMap<String, Option<Digest>>) -> crate::Result<HashMap<String, Descriptor>> {
    let mut got = HashMap::new();
    each(archive, |p, kind, _, r| {
        if kind != Kind::File {
            return Ok(());
        }
        let Some(expect) = want.get(p) else { return Ok(()) };
        if let Some(d) = expect {
            if store.has_blob(d) {
                got.insert(p.to_string(), Descriptor::new("", d.clone(), store.blob_size(d)?));
                return Ok(());
            }
        }
        let d = store.put_blob_checked("", expect.as_ref(), None, r).context(p)?;
        got.insert(p.to_string(), d);
        Ok(())
    })?;
    if let Some(missing) = want.keys().find(|k| !got.contains_key(*k)) {
        return Err(format!("blob {missing:?} is not in the archive").into());
    }
    Ok(got)
}

fn load_oci(store: &Store, archive: &Path, index: &[u8], platform: &Platform) -> crate::Result<Vec<(Vec<String>, Digest)>> {
    let index: berth_spec::image::Index = serde_json::from_slice(index).context("index.json")?;
    // Every blob under blobs/, checked against its name; manifests are small and read
    // from the store afterwards to find what they need.
    let mut want = HashMap::new();
    each(archive, |p, kind, _, _| {
        if kind == Kind::File {
            if let Some(hex) = p.strip_prefix("blobs/sha256/") {
                let d = Digest::from_hex(hex).context(p)?;
                want.insert(p.to_string(), Some(d));
            }
        }
        Ok(())
    })?;
    // Only blobs reachable from index.json: first the documents, then what they list.
    let doc = |d: &Digest| format!("blobs/{}/{}", d.algorithm(), d.hex());
    let mut needed: HashMap<String, Option<Digest>> = HashMap::new();
    let mut images = Vec::new();
    let mut docs: Vec<(Vec<String>, berth_spec::image::Descriptor)> = Vec::new();
    for m in &index.manifests {
        let mut names = Vec::new();
        for key in [ANNOTATION_CONTAINERD_IMAGE_NAME, ANNOTATION_REF_NAME] {
            if let Some(n) = m.annotations.get(key) {
                // A bare ref name (`latest`) is a tag without a repository: not a name.
                if crate::store::normalize_name(n).is_ok() && (n.contains(':') || n.contains('/')) && names.is_empty() {
                    names.push(n.clone());
                }
            }
        }
        docs.push((names, m.clone()));
    }
    let take = |p: String, needed: &mut HashMap<String, Option<Digest>>| -> crate::Result<()> {
        let v = want.get(&p).cloned().ok_or_else(|| format!("blob {p:?} is not in the archive"))?;
        needed.insert(p, v);
        Ok(())
    };
    let mut firsts = HashMap::new();
    for (_, d) in &docs {
        take(doc(&d.digest), &mut firsts)?;
    }
    store_entries(store, archive, &firsts)?;
    let mut manifests = Vec::new();
    for (names, d) in docs {
        let sd = sha256_only(&d.digest)?.clone();
        let bytes = store.read_blob(&sd)?;
        if media::sniff_media_type(&bytes).is_some_and(|m| berth_spec::image::is_index(&m)) {
            let inner: berth_spec::image::Index = serde_json::from_slice(&bytes).with_context(|| format!("index {sd}"))?;
            let e = registry::pull::choose_platform(&inner, platform)?;
            let mut one = HashMap::new();
            take(doc(&e.digest), &mut one)?;
            store_entries(store, archive, &one)?;
            manifests.push((names, sha256_only(&e.digest)?.clone()));
        } else {
            manifests.push((names, sd));
        }
    }
    for (_, id) in &manifests {
        let m = store.get_manifest(id)?;
        for b in std::iter::once(&m.config).chain(m.layers.iter()) {
            take(format!("blobs/sha256/{}", b.digest.hex()), &mut needed)?;
        }
    }
    store_entries(store, archive, &needed)?;
    for (names, id) in manifests {
        images.push((names, id));
    }
    Ok(images)
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerEntry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

fn load_docker(store: &Store, archive: &Path, manifest: &[u8], links: &Links) -> crate::Result<Vec<(Vec<String>, Digest)>> {
    let entries: Vec<DockerEntry> = serde_json::from_slice(manifest).context("manifest.json")?;
    // A path manifest.json names, with the archive's symlinks followed (a few hops).
    let resolve = |name: &str| -> crate::Result<String> {
        let mut p = match clean_path(name.as_bytes()) {
            Some(v) if !v.is_empty() && !name.starts_with('/') => String::from_utf8_lossy(&v).into_owned(),
            _ => return Err(format!("blob {name:?} in manifest.json is not a path inside the archive").into()),
        };
        for _ in 0..8 {
            match links.get(&p) {
                Some(Ok(t)) => p = t.clone(),
                Some(Err(why)) => return Err(format!("blob {name:?}: {p:?} {why}").into()),
                None => return Ok(p),
            }
        }
        Err(format!("blob {name:?}: too many levels of symbolic links").into())
    };
    let mut want = HashMap::new();
    for e in &entries {
        for p in std::iter::once(&e.config).chain(e.layers.iter()) {
            want.insert(resolve(p)?, None);
        }
    }
    let got = store_entries(store, archive, &want)?;
    let mut out = Vec::new();
    for e in entries {
        let c = &got[&resolve(&e.config)?];
        let config: ImageConfig = serde_json::from_slice(&store.read_blob(&c.digest)?).context(&e.config)?;
        if config.rootfs.diff_ids.len() != e.layers.len() {
            return Err(format!("{}: {} layers but {} diff_ids in the config", e.config, e.layers.len(), config.rootfs.diff_ids.len()).into());
        }
        let mut layers = Vec::new();
        for l in &e.layers {
            let d = &got[&resolve(l)?];
            let mut head = [0u8; 4];
            let n = store.open_blob(&d.digest).and_then(|mut f| f.read(&mut head))?;
            let mt = match sniff(&head[..n]) {
                LayerCompression::None => MEDIA_TYPE_OCI_LAYER,
                LayerCompression::Gzip => MEDIA_TYPE_OCI_LAYER_GZIP,
                LayerCompression::Zstd => MEDIA_TYPE_OCI_LAYER_ZSTD,
            };
            layers.push(Descriptor::new(mt, d.digest.clone(), d.size));
        }
        let m = Manifest::new(Descriptor::new(MEDIA_TYPE_OCI_CONFIG, c.digest.clone(), c.size), layers);
        let md = store.put_manifest(&m)?;
        out.push((e.repo_tags.unwrap_or_default(), md.digest));
    }
    Ok(out)
}
