//! OCI hooks: each runs with the container state on stdin, its own args and env only,
//! and an optional timeout in seconds.

use crate::error::{Error, Result};
use berth_spec::Hook;
use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Runs the hooks of a create-phase (prestart, createRuntime, createContainer,
/// startContainer); the first failure fails the operation.
pub fn run_all(phase: &str, hooks: &[Hook], state: &serde_json::Value) -> Result<()> {
    for (i, h) in hooks.iter().enumerate() {
        run_one(h, state).map_err(|e| Error::new(format!("error running {phase} hook #{i}: {e}")))?;
    }
    Ok(())
}

/// Runs poststart or poststop hooks: a failure is logged as a warning and the remaining
/// hooks and the lifecycle go on, as the spec requires.
pub fn run_all_warn(phase: &str, hooks: &[Hook], state: &serde_json::Value) {
    for (i, h) in hooks.iter().enumerate() {
        if let Err(e) = run_one(h, state) {
            crate::logging::warn(&format!("error running {phase} hook #{i}: {e}"));
        }
    }
}

fn run_one(h: &Hook, state: &serde_json::Value) -> std::result::Result<(), String> {
    let mut cmd = Command::new(&h.path);
    if let Some((argv0, rest)) = h.args.split_first() {
        cmd.arg0(argv0).args(rest);
    }
    cmd.env_clear();
    for kv in &h.env {
        if let Some((k, v)) = kv.split_once('=') {
            cmd.env(k, v);
        }
    }
    cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    // A hook dies with the berth command running it: a create killed (by an engine's
    // timeout) while a hook runs leaves no hook behind. (A hook that forks keeps its
    // children: those are its own.)
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: prctl and getppid with integer arguments only, async-signal-safe between
    // fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0, 0, 0);
            if libc::getppid() != parent {
                // berth died before the prctl took effect.
                return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
            }
            Ok(())
        })
    };
    let mut child = cmd.spawn().map_err(|e| format!("{}: {}", h.path, berth_spec::bundle::io_words(&e)))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that does not read its stdin must not make us fail.
        let _ = stdin.write_all(state.to_string().as_bytes());
    }
    let deadline = h.timeout.filter(|t| *t > 0).map(|t| Instant::now() + Duration::from_secs(t as u64));
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) => {}
            Err(e) => return Err(e.to_string()),
        }
        if let Some(d) = deadline {
            if Instant::now() >= d {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("{}: timeout after {} seconds", h.path, h.timeout.unwrap_or(0)));
            }
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    if status.success() {
        return Ok(());
    }
    let mut out = String::new();
    let mut err = String::new();
    if let Some(mut s) = child.stdout.take() {
        let _ = s.read_to_string(&mut out);
    }
    if let Some(mut s) = child.stderr.take() {
        let _ = s.read_to_string(&mut err);
    }
    Err(format!("{}, stdout: {}, stderr: {}", status, out.trim_end(), err.trim_end()))
}
