//! Shell-like word processing for Dockerfile instructions: variable substitution
//! (`$v`, `${v}`, `${v:-d}`, `${v-d}`, `${v:+a}`, `${v+a}`, `${v:?m}`, `${v#p}`,
//! `${v##p}`, `${v%p}`, `${v%%p}`, `${v/p/r}`, `${v//p/r}`), quotes, the escape
//! character, and word splitting. Mirrors BuildKit's `shell.Lex`.
//!
//! Which instructions expand (done by the planner through the helpers on each
//! instruction): ADD COPY ENV EXPOSE FROM LABEL STOPSIGNAL USER VOLUME WORKDIR, ARG
//! defaults, RUN `--mount` values, and COPY/ADD `--chown`/`--chmod`/`--checksum`.
//! RUN/CMD/ENTRYPOINT/SHELL/HEALTHCHECK and ONBUILD are never expanded by the builder.

use crate::error::Context as _;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;

/// Where variable values come from.
pub trait Env {
    fn get_var(&self, name: &str) -> Option<String>;
}

impl<E: Env + ?Sized> Env for &E {
    fn get_var(&self, name: &str) -> Option<String> {
        (**self).get_var(name)
    }
}

impl Env for HashMap<String, String> {
    fn get_var(&self, name: &str) -> Option<String> {
        self.get(name).cloned()
    }
}

impl Env for BTreeMap<String, String> {
    fn get_var(&self, name: &str) -> Option<String> {
        self.get(name).cloned()
    }
}

/// An ordered list of pairs; the last one with the name wins.
impl Env for [(String, String)] {
    fn get_var(&self, name: &str) -> Option<String> {
        self.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    }
}

impl Env for Vec<(String, String)> {
    fn get_var(&self, name: &str) -> Option<String> {
        self.as_slice().get_var(name)
    }
}

/// `KEY=VALUE` strings, as in an image config's `Env`; the last one wins.
impl Env for [String] {
    fn get_var(&self, name: &str) -> Option<String> {
        self.iter().rev().find_map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv.as_str(), ""));
            (k == name).then(|| v.to_string())
        })
    }
}

impl Env for Vec<String> {
    fn get_var(&self, name: &str) -> Option<String> {
        self.as_slice().get_var(name)
    }
}

/// No variables at all.
pub struct NoEnv;

impl Env for NoEnv {
    fn get_var(&self, _: &str) -> Option<String> {
        None
    }
}

/// Two environments: `first` shadows `second`.
pub struct Layered<A, B>(pub A, pub B);

impl<A: Env, B: Env> Env for Layered<A, B> {
    fn get_var(&self, name: &str) -> Option<String> {
        self.0.get_var(name).or_else(|| self.1.get_var(name))
    }
}

/// A syntax error in a word (`failed to process "${a": syntax error: missing '}'`).
/// The instruction helpers attach the line; see [`super::Error`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpandError {
    pub word: String,
    pub msg: String,
}

impl fmt::Display for ExpandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "failed to process {:?}: {}", self.word, self.msg)
    }
}

impl std::error::Error for ExpandError {}

/// The result of one expansion, with the variables it used (for docker's
/// "unused build arg" and undefined-variable checks).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Expansion {
    /// The word with quotes removed and variables substituted (`ProcessWord`).
    pub value: String,
    /// The same, split into words on unquoted whitespace (`ProcessWords`).
    pub words: Vec<String>,
    /// Variables that were referenced and set.
    pub matched: BTreeSet<String>,
    /// Variables that were referenced and not set.
    pub unmatched: BTreeSet<String>,
}

/// The word processor. `Lexer::new(escape)` is what instructions use; the other
/// switches exist for heredoc detection and heredoc content expansion.
#[derive(Debug, Clone, Copy)]
pub struct Lexer {
    pub escape: char,
    /// Keep quote characters in the output (still honouring them).
    pub raw_quotes: bool,
    /// Keep escape characters in the output (still honouring them).
    pub raw_escapes: bool,
    /// Treat quotes as ordinary characters (heredoc bodies of `COPY <<EOF`).
    pub skip_quotes: bool,
    /// Leave references to unset variables as written.
    pub skip_unset: bool,
}

impl Default for Lexer {
    fn default() -> Self {
        Lexer::new('\\')
    }
}

impl Lexer {
    pub fn new(escape: char) -> Lexer {
        Lexer { escape, raw_quotes: false, raw_escapes: false, skip_quotes: false, skip_unset: false }
    }

    /// Expand one word: quotes removed, variables substituted, no splitting.
    pub fn expand_word(&self, word: &str, env: &dyn Env) -> Result<String, ExpandError> {
        Ok(self.process(word, env)?.value)
    }

    /// Expand and split into words on unquoted whitespace (whitespace that came
    /// from an unquoted variable splits too).
    pub fn expand_words(&self, word: &str, env: &dyn Env) -> Result<Vec<String>, ExpandError> {
        Ok(self.process(word, env)?.words)
    }

    /// Expand, reporting which variables were used.
    pub fn process(&self, word: &str, env: &dyn Env) -> Result<Expansion, ExpandError> {
        let mut sw = ShellWord {
            lex: self,
            chars: word.chars().collect(),
            pos: 0,
            env,
            raw_escapes: self.raw_escapes,
            matched: BTreeSet::new(),
            unmatched: BTreeSet::new(),
        };
        let raw = self.raw_escapes;
        match sw.process_stop_on(None, raw) {
            Ok((value, _)) if value.len() > MAX_EXPANDED => {
                Err(ExpandError { word: word.to_string(), msg: format!("expands to {} bytes, more than the {MAX_EXPANDED} allowed", value.len()) })
            }
            Ok((value, words)) => Ok(Expansion { value, words, matched: sw.matched, unmatched: sw.unmatched }),
            Err(msg) => Err(ExpandError { word: word.to_string(), msg: msg.detail().to_string() }),
        }
    }
}

/// Expand one word with the default escape character `\`.
pub fn expand(word: &str, env: &dyn Env) -> Result<String, ExpandError> {
    Lexer::new('\\').expand_word(word, env)
}

struct ShellWord<'a> {
    lex: &'a Lexer,
    chars: Vec<char>,
    pos: usize,
    env: &'a dyn Env,
    raw_escapes: bool,
    matched: BTreeSet<String>,
    unmatched: BTreeSet<String>,
}

/// The most one word may expand to. Each ENV or ARG may use earlier ones twice over
/// (`ENV A=$A$A`), so a few dozen lines would otherwise double their way to exhausting
/// memory; a real value stays far below this (execve takes 128 KiB per variable).
pub const MAX_EXPANDED: usize = 1 << 20;

#[derive(Default)]
struct Words {
    buf: String,
    words: Vec<String>,
    in_word: bool,
}

impl Words {
    fn add_char(&mut self, ch: char) {
        if ch.is_whitespace() {
            if self.in_word && !self.buf.is_empty() {
                self.words.push(std::mem::take(&mut self.buf));
                self.in_word = false;
            }
        } else {
            self.add_raw_char(ch);
        }
    }
    fn add_raw_char(&mut self, ch: char) {
        self.buf.push(ch);
        self.in_word = true;
    }
    fn add_string(&mut self, s: &str) {
        for ch in s.chars() {
            self.add_char(ch);
        }
    }
    fn add_raw_string(&mut self, s: &str) {
        self.buf.push_str(s);
        self.in_word = true;
    }
    fn finish(mut self) -> Vec<String> {
        if !self.buf.is_empty() {
            self.words.push(std::mem::take(&mut self.buf));
        }
        self.words
    }
}

type R<T> = crate::Result<T>;

impl ShellWord<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }
    fn next(&mut self) -> Option<char> {
        let c = self.chars.get(self.pos).copied();
        if c.is_some() {
            self.pos += 1;
        }
        c
    }

    /// The word of a `${...}` modifier up to `stop`; `missing` when the input ends first.
    fn word_until(&mut self, stop: char, raw_escapes: bool, missing: &str) -> R<String> {
        match self.process_stop_on(Some(stop), raw_escapes) {
            Ok((w, _)) => Ok(w),
            Err(_) if self.peek().is_none() => Err(missing.into()),
            Err(e) => Err(e),
        }
    }

    fn process_stop_on(&mut self, stop: Option<char>, raw_escapes: bool) -> R<(String, Vec<String>)> {
        let saved = self.raw_escapes;
        self.raw_escapes = raw_escapes;
        let r = self.process_stop_on_inner(stop);
        self.raw_escapes = saved;
        r
    }

    fn process_stop_on_inner(&mut self, stop: Option<char>) -> R<(String, Vec<String>)> {
        let mut result = String::new();
        let mut words = Words::default();
        while let Some(ch) = self.peek() {
            if stop == Some(ch) {
                self.next();
                return Ok((result, words.finish()));
            }
            let special = match ch {
                '$' => Some(self.process_dollar()?),
                '<' => Some(self.process_possible_heredoc()),
                '\'' if !self.lex.skip_quotes => Some(self.process_single_quote()?),
                '"' if !self.lex.skip_quotes => Some(self.process_double_quote()?),
                _ => None,
            };
            if let Some(tmp) = special {
                result.push_str(&tmp);
                if ch == '$' {
                    words.add_string(&tmp);
                } else {
                    words.add_raw_string(&tmp);
                }
                continue;
            }
            let mut ch = self.next().unwrap();
            if ch == self.lex.escape {
                if self.raw_escapes {
                    words.add_raw_char(ch);
                    result.push(ch);
                }
                match self.next() {
                    None => break,
                    Some(c) => ch = c,
                }
                words.add_raw_char(ch);
            } else {
                words.add_char(ch);
            }
            result.push(ch);
        }
        if let Some(stop) = stop {
            return Err(format!("unexpected end of statement while looking for matching {stop}").into());
        }
        Ok((result, words.finish()))
    }

    fn process_single_quote(&mut self) -> R<String> {
        let mut result = String::new();
        let q = self.next().unwrap();
        if self.lex.raw_quotes {
            result.push(q);
        }
        loop {
            match self.next() {
                None => return Err("unexpected end of statement while looking for matching single-quote".into()),
                Some('\'') => {
                    if self.lex.raw_quotes {
                        result.push('\'');
                    }
                    return Ok(result);
                }
                Some(c) => result.push(c),
            }
        }
    }

    fn process_double_quote(&mut self) -> R<String> {
        let mut result = String::new();
        let q = self.next().unwrap();
        if self.lex.raw_quotes {
            result.push(q);
        }
        loop {
            match self.peek() {
                None => return Err("unexpected end of statement while looking for matching double-quote".into()),
                Some('"') => {
                    self.next();
                    if self.lex.raw_quotes {
                        result.push('"');
                    }
                    return Ok(result);
                }
                Some('$') => {
                    let v = self.process_dollar()?;
                    result.push_str(&v);
                }
                Some(_) => {
                    let mut ch = self.next().unwrap();
                    if ch == self.lex.escape {
                        if self.raw_escapes {
                            result.push(ch);
                        }
                        match self.peek() {
                            None => continue,
                            Some(c) if c == '"' || c == '$' || c == self.lex.escape => {
                                ch = self.next().unwrap();
                            }
                            Some(_) => {}
                        }
                    }
                    result.push(ch);
                }
            }
        }
    }

    fn process_possible_heredoc(&mut self) -> String {
        self.next();
        if self.peek() != Some('<') {
            return "<".into();
        }
        self.next();
        let mut out = String::from("<<");
        while let Some(c @ (' ' | '\t' | '\r')) = self.peek() {
            out.push(c);
            self.next();
        }
        out
    }

    fn get_env(&mut self, name: &str) -> Option<String> {
        match self.env.get_var(name) {
            Some(v) => {
                self.matched.insert(name.to_string());
                Some(v)
            }
            None => {
                self.unmatched.insert(name.to_string());
                None
            }
        }
    }

    fn process_name(&mut self) -> String {
        let mut name = String::new();
        while let Some(ch) = self.peek() {
            if name.is_empty() && ch.is_ascii_digit() {
                while let Some(d) = self.peek().filter(|c| c.is_ascii_digit()) {
                    name.push(d);
                    self.next();
                }
                return name;
            }
            if name.is_empty() && matches!(ch, '@' | '*' | '#' | '?' | '-' | '$' | '!' | '0') {
                self.next();
                return ch.to_string();
            }
            if !ch.is_alphanumeric() && ch != '_' {
                break;
            }
            name.push(ch);
            self.next();
        }
        name
    }

    fn process_dollar(&mut self) -> R<String> {
        self.next(); // '$'
        if self.peek() != Some('{') {
            let name = self.process_name();
            if name.is_empty() {
                return Ok("$".into());
            }
            return Ok(match self.get_env(&name) {
                Some(v) => v,
                None if self.lex.skip_unset => format!("${name}"),
                None => String::new(),
            });
        }
        self.next(); // '{'
        match self.peek() {
            None => return Err("syntax error: missing '}'".into()),
            Some('{' | '}' | ':') => return Err("syntax error: bad substitution".into()),
            _ => {}
        }
        let name = self.process_name();
        let Some(mut ch) = self.next() else {
            return Err("syntax error: missing '}'".into());
        };
        let mut chs = ch.to_string();
        let mut null_is_unset = false;
        match ch {
            '}' => Ok(match self.get_env(&name) {
                Some(v) => v,
                None if self.lex.skip_unset => format!("${{{name}}}"),
                None => String::new(),
            }),
            ':' | '+' | '-' | '?' | '#' | '%' => {
                if ch == ':' {
                    null_is_unset = true;
                    match self.next() {
                        Some(c) => {
                            ch = c;
                            chs.push(c);
                        }
                        None => return Err("syntax error: missing '}'".into()),
                    }
                }
                let raw = ch == '#' || ch == '%';
                if null_is_unset && raw || !matches!(ch, '+' | '-' | '?' | '#' | '%') {
                    return Err(format!("unsupported modifier ({chs}) in substitution").into());
                }
                let word = self.word_until('}', raw, "syntax error: missing '}'")?;
                let value = self.get_env(&name);
                if value.is_none() && self.lex.skip_unset {
                    return Ok(format!("${{{name}{chs}{word}}}"));
                }
                let empty = value.as_deref().is_none_or(str::is_empty);
                let unset_or_null = value.is_none() || (null_is_unset && empty);
                match ch {
                    '-' => Ok(if unset_or_null { word } else { value.unwrap() }),
                    '+' => Ok(if unset_or_null { String::new() } else { word }),
                    '?' => match value {
                        None => {
                            let m = if word.is_empty() { "is not allowed to be unset".to_string() } else { word };
                            Err(format!("{name}: {m}").into())
                        }
                        Some(_) if null_is_unset && empty => {
                            let m = if word.is_empty() { "is not allowed to be empty".to_string() } else { word };
                            Err(format!("{name}: {m}").into())
                        }
                        Some(v) => Ok(v),
                    },
                    _ => {
                        let value = value.unwrap_or_default();
                        let (greedy, pat) = match word.strip_prefix(ch) {
                            Some(rest) => (true, rest.to_string()),
                            None => (false, word),
                        };
                        let pat = ShellPattern::parse(&pat).with_context(|| format!("invalid pattern ({pat}) in substitution"))?;
                        Ok(if ch == '#' { pat.trim_prefix(&value, greedy) } else { pat.trim_suffix(&value, greedy) })
                    }
                }
            }
            '/' => {
                let replace_all = self.peek() == Some('/');
                if replace_all {
                    self.next();
                }
                let pattern = self.word_until('/', true, "syntax error: missing '/' in ${}")?;
                let replacement = self.word_until('}', true, "syntax error: missing '}'")?;
                let value = self.get_env(&name);
                if value.is_none() && self.lex.skip_unset {
                    return Ok(format!("${{{name}/{pattern}/{replacement}}}"));
                }
                let value = value.unwrap_or_default();
                let pat = ShellPattern::parse(&pattern).with_context(|| format!("invalid pattern ({pattern}) in substitution"))?;
                let replacement = unescape_replacement(&replacement);
                Ok(pat.replace(&value, &replacement, replace_all))
            }
            _ => Err(format!("unsupported modifier ({chs}) in substitution").into()),
        }
    }
}

fn unescape_replacement(s: &str) -> String {
    let mut out = String::new();
    let mut it = s.chars();
    while let Some(c) = it.next() {
        if c == '\\' {
            if let Some(n) = it.next() {
                out.push(n);
                continue;
            }
        }
        out.push(c);
    }
    out
}

/// A shell (not path) glob used by `${v#p}`, `${v%p}` and `${v/p/r}`:
/// `*` matches any string (slashes included), `?` any character, `[...]` a set
/// (`[!...]`/`[^...]` negated), `\c` the character c.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShellPattern {
    toks: Vec<PTok>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum PTok {
    Lit(char),
    Any,
    One,
    Class { negated: bool, items: Vec<(char, char)> },
}

impl ShellPattern {
    pub fn parse(pattern: &str) -> crate::Result<ShellPattern> {
        let chars: Vec<char> = pattern.chars().collect();
        let mut toks = Vec::new();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            i += 1;
            match c {
                '*' => {
                    if toks.last() != Some(&PTok::Any) {
                        toks.push(PTok::Any)
                    }
                }
                '?' => toks.push(PTok::One),
                '\\' => match chars.get(i) {
                    Some(&n) => {
                        toks.push(PTok::Lit(n));
                        i += 1;
                    }
                    None => toks.push(PTok::Lit('\\')),
                },
                '[' => {
                    // Find the closing bracket; if there is none, '[' is literal.
                    let mut j = i;
                    let negated = matches!(chars.get(j), Some('!' | '^'));
                    if negated {
                        j += 1;
                    }
                    let mut items = Vec::new();
                    let mut first = true;
                    let mut closed = false;
                    while j < chars.len() {
                        let mut a = chars[j];
                        if a == ']' && !first {
                            closed = true;
                            j += 1;
                            break;
                        }
                        first = false;
                        j += 1;
                        if a == '\\' && j < chars.len() {
                            a = chars[j];
                            j += 1;
                        }
                        let mut b = a;
                        if chars.get(j) == Some(&'-') && chars.get(j + 1).is_some_and(|&c| c != ']') {
                            b = chars[j + 1];
                            j += 2;
                            if b == '\\' && j < chars.len() {
                                b = chars[j];
                                j += 1;
                            }
                        }
                        items.push((a, b));
                    }
                    if closed {
                        toks.push(PTok::Class { negated, items });
                        i = j;
                    } else {
                        toks.push(PTok::Lit('['));
                    }
                }
                c => toks.push(PTok::Lit(c)),
            }
        }
        Ok(ShellPattern { toks })
    }

    /// Whether the whole of `s` matches.
    pub fn matches(&self, s: &str) -> bool {
        let chars: Vec<char> = s.chars().collect();
        match_toks(&self.toks, &chars)
    }

    fn matches_chars(&self, s: &[char]) -> bool {
        match_toks(&self.toks, s)
    }

    /// `${v#p}` (shortest) / `${v##p}` (longest).
    pub fn trim_prefix(&self, value: &str, longest: bool) -> String {
        let chars: Vec<char> = value.chars().collect();
        let n = chars.len();
        let mut ends: Box<dyn Iterator<Item = usize>> = if longest { Box::new((0..=n).rev()) } else { Box::new(0..=n) };
        match ends.find(|&i| self.matches_chars(&chars[..i])) {
            Some(i) => chars[i..].iter().collect(),
            None => value.to_string(),
        }
    }

    /// `${v%p}` (shortest) / `${v%%p}` (longest).
    pub fn trim_suffix(&self, value: &str, longest: bool) -> String {
        let chars: Vec<char> = value.chars().collect();
        let n = chars.len();
        let mut starts: Box<dyn Iterator<Item = usize>> = if longest { Box::new(0..=n) } else { Box::new((0..=n).rev()) };
        match starts.find(|&i| self.matches_chars(&chars[i..])) {
            Some(i) => chars[..i].iter().collect(),
            None => value.to_string(),
        }
    }

    /// `${v/p/r}` (first, longest match) / `${v//p/r}` (every match). Empty
    /// matches are not replaced.
    pub fn replace(&self, value: &str, replacement: &str, all: bool) -> String {
        let chars: Vec<char> = value.chars().collect();
        let n = chars.len();
        let mut out = String::new();
        let mut i = 0;
        let mut done = false;
        while i < n {
            if !done {
                if let Some(end) = ((i + 1)..=n).rev().find(|&e| self.matches_chars(&chars[i..e])) {
                    out.push_str(replacement);
                    i = end;
                    if !all {
                        done = true;
                    }
                    continue;
                }
            }
            out.push(chars[i]);
            i += 1;
        }
        out
    }
}

fn match_toks(toks: &[PTok], s: &[char]) -> bool {
    // Iterative matcher with single-star backtracking (classic glob algorithm).
    let (mut ti, mut si) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if ti < toks.len() {
            match &toks[ti] {
                PTok::Any => {
                    star = Some((ti, si));
                    ti += 1;
                    continue;
                }
                t if tok_matches(t, s[si]) => {
                    ti += 1;
                    si += 1;
                    continue;
                }
                _ => {}
            }
        }
        match star {
            Some((st, ss)) => {
                ti = st + 1;
                si = ss + 1;
                star = Some((st, ss + 1));
            }
            None => return false,
        }
    }
    toks[ti..].iter().all(|t| *t == PTok::Any)
}

fn tok_matches(t: &PTok, c: char) -> bool {
    match t {
        PTok::Lit(l) => *l == c,
        PTok::One => true,
        PTok::Any => true,
        PTok::Class { negated, items } => items.iter().any(|&(a, b)| a <= c && c <= b) != *negated,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> Vec<(String, String)> {
        [("a", "hello"), ("empty", ""), ("path", "/usr/local/bin/tool.tar.gz"), ("sp", "x  y z"), ("ver", "1.2.3")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn x(word: &str) -> String {
        Lexer::new('\\').expand_word(word, &env()).unwrap()
    }

    fn xerr(word: &str) -> String {
        Lexer::new('\\').expand_word(word, &env()).unwrap_err().to_string()
    }

    #[test]
    fn plain_and_braced() {
        assert_eq!(x("$a"), "hello");
        assert_eq!(x("${a}"), "hello");
        assert_eq!(x("pre-${a}-post"), "pre-hello-post");
        assert_eq!(x("$a.txt"), "hello.txt");
        assert_eq!(x("$unknown"), "");
        assert_eq!(x("${unknown}x"), "x");
        assert_eq!(x("$"), "$");
        assert_eq!(x("a$ b"), "a$ b");
        assert_eq!(x("$1"), "");
    }

    #[test]
    fn default_and_alternative() {
        assert_eq!(x("${unknown:-def}"), "def");
        assert_eq!(x("${empty:-def}"), "def");
        assert_eq!(x("${a:-def}"), "hello");
        assert_eq!(x("${unknown-def}"), "def");
        assert_eq!(x("${empty-def}"), "");
        assert_eq!(x("${a:+alt}"), "alt");
        assert_eq!(x("${empty:+alt}"), "");
        assert_eq!(x("${empty+alt}"), "alt");
        assert_eq!(x("${unknown+alt}"), "");
        assert_eq!(x("${unknown:-$a}"), "hello");
        assert_eq!(x("${unknown:-${a}-x}"), "hello-x");
    }

    #[test]
    fn required() {
        assert_eq!(x("${a:?boom}"), "hello");
        assert!(xerr("${unknown?}").contains("unknown: is not allowed to be unset"));
        assert!(xerr("${empty:?}").contains("empty: is not allowed to be empty"));
        assert!(xerr("${unknown:?need it}").contains("unknown: need it"));
        assert_eq!(x("${empty?}"), "");
    }

    #[test]
    fn prefix_suffix() {
        assert_eq!(x("${path#*/}"), "usr/local/bin/tool.tar.gz");
        assert_eq!(x("${path##*/}"), "tool.tar.gz");
        assert_eq!(x("${path%.*}"), "/usr/local/bin/tool.tar");
        assert_eq!(x("${path%%.*}"), "/usr/local/bin/tool");
        assert_eq!(x("${ver%.?}"), "1.2");
        assert_eq!(x("${ver#[0-9]}"), ".2.3");
        assert_eq!(x("${ver#nomatch}"), "1.2.3");
        assert_eq!(x("${unknown#x}"), "");
        assert_eq!(x(r"${path#\/usr}"), "/local/bin/tool.tar.gz");
        assert!(xerr("${a:#x}").contains("unsupported modifier (:#)"));
    }

    #[test]
    fn substitution() {
        assert_eq!(x("${ver/./-}"), "1-2.3");
        assert_eq!(x("${ver//./-}"), "1-2-3");
        assert_eq!(x("${a/l*/L}"), "heL");
        assert_eq!(x("${a//l/}"), "heo");
        assert_eq!(x("${path//\\//:}"), ":usr:local:bin:tool.tar.gz");
        assert_eq!(x("${a/[hx]/J}"), "Jello");
        assert!(xerr("${a/x").contains("missing '/'"));
    }

    #[test]
    fn quotes_and_escapes() {
        assert_eq!(x("'$a'"), "$a");
        assert_eq!(x("\"$a\""), "hello");
        assert_eq!(x("\"it's $a\""), "it's hello");
        assert_eq!(x(r"\$a"), "$a");
        assert_eq!(x(r#""\$a \"q\" \n""#), r#"$a "q" \n"#);
        assert_eq!(x(r"a\ b"), "a b");
        assert_eq!(x("'a'\"b\"c"), "abc");
        assert!(xerr("'abc").contains("matching single-quote"));
        assert!(xerr("\"abc").contains("matching double-quote"));
        // backtick as the escape character
        let l = Lexer::new('`');
        assert_eq!(l.expand_word("`$a", &env()).unwrap(), "$a");
        assert_eq!(l.expand_word(r"C:\path\$a", &env()).unwrap(), r"C:\path\hello");
    }

    #[test]
    fn syntax_errors() {
        assert!(xerr("${a").contains("missing '}'"));
        assert!(xerr("${}").contains("bad substitution"));
        assert!(xerr("${:a}").contains("bad substitution"));
        assert!(xerr("${a:x}").contains("unsupported modifier"));
        assert!(xerr("${a b}").contains("unsupported modifier"));
        assert_eq!(xerr("${a"), "failed to process \"${a\": syntax error: missing '}'");
    }

    #[test]
    fn word_splitting() {
        let l = Lexer::new('\\');
        assert_eq!(l.expand_words("a b  c", &env()).unwrap(), ["a", "b", "c"]);
        assert_eq!(l.expand_words("\"a b\" c", &env()).unwrap(), ["a b", "c"]);
        assert_eq!(l.expand_words("$sp", &env()).unwrap(), ["x", "y", "z"]);
        assert_eq!(l.expand_words("\"$sp\"", &env()).unwrap(), ["x  y z"]);
        assert_eq!(l.expand_words(r"a\ b", &env()).unwrap(), ["a b"]);
        assert_eq!(l.expand_words("80/tcp ${unknown} 443", &env()).unwrap(), ["80/tcp", "443"]);
    }

    #[test]
    fn matches_are_reported() {
        let e = Lexer::new('\\').process("$a ${nope:-x} $a", &env()).unwrap();
        assert_eq!(e.matched.into_iter().collect::<Vec<_>>(), ["a"]);
        assert_eq!(e.unmatched.into_iter().collect::<Vec<_>>(), ["nope"]);
    }

    #[test]
    fn skip_unset_keeps_references() {
        let mut l = Lexer::new('\\');
        l.skip_unset = true;
        assert_eq!(l.expand_word("$a $b ${c} ${d:-x}", &env()).unwrap(), "hello $b ${c} ${d:-x}");
    }

    #[test]
    fn env_impls() {
        let v: Vec<String> = vec!["A=1".into(), "B=2".into(), "A=3".into()];
        assert_eq!(expand("$A$B", &v).unwrap(), "32");
        let layered = Layered(vec![("A".to_string(), "x".to_string())], v);
        assert_eq!(expand("$A$B", &layered).unwrap(), "x2");
    }

    #[test]
    fn shell_pattern() {
        let p = ShellPattern::parse("*.tar.*").unwrap();
        assert!(p.matches("a.tar.gz"));
        assert!(!p.matches("a.zip"));
        assert!(ShellPattern::parse("[!a]b").unwrap().matches("xb"));
        assert!(!ShellPattern::parse("[!a]b").unwrap().matches("ab"));
        assert!(ShellPattern::parse("a[").unwrap().matches("a["));
        assert!(ShellPattern::parse("\\*").unwrap().matches("*"));
        assert!(!ShellPattern::parse("\\*").unwrap().matches("x"));
    }
}
