//! Running the runtime under test: `<runtime> --root <test dir>/state <args...>`.
//!
//! stdout and stderr go to files, not pipes: after `create` (and `run --detach`) the
//! container's process keeps the runtime's stdio, so a pipe would not reach EOF until
//! the container exits. The files also hold the container's output, readable at any time
//! with [`Output::stdout_now`].

use crate::bundle::Bundle;
use crate::procs;
use serde_json::Value;
use std::fs::File;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long one runtime command may take before the test fails (and the command is
/// killed). Generous: debug builds on a loaded two-core machine.
pub const TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Clone)]
pub struct Runtime {
    pub bin: PathBuf,
    /// The --root state directory (inside the test's temp dir).
    pub root: PathBuf,
    io_dir: PathBuf,
    counter: Arc<AtomicUsize>,
}

/// What a finished runtime command did.
#[derive(Debug)]
pub struct Output {
    pub cmdline: String,
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
    pub stdout_path: PathBuf,
    pub stderr_path: PathBuf,
}

impl Output {
    pub fn success(&self) -> bool {
        self.status.success()
    }
    /// The exit code; panics if the command was killed by a signal.
    pub fn code(&self) -> i32 {
        self.status.code().unwrap_or_else(|| panic!("{} was killed by signal {:?}\n{}", self.cmdline, self.status.signal(), self.describe()))
    }
    pub fn describe(&self) -> String {
        format!("command: {}\nstatus: {}\nstdout:\n{}\nstderr:\n{}", self.cmdline, self.status, self.stdout, self.stderr)
    }
    /// Panics with the whole command, status and output unless it exited 0.
    #[track_caller]
    pub fn ok(&self) -> &Self {
        assert!(self.success(), "expected success\n{}", self.describe());
        self
    }
    /// Panics unless it exited non-zero (not by a signal: a crash is not a refusal).
    #[track_caller]
    pub fn failed(&self) -> &Self {
        assert!(self.status.code().is_some_and(|c| c != 0), "expected a non-zero exit\n{}", self.describe());
        self
    }
    /// Panics unless stderr contains `words`.
    #[track_caller]
    pub fn stderr_has(&self, words: &str) -> &Self {
        assert!(self.stderr.contains(words), "expected stderr to contain {words:?}\n{}", self.describe());
        self
    }
    /// stdout as the file holds it now: for `create`, the container's output so far.
    pub fn stdout_now(&self) -> String {
        std::fs::read_to_string(&self.stdout_path).unwrap_or_default()
    }
    pub fn stderr_now(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }
    /// Waits until the file-backed stdout contains `what` (the container wrote it).
    #[track_caller]
    pub fn wait_stdout(&self, what: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let s = self.stdout_now();
            if s.contains(what) {
                return s;
            }
            if Instant::now() > deadline {
                panic!("{:?} did not appear in the output of {} within {timeout:?}; stdout so far:\n{s}\nstderr:\n{}", what, self.cmdline, self.stderr_now());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Options for one command beyond its arguments.
#[derive(Default, Clone)]
pub struct Opts {
    /// Working directory (default: the test's temp dir).
    pub cwd: Option<PathBuf>,
    /// Extra fds for the runtime, as (fd in this process, number in the runtime), passed
    /// without O_CLOEXEC: for --preserve-fds.
    pub pass_fds: Vec<(i32, i32)>,
    pub timeout: Option<Duration>,
    /// Do not put `--root` first (for `--version` and flag tests).
    pub no_root: bool,
    /// Bytes for the command's stdin (e.g. `update -r -`); /dev/null when None.
    pub stdin: Option<Vec<u8>>,
    /// Extra environment variables for the command.
    pub env: Vec<(String, String)>,
}

/// A runtime command still running (`run` in the foreground while the test acts on it).
/// Dropping it kills (SIGKILL, by pid: it is our child) and waits.
pub struct Running {
    pub cmdline: String,
    child: Option<Child>,
    pub stdout_path: PathBuf,
    pub stderr_path: PathBuf,
}

impl Running {
    /// Spawns `cmd`, whose stdout and stderr the caller pointed at these two files
    /// (files, not pipes: a leaked process holding them cannot block the test).
    pub fn spawn(cmd: &mut Command, cmdline: String, stdout_path: PathBuf, stderr_path: PathBuf) -> Result<Running, String> {
        let child = procs::spawn(cmd).map_err(|e| format!("cannot run {cmdline}: {e}"))?;
        Ok(Running { cmdline, child: Some(child), stdout_path, stderr_path })
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().map(|c| c.id() as i32).unwrap_or(0)
    }
    pub fn stdout_now(&self) -> String {
        std::fs::read_to_string(&self.stdout_path).unwrap_or_default()
    }
    /// The exit status if it has finished.
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        let c = self.child.as_mut()?;
        match c.try_wait() {
            Ok(Some(s)) => {
                procs::untrack(c.id());
                Some(s)
            }
            Ok(None) => None,
            Err(e) => panic!("waiting for {}: {e}", self.cmdline),
        }
    }
    /// Waits for the command to finish; panics (after killing it) past `timeout`.
    #[track_caller]
    pub fn wait(mut self, timeout: Duration) -> Output {
        let deadline = Instant::now() + timeout;
        let mut nap = Duration::from_millis(2);
        loop {
            if let Some(status) = self.try_wait() {
                self.child = None;
                return Output {
                    cmdline: self.cmdline.clone(),
                    status,
                    stdout: self.stdout_now(),
                    stderr: std::fs::read_to_string(&self.stderr_path).unwrap_or_default(),
                    stdout_path: self.stdout_path.clone(),
                    stderr_path: self.stderr_path.clone(),
                };
            }
            if Instant::now() > deadline {
                let out = self.stdout_now();
                let err = std::fs::read_to_string(&self.stderr_path).unwrap_or_default();
                self.kill();
                panic!("{} did not finish within {timeout:?} (killed it)\nstdout:\n{out}\nstderr:\n{err}", self.cmdline);
            }
            std::thread::sleep(nap);
            nap = (nap * 2).min(Duration::from_millis(20));
        }
    }
    /// SIGKILL and reap, if still running.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            if let Ok(None) = c.try_wait() {
                procs::signal(c.id() as i32, libc::SIGKILL);
            }
            let _ = c.wait();
            procs::untrack(c.id());
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.kill();
    }
}

impl Runtime {
    pub fn new(bin: PathBuf, root: PathBuf, io_dir: PathBuf) -> Runtime {
        std::fs::create_dir_all(&io_dir).expect("create io dir");
        Runtime { bin, root, io_dir, counter: Arc::new(AtomicUsize::new(0)) }
    }

    /// Starts `<runtime> --root ROOT args...` and returns at once.
    #[track_caller]
    pub fn spawn(&self, args: &[&str], o: &Opts) -> Running {
        self.try_spawn(args, o).unwrap_or_else(|e| panic!("{e} (build the runtime, or set BERTH_RUNTIME)"))
    }

    /// [`Runtime::spawn`] that reports a runtime that cannot be started instead of
    /// panicking (for cleanup code, which must not panic while a test unwinds).
    pub fn try_spawn(&self, args: &[&str], o: &Opts) -> Result<Running, String> {
        let n = self.counter.fetch_add(1, Ordering::SeqCst);
        // Name the output files for the subcommand, for a person reading a kept test dir.
        const CMDS: &[&str] = &["create", "start", "run", "state", "kill", "delete", "list", "spec", "exec", "ps", "events", "pause", "resume", "update"];
        let word = args.iter().find(|a| CMDS.contains(a)).copied().unwrap_or("cmd");
        let stdout_path = self.io_dir.join(format!("{n:03}-{word}.out"));
        let stderr_path = self.io_dir.join(format!("{n:03}-{word}.err"));
        let mut cmd = Command::new(&self.bin);
        let mut all: Vec<String> = Vec::new();
        if !o.no_root {
            all.push("--root".into());
            all.push(self.root.to_string_lossy().into_owned());
        }
        all.extend(args.iter().map(|s| s.to_string()));
        cmd.args(&all);
        cmd.envs(o.env.iter().map(|(k, v)| (k, v)));
        match &o.stdin {
            None => cmd.stdin(Stdio::null()),
            Some(bytes) => {
                let p = self.io_dir.join(format!("{n:03}-{word}.in"));
                std::fs::write(&p, bytes).map_err(|e| format!("write {}: {e}", p.display()))?;
                cmd.stdin(File::open(&p).map_err(|e| format!("open {}: {e}", p.display()))?)
            }
        };
        cmd.stdout(File::create(&stdout_path).map_err(|e| format!("create {}: {e}", stdout_path.display()))?)
            .stderr(File::create(&stderr_path).map_err(|e| format!("create {}: {e}", stderr_path.display()))?)
            .current_dir(o.cwd.clone().unwrap_or_else(|| self.io_dir.parent().unwrap_or(Path::new("/")).to_path_buf()));
        if !o.pass_fds.is_empty() {
            let fds = o.pass_fds.clone();
            // SAFETY: only dup2 and fcntl, both async-signal-safe, between fork and exec.
            unsafe {
                cmd.pre_exec(move || {
                    for &(from, to) in &fds {
                        if from == to {
                            let fl = libc::fcntl(from, libc::F_GETFD);
                            if fl < 0 || libc::fcntl(from, libc::F_SETFD, fl & !libc::FD_CLOEXEC) < 0 {
                                return Err(std::io::Error::last_os_error());
                            }
                        } else if libc::dup2(from, to) < 0 {
                            return Err(std::io::Error::last_os_error());
                        }
                    }
                    Ok(())
                });
            }
        }
        let cmdline = format!("{} {}", self.bin.display(), shell_words(&all));
        Running::spawn(&mut cmd, cmdline, stdout_path, stderr_path)
    }

    /// Runs a command to completion with options.
    #[track_caller]
    pub fn cmd_opts(&self, args: &[&str], o: &Opts) -> Output {
        self.spawn(args, o).wait(o.timeout.unwrap_or(TIMEOUT))
    }

    /// Runs `<runtime> --root ROOT args...` to completion.
    #[track_caller]
    pub fn cmd(&self, args: &[&str]) -> Output {
        self.cmd_opts(args, &Opts::default())
    }

    /// `create --bundle DIR [extra...] ID` (writes the bundle's config.json first).
    #[track_caller]
    pub fn create(&self, id: &str, b: &Bundle) -> Output {
        self.create_with(id, b, &[])
    }

    #[track_caller]
    pub fn create_with(&self, id: &str, b: &Bundle, extra: &[&str]) -> Output {
        b.write();
        let dir = b.dir.to_string_lossy().into_owned();
        let mut args = vec!["create", "--bundle", &dir];
        args.extend_from_slice(extra);
        args.push(id);
        self.cmd(&args)
    }

    #[track_caller]
    pub fn start(&self, id: &str) -> Output {
        self.cmd(&["start", id])
    }

    /// `run --bundle DIR [extra...] ID` in the foreground: the container's exit code and
    /// output are the command's.
    #[track_caller]
    pub fn run(&self, id: &str, b: &Bundle) -> Output {
        self.run_with(id, b, &[])
    }

    #[track_caller]
    pub fn run_with(&self, id: &str, b: &Bundle, extra: &[&str]) -> Output {
        self.spawn_run(id, b, extra).wait(TIMEOUT)
    }

    /// `run` started in the background.
    pub fn spawn_run(&self, id: &str, b: &Bundle, extra: &[&str]) -> Running {
        b.write();
        let dir = b.dir.to_string_lossy().into_owned();
        let mut args = vec!["run", "--bundle", &dir];
        args.extend_from_slice(extra);
        args.push(id);
        self.spawn(&args, &Opts::default())
    }

    /// `state ID`, parsed; panics unless it succeeds with JSON.
    #[track_caller]
    pub fn state(&self, id: &str) -> Value {
        let o = self.cmd(&["state", id]);
        o.ok();
        serde_json::from_str(&o.stdout).unwrap_or_else(|e| panic!("state output is not JSON: {e}\n{}", o.describe()))
    }

    /// The `status` field of `state ID`.
    #[track_caller]
    pub fn status(&self, id: &str) -> String {
        self.state(id)["status"].as_str().unwrap_or_default().to_string()
    }

    /// Polls `state` until the status is `want`.
    #[track_caller]
    pub fn wait_status(&self, id: &str, want: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let s = self.status(id);
            if s == want {
                return;
            }
            if Instant::now() > deadline {
                panic!("container {id} is {s:?}, not {want:?}, after {timeout:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    #[track_caller]
    pub fn kill(&self, id: &str, sig: &str) -> Output {
        self.cmd(&["kill", id, sig])
    }

    #[track_caller]
    pub fn delete(&self, id: &str) -> Output {
        self.cmd(&["delete", id])
    }

    #[track_caller]
    pub fn delete_force(&self, id: &str) -> Output {
        self.cmd(&["delete", "--force", id])
    }

    /// `list --format json`: runc prints `null` for none, which reads as empty.
    #[track_caller]
    pub fn list(&self) -> Vec<Value> {
        let o = self.cmd(&["list", "--format", "json"]);
        o.ok();
        match serde_json::from_str::<Value>(o.stdout.trim()) {
            Ok(Value::Null) => vec![],
            Ok(Value::Array(a)) => a,
            _ => panic!("list --format json did not print a JSON array\n{}", o.describe()),
        }
    }

    pub fn list_ids(&self) -> Vec<String> {
        self.list().iter().filter_map(|c| c["id"].as_str().map(String::from)).collect()
    }
}

/// Quotes arguments for messages, so a failing command can be pasted into a shell.
pub fn shell_words(args: &[String]) -> String {
    args.iter()
        .map(|a| {
            if !a.is_empty() && a.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c)) {
                a.clone()
            } else {
                format!("'{}'", a.replace('\'', "'\\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}
