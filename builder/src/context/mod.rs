//! The build context: a directory filtered by `.dockerignore`, the resolution of
//! COPY/ADD sources inside it (wildcards, directories, `--exclude`, `--parents`),
//! refusal of anything outside it, and a content hash for the cache key.
//!
//! Paths handed out are relative to the context root, `/`-separated, without a
//! leading `/` (`""` is the root itself).

pub mod add;
pub mod dockerignore;
mod hash;
pub mod pattern;
mod sources;

use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

pub use add::{classify_add_source, detect_archive, detect_archive_file, AddSourceKind, ArchiveKind, Checksum};
pub use dockerignore::{read_patterns, PatternError, PatternMatcher};
pub use sources::ResolveOptions;

/// What kind of file an entry is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    File,
    Dir,
    /// A symbolic link, copied as a link (never followed inside a copied directory).
    Symlink {
        target: String,
    },
    /// FIFO, socket or device node.
    Other,
}

/// One file, directory or link to copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Path in the context.
    pub path: String,
    /// Path relative to the destination directory: for a file source its file
    /// name; for a directory source the path inside it; with `--parents` the path
    /// from the context root (or from the `/./` pivot).
    pub dest: String,
    pub kind: EntryKind,
    /// Full `st_mode` (type and permission bits).
    pub mode: u32,
    pub size: u64,
    /// Owner in the context (Docker ignores it: copied files belong to root or `--chown`).
    pub uid: u32,
    pub gid: u32,
}

impl Entry {
    /// Permission bits (with setuid/setgid/sticky).
    pub fn perm(&self) -> u32 {
        self.mode & 0o7777
    }
}

/// What a source pattern resolved to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceKind {
    /// A file: copy it to `dest` (or into `dest/` when the destination is a directory).
    File,
    /// A directory: copy its contents (not the directory itself) into the destination.
    Dir,
    /// A FIFO, socket or device.
    Other,
}

/// One resolved COPY/ADD source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// The pattern as given.
    pub pattern: String,
    /// Resolved path in the context (symlinks on the way followed, inside the context).
    pub path: String,
    pub kind: SourceKind,
    /// `st_mode` of the resolved path (for a directory, what the destination
    /// directory gets when it is created).
    pub mode: u32,
    /// Came from a wildcard match (then the destination must be a directory when
    /// there are several).
    pub from_wildcard: bool,
    /// What to copy, sorted by `dest`; parents before children. For a file source:
    /// the file. For a directory source: everything in it (not itself).
    pub entries: Vec<Entry>,
}

// Context errors are the crate's Error; callers branch on ErrorKind::NotFound and
// ErrorKind::Outside. Each names the path it is about, and for a rootfs context
// (`COPY --from`) what that rootfs is, since the path leaves the image, not the
// build context.
pub use crate::error::{Error, ErrorKind, Result};

impl From<PatternError> for Error {
    fn from(e: PatternError) -> Self {
        Error::new(ErrorKind::Invalid, e.to_string())
    }
}

/// A build context directory with its ignore rules.
#[derive(Debug, Clone)]
pub struct Context {
    root: PathBuf,
    ignore: PatternMatcher,
    /// Resolve absolute symlinks and `..` as if `root` were `/` (for a stage's
    /// root filesystem, `COPY --from`) instead of refusing them.
    chroot: bool,
    /// What a rootfs context is, for its errors (`image busybox`); None for the build
    /// context.
    what: Option<String>,
}

impl Context {
    /// Open `dir` (made absolute and canonical) with these ignore rules.
    pub fn open(dir: impl AsRef<Path>, ignore: PatternMatcher) -> Result<Context> {
        let d = dir.as_ref();
        let root = fs::canonicalize(d).map_err(|e| Error::from(e).context(d.display()))?;
        if !root.is_dir() {
            return Err(Error::msg(format!("build context {} is not a directory", d.display())));
        }
        Ok(Context { root, ignore, chroot: false, what: None })
    }

    /// Open a stage's (or image's) root filesystem as a source for
    /// `COPY --from`: nothing is ignored, and symlinks resolve as inside a chroot
    /// (an absolute target is taken from `dir`, `..` stops at `dir`), so nothing
    /// outside `dir` is ever reached. `what` names it in errors (`image busybox`).
    pub fn open_rootfs(dir: impl AsRef<Path>, what: &str) -> Result<Context> {
        let mut c = Context::open(dir, PatternMatcher::default())?;
        c.chroot = true;
        c.what = Some(what.to_string());
        Ok(c)
    }

    /// `path` is missing, or excluded by `.dockerignore`.
    fn not_found(&self, path: &str) -> Error {
        let msg = match &self.what {
            Some(what) => format!("{path:?} not found in the {what}"),
            None => format!("failed to compute cache key: {path:?} not found: not in the build context or excluded by .dockerignore"),
        };
        Error::new(ErrorKind::NotFound, msg)
    }

    /// `path` (`../x`, or through a symlink) leads out of the context; a path that
    /// leaves a rootfs leaves the image, not the build context.
    fn outside(&self, path: &str, detail: &str) -> Error {
        let msg = match &self.what {
            Some(what) => format!("forbidden path {path}: it leaves the {what}"),
            None if detail.is_empty() => format!("forbidden path outside the build context: {path}"),
            None => format!("forbidden path outside the build context: {path} ({detail})"),
        };
        Error::new(ErrorKind::Outside, msg)
    }

    /// An I/O error on `path`; a missing path is [`Context::not_found`].
    fn io_err(&self, path: &str, err: io::Error) -> Error {
        if err.kind() == io::ErrorKind::NotFound {
            self.not_found(path)
        } else {
            Error::from(err).context(path)
        }
    }

    /// Open `dir` with the ignore file that applies (`<dockerfile>.dockerignore`
    /// next to the Dockerfile, else `.dockerignore` at the root).
    pub fn open_with_dockerignore(dir: impl AsRef<Path>, dockerfile: Option<&Path>) -> Result<Context> {
        let d = dir.as_ref();
        let (patterns, _) = dockerignore::load(d, dockerfile).map_err(|e| Error::from(e).context(d.display()))?;
        Context::open(d, PatternMatcher::new(&patterns)?)
    }

    /// The canonical root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn ignore(&self) -> &PatternMatcher {
        &self.ignore
    }

    /// The host path of a context path.
    pub fn host_path(&self, rel: &str) -> PathBuf {
        if rel.is_empty() {
            self.root.clone()
        } else {
            self.root.join(rel)
        }
    }

    /// Whether `.dockerignore` leaves this context path out.
    pub fn is_ignored(&self, rel: &str) -> bool {
        !rel.is_empty() && self.ignore.matches(rel)
    }

    fn entry(&self, rel: &str, dest: String) -> Result<Entry> {
        let host = self.host_path(rel);
        let md = fs::symlink_metadata(&host).map_err(|e| self.io_err(rel, e))?;
        let ft = md.file_type();
        let kind = if ft.is_symlink() {
            let t = fs::read_link(&host).map_err(|e| self.io_err(rel, e))?;
            EntryKind::Symlink { target: t.to_string_lossy().into_owned() }
        } else if ft.is_dir() {
            EntryKind::Dir
        } else if ft.is_file() {
            EntryKind::File
        } else {
            EntryKind::Other
        };
        Ok(Entry { path: rel.to_string(), dest, kind, mode: md.mode(), size: md.len(), uid: md.uid(), gid: md.gid() })
    }

    /// Everything under the directory `rel` that `.dockerignore` keeps, sorted,
    /// with `dest` relative to `rel`. Excluded directories are walked only when an
    /// exception may re-include something inside; directories on the way to a
    /// re-included file are listed.
    pub fn walk(&self, rel: &str) -> Result<Vec<Entry>> {
        let mut out = Vec::new();
        self.walk_into(rel, rel, &mut Vec::new(), &mut out)?;
        Ok(out)
    }

    fn walk_into(&self, base: &str, dir: &str, pending: &mut Vec<String>, out: &mut Vec<Entry>) -> Result<()> {
        let host = self.host_path(dir);
        let rd = fs::read_dir(&host).map_err(|e| self.io_err(dir, e))?;
        let mut names: Vec<String> = Vec::new();
        for ent in rd {
            let ent = ent.map_err(|e| self.io_err(dir, e))?;
            names.push(ent.file_name().to_string_lossy().into_owned());
        }
        names.sort();
        for name in names {
            let rel = if dir.is_empty() { name.clone() } else { format!("{dir}/{name}") };
            let dest = rel_to(base, &rel);
            let e = self.entry(&rel, dest)?;
            let ignored = self.is_ignored(&rel);
            if e.kind == EntryKind::Dir {
                if ignored {
                    if !self.ignore.must_walk_excluded_dir(&rel) {
                        continue;
                    }
                    pending.push(rel.clone());
                    self.walk_into(base, &rel, pending, out)?;
                    if pending.last() == Some(&rel) {
                        pending.pop();
                    }
                } else {
                    self.flush_pending(base, pending, out)?;
                    out.push(e);
                    self.walk_into(base, &rel, pending, out)?;
                }
            } else if !ignored {
                self.flush_pending(base, pending, out)?;
                out.push(e);
            }
        }
        Ok(())
    }

    /// Emit excluded directories that turned out to hold re-included files.
    fn flush_pending(&self, base: &str, pending: &mut Vec<String>, out: &mut Vec<Entry>) -> Result<()> {
        for p in pending.drain(..) {
            out.push(self.entry(&p, rel_to(base, &p))?);
        }
        Ok(())
    }
}

/// `path` relative to `base` (both context paths; `path` is under `base`).
fn rel_to(base: &str, path: &str) -> String {
    if base.is_empty() {
        path.to_string()
    } else {
        path.strip_prefix(base).map(|s| s.trim_start_matches('/')).unwrap_or(path).to_string()
    }
}

#[cfg(test)]
mod tests;
