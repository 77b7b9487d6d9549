//! Finding the process's executable and `execve`: the last step of every container
//! process. Errors use runc's (Go's os/exec) words, which docker and podman map to
//! exit codes 126 and 127.

use crate::error::{Error, Result};
use std::ffi::CString;
use std::os::unix::fs::PermissionsExt;

/// Resolves `name` as Go's exec.LookPath does, with PATH from the process's env.
pub fn look_path(name: &str, env: &[String]) -> Result<String> {
    if name.contains('/') {
        check_executable(name).map_err(|e| Error::new(format!("exec: {name:?}: {e}")))?;
        return Ok(name.to_string());
    }
    let path = env.iter().rev().find_map(|e| e.strip_prefix("PATH=")).unwrap_or("");
    for dir in path.split(':') {
        let dir = if dir.is_empty() { "." } else { dir };
        let cand = format!("{dir}/{name}");
        if check_executable(&cand).is_ok() {
            return Ok(cand);
        }
    }
    Err(Error::new(format!("exec: {name:?}: executable file not found in $PATH")))
}

fn check_executable(p: &str) -> std::result::Result<(), String> {
    let md = std::fs::metadata(p).map_err(|e| format!("stat {p}: {}", berth_spec::bundle::io_words(&e)))?;
    if md.is_dir() || md.permissions().mode() & 0o111 == 0 {
        return Err("permission denied".into());
    }
    Ok(())
}

fn cstrings(v: &[String]) -> Result<Vec<CString>> {
    v.iter().map(|s| CString::new(s.as_bytes()).map_err(|_| Error::new(format!("argument or env contains a NUL byte: {s:?}")))).collect()
}

/// Replaces this process with the container's process. Returns only on failure.
pub fn execve(path: &str, args: &[String], env: &[String]) -> Error {
    let (p, a, e) = match (CString::new(path), cstrings(args), cstrings(env)) {
        (Ok(p), Ok(a), Ok(e)) => (p, a, e),
        (_, Err(e), _) | (_, _, Err(e)) => return e,
        (Err(_), _, _) => return Error::new("executable path contains a NUL byte"),
    };
    let err = nix::unistd::execve(&p, &a, &e).unwrap_err();
    Error::new(format!("exec {path:?}: {}", Error::from(err)))
}

/// Gives the container's process default signal handling and an empty signal mask: Rust
/// ignores SIGPIPE in berth itself, and an ignored signal would survive execve.
pub fn reset_signals() {
    for sig in 1..libc::SIGRTMIN() {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        // SAFETY: resetting a disposition to SIG_DFL installs no handler code.
        unsafe { libc::signal(sig, libc::SIG_DFL) };
    }
    let empty = nix::sys::signal::SigSet::empty();
    let _ = nix::sys::signal::sigprocmask(nix::sys::signal::SigmaskHow::SIG_SETMASK, Some(&empty), None);
}
