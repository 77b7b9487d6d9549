//! `--log FILE --log-format text|json`: containerd and podman read the last error a
//! runtime wrote from this file, so the json lines follow runc's shape
//! (`{"level":"error","msg":"...","time":"..."}`).

use std::io::Write;
use std::sync::OnceLock;

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
}

struct Logger {
    file: Option<std::fs::File>,
    format: Format,
    debug: bool,
}

static LOGGER: OnceLock<Logger> = OnceLock::new();
/// Set in the init's cloned child, which closed the log file's fd: it logs to stderr.
static DETACHED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Stops using the log file (its fd was closed, and its number may be reused).
pub fn detach_from_file() {
    DETACHED.store(true, std::sync::atomic::Ordering::Relaxed);
}

pub fn init(path: Option<&str>, format: Format, debug: bool) -> std::io::Result<()> {
    let file = match path {
        Some(p) if !p.is_empty() => Some(std::fs::OpenOptions::new().create(true).append(true).custom_flags_cloexec().open(p)?),
        _ => None,
    };
    let _ = LOGGER.set(Logger { file, format, debug });
    Ok(())
}

trait CloexecExt {
    fn custom_flags_cloexec(&mut self) -> &mut Self;
}
impl CloexecExt for std::fs::OpenOptions {
    fn custom_flags_cloexec(&mut self) -> &mut Self {
        use std::os::unix::fs::OpenOptionsExt;
        self.custom_flags(libc::O_CLOEXEC).mode(0o644)
    }
}

/// Whether messages go to a log file (then errors are also printed plainly on stderr).
pub fn to_file() -> bool {
    !DETACHED.load(std::sync::atomic::Ordering::Relaxed) && LOGGER.get().map(|l| l.file.is_some()).unwrap_or(false)
}

pub fn debug_enabled() -> bool {
    LOGGER.get().map(|l| l.debug).unwrap_or(false)
}

pub fn error(msg: &str) {
    log("error", msg)
}

pub fn warn(msg: &str) {
    log("warning", msg)
}

pub fn debug(msg: &str) {
    if debug_enabled() {
        log("debug", msg)
    }
}

fn log(level: &str, msg: &str) {
    let l = match LOGGER.get() {
        Some(l) if !DETACHED.load(std::sync::atomic::Ordering::Relaxed) => l,
        _ => {
            let _ = writeln!(std::io::stderr(), "{level}: {msg}");
            return;
        }
    };
    let line = match l.format {
        Format::Json => {
            let v = serde_json::json!({"level": level, "msg": msg, "time": rfc3339_now()});
            format!("{v}\n")
        }
        Format::Text => format!("time=\"{}\" level={} msg={:?}\n", rfc3339_now(), level, msg),
    };
    match &l.file {
        Some(f) => {
            let _ = (&*f).write_all(line.as_bytes());
        }
        None => {
            let _ = std::io::stderr().write_all(line.as_bytes());
        }
    }
}

/// The current UTC time as RFC 3339 with nanoseconds, without a date crate.
pub fn rfc3339_now() -> String {
    let d = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    berth_spec::time::rfc3339_nanos(d.as_secs() as i64, d.subsec_nanos())
}
