//! The Dockerfile front end: [`parse`] text into typed, line-numbered instructions
//! grouped in stages; [`expand`] for variable substitution; [`args`] for ARG
//! scoping and build args; [`Dockerfile::stages_needed`] for `--target`.
//!
//! ```
//! use berth_build::dockerfile;
//! let df = dockerfile::parse("FROM alpine AS base\nRUN echo hi\n", "Dockerfile").unwrap();
//! assert_eq!(df.stages[0].name.as_deref(), Some("base"));
//! ```

pub mod args;
pub mod directives;
pub mod expand;
mod flags;
pub mod heredoc;
pub mod instructions;
pub mod mount;
mod parser;
mod stages;
mod words;

use std::fmt;

pub use args::{ArgScope, BuildArgs, Platform, StageArgs};
pub use directives::{CheckDirective, Directive, Directives};
pub use expand::{expand, Env, ExpandError, Expansion, Layered, Lexer, NoEnv};
pub use heredoc::Heredoc;
pub use instructions::*;
pub use mount::{MountSpec, MountType, Sharing};
pub use parser::Warning;

/// Dockerfile errors are the crate's [`Error`], located at their line
/// (`Dockerfile:12: unknown instruction: FOOBAR`, or `Dockerfile: message`).
pub use crate::error::{Error, Result};

/// One build stage: `FROM ...` and the instructions up to the next FROM.
#[derive(Debug, Clone, PartialEq)]
pub struct Stage {
    /// Position in the file (0-based); `COPY --from=<index>` refers to it.
    pub index: usize,
    /// `AS name`, lower-cased.
    pub name: Option<String>,
    /// Base image or earlier stage name, unexpanded (global ARGs apply).
    pub base: String,
    /// `--platform`, unexpanded.
    pub platform: Option<String>,
    /// Line of the FROM.
    pub line: usize,
    /// The FROM line as written.
    pub original: String,
    /// Instructions after the FROM (never FROM).
    pub instructions: Vec<Instruction>,
}

impl Stage {
    /// `name`, or `stage-N` as BuildKit calls unnamed stages.
    pub fn display_name(&self) -> String {
        self.name.clone().unwrap_or_else(|| format!("stage-{}", self.index))
    }
    /// The FROM as a typed instruction.
    pub fn from_instr(&self) -> FromInstr {
        FromInstr { image: self.base.clone(), name: self.name.clone(), platform: self.platform.clone() }
    }
    /// The ARG instructions of this stage, in order.
    pub fn args(&self) -> impl Iterator<Item = &ArgInstr> {
        self.instructions.iter().filter_map(|i| match &i.kind {
            Instr::Arg(a) => Some(a),
            _ => None,
        })
    }
}

/// A parsed Dockerfile.
#[derive(Debug, Clone, PartialEq)]
pub struct Dockerfile {
    /// The name used in error messages (`Dockerfile`).
    pub file: String,
    pub directives: Directives,
    /// `\` or `` ` `` (from `# escape=`).
    pub escape: char,
    /// ARGs before the first FROM (usable in FROM lines).
    pub global_args: Vec<ArgInstr>,
    pub stages: Vec<Stage>,
    /// Non-fatal findings (empty continuation lines).
    pub warnings: Vec<Warning>,
}

impl Dockerfile {
    /// The word processor for this file (its escape character).
    pub fn lexer(&self) -> Lexer {
        Lexer::new(self.escape)
    }

    /// An error at a line of this file (for errors found while planning, e.g. an
    /// [`ExpandError`] from an instruction's helper).
    pub fn error_at(&self, line: usize, message: impl fmt::Display) -> Error {
        Error::at_line(&self.file, line, message)
    }

    /// The stage with this name (case-insensitive), or with this index.
    pub fn find_stage(&self, name_or_index: &str) -> Option<usize> {
        let lower = name_or_index.to_ascii_lowercase();
        if let Some(i) = self.stages.iter().position(|s| s.name.as_deref() == Some(lower.as_str())) {
            return Some(i);
        }
        name_or_index.parse::<usize>().ok().filter(|&i| i < self.stages.len())
    }
}

/// Parse a Dockerfile. `file` names it in errors (`Dockerfile:3: ...`).
pub fn parse(text: &str, file: &str) -> Result<Dockerfile> {
    let scanned = parser::scan(text).map_err(|(line, e)| e.at(file, line))?;
    let escape = scanned.escape;
    let mut global_args = Vec::new();
    let mut stages: Vec<Stage> = Vec::new();
    for node in &scanned.nodes {
        let err = |e: Error| e.at_lines(file, node.start_line, node.end_line);
        let mut kind = instructions::parse_node(node, escape).map_err(err)?;
        if let Instr::Arg(a) = &mut kind {
            a.line = node.start_line;
        }
        if let Instr::Onbuild(o) = &mut kind {
            if let Instr::Arg(a) = o.trigger.as_mut() {
                a.line = node.start_line;
            }
        }
        match kind {
            Instr::From(f) => {
                if let Some(name) = &f.name {
                    if stages.iter().any(|s| s.name.as_deref() == Some(name.as_str())) {
                        return Err(err(format!("duplicate stage name {name:?}").into()));
                    }
                }
                stages.push(Stage {
                    index: stages.len(),
                    name: f.name,
                    base: f.image,
                    platform: f.platform,
                    line: node.start_line,
                    original: node.original.trim().to_string(),
                    instructions: Vec::new(),
                });
            }
            Instr::Arg(a) if stages.is_empty() => global_args.push(a),
            kind => {
                let Some(stage) = stages.last_mut() else {
                    return Err(err(format!("no build stage in current context: {} must come after FROM", kind.keyword()).into()));
                };
                stage.instructions.push(Instruction { line: node.start_line, end_line: node.end_line, original: node.original.trim().to_string(), kind });
            }
        }
    }
    if scanned.nodes.is_empty() {
        return Err(Error::at_line(file, 0, "file with no instructions"));
    }
    if stages.is_empty() {
        return Err(Error::at_line(file, 0, "dockerfile contains no stages to build"));
    }
    Ok(Dockerfile { file: file.to_string(), directives: scanned.directives, escape, global_args, stages, warnings: scanned.warnings })
}

#[cfg(test)]
mod tests;
