//! Running an engine's command-line client (podman, ctr, docker) with its fixed global
//! flags and environment, inside the engine's network namespace, with a timeout. Output
//! goes to files (a daemonising child may keep a pipe open for ever), and comes back as
//! the harness's [`Output`].

use crate::procs;
use crate::runtime::{shell_words, Output};
use std::fs::File;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Options for one client command.
#[derive(Default, Clone)]
pub struct CliOpts {
    /// Bytes for stdin (else /dev/null).
    pub stdin: Option<Vec<u8>>,
    /// (fd in this process, fd number in the client), passed without O_CLOEXEC.
    pub pass_fds: Vec<(RawFd, RawFd)>,
    pub timeout: Option<Duration>,
}

#[derive(Clone)]
pub struct Cli {
    pub program: PathBuf,
    pub base_args: Vec<String>,
    pub env: Vec<(String, String)>,
    /// setns(2) into this network namespace before exec.
    pub netns: Option<RawFd>,
    pub io_dir: PathBuf,
    counter: Arc<AtomicUsize>,
}

/// A client command still running.
pub struct Spawned {
    pub cmdline: String,
    pub child: Option<Child>,
    pub stdout_path: PathBuf,
    pub stderr_path: PathBuf,
}

impl Spawned {
    pub fn pid(&self) -> i32 {
        self.child.as_ref().map(|c| c.id() as i32).unwrap_or(0)
    }
    pub fn stdout_now(&self) -> String {
        std::fs::read_to_string(&self.stdout_path).unwrap_or_default()
    }
    pub fn try_wait(&mut self) -> Option<std::process::ExitStatus> {
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
    /// Waits for it to end; past `timeout` kills it and panics.
    #[track_caller]
    pub fn wait(mut self, timeout: Duration) -> Output {
        match self.wait_or_kill(timeout) {
            Ok(o) => o,
            Err(msg) => panic!("{msg}"),
        }
    }
    /// Waits for it to end; past `timeout` kills it and returns what it printed.
    pub fn wait_or_kill(&mut self, timeout: Duration) -> Result<Output, String> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.try_wait() {
                self.child = None;
                return Ok(Output {
                    cmdline: self.cmdline.clone(),
                    status,
                    stdout: self.stdout_now(),
                    stderr: std::fs::read_to_string(&self.stderr_path).unwrap_or_default(),
                    stdout_path: self.stdout_path.clone(),
                    stderr_path: self.stderr_path.clone(),
                });
            }
            if Instant::now() > deadline {
                let out = self.stdout_now();
                let err = std::fs::read_to_string(&self.stderr_path).unwrap_or_default();
                self.kill();
                return Err(format!("{} did not finish within {timeout:?} (killed it)\nstdout:\n{out}\nstderr:\n{err}", self.cmdline));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
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

impl Drop for Spawned {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Sets up `cmd` to enter `netns` and to get `pass_fds`, between fork and exec.
pub fn prepare(cmd: &mut Command, netns: Option<RawFd>, pass_fds: Vec<(RawFd, RawFd)>, parent_death: bool) {
    // SAFETY: setns, fcntl, dup2 and prctl are async-signal-safe; no allocation happens
    // in the closure (the Vec is moved in and only read).
    unsafe {
        cmd.pre_exec(move || {
            if parent_death && libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM as libc::c_ulong, 0, 0, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            if let Some(fd) = netns {
                if libc::setns(fd, libc::CLONE_NEWNET) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            for &(from, to) in &pass_fds {
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

impl Cli {
    pub fn new(program: impl Into<PathBuf>, io_dir: &Path) -> Cli {
        std::fs::create_dir_all(io_dir).expect("create cli io dir");
        Cli {
            program: program.into(),
            base_args: Vec::new(),
            env: Vec::new(),
            netns: None,
            io_dir: io_dir.to_path_buf(),
            counter: Arc::new(AtomicUsize::new(0)),
        }
    }

    pub fn cmdline(&self, args: &[&str]) -> String {
        let mut all = self.base_args.clone();
        all.extend(args.iter().map(|s| s.to_string()));
        let env: String = self.env.iter().map(|(k, v)| format!("{k}={} ", shell_words(std::slice::from_ref(v)))).collect();
        format!("{env}{} {}", self.program.display(), shell_words(&all))
    }

    /// The command, set up but not started (for the pty runner).
    pub fn command(&self, args: &[&str], pass_fds: Vec<(RawFd, RawFd)>) -> Command {
        let mut cmd = Command::new(&self.program);
        cmd.args(&self.base_args).args(args).current_dir(&self.io_dir);
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        prepare(&mut cmd, self.netns, pass_fds, false);
        cmd
    }

    pub fn spawn(&self, args: &[&str], o: &CliOpts) -> Spawned {
        let n = self.counter.fetch_add(1, Ordering::SeqCst);
        let word: String = args
            .iter()
            .find(|a| !a.starts_with('-'))
            .map(|a| a.chars().filter(|c| c.is_ascii_alphanumeric()).take(12).collect())
            .unwrap_or_else(|| "cmd".into());
        let stdout_path = self.io_dir.join(format!("{n:04}-{word}.out"));
        let stderr_path = self.io_dir.join(format!("{n:04}-{word}.err"));
        let mut cmd = self.command(args, o.pass_fds.clone());
        match &o.stdin {
            None => {
                cmd.stdin(Stdio::null());
            }
            Some(bytes) => {
                let p = self.io_dir.join(format!("{n:04}-{word}.in"));
                std::fs::write(&p, bytes).expect("write stdin file");
                cmd.stdin(File::open(&p).expect("open stdin file"));
            }
        }
        cmd.stdout(File::create(&stdout_path).expect("create stdout file")).stderr(File::create(&stderr_path).expect("create stderr file"));
        let cmdline = self.cmdline(args);
        let child = procs::spawn(&mut cmd).unwrap_or_else(|e| panic!("cannot run {cmdline}: {e}"));
        Spawned { cmdline, child: Some(child), stdout_path, stderr_path }
    }

    /// Runs to completion (or panics past the timeout).
    #[track_caller]
    pub fn run_opts(&self, args: &[&str], o: &CliOpts) -> Output {
        self.spawn(args, o).wait(o.timeout.unwrap_or(super::CMD_TIMEOUT))
    }

    #[track_caller]
    pub fn run(&self, args: &[&str]) -> Output {
        self.run_opts(args, &CliOpts::default())
    }

    /// Runs and asserts success; returns stdout.
    #[track_caller]
    pub fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        o.ok();
        o.stdout
    }

    /// Runs with a timeout that is not an error (for cleanup).
    pub fn try_run(&self, args: &[&str], timeout: Duration) -> Result<Output, String> {
        self.spawn(args, &CliOpts::default()).wait_or_kill(timeout)
    }

    /// Runs with the client's stdio on a new pty (for `-it`), feeding it `steps`.
    #[track_caller]
    pub fn pty(&self, args: &[&str], steps: &[super::pty::Step], timeout: Duration) -> super::pty::PtyOutput {
        let cmd = self.command(args, Vec::new());
        super::pty::run(cmd, self.cmdline(args), steps, timeout)
    }
}

/// The raw fd of an owned fd, for [`Cli::netns`].
pub fn raw(fd: &std::os::fd::OwnedFd) -> RawFd {
    fd.as_raw_fd()
}
