//! `ADD <git url> <dest>`: the source named by the URL (`https://host/repo.git#ref:subdir`,
//! `git@host:repo.git#ref`, `ssh://`, `git://`, or the `?ref=...&subdir=...` query form),
//! resolved to a commit with `git ls-remote` (the commit is the cache key, so nothing is
//! fetched on a hit), then fetched and checked out with the host's `git` on a miss.
//!
//! git runs as a subprocess with no user or system config (HOME is a dir of the build),
//! no terminal prompt, ssh in batch mode and only network protocols allowed, so a build
//! never waits on a question and never reads the builder's own files; every command has
//! a deadline, and a transfer that stalls is ended by git's low-speed limit.

use std::ffi::OsStr;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::error::{Error, ErrorKind};

/// A git source, parsed from the ADD URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitSource {
    /// The repository URL without fragment or query (what `git` is given).
    pub remote: String,
    /// Branch, tag, `refs/...` name or full commit sha; None: the default branch.
    pub reference: Option<String>,
    /// Cleaned path inside the repository (`a/b`); None: the whole tree.
    pub subdir: Option<String>,
    /// `?keep-git-dir=` (the flag wins when both are given).
    pub keep_git_dir: Option<bool>,
    /// `?checksum=`: the commit the ref must resolve to.
    pub checksum: Option<String>,
}

impl GitSource {
    /// Parses `REMOTE[?query][#ref[:subdir]]`. The query keys are BuildKit's: `ref`,
    /// `branch`, `tag`, `subdir`, `keep-git-dir`, `checksum`.
    pub fn parse(src: &str) -> crate::Result<GitSource> {
        let bad = |why: &str| Error::new(ErrorKind::Invalid, format!("invalid git source {src:?}: {why}"));
        let (rest, fragment) = match src.split_once('#') {
            Some((r, f)) => (r, Some(f)),
            None => (src, None),
        };
        let (remote, query) = match rest.split_once('?') {
            Some((r, q)) => (r, Some(q)),
            None => (rest, None),
        };
        // A remote that git could take for an option (`-oProxyCommand=...`) is never one.
        if remote.is_empty() || remote.starts_with('-') {
            return Err(bad("no repository URL"));
        }
        let mut g = GitSource { remote: remote.to_string(), reference: None, subdir: None, keep_git_dir: None, checksum: None };
        if let Some(q) = query {
            for pair in q.split('&').filter(|p| !p.is_empty()) {
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                let v = percent_decode(v).ok_or_else(|| bad("bad %-escape in the query"))?;
                match k {
                    "ref" | "branch" | "tag" => {
                        if g.reference.is_some() {
                            return Err(bad("more than one ref"));
                        }
                        g.reference = Some(match k {
                            "branch" => format!("refs/heads/{v}"),
                            "tag" => format!("refs/tags/{v}"),
                            _ => v,
                        });
                    }
                    "subdir" => g.subdir = Some(v),
                    "keep-git-dir" => g.keep_git_dir = Some(parse_bool(&v).ok_or_else(|| bad("keep-git-dir wants true or false"))?),
                    "checksum" => g.checksum = Some(v),
                    _ => return Err(bad(&format!("unknown query parameter {k:?} (want ref, branch, tag, subdir, keep-git-dir, checksum)"))),
                }
            }
        }
        if let Some(f) = fragment {
            if query.is_some() && !f.is_empty() {
                return Err(bad("give the ref and subdir either as #ref:subdir or in the query, not both"));
            }
            let (r, sub) = match f.split_once(':') {
                Some((r, s)) => (r, Some(s)),
                None => (f, None),
            };
            if !r.is_empty() {
                g.reference = Some(r.to_string());
            }
            if let Some(s) = sub {
                g.subdir = Some(s.to_string());
            }
        }
        if let Some(r) = &g.reference {
            if r.is_empty() || r.starts_with('-') || r.chars().any(|c| c.is_whitespace() || c.is_control()) || r.contains("..") {
                return Err(bad(&format!("{r:?} is not a valid git ref")));
            }
        }
        g.subdir = match g.subdir.take() {
            Some(s) => clean_subdir(&s).map_err(|why| bad(&why))?,
            None => None,
        };
        Ok(g)
    }

    /// The reference as shown in messages.
    pub fn ref_shown(&self) -> &str {
        self.reference.as_deref().unwrap_or("HEAD")
    }
}

fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "" | "1" | "true" => Some(true),
        "0" | "false" => Some(false),
        _ => None,
    }
}

fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let h = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(h, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The subdir as a clean relative path, None for the root; an error when `..` leads out
/// of the repository (checked here, before anything is fetched).
pub fn clean_subdir(s: &str) -> Result<Option<String>, String> {
    let mut parts: Vec<&str> = Vec::new();
    for seg in s.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    return Err(format!("subdir {s:?} leads out of the repository"));
                }
            }
            p => parts.push(p),
        }
    }
    Ok(if parts.is_empty() { None } else { Some(parts.join("/")) })
}

/// The subdir as a source pattern that matches only itself: it names one path of the
/// tree, and `*`, `?`, `[` in a directory name are not wildcards there.
pub fn literal_pattern(subdir: &str) -> String {
    let mut out = String::with_capacity(subdir.len());
    for c in subdir.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Whether `s` is a full commit sha (sha1 or sha256 object format).
pub fn is_full_sha(s: &str) -> bool {
    (s.len() == 40 || s.len() == 64) && s.bytes().all(|c| c.is_ascii_hexdigit())
}

/// What a ref resolved to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// The commit, lower-case hex.
    pub commit: String,
    /// The full ref name (`refs/heads/main`, `refs/tags/v1`); None for a sha.
    pub refname: Option<String>,
}

/// Picks the commit `reference` names from `git ls-remote` output (`<sha>\t<ref>` lines,
/// with `--symref`'s `ref: <target>\tHEAD` lines): an exact `refs/...` name, else a
/// branch, else a tag (peeled to its commit when annotated).
pub fn pick_ref(ls_remote: &str, reference: Option<&str>) -> Option<Resolved> {
    let mut refs: Vec<(&str, &str)> = Vec::new();
    let mut head_target = None;
    for line in ls_remote.lines() {
        let Some((left, name)) = line.split_once('\t') else { continue };
        if let Some(target) = left.strip_prefix("ref: ") {
            if name == "HEAD" {
                head_target = Some(target);
            }
            continue;
        }
        refs.push((name, left));
    }
    let find = |name: &str| -> Option<Resolved> {
        let sha = refs.iter().find(|(n, _)| *n == format!("{name}^{{}}")).or_else(|| refs.iter().find(|(n, _)| *n == name))?.1;
        Some(Resolved { commit: sha.to_ascii_lowercase(), refname: (name != "HEAD").then(|| name.to_string()) })
    };
    match reference {
        None => {
            let mut r = find("HEAD")?;
            r.refname = head_target.map(str::to_string);
            Some(r)
        }
        Some(r) if r.starts_with("refs/") => find(r),
        Some(r) => find(&format!("refs/heads/{r}")).or_else(|| find(&format!("refs/tags/{r}"))),
    }
}

/// How long `git ls-remote` may take: it reads one small list.
const LS_REMOTE_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a fetch may take at most (a stalled one ends sooner: the low-speed limit).
const FETCH_TIMEOUT: Duration = Duration::from_secs(3600);

/// The host's git, run with no user config. `home` is the (empty) HOME it is given.
pub struct Git {
    bin: PathBuf,
    home: PathBuf,
}

/// What a git command printed.
struct Ran {
    ok: bool,
    stdout: String,
    stderr: String,
}

impl Git {
    /// Finds `git` in PATH; `home` is made if missing.
    pub fn new(home: &Path) -> crate::Result<Git> {
        let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
        let bin = std::env::split_paths(&path)
            .map(|d| d.join("git"))
            .find(|p| p.is_file())
            .ok_or_else(|| Error::new(ErrorKind::NotFound, "ADD from git needs git installed (no git in PATH; on Debian: apt-get install git)"))?;
        std::fs::create_dir_all(home).map_err(|e| Error::from(e).context(home.display()))?;
        Ok(Git { bin, home: home.to_path_buf() })
    }

    fn command(&self, dir: Option<&Path>) -> Command {
        let mut c = Command::new(&self.bin);
        if let Some(d) = dir {
            c.arg("-C").arg(d);
        }
        c.env_clear();
        // What git needs from the environment: PATH (its helpers, ssh) and proxies.
        for k in ["PATH", "http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "no_proxy", "NO_PROXY", "all_proxy", "ALL_PROXY", "SSH_AUTH_SOCK"] {
            if let Some(v) = std::env::var_os(k) {
                c.env(k, v);
            }
        }
        c.env("HOME", &self.home)
            .env("XDG_CONFIG_HOME", &self.home)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("GIT_SSH_COMMAND", "ssh -o BatchMode=yes -o ConnectTimeout=30")
            .env("GIT_HTTP_LOW_SPEED_LIMIT", "1000")
            .env("GIT_HTTP_LOW_SPEED_TIME", "30")
            // file:// and ext:: would read or run things on this host.
            .env("GIT_ALLOW_PROTOCOL", "http:https:ssh:git")
            .env("LC_ALL", "C")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        // SAFETY: umask(2) is async-signal-safe; checked-out files get 0644/0755 whatever
        // the builder's own umask is.
        unsafe {
            c.pre_exec(|| {
                libc::umask(0o022);
                Ok(())
            });
        }
        c
    }

    /// Runs git with `args` (in `dir`), killing it (and what it started) after `timeout`.
    fn run<S: AsRef<OsStr>>(&self, dir: Option<&Path>, args: &[S], timeout: Duration) -> crate::Result<Ran> {
        let mut c = self.command(dir);
        c.args(args);
        let mut child = c.spawn().map_err(|e| Error::from(e).context(format!("running {}", self.bin.display())))?;
        let mut out = child.stdout.take().expect("piped");
        let mut err = child.stderr.take().expect("piped");
        let t_out = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = out.read_to_string(&mut s);
            s
        });
        let t_err = std::thread::spawn(move || {
            let mut s = Vec::new();
            let _ = err.read_to_end(&mut s);
            String::from_utf8_lossy(&s).into_owned()
        });
        let deadline = Instant::now() + timeout;
        let status = loop {
            if let Some(st) = child.try_wait()? {
                break Some(st);
            }
            if Instant::now() >= deadline || crate::cleanup::interrupted().is_some() {
                // SAFETY: kill(2) of the process group git leads (it was made with it).
                unsafe { libc::kill(-(child.id() as libc::pid_t), libc::SIGKILL) };
                let _ = child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        let (stdout, mut stderr) = (t_out.join().unwrap_or_default(), t_err.join().unwrap_or_default());
        if status.is_none() {
            stderr = format!("no answer in {}s", timeout.as_secs());
        }
        Ok(Ran { ok: status.is_some_and(|s| s.success()), stdout, stderr })
    }

    /// The commit (and full ref name) `src`'s ref names in the remote, asking the remote.
    /// A full sha is taken as it is: the remote is asked for it when it is fetched.
    pub fn resolve(&self, src: &GitSource) -> crate::Result<Resolved> {
        if let Some(r) = src.reference.as_deref().filter(|r| is_full_sha(r)) {
            return Ok(Resolved { commit: r.to_ascii_lowercase(), refname: None });
        }
        let mut args: Vec<String> = vec!["ls-remote".into(), "--symref".into(), src.remote.clone()];
        match src.reference.as_deref() {
            None => args.push("HEAD".into()),
            Some(r) => {
                args.push(r.to_string());
                args.push(format!("{r}^{{}}"));
            }
        }
        let ran = self.run(None, &args, LS_REMOTE_TIMEOUT)?;
        if !ran.ok {
            return Err(Error::new(ErrorKind::Connect, format!("git could not fetch {}: {}", src.remote, last_line(&ran.stderr))));
        }
        pick_ref(&ran.stdout, src.reference.as_deref()).ok_or_else(|| {
            let hint = match src.reference.as_deref() {
                Some(r) if r.len() < 40 && r.bytes().all(|c| c.is_ascii_hexdigit()) => " (a commit must be given as its full sha)",
                _ => "",
            };
            Error::new(ErrorKind::NotFound, format!("git ref {:?} not found in {}{hint}", src.ref_shown(), src.remote))
        })
    }

    /// Fetches `res.commit` from the remote into a new repository at `dir` and checks it
    /// out: depth 1 where the server allows it (smart HTTP, ssh, git), else whole (dumb
    /// HTTP). A branch is checked out as that branch, anything else as a detached HEAD.
    pub fn checkout(&self, src: &GitSource, res: &Resolved, dir: &Path) -> crate::Result<()> {
        let fail = |what: &str, ran: &Ran| Error::msg(format!("git could not {what} {} ({}): {}", src.remote, src.ref_shown(), last_line(&ran.stderr)));
        let d = Some(dir);
        let ran = self.run(None, &[OsStr::new("init"), OsStr::new("-q"), dir.as_os_str()], LS_REMOTE_TIMEOUT)?;
        if !ran.ok {
            return Err(fail("make a repository for", &ran));
        }
        let ran = self.run(d, &["remote", "add", "origin", &src.remote], LS_REMOTE_TIMEOUT)?;
        if !ran.ok {
            return Err(fail("add the remote", &ran));
        }
        let spec = match &res.refname {
            Some(r) if r.starts_with("refs/heads/") => format!("+{r}:refs/remotes/origin/{}", &r["refs/heads/".len()..]),
            Some(r) => format!("+{r}:{r}"),
            None => res.commit.clone(),
        };
        let has_commit = || -> crate::Result<bool> { Ok(self.run(d, &["cat-file", "-e", &format!("{}^{{commit}}", res.commit)], LS_REMOTE_TIMEOUT)?.ok) };
        // Depth 1 first; dumb HTTP cannot, and a branch may have moved on since it was
        // resolved (its commit is then deeper). A sha is asked for by name, which servers
        // of protocol v0 refuse unless configured: then every branch and tag is fetched.
        let mut attempts: Vec<Vec<&str>> =
            vec![vec!["fetch", "-q", "--no-tags", "--depth=1", "origin", &spec], vec!["fetch", "-q", "--no-tags", "origin", &spec]];
        if res.refname.is_none() {
            attempts.push(vec!["fetch", "-q", "--no-tags", "origin", "+refs/heads/*:refs/remotes/origin/*", "+refs/tags/*:refs/tags/*"]);
        }
        let (mut found, mut any_fetched, mut last_failure) = (false, false, None);
        for args in &attempts {
            let ran = self.run(d, args, FETCH_TIMEOUT)?;
            if ran.ok {
                any_fetched = true;
                if has_commit()? {
                    found = true;
                    break;
                }
            } else {
                last_failure = Some(ran);
            }
        }
        if !found {
            return Err(match last_failure {
                Some(ran) if !any_fetched => fail("fetch", &ran),
                _ => {
                    let via = res.refname.as_ref().map(|r| format!(" ({r})")).unwrap_or_default();
                    Error::new(ErrorKind::NotFound, format!("commit {}{via} not found in {}", res.commit, src.remote))
                }
            });
        }
        let ran = match res.refname.as_deref().and_then(|r| r.strip_prefix("refs/heads/")) {
            Some(branch) => self.run(d, &["checkout", "-q", "-B", branch, &res.commit], FETCH_TIMEOUT)?,
            None => self.run(d, &["-c", "advice.detachedHead=false", "checkout", "-q", "--detach", &res.commit], FETCH_TIMEOUT)?,
        };
        if !ran.ok {
            return Err(fail("check out", &ran));
        }
        Ok(())
    }
}

/// `--checksum` of a git source: the commit the ref must have resolved to (BuildKit's
/// meaning); a mismatch names both.
pub fn check_commit(want: &str, src: &GitSource, res: &Resolved) -> crate::Result<()> {
    if !is_full_sha(want) {
        return Err(Error::new(ErrorKind::Invalid, format!("--checksum of a git source is the full commit sha, not {want:?}")));
    }
    if !want.eq_ignore_ascii_case(&res.commit) {
        return Err(Error::new(
            ErrorKind::Digest,
            format!("checksum mismatch: {} in {} is commit {}, expected {}", src.ref_shown(), src.remote, res.commit, want.to_ascii_lowercase()),
        ));
    }
    Ok(())
}

/// The dir a git source is fetched into (inside the build's work dir in the store's tmp/,
/// so an interrupted or killed build leaves nothing): removed on drop.
pub struct FetchDir(PathBuf);

impl FetchDir {
    pub fn new(path: PathBuf) -> crate::Result<FetchDir> {
        std::fs::create_dir(&path).map_err(|e| Error::from(e).context(path.display()))?;
        Ok(FetchDir(path))
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for FetchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn last_line(s: &str) -> String {
    s.lines().map(str::trim).rfind(|l| !l.is_empty()).unwrap_or("failed").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> GitSource {
        GitSource::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn fragment_gives_ref_and_subdir() {
        let g = p("https://example.com/repo.git#v1.2:docs/api");
        assert_eq!(g.remote, "https://example.com/repo.git");
        assert_eq!(g.reference.as_deref(), Some("v1.2"));
        assert_eq!(g.subdir.as_deref(), Some("docs/api"));
        let g = p("https://example.com/repo.git#main");
        assert_eq!((g.reference.as_deref(), g.subdir), (Some("main"), None));
        let g = p("https://example.com/repo.git#:sub/");
        assert_eq!((g.reference, g.subdir.as_deref()), (None, Some("sub")));
        let g = p("https://example.com/repo.git");
        assert_eq!((g.ref_shown(), g.reference.as_deref(), g.subdir.as_deref()), ("HEAD", None, None));
    }

    #[test]
    fn scp_ssh_and_git_remotes_keep_their_form() {
        let g = p("git@github.com:moby/buildkit.git#v0.10.1");
        assert_eq!((g.remote.as_str(), g.reference.as_deref()), ("git@github.com:moby/buildkit.git", Some("v0.10.1")));
        assert_eq!(p("ssh://git@example.com:2222/r.git#dev:x").remote, "ssh://git@example.com:2222/r.git");
        assert_eq!(p("git://example.com/r#refs/pull/1/head").reference.as_deref(), Some("refs/pull/1/head"));
    }

    #[test]
    fn query_form_gives_ref_subdir_and_options() {
        let g = p("https://example.com/repo.git?ref=main&subdir=a%2Fb&keep-git-dir=true&checksum=abc");
        assert_eq!(g.remote, "https://example.com/repo.git");
        assert_eq!((g.reference.as_deref(), g.subdir.as_deref()), (Some("main"), Some("a/b")));
        assert_eq!((g.keep_git_dir, g.checksum.as_deref()), (Some(true), Some("abc")));
        assert_eq!(p("https://e.com/r.git?tag=v1").reference.as_deref(), Some("refs/tags/v1"));
        assert_eq!(p("https://e.com/r.git?branch=dev").reference.as_deref(), Some("refs/heads/dev"));
    }

    #[test]
    fn bad_sources_are_refused_before_any_fetch() {
        for (s, why) in [
            ("https://e.com/r.git#main:../x", "leads out of the repository"),
            ("https://e.com/r.git#:a/../../x", "leads out of the repository"),
            ("https://e.com/r.git#--upload-pack=x", "not a valid git ref"),
            ("https://e.com/r.git#a..b", "not a valid git ref"),
            ("https://e.com/r.git?ref=a&tag=b", "more than one ref"),
            ("https://e.com/r.git?ref=a#b", "not both"),
            ("https://e.com/r.git?token=x", "unknown query parameter"),
            ("https://e.com/r.git?keep-git-dir=maybe", "true or false"),
            ("-oProxyCommand=x@h:r#m", "no repository URL"),
        ] {
            let e = GitSource::parse(s).expect_err(s).to_string();
            assert!(e.contains(why), "{s}: {e}");
        }
        // `..` that stays inside is only cleaned.
        assert_eq!(p("https://e.com/r.git#m:a/../b/./c").subdir.as_deref(), Some("b/c"));
        assert_eq!(p("https://e.com/r.git#m:/.").subdir, None);
    }

    #[test]
    fn refs_resolve_to_branches_then_tags_peeled() {
        let out = "ref: refs/heads/main\tHEAD\n\
                   1111111111111111111111111111111111111111\tHEAD\n\
                   1111111111111111111111111111111111111111\trefs/heads/main\n\
                   2222222222222222222222222222222222222222\trefs/heads/v1\n\
                   3333333333333333333333333333333333333333\trefs/tags/v1\n\
                   4444444444444444444444444444444444444444\trefs/tags/v2\n\
                   5555555555555555555555555555555555555555\trefs/tags/v2^{}\n";
        let r = pick_ref(out, None).unwrap();
        assert_eq!((r.commit.as_str(), r.refname.as_deref()), ("1111111111111111111111111111111111111111", Some("refs/heads/main")));
        assert_eq!(pick_ref(out, Some("v1")).unwrap().refname.as_deref(), Some("refs/heads/v1"));
        assert_eq!(pick_ref(out, Some("refs/tags/v1")).unwrap().commit, "3333333333333333333333333333333333333333");
        let r = pick_ref(out, Some("v2")).unwrap();
        assert_eq!((r.commit.as_str(), r.refname.as_deref()), ("5555555555555555555555555555555555555555", Some("refs/tags/v2")));
        assert_eq!(pick_ref(out, Some("nope")), None);
        assert_eq!(pick_ref("", None), None);
    }

    #[test]
    fn checksum_is_the_commit_and_a_mismatch_names_both() {
        let g = p("https://e.com/r.git#main");
        let res = Resolved { commit: "a".repeat(40), refname: Some("refs/heads/main".into()) };
        check_commit(&"A".repeat(40), &g, &res).unwrap();
        let e = check_commit(&"b".repeat(40), &g, &res).unwrap_err().to_string();
        assert!(e.contains(&"a".repeat(40)) && e.contains(&"b".repeat(40)) && e.contains("main"), "{e}");
        assert!(check_commit("sha256:abc", &g, &res).unwrap_err().to_string().contains("full commit sha"));
    }

    #[test]
    fn subdir_patterns_match_only_the_subdir() {
        let pat = literal_pattern("a*/b?[c]\\d");
        assert_eq!(pat, "a\\*/b\\?\\[c\\]\\\\d");
        assert!(pat.split('/').all(|seg| !crate::context::pattern::has_wildcards(seg)));
        assert_eq!(crate::context::pattern::unescape(&pat), "a*/b?[c]\\d");
    }

    #[test]
    fn full_shas_only() {
        assert!(is_full_sha(&"a".repeat(40)) && is_full_sha(&"B".repeat(64)));
        assert!(!is_full_sha("abc1234") && !is_full_sha(&"g".repeat(40)));
    }
}
