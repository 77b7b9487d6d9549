//! Context tests on real directories under the system temp dir.

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;

struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let p = std::env::temp_dir().join(format!("berth-build-ctx-{}-{}", std::process::id(), N.fetch_add(1, Ordering::SeqCst)));
        let _ = fs::remove_dir_all(&p);
        fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    fn path(&self) -> &Path {
        &self.0
    }
    fn file(&self, rel: &str, content: &str) -> &Self {
        let p = self.0.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, content).unwrap();
        self
    }
    fn dir(&self, rel: &str) -> &Self {
        fs::create_dir_all(self.0.join(rel)).unwrap();
        self
    }
    fn link(&self, rel: &str, target: &str) -> &Self {
        let p = self.0.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        symlink(target, p).unwrap();
        self
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn ctx(t: &TempDir, ignore: &[&str]) -> Context {
    Context::open(t.path(), PatternMatcher::new(ignore).unwrap()).unwrap()
}

fn sample() -> TempDir {
    let t = TempDir::new();
    t.file("a.txt", "A")
        .file("b.txt", "B")
        .file("c.md", "C")
        .file("src/main.rs", "fn main(){}")
        .file("src/lib/mod.rs", "mod x;")
        .file("src/lib/README.md", "docs")
        .file("pkg/one/main.rs", "1")
        .file("pkg/two/main.rs", "2")
        .file("pkg/two/other.rs", "x")
        .file("node_modules/dep/index.js", "js")
        .file("vendor/keep/k.go", "k")
        .file("vendor/drop/d.go", "d")
        .file("secret.key", "s")
        .dir("empty");
    t
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn dests(src: &Source) -> Vec<String> {
    src.entries.iter().map(|e| e.dest.clone()).collect()
}

#[test]
fn walk_respects_dockerignore() {
    let t = sample();
    let c = ctx(&t, &["node_modules", "*.key", "vendor", "!vendor/keep"]);
    let all: Vec<String> = c.walk("").unwrap().into_iter().map(|e| e.path).collect();
    assert!(all.contains(&"a.txt".to_string()));
    assert!(!all.iter().any(|p| p.starts_with("node_modules")));
    assert!(!all.contains(&"secret.key".to_string()));
    // vendor is excluded but walked for the exception; it is listed as the parent
    assert!(all.contains(&"vendor".to_string()));
    assert!(all.contains(&"vendor/keep/k.go".to_string()));
    assert!(!all.iter().any(|p| p.starts_with("vendor/drop")));
    // parents come before children, siblings sorted
    let pos = |p: &str| all.iter().position(|x| x == p).unwrap();
    assert!(pos("vendor") < pos("vendor/keep") && pos("vendor/keep") < pos("vendor/keep/k.go"));
    assert!(pos("a.txt") < pos("b.txt"));
}

#[test]
fn wildcard_exceptions_force_walking() {
    let t = sample();
    let c = ctx(&t, &["*", "!**/*.rs"]);
    let all: Vec<String> = c.walk("").unwrap().into_iter().map(|e| e.path).collect();
    assert!(all.contains(&"src/main.rs".to_string()));
    assert!(all.contains(&"pkg/two/other.rs".to_string()));
    assert!(all.contains(&"src".to_string()));
    assert!(!all.contains(&"a.txt".to_string()));
    assert!(!all.contains(&"src/lib/README.md".to_string()));
}

#[test]
fn plain_file_and_directory() {
    let t = sample();
    let c = ctx(&t, &[]);
    let r = c.resolve_sources(&s(&["a.txt", "src", "./b.txt", "/c.md"])).unwrap();
    assert_eq!(r.len(), 4);
    assert_eq!((r[0].kind, r[0].path.as_str()), (SourceKind::File, "a.txt"));
    assert_eq!(dests(&r[0]), ["a.txt"]);
    assert_eq!(r[1].kind, SourceKind::Dir);
    assert_eq!(dests(&r[1]), ["lib", "lib/README.md", "lib/mod.rs", "main.rs"]);
    assert_eq!(r[2].path, "b.txt");
    assert_eq!(r[3].path, "c.md", "absolute paths are relative to the context root");
    let root = c.resolve_sources(&s(&["."])).unwrap();
    assert_eq!(root[0].path, "");
    assert!(dests(&root[0]).contains(&"src/lib/mod.rs".to_string()));
    let empty = c.resolve_sources(&s(&["empty/"])).unwrap();
    assert!(empty[0].entries.is_empty());
}

#[test]
fn wildcards() {
    let t = sample();
    let c = ctx(&t, &[]);
    let r = c.resolve_sources(&s(&["*.txt"])).unwrap();
    assert_eq!(r.iter().map(|x| x.path.as_str()).collect::<Vec<_>>(), ["a.txt", "b.txt"]);
    assert!(r.iter().all(|x| x.from_wildcard && x.pattern == "*.txt"));
    let r = c.resolve_sources(&s(&["pkg/*/main.rs"])).unwrap();
    assert_eq!(r.iter().map(|x| x.path.as_str()).collect::<Vec<_>>(), ["pkg/one/main.rs", "pkg/two/main.rs"]);
    let r = c.resolve_sources(&s(&["[ab].txt", "?.md"])).unwrap();
    assert_eq!(r.iter().map(|x| x.path.as_str()).collect::<Vec<_>>(), ["a.txt", "b.txt", "c.md"]);
    // a directory matched by a wildcard copies its contents
    let r = c.resolve_sources(&s(&["sr*"])).unwrap();
    assert_eq!((r.len(), r[0].kind), (1, SourceKind::Dir));
    // no match: nothing, no error (BuildKit allows empty wildcards: `COPY x.tx[t] .`)
    assert!(c.resolve_sources(&s(&["*.nomatch", "missing.tx[t]"])).unwrap().is_empty());
    // a bad pattern is an error
    assert!(c.resolve_sources(&s(&["[a-"])).is_err());
}

#[test]
fn missing_source_names_it() {
    let t = sample();
    let c = ctx(&t, &[]);
    let e = c.resolve_sources(&s(&["a.txt", "missing.txt"])).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    assert!(e.to_string().contains("\"missing.txt\" not found"), "{e}");
    assert_eq!(e.to_string(), "failed to compute cache key: \"missing.txt\" not found: not in the build context or excluded by .dockerignore");
    let e = c.resolve_sources(&s(&["src/nope/x.rs"])).unwrap_err();
    assert!(e.to_string().contains("\"src/nope/x.rs\" not found"));
}

#[test]
fn ignored_sources_do_not_exist() {
    let t = sample();
    let c = ctx(&t, &["secret.key", "node_modules", "vendor", "!vendor/keep"]);
    assert_eq!(c.resolve_sources(&s(&["secret.key"])).unwrap_err().kind(), ErrorKind::NotFound);
    assert_eq!(c.resolve_sources(&s(&["node_modules/dep/index.js"])).unwrap_err().kind(), ErrorKind::NotFound);
    assert_eq!(c.resolve_sources(&s(&["node_modules"])).unwrap_err().kind(), ErrorKind::NotFound);
    // excluded directory with a re-included part: only that part
    let r = c.resolve_sources(&s(&["vendor"])).unwrap();
    assert_eq!(dests(&r[0]), ["keep", "keep/k.go"]);
    // wildcards skip ignored files
    let r = c.resolve_sources(&s(&["*.key", "*.txt"])).unwrap();
    assert_eq!(r.len(), 2);
    // the whole context leaves ignored things out
    let r = c.resolve_sources(&s(&["."])).unwrap();
    assert!(!dests(&r[0]).iter().any(|d| d.starts_with("node_modules") || d == "secret.key"));
}

#[test]
fn outside_the_context_is_refused() {
    let outside = TempDir::new();
    outside.file("passwd", "root:x:0:0");
    let t = sample();
    t.link("abs-link", outside.path().join("passwd").to_str().unwrap())
        .link("rel-link", "../../../../../../../../etc")
        .link("dir/up", "..")
        .link("inside-abs", t.path().join("src").to_str().unwrap())
        .link("inside-rel", "src/main.rs");
    let c = ctx(&t, &[]);
    for bad in ["../x", "src/../../x", "abs-link", "rel-link/passwd", "dir/up/rel-link/passwd"] {
        let e = c.resolve_sources(&s(&[bad])).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Outside, "{bad}: {e}");
        assert!(e.to_string().starts_with(&format!("forbidden path outside the build context: {bad}")), "{e}");
    }
    // symlinks that stay inside are followed
    let r = c.resolve_sources(&s(&["inside-rel"])).unwrap();
    assert_eq!((r[0].path.as_str(), r[0].kind), ("src/main.rs", SourceKind::File));
    assert_eq!(r[0].entries[0].kind, EntryKind::File);
    assert_eq!(r[0].entries[0].dest, "main.rs");
    let r = c.resolve_sources(&s(&["inside-abs"])).unwrap();
    assert_eq!((r[0].path.as_str(), r[0].kind), ("src", SourceKind::Dir));
    let r = c.resolve_sources(&s(&["dir/up/a.txt"])).unwrap();
    assert_eq!(r[0].path, "a.txt");
    // symlink loops end
    t.link("loop1", "loop2").link("loop2", "loop1");
    assert!(c.resolve_sources(&s(&["loop1"])).unwrap_err().to_string().contains("too many levels of symbolic links"));
    // inside a copied directory links are kept as links, not followed
    let r = c.resolve_sources(&s(&["dir"])).unwrap();
    assert_eq!(r[0].entries[0].kind, EntryKind::Symlink { target: "..".into() });
}

#[test]
fn exclude_flag() {
    let t = sample();
    let c = ctx(&t, &[]);
    let ex = |v: &[&str]| ResolveOptions { excludes: s(v), parents: false };
    // inside a directory source, patterns are relative to it
    let r = c.resolve(&s(&["src"]), &ex(&["*.md"])).unwrap();
    assert_eq!(dests(&r[0]), ["lib", "lib/README.md", "lib/mod.rs", "main.rs"]);
    let r = c.resolve(&s(&["src"]), &ex(&["**/*.md"])).unwrap();
    assert_eq!(dests(&r[0]), ["lib", "lib/mod.rs", "main.rs"]);
    let r = c.resolve(&s(&["src"]), &ex(&["lib"])).unwrap();
    assert_eq!(dests(&r[0]), ["main.rs"]);
    // exceptions re-include, keeping the parent directory
    let r = c.resolve(&s(&["src"]), &ex(&["lib", "!lib/mod.rs"])).unwrap();
    assert_eq!(dests(&r[0]), ["lib", "lib/mod.rs", "main.rs"]);
    // wildcard matches are filtered by their path below the wildcard's prefix
    let r = c.resolve(&s(&["*"]), &ex(&["*.txt", "node_modules", "vendor", "pkg", "src", "empty"])).unwrap();
    assert_eq!(r.iter().map(|x| x.path.as_str()).collect::<Vec<_>>(), ["c.md", "secret.key"]);
    // a file named explicitly is not excluded
    let r = c.resolve(&s(&["a.txt"]), &ex(&["*.txt"])).unwrap();
    assert_eq!(r.len(), 1);
    // bad pattern
    assert_eq!(c.resolve(&s(&["src"]), &ex(&["[x"])).unwrap_err().kind(), ErrorKind::Invalid);
}

#[test]
fn parents_flag() {
    let t = sample();
    let c = ctx(&t, &[]);
    let par = ResolveOptions { excludes: vec![], parents: true };
    let r = c.resolve(&s(&["src/lib/mod.rs"]), &par).unwrap();
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].kind, SourceKind::Dir);
    assert_eq!(dests(&r[0]), ["src", "src/lib", "src/lib/mod.rs"]);
    assert_eq!(r[0].entries[1].kind, EntryKind::Dir);
    // a directory keeps its parents and its contents
    let r = c.resolve(&s(&["pkg/two"]), &par).unwrap();
    assert_eq!(dests(&r[0]), ["pkg", "pkg/two", "pkg/two/main.rs", "pkg/two/other.rs"]);
    // wildcards
    let r = c.resolve(&s(&["pkg/*/main.rs"]), &par).unwrap();
    assert_eq!(dests(&r[0]), ["pkg", "pkg/one", "pkg/one/main.rs", "pkg/two", "pkg/two/main.rs"]);
    // the /./ pivot: parents kept from there
    let r = c.resolve(&s(&["./pkg/./two/main.rs"]), &par).unwrap();
    assert_eq!(r[0].path, "pkg");
    assert_eq!(dests(&r[0]), ["two", "two/main.rs"]);
    // with --exclude, relative to the pivot (the root here)
    let par_ex = ResolveOptions { excludes: s(&["**/other.rs"]), parents: true };
    let r = c.resolve(&s(&["pkg/two"]), &par_ex).unwrap();
    assert_eq!(dests(&r[0]), ["pkg", "pkg/two", "pkg/two/main.rs"]);
    // ** at any depth
    let r = c.resolve(&s(&["src/**/*.rs"]), &par).unwrap();
    assert_eq!(dests(&r[0]), ["src", "src/lib", "src/lib/mod.rs", "src/main.rs"]);
    let r = c.resolve(&s(&["**/main.rs"]), &par).unwrap();
    assert_eq!(dests(&r[0]), ["pkg", "pkg/one", "pkg/one/main.rs", "pkg/two", "pkg/two/main.rs", "src", "src/main.rs"]);
    // missing
    assert_eq!(c.resolve(&s(&["nope/x"]), &par).unwrap_err().kind(), ErrorKind::NotFound);
    assert_eq!(c.resolve(&s(&["../x"]), &par).unwrap_err().kind(), ErrorKind::Outside);
}

#[test]
fn content_hash_is_stable_and_sensitive() {
    let t = sample();
    let c = ctx(&t, &[]);
    let srcs = |c: &Context| c.resolve_sources(&s(&["src", "a.txt"])).unwrap();
    let h1 = c.content_hash(&srcs(&c)).unwrap();
    assert_eq!(h1.len(), 64);
    assert_eq!(h1, c.content_hash(&srcs(&c)).unwrap());
    // mtime does not matter
    let f = fs::File::options().write(true).open(t.path().join("a.txt")).unwrap();
    f.set_modified(std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(12345)).unwrap();
    drop(f);
    assert_eq!(h1, c.content_hash(&srcs(&c)).unwrap());
    // content does
    t.file("src/lib/mod.rs", "mod y;");
    let h2 = c.content_hash(&srcs(&c)).unwrap();
    assert_ne!(h1, h2);
    // mode does
    fs::set_permissions(t.path().join("a.txt"), fs::Permissions::from_mode(0o755)).unwrap();
    let h3 = c.content_hash(&srcs(&c)).unwrap();
    assert_ne!(h2, h3);
    // a new file does
    t.file("src/new.rs", "");
    let h4 = c.content_hash(&srcs(&c)).unwrap();
    assert_ne!(h3, h4);
    // symlink targets do
    t.link("src/l", "main.rs");
    let h5 = c.content_hash(&srcs(&c)).unwrap();
    fs::remove_file(t.path().join("src/l")).unwrap();
    t.link("src/l", "new.rs");
    assert_ne!(h5, c.content_hash(&srcs(&c)).unwrap());
    // the same tree elsewhere hashes the same
    let t2 = TempDir::new();
    t2.file("x/f", "1");
    let t3 = TempDir::new();
    t3.file("y/f", "1");
    let h_a = ctx(&t2, &[]).content_hash(&ctx(&t2, &[]).resolve_sources(&s(&["x"])).unwrap()).unwrap();
    let h_b = ctx(&t3, &[]).content_hash(&ctx(&t3, &[]).resolve_sources(&s(&["y"])).unwrap()).unwrap();
    assert_eq!(h_a, h_b);
    assert_eq!(ctx(&t2, &[]).file_digest("x/f").unwrap(), "6b86b273ff34fce19d6b804eff5a3f5747ada4eaa22f1d49c01e52ddb7875b4b");
}

#[test]
fn dockerignore_files() {
    let t = sample();
    t.file(".dockerignore", "# ignore\n*.txt\n").file("build/app.Dockerfile", "FROM x\n").file("build/app.Dockerfile.dockerignore", "*.md\n");
    let c = Context::open_with_dockerignore(t.path(), None).unwrap();
    assert!(c.is_ignored("a.txt") && !c.is_ignored("c.md"));
    // <Dockerfile>.dockerignore next to the Dockerfile wins
    let c = Context::open_with_dockerignore(t.path(), Some(Path::new("build/app.Dockerfile"))).unwrap();
    assert!(!c.is_ignored("a.txt") && c.is_ignored("c.md"));
    // a Dockerfile without its own ignore file uses .dockerignore
    let c = Context::open_with_dockerignore(t.path(), Some(Path::new("Dockerfile"))).unwrap();
    assert!(c.is_ignored("a.txt"));
    let (p, from) = dockerignore::load(t.path(), None).unwrap();
    assert_eq!(p, ["*.txt"]);
    assert!(from.unwrap().ends_with(".dockerignore"));
    let none = TempDir::new();
    assert_eq!(dockerignore::load(none.path(), None).unwrap(), (vec![], None));
}

#[test]
fn archive_file_detection() {
    let t = TempDir::new();
    fs::write(t.path().join("a.gz"), [0x1f, 0x8b, 0x08, 0, 0, 0]).unwrap();
    fs::write(t.path().join("plain"), "text").unwrap();
    assert_eq!(detect_archive_file(&t.path().join("a.gz")).unwrap(), Some(ArchiveKind::Gzip));
    assert_eq!(detect_archive_file(&t.path().join("plain")).unwrap(), None);
}

#[test]
fn open_errors() {
    assert!(Context::open("/definitely/not/here", PatternMatcher::default()).is_err());
    let t = sample();
    assert!(Context::open(t.path().join("a.txt"), PatternMatcher::default()).is_err());
}

#[test]
fn rootfs_symlinks_resolve_like_a_chroot() {
    let t = TempDir::new();
    t.file("usr/lib/libx.so.1", "elf").link("usr/lib/libx.so", "/usr/lib/libx.so.1").link("lib", "usr/lib").link("up", "../../..");
    let c = Context::open_rootfs(t.path(), "image busybox").unwrap();
    let r = c.resolve_sources(&s(&["/usr/lib/libx.so"])).unwrap();
    assert_eq!(r[0].path, "usr/lib/libx.so.1");
    let r = c.resolve_sources(&s(&["/lib/libx.so"])).unwrap();
    assert_eq!(r[0].path, "usr/lib/libx.so.1");
    let r = c.resolve_sources(&s(&["up/usr/lib/libx.so.1"])).unwrap();
    assert_eq!(r[0].path, "usr/lib/libx.so.1");
    // the source path itself still may not climb out, and the error says out of what
    let e = c.resolve_sources(&s(&["/../etc"])).unwrap_err();
    assert_eq!(e.to_string(), "forbidden path /../etc: it leaves the image busybox");
    let e = c.resolve(&s(&["../x"]), &ResolveOptions { parents: true, ..Default::default() }).unwrap_err();
    assert_eq!(e.to_string(), "forbidden path ../x: it leaves the image busybox");
    let e = c.resolve_sources(&s(&["/nope"])).unwrap_err();
    assert_eq!(e.to_string(), "\"/nope\" not found in the image busybox");
}
