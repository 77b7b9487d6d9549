//! Running one container to completion through berth-shim:
//!
//! 1. `berth-shim --id ID --bundle B --root STATE --runtime RT --exit-file F
//!    --attach-socket S --log-path L --shim-pid-file P` (no `--start`): returns once the
//!    container is created; the shim stays, reparented to us (the builder is the init of
//!    its PID namespace: see isolation.rs), so it is ours to reap;
//! 2. connect to the attach socket (SEQPACKET: `1`+stdout, `2`+stderr, `3`+exit status);
//! 3. `<runtime> --root STATE start ID`;
//! 4. forward the output until the exit packet; if the shim ever dropped us (a client
//!    that does not keep up is dropped), the status comes from the exit file and the
//!    output's end from the log;
//! 5. reap the shim, `<runtime> delete --force ID`.
//!
//! The container is registered with [`crate::cleanup`] from create to delete.

use crate::error::Context as _;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::cleanup;

/// Where the binaries are and where the runtime keeps its state.
#[derive(Debug, Clone)]
pub struct Tools {
    pub runtime: PathBuf,
    pub shim: PathBuf,
    /// The runtime's `--root`.
    pub state: PathBuf,
}

/// Files of one run, in a per-run directory.
pub struct RunFiles {
    pub bundle: PathBuf,
    pub socket: PathBuf,
    pub exit_file: PathBuf,
    pub log: PathBuf,
    pub shim_pid: PathBuf,
    /// The runtime's --pid-file. Given rather than left to the shim, whose default is
    /// named by its pid in /tmp: the shims of builds in different PID namespaces have
    /// the same pids.
    pub container_pid: PathBuf,
}

/// What the container did.
#[derive(Debug)]
pub struct Finished {
    pub code: i32,
    /// The attach client was dropped at some point: the output shown is incomplete (the
    /// whole of it is in the log).
    pub dropped: bool,
}

fn run_quiet(cmd: &mut Command) -> io::Result<std::process::Output> {
    cmd.stdin(Stdio::null()).output()
}

/// Runs the container `id` of `files.bundle`; `on_output(stream, bytes)` gets its output.
pub fn run(tools: &Tools, id: &str, files: &RunFiles, on_output: &mut dyn FnMut(u8, &[u8])) -> crate::Result<Finished> {
    if !tools.shim.exists() {
        return Err(format!("berth-shim not found at {} (install it beside berth-build, or set BERTH_SHIM)", tools.shim.display()).into());
    }
    if !tools.runtime.exists() {
        return Err(format!("the OCI runtime {} is missing (install berth beside berth-build, or use --runtime PATH)", tools.runtime.display()).into());
    }
    let Some(creating) = cleanup::begin_create() else {
        return Err("interrupted".to_string().into());
    };
    let out = run_quiet(
        Command::new(&tools.shim)
            .arg("--id")
            .arg(id)
            .arg("--bundle")
            .arg(&files.bundle)
            .arg("--root")
            .arg(&tools.state)
            .arg("--runtime")
            .arg(&tools.runtime)
            .arg("--exit-file")
            .arg(&files.exit_file)
            .arg("--attach-socket")
            .arg(&files.socket)
            .arg("--log-path")
            .arg(&files.log)
            .arg("--shim-pid-file")
            .arg(&files.shim_pid)
            .arg("--pid-file")
            .arg(&files.container_pid)
            // The shim's own temp files (and its sweep of stale ones, which judges them
            // by pid) stay in this run's dir, never /tmp shared across PID namespaces.
            .env("TMPDIR", files.container_pid.parent().unwrap_or(Path::new("/tmp"))),
    )
    .with_context(|| format!("cannot run {}", tools.shim.display()))?;
    if !out.status.success() {
        let msg = String::from_utf8_lossy(&out.stderr).trim().to_string();
        return Err(if msg.is_empty() { format!("berth-shim failed: {}", out.status).into() } else { format!("RUN failed: {}", runtime_message(&msg)).into() });
    }
    cleanup::add_container(&tools.runtime, &tools.state, id);
    drop(creating);
    let shim_pid: i32 = std::fs::read_to_string(&files.shim_pid).ok().and_then(|s| s.trim().parse().ok()).unwrap_or(0);
    let result = attach_and_start(tools, id, files, on_output);
    if let Err(e) = &result {
        // Not started or lost: make sure it is gone before reaping the shim.
        let _ = e;
        cleanup::force_delete(&tools.runtime, &tools.state, id);
    }
    if shim_pid > 0 {
        reap(shim_pid, Duration::from_secs(30));
    }
    cleanup::force_delete(&tools.runtime, &tools.state, id);
    cleanup::remove_container(id);
    result
}

fn attach_and_start(tools: &Tools, id: &str, files: &RunFiles, on_output: &mut dyn FnMut(u8, &[u8])) -> crate::Result<Finished> {
    let sock = connect(&files.socket).with_context(|| format!("attach to {}", files.socket.display()))?;
    let out = run_quiet(Command::new(&tools.runtime).arg("--root").arg(&tools.state).arg("start").arg(id))
        .with_context(|| format!("cannot run {}", tools.runtime.display()))?;
    if !out.status.success() {
        return Err(format!("{} start failed: {}", tools.runtime.display(), String::from_utf8_lossy(&out.stderr).trim()).into());
    }
    let mut buf = vec![0u8; 8193 + 16];
    loop {
        // SAFETY: recv into a buffer of the given length.
        let n = unsafe { libc::recv(sock.as_raw_fd(), buf.as_mut_ptr() as *mut libc::c_void, buf.len(), 0) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            break;
        }
        if n == 0 {
            break; // dropped, or the shim went away
        }
        let p = &buf[..n as usize];
        match p[0] {
            1 | 2 => on_output(p[0], &p[1..]),
            3 => {
                let code = std::str::from_utf8(&p[1..]).ok().and_then(|s| s.trim().parse().ok()).unwrap_or(255);
                return Ok(Finished { code, dropped: false });
            }
            _ => {}
        }
    }
    // The connection ended without an exit packet: wait for the exit file.
    let deadline = Instant::now() + Duration::from_secs(24 * 3600);
    while Instant::now() < deadline {
        if let Ok(s) = std::fs::read_to_string(&files.exit_file) {
            if let Ok(code) = s.trim().parse() {
                return Ok(Finished { code, dropped: true });
            }
        }
        let st = run_quiet(Command::new(&tools.runtime).arg("--root").arg(&tools.state).arg("state").arg(id));
        if let Ok(o) = st {
            if !o.status.success() {
                return Err("the container disappeared without an exit status".into());
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err("timed out waiting for the container".into())
}

fn connect(path: &Path) -> io::Result<OwnedFd> {
    // SAFETY: socket(2); the fd is owned below.
    let fd = unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh fd.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // A big receive buffer: the shim drops clients that do not keep up.
    let size: libc::c_int = 8 << 20;
    // SAFETY: setsockopt with an int option.
    unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUFFORCE,
            &size as *const _ as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    // SAFETY: sockaddr_un is plain data.
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    let b = path.as_os_str().as_bytes();
    if b.len() >= addr.sun_path.len() {
        return Err(io::Error::other("socket path too long"));
    }
    for (i, c) in b.iter().enumerate() {
        addr.sun_path[i] = *c as libc::c_char;
    }
    // SAFETY: connect with a valid sockaddr_un.
    let r = unsafe { libc::connect(fd.as_raw_fd(), &addr as *const _ as *const libc::sockaddr, std::mem::size_of::<libc::sockaddr_un>() as libc::socklen_t) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(fd)
}

/// Waits for our (adopted) child `pid` to exit, up to `timeout`; then kills it.
fn reap(pid: i32, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        let mut st = 0;
        // SAFETY: waitpid on a specific pid.
        let r = unsafe { libc::waitpid(pid, &mut st, libc::WNOHANG) };
        if r == pid || r < 0 {
            return; // reaped, or not our child (then its parent reaps it)
        }
        if Instant::now() > deadline {
            // SAFETY: kill + blocking waitpid of our own child.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, &mut st, 0);
            }
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The container's output from the shim's k8s-file log (for when the attach client was
/// dropped): the text of every entry, lines rejoined.
pub fn read_log(path: &Path) -> String {
    let Ok(text) = std::fs::read_to_string(path) else { return String::new() };
    let mut out = String::new();
    for line in text.lines() {
        // <time> <stream> <P|F> <text>
        let mut parts = line.splitn(4, ' ');
        let (_, _, tag, msg) = (parts.next(), parts.next(), parts.next(), parts.next().unwrap_or(""));
        out.push_str(msg);
        if tag == Some("F") {
            out.push('\n');
        }
    }
    out
}

/// The runtime's own words out of the shim's report (`... msg="berth create failed:
/// unable to start container process: ..."` -> `unable to start container process: ...`).
pub fn runtime_message(text: &str) -> String {
    let Some(i) = text.find("msg=\"") else { return text.to_string() };
    let rest = &text[i + 5..];
    let end = rest.rfind('"').unwrap_or(rest.len());
    let m = rest[..end].replace("\\\"", "\"");
    let m = m.split_once(" failed: ").map(|(a, b)| if a.split_whitespace().count() <= 2 { b.to_string() } else { m.clone() }).unwrap_or(m.clone());
    m.trim().to_string()
}
