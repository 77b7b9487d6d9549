//! The one error type of berth-build: a message, the context it was reached through,
//! a kind for the callers that branch on it (the registry's fallbacks and retries), and
//! the Dockerfile location, set once by whoever knows which instruction was being
//! parsed or run. Displays as `Dockerfile:3: pull busybox: manifest unknown (404)`.
//!
//! Context is added with [`Context::context`] on any `Result` whose error converts
//! (io, JSON, digests, plain messages), instead of re-wrapping messages as strings, so
//! the kind and the location survive on the way up.

use std::fmt;

/// What kind of failure, for callers that react differently (fall back, retry, ask to
/// log in). Most errors are [`ErrorKind::Other`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Nothing a caller branches on.
    Other,
    /// A reference, digest or platform that does not parse.
    Invalid,
    /// 404: manifest or blob unknown, repository unknown.
    NotFound,
    /// 401: no or rejected credentials.
    Unauthorized,
    /// 403: authenticated but not allowed.
    Denied,
    /// The registry could not be reached (refused, unreachable, DNS, timeout).
    Connect,
    /// TLS failed (certificate not trusted, handshake error).
    Tls,
    /// A connection dropped or timed out midway (transient).
    Network,
    /// Another HTTP status (after retries for 429/5xx).
    Status(u16),
    /// Content did not match its digest or size.
    Digest,
    /// The registry answered something malformed or unexpected.
    Protocol,
    /// No manifest for the requested platform.
    Platform,
    /// A path that leads out of the build context or out of a `COPY --from` rootfs.
    Outside,
    /// Local I/O (the store, blob files, config files).
    Io,
    /// Credential configuration (unreadable auth file, failing helper).
    Config,
}

/// Where in a Dockerfile an error happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The name shown (`Dockerfile`, or the `-f` file's name).
    pub file: String,
    /// 1-based; 0 when the error is about the whole file.
    pub line: usize,
    /// The instruction's last line (continuations, heredoc bodies); `line` if one.
    pub end_line: usize,
}

#[derive(Debug, Clone)]
pub struct Error {
    // Boxed: a Result<T> stays the size of T plus a pointer on the success path.
    inner: Box<Inner>,
}

#[derive(Debug, Clone)]
struct Inner {
    kind: ErrorKind,
    message: String,
    /// Outermost first: `pull busybox`, then `connect ...`.
    context: Vec<String>,
    location: Option<Location>,
    /// The Dockerfile lines around `location`, once the text is at hand (see [`excerpt`]).
    excerpt: Option<String>,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Error {
        Error { inner: Box::new(Inner { kind, message: message.into(), context: Vec::new(), location: None, excerpt: None }) }
    }

    /// An error of kind [`ErrorKind::Other`].
    pub fn msg(message: impl fmt::Display) -> Error {
        Error::new(ErrorKind::Other, message.to_string())
    }

    /// An error at a Dockerfile line (parse errors, planning errors).
    pub fn at_line(file: &str, line: usize, message: impl fmt::Display) -> Error {
        Error::msg(message).at(file, line)
    }

    pub fn kind(&self) -> ErrorKind {
        self.inner.kind
    }

    /// The message without context or location.
    pub fn detail(&self) -> &str {
        &self.inner.message
    }

    pub fn location(&self) -> Option<&Location> {
        self.inner.location.as_ref()
    }

    /// Prefixes what was being done (`pull REF`) to the message.
    pub fn context(mut self, c: impl fmt::Display) -> Error {
        self.inner.context.insert(0, c.to_string());
        self
    }

    /// Attaches a Dockerfile location unless one is already there: the innermost
    /// instruction that knows its line names it, outer ones do not move it.
    pub fn at(self, file: &str, line: usize) -> Error {
        self.at_lines(file, line, line)
    }

    /// [`Error::at`] for an instruction spanning `line..=end_line`.
    pub fn at_lines(mut self, file: &str, line: usize, end_line: usize) -> Error {
        if self.inner.location.is_none() {
            self.inner.location = Some(Location { file: file.to_string(), line, end_line: end_line.max(line) });
        }
        self
    }

    /// Attaches the excerpt of `text` (the Dockerfile the location refers to).
    pub fn with_excerpt(mut self, text: &str) -> Error {
        if let Some(l) = &self.inner.location {
            if l.line > 0 {
                self.inner.excerpt = Some(excerpt(&l.file, text, l.line, l.end_line));
            }
        }
        self
    }

    /// The excerpt, if one was attached.
    pub fn excerpt(&self) -> Option<&str> {
        self.inner.excerpt.as_deref()
    }

    /// Whether trying the whole operation again may help (5xx, 429, dropped connections).
    pub fn is_transient(&self) -> bool {
        match self.inner.kind {
            ErrorKind::Status(s) => s == 429 || s >= 500,
            ErrorKind::Network => true,
            _ => false,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.inner.location {
            Some(Location { file, line: 0, .. }) => write!(f, "{file}: ")?,
            Some(Location { file, line, .. }) => write!(f, "{file}:{line}: ")?,
            None => {}
        }
        for c in &self.inner.context {
            write!(f, "{c}: ")?;
        }
        f.write_str(&self.inner.message)
    }
}

impl std::error::Error for Error {}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Error {
        Error::new(ErrorKind::Io, e.to_string())
    }
}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Error {
        Error::msg(e)
    }
}

impl From<berth_spec::image::DigestError> for Error {
    fn from(e: berth_spec::image::DigestError) -> Error {
        Error::new(ErrorKind::Invalid, e.0)
    }
}

impl From<crate::dockerfile::ExpandError> for Error {
    fn from(e: crate::dockerfile::ExpandError) -> Error {
        Error::msg(e)
    }
}

impl From<berth_spec::image::ImageError> for Error {
    fn from(e: berth_spec::image::ImageError) -> Error {
        Error::msg(e)
    }
}

impl From<String> for Error {
    /// A plain message.
    fn from(s: String) -> Error {
        Error::new(ErrorKind::Other, s)
    }
}

impl From<&str> for Error {
    fn from(s: &str) -> Error {
        Error::new(ErrorKind::Other, s)
    }
}

/// Adds context to the error of a `Result`, converting it to [`Error`] on the way.
pub trait Context<T> {
    fn context(self, c: impl fmt::Display) -> Result<T>;
    fn with_context<C: fmt::Display>(self, f: impl FnOnce() -> C) -> Result<T>;
    /// Attaches a Dockerfile location (kept if one is already set).
    fn at(self, file: &str, line: usize) -> Result<T>;
}

impl<T, E: Into<Error>> Context<T> for std::result::Result<T, E> {
    fn context(self, c: impl fmt::Display) -> Result<T> {
        self.map_err(|e| e.into().context(c))
    }

    fn with_context<C: fmt::Display>(self, f: impl FnOnce() -> C) -> Result<T> {
        self.map_err(|e| e.into().context(f()))
    }

    fn at(self, file: &str, line: usize) -> Result<T> {
        self.map_err(|e| e.into().at(file, line))
    }
}

/// How many lines before and after the failing instruction an excerpt shows.
const BEFORE: usize = 2;
const AFTER: usize = 1;
const RULE: &str = "--------------------";

/// The lines of `text` around `line..=end_line` (1-based) with those lines marked,
/// as BuildKit shows a failing instruction:
///
/// ```text
/// Dockerfile:3
/// --------------------
///    1 |     FROM base
///    2 |     RUN true
///    3 | >>> RUN false
///    4 |     COPY a b
/// --------------------
/// ```
pub fn excerpt(file: &str, text: &str, line: usize, end_line: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = format!("{file}:{line}\n{RULE}\n");
    if line >= 1 && line <= lines.len() {
        let first = line.saturating_sub(BEFORE).max(1);
        let last = (end_line.max(line) + AFTER).min(lines.len());
        for (n, l) in lines.iter().enumerate().take(last).skip(first - 1).map(|(i, l)| (i + 1, l)) {
            let mark = if (line..=end_line).contains(&n) { ">>> " } else { "    " };
            out.push_str(&format!("{n:>4} | {mark}{l}\n"));
        }
    }
    out.push_str(RULE);
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpt_marks_the_line_with_two_before_and_one_after() {
        let text = "FROM base\nRUN true\nRUN false\nCOPY a b\nCMD x\n";
        assert_eq!(
            excerpt("Dockerfile", text, 3, 3),
            "Dockerfile:3\n--------------------\n   1 |     FROM base\n   2 |     RUN true\n   3 | >>> RUN false\n   4 |     COPY a b\n--------------------\n"
        );
    }

    #[test]
    fn excerpt_is_clipped_at_the_ends_of_the_file() {
        let text = "FROM base\nRUN false";
        assert_eq!(excerpt("f", text, 1, 1), "f:1\n--------------------\n   1 | >>> FROM base\n   2 |     RUN false\n--------------------\n");
        assert_eq!(excerpt("f", text, 2, 2), "f:2\n--------------------\n   1 |     FROM base\n   2 | >>> RUN false\n--------------------\n");
        // A line past the end shows no source rather than panicking.
        assert_eq!(excerpt("f", text, 9, 9), "f:9\n--------------------\n--------------------\n");
    }

    #[test]
    fn excerpt_marks_every_line_of_a_multi_line_instruction() {
        let text = "FROM base\nRUN a \\\n  && b \\\n  && false\nCMD x\nCMD y\n";
        assert_eq!(
            excerpt("Dockerfile", text, 2, 4),
            "Dockerfile:2\n--------------------\n   1 |     FROM base\n   2 | >>> RUN a \\\n   3 | >>>   && b \\\n   4 | >>>   && false\n   5 |     CMD x\n--------------------\n"
        );
    }

    #[test]
    fn display_puts_location_then_context_then_message() {
        let e = Error::new(ErrorKind::NotFound, "manifest unknown (404)").context("pull busybox").at("Dockerfile", 1);
        assert_eq!(e.to_string(), "Dockerfile:1: pull busybox: manifest unknown (404)");
        assert_eq!(e.kind(), ErrorKind::NotFound);
        assert_eq!(e.detail(), "manifest unknown (404)");
        assert_eq!(Error::msg("no stage").at("Dockerfile", 0).to_string(), "Dockerfile: no stage");
    }

    #[test]
    fn the_first_location_set_is_kept() {
        let e = Error::msg("RUN failed").at("Dockerfile", 5).at("Dockerfile", 1);
        assert_eq!(e.location(), Some(&Location { file: "Dockerfile".into(), line: 5, end_line: 5 }));
        let r: std::result::Result<(), std::io::Error> = Err(std::io::Error::other("boom"));
        let e = r.context("write x").at("D", 2).unwrap_err();
        assert_eq!((e.kind(), e.to_string()), (ErrorKind::Io, "D:2: write x: boom".to_string()));
    }

    #[test]
    fn excerpt_is_attached_only_with_a_line() {
        let text = "FROM a\nFOO b\n";
        assert!(Error::msg("x").with_excerpt(text).excerpt().is_none());
        assert!(Error::msg("x").at("Dockerfile", 0).with_excerpt(text).excerpt().is_none());
        let e = Error::msg("unknown instruction: FOO").at("Dockerfile", 2).with_excerpt(text);
        assert!(e.excerpt().unwrap().contains("   2 | >>> FOO b\n"));
    }
}
