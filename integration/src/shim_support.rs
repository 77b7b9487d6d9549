//! Helpers for the berth-shim end-to-end tests (tests/shim.rs).
//!
//! Binaries: the runtime is `$BERTH_RUNTIME`, else the newer of the workspace's
//! target/{release,debug}/berth; the shim is `$BERTH_SHIM`, else the newer of
//! target/{release,debug}/berth-shim.
//!
//! Every test gets its own temporary directory holding the runtime's --root, the bundle,
//! the log, the sockets and the pid files. [`ShimTest`]'s Drop deletes the container,
//! stops the shim (by the pid it wrote) and removes the directory, also when the test
//! failed. The test process makes itself a child subreaper (PID 1 here does not reap),
//! so shims and orphaned container processes come back to it and it reaps them by pid.

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Once;
use std::time::{Duration, Instant};

pub const TIMEOUT: Duration = Duration::from_secs(30);

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => workspace_root().join("target"),
    }
}

fn pick_binary(env: &str, name: &str) -> PathBuf {
    if let Some(p) = std::env::var_os(env).filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    let t = target_dir();
    [t.join("release").join(name), t.join("debug").join(name)]
        .into_iter()
        .filter_map(|p| Some((std::fs::metadata(&p).ok()?.modified().ok()?, p)))
        .max()
        .map(|(_, p)| p)
        .unwrap_or_else(|| t.join("release").join(name))
}

/// The OCI runtime under test.
pub fn runtime_bin() -> PathBuf {
    pick_binary("BERTH_RUNTIME", "berth")
}

/// The shim under test.
pub fn shim_bin() -> PathBuf {
    pick_binary("BERTH_SHIM", "berth-shim")
}

/// Make this process the child subreaper (once): detached shims and orphaned container
/// processes are reparented to us, not to PID 1, which does not reap here.
pub fn become_subreaper() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let r = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
        assert_eq!(r, 0, "prctl(PR_SET_CHILD_SUBREAPER)");
    });
}

pub use crate::tempdir::TempDir;

/// Container ids unique within this test process.
static COUNTER: AtomicUsize = AtomicUsize::new(0);

const APPLETS: &[&str] =
    &["sh", "cat", "echo", "sleep", "printf", "head", "yes", "seq", "true", "false", "ls", "env", "tr", "dd", "stty", "tty", "wc", "test", "["];

/// A bundle at `dir/bundle` whose rootfs is busybox, running `args`.
pub fn make_bundle(dir: &Path, args: &[&str], terminal: bool) -> PathBuf {
    let bundle = dir.join("bundle");
    let bin = bundle.join("rootfs/bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::copy("/bin/busybox", bin.join("busybox")).expect("copy /bin/busybox");
    for a in APPLETS {
        std::os::unix::fs::symlink("busybox", bin.join(a)).unwrap();
    }
    let mut spec = berth_spec::default_config::default_spec_json(false);
    spec["process"]["args"] = serde_json::json!(args);
    spec["process"]["terminal"] = serde_json::json!(terminal);
    spec["root"]["readonly"] = serde_json::json!(false);
    std::fs::write(bundle.join("config.json"), serde_json::to_vec_pretty(&spec).unwrap()).unwrap();
    bundle
}

/// Is `pid` a live (not zombie) process?
pub fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => s.rsplit_once(") ").is_some_and(|(_, rest)| !rest.starts_with('Z') && !rest.starts_with('X')),
        Err(_) => false,
    }
}

/// (state, ppid, session) of a process, from /proc/<pid>/stat.
pub fn proc_stat(pid: i32) -> Option<(char, i32, i32)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = s.rsplit_once(") ")?;
    let f: Vec<&str> = rest.split(' ').collect();
    Some((f[0].chars().next()?, f[1].parse().ok()?, f[3].parse().ok()?))
}

fn comm(pid: i32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default().trim().to_string()
}

/// Children of `pid` (any state), from /proc.
pub fn children_of(pid: i32) -> Vec<(i32, char)> {
    let mut v = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(p) = e.file_name().to_string_lossy().parse::<i32>() {
            if let Some((st, ppid, _)) = proc_stat(p) {
                if ppid == pid {
                    v.push((p, st));
                }
            }
        }
    }
    v
}

/// Processes with `needle` as one of their arguments (to check nothing was left behind).
pub fn processes_mentioning(needle: &str) -> Vec<i32> {
    let me = std::process::id() as i32;
    let mut v = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(p) = e.file_name().to_string_lossy().parse::<i32>() {
            if p == me || !alive(p) {
                continue;
            }
            if let Ok(c) = std::fs::read(format!("/proc/{p}/cmdline")) {
                if c.split(|&b| b == 0).any(|arg| arg == needle.as_bytes()) {
                    v.push(p);
                }
            }
        }
    }
    v
}

/// Wait until `pid` has exited, reaping it when it is our child. False on timeout.
pub fn wait_gone(pid: i32, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        let mut st = 0;
        let r = unsafe { libc::waitpid(pid, &mut st, libc::WNOHANG) };
        if r == pid || (r < 0 && !alive(pid)) {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Wait for `cond`, polling. False on timeout.
pub fn wait_for(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Run a command to completion with a time limit (the child is killed by its pid on timeout).
pub fn run_with_timeout(cmd: &mut Command, timeout: Duration) -> (Output, u32) {
    let mut child = cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn");
    let pid = child.id();
    let deadline = Instant::now() + timeout;
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!("{cmd:?} did not finish within {timeout:?}; stderr: {}", String::from_utf8_lossy(&out.stderr));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    (child.wait_with_output().unwrap(), pid)
}

/// One container run by berth-shim in its own directory.
pub struct ShimTest {
    pub dir: TempDir,
    pub id: String,
    pub runtime: PathBuf,
    pub shim: PathBuf,
    pub root: PathBuf,
    pub bundle: PathBuf,
    pub log: PathBuf,
    pub exit_file: PathBuf,
    pub attach: PathBuf,
    pub pid_file: PathBuf,
    pub shim_pid_file: PathBuf,
    /// The shim's pid, once launched (its pid file goes away when it exits).
    pub shim_pid: Option<i32>,
    pub init_pid: Option<i32>,
}

impl ShimTest {
    /// A fresh directory and a busybox bundle running `args`.
    pub fn new(tag: &str, args: &[&str], terminal: bool) -> ShimTest {
        become_subreaper();
        let dir = TempDir::new(tag);
        let d = dir.path().to_path_buf();
        let bundle = make_bundle(&d, args, terminal);
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        ShimTest {
            id: format!("shimtest-{}-{n}", std::process::id()),
            runtime: runtime_bin(),
            shim: shim_bin(),
            root: d.join("state"),
            bundle,
            log: d.join("ctr.log"),
            exit_file: d.join("exit"),
            attach: d.join("attach.sock"),
            pid_file: d.join("init.pid"),
            shim_pid_file: d.join("shim.pid"),
            shim_pid: None,
            init_pid: None,
            dir,
        }
    }

    /// The shim's command line with this test's paths, plus `extra`.
    pub fn command(&self, extra: &[&str]) -> Command {
        let mut c = Command::new(&self.shim);
        c.arg("--id").arg(&self.id);
        c.arg("--bundle").arg(&self.bundle);
        c.arg("--root").arg(&self.root);
        c.arg("--runtime").arg(&self.runtime);
        c.arg("--log-path").arg(&self.log);
        c.arg("--exit-file").arg(&self.exit_file);
        c.arg("--attach-socket").arg(&self.attach);
        c.arg("--pid-file").arg(&self.pid_file);
        c.arg("--shim-pid-file").arg(&self.shim_pid_file);
        c.args(extra);
        c
    }

    /// Run the shim; returns once its caller-facing process does, with that process's
    /// output and pid.
    pub fn launch(&mut self, extra: &[&str]) -> (Output, u32) {
        let r = run_with_timeout(&mut self.command(extra), TIMEOUT);
        self.shim_pid = std::fs::read_to_string(&self.shim_pid_file).ok().and_then(|s| s.trim().parse().ok());
        self.init_pid = std::fs::read_to_string(&self.pid_file).ok().and_then(|s| s.trim().parse().ok());
        r
    }

    /// Launch and insist on success.
    pub fn launch_ok(&mut self, extra: &[&str]) {
        let (out, _) = self.launch(extra);
        assert!(out.status.success(), "berth-shim failed ({:?}): {}", out.status, String::from_utf8_lossy(&out.stderr));
        assert!(self.shim_pid.is_some(), "no --shim-pid-file written");
    }

    /// `<runtime> --root R <args>`
    pub fn runtime_cmd(&self, args: &[&str]) -> Output {
        let mut c = Command::new(&self.runtime);
        c.arg("--root").arg(&self.root).args(args);
        run_with_timeout(&mut c, TIMEOUT).0
    }

    /// The container's status from `<runtime> state`, if it exists.
    pub fn status(&self) -> Option<String> {
        let out = self.runtime_cmd(&["state", &self.id]);
        if !out.status.success() {
            return None;
        }
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        v["status"].as_str().map(str::to_string)
    }

    /// Wait for the shim to exit (reaping it); then the exit file's number.
    pub fn wait_exit(&self) -> i32 {
        let pid = self.shim_pid.expect("shim pid");
        assert!(wait_gone(pid, TIMEOUT), "the shim (pid {pid}) did not exit");
        let s = std::fs::read_to_string(&self.exit_file).expect("exit file");
        s.trim().parse().unwrap_or_else(|_| panic!("exit file holds {s:?}"))
    }

    pub fn log_text(&self) -> String {
        String::from_utf8_lossy(&std::fs::read(&self.log).unwrap_or_default()).into_owned()
    }

    /// Assert that neither the shim nor the container is left.
    pub fn assert_nothing_left(&self) {
        if let Some(p) = self.shim_pid {
            assert!(wait_gone(p, TIMEOUT), "shim {p} still running");
        }
        if let Some(p) = self.init_pid {
            assert!(wait_gone(p, TIMEOUT), "container init {p} still running");
        }
        assert_eq!(processes_mentioning(&self.id), Vec::<i32>::new(), "processes left for {}", self.id);
    }
}

impl Drop for ShimTest {
    fn drop(&mut self) {
        // Delete the container (the shim sees its init die and exits by itself).
        let mut c = Command::new(&self.runtime);
        c.arg("--root").arg(&self.root).args(["delete", "--force", &self.id]);
        let _ = c.stdout(Stdio::null()).stderr(Stdio::null()).status();
        if let Some(pid) = self.shim_pid {
            if !wait_gone(pid, Duration::from_secs(5)) && alive(pid) && comm(pid) == "berth-shim" {
                unsafe { libc::kill(pid, libc::SIGKILL) };
                wait_gone(pid, Duration::from_secs(5));
            }
        }
        if let Some(pid) = self.init_pid {
            // Reparented to us if the shim died first.
            wait_gone(pid, Duration::from_secs(5));
        }
    }
}

/// A client of the shim's attach socket (SOCK_SEQPACKET; see shim/src/main.rs).
pub struct AttachClient {
    fd: OwnedFd,
}

/// What a client has received so far.
#[derive(Default, Debug)]
pub struct Received {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub exit: Option<i32>,
    pub closed: bool,
}

impl AttachClient {
    pub fn connect(path: &Path) -> std::io::Result<AttachClient> {
        let fd = unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC, 0) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
        addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
        let p = CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
        let b = p.as_bytes_with_nul();
        assert!(b.len() <= addr.sun_path.len(), "socket path too long");
        for (i, &c) in b.iter().enumerate() {
            addr.sun_path[i] = c as libc::c_char;
        }
        let r =
            unsafe { libc::connect(fd.as_raw_fd(), (&addr as *const libc::sockaddr_un).cast(), std::mem::size_of::<libc::sockaddr_un>() as libc::socklen_t) };
        if r < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(AttachClient { fd })
    }

    pub fn send(&self, pkt: &[u8]) {
        let r = unsafe { libc::send(self.fd.as_raw_fd(), pkt.as_ptr().cast(), pkt.len(), libc::MSG_NOSIGNAL) };
        assert_eq!(r, pkt.len() as isize, "send to attach socket: {}", std::io::Error::last_os_error());
    }

    pub fn send_stdin(&self, data: &[u8]) {
        let mut p = vec![0u8];
        p.extend_from_slice(data);
        self.send(&p);
    }

    pub fn close_stdin(&self) {
        self.send(&[1]);
    }

    pub fn resize(&self, rows: u16, cols: u16) {
        let mut p = vec![2u8];
        p.extend_from_slice(&rows.to_le_bytes());
        p.extend_from_slice(&cols.to_le_bytes());
        self.send(&p);
    }

    /// One packet, waiting up to `timeout`: Some(None) at end of stream, None on timeout.
    pub fn recv(&self, timeout: Duration) -> Option<Option<Vec<u8>>> {
        let mut pfd = libc::pollfd { fd: self.fd.as_raw_fd(), events: libc::POLLIN, revents: 0 };
        let r = unsafe { libc::poll(&mut pfd, 1, timeout.as_millis() as libc::c_int) };
        if r <= 0 {
            return None;
        }
        let mut buf = vec![0u8; 65536];
        let n = unsafe { libc::recv(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
        if n <= 0 {
            return Some(None);
        }
        buf.truncate(n as usize);
        Some(Some(buf))
    }

    /// Collect packets until `done` says so, the stream ends, or the time is up.
    pub fn collect_until(&self, timeout: Duration, done: impl Fn(&Received) -> bool) -> Received {
        let deadline = Instant::now() + timeout;
        let mut r = Received::default();
        while !done(&r) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            match self.recv(left) {
                None => break,
                Some(None) => {
                    r.closed = true;
                    break;
                }
                Some(Some(p)) => match p[0] {
                    1 => r.stdout.extend_from_slice(&p[1..]),
                    2 => r.stderr.extend_from_slice(&p[1..]),
                    3 => r.exit = String::from_utf8_lossy(&p[1..]).parse().ok(),
                    t => panic!("unknown packet kind {t}"),
                },
            }
        }
        r
    }
}

/// Does `hay` contain `needle`?
pub fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Check a k8s-file log line's shape: `<RFC3339Nano> <stdout|stderr> <P|F> <text>`;
/// returns (stream, tag, text).
pub fn parse_k8s_line(line: &str) -> (String, char, String) {
    let mut it = line.splitn(4, ' ');
    let ts = it.next().unwrap_or("");
    let stream = it.next().unwrap_or("");
    let tag = it.next().unwrap_or("");
    let text = it.next();
    let b = ts.as_bytes();
    let digits = |r: std::ops::Range<usize>| b.get(r).is_some_and(|s| s.iter().all(u8::is_ascii_digit));
    let ts_ok = b.len() >= 21
        && digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && b[10] == b'T'
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19)
        && b[19] == b'.'
        && {
            let frac_end = b[20..].iter().position(|c| !c.is_ascii_digit()).map_or(b.len(), |i| 20 + i);
            frac_end > 20
                && frac_end <= 29
                && (&ts[frac_end..] == "Z" || {
                    let z = &b[frac_end..];
                    z.len() == 6 && (z[0] == b'+' || z[0] == b'-') && z[3] == b':'
                })
        };
    assert!(ts_ok, "bad timestamp in log line {line:?}");
    assert!(stream == "stdout" || stream == "stderr", "bad stream in log line {line:?}");
    assert!(tag == "P" || tag == "F", "bad P/F mark in log line {line:?}");
    let text = text.unwrap_or_else(|| panic!("no text field in log line {line:?}"));
    (stream.to_string(), tag.chars().next().unwrap(), text.to_string())
}
