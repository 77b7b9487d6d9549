//! Typed Dockerfile instructions. Arguments are kept as written (unexpanded)
//! wherever expansion depends on build state; each type has the expansion
//! helpers the planner calls with the stage's environment at that point.

use std::time::Duration;

use super::expand::{Env, ExpandError, Lexer};
use super::flags::{self, Kind};
use super::heredoc::{parse_heredoc, Heredoc};
use super::mount::MountSpec;
use super::parser::{split_command, RawNode};
use super::words::{parse_json_array, parse_words, split_whitespace, suggest, JsonArgs};

/// One instruction with where it is in the file.
#[derive(Debug, Clone, PartialEq)]
pub struct Instruction {
    /// 1-based line the instruction starts on.
    pub line: usize,
    /// Last line (continuations and here-document bodies included).
    pub end_line: usize,
    /// The instruction line as written, continuations joined (for history/`docker history`).
    pub original: String,
    pub kind: Instr,
}

impl Instruction {
    /// Upper-case keyword (`RUN`).
    pub fn keyword(&self) -> &'static str {
        self.kind.keyword()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Instr {
    From(FromInstr),
    Run(RunInstr),
    Cmd(CmdInstr),
    Label(LabelInstr),
    Maintainer(MaintainerInstr),
    Expose(ExposeInstr),
    Env(EnvInstr),
    Add(AddInstr),
    Copy(CopyInstr),
    Entrypoint(EntrypointInstr),
    Volume(VolumeInstr),
    User(UserInstr),
    Workdir(WorkdirInstr),
    Arg(ArgInstr),
    Onbuild(OnbuildInstr),
    StopSignal(StopSignalInstr),
    Healthcheck(HealthcheckInstr),
    Shell(ShellInstr),
}

impl Instr {
    pub fn keyword(&self) -> &'static str {
        match self {
            Instr::From(_) => "FROM",
            Instr::Run(_) => "RUN",
            Instr::Cmd(_) => "CMD",
            Instr::Label(_) => "LABEL",
            Instr::Maintainer(_) => "MAINTAINER",
            Instr::Expose(_) => "EXPOSE",
            Instr::Env(_) => "ENV",
            Instr::Add(_) => "ADD",
            Instr::Copy(_) => "COPY",
            Instr::Entrypoint(_) => "ENTRYPOINT",
            Instr::Volume(_) => "VOLUME",
            Instr::User(_) => "USER",
            Instr::Workdir(_) => "WORKDIR",
            Instr::Arg(_) => "ARG",
            Instr::Onbuild(_) => "ONBUILD",
            Instr::StopSignal(_) => "STOPSIGNAL",
            Instr::Healthcheck(_) => "HEALTHCHECK",
            Instr::Shell(_) => "SHELL",
        }
    }
}

pub const INSTRUCTION_NAMES: &[&str] = &[
    "ADD",
    "ARG",
    "CMD",
    "COPY",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "FROM",
    "HEALTHCHECK",
    "LABEL",
    "MAINTAINER",
    "ONBUILD",
    "RUN",
    "SHELL",
    "STOPSIGNAL",
    "USER",
    "VOLUME",
    "WORKDIR",
];

/// Exec (JSON) form or shell form of a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandLine {
    /// `["executable", "arg"]`: run as is.
    Exec(Vec<String>),
    /// `command text`: run with the stage's SHELL (`/bin/sh -c` by default).
    /// Not expanded by the builder (the shell does it).
    Shell(String),
}

impl CommandLine {
    pub fn is_exec(&self) -> bool {
        matches!(self, CommandLine::Exec(_))
    }
    /// The argv to run: exec form as is; shell form as `shell + [text]`.
    pub fn argv(&self, shell: &[String]) -> Vec<String> {
        match self {
            CommandLine::Exec(v) => v.clone(),
            CommandLine::Shell(s) => {
                let mut v = shell.to_vec();
                v.push(s.clone());
                v
            }
        }
    }
}

/// The default SHELL on Linux.
pub fn default_shell() -> Vec<String> {
    vec!["/bin/sh".to_string(), "-c".to_string()]
}

// ---------------------------------------------------------------- FROM

/// `FROM [--platform=<p>] <image> [AS <name>]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FromInstr {
    /// Base image or earlier stage name, unexpanded (global ARGs apply).
    pub image: String,
    /// Stage name, lower-cased.
    pub name: Option<String>,
    /// `--platform`, unexpanded.
    pub platform: Option<String>,
}

impl FromInstr {
    /// The base name with global args expanded; an empty result is an error.
    pub fn expand_image(&self, lex: &Lexer, global_args: &dyn Env) -> Result<String, ExpandError> {
        let v = lex.expand_word(&self.image, global_args)?;
        if v.is_empty() {
            return Err(ExpandError { word: self.image.clone(), msg: format!("base name ({}) should not be blank", self.image) });
        }
        Ok(v)
    }
    pub fn expand_platform(&self, lex: &Lexer, global_args: &dyn Env) -> Result<Option<String>, ExpandError> {
        match &self.platform {
            None => Ok(None),
            Some(p) => {
                let v = lex.expand_word(p, global_args)?;
                if v.is_empty() {
                    return Err(ExpandError { word: p.clone(), msg: format!("empty platform value from expression {p}") });
                }
                Ok(Some(v))
            }
        }
    }
}

// ---------------------------------------------------------------- RUN

/// `RUN --network=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetworkMode {
    Default,
    None,
    Host,
}

/// `RUN --security=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecurityMode {
    Sandbox,
    Insecure,
}

/// `RUN [--mount=...] [--network=...] [--security=...] command`.
#[derive(Debug, Clone, PartialEq)]
pub struct RunInstr {
    pub command: CommandLine,
    /// Here-documents announced on the line (shell form only).
    pub heredocs: Vec<Heredoc>,
    /// `--mount` values as written (expand with [`RunInstr::expand_mounts`]).
    pub mounts_raw: Vec<String>,
    /// `--mount` values parsed without expansion (values holding `$` unchecked).
    pub mounts: Vec<MountSpec>,
    /// `--network`; `None` when not given (default).
    pub network: Option<NetworkMode>,
    /// `--security`; `None` when not given (sandbox).
    pub security: Option<SecurityMode>,
}

/// A file the executor must provide for a RUN (heredoc with a shebang line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InlineFile {
    /// Absolute path in the container (`/dev/pipes/EOF`), mounted read-only.
    pub path: String,
    pub data: String,
    pub mode: u32,
}

/// What a RUN actually executes once here-documents are taken into account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunPlan {
    pub command: CommandLine,
    pub inline_file: Option<InlineFile>,
}

impl RunInstr {
    /// The command to execute, following BuildKit:
    /// - `RUN <<EOF` (a lone heredoc) whose body starts with `#!`: the body is
    ///   written to `/dev/pipes/EOF` (mode 0755) and that path run with the shell;
    /// - a lone heredoc otherwise: the body is the shell command text;
    /// - other heredocs (`RUN python3 <<EOF`, several): the line and the bodies are
    ///   passed to the shell, which feeds them as here-documents;
    /// - no heredocs: the command as written.
    pub fn plan(&self) -> RunPlan {
        let CommandLine::Shell(line) = &self.command else {
            return RunPlan { command: self.command.clone(), inline_file: None };
        };
        if self.heredocs.is_empty() {
            return RunPlan { command: self.command.clone(), inline_file: None };
        }
        if parse_heredoc(line).is_some() {
            let first = &self.heredocs[0];
            let data = first.data();
            if first.content.starts_with("#!") {
                let path = format!("/dev/pipes/{}", first.name);
                return RunPlan { command: CommandLine::Shell(path.clone()), inline_file: Some(InlineFile { path, data, mode: 0o755 }) };
            }
            return RunPlan { command: CommandLine::Shell(data), inline_file: None };
        }
        let mut full = line.clone();
        for h in &self.heredocs {
            full.push('\n');
            full.push_str(&h.content);
            full.push_str(&h.name);
        }
        RunPlan { command: CommandLine::Shell(full), inline_file: None }
    }

    /// The mounts with variables expanded and fully checked.
    pub fn expand_mounts(&self, lex: &Lexer, env: &dyn Env) -> crate::Result<Vec<MountSpec>> {
        self.mounts_raw.iter().map(|m| MountSpec::parse_expanded(m, lex, env)).collect()
    }
}

// ---------------------------------------------------------------- CMD / ENTRYPOINT / SHELL

/// `CMD`. An empty shell form (`CMD` with nothing) is `Shell("")`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CmdInstr {
    pub command: CommandLine,
}

/// `ENTRYPOINT`; `command` is `None` for `ENTRYPOINT []` or an empty one (clears it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntrypointInstr {
    pub command: Option<CommandLine>,
}

/// `SHELL ["executable", "param"]` (JSON form required).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShellInstr {
    pub shell: Vec<String>,
}

// ---------------------------------------------------------------- LABEL / ENV / ARG

/// A `key=value` pair as written (quotes and escapes still in place).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    pub key: String,
    pub value: String,
    /// Legacy `ENV key value` form (no `=`).
    pub legacy: bool,
}

fn expand_pairs(pairs: &[KeyValue], lex: &Lexer, env: &dyn Env) -> Result<Vec<(String, String)>, ExpandError> {
    // Every pair of one instruction sees the environment from before it.
    pairs.iter().map(|kv| Ok((lex.expand_word(&kv.key, env)?, lex.expand_word(&kv.value, env)?))).collect()
}

/// `LABEL k=v ...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelInstr {
    pub labels: Vec<KeyValue>,
}

impl LabelInstr {
    pub fn expand(&self, lex: &Lexer, env: &dyn Env) -> Result<Vec<(String, String)>, ExpandError> {
        expand_pairs(&self.labels, lex, env)
    }
}

/// `ENV k=v ...` or `ENV k v`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvInstr {
    pub vars: Vec<KeyValue>,
}

impl EnvInstr {
    /// The pairs, expanded against the environment before this instruction
    /// (`ENV a=1 b=$a` gives b the old a).
    pub fn expand(&self, lex: &Lexer, env: &dyn Env) -> Result<Vec<(String, String)>, ExpandError> {
        expand_pairs(&self.vars, lex, env)
    }
}

/// One name of an `ARG` instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgDecl {
    pub name: String,
    /// Default as written (unexpanded, quotes in place).
    pub default: Option<String>,
}

/// `ARG name[=default] ...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgInstr {
    pub line: usize,
    pub args: Vec<ArgDecl>,
}

// ---------------------------------------------------------------- COPY / ADD

/// A `<<EOF` source of COPY/ADD: an inline file named after the delimiter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeredocSource {
    pub heredoc: Heredoc,
}

/// COPY/ADD after expansion: what the executor copies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpandedCopy {
    /// Context (or stage) source paths/patterns, expanded.
    pub sources: Vec<String>,
    /// Inline files: (file name, content), from here-documents.
    pub inline_files: Vec<(String, String)>,
    pub dest: String,
    pub chown: Option<String>,
    pub chmod: Option<String>,
}

/// `COPY [--from] [--chown] [--chmod] [--link] [--parents] [--exclude]... <src>... <dest>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyInstr {
    /// Source paths as written (heredoc sources are in `heredocs`).
    pub sources: Vec<String>,
    pub heredocs: Vec<HeredocSource>,
    pub dest: String,
    /// `--from=<stage name|stage index|image>`; not expanded (BuildKit refuses variables here).
    pub from: Option<String>,
    pub chown: Option<String>,
    pub chmod: Option<String>,
    pub link: bool,
    pub parents: bool,
    pub excludes: Vec<String>,
    /// Written in JSON form.
    pub json: bool,
}

/// `ADD [--chown] [--chmod] [--checksum] [--keep-git-dir] [--link] [--unpack] [--exclude]... <src>... <dest>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddInstr {
    pub sources: Vec<String>,
    pub heredocs: Vec<HeredocSource>,
    pub dest: String,
    pub chown: Option<String>,
    pub chmod: Option<String>,
    /// `--checksum=sha256:...` (HTTP and git sources only).
    pub checksum: Option<String>,
    pub keep_git_dir: Option<bool>,
    pub unpack: Option<bool>,
    pub link: bool,
    pub excludes: Vec<String>,
    pub json: bool,
}

fn expand_opt(v: &Option<String>, lex: &Lexer, env: &dyn Env) -> Result<Option<String>, ExpandError> {
    match v {
        None => Ok(None),
        Some(s) => Ok(Some(lex.expand_word(s, env)?).filter(|s| !s.is_empty())),
    }
}

fn expand_copy(
    sources: &[String],
    heredocs: &[HeredocSource],
    dest: &str,
    chown: &Option<String>,
    chmod: &Option<String>,
    lex: &Lexer,
    env: &dyn Env,
) -> Result<ExpandedCopy, ExpandError> {
    Ok(ExpandedCopy {
        sources: sources.iter().map(|s| lex.expand_word(s, env)).collect::<Result<_, _>>()?,
        inline_files: heredocs.iter().map(|h| Ok((h.heredoc.name.clone(), h.heredoc.expanded_data(env)?))).collect::<Result<_, ExpandError>>()?,
        dest: lex.expand_word(dest, env)?,
        chown: expand_opt(chown, lex, env)?,
        chmod: expand_opt(chmod, lex, env)?,
    })
}

impl CopyInstr {
    pub fn expand(&self, lex: &Lexer, env: &dyn Env) -> Result<ExpandedCopy, ExpandError> {
        expand_copy(&self.sources, &self.heredocs, &self.dest, &self.chown, &self.chmod, lex, env)
    }
}

impl AddInstr {
    pub fn expand(&self, lex: &Lexer, env: &dyn Env) -> Result<ExpandedCopy, ExpandError> {
        expand_copy(&self.sources, &self.heredocs, &self.dest, &self.chown, &self.chmod, lex, env)
    }
    pub fn expand_checksum(&self, lex: &Lexer, env: &dyn Env) -> Result<Option<String>, ExpandError> {
        expand_opt(&self.checksum, lex, env)
    }
}

/// `--chmod` value: octal (`0755`, at most 07777) or symbolic (`u+x,g-w`), checked.
pub fn parse_chmod(s: &str) -> crate::Result<Chmod> {
    if s.chars().all(|c| c.is_ascii_digit()) && !s.is_empty() {
        return match u32::from_str_radix(s, 8) {
            Ok(m) if m <= 0o7777 => Ok(Chmod::Octal(m)),
            _ => Err(format!("invalid chmod parameter: '{s}'. it should be octal string and between 0 and 07777").into()),
        };
    }
    for clause in s.split(',') {
        let who_len = clause.chars().take_while(|c| "ugoa".contains(*c)).count();
        let rest = &clause[who_len..];
        if rest.is_empty() {
            return Err(format!("invalid chmod parameter: '{s}'").into());
        }
        let mut chars = rest.chars().peekable();
        while let Some(op) = chars.next() {
            if !"+-=".contains(op) {
                return Err(format!("invalid chmod parameter: '{s}'").into());
            }
            while let Some(&c) = chars.peek() {
                if "rwxXstugo".contains(c) {
                    chars.next();
                } else {
                    break;
                }
            }
        }
    }
    Ok(Chmod::Symbolic(s.to_string()))
}

/// A checked `--chmod`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Chmod {
    Octal(u32),
    /// `u+x,g-w` style, applied by the executor per file.
    Symbolic(String),
}

/// `--chown=user[:group]` split (names or ids; resolving names needs the image's
/// /etc/passwd and /etc/group).
pub fn split_user_group(s: &str) -> (String, Option<String>) {
    match s.split_once(':') {
        Some((u, g)) => (u.to_string(), Some(g.to_string())),
        None => (s.to_string(), None),
    }
}

// ---------------------------------------------------------------- small ones

/// `MAINTAINER name` (deprecated).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MaintainerInstr {
    pub name: String,
}

/// `EXPOSE port[/proto]...` as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExposeInstr {
    pub ports: Vec<String>,
}

impl ExposeInstr {
    /// Expanded and normalized ports (`80/tcp`, ranges expanded), in the order written.
    pub fn expand(&self, lex: &Lexer, env: &dyn Env) -> crate::Result<Vec<String>> {
        let mut words = Vec::new();
        for p in &self.ports {
            words.extend(lex.expand_words(p, env)?);
        }
        parse_ports(&words)
    }
}

/// Normalize port specs: `80` -> `80/tcp`, `53/UDP` -> `53/udp`,
/// `8000-8002` -> three ports; `ip:host:container` keeps the container part.
pub fn parse_ports(specs: &[String]) -> crate::Result<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for spec in specs {
        let (port, proto) = match spec.rsplit_once('/') {
            Some((p, pr)) => (p, pr.to_ascii_lowercase()),
            None => (spec.as_str(), "tcp".to_string()),
        };
        if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
            return Err(format!("invalid proto: {proto}").into());
        }
        let port = port.rsplit(':').next().unwrap_or(port);
        let (lo, hi) = match port.split_once('-') {
            Some((a, b)) => (a, b),
            None => (port, port),
        };
        let parse = |s: &str| s.parse::<u16>().map_err(|_| format!("invalid containerPort: {port}"));
        let (lo, hi) = (parse(lo)?, parse(hi)?);
        if hi < lo {
            return Err(format!("invalid range specified for container port: {port}").into());
        }
        for p in lo..=hi {
            let s = format!("{p}/{proto}");
            if !out.contains(&s) {
                out.push(s);
            }
        }
    }
    Ok(out)
}

/// `VOLUME ["/a", "/b"]` or `VOLUME /a /b`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeInstr {
    pub paths: Vec<String>,
    pub json: bool,
}

impl VolumeInstr {
    pub fn expand(&self, lex: &Lexer, env: &dyn Env) -> Result<Vec<String>, ExpandError> {
        self.paths.iter().map(|p| lex.expand_word(p, env)).collect()
    }
}

/// `USER user[:group]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserInstr {
    pub user: String,
}

impl UserInstr {
    pub fn expand(&self, lex: &Lexer, env: &dyn Env) -> Result<String, ExpandError> {
        lex.expand_word(&self.user, env)
    }
}

/// `WORKDIR path`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkdirInstr {
    pub path: String,
}

impl WorkdirInstr {
    pub fn expand(&self, lex: &Lexer, env: &dyn Env) -> Result<String, ExpandError> {
        lex.expand_word(&self.path, env)
    }
    /// The new absolute working directory given the current one.
    pub fn resolve(&self, lex: &Lexer, env: &dyn Env, current: &str) -> Result<String, ExpandError> {
        let p = self.expand(lex, env)?;
        let joined = if p.starts_with('/') { p } else { format!("{}/{}", current.trim_end_matches('/'), p) };
        let mut parts: Vec<&str> = Vec::new();
        for seg in joined.split('/') {
            match seg {
                "" | "." => {}
                ".." => {
                    parts.pop();
                }
                s => parts.push(s),
            }
        }
        Ok(format!("/{}", parts.join("/")))
    }
}

/// `STOPSIGNAL signal`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StopSignalInstr {
    pub signal: String,
}

impl StopSignalInstr {
    pub fn expand(&self, lex: &Lexer, env: &dyn Env) -> Result<String, ExpandError> {
        lex.expand_word(&self.signal, env)
    }
}

/// `ONBUILD <instruction>`: stored in the image config as `expression`.
#[derive(Debug, Clone, PartialEq)]
pub struct OnbuildInstr {
    /// The trigger text (`RUN make`), with here-document bodies appended.
    pub expression: String,
    /// The trigger, parsed (checked at parse time).
    pub trigger: Box<Instr>,
}

/// `HEALTHCHECK NONE` or `HEALTHCHECK [options] CMD command`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HealthcheckInstr {
    None,
    Cmd(HealthcheckCmd),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthcheckCmd {
    pub command: CommandLine,
    /// Zero/absent values mean "inherit/default".
    pub interval: Option<Duration>,
    pub timeout: Option<Duration>,
    pub start_period: Option<Duration>,
    pub start_interval: Option<Duration>,
    pub retries: Option<u32>,
}

impl HealthcheckInstr {
    /// The image config `Healthcheck.Test` value: `["NONE"]`, `["CMD", ...]`, `["CMD-SHELL", "text"]`.
    pub fn test(&self) -> Vec<String> {
        match self {
            HealthcheckInstr::None => vec!["NONE".into()],
            HealthcheckInstr::Cmd(c) => match &c.command {
                CommandLine::Exec(v) => std::iter::once("CMD".to_string()).chain(v.iter().cloned()).collect(),
                CommandLine::Shell(s) => vec!["CMD-SHELL".into(), s.clone()],
            },
        }
    }
}

/// Go's `time.ParseDuration` (`1h30m`, `1.5s`, `300ms`, `10us`).
pub fn parse_go_duration(s: &str) -> crate::Result<Duration> {
    let err = || format!("time: invalid duration {s:?}");
    let t = s.strip_prefix('+').unwrap_or(s);
    if let Some(neg) = t.strip_prefix('-') {
        if !neg.is_empty() && neg.chars().all(|c| c == '0' || c == '.') {
            return Ok(Duration::ZERO);
        }
        return Err(err().into());
    }
    if t == "0" {
        return Ok(Duration::ZERO);
    }
    if t.is_empty() {
        return Err(err().into());
    }
    let mut total = 0f64;
    let mut rest = t;
    while !rest.is_empty() {
        let n = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        if n == 0 {
            return Err(err().into());
        }
        let num: f64 = rest[..n].parse().map_err(|_| err())?;
        rest = &rest[n..];
        let u = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let unit = &rest[..u];
        rest = &rest[u..];
        let mul = match unit {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "" => return Err(format!("time: missing unit in duration {s:?}").into()),
            _ => return Err(format!("time: unknown unit {unit:?} in duration {s:?}").into()),
        };
        total += num * mul;
    }
    Ok(Duration::from_secs_f64(total))
}

// ---------------------------------------------------------------- parsing

fn at_least_one(cmd: &str) -> String {
    format!("{cmd} requires at least one argument")
}

fn exactly_one(cmd: &str) -> String {
    format!("{cmd} requires exactly one argument")
}

fn no_dest(cmd: &str) -> String {
    format!("{cmd} requires at least two arguments, but only one was provided. Destination could not be determined")
}

/// JSON array if it is one, else the whole text (`parseMaybeJSON`).
fn maybe_json(args: &str) -> crate::Result<Option<Vec<String>>> {
    match parse_json_array(args) {
        JsonArgs::Strings(v) => Ok(Some(v)),
        JsonArgs::NotStrings => Err("when using JSON array syntax, arrays must be comprised of strings only".into()),
        JsonArgs::NotJson => Ok(None),
    }
}

/// JSON array, else a whitespace list (`parseMaybeJSONToList`).
fn maybe_json_list(args: &str) -> crate::Result<(Vec<String>, bool)> {
    match maybe_json(args)? {
        Some(v) => Ok((v, true)),
        None => Ok((split_whitespace(args), false)),
    }
}

fn command_line(args: &str) -> crate::Result<CommandLine> {
    Ok(match maybe_json(args)? {
        Some(v) => CommandLine::Exec(v),
        None => CommandLine::Shell(args.to_string()),
    })
}

fn parse_name_val(args: &str, cmd: &str, escape: char) -> crate::Result<Vec<KeyValue>> {
    let words = parse_words(args, escape);
    if words.is_empty() {
        return Err(at_least_one(cmd).into());
    }
    if !words[0].contains('=') {
        // legacy `KEY name value`
        let (k, v) = super::words::split_whitespace2(args);
        let Some(v) = v.filter(|v| !v.is_empty()) else {
            return Err(format!("{cmd} must have two arguments").into());
        };
        return Ok(vec![KeyValue { key: k, value: v, legacy: true }]);
    }
    let mut out = Vec::new();
    for w in words {
        let Some((k, v)) = w.split_once('=') else {
            return Err(format!("Syntax error - can't find = in {w:?}. Must be of the form: name=value").into());
        };
        if k.is_empty() {
            return Err(format!("{cmd} names can not be blank").into());
        }
        out.push(KeyValue { key: k.to_string(), value: v.to_string(), legacy: false });
    }
    Ok(out)
}

fn split_sources(args: &[String], heredocs: &[Heredoc], cmd: &str) -> crate::Result<(Vec<String>, Vec<HeredocSource>, String)> {
    if args.len() < 2 {
        // `COPY <<EOF` alone has no destination either
        return Err(no_dest(cmd).into());
    }
    let dest = args[args.len() - 1].clone();
    if parse_heredoc(&dest).is_some() {
        return Err(format!("{cmd} cannot accept a heredoc as a destination").into());
    }
    let mut paths = Vec::new();
    let mut docs = Vec::new();
    for src in &args[..args.len() - 1] {
        match parse_heredoc(src) {
            Some(h) => {
                let body = heredocs.iter().find(|d| d.name == h.name).map(|d| d.content.clone()).unwrap_or_default();
                docs.push(HeredocSource { heredoc: Heredoc { content: body, ..h } });
            }
            None => paths.push(src.clone()),
        }
    }
    Ok((paths, docs, dest))
}

fn unknown_instruction(cmd: &str) -> String {
    let hint = suggest(cmd, INSTRUCTION_NAMES.iter().copied()).map(|s| format!(" (did you mean {}?)", s.to_ascii_lowercase())).unwrap_or_default();
    format!("unknown instruction: {cmd}{hint}")
}

/// The pieces of one logical line that the parse functions read.
struct Parts<'a> {
    cmd: &'a str,
    flags: &'a [String],
    args: &'a str,
    heredocs: &'a [Heredoc],
    original: &'a str,
    escape: char,
}

/// Type one logical line.
pub(crate) fn parse_node(node: &RawNode, escape: char) -> crate::Result<Instr> {
    parse_parts(&Parts { cmd: &node.cmd, flags: &node.flags, args: &node.args, heredocs: &node.heredocs, original: &node.original, escape })
}

type ParseFn = fn(&Parts) -> crate::Result<Instr>;

/// One parse function per instruction (by lower-case keyword), each returning its
/// typed instruction, as BuildKit's frontend has; [`INSTRUCTION_NAMES`] lists the same.
const PARSERS: &[(&str, ParseFn)] = &[
    ("add", |p| parse_add(p).map(Instr::Add)),
    ("arg", |p| parse_arg(p).map(Instr::Arg)),
    ("cmd", |p| parse_cmd(p).map(Instr::Cmd)),
    ("copy", |p| parse_copy(p).map(Instr::Copy)),
    ("entrypoint", |p| parse_entrypoint(p).map(Instr::Entrypoint)),
    ("env", |p| parse_env(p).map(Instr::Env)),
    ("expose", |p| parse_expose(p).map(Instr::Expose)),
    ("from", |p| parse_from(p).map(Instr::From)),
    ("healthcheck", |p| parse_healthcheck(p).map(Instr::Healthcheck)),
    ("label", |p| parse_label(p).map(Instr::Label)),
    ("maintainer", |p| parse_maintainer(p).map(Instr::Maintainer)),
    ("onbuild", |p| parse_onbuild(p).map(Instr::Onbuild)),
    ("run", |p| parse_run(p).map(Instr::Run)),
    ("shell", |p| parse_shell(p).map(Instr::Shell)),
    ("stopsignal", |p| parse_stopsignal(p).map(Instr::StopSignal)),
    ("user", |p| parse_user(p).map(Instr::User)),
    ("volume", |p| parse_volume(p).map(Instr::Volume)),
    ("workdir", |p| parse_workdir(p).map(Instr::Workdir)),
];

fn parse_parts(p: &Parts) -> crate::Result<Instr> {
    let lower = p.cmd.to_ascii_lowercase();
    match PARSERS.iter().find(|(k, _)| *k == lower) {
        Some((_, parse)) => parse(p),
        None => Err(unknown_instruction(p.cmd).into()),
    }
}

/// Instructions that take no flags refuse any.
fn no_flags(p: &Parts) -> crate::Result<()> {
    flags::parse(p.flags, &[]).map(|_| ())
}

fn parse_from(p: &Parts) -> crate::Result<FromInstr> {
    let (flag_args, args) = (p.flags, p.args);
    let words = if args.is_empty() { Vec::new() } else { split_whitespace(args) };
    if words.is_empty() {
        return Err(at_least_one("FROM").into());
    }
    let name = match words.len() {
        1 => None,
        3 if words[1].eq_ignore_ascii_case("as") => {
            let n = words[2].to_ascii_lowercase();
            let valid = n.chars().next().is_some_and(|c| c.is_ascii_lowercase())
                && n.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c));
            if !valid {
                return Err(format!("invalid name for build stage: {:?}, name can't start with a number or contain symbols", words[2]).into());
            }
            Some(n)
        }
        _ => return Err("FROM requires either one or three arguments".into()),
    };
    let f = flags::parse(flag_args, &[("platform", Kind::Str)])?;
    Ok(FromInstr { image: words[0].clone(), name, platform: f.string("platform") })
}

fn parse_run(p: &Parts) -> crate::Result<RunInstr> {
    let (flag_args, args, heredocs) = (p.flags, p.args, p.heredocs);
    let f = flags::parse(flag_args, &[("mount", Kind::Strs), ("network", Kind::Str), ("security", Kind::Str), ("device", Kind::Strs)])?;
    let network = match f.string("network").as_deref() {
        None => None,
        Some("default") => Some(NetworkMode::Default),
        Some("none") => Some(NetworkMode::None),
        Some("host") => Some(NetworkMode::Host),
        Some(v) => return Err(format!("invalid network mode {v:?}").into()),
    };
    let security = match f.string("security").as_deref() {
        None => None,
        Some("sandbox") => Some(SecurityMode::Sandbox),
        Some("insecure") => Some(SecurityMode::Insecure),
        Some(v) => return Err(format!("security {v:?} is not valid").into()),
    };
    if !f.strings("device").is_empty() {
        return Err("RUN --device is not supported by berth-build".into());
    }
    let mounts_raw = f.strings("mount");
    let mounts = mounts_raw.iter().map(|m| MountSpec::parse(m)).collect::<Result<Vec<_>, _>>()?;
    let command = command_line(args)?;
    let heredocs = if command.is_exec() { Vec::new() } else { heredocs.to_vec() };
    Ok(RunInstr { command, heredocs, mounts_raw, mounts, network, security })
}

fn parse_cmd(p: &Parts) -> crate::Result<CmdInstr> {
    let args = p.args;
    no_flags(p)?;
    Ok(CmdInstr { command: command_line(args)? })
}

fn parse_entrypoint(p: &Parts) -> crate::Result<EntrypointInstr> {
    let args = p.args;
    no_flags(p)?;
    let command = match command_line(args)? {
        CommandLine::Exec(v) if v.is_empty() => None,
        CommandLine::Shell(s) if s.is_empty() => None,
        c => Some(c),
    };
    Ok(EntrypointInstr { command })
}

fn parse_shell(p: &Parts) -> crate::Result<ShellInstr> {
    let args = p.args;
    no_flags(p)?;
    Ok(match maybe_json(args)? {
        Some(v) if v.is_empty() => return Err(at_least_one("SHELL").into()),
        Some(v) => ShellInstr { shell: v },
        None if args.is_empty() => return Err(at_least_one("SHELL").into()),
        None => return Err(format!("SHELL requires the arguments to be in JSON form: {args}").into()),
    })
}

fn parse_label(p: &Parts) -> crate::Result<LabelInstr> {
    let (args, escape) = (p.args, p.escape);
    no_flags(p)?;
    Ok(LabelInstr { labels: parse_name_val(args, "LABEL", escape)? })
}

fn parse_env(p: &Parts) -> crate::Result<EnvInstr> {
    let (args, escape) = (p.args, p.escape);
    no_flags(p)?;
    Ok(EnvInstr { vars: parse_name_val(args, "ENV", escape)? })
}

fn parse_maintainer(p: &Parts) -> crate::Result<MaintainerInstr> {
    let args = p.args;
    no_flags(p)?;
    if args.is_empty() {
        return Err(exactly_one("MAINTAINER").into());
    }
    Ok(MaintainerInstr { name: args.to_string() })
}

fn parse_expose(p: &Parts) -> crate::Result<ExposeInstr> {
    let args = p.args;
    no_flags(p)?;
    let ports = split_whitespace(args);
    if ports.is_empty() {
        return Err(at_least_one("EXPOSE").into());
    }
    Ok(ExposeInstr { ports })
}

fn parse_user(p: &Parts) -> crate::Result<UserInstr> {
    let args = p.args;
    no_flags(p)?;
    if args.is_empty() {
        return Err(exactly_one("USER").into());
    }
    Ok(UserInstr { user: args.to_string() })
}

fn parse_workdir(p: &Parts) -> crate::Result<WorkdirInstr> {
    let args = p.args;
    no_flags(p)?;
    if args.is_empty() {
        return Err(exactly_one("WORKDIR").into());
    }
    Ok(WorkdirInstr { path: args.to_string() })
}

fn parse_stopsignal(p: &Parts) -> crate::Result<StopSignalInstr> {
    let args = p.args;
    no_flags(p)?;
    if args.is_empty() {
        return Err(exactly_one("STOPSIGNAL").into());
    }
    Ok(StopSignalInstr { signal: args.to_string() })
}

fn parse_volume(p: &Parts) -> crate::Result<VolumeInstr> {
    let args = p.args;
    no_flags(p)?;
    let (paths, json) = maybe_json_list(args)?;
    if paths.is_empty() {
        return Err(at_least_one("VOLUME").into());
    }
    let mut out = Vec::new();
    for p in paths {
        let p = p.trim().to_string();
        if p.is_empty() {
            return Err("VOLUME specified can not be an empty string".into());
        }
        out.push(p);
    }
    Ok(VolumeInstr { paths: out, json })
}

fn parse_arg(p: &Parts) -> crate::Result<ArgInstr> {
    let (args, escape) = (p.args, p.escape);
    no_flags(p)?;
    let words = parse_words(args, escape);
    if words.is_empty() {
        return Err(at_least_one("ARG").into());
    }
    let mut decls = Vec::new();
    for w in words {
        match w.split_once('=') {
            Some(("", _)) => return Err("ARG names can not be blank".into()),
            Some((k, v)) => decls.push(ArgDecl { name: k.to_string(), default: Some(v.to_string()) }),
            None => decls.push(ArgDecl { name: w, default: None }),
        }
    }
    Ok(ArgInstr { line: 0, args: decls })
}

fn parse_copy(p: &Parts) -> crate::Result<CopyInstr> {
    let (flag_args, args, heredocs) = (p.flags, p.args, p.heredocs);
    let f = flags::parse(
        flag_args,
        &[("chown", Kind::Str), ("from", Kind::Str), ("chmod", Kind::Str), ("link", Kind::Bool), ("exclude", Kind::Strs), ("parents", Kind::Bool)],
    )?;
    let (list, json) = maybe_json_list(args)?;
    let (sources, docs, dest) = split_sources(&list, heredocs, "COPY")?;
    let from = f.string("from");
    if let Some(fr) = &from {
        if fr.contains('$') {
            return Err("variable expansion is not supported for --from, define a new stage with FROM using ARG from global scope as a workaround".into());
        }
    }
    if let Some(m) = f.string("chmod").filter(|m| !m.contains('$')) {
        parse_chmod(&m)?;
    }
    Ok(CopyInstr {
        sources,
        heredocs: docs,
        dest,
        from,
        chown: f.string("chown"),
        chmod: f.string("chmod"),
        link: f.is_true("link"),
        parents: f.is_true("parents"),
        excludes: f.strings("exclude"),
        json,
    })
}

fn parse_add(p: &Parts) -> crate::Result<AddInstr> {
    let (flag_args, args, heredocs) = (p.flags, p.args, p.heredocs);
    let f = flags::parse(
        flag_args,
        &[
            ("chown", Kind::Str),
            ("chmod", Kind::Str),
            ("link", Kind::Bool),
            ("keep-git-dir", Kind::Bool),
            ("checksum", Kind::Str),
            ("unpack", Kind::Bool),
            ("exclude", Kind::Strs),
        ],
    )?;
    let (list, json) = maybe_json_list(args)?;
    let (sources, docs, dest) = split_sources(&list, heredocs, "ADD")?;
    if let Some(m) = f.string("chmod").filter(|m| !m.contains('$')) {
        parse_chmod(&m)?;
    }
    Ok(AddInstr {
        sources,
        heredocs: docs,
        dest,
        chown: f.string("chown"),
        chmod: f.string("chmod"),
        checksum: f.string("checksum"),
        keep_git_dir: f.boolean("keep-git-dir"),
        unpack: f.boolean("unpack"),
        link: f.is_true("link"),
        excludes: f.strings("exclude"),
        json,
    })
}

fn parse_onbuild(p: &Parts) -> crate::Result<OnbuildInstr> {
    let (args, heredocs, original, escape) = (p.args, p.heredocs, p.original, p.escape);
    no_flags(p)?;
    if args.is_empty() {
        return Err(at_least_one("ONBUILD").into());
    }
    let (sub_cmd, sub_flags, sub_args) = split_command(args, escape);
    match sub_cmd.to_ascii_uppercase().as_str() {
        "ONBUILD" => return Err("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed".into()),
        t @ ("MAINTAINER" | "FROM") => return Err(format!("{t} isn't allowed as an ONBUILD trigger").into()),
        _ => {}
    }
    let trigger = parse_parts(&Parts { cmd: &sub_cmd, flags: &sub_flags, args: &sub_args, heredocs, original: args, escape })?;
    // original with the leading ONBUILD removed, heredoc bodies appended
    let trimmed = original.trim_start();
    let mut expression =
        trimmed.get(..7).filter(|w| w.eq_ignore_ascii_case("onbuild")).map(|_| trimmed[7..].trim_start().to_string()).unwrap_or_else(|| args.to_string());
    for h in heredocs {
        expression.push('\n');
        expression.push_str(&h.content);
        expression.push_str(&h.name);
    }
    Ok(OnbuildInstr { expression, trigger: Box::new(trigger) })
}

fn parse_healthcheck(p: &Parts) -> crate::Result<HealthcheckInstr> {
    let (flag_args, args) = (p.flags, p.args);
    if args.is_empty() {
        return Err(at_least_one("HEALTHCHECK").into());
    }
    let (typ, rest) = super::words::split_whitespace2(args);
    let rest = rest.unwrap_or_default();
    Ok(match typ.to_ascii_uppercase().as_str() {
        "NONE" => {
            if !rest.is_empty() {
                return Err("HEALTHCHECK NONE takes no arguments".into());
            }
            HealthcheckInstr::None
        }
        "CMD" => {
            let f = flags::parse(
                flag_args,
                &[("interval", Kind::Str), ("timeout", Kind::Str), ("start-period", Kind::Str), ("start-interval", Kind::Str), ("retries", Kind::Str)],
            )?;
            let command = command_line(&rest)?;
            let empty = match &command {
                CommandLine::Exec(v) => v.is_empty(),
                CommandLine::Shell(s) => s.is_empty(),
            };
            if empty {
                return Err("Missing command after HEALTHCHECK CMD".into());
            }
            let dur = |name: &str| -> crate::Result<Option<Duration>> {
                match f.string(name) {
                    None => Ok(None),
                    Some(v) if v.is_empty() => Ok(None),
                    Some(v) => {
                        let d = parse_go_duration(&v)?;
                        if d.is_zero() {
                            Ok(None)
                        } else if d < Duration::from_millis(1) {
                            Err(format!("Interval {name:?} cannot be less than 1ms").into())
                        } else {
                            Ok(Some(d))
                        }
                    }
                }
            };
            let retries = match f.string("retries") {
                None => None,
                Some(v) if v.is_empty() => None,
                Some(v) => {
                    let n: i64 = v.parse().map_err(|_| format!("strconv.ParseInt: parsing {v:?}: invalid syntax"))?;
                    if n < 0 {
                        return Err(format!("--retries cannot be negative ({n})").into());
                    }
                    Some(n as u32)
                }
            };
            HealthcheckInstr::Cmd(HealthcheckCmd {
                command,
                interval: dur("interval")?,
                timeout: dur("timeout")?,
                start_period: dur("start-period")?,
                start_interval: dur("start-interval")?,
                retries,
            })
        }
        _ => return Err(format!("Unknown type {typ:?} in HEALTHCHECK (try CMD)").into()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_instruction_name_has_one_parse_function() {
        let keys: Vec<String> = PARSERS.iter().map(|(k, _)| k.to_ascii_uppercase()).collect();
        assert_eq!(keys, INSTRUCTION_NAMES);
    }

    fn parts<'a>(cmd: &'a str, flags: &'a [String], args: &'a str) -> Parts<'a> {
        Parts { cmd, flags, args, heredocs: &[], original: args, escape: '\\' }
    }

    #[test]
    fn the_dispatcher_calls_the_keywords_parse_function_or_names_the_unknown_one() {
        assert_eq!(parse_parts(&parts("Workdir", &[], "/w")).unwrap(), Instr::Workdir(WorkdirInstr { path: "/w".into() }));
        assert_eq!(parse_parts(&parts("RUNN", &[], "x")).unwrap_err().to_string(), "unknown instruction: RUNN (did you mean run?)");
    }

    #[test]
    fn instructions_without_flags_refuse_any() {
        let f = ["--x=1".to_string()];
        for cmd in ["cmd", "entrypoint", "shell", "label", "env", "maintainer", "expose", "user", "workdir", "stopsignal", "volume", "arg", "onbuild"] {
            let e = parse_parts(&parts(cmd, &f, "a=b")).unwrap_err().to_string();
            assert!(e.contains("unknown flag: --x"), "{cmd}: {e}");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_go_duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_go_duration("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_go_duration("1.5h").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_go_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_go_duration("0").unwrap(), Duration::ZERO);
        assert!(parse_go_duration("10").is_err());
        assert!(parse_go_duration("5x").is_err());
        assert!(parse_go_duration("").is_err());
    }

    #[test]
    fn ports() {
        let s = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(parse_ports(&s(&["80", "53/UDP", "8000-8002/tcp"])).unwrap(), ["80/tcp", "53/udp", "8000/tcp", "8001/tcp", "8002/tcp"]);
        assert_eq!(parse_ports(&s(&["127.0.0.1:8080:80"])).unwrap(), ["80/tcp"]);
        assert!(parse_ports(&s(&["http"])).is_err());
        assert!(parse_ports(&s(&["80/xyz"])).is_err());
    }

    #[test]
    fn chmod() {
        assert_eq!(parse_chmod("0755").unwrap(), Chmod::Octal(0o755));
        assert_eq!(parse_chmod("u+x,g-w").unwrap(), Chmod::Symbolic("u+x,g-w".into()));
        assert!(parse_chmod("08").is_err());
        assert!(parse_chmod("17777").is_err());
        assert!(parse_chmod("bogus").is_err());
    }

    #[test]
    fn workdir_resolve() {
        let w = WorkdirInstr { path: "sub/../x/$D".into() };
        let env = vec![("D".to_string(), "y".to_string())];
        assert_eq!(w.resolve(&Lexer::default(), &env, "/app").unwrap(), "/app/x/y");
        let w = WorkdirInstr { path: "/abs/".into() };
        assert_eq!(w.resolve(&Lexer::default(), &env, "/app").unwrap(), "/abs");
    }
}
