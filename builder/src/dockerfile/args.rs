//! Build arguments and ARG scoping, as BuildKit does them:
//!
//! - the global scope holds the platform args (`BUILDPLATFORM`, `TARGETOS`, ...;
//!   linux/amd64 here unless told otherwise; a `--build-arg` overrides them) and
//!   the ARGs before the first FROM (value: the `--build-arg`, else the default
//!   expanded with the scope so far); it is what FROM lines expand with;
//! - inside a stage a variable is visible only after an `ARG` declares it: its value
//!   is the `--build-arg`, else its default (expanded with the stage's environment
//!   at that point), else the global value of the same name;
//! - the proxy args (`HTTP_PROXY` ...) are predefined: given as build args they
//!   are in RUN's environment without an ARG, and never reported unused;
//! - a build arg that no ARG (global or in a built stage) declares is unused
//!   (docker warns).

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;

use super::expand::{Env, Layered, Lexer};
use super::{ArgInstr, Dockerfile, Error, Result};

/// The predefined proxy args.
pub const PROXY_ARGS: &[&str] =
    &["HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "FTP_PROXY", "ftp_proxy", "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"];

/// The automatic platform args.
pub const PLATFORM_ARGS: &[&str] = &["BUILDPLATFORM", "BUILDOS", "BUILDARCH", "BUILDVARIANT", "TARGETPLATFORM", "TARGETOS", "TARGETARCH", "TARGETVARIANT"];

/// `os/arch[/variant]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Platform {
    pub os: String,
    pub arch: String,
    pub variant: String,
}

impl Default for Platform {
    fn default() -> Self {
        Platform { os: "linux".into(), arch: "amd64".into(), variant: String::new() }
    }
}

impl Platform {
    /// Parse `linux/arm64/v8`, `linux/amd64`, `arm64` (os defaults to linux).
    pub fn parse(s: &str) -> crate::Result<Platform> {
        let parts: Vec<&str> = s.split('/').collect();
        let p = match parts.as_slice() {
            [arch] if !arch.is_empty() => Platform { os: "linux".into(), arch: arch.to_string(), variant: String::new() },
            [os, arch] if !os.is_empty() && !arch.is_empty() => Platform { os: os.to_string(), arch: arch.to_string(), variant: String::new() },
            [os, arch, v] if !os.is_empty() && !arch.is_empty() => Platform { os: os.to_string(), arch: arch.to_string(), variant: v.to_string() },
            _ => return Err(format!("invalid platform {s:?}").into()),
        };
        Ok(p)
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.arch)?;
        if !self.variant.is_empty() {
            write!(f, "/{}", self.variant)?;
        }
        Ok(())
    }
}

/// `--build-arg` values and the build/target platforms.
#[derive(Debug, Clone, Default)]
pub struct BuildArgs {
    values: BTreeMap<String, String>,
    pub build_platform: Platform,
    pub target_platform: Platform,
    consumed: RefCell<BTreeSet<String>>,
}

impl BuildArgs {
    pub fn new<K: Into<String>, V: Into<String>>(values: impl IntoIterator<Item = (K, V)>) -> BuildArgs {
        BuildArgs { values: values.into_iter().map(|(k, v)| (k.into(), v.into())).collect(), ..Default::default() }
    }

    /// From `--build-arg` flag values: `K=V`, or `K` alone, which takes the value of
    /// `lookup(K)` (docker reads the client's environment) and is skipped if unset.
    pub fn from_flags(flags: &[String], lookup: &dyn Fn(&str) -> Option<String>) -> BuildArgs {
        let mut values = BTreeMap::new();
        for f in flags {
            match f.split_once('=') {
                Some((k, v)) => {
                    values.insert(k.to_string(), v.to_string());
                }
                None => {
                    if let Some(v) = lookup(f) {
                        values.insert(f.clone(), v);
                    }
                }
            }
        }
        BuildArgs { values, ..Default::default() }
    }

    pub fn with_platforms(mut self, build: Platform, target: Platform) -> BuildArgs {
        self.build_platform = build;
        self.target_platform = target;
        self
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    pub fn values(&self) -> &BTreeMap<String, String> {
        &self.values
    }

    /// The platform args, after `--build-arg` overrides.
    pub fn platform_args(&self) -> Vec<(String, String)> {
        let (b, t) = (&self.build_platform, &self.target_platform);
        let defaults = [
            ("BUILDPLATFORM", b.to_string()),
            ("BUILDOS", b.os.clone()),
            ("BUILDARCH", b.arch.clone()),
            ("BUILDVARIANT", b.variant.clone()),
            ("TARGETPLATFORM", t.to_string()),
            ("TARGETOS", t.os.clone()),
            ("TARGETARCH", t.arch.clone()),
            ("TARGETVARIANT", t.variant.clone()),
        ];
        defaults.into_iter().map(|(k, v)| (k.to_string(), self.values.get(k).cloned().unwrap_or(v))).collect()
    }

    /// Proxy build args that were given: in every RUN's environment without ARG,
    /// and left out of the image history.
    pub fn proxy_env(&self) -> Vec<(String, String)> {
        self.values.iter().filter(|(k, _)| PROXY_ARGS.contains(&k.as_str())).map(|(k, v)| (k.clone(), v.clone())).collect()
    }

    /// The global scope: platform args, then the ARGs before the first FROM.
    pub fn global_scope(&self, df: &Dockerfile) -> Result<ArgScope> {
        let lex = df.lexer();
        let mut scope = ArgScope::default();
        for (k, v) in self.platform_args() {
            scope.set(&k, v);
        }
        for instr in &df.global_args {
            for decl in &instr.args {
                self.consumed.borrow_mut().insert(decl.name.clone());
                let value = match self.values.get(&decl.name) {
                    Some(v) => Some(v.clone()),
                    None => match &decl.default {
                        Some(d) => Some(lex.expand_word(d, &scope).map_err(|e| Error::at_line(&df.file, instr.line, e))?),
                        None => None,
                    },
                };
                if let Some(v) = value {
                    scope.set(&decl.name, v);
                }
            }
        }
        Ok(scope)
    }

    /// A fresh ARG scope for one stage.
    pub fn stage_args<'a>(&'a self, df: &Dockerfile, globals: &'a ArgScope) -> StageArgs<'a> {
        StageArgs { build_args: self, globals, file: df.file.clone(), escape: df.escape, vars: Vec::new(), index: HashMap::new() }
    }

    /// Build args no ARG has consumed so far (through [`BuildArgs::global_scope`]
    /// and [`StageArgs::declare`]); predefined args are never reported.
    pub fn unused(&self) -> Vec<String> {
        let consumed = self.consumed.borrow();
        self.values.keys().filter(|k| !consumed.contains(*k) && !is_predefined(k)).cloned().collect()
    }

    /// Build args that no ARG declares in the global scope or in these stages
    /// (static check, without planning).
    pub fn unused_in(&self, df: &Dockerfile, stages: &[usize]) -> Vec<String> {
        let mut declared = BTreeSet::new();
        let all = df.global_args.iter().chain(stages.iter().flat_map(|&i| df.stages[i].args()));
        for a in all {
            for d in &a.args {
                declared.insert(d.name.as_str());
            }
        }
        self.values.keys().filter(|k| !declared.contains(k.as_str()) && !is_predefined(k)).cloned().collect()
    }
}

fn is_predefined(k: &str) -> bool {
    PROXY_ARGS.contains(&k) || PLATFORM_ARGS.contains(&k)
}

/// Variables in scope, in declaration order (re-declaring replaces in place), indexed
/// by name: an ARG costs O(1), not a scan of every ARG before it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ArgScope {
    vars: Vec<(String, String)>,
    index: HashMap<String, usize>,
}

impl ArgScope {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.index.get(name).map(|&i| self.vars[i].1.as_str())
    }
    pub fn set(&mut self, name: &str, value: String) {
        match self.index.get(name) {
            Some(&i) => self.vars[i].1 = value,
            None => {
                self.index.insert(name.to_string(), self.vars.len());
                self.vars.push((name.to_string(), value));
            }
        }
    }
    pub fn vars(&self) -> &[(String, String)] {
        &self.vars
    }
}

impl Env for ArgScope {
    fn get_var(&self, name: &str) -> Option<String> {
        self.get(name).map(str::to_string)
    }
}

/// ARG state inside one stage.
#[derive(Debug)]
pub struct StageArgs<'a> {
    build_args: &'a BuildArgs,
    globals: &'a ArgScope,
    file: String,
    escape: char,
    vars: Vec<(String, Option<String>)>,
    /// Name -> position in `vars`.
    index: HashMap<String, usize>,
}

impl StageArgs<'_> {
    /// Process one ARG instruction. `env` is the stage's image environment at this
    /// point (image ENV and ENV instructions); defaults expand with it over the ARGs
    /// declared so far. Returns each declared name with its value (`None`: declared
    /// without value; it expands to empty and is not set in RUN's environment).
    pub fn declare(&mut self, arg: &ArgInstr, env: &dyn Env) -> Result<Vec<(String, Option<String>)>> {
        let lex = Lexer::new(self.escape);
        let mut out = Vec::new();
        for decl in &arg.args {
            self.build_args.consumed.borrow_mut().insert(decl.name.clone());
            let value = if let Some(v) = self.build_args.values.get(&decl.name) {
                Some(v.clone())
            } else if let Some(d) = &decl.default {
                Some(lex.expand_word(d, &Layered(env, &*self)).map_err(|e| Error::at_line(&self.file, arg.line, e))?)
            } else {
                self.globals.get(&decl.name).map(str::to_string)
            };
            match self.index.get(&decl.name) {
                Some(&i) => self.vars[i].1 = value.clone(),
                None => {
                    self.index.insert(decl.name.clone(), self.vars.len());
                    self.vars.push((decl.name.clone(), value.clone()));
                }
            }
            out.push((decl.name.clone(), value));
        }
        Ok(out)
    }

    /// The ARGs declared so far with a value, in declaration order (RUN's
    /// environment gets them besides the image's ENV).
    pub fn values(&self) -> Vec<(String, String)> {
        self.vars.iter().filter_map(|(k, v)| v.clone().map(|v| (k.clone(), v))).collect()
    }

    /// Whether `name` was declared in this stage.
    pub fn is_declared(&self, name: &str) -> bool {
        self.index.contains_key(name)
    }
}

impl Env for StageArgs<'_> {
    fn get_var(&self, name: &str) -> Option<String> {
        self.index.get(name).and_then(|&i| self.vars[i].1.clone())
    }
}
