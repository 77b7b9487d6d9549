//! The docker build / buildx build flags that CI pipelines pass (issue 16), beyond the
//! core ones in [`super::BuildOptions`]: `--label`, `--annotation`, the RUN settings
//! (`--add-host`, `--shm-size`, `--ulimit`, `--cgroup-parent`), `--pull`,
//! `--metadata-file` and `--ignorefile`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use berth_spec::image::{Descriptor, Digest, ImageConfig};

use crate::context::{Context, PatternMatcher};
use crate::dockerfile::{ArgScope, Dockerfile};

use crate::exec::settings::RunSettings;

/// The flags; the default changes nothing.
#[derive(Debug, Clone, Default)]
pub struct ExtraOptions {
    /// `--label K=V`: labels of the image config (over the Dockerfile's LABELs).
    pub labels: BTreeMap<String, String>,
    pub annotations: Annotations,
    pub run: RunSettings,
    /// `--pull`: base images are resolved in their registry even when stored.
    pub pull: bool,
    /// `--metadata-file`: what the build made, as JSON (see [`write_metadata`]).
    pub metadata_file: Option<PathBuf>,
    /// `--ignorefile`: the ignore patterns, instead of the context's .dockerignore.
    pub ignorefile: Option<PathBuf>,
    /// `--ssh ID[=SOCKET]`: ssh-agent sockets for `RUN --mount=type=ssh`.
    pub ssh: BTreeMap<String, PathBuf>,
    /// `--build-context NAME=VALUE`, by lower-cased name.
    pub contexts: BTreeMap<String, NamedContext>,
    /// `-q`: the progress goes here instead of stderr (the caller shows it if the build
    /// fails, as docker does).
    pub quiet_log: Option<QuietLog>,
}

/// The progress of a quiet build, kept in memory.
#[derive(Debug, Clone, Default)]
pub struct QuietLog(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl QuietLog {
    pub fn contents(&self) -> Vec<u8> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl std::io::Write for QuietLog {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// `--annotation [TYPE:]KEY=VALUE`, by where buildx puts them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Annotations {
    /// No prefix, or `manifest:`: the image manifest (so the image id).
    pub manifest: BTreeMap<String, String>,
    /// `manifest-descriptor:`: the manifest's entry in an OCI layout's index.json.
    pub manifest_descriptor: BTreeMap<String, String>,
    /// `index:`: an OCI layout's index.json itself.
    pub index: BTreeMap<String, String>,
}

impl Annotations {
    pub fn add(&mut self, s: &str) -> Result<(), String> {
        let bad = |why: &str| format!("invalid --annotation {s:?}: {why}");
        let (kv_start, map) = match s.split_once(':') {
            // A key may hold ':' only after a type prefix; a prefix has no '='.
            Some((t, _)) if !t.contains('=') => {
                let map = match t {
                    "manifest" => &mut self.manifest,
                    "manifest-descriptor" => &mut self.manifest_descriptor,
                    "index" => &mut self.index,
                    "index-descriptor" => {
                        return Err(bad("berth-build writes a single-platform image without an index around it, so an index descriptor has nowhere to go (use index: or manifest-descriptor:)"))
                    }
                    t if t.contains('[') => return Err(bad("per-platform annotations (TYPE[PLATFORM]:) are for multi-platform builds, which berth-build does not do")),
                    t => return Err(bad(&format!("unknown type {t:?}: want manifest, manifest-descriptor or index"))),
                };
                (t.len() + 1, map)
            }
            _ => (0, &mut self.manifest),
        };
        let (k, v) = s[kv_start..].split_once('=').ok_or_else(|| bad("want [TYPE:]KEY=VALUE"))?;
        if k.is_empty() {
            return Err(bad("empty key"));
        }
        map.insert(k.to_string(), v.to_string());
        Ok(())
    }
}

/// A named build context: what `FROM NAME`, `COPY --from=NAME` and
/// `RUN --mount=from=NAME` mean instead of a stage or image of that name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NamedContext {
    /// `docker-image://REF`: that image.
    Image(String),
    /// A local directory (absolute): its files, for COPY --from and bind mounts.
    Dir(PathBuf),
}

impl NamedContext {
    /// How errors name it.
    pub fn describe(&self, name: &str) -> String {
        match self {
            NamedContext::Image(r) => format!("build context {name} (image {r})"),
            NamedContext::Dir(d) => format!("build context {name} ({})", d.display()),
        }
    }
}

/// `--build-context NAME=docker-image://REF` or `NAME=DIR`.
pub fn parse_build_context(s: &str, out: &mut BTreeMap<String, NamedContext>) -> Result<(), String> {
    let bad = |why: &str| format!("invalid --build-context {s:?}: {why}");
    let (name, value) = s.split_once('=').ok_or_else(|| bad("want NAME=docker-image://REF or NAME=DIR"))?;
    if name.is_empty() || value.is_empty() {
        return Err(bad("want NAME=docker-image://REF or NAME=DIR"));
    }
    let c = if let Some(r) = value.strip_prefix("docker-image://") {
        crate::registry::Reference::parse(r).map_err(|e| bad(&e.to_string()))?;
        NamedContext::Image(r.to_string())
    } else if value.contains("://") || value.starts_with("target:") || value.starts_with("git@") {
        return Err(bad("only docker-image://REF and local directories are supported"));
    } else {
        let d = std::path::absolute(value).map_err(|e| bad(&e.to_string()))?;
        if !d.is_dir() {
            return Err(bad(&format!("{value} is not a directory")));
        }
        NamedContext::Dir(d)
    };
    out.insert(name.to_ascii_lowercase(), c);
    Ok(())
}

/// The stages to build when named contexts replace the stages of their names (as
/// BuildKit does): the target and what it depends on, without the replaced stages and
/// what only they need.
pub fn stages_needed(df: &Dockerfile, target: Option<&str>, globals: &ArgScope, contexts: &BTreeMap<String, NamedContext>) -> Result<Vec<usize>, String> {
    let t = df.target_index(target).map_err(|e| e.to_string())?;
    let (mut needed, mut todo) = (std::collections::BTreeSet::new(), vec![t]);
    while let Some(i) = todo.pop() {
        if !needed.insert(i) {
            continue;
        }
        for d in df.stage_deps(i, globals).map_err(|e| e.to_string())? {
            if !df.stages[d.stage].name.as_ref().is_some_and(|n| contexts.contains_key(n)) {
                todo.push(d.stage);
            }
        }
    }
    Ok(needed.into_iter().collect())
}

/// What a directory context is for the cache: a key of its files' content (paths,
/// modes, data), as the main context's files are keyed.
pub fn dir_content_key(d: &Path) -> Result<Digest, String> {
    let what = |e: &dyn std::fmt::Display| format!("build context {}: {e}", d.display());
    let ctx = Context::open(d, PatternMatcher::default()).map_err(|e| what(&e))?;
    let all = ctx.resolve_sources(&[".".to_string()]).map_err(|e| what(&e))?;
    let h = ctx.content_hash(&all).map_err(|e| what(&e))?;
    Ok(crate::cache::KeyBuilder::new("build-context", &crate::cache::content_key(&[])).field("content", &h).finish())
}

/// `--ssh ID[=SOCKET]` (`default` alone: `$SSH_AUTH_SOCK`). Only agent sockets: buildx
/// also takes key files, loading them into an agent of its own, which berth-build has not.
pub fn parse_ssh(s: &str, env_sock: Option<&str>, out: &mut BTreeMap<String, PathBuf>) -> Result<(), String> {
    let (id, path) = match s.split_once('=') {
        Some((id, p)) => (id, p.to_string()),
        None => (
            s,
            env_sock
                .filter(|p| !p.is_empty())
                .ok_or_else(|| format!("--ssh {s}: SSH_AUTH_SOCK is not set; give the agent's socket as --ssh {s}=SOCKET"))?
                .to_string(),
        ),
    };
    if id.is_empty() || path.contains(',') {
        return Err(format!("invalid --ssh {s:?}: want ID[=SOCKET] (one socket per id)"));
    }
    use std::os::unix::fs::FileTypeExt;
    let md = std::fs::metadata(&path).map_err(|e| format!("--ssh {id}: {path}: {e}"))?;
    if !md.file_type().is_socket() {
        return Err(format!("--ssh {id}: {path} is not a socket: only ssh-agent sockets are supported (load keys into an agent with ssh-add)"));
    }
    out.insert(id.to_string(), std::path::absolute(&path).unwrap_or_else(|_| PathBuf::from(&path)));
    Ok(())
}

/// `--label K=V` (a key alone is an empty value, as docker takes it).
pub fn parse_label(s: &str, labels: &mut BTreeMap<String, String>) -> Result<(), String> {
    let (k, v) = s.split_once('=').unwrap_or((s, ""));
    if k.is_empty() {
        return Err(format!("invalid --label {s:?}: empty key"));
    }
    labels.insert(k.to_string(), v.to_string());
    Ok(())
}

/// The image config with the `--label`s in.
pub fn apply_labels(c: &mut ImageConfig, labels: &BTreeMap<String, String>) {
    if labels.is_empty() {
        return;
    }
    let mut cc = c.container_config();
    cc.labels.extend(labels.iter().map(|(k, v)| (k.clone(), v.clone())));
    c.config = Some(cc);
}

/// `--metadata-file`: the keys buildx writes for an image build.
pub fn write_metadata(path: &Path, manifest: &Descriptor, config: &Descriptor, names: &[String]) -> Result<(), String> {
    let mut m = serde_json::Map::new();
    m.insert("containerimage.digest".into(), manifest.digest.as_str().into());
    m.insert("containerimage.config.digest".into(), config.digest.as_str().into());
    m.insert("containerimage.descriptor".into(), serde_json::to_value(manifest).map_err(|e| e.to_string())?);
    if !names.is_empty() {
        m.insert("image.name".into(), names.join(",").into());
    }
    let text = serde_json::to_vec_pretty(&serde_json::Value::Object(m)).map_err(|e| e.to_string())?;
    std::fs::write(path, text).map_err(|e| format!("--metadata-file {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn annotations_go_where_their_prefix_says() {
        let mut a = Annotations::default();
        a.add("org.opencontainers.image.title=app").unwrap();
        a.add("manifest:a=1").unwrap();
        a.add("manifest-descriptor:b=2").unwrap();
        a.add("index:c=x=y").unwrap();
        a.add("url=http://x:80/").unwrap();
        assert_eq!(a.manifest.len(), 3);
        assert_eq!(a.manifest["url"], "http://x:80/");
        assert_eq!(a.manifest_descriptor["b"], "2");
        assert_eq!(a.index["c"], "x=y");
        for bad in ["nokey", "bogus:a=1", "index-descriptor:a=1", "manifest[linux/amd64]:a=1", "=v"] {
            assert!(a.add(bad).unwrap_err().contains(&format!("--annotation {bad:?}")), "{bad}");
        }
    }

    #[test]
    fn labels_are_added_over_the_dockerfiles() {
        let mut labels = BTreeMap::new();
        parse_label("a=1", &mut labels).unwrap();
        parse_label("empty", &mut labels).unwrap();
        assert!(parse_label("=x", &mut labels).is_err());
        let mut c = ImageConfig::default();
        let mut cc = c.container_config();
        cc.labels.insert("a".into(), "0".into());
        cc.labels.insert("keep".into(), "yes".into());
        c.config = Some(cc);
        apply_labels(&mut c, &labels);
        let l = &c.config.as_ref().unwrap().labels;
        assert_eq!((l["a"].as_str(), l["empty"].as_str(), l["keep"].as_str()), ("1", "", "yes"));
    }
}
