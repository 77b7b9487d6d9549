//! `berth-build build`: a parsed Dockerfile -> an image in the store (-> outputs).
//!
//! - [`stage`]: each needed stage in file order: its base (a stored image, an earlier
//!   stage, or scratch), the base's ONBUILD triggers, then its instructions: metadata ones
//!   change the config ([`meta`]), the others are filesystem steps.
//! - [`step`]: a filesystem step: cache lookup by key ([`crate::cache`]); on a miss a fresh
//!   overlay (lowerdirs = the stage's layer dirs in the store, upper = a new dir in the
//!   store's tmp/), the operation ([`run_op`]: RUN in a container; [`copy_op`]: COPY/ADD
//!   written into the merged dir, or with `--link` straight into the empty upper dir;
//!   [`ops`]: WORKDIR), then the upper dir becomes a layer blob ([`crate::layer::diff`])
//!   and, renamed, the layer's unpacked dir; the cache entry is written.
//! - [`image`]: the image config, manifest, tags and outputs.
//!
//! Everything set up is taken down on every path: overlay mounts by their guards (and the
//! build runs in its own mount namespace, so none can outlive it), containers by the shim
//! wrapper, temp dirs by their owners; [`crate::cleanup`] covers signals.

pub mod copy_op;
pub mod extras;
pub mod image;
pub mod meta;
pub mod ops;
pub mod platform;
pub mod run_op;
pub mod stage;
pub mod step;
pub mod times;

use crate::error::Context as _;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use berth_spec::image::{Descriptor, Digest, ImageConfig, NetworkMode};

use crate::context::Context;
use crate::dockerfile::{self, BuildArgs, Dockerfile};
use crate::exec::mounts::SecretSource;
use crate::exec::Tools;
use crate::export::ExportFormat;
use crate::layer::Compression;
use crate::overlay::LinkDir;
use crate::progress::{Mode, Progress};
use crate::store::{Store, TempDir};

/// `--output type=...,dest=...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    pub format: ExportFormat,
    pub dest: PathBuf,
}

impl Output {
    /// `type=TYPE,dest=PATH[,tar=BOOL]` (also `dest` alone: `local`), with buildx's
    /// types: `oci` and `docker` are tarballs unless `tar=false` (then an OCI layout dir /
    /// the docker-archive's files in a dir), `tar` is the rootfs as one tar; `dest=-`
    /// writes a tarball to stdout. berth's own names `oci-archive`, `docker-archive`,
    /// `local` and `bundle` stay.
    pub fn parse(s: &str) -> crate::Result<Output> {
        if !s.contains('=') {
            return Ok(Output { format: ExportFormat::Local, dest: PathBuf::from(s) });
        }
        let usage = "want type=oci|docker|tar|local|bundle|oci-archive|docker-archive,dest=PATH[,tar=false]";
        let (mut typ, mut dest, mut tar) = (None, None, None);
        for field in s.split(',') {
            match field.split_once('=') {
                Some(("type", v)) => typ = Some(v.to_string()),
                Some(("dest", v)) | Some(("destination", v)) => dest = Some(PathBuf::from(v)),
                Some(("tar", v)) => {
                    tar = Some(match v {
                        "true" => true,
                        "false" => false,
                        _ => return Err(format!("invalid --output {s:?}: tar={v:?}, want true or false").into()),
                    })
                }
                _ => return Err(format!("invalid --output {s:?}: {usage}").into()),
            }
        }
        let (Some(typ), Some(dest)) = (typ, dest) else {
            return Err(format!("invalid --output {s:?}: both type= and dest= are needed").into());
        };
        let format = match (typ.as_str(), tar) {
            ("oci", None | Some(true)) => ExportFormat::OciArchive,
            ("oci", Some(false)) => ExportFormat::Oci,
            ("docker", None | Some(true)) => ExportFormat::DockerArchive,
            ("docker", Some(false)) => ExportFormat::DockerDir,
            ("tar", None) => ExportFormat::Tar,
            ("oci-archive" | "docker-archive", None | Some(true)) | ("local" | "bundle", None) => typ.parse::<ExportFormat>().map_err(crate::Error::msg)?,
            (_, Some(_)) if typ.parse::<ExportFormat>().is_ok() => return Err(format!("invalid --output {s:?}: tar= is for type=oci and type=docker").into()),
            _ => return Err(format!("invalid --output {s:?}: unknown type {typ:?}; {usage}").into()),
        };
        let tarball = matches!(format, ExportFormat::OciArchive | ExportFormat::DockerArchive | ExportFormat::Tar);
        if dest.as_os_str() == "-" && !tarball {
            return Err(format!("invalid --output {s:?}: only a tarball (type=oci, docker or tar) can go to stdout (dest=-)").into());
        }
        Ok(Output { format, dest })
    }

    /// Writes to stdout.
    pub fn to_stdout(&self) -> bool {
        self.dest.as_os_str() == "-"
    }
}

/// Everything `build` takes.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    pub store: PathBuf,
    pub context: PathBuf,
    /// `-f`; default `CONTEXT/Dockerfile`.
    pub dockerfile: Option<PathBuf>,
    pub tags: Vec<String>,
    pub build_args: Vec<String>,
    pub target: Option<String>,
    pub no_cache: bool,
    pub outputs: Vec<Output>,
    pub progress: Mode,
    /// Default network of RUN (`RUN --network` overrides).
    pub network: NetworkMode,
    pub compression: Compression,
    pub secrets: Vec<String>,
    /// The OCI runtime; default `berth` beside this binary.
    pub runtime: Option<PathBuf>,
    /// The shim; default `berth-shim` beside this binary.
    pub shim: Option<PathBuf>,
    /// Write the image id here.
    pub iidfile: Option<PathBuf>,
    /// How base images not in the store are pulled.
    pub remote: crate::remote::RemoteOptions,
    /// The other docker/buildx flags (see [`extras`]).
    pub extra: extras::ExtraOptions,
}

/// A layer of a stage.
#[derive(Debug, Clone)]
pub struct LayerRef {
    pub diff_id: Digest,
    pub blob: Descriptor,
    /// The unpacked dir in the store (an overlay lowerdir).
    pub dir: PathBuf,
}

/// A built stage.
#[derive(Debug, Clone)]
pub struct StageResult {
    pub layers: Vec<LayerRef>,
    /// The full image config (history and rootfs included).
    pub config: ImageConfig,
}

impl StageResult {
    pub fn diff_ids(&self) -> Vec<Digest> {
        self.layers.iter().map(|l| l.diff_id.clone()).collect()
    }
    /// Bottom first.
    pub fn lowers(&self) -> Vec<PathBuf> {
        self.layers.iter().map(|l| l.dir.clone()).collect()
    }
}

/// What a build made.
#[derive(Debug, Clone)]
pub struct Built {
    /// The manifest digest (the image id).
    pub id: Digest,
    /// The normalized names tagged.
    pub names: Vec<String>,
    /// The cache keys of every filesystem step (what `--cache-to` exports).
    pub cache_keys: Vec<Digest>,
}

/// The state shared by the stages of one build.
pub struct Builder {
    pub opts: BuildOptions,
    pub store: Store,
    pub context: Context,
    pub progress: Progress,
    pub tools: Tools,
    pub links: LinkDir,
    /// Per-build dir in the store's tmp/ (runtime state, per-step dirs).
    pub work: PathBuf,
    pub secrets: BTreeMap<String, SecretSource>,
    pub results: Vec<Option<StageResult>>,
    pub seq: usize,
    /// Several stages are built: step labels carry the stage name.
    pub multi: bool,
    pub compression: Compression,
    /// The cache keys of the steps so far, hits and misses.
    pub cache_keys: Vec<Digest>,
    /// SOURCE_DATE_EPOCH (see [`times`]).
    pub epoch: Option<i64>,
    /// The diff_ids of the layers of base images (kept as they are at export).
    pub base_layers: std::collections::HashSet<Digest>,
}

pub(crate) fn beside_exe(name: &str) -> PathBuf {
    std::env::current_exe().ok().and_then(|p| p.parent().map(|d| d.join(name))).unwrap_or_else(|| PathBuf::from(name))
}

/// Reads the Dockerfile: `-f FILE` (`-` is stdin), else `CONTEXT/Dockerfile`.
fn read_dockerfile(opts: &BuildOptions) -> crate::Result<(String, String, Option<PathBuf>)> {
    match &opts.dockerfile {
        Some(p) if p.as_os_str() == "-" => {
            let mut s = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut s).context("reading the Dockerfile from stdin")?;
            Ok((s, "Dockerfile".into(), None))
        }
        p => {
            let path = p.clone().unwrap_or_else(|| opts.context.join("Dockerfile"));
            let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read Dockerfile {}", path.display()))?;
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "Dockerfile".into());
            Ok((text, name, Some(path)))
        }
    }
}

/// Runs a build. An error at a Dockerfile line carries that line and the excerpt of
/// the Dockerfile around it.
pub fn build(opts: &BuildOptions) -> crate::Result<Built> {
    // Before anything: a platform this host cannot run is refused.
    let target_platform = platform::target(opts.remote.platform.as_deref())?;
    let (text, file, path) = read_dockerfile(opts)?;
    build_from(opts, &text, &file, path.as_deref(), &target_platform).map_err(|e| e.with_excerpt(&text))
}

fn build_from(opts: &BuildOptions, text: &str, file: &str, path: Option<&Path>, target_platform: &crate::registry::Platform) -> crate::Result<Built> {
    let df: Dockerfile = dockerfile::parse(text, file)?;
    let progress = match &opts.extra.quiet_log {
        Some(log) => Progress::with_writer(Mode::Plain, Box::new(log.clone())),
        None => Progress::new(opts.progress),
    };
    for w in &df.warnings {
        progress.message(&format!("[warning] {}:{}: {}", df.file, w.line, w.message));
    }
    let store = Store::open(&opts.store)?;
    let _lease = store.lease()?;
    // What killed builds left: their temp dirs, and their containers' cgroups.
    match store.reclaim_temp(false) {
        Ok(r) if r.entries > 0 => progress.message(&format!(
            "[info] removed what interrupted builds left in the store: {} temp entries, {} containers, {}",
            r.entries,
            r.containers,
            crate::progress::human_size(r.bytes)
        )),
        Ok(_) => {}
        Err(e) => progress.message(&format!("[warning] cleaning the store's tmp/: {e}")),
    }
    let context = open_context(opts, path)?;

    let host = berth_spec::image::host_platform();
    let platform = dockerfile::Platform { os: host.os.clone(), arch: host.architecture.clone(), variant: host.variant.clone().unwrap_or_default() };
    let build_args = BuildArgs::from_flags(&opts.build_args, &|k| std::env::var(k).ok()).with_platforms(platform.clone(), platform);
    let globals = build_args.global_scope(&df)?;
    let needed = if opts.extra.contexts.is_empty() {
        df.stages_needed_with(opts.target.as_deref(), &build_args)?
    } else {
        extras::stages_needed(&df, opts.target.as_deref(), &globals, &opts.extra.contexts)?
    };
    let epoch = times::source_date_epoch(&build_args)?;
    let mut unused = build_args.unused_in(&df, &needed);
    // Like BuildKit: the build arg sets the build's epoch, declared or not.
    unused.retain(|k| k != times::ARG);
    if !unused.is_empty() {
        progress.message(&format!("[warning] one or more build args were not consumed: {}", unused.join(", ")));
    }
    let mut secrets = BTreeMap::new();
    for s in &opts.secrets {
        let (id, src) = crate::exec::mounts::parse_secret(s)?;
        secrets.insert(id, src);
    }

    let work: TempDir = store.temp_dir("build")?;
    crate::cleanup::add_dir(work.path());
    let links = LinkDir::new(&work.path().join("l")).context("temp dir")?;
    let runtime = opts.runtime.clone().unwrap_or_else(|| beside_exe("berth"));
    let runtime = std::path::absolute(&runtime).unwrap_or(runtime);
    // For whoever cleans up after this build if it is killed (Store::reclaim_temp).
    let runtime_file = work.path().join(crate::store::RUNTIME_FILE);
    std::fs::write(&runtime_file, runtime.as_os_str().as_encoded_bytes()).with_context(|| format!("write {}", runtime_file.display()))?;
    let tools = Tools { runtime, shim: opts.shim.clone().unwrap_or_else(|| beside_exe("berth-shim")), state: work.path().join(crate::store::STATE_DIR) };
    let mut b = Builder {
        opts: opts.clone(),
        store,
        context,
        progress,
        tools,
        links,
        work: work.path().to_path_buf(),
        secrets,
        results: vec![None; df.stages.len()],
        seq: 0,
        multi: needed.len() > 1,
        compression: opts.compression,
        cache_keys: Vec::new(),
        epoch,
        base_layers: Default::default(),
    };
    let result = (|| -> crate::Result<Built> {
        platform::check_stages(&b, &df, &globals, &needed, target_platform)?;
        for &i in &needed {
            let r = stage::build_stage(&mut b, &df, &build_args, &globals, i)?;
            b.results[i] = Some(r);
        }
        let target = *needed.last().expect("at least the target stage");
        let mut r = b.results[target].clone().expect("built");
        r.layers = times::clamp_layers(&b, &r.layers)?;
        image::finish(&b, &r)
    })();
    drop(work);
    crate::cleanup::remove_dir(&b.work);
    result
}

/// The context with its ignore patterns: `--ignorefile`, else `<Dockerfile>.dockerignore`
/// beside the Dockerfile, else the context's `.dockerignore`.
fn open_context(opts: &BuildOptions, dockerfile: Option<&Path>) -> crate::Result<Context> {
    if let Some(f) = &opts.extra.ignorefile {
        let what = || format!("--ignorefile {}", f.display());
        let text = std::fs::read_to_string(f).with_context(what)?;
        let m = crate::context::PatternMatcher::new(&crate::context::read_patterns(&text)).with_context(what)?;
        return Context::open(&opts.context, m);
    }
    // `-f` is relative to the working directory, not to the context.
    let dockerfile = dockerfile.map(|p| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf()));
    Context::open_with_dockerignore(&opts.context, dockerfile.as_deref())
}

pub(crate) fn is_empty_dir(p: &Path) -> bool {
    std::fs::read_dir(p).map(|mut r| r.next().is_none()).unwrap_or(true)
}
