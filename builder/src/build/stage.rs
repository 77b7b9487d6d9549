//! One stage: its base, the base's ONBUILD triggers, its instructions.

use berth_spec::image::{host_platform, History, ImageConfig};

use super::meta::{self, MetaState};
use super::{ops, Builder, LayerRef, StageResult};
use crate::dockerfile::{self, ArgScope, BuildArgs, Dockerfile, Instr, Instruction, StageArgs};

/// A stage being built.
pub struct StageState {
    pub meta: MetaState,
    pub layers: Vec<LayerRef>,
    pub history: Vec<History>,
    /// The base's config (architecture, os, variant are kept).
    pub base: ImageConfig,
    /// Index of the stage (for `--from` checks).
    pub index: usize,
    /// Label parts: stage name, and the number of steps shown.
    pub name: String,
    pub total: usize,
    pub done: usize,
}

impl StageState {
    pub fn diff_ids(&self) -> Vec<berth_spec::image::Digest> {
        self.layers.iter().map(|l| l.diff_id.clone()).collect()
    }
    pub fn lowers(&self) -> Vec<std::path::PathBuf> {
        self.layers.iter().map(|l| l.dir.clone()).collect()
    }

    /// The stage's config as an image config.
    pub fn to_config(&self) -> ImageConfig {
        let mut c = self.base.clone();
        c.config = Some(self.meta.config.clone());
        c.author = self.meta.author.clone();
        c.rootfs.diff_ids = self.diff_ids();
        c.history = self.history.clone();
        c
    }

    /// The next step label: `[2/5]` or `[build 2/5]`.
    pub fn label(&mut self, multi: bool) -> String {
        self.done += 1;
        if multi {
            format!("[{} {}/{}]", self.name, self.done, self.total)
        } else {
            format!("[{}/{}]", self.done, self.total)
        }
    }
}

/// The environment variables expand with: the stage's ARGs, then its Env (Env wins).
pub fn expand_env(meta: &MetaState, args: &StageArgs) -> Vec<(String, String)> {
    let mut v = args.values();
    for kv in &meta.config.env {
        let (k, val) = kv.split_once('=').unwrap_or((kv.as_str(), ""));
        v.push((k.to_string(), val.to_string()));
    }
    v
}

fn is_fs_step(i: &Instr) -> bool {
    matches!(i, Instr::Run(_) | Instr::Copy(_) | Instr::Add(_) | Instr::Workdir(_))
}

pub fn build_stage(b: &mut Builder, df: &Dockerfile, build_args: &BuildArgs, globals: &ArgScope, index: usize) -> Result<StageResult, String> {
    let stage = &df.stages[index];
    let lex = df.lexer();
    let at = |line: usize, msg: &dyn std::fmt::Display| format!("{}:{line}: {msg}", df.file);
    let base_name = stage.from_instr().expand_image(&lex, globals).map_err(|e| at(stage.line, &e))?;
    let total = 1 + stage.instructions.iter().filter(|i| is_fs_step(&i.kind)).count();
    let mut st = StageState {
        meta: MetaState::default(),
        layers: Vec::new(),
        history: Vec::new(),
        base: ImageConfig::default(),
        index,
        name: stage.display_name(),
        total,
        done: 0,
    };
    let label = st.label(b.multi);
    let id = b.progress.start(&format!("{label} FROM {base_name}"));
    match resolve_base(b, df, &base_name, index) {
        Ok((layers, config)) => {
            st.meta.config = config.container_config();
            st.meta.author = config.author.clone();
            st.history = config.history.clone();
            st.layers = layers;
            st.base = config;
            b.progress.done(id, None);
        }
        Err(e) => {
            b.progress.error(id, &e);
            return Err(at(stage.line, &e));
        }
    }
    let mut args = build_args.stage_args(df, globals);

    // The base's ONBUILD triggers run first; the new image does not inherit them.
    let triggers = st.meta.config.on_build.take().unwrap_or_default();
    for t in triggers {
        let tdf = dockerfile::parse(&format!("FROM scratch\n{t}\n"), "ONBUILD").map_err(|e| at(stage.line, &format!("ONBUILD trigger {t:?}: {e}")))?;
        for ins in &tdf.stages[0].instructions {
            let ins = Instruction { line: stage.line, ..ins.clone() };
            if is_fs_step(&ins.kind) {
                st.total += 1;
            }
            instruction(b, df, &mut st, &mut args, &ins)?;
        }
    }
    for ins in &stage.instructions {
        instruction(b, df, &mut st, &mut args, ins)?;
    }
    Ok(StageResult { layers: st.layers.clone(), config: st.to_config() })
}

fn instruction(b: &mut Builder, df: &Dockerfile, st: &mut StageState, args: &mut StageArgs, ins: &Instruction) -> Result<(), String> {
    let lex = df.lexer();
    let at = |msg: &dyn std::fmt::Display| format!("{}:{}: {msg}", df.file, ins.line);
    let env = expand_env(&st.meta, args);
    match &ins.kind {
        Instr::Arg(a) => {
            args.declare(a, &env).map_err(|e| e.to_string())?;
            Ok(())
        }
        Instr::Run(_) | Instr::Copy(_) | Instr::Add(_) | Instr::Workdir(_) => ops::fs_instruction(b, df, st, args, ins, &env),
        Instr::From(_) => Err(at(&"FROM inside a stage")),
        kind => {
            let created_by = meta::apply(&mut st.meta, kind, &lex, &env).map_err(|e| at(&e))?;
            if let Some(c) = created_by {
                st.history.push(History {
                    created: Some(crate::store::now_rfc3339()),
                    created_by: Some(c),
                    author: None,
                    comment: Some("berth-build".into()),
                    empty_layer: true,
                });
            }
            Ok(())
        }
    }
}

/// The base of a stage: `scratch`, an earlier stage, or an image in the store.
fn resolve_base(b: &Builder, df: &Dockerfile, name: &str, index: usize) -> Result<(Vec<LayerRef>, ImageConfig), String> {
    if name.eq_ignore_ascii_case("scratch") {
        let p = host_platform();
        let cfg = ImageConfig { architecture: p.architecture, os: p.os, variant: p.variant, ..Default::default() };
        return Ok((Vec::new(), cfg));
    }
    let lower = name.to_ascii_lowercase();
    if let Some(i) = df.stages[..index].iter().position(|s| s.name.as_deref() == Some(lower.as_str())) {
        let r = b.results[i].as_ref().ok_or_else(|| format!("stage {name} was not built"))?;
        return Ok((r.layers.clone(), r.config.clone()));
    }
    image_layers(b, name)
}

/// The layers (bottom first, unpacked) and config of an image: the store's, else
/// pulled from its registry (and tagged in the store, so the next build finds it).
pub fn image_layers(b: &Builder, name: &str) -> Result<(Vec<LayerRef>, ImageConfig), String> {
    let progress = b.progress.clone();
    let cb = move |p: &crate::registry::Progress| {
        if let Some(line) = crate::remote::describe("pulled", p) {
            progress.message(&line);
        }
    };
    let id = crate::remote::pull::local_or_pull(&b.store, name, &b.opts.remote, Some(&cb))
        .map_err(|e| format!("base image {name:?} is not in the store {}, and {e}", b.store.root().display()))?;
    let img = b.store.inspect(id.as_str()).map_err(|e| e.to_string())?;
    let mut dirs = b.store.image_lowerdirs(&img).map_err(|e| e.to_string())?;
    dirs.reverse();
    let layers = img
        .manifest
        .layers
        .iter()
        .zip(&img.config.rootfs.diff_ids)
        .zip(dirs)
        .map(|((blob, id), dir)| LayerRef { diff_id: id.clone(), blob: blob.clone(), dir })
        .collect();
    Ok((layers, img.config))
}
