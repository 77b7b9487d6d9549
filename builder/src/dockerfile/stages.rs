//! Which stages a build needs: the target and what it depends on through
//! `FROM <stage>`, `COPY --from=<stage name|index>` and `RUN --mount=from=<stage>`.

use std::collections::BTreeSet;

use super::args::BuildArgs;
use super::expand::Env;
use super::words::suggest;
use super::{Dockerfile, Error, Instr, Result};

/// Why one stage depends on another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageDep {
    /// The stage depended on.
    pub stage: usize,
    /// Line of the FROM/COPY/RUN that makes the dependency.
    pub line: usize,
}

impl Dockerfile {
    /// The index of the `--target` stage (by name, case-insensitive), or of the last
    /// stage when there is no target.
    pub fn target_index(&self, target: Option<&str>) -> Result<usize> {
        let Some(t) = target.filter(|t| !t.is_empty()) else {
            return Ok(self.stages.len() - 1);
        };
        let lower = t.to_ascii_lowercase();
        if let Some(i) = self.stages.iter().position(|s| s.name.as_deref() == Some(lower.as_str())) {
            return Ok(i);
        }
        let hint = suggest(t, self.stages.iter().filter_map(|s| s.name.as_deref())).map(|s| format!(" (did you mean {s}?)")).unwrap_or_default();
        Err(Error::at_line(&self.file, 0, format!("target stage {t:?} could not be found{hint}")))
    }

    /// The stages a stage uses directly, given the global args for its FROM line.
    pub fn stage_deps(&self, index: usize, global_args: &dyn Env) -> Result<Vec<StageDep>> {
        let stage = &self.stages[index];
        let lex = self.lexer();
        let mut deps = Vec::new();
        let base = stage.from_instr().expand_image(&lex, global_args).map_err(|e| self.error_at(stage.line, e))?;
        let lower = base.to_ascii_lowercase();
        if let Some(i) = self.stages[..index].iter().position(|s| s.name.as_deref() == Some(lower.as_str())) {
            deps.push(StageDep { stage: i, line: stage.line });
        }
        for ins in &stage.instructions {
            match &ins.kind {
                Instr::Copy(c) => {
                    let Some(from) = c.from.as_deref() else { continue };
                    let found = match from.parse::<usize>() {
                        Ok(i) if i >= self.stages.len() => {
                            return Err(self.error_at(ins.line, format!("invalid stage index {i}")));
                        }
                        Ok(i) => Some(i),
                        Err(_) => self.find_named(from),
                    };
                    if let Some(i) = found {
                        if i >= index {
                            return Err(self.error_at(
                                ins.line,
                                format!("cannot copy from stage {from:?}, it needs to be defined before current stage {:?}", stage.display_name()),
                            ));
                        }
                        deps.push(StageDep { stage: i, line: ins.line });
                    }
                }
                Instr::Run(r) => {
                    for m in &r.mounts {
                        let Some(from) = m.from.as_deref() else { continue };
                        if let Some(i) = self.find_named(from) {
                            if i >= index {
                                return Err(self.error_at(
                                    ins.line,
                                    format!(
                                        "cannot mount from stage {from:?} to {:?}, stage needs to be defined before current command",
                                        m.target.as_deref().unwrap_or("")
                                    ),
                                ));
                            }
                            deps.push(StageDep { stage: i, line: ins.line });
                        }
                    }
                }
                _ => {}
            }
        }
        Ok(deps)
    }

    fn find_named(&self, name: &str) -> Option<usize> {
        let lower = name.to_ascii_lowercase();
        self.stages.iter().position(|s| s.name.as_deref() == Some(lower.as_str()))
    }

    /// The stages to build for `target` (the last stage when `None`): the target
    /// and everything it depends on, in build order (dependencies first). FROM
    /// lines are expanded with the global ARG defaults; use
    /// [`Dockerfile::stages_needed_with`] to take `--build-arg` values into account.
    pub fn stages_needed(&self, target: Option<&str>) -> Result<Vec<usize>> {
        self.stages_needed_with(target, &BuildArgs::default())
    }

    /// [`Dockerfile::stages_needed`] with `--build-arg` values for the FROM lines.
    pub fn stages_needed_with(&self, target: Option<&str>, build_args: &BuildArgs) -> Result<Vec<usize>> {
        let t = self.target_index(target)?;
        let globals = build_args.global_scope(self)?;
        let mut needed = BTreeSet::new();
        let mut todo = vec![t];
        while let Some(i) = todo.pop() {
            if !needed.insert(i) {
                continue;
            }
            for d in self.stage_deps(i, &globals)? {
                todo.push(d.stage);
            }
        }
        // Every dependency is an earlier stage, so file order is a build order.
        Ok(needed.into_iter().collect())
    }
}
