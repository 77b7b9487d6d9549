//! RUN, COPY, ADD and WORKDIR as filesystem steps: each computes its cache key from what
//! it reads, then hands [`super::step::run`] the operation to perform on a miss. RUN is in
//! [`super::run_op`], COPY/ADD in [`super::copy_op`]; WORKDIR (a mkdir) is here.

use crate::error::Context as _;
use std::path::{Path, PathBuf};

use berth_spec::image::Digest;

use super::stage::{image_layers, StageState};
use super::step::{self, Mode, StepEnv};
use super::Builder;
use crate::cache::{content_key, KeyBuilder};
use crate::dockerfile::{Dockerfile, Env, Instr, Instruction, StageArgs};
use crate::exec::Stubs;

pub fn fs_instruction(b: &mut Builder, df: &Dockerfile, st: &mut StageState, args: &StageArgs, ins: &Instruction, env: &dyn Env) -> crate::Result<()> {
    let r = match &ins.kind {
        Instr::Run(_) => super::run_op::run(b, df, st, args, ins, env),
        Instr::Copy(_) | Instr::Add(_) => super::copy_op::copy_or_add(b, df, st, ins, env),
        Instr::Workdir(w) => {
            let new = w.resolve(&df.lexer(), env, &st.meta.workdir()).map_err(crate::Error::from);
            match new {
                Ok(new) => {
                    st.meta.config.working_dir = Some(new.clone());
                    let key = KeyBuilder::new("WORKDIR", &content_key(&st.diff_ids())).field("path", &new).finish();
                    let shown = format!("WORKDIR {new}");
                    let mut op = |_: &mut Builder, e: &StepEnv| -> crate::Result<Option<Stubs>> {
                        let p = crate::rootfs::secure_join(e.root, &new, true)?;
                        crate::rootfs::mkdir_all(e.root, &p, None).with_context(|| format!("mkdir {new}"))?;
                        Ok(None)
                    };
                    step::run(b, st, &shown, key, &shown, Mode::Overlay, &mut op)
                }
                Err(e) => Err(e),
            }
        }
        _ => unreachable!("not a filesystem instruction"),
    };
    // The instruction names its line once; errors from below carry none.
    r.map_err(|e| e.at_lines(&df.file, ins.line, ins.end_line))
}

/// Shortened for the progress line.
pub(super) fn one_line(s: &str) -> String {
    let first = s.lines().next().unwrap_or("");
    let mut t: String = first.chars().take(120).collect();
    if t.len() < first.len() || s.lines().count() > 1 {
        t.push_str(" ...");
    }
    t
}

/// The layers (diff_ids, dirs) of a `--from` / `from=` source: a stage before `index`
/// (by name or number), else a stored image.
pub(super) fn source_layers(b: &Builder, df: &Dockerfile, st: &StageState, from: &str) -> crate::Result<(Vec<Digest>, Vec<PathBuf>)> {
    source_layers_b(b, df, st.index, from)
}

/// What a `--from` source is, for errors: `stage build` or `image busybox`.
pub(super) fn source_label(df: &Dockerfile, index: usize, from: &str) -> String {
    match source_stage(df, index, from) {
        Some(i) => format!("stage {}", df.stages[i].name.as_deref().map_or_else(|| i.to_string(), str::to_string)),
        None => format!("image {from}"),
    }
}

/// The stage before `index` that a `--from` names (by name or number).
fn source_stage(df: &Dockerfile, index: usize, from: &str) -> Option<usize> {
    let lower = from.to_ascii_lowercase();
    df.stages[..index].iter().position(|s| s.name.as_deref() == Some(lower.as_str())).or_else(|| from.parse::<usize>().ok().filter(|&i| i < index))
}

pub(super) fn source_layers_b(b: &Builder, df: &Dockerfile, index: usize, from: &str) -> crate::Result<(Vec<Digest>, Vec<PathBuf>)> {
    // A named build context first: it replaces a stage or image of its name.
    match b.opts.extra.contexts.get(&from.to_ascii_lowercase()) {
        Some(super::extras::NamedContext::Image(r)) => {
            let (layers, _) = image_layers(b, r)?;
            return Ok((layers.iter().map(|l| l.diff_id.clone()).collect(), layers.iter().map(|l| l.dir.clone()).collect()));
        }
        Some(super::extras::NamedContext::Dir(d)) => return Ok((vec![super::extras::dir_content_key(d)?], vec![d.clone()])),
        None => {}
    }
    if let Some(i) = source_stage(df, index, from) {
        let r = b.results[i].as_ref().ok_or_else(|| format!("stage {from} was not built"))?;
        return Ok((r.diff_ids(), r.lowers()));
    }
    let (layers, _) = image_layers(b, from)?;
    Ok((layers.iter().map(|l| l.diff_id.clone()).collect(), layers.iter().map(|l| l.dir.clone()).collect()))
}

impl Builder {
    /// The short per-build directory (attach sockets live there).
    pub fn links_dir(&self) -> &Path {
        self.links.path()
    }

    /// What tells this build's containers from other builds': the random part of its
    /// work dir's name (a pid would not do, the builder is PID 1 of its namespace, and
    /// the cgroups are named after the container ids).
    pub fn work_id(&self) -> &str {
        self.work.file_name().and_then(|n| n.to_str()).and_then(|n| n.rsplit_once('.')).map(|(_, r)| r).unwrap_or("0")
    }
}
