//! Resolving COPY/ADD sources in the context.
//!
//! - A source is relative to the context root; a leading `/` means the root too.
//!   `..` that would leave the context is refused; symlinks on the way are
//!   followed inside the context, and one leading out of it is refused.
//! - Wildcards (`*`, `?`, `[...]`, as Go's `filepath.Match`, per path segment) may
//!   be in any segment; each match is a source. A wildcard matching nothing gives
//!   nothing (BuildKit allows it); a missing plain path is an error naming it.
//! - A directory source copies its contents.
//! - `.dockerignore`d files do not exist for COPY.
//! - `--exclude` patterns (dockerignore syntax) apply to paths inside each
//!   directory source, and to each wildcard match by its path below the
//!   wildcard's literal prefix (so `COPY --exclude=*.txt hom* /d/` skips `home.txt`).
//! - `--parents` keeps the source's parent directories: `COPY --parents a/b/c.txt /d/`
//!   gives `/d/a/b/c.txt`; a `/./` in the source marks where kept parents start
//!   (`COPY --parents ./x/./y/z.txt /d/` gives `/d/y/z.txt`); with `--parents`
//!   `**` matches any number of directories (`COPY --parents src/**/*.go /d/`).

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::MetadataExt;

use super::dockerignore::PatternMatcher;
use super::pattern::{go_match, has_wildcards, unescape};
use super::{Context, Entry, EntryKind, Error, ErrorKind, Result, Source, SourceKind};

/// Options of one COPY/ADD.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResolveOptions {
    /// `--exclude` patterns.
    pub excludes: Vec<String>,
    /// `--parents`.
    pub parents: bool,
}

const MAX_SYMLINKS: usize = 40;

impl Context {
    /// Resolve COPY/ADD source paths (already variable-expanded).
    pub fn resolve_sources(&self, patterns: &[String]) -> Result<Vec<Source>> {
        self.resolve(patterns, &ResolveOptions::default())
    }

    /// Resolve sources with `--exclude`/`--parents`.
    pub fn resolve(&self, patterns: &[String], opts: &ResolveOptions) -> Result<Vec<Source>> {
        let excludes = PatternMatcher::new(&opts.excludes)?;
        let mut out = Vec::new();
        for p in patterns {
            if opts.parents {
                out.push(self.resolve_parents(p, &excludes)?);
            } else {
                out.extend(self.resolve_one(p, &excludes)?);
            }
        }
        Ok(out)
    }

    /// Clean a source path lexically; error if it climbs out of the context.
    fn lexical(&self, pattern: &str) -> Result<Vec<String>> {
        let mut parts: Vec<String> = Vec::new();
        for seg in pattern.split('/') {
            match seg {
                "" | "." => {}
                ".." => {
                    if parts.pop().is_none() {
                        return Err(self.outside(pattern, ""));
                    }
                }
                s => parts.push(s.to_string()),
            }
        }
        Ok(parts)
    }

    /// Follow the path inside the context: symlinks are resolved with the context
    /// as root; leaving it is an error. Returns the resolved context path (which
    /// may not exist).
    fn follow(&self, pattern: &str, parts: &[String], follow_last: bool) -> Result<String> {
        let mut stack: Vec<String> = Vec::new();
        let mut pending: Vec<String> = parts.iter().rev().cloned().collect();
        let mut hops = 0;
        while let Some(c) = pending.pop() {
            match c.as_str() {
                "" | "." => continue,
                ".." => {
                    if stack.pop().is_none() && !self.chroot {
                        return Err(self.outside(pattern, "a symlink on the way leads out of the context"));
                    }
                    continue;
                }
                _ => {}
            }
            let is_last = pending.is_empty();
            let mut candidate = stack.clone();
            candidate.push(c.clone());
            let rel = candidate.join("/");
            let md = match fs::symlink_metadata(self.host_path(&rel)) {
                Ok(md) => md,
                Err(_) => {
                    // does not exist (reported by the caller); keep the rest as written
                    stack.push(c);
                    continue;
                }
            };
            if !md.file_type().is_symlink() || (is_last && !follow_last) {
                stack.push(c);
                continue;
            }
            hops += 1;
            if hops > MAX_SYMLINKS {
                return Err(Error::msg(format!("{pattern}: too many levels of symbolic links")));
            }
            let target = fs::read_link(self.host_path(&rel)).map_err(|e| self.io_err(&rel, e))?;
            let target = target.to_string_lossy().into_owned();
            if target.starts_with('/') && self.chroot {
                stack.clear();
                pending.extend(target.split('/').rev().map(str::to_string));
            } else if target.starts_with('/') {
                let root = self.root.to_string_lossy();
                let inside = target.strip_prefix(root.as_ref()).filter(|rest| rest.is_empty() || rest.starts_with('/'));
                match inside {
                    Some(rest) => {
                        stack.clear();
                        pending.extend(rest.split('/').rev().map(str::to_string));
                    }
                    None => return Err(self.outside(pattern, &format!("symlink {rel} points to {target}"))),
                }
            } else {
                pending.extend(target.split('/').rev().map(str::to_string));
            }
        }
        Ok(stack.join("/"))
    }

    /// Resolve a path (no wildcards) to a source.
    fn source_at(&self, pattern: &str, rel: &str, from_wildcard: bool, excludes: &PatternMatcher) -> Result<Source> {
        let host = self.host_path(rel);
        let md = fs::metadata(&host).map_err(|e| self.io_err(pattern_or(pattern, rel), e))?;
        let shown = pattern_or(pattern, rel);
        if md.is_dir() {
            let entries = self.walk(rel)?;
            if self.is_ignored(rel) && entries.is_empty() {
                return Err(self.not_found(shown));
            }
            let entries = apply_excludes(entries, excludes, self)?;
            Ok(Source { pattern: pattern.to_string(), path: rel.to_string(), kind: SourceKind::Dir, mode: md.mode(), from_wildcard, entries })
        } else {
            if self.is_ignored(rel) {
                return Err(self.not_found(shown));
            }
            let name = rel.rsplit('/').next().unwrap_or(rel).to_string();
            let mut e = self.entry(rel, name)?;
            // the source itself is followed: describe what it points at
            if let EntryKind::Symlink { .. } = e.kind {
                e.kind = if md.is_file() { EntryKind::File } else { EntryKind::Other };
                e.mode = md.mode();
                e.size = md.len();
            }
            let kind = if md.is_file() { SourceKind::File } else { SourceKind::Other };
            Ok(Source { pattern: pattern.to_string(), path: rel.to_string(), kind, mode: md.mode(), from_wildcard, entries: vec![e] })
        }
    }

    fn resolve_one(&self, pattern: &str, excludes: &PatternMatcher) -> Result<Vec<Source>> {
        let parts = self.lexical(pattern)?;
        let first_wild = parts.iter().position(|p| has_wildcards(p));
        let Some(w) = first_wild else {
            let parts: Vec<String> = parts.iter().map(|p| unescape(p)).collect();
            let lexical_rel = parts.join("/");
            if self.is_ignored(&lexical_rel) && !self.host_path(&lexical_rel).is_dir() {
                return Err(self.not_found(pattern));
            }
            let rel = self.follow(pattern, &parts, true)?;
            return Ok(vec![self.source_at(pattern, &rel, false, excludes)?]);
        };
        let prefix: Vec<String> = parts[..w].iter().map(|p| unescape(p)).collect();
        let glob = parts[w..].join("/");
        let depth = parts.len() - w;
        let base = self.follow(pattern, &prefix, true)?;
        if !self.host_path(&base).is_dir() {
            return Ok(Vec::new());
        }
        let mut matches = Vec::new();
        self.glob_walk(&base, &base, &glob, depth, &mut matches)?;
        let mut out = Vec::new();
        for m in matches {
            let below = super::rel_to(&base, &m);
            if excludes.matches(&below) {
                continue;
            }
            let mparts: Vec<String> = m.split('/').map(str::to_string).collect();
            let rel = self.follow(&m, &mparts, true)?;
            match self.source_at(&m, &rel, true, excludes) {
                Ok(s) => out.push(Source { pattern: pattern.to_string(), ..s }),
                // a dangling symlink or an emptied excluded directory: nothing to copy
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// Walk `dir` (not following symlinks, skipping ignored paths) for paths whose
    /// part below `base` matches `glob`; matched directories are not descended.
    fn glob_walk(&self, base: &str, dir: &str, glob: &str, depth: usize, out: &mut Vec<String>) -> Result<()> {
        let rd = fs::read_dir(self.host_path(dir)).map_err(|e| self.io_err(dir, e))?;
        let mut names: Vec<String> =
            rd.map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned())).collect::<std::result::Result<_, _>>().map_err(|e| self.io_err(dir, e))?;
        names.sort();
        for name in names {
            let rel = if dir.is_empty() { name } else { format!("{dir}/{name}") };
            let below = super::rel_to(base, &rel);
            let is_dir = fs::symlink_metadata(self.host_path(&rel)).map(|m| m.is_dir()).unwrap_or(false);
            let matched =
                go_match(glob, &below).map_err(|_| Error::new(ErrorKind::Invalid, format!("invalid source pattern {glob:?}: syntax error in pattern")))?;
            if matched {
                if !self.is_ignored(&rel) || (is_dir && !self.walk(&rel)?.is_empty()) {
                    out.push(rel);
                }
                continue;
            }
            let level = below.split('/').count();
            if is_dir && level < depth && (!self.is_ignored(&rel) || self.ignore.must_walk_excluded_dir(&rel)) {
                self.glob_walk(base, &rel, glob, depth, out)?;
            }
        }
        Ok(())
    }

    /// `--parents`: one directory-like source holding the matched paths with their
    /// parents (relative to the `/./` pivot, or to the context root).
    fn resolve_parents(&self, pattern: &str, excludes: &PatternMatcher) -> Result<Source> {
        let (pivot, inner) = match pattern.split_once("/./") {
            Some((a, b)) => (a, b),
            None => ("", pattern),
        };
        let pivot_parts = self.lexical(pivot)?;
        let pivot_rel = self.follow(pattern, &pivot_parts, true)?;
        let inner_parts = self.lexical(inner)?;
        // `..` in the inner part may not climb above the pivot
        let inner_clean = inner_parts.join("/");
        let full = if pivot_rel.is_empty() {
            inner_clean.clone()
        } else if inner_clean.is_empty() {
            pivot_rel.clone()
        } else {
            format!("{pivot_rel}/{inner_clean}")
        };
        let wild = inner_parts.iter().any(|p| has_wildcards(p));
        if inner_parts.iter().any(|p| p.contains("**")) {
            // `**` (any depth): walk the pivot and keep what the pattern selects,
            // as BuildKit's include patterns do.
            let include = PatternMatcher::new(&[inner_clean.as_str()])?;
            let all = self.walk(&pivot_rel)?;
            let keep: Vec<bool> = all.iter().map(|e| include.matches(&e.dest)).collect();
            let mut needed = BTreeSet::new();
            for (e, &k) in all.iter().zip(&keep) {
                if k {
                    let mut d = e.dest.as_str();
                    while let Some(i) = d.rfind('/') {
                        d = &d[..i];
                        needed.insert(d.to_string());
                    }
                }
            }
            let entries: Vec<Entry> =
                all.into_iter().zip(keep).filter(|(e, k)| *k || (e.kind == EntryKind::Dir && needed.contains(&e.dest))).map(|(e, _)| e).collect();
            let entries = apply_excludes(entries, excludes, self)?;
            let mode = fs::metadata(self.host_path(&pivot_rel)).map_err(|e| self.io_err(pattern, e))?.mode();
            return Ok(Source { pattern: pattern.to_string(), path: pivot_rel, kind: SourceKind::Dir, mode, from_wildcard: true, entries });
        }
        let sources = if wild {
            self.resolve_one(&full, &PatternMatcher::default())?
        } else {
            vec![self.resolve_one(&full, &PatternMatcher::default())?.into_iter().next().ok_or_else(|| self.not_found(pattern))?]
        };
        let mut entries: Vec<Entry> = Vec::new();
        let mut seen = BTreeSet::new();
        for s in sources {
            // parents of the matched path, below the pivot
            let below = super::rel_to(&pivot_rel, &s.path);
            let comps: Vec<&str> = below.split('/').filter(|c| !c.is_empty()).collect();
            for i in 1..comps.len() {
                let d = comps[..i].join("/");
                if seen.insert(d.clone()) {
                    let p = if pivot_rel.is_empty() { d.clone() } else { format!("{pivot_rel}/{d}") };
                    entries.push(self.entry(&p, d)?);
                }
            }
            match s.kind {
                SourceKind::Dir => {
                    if !below.is_empty() && seen.insert(below.clone()) {
                        let mut e = self.entry(&s.path, below.clone())?;
                        e.kind = EntryKind::Dir;
                        e.mode = s.mode;
                        entries.push(e);
                    }
                    for mut e in s.entries {
                        e.dest = if below.is_empty() { e.dest } else { format!("{below}/{}", e.dest) };
                        if seen.insert(e.dest.clone()) {
                            entries.push(e);
                        }
                    }
                }
                _ => {
                    for mut e in s.entries {
                        e.dest = below.clone();
                        if seen.insert(e.dest.clone()) {
                            entries.push(e);
                        }
                    }
                }
            }
        }
        let entries = apply_excludes(entries, excludes, self)?;
        let mode = fs::metadata(self.host_path(&pivot_rel)).map_err(|e| self.io_err(pattern, e))?.mode();
        let mut entries = entries;
        entries.sort_by(|a, b| a.dest.cmp(&b.dest));
        Ok(Source { pattern: pattern.to_string(), path: pivot_rel, kind: SourceKind::Dir, mode, from_wildcard: wild, entries })
    }
}

fn pattern_or<'a>(pattern: &'a str, rel: &'a str) -> &'a str {
    if pattern.is_empty() {
        rel
    } else {
        pattern
    }
}

/// Drop entries whose `dest` the `--exclude` patterns match; directories holding
/// re-included entries are kept.
fn apply_excludes(entries: Vec<Entry>, excludes: &PatternMatcher, _ctx: &Context) -> Result<Vec<Entry>> {
    if excludes.is_empty() {
        return Ok(entries);
    }
    let keep: Vec<bool> = entries.iter().map(|e| !excludes.matches(&e.dest)).collect();
    let mut needed_dirs = BTreeSet::new();
    for (e, &k) in entries.iter().zip(&keep) {
        if k {
            let mut d = e.dest.as_str();
            while let Some(i) = d.rfind('/') {
                d = &d[..i];
                needed_dirs.insert(d.to_string());
            }
        }
    }
    Ok(entries.into_iter().zip(keep).filter(|(e, k)| *k || (e.kind == EntryKind::Dir && needed_dirs.contains(&e.dest))).map(|(e, _)| e).collect())
}
