//! End-to-end tests of `ADD <git url>`: a repository made in the test dir and served over
//! git's "dumb" HTTP protocol by `python3 -m http.server` on 127.0.0.1 (as users fetch
//! from a server, not from a local path), built from with berth-build.
//!
//! Needs what tests/builder.rs needs, plus git and python3 on the host.

use berth_integration::builder_support::{run_cmd, Bt, BuildOutput, Out};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// `git ARGS` in `repo`, with no user config, as the test's author.
fn git(repo: &Path, args: &[&str]) -> Out {
    let mut c = Command::new("git");
    c.arg("-C").arg(repo).args(["-c", "user.name=Test", "-c", "user.email=test@example.com"]).args(args);
    c.env("GIT_CONFIG_NOSYSTEM", "1").env("GIT_CONFIG_GLOBAL", "/dev/null").env("HOME", repo);
    run_cmd(&mut c, repo.parent().expect("repo has a parent"))
}

fn git_ok(repo: &Path, args: &[&str]) -> String {
    let o = git(repo, args);
    o.ok();
    o.stdout.trim().to_string()
}

/// The repository's tip commit after a commit, made visible to dumb-HTTP clients.
fn commit(repo: &Path, msg: &str) -> String {
    git_ok(repo, &["add", "-A"]);
    git_ok(repo, &["commit", "-q", "-m", msg]);
    git_ok(repo, &["update-server-info"]);
    git_ok(repo, &["rev-parse", "HEAD"])
}

/// A server on 127.0.0.1 (`python3 -m http.server`, `git daemon`); killed (by its pid)
/// on drop.
struct Server {
    child: Child,
    port: u16,
}

impl Server {
    /// Serves `dir` over HTTP.
    fn http(dir: &Path) -> Server {
        let port = free_port();
        let mut c = Command::new("python3");
        c.args(["-m", "http.server", "--bind", "127.0.0.1", "--directory"]).arg(dir).arg(port.to_string());
        Server::start(c, port)
    }

    /// Serves the repositories under `dir` over the git protocol.
    fn git_daemon(dir: &Path) -> Server {
        let port = free_port();
        // git-daemon itself, not the `git` wrapper: the pid killed is the server's.
        let exec_path = Command::new("git").arg("--exec-path").output().expect("git --exec-path");
        let exec_path = String::from_utf8_lossy(&exec_path.stdout).trim().to_string();
        let mut c = Command::new(Path::new(&exec_path).join("git-daemon"));
        c.args(["--reuseaddr", "--export-all", "--informative-errors", "--listen=127.0.0.1"])
            .arg(format!("--port={port}"))
            .arg(format!("--base-path={}", dir.display()))
            .arg(dir)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null");
        Server::start(c, port)
    }

    fn start(mut c: Command, port: u16) -> Server {
        let child = c.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap_or_else(|e| panic!("start {c:?}: {e}"));
        let s = Server { child, port };
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "the HTTP server did not listen on {port}");
            std::thread::sleep(Duration::from_millis(50));
        }
        s
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port nothing listens on (the kernel's pick, released).
fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
    l.local_addr().expect("addr").port()
}

/// A repository in the test dir: on `main`, commit 1 (`top.txt`, `sub/run.sh` 0755,
/// `sub/data.txt`, `sub/link` -> data.txt) tagged `v1` (annotated); on branch `dev`,
/// commit 2 changing `sub/data.txt`. Returns (repo dir, commit 1, commit 2).
fn make_repo(b: &Bt) -> (PathBuf, String, String) {
    let repo = b.t.mkdir("repo");
    git_ok(&repo, &["init", "-q", "-b", "main"]);
    b.write(&repo.join("top.txt"), "top\n");
    b.write(&repo.join("sub/run.sh"), "#!/bin/sh\necho run\n");
    b.write(&repo.join("sub/data.txt"), "one\n");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(repo.join("sub/run.sh"), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::os::unix::fs::symlink("data.txt", repo.join("sub/link")).unwrap();
    let c1 = commit(&repo, "one");
    git_ok(&repo, &["tag", "-a", "-m", "release 1", "v1"]);
    git_ok(&repo, &["checkout", "-q", "-b", "dev"]);
    b.write(&repo.join("sub/data.txt"), "two\n");
    let c2 = commit(&repo, "two");
    git_ok(&repo, &["checkout", "-q", "main"]);
    git_ok(&repo, &["update-server-info"]);
    (repo, c1, c2)
}

/// Serves the repository's .git as `/repo.git` (the name ADD recognises as git) and
/// returns the server and that URL.
fn serve_repo(b: &Bt, repo: &Path) -> (Server, String) {
    let served = b.t.mkdir("served");
    std::os::unix::fs::symlink(repo.join(".git"), served.join("repo.git")).unwrap();
    let srv = Server::http(&served);
    let url = format!("http://127.0.0.1:{}/repo.git", srv.port);
    (srv, url)
}

fn have_git_and_python() -> bool {
    let ok = |c: &str| Command::new(c).arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success());
    if ok("git") && ok("python3") {
        return true;
    }
    eprintln!("git or python3 is not installed: skipping");
    false
}

#[test]
fn add_from_git_checks_out_tags_branches_and_shas_with_modes_links_and_owner() {
    if !have_git_and_python() {
        return;
    }
    let b = Bt::new("bld-git");
    let (repo, c1, c2) = make_repo(&b);
    let (srv, url) = serve_repo(&b, &repo);
    let df = format!(
        "FROM busybox\n\
         ADD --chown=7:8 {url}#v1:sub /tag/\n\
         ADD {url}#dev:sub /branch/\n\
         ADD {url}#{c1} /sha/\n\
         ADD --keep-git-dir=true {url}#dev /kept/\n\
         ADD --checksum={c2} {url}?branch=dev&subdir=sub /query/\n\
         ADD {url} /default/\n\
         RUN stat -c '%u:%g %a' /tag/run.sh /tag/data.txt > /tag-owner && readlink /tag/link > /tag-link\n"
    );
    let ctx = b.context("ctx", &[("Dockerfile", &df)]);
    let out = b.path("out");
    b.build(&ctx, &["--output", &format!("type=local,dest={}", out.display())]).ok();
    let read = |p: &str| std::fs::read_to_string(out.join(p)).unwrap_or_else(|e| panic!("{p}: {e}"));
    // #tag:subdir: the subdir's files at the tag, modes kept, links as links, --chown.
    assert_eq!(read("tag/data.txt"), "one\n");
    assert_eq!(read("tag-owner"), "7:8 755\n7:8 644\n");
    assert_eq!(read("tag-link"), "data.txt\n");
    assert!(!out.join("tag/top.txt").exists() && !out.join("tag/sub").exists());
    // #branch follows the branch; the query form too, with --checksum = the commit.
    assert_eq!(read("branch/data.txt"), "two\n");
    assert_eq!(read("query/data.txt"), "two\n");
    // #sha and no ref (the default branch): the whole tree, without .git.
    assert_eq!(read("sha/sub/data.txt"), "one\n");
    assert_eq!(read("sha/top.txt"), "top\n");
    assert!(!out.join("sha/.git").exists() && !out.join("default/.git").exists());
    assert_eq!(read("default/sub/data.txt"), "one\n");
    // --keep-git-dir: a git dir at the commit, on the branch.
    let kept = out.join("kept");
    assert_eq!(git_ok(&kept, &["-c", "safe.directory=*", "rev-parse", "HEAD"]), c2);
    assert_eq!(git_ok(&kept, &["-c", "safe.directory=*", "branch", "--show-current"]), "dev");
    assert_eq!(read("kept/sub/data.txt"), "two\n");
    drop(srv);
    b.assert_clean();
}

#[test]
fn add_from_git_refuses_what_cannot_be_fetched_naming_the_line() {
    if !have_git_and_python() {
        return;
    }
    let b = Bt::new("bld-git-errors");
    let (repo, c1, c2) = make_repo(&b);
    let (srv, url) = serve_repo(&b, &repo);
    let closed = format!("http://127.0.0.1:{}/x.git", free_port());
    let wrong = "0".repeat(40);
    let cases = [
        (format!("ADD {url}#nope /x/"), format!("Dockerfile:2: ADD {url}#nope: git ref \"nope\" not found in {url}")),
        (format!("ADD {url}#{wrong} /x/"), format!("commit {wrong} not found in {url}")),
        (format!("ADD {url}#main:nosuch /x/"), "subdir \"nosuch\" not found".to_string()),
        (format!("ADD {url}#main:../up /x/"), "leads out of the repository".to_string()),
        (format!("ADD --checksum={wrong} {url}#dev /x/"), format!("dev in {url} is commit {c2}, expected {wrong}")),
        (format!("ADD --checksum=sha256:{wrong} {url}#dev /x/"), "full commit sha".to_string()),
        (format!("ADD {closed} /x/"), format!("git could not fetch {closed}")),
    ];
    for (i, (line, want)) in cases.iter().enumerate() {
        let ctx = b.context(&format!("ctx{i}"), &[("Dockerfile", &format!("FROM busybox\n{line}\n"))]);
        let started = Instant::now();
        let o = b.build(&ctx, &[]);
        o.failed().stderr_has(want).stderr_has("Dockerfile:2");
        assert!(started.elapsed() < Duration::from_secs(30), "{line} took {:?}", started.elapsed());
        b.assert_clean();
    }
    // Without git on PATH the build says what it needs.
    let no_git = b.t.mkdir("no-git-bin");
    let ctx = b.context("nogit", &[("Dockerfile", &format!("FROM busybox\nADD {url}#v1 /x/\n"))]);
    let o = b.bb_env(&["build", "--progress", "plain", ctx.to_str().unwrap()], &[("PATH", no_git.to_str().unwrap())]);
    o.failed().stderr_has("Dockerfile:2: ADD from git needs git installed");
    b.assert_clean();
    // The right checksum passes.
    let ctx = b.context("good", &[("Dockerfile", &format!("FROM busybox\nADD --checksum={c1} {url}#v1 /x/\n"))]);
    b.build(&ctx, &[]).ok();
    drop(srv);
    b.assert_clean();
}

#[test]
fn add_from_git_is_cached_by_commit_and_a_new_commit_on_the_branch_misses() {
    if !have_git_and_python() {
        return;
    }
    let b = Bt::new("bld-git-cache");
    let (repo, _, _) = make_repo(&b);
    let (srv, url) = serve_repo(&b, &repo);
    let df = format!("FROM busybox\nADD {url}#dev:sub /src/\nRUN cat /src/data.txt > /seen\n");
    let ctx = b.context("ctx", &[("Dockerfile", &df)]);
    // A local output wants a new (or empty) dir each time.
    let dest = |n: &str| format!("type=local,dest={}", b.path(n).display());
    let first = b.build(&ctx, &["--output", &dest("out1")]);
    first.ok();
    assert_eq!(first.cached_steps(), 0, "{}", first.describe());
    assert_eq!(std::fs::read_to_string(b.path("out1/seen")).unwrap(), "two\n");
    let again = b.build(&ctx, &[]);
    again.ok();
    assert!(again.step_was_cached("ADD") && again.step_was_cached("RUN"), "an unchanged branch hits the cache\n{}", again.describe());

    git_ok(&repo, &["checkout", "-q", "dev"]);
    b.write(&repo.join("sub/data.txt"), "three\n");
    commit(&repo, "three");
    let moved = b.build(&ctx, &["--output", &dest("out2")]);
    moved.ok();
    assert!(!moved.step_was_cached("ADD"), "a new commit on the branch misses\n{}", moved.describe());
    assert_eq!(std::fs::read_to_string(b.path("out2/seen")).unwrap(), "three\n");
    drop(srv);
    b.assert_clean();
}

#[test]
fn add_from_git_over_the_git_protocol_fetches_only_the_commit() {
    if !have_git_and_python() {
        return;
    }
    let b = Bt::new("bld-git-daemon");
    let (repo, _, c2) = make_repo(&b);
    let served = b.t.mkdir("served");
    std::os::unix::fs::symlink(repo.join(".git"), served.join("repo.git")).unwrap();
    let srv = Server::git_daemon(&served);
    let url = format!("git://127.0.0.1:{}/repo.git", srv.port);
    let df = format!("FROM busybox\nADD --keep-git-dir {url}#dev /src/\nADD {url}#v1:sub /tag/\n");
    let ctx = b.context("ctx", &[("Dockerfile", &df)]);
    let out = b.path("out");
    b.build(&ctx, &["--output", &format!("type=local,dest={}", out.display())]).ok();
    assert_eq!(std::fs::read_to_string(out.join("tag/data.txt")).unwrap(), "one\n");
    // The smart protocol allows depth 1: the kept git dir holds the one commit.
    let src = out.join("src");
    assert_eq!(git_ok(&src, &["-c", "safe.directory=*", "rev-parse", "HEAD"]), c2);
    assert_eq!(git_ok(&src, &["-c", "safe.directory=*", "rev-list", "--count", "HEAD"]), "1");
    assert!(src.join(".git/shallow").exists());
    drop(srv);
    b.assert_clean();
}
