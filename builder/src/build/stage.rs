//! One stage: its base, the base's ONBUILD triggers, its instructions.

use std::sync::Arc;

use crate::Error;
use berth_spec::image::{host_platform, History, ImageConfig};

use super::meta::{self, MetaState};
use super::{ops, times, Builder, LayerRef, StageResult};
use crate::dockerfile::{self, ArgScope, BuildArgs, Dockerfile, Instr, Instruction, Layered, StageArgs};

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
        c.config = Some(self.meta.to_container_config());
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

fn is_fs_step(i: &Instr) -> bool {
    matches!(i, Instr::Run(_) | Instr::Copy(_) | Instr::Add(_) | Instr::Workdir(_))
}

pub fn build_stage(b: &mut Builder, df: &Dockerfile, build_args: &BuildArgs, globals: &ArgScope, index: usize) -> crate::Result<StageResult> {
    let stage = &df.stages[index];
    let lex = df.lexer();
    let base_name = stage.from_instr().expand_image(&lex, globals).map_err(|e| Error::from(e).at(&df.file, stage.line))?;
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
            st.meta = MetaState::new(config.container_config(), config.author.clone());
            st.history = config.history.clone();
            st.layers = layers;
            st.base = config;
            b.progress.done(id, None);
        }
        Err(e) => {
            b.progress.error(id, &e);
            return Err(e.at(&df.file, stage.line));
        }
    }
    let mut args = build_args.stage_args(df, globals);

    // The base's ONBUILD triggers run first; the new image does not inherit them.
    let triggers = st.meta.config.on_build.take().unwrap_or_default();
    for t in triggers {
        let tdf = dockerfile::parse(&format!("FROM scratch\n{t}\n"), "ONBUILD")
            .map_err(|e| Error::msg(format!("ONBUILD trigger {t:?}: {e}")).at(&df.file, stage.line))?;
        for ins in &tdf.stages[0].instructions {
            let ins = Instruction { line: stage.line, end_line: stage.line, ..ins.clone() };
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

fn instruction(b: &mut Builder, df: &Dockerfile, st: &mut StageState, args: &mut StageArgs, ins: &Instruction) -> crate::Result<()> {
    match &ins.kind {
        Instr::Run(_) | Instr::Copy(_) | Instr::Add(_) | Instr::Workdir(_) => {
            // Variables expand with the stage's Env over its ARGs (Env wins). The Arc is
            // shared, not copied: a filesystem step does not change the Env.
            let vars = Arc::clone(&st.meta.env);
            ops::fs_instruction(b, df, st, args, ins, &Layered(&*vars, &*args))
        }
        _ => {
            let before = st.history.len();
            config_instruction(df, &mut st.meta, &mut st.history, args, ins)?;
            let created = times::inherited(b.epoch, &st.history[..before], st.base.created.as_deref());
            for h in &mut st.history[before..] {
                h.created = created.clone();
            }
            Ok(())
        }
    }
}

/// ARG and the instructions that only change the config (ENV, LABEL, CMD, ...), each
/// in O(1) of the variables already set (see [`meta::EnvVars`]).
pub(crate) fn config_instruction(
    df: &Dockerfile,
    meta: &mut MetaState,
    history: &mut Vec<History>,
    args: &mut StageArgs,
    ins: &Instruction,
) -> crate::Result<()> {
    match &ins.kind {
        Instr::Arg(a) => {
            args.declare(a, &*meta.env)?;
            Ok(())
        }
        Instr::From(_) => Err(Error::at_line(&df.file, ins.line, "FROM inside a stage")),
        kind => {
            let created_by = meta::apply(meta, kind, &df.lexer(), &*args).map_err(|e| e.at_lines(&df.file, ins.line, ins.end_line))?;
            if let Some(c) = created_by {
                history.push(History {
                    // Set by the caller (see times.rs).
                    created: None,
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
fn resolve_base(b: &mut Builder, df: &Dockerfile, name: &str, index: usize) -> crate::Result<(Vec<LayerRef>, ImageConfig)> {
    if name.eq_ignore_ascii_case("scratch") {
        let p = host_platform();
        let cfg = ImageConfig { architecture: p.architecture, os: p.os, variant: p.variant, ..Default::default() };
        return Ok((Vec::new(), cfg));
    }
    let lower = name.to_ascii_lowercase();
    // A named build context replaces a stage or image of its name.
    match b.opts.extra.contexts.get(&lower) {
        Some(super::extras::NamedContext::Image(r)) => {
            let r = r.clone();
            let (layers, config) = image_layers(b, &r)?;
            b.base_layers.extend(layers.iter().map(|l| l.diff_id.clone()));
            return Ok((layers, config));
        }
        Some(c) => return Err(format!("FROM {name}: {} is a directory, which cannot be a base image (use docker-image://REF)", c.describe(name)).into()),
        None => {}
    }
    if let Some(i) = df.stages[..index].iter().position(|s| s.name.as_deref() == Some(lower.as_str())) {
        let r = b.results[i].as_ref().ok_or_else(|| format!("stage {name} was not built"))?;
        return Ok((r.layers.clone(), r.config.clone()));
    }
    let (layers, config) = image_layers(b, name)?;
    b.base_layers.extend(layers.iter().map(|l| l.diff_id.clone()));
    Ok((layers, config))
}

/// The layers (bottom first, unpacked) and config of an image: the store's, else
/// pulled from its registry (and tagged in the store, so the next build finds it).
pub fn image_layers(b: &Builder, name: &str) -> crate::Result<(Vec<LayerRef>, ImageConfig)> {
    let progress = b.progress.clone();
    let cb = move |p: &crate::registry::Progress| {
        if let Some(line) = crate::remote::describe("pulled", p) {
            progress.message(&line);
        }
    };
    let id = crate::remote::pull::local_or_pull(&b.store, name, &b.opts.remote, Some(&cb))
        .map_err(|e| format!("base image {name:?} is not in the store {}, and {e}", b.store.root().display()))?;
    let img = b.store.inspect(id.as_str())?;
    let mut dirs = b.store.image_lowerdirs(&img)?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alloc_count::allocations;

    /// Allocations per line of parsing `n` lines made by `line(i)` and applying them to
    /// a stage: a structural measure of the work per line (copying or rebuilding the
    /// environment on every line shows as allocations growing with `n`).
    fn allocations_per_line(n: usize, line: impl Fn(usize) -> String) -> f64 {
        let mut text = String::from("FROM scratch\n");
        for i in 0..n {
            text.push_str(&line(i));
            text.push('\n');
        }
        let before = allocations();
        let df = dockerfile::parse(&text, "Dockerfile").unwrap();
        let ba = BuildArgs::default();
        let globals = ba.global_scope(&df).unwrap();
        let mut args = ba.stage_args(&df, &globals);
        let mut meta = MetaState::default();
        let mut history = Vec::new();
        for ins in &df.stages[0].instructions {
            config_instruction(&df, &mut meta, &mut history, &mut args, ins).unwrap();
        }
        let per_line = (allocations() - before) as f64 / n as f64;
        assert_eq!(history.len() + args.values().len(), n, "every line was applied");
        per_line
    }

    #[test]
    fn env_arg_and_label_lines_cost_the_same_at_any_count() {
        // Each line refers to an earlier variable, so lookups are exercised too.
        let env = |i: usize| format!("ENV K{i}=${{K{}}}x", i / 2);
        let arg = |i: usize| format!("ARG A{i}=${{A{}}}x", i / 2);
        let label = |i: usize| format!("LABEL l{i}=v{i}");
        let (small, large) = (2_000, 16_000);
        let label_cost = allocations_per_line(large, label);
        for (what, f) in [("ENV", &env as &dyn Fn(usize) -> String), ("ARG", &arg)] {
            let a = allocations_per_line(small, f);
            let b = allocations_per_line(large, f);
            // Linear: the same per line at 8x the lines (hash map growth is amortized).
            assert!(b < a * 1.5, "{what}: {a:.1} allocations per line at {small} lines, {b:.1} at {large}");
            assert!(b < label_cost * 3.0, "{what}: {b:.1} allocations per line, LABEL {label_cost:.1}");
        }
        assert!(allocations_per_line(small, label) * 1.5 > label_cost);
    }
}
