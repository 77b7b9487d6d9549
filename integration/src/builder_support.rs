//! Helpers of the berth-build tests (tests/builder.rs): a [`Bt`] is a harness [`Test`]
//! (temp dir, runtime, cleanup) with an image store of its own holding `busybox:latest`,
//! imported with `berth-build import` from a tarball of the harness's busybox rootfs.

use crate::runtime::{Output, Running};
use crate::{paths, procs, rootfs, Test};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

/// How long one berth-build command may take (debug builds, a loaded two-core machine).
pub const TIMEOUT: Duration = Duration::from_secs(300);

/// `$BERTH_BUILD`, else the newer of target/{release,debug}/berth-build.
pub fn builder_bin() -> PathBuf {
    static P: OnceLock<PathBuf> = OnceLock::new();
    P.get_or_init(|| {
        if let Some(p) = std::env::var_os("BERTH_BUILD").filter(|p| !p.is_empty()) {
            return PathBuf::from(p);
        }
        let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| paths::workspace().join("target"));
        let mtime = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
        let (r, d) = (target.join("release/berth-build"), target.join("debug/berth-build"));
        match (mtime(&r), mtime(&d)) {
            (Some(a), Some(b)) if a > b => r,
            (Some(_), None) => r,
            _ => d,
        }
    })
    .clone()
}

/// What a berth-build command did: the harness's [`Output`], read with [`BuildOutput`].
pub type Out = Output;

/// What a build's plain progress (stderr) says about its steps.
pub trait BuildOutput {
    /// Plain progress lines `#N CACHED` in stderr.
    fn cached_steps(&self) -> usize;
    /// The `#N [..] TEXT` step lines whose step was a cache hit.
    fn step_was_cached(&self, text: &str) -> bool;
}

impl BuildOutput for Output {
    fn cached_steps(&self) -> usize {
        self.stderr.lines().filter(|l| l.starts_with('#') && l.ends_with(" CACHED")).count()
    }
    fn step_was_cached(&self, text: &str) -> bool {
        let Some(n) = self.stderr.lines().find(|l| l.starts_with('#') && l.contains(text)).and_then(|l| l.split(' ').next()) else {
            panic!("no step {text:?} in\n{}", self.describe());
        };
        self.stderr.lines().any(|l| l == format!("{n} CACHED"))
    }
}

/// Runs `cmd` (stdout and stderr to files in `dir`, removed afterwards), killing it
/// after [`TIMEOUT`].
#[track_caller]
pub fn run_cmd(cmd: &mut Command, dir: &Path) -> Out {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let (o, e) = (dir.join(format!("cmd{n}.out")), dir.join(format!("cmd{n}.err")));
    let cmdline = format!("{:?}", cmd);
    cmd.stdin(Stdio::null()).stdout(std::fs::File::create(&o).expect("stdout file")).stderr(std::fs::File::create(&e).expect("stderr file"));
    let out = Running::spawn(cmd, cmdline, o.clone(), e.clone()).unwrap_or_else(|err| panic!("{err}")).wait(TIMEOUT);
    let _ = std::fs::remove_file(&o);
    let _ = std::fs::remove_file(&e);
    out
}

/// A builder test: a harness test with a store of its own.
pub struct Bt {
    pub t: Test,
    pub store: PathBuf,
}

impl Bt {
    /// A test with `busybox:latest` imported into its store.
    pub fn new(name: &str) -> Bt {
        Bt::with(Test::new(name))
    }

    /// The same, running alone in its test binary (see [`Test::exclusive`]): it may
    /// check that no process is left below the test.
    pub fn exclusive(name: &str) -> Bt {
        Bt::with(Test::exclusive(name))
    }

    fn with(t: Test) -> Bt {
        let store = t.dir.join("store");
        let bt = Bt { t, store };
        let tar = bt.t.dir.join("busybox.tar");
        let o = procs::output(Command::new("tar").arg("-C").arg(rootfs::base()).arg("-cf").arg(&tar).arg(".")).expect("run tar");
        assert!(o.status.success(), "tar of the busybox rootfs: {}", String::from_utf8_lossy(&o.stderr));
        bt.bb(&["import", tar.to_str().expect("utf-8 path"), "busybox"]).ok();
        bt
    }

    /// `berth-build --store STORE args...`
    pub fn bb(&self, args: &[&str]) -> Out {
        self.bb_env(args, &[])
    }

    pub fn bb_env(&self, args: &[&str], env: &[(&str, &str)]) -> Out {
        let mut c = Command::new(builder_bin());
        c.arg("--store").arg(&self.store).args(args).current_dir(&self.t.dir);
        for (k, v) in env {
            c.env(k, v);
        }
        run_cmd(&mut c, &self.t.dir)
    }

    /// `build --progress plain EXTRA... CONTEXT`
    pub fn build(&self, ctx: &Path, extra: &[&str]) -> Out {
        let mut a = vec!["build", "--progress", "plain"];
        a.extend_from_slice(extra);
        a.push(ctx.to_str().expect("utf-8 path"));
        self.bb(&a)
    }

    /// A build context dir `name` with these files (parents created).
    pub fn context(&self, name: &str, files: &[(&str, &str)]) -> PathBuf {
        let dir = self.t.mkdir(name);
        for (p, text) in files {
            self.write(&dir.join(p), text);
        }
        dir
    }

    pub fn write(&self, p: &Path, text: &str) {
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(p, text).expect("write file");
    }

    /// Checks that nothing of a build is left: no temp files in the store, no per-build
    /// link dir pointing into it, no process started with the store in its command line.
    #[track_caller]
    pub fn assert_clean(&self) {
        let tmp: Vec<String> =
            std::fs::read_dir(self.store.join("tmp")).map(|d| d.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect()).unwrap_or_default();
        assert!(tmp.is_empty(), "left in the store's tmp/: {tmp:?}");
        let store = self.store.to_string_lossy().into_owned();
        let mut procs_left = Vec::new();
        for pid in procs::all_pids() {
            if let Some(c) = procs::cmdline(pid) {
                if c.contains(&store) && procs::alive(pid) {
                    procs_left.push(c);
                }
            }
        }
        assert!(procs_left.is_empty(), "processes left: {procs_left:?}");
        for e in std::fs::read_dir("/tmp").into_iter().flatten().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.len() == 8 && name.starts_with("bb") {
                for l in std::fs::read_dir(e.path()).into_iter().flatten().flatten() {
                    if let Ok(t) = std::fs::read_link(l.path()) {
                        assert!(!t.starts_with(&self.store), "link dir left: {}", e.path().display());
                    }
                }
            }
        }
        let mounts = crate::host::mounts_under(&self.t.dir);
        assert!(mounts.is_empty(), "mounts left: {mounts:?}");
    }

    /// The image config of `name`, from `inspect`.
    pub fn inspect(&self, name: &str) -> serde_json::Value {
        let o = self.bb(&["inspect", name]);
        o.ok();
        serde_json::from_str(&o.stdout).unwrap_or_else(|e| panic!("inspect output is not JSON: {e}\n{}", o.stdout))
    }

    /// A path in the test dir.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.t.dir.join(rel)
    }
}

/// A one-shot HTTP/1.1 server on 127.0.0.1 serving `body` at any path, for `count`
/// requests; returns its port. Runs in a thread of the test.
pub fn serve(body: Vec<u8>, count: usize) -> u16 {
    use std::io::{Read, Write};
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
    let port = l.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for _ in 0..count {
            let Ok((mut s, _)) = l.accept() else { return };
            let mut req = Vec::new();
            let mut buf = [0u8; 1024];
            while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => req.extend_from_slice(&buf[..n]),
                }
            }
            let head =
                format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nLast-Modified: Sun, 06 Nov 1994 08:49:37 GMT\r\nConnection: close\r\n\r\n", body.len());
            let _ = s.write_all(head.as_bytes());
            let _ = s.write_all(&body);
        }
    });
    port
}

/// sha256 of bytes, hex (via the host's sha256sum).
pub fn sha256_hex(data: &[u8]) -> String {
    use std::io::Write;
    let mut c = procs::spawn(Command::new("sha256sum").stdin(Stdio::piped()).stdout(Stdio::piped())).expect("sha256sum");
    c.stdin.take().expect("stdin").write_all(data).expect("write");
    let pid = c.id();
    let o = c.wait_with_output().expect("sha256sum");
    procs::untrack(pid);
    String::from_utf8_lossy(&o.stdout).split_whitespace().next().unwrap_or("").to_string()
}
