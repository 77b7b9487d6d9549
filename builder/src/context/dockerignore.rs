//! `.dockerignore` files and the pattern matcher Docker uses for them (and for
//! `COPY --exclude`): moby/patternmatcher semantics.
//!
//! - one pattern a line; lines starting with `#` are comments; surrounding
//!   whitespace is trimmed; a UTF-8 BOM is dropped;
//! - patterns are cleaned like Go's `filepath.Clean`, a leading `/` is dropped
//!   (so `/foo` and `./foo` mean `foo`);
//! - `*` matches within one path segment, `?` one character, `[...]` a class,
//!   `\` escapes; `**` matches any number of directories (also none);
//! - `!pattern` re-includes; the last matching pattern wins;
//! - a pattern matching a directory matches everything inside it.

use std::io;
use std::path::Path;

use super::pattern::{self, BadPattern};

/// Go's `filepath.Clean` on a slash-separated path.
pub fn clean_path(p: &str) -> String {
    if p.is_empty() {
        return ".".into();
    }
    let rooted = p.starts_with('/');
    let mut out: Vec<&str> = Vec::new();
    for seg in p.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                if out.last().is_some_and(|l| *l != "..") {
                    out.pop();
                } else if !rooted {
                    out.push("..");
                }
            }
            s => out.push(s),
        }
    }
    let joined = out.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".into(),
        (false, false) => joined,
    }
}

/// Parse the text of a `.dockerignore` into patterns (moby's `ignorefile.ReadAll`).
pub fn read_patterns(text: &str) -> Vec<String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut out = Vec::new();
    for line in text.lines() {
        if line.starts_with('#') {
            continue;
        }
        let mut p = line.trim();
        if p.is_empty() {
            continue;
        }
        let invert = p.starts_with('!');
        if invert {
            p = p[1..].trim();
        }
        let mut pat = String::new();
        if !p.is_empty() {
            let mut c = clean_path(p);
            if c.len() > 1 && c.starts_with('/') {
                c.remove(0);
            }
            pat = c;
        }
        out.push(if invert { format!("!{pat}") } else { pat });
    }
    out
}

/// Find and read the ignore file for a build: `<dockerfile>.dockerignore` next to
/// the Dockerfile if there is one, else `.dockerignore` at the context root.
/// Returns the patterns and the file they came from (empty when there is none).
pub fn load(context_dir: &Path, dockerfile: Option<&Path>) -> io::Result<(Vec<String>, Option<std::path::PathBuf>)> {
    let mut candidates = Vec::new();
    if let Some(df) = dockerfile {
        let df = if df.is_absolute() { df.to_path_buf() } else { context_dir.join(df) };
        if let Some(name) = df.file_name() {
            let mut n = name.to_os_string();
            n.push(".dockerignore");
            candidates.push(df.with_file_name(n));
        }
    }
    candidates.push(context_dir.join(".dockerignore"));
    for c in candidates {
        match std::fs::read(&c) {
            Ok(bytes) => return Ok((read_patterns(&String::from_utf8_lossy(&bytes)), Some(c))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        }
    }
    Ok((Vec::new(), None))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MatchType {
    Exact,
    Prefix,
    Suffix,
    Regexp,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Lit(char),
    /// `*`: `[^/]*`
    Star,
    /// `?`: `[^/]`
    One,
    /// `**/` or inner `**`: `(.*/)?`
    DirStar,
    /// trailing `**` after wildcards: `.*`
    Rest,
    Class {
        negated: bool,
        items: Vec<(char, char)>,
    },
}

/// One pattern of a [`PatternMatcher`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    cleaned: String,
    exclusion: bool,
    match_type: MatchType,
    toks: Vec<Tok>,
}

impl Pattern {
    /// The cleaned pattern (without `!`).
    pub fn as_str(&self) -> &str {
        &self.cleaned
    }
    /// Whether this is a `!` exception.
    pub fn is_exception(&self) -> bool {
        self.exclusion
    }

    fn compile(cleaned: String, exclusion: bool) -> Pattern {
        let chars: Vec<char> = cleaned.chars().collect();
        let mut toks = Vec::new();
        let mut mt = MatchType::Exact;
        let mut i = 0;
        let mut first = true;
        while i < chars.len() {
            let ch = chars[i];
            i += 1;
            let at_start = first;
            first = false;
            match ch {
                '*' => {
                    if chars.get(i) == Some(&'*') {
                        i += 1;
                        if chars.get(i) == Some(&'/') {
                            i += 1;
                        }
                        if i >= chars.len() {
                            if mt == MatchType::Exact {
                                mt = MatchType::Prefix;
                            } else {
                                toks.push(Tok::Rest);
                                mt = MatchType::Regexp;
                            }
                        } else {
                            toks.push(Tok::DirStar);
                            mt = MatchType::Regexp;
                        }
                        if at_start {
                            mt = MatchType::Suffix;
                        }
                    } else {
                        toks.push(Tok::Star);
                        mt = MatchType::Regexp;
                    }
                }
                '?' => {
                    toks.push(Tok::One);
                    mt = MatchType::Regexp;
                }
                '\\' => {
                    if let Some(&n) = chars.get(i) {
                        i += 1;
                        toks.push(Tok::Lit(n));
                        mt = MatchType::Regexp;
                    } else {
                        toks.push(Tok::Lit('\\'));
                    }
                }
                '[' => {
                    mt = MatchType::Regexp;
                    let mut j = i;
                    let negated = chars.get(j) == Some(&'^');
                    if negated {
                        j += 1;
                    }
                    let mut items = Vec::new();
                    let mut n = 0;
                    while j < chars.len() {
                        if chars[j] == ']' && n > 0 {
                            break;
                        }
                        let mut lo = chars[j];
                        j += 1;
                        if lo == '\\' && j < chars.len() {
                            lo = chars[j];
                            j += 1;
                        }
                        let mut hi = lo;
                        if chars.get(j) == Some(&'-') && chars.get(j + 1).is_some_and(|&c| c != ']') {
                            hi = chars[j + 1];
                            j += 2;
                            if hi == '\\' && j < chars.len() {
                                hi = chars[j];
                                j += 1;
                            }
                        }
                        items.push((lo, hi));
                        n += 1;
                    }
                    // validated by filepath.Match already, so the class is closed
                    i = (j + 1).min(chars.len());
                    toks.push(Tok::Class { negated, items });
                }
                c => toks.push(Tok::Lit(c)),
            }
        }
        Pattern { cleaned, exclusion, match_type: mt, toks }
    }

    /// Whether the pattern matches this (clean, slash-separated) path exactly.
    pub fn matches(&self, path: &str) -> bool {
        match self.match_type {
            MatchType::Exact => path == self.cleaned,
            MatchType::Prefix => path.starts_with(&self.cleaned[..self.cleaned.len() - 2]),
            MatchType::Suffix => {
                let suffix = &self.cleaned[2..];
                if path.ends_with(suffix) {
                    return true;
                }
                suffix.strip_prefix('/').is_some_and(|s| path == s)
            }
            MatchType::Regexp => {
                let chars: Vec<char> = path.chars().collect();
                match_toks(&self.toks, &chars)
            }
        }
    }

    /// The pattern without a trailing `/**` or `/*` (fsutil uses it to decide
    /// whether an excluded directory must still be walked).
    fn without_trailing_glob(&self) -> &str {
        let s = self.cleaned.as_str();
        let s = s.strip_suffix("/**").unwrap_or(s);
        s.strip_suffix("/*").unwrap_or(s)
    }
}

fn match_toks(toks: &[Tok], s: &[char]) -> bool {
    let Some((t, rest)) = toks.split_first() else {
        return s.is_empty();
    };
    match t {
        Tok::Lit(c) => s.first() == Some(c) && match_toks(rest, &s[1..]),
        Tok::One => s.first().is_some_and(|&c| c != '/') && match_toks(rest, &s[1..]),
        Tok::Class { negated, items } => s.first().is_some_and(|&c| items.iter().any(|&(a, b)| a <= c && c <= b) != *negated) && match_toks(rest, &s[1..]),
        Tok::Star => {
            let mut k = 0;
            loop {
                if match_toks(rest, &s[k..]) {
                    return true;
                }
                if k == s.len() || s[k] == '/' {
                    return false;
                }
                k += 1;
            }
        }
        Tok::DirStar => {
            if match_toks(rest, s) {
                return true;
            }
            (0..s.len()).any(|k| s[k] == '/' && match_toks(rest, &s[k + 1..]))
        }
        Tok::Rest => (0..=s.len()).any(|k| match_toks(rest, &s[k..])),
    }
}

/// An invalid ignore/exclude pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatternError {
    pub pattern: String,
    pub msg: String,
}

impl std::fmt::Display for PatternError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "invalid pattern {:?}: {}", self.pattern, self.msg)
    }
}

impl std::error::Error for PatternError {}

/// A list of patterns; the last one matching a path decides.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PatternMatcher {
    patterns: Vec<Pattern>,
    exclusions: bool,
}

impl PatternMatcher {
    /// Build from patterns (as [`read_patterns`] returns them, or `--exclude` values).
    pub fn new<S: AsRef<str>>(patterns: &[S]) -> Result<PatternMatcher, PatternError> {
        let mut pm = PatternMatcher::default();
        for p in patterns {
            let orig = p.as_ref();
            let p = orig.trim();
            if p.is_empty() {
                continue;
            }
            let mut p = clean_path(p);
            let exclusion = p.starts_with('!');
            if exclusion {
                if p.len() == 1 {
                    return Err(PatternError { pattern: orig.to_string(), msg: "illegal exclusion pattern: \"!\"".into() });
                }
                p.remove(0);
                pm.exclusions = true;
            }
            pattern::validate(&p).map_err(|BadPattern| PatternError { pattern: orig.to_string(), msg: "syntax error in pattern".into() })?;
            pm.patterns.push(Pattern::compile(p, exclusion));
        }
        Ok(pm)
    }

    /// No patterns at all.
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// Whether there are `!` exceptions.
    pub fn has_exceptions(&self) -> bool {
        self.exclusions
    }

    pub fn patterns(&self) -> &[Pattern] {
        &self.patterns
    }

    /// Whether `path` (relative, slash-separated) is excluded: the last pattern that
    /// matches it or one of its parent directories decides
    /// (`MatchesOrParentMatches`).
    pub fn matches(&self, path: &str) -> bool {
        let file = clean_path(path);
        if file == "." {
            return false;
        }
        let parent_dirs: Vec<&str> = match file.rfind('/') {
            Some(i) => file[..i].split('/').collect(),
            None => Vec::new(),
        };
        let mut matched = false;
        for p in &self.patterns {
            if p.exclusion != matched {
                continue;
            }
            let mut m = p.matches(&file);
            if !m {
                for i in 0..parent_dirs.len() {
                    if p.matches(&parent_dirs[..=i].join("/")) {
                        m = true;
                        break;
                    }
                }
            }
            if m {
                matched = !p.exclusion;
            }
        }
        matched
    }

    /// For an excluded directory: whether something inside it may still be
    /// re-included, so it must be walked (fsutil's rule: any exception with
    /// wildcards forces a walk; otherwise only an exception under this directory).
    pub fn must_walk_excluded_dir(&self, dir: &str) -> bool {
        if !self.exclusions {
            return false;
        }
        let wildcard_exceptions = self.patterns.iter().any(|p| p.exclusion && p.without_trailing_glob().contains(['*', '[', ']', '?', '^', '\\']));
        if wildcard_exceptions {
            return true;
        }
        let dir_slash = format!("{dir}/");
        self.patterns.iter().any(|p| p.exclusion && format!("{}/", p.without_trailing_glob()).starts_with(&dir_slash))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m<S: AsRef<str>>(patterns: &[S], path: &str) -> bool {
        PatternMatcher::new(patterns).unwrap().matches(path)
    }

    #[test]
    fn clean() {
        assert_eq!(clean_path("./a//b/../c/"), "a/c");
        assert_eq!(clean_path("/../a"), "/a");
        assert_eq!(clean_path("../a"), "../a");
        assert_eq!(clean_path(""), ".");
        assert_eq!(clean_path("a/.."), ".");
    }

    #[test]
    fn reads_file() {
        let text = "\u{feff}# comment\n\n  *.log  \n/build\n./tmp/\n!  keep.log\n # not a comment?\n!\n";
        assert_eq!(read_patterns(text), ["*.log", "build", "tmp", "!keep.log", "# not a comment?", "!"]);
        assert!(PatternMatcher::new(&read_patterns("!\n")).is_err());
    }

    // Cases from moby/patternmatcher's tests.
    #[test]
    fn moby_cases() {
        assert!(m(&["**"], "file"));
        assert!(m(&["**"], "file/"));
        assert!(m(&["**/"], "file"));
        assert!(m(&["**/"], "file/"));
        assert!(m(&["**"], "/"));
        assert!(m(&["**/"], "/"));
        assert!(m(&["**"], "dir/file"));
        assert!(m(&["**/"], "dir/file"));
        assert!(m(&["**"], "dir/file/"));
        assert!(m(&["**/"], "dir/file/"));
        assert!(m(&["**/**"], "dir/file"));
        assert!(m(&["**/**"], "dir/file/"));
        assert!(m(&["dir/**"], "dir/file"));
        assert!(m(&["dir/**"], "dir/file/"));
        assert!(m(&["dir/**"], "dir/dir2/file"));
        assert!(m(&["dir/**"], "dir/dir2/file/"));
        assert!(m(&["**/dir"], "dir"));
        assert!(m(&["**/dir"], "dir/file"));
        assert!(m(&["**/dir2/*"], "dir/dir2/file"));
        assert!(m(&["**/dir2/*"], "dir/dir2/file/"));
        assert!(m(&["**/dir2/**"], "dir/dir2/dir3/file"));
        assert!(m(&["**/dir2/**"], "dir/dir2/dir3/file/"));
        assert!(m(&["**file"], "file"));
        assert!(m(&["**file"], "dir/file"));
        assert!(m(&["**/file"], "dir/file"));
        assert!(m(&["**file"], "dir/dir/file"));
        assert!(m(&["**/file"], "dir/dir/file"));
        assert!(m(&["**/file*"], "dir/dir/file"));
        assert!(m(&["**/file*"], "dir/dir/file.txt"));
        assert!(m(&["**/file*txt"], "dir/dir/file.txt"));
        assert!(m(&["**/file*.txt"], "dir/dir/file.txt"));
        assert!(m(&["**/file*.txt*"], "dir/dir/file.txt"));
        assert!(m(&["**/**/*.txt"], "dir/dir/file.txt"));
        assert!(!m(&["**/**/*.txt2"], "dir/dir/file.txt"));
        assert!(m(&["**/*.txt"], "file.txt"));
        assert!(m(&["**/**/*.txt"], "file.txt"));
        assert!(m(&["a**/*.txt"], "a/file.txt"));
        assert!(m(&["a**/*.txt"], "a/dir/file.txt"));
        assert!(m(&["a**/*.txt"], "a/dir/dir/file.txt"));
        assert!(!m(&["a/*.txt"], "a/dir/file.txt"));
        assert!(m(&["a/*.txt"], "a/file.txt"));
        assert!(m(&["a/*.txt**"], "a/file.txt"));
        assert!(!m(&["a[b-d]e"], "ae"));
        assert!(m(&["a[b-d]e"], "ace"));
        assert!(!m(&["a[b-d]e"], "aae"));
        assert!(m(&["a[^b-d]e"], "aze"));
        assert!(m(&[".*"], ".foo"));
        assert!(!m(&[".*"], "foo"));
        assert!(m(&["abc.def"], "abc.def"));
        assert!(!m(&["abc.def"], "abcdef"));
        assert!(!m(&["abc.def"], "abcZdef"));
        assert!(m(&["abc?def"], "abcZdef"));
        assert!(m(&["abc/**"], "abc/def/ghi"));
        assert!(m(&["abc/**/def"], "abc/def"));
        assert!(m(&["abc/**/def"], "abc/x/def"));
        assert!(m(&["abc/**/def"], "abc/x/y/def"));
        assert!(!m(&["abc/**/def"], "abcdef"));
        assert!(m(&["**/foo/bar"], "foo/bar"));
        assert!(m(&["**/foo/bar"], "dir/foo/bar"));
        assert!(m(&["**/foo/bar"], "dir/dir2/foo/bar"));
        assert!(m(&["abc/**"], "abc/def"));
        assert!(!m(&["abc/**"], "abc"));
        assert!(m(&["abc/**/"], "abc/def"));
        assert!(m(&["**/.foo"], ".foo"));
        assert!(!m(&["**/.foo"], "bar.foo"));
        assert!(m(&["a(b)c/def"], "a(b)c/def"));
        assert!(!m(&["a(b)c/def"], "a(b)c/xyz"));
        assert!(m(&["a.|)$(}+{bc"], "a.|)$(}+{bc"));
        assert!(m(&["dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl"], "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl"));
        assert!(m(&["dist/*.whl"], "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl"));
    }

    #[test]
    fn docker_behaviours() {
        // a directory pattern excludes what is inside
        assert!(m(&["node_modules"], "node_modules/a/b.js"));
        // * does not cross directories, only the top level is matched by "*.md"
        assert!(m(&["*.md"], "README.md"));
        assert!(!m(&["*.md"], "docs/guide.md"));
        assert!(m(&["**/*.md"], "docs/guide.md"));
        assert!(m(&["*/temp*"], "somedir/temporary.txt"));
        assert!(!m(&["*/temp*"], "temp"));
        assert!(m(&["*/*/temp*"], "a/b/temp.txt"));
        assert!(m(&["temp?"], "temp1"));
        // exceptions: last match wins
        let pats = ["*.md", "!README*.md", "README-secret.md"];
        assert!(m(&pats, "CHANGES.md"));
        assert!(!m(&pats, "README.md"));
        assert!(m(&pats, "README-secret.md"));
        let pats = ["*.md", "README-secret.md", "!README*.md"];
        assert!(!m(&pats, "README-secret.md"));
        // exclude everything but a few
        let pats = ["*", "!src", "!package.json"];
        assert!(m(&pats, "Dockerfile"));
        assert!(!m(&pats, "src/main.rs"));
        assert!(!m(&pats, "package.json"));
        // leading slash and ./ are the context root
        assert!(m(&read_patterns("/secret\n"), "secret"));
        assert!(m(&read_patterns("./build/\n"), "build/out.o"));
        assert!(!m(&read_patterns("/secret\n"), "sub/secret"));
        // escapes
        assert!(m(&["a\\*b"], "a*b"));
        assert!(!m(&["a\\*b"], "axb"));
        // the root itself is never excluded
        assert!(!m(&["*"], "."));
    }

    #[test]
    fn bad_patterns() {
        assert!(PatternMatcher::new(&["[a-"]).is_err());
        assert!(PatternMatcher::new(&["a\\"]).is_err());
        assert!(PatternMatcher::new(&["!"]).is_err());
    }

    #[test]
    fn walk_excluded_dirs() {
        let pm = PatternMatcher::new(&["vendor", "!vendor/keep"]).unwrap();
        assert!(pm.must_walk_excluded_dir("vendor"));
        assert!(!pm.must_walk_excluded_dir("other"));
        let pm = PatternMatcher::new(&["*", "!**/*.go"]).unwrap();
        assert!(pm.must_walk_excluded_dir("anything"));
        let pm = PatternMatcher::new(&["vendor"]).unwrap();
        assert!(!pm.must_walk_excluded_dir("vendor"));
    }
}
