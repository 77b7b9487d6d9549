//! One error type for the runtime: a message built from the outside in
//! ("unable to start container process: exec: ...") as runc words its errors,
//! because engines match on those words.

use std::fmt;

#[derive(Debug)]
pub struct Error {
    msg: String,
    /// The signal that interrupted the command (create, run): it exits 128+signal.
    signal: Option<i32>,
    /// `--help` was asked for: the command's flags, printed with exit 0.
    help: Option<String>,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(msg: impl Into<String>) -> Self {
        Error { msg: msg.into(), signal: None, help: None }
    }
    /// The command was stopped by `sig` and undid what it had made.
    pub fn interrupted(sig: i32, msg: impl Into<String>) -> Self {
        Error { msg: msg.into(), signal: Some(sig), help: None }
    }
    /// Not a failure: the command was asked for its `--help`, whose text is `flags`.
    pub fn help(flags: String) -> Self {
        Error { msg: "help requested".into(), signal: None, help: Some(flags) }
    }
    pub fn help_text(&self) -> Option<&str> {
        self.help.as_deref()
    }
    pub fn msg(&self) -> &str {
        &self.msg
    }
    pub fn interrupted_by(&self) -> Option<i32> {
        self.signal
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.msg)
    }
}

impl std::error::Error for Error {}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::new(berth_spec::bundle::io_words(&e))
    }
}

impl From<nix::Error> for Error {
    fn from(e: nix::Error) -> Self {
        Error::from(std::io::Error::from_raw_os_error(e as i32))
    }
}

impl From<berth_spec::BundleError> for Error {
    fn from(e: berth_spec::BundleError) -> Self {
        Error::new(e.0)
    }
}

/// Shorthand for `Err(Error::new(format!(...)))`.
#[macro_export]
macro_rules! bail {
    ($($arg:tt)*) => { return Err($crate::error::Error::new(format!($($arg)*))) };
}

/// Adds what was being done to an error: `mount(...).ctx("mount /proc")?`.
pub trait Context<T> {
    fn ctx(self, what: impl fmt::Display) -> Result<T>;
    fn with_ctx<F: FnOnce() -> String>(self, f: F) -> Result<T>;
}

impl<T, E: Into<Error>> Context<T> for std::result::Result<T, E> {
    fn ctx(self, what: impl fmt::Display) -> Result<T> {
        self.map_err(|e| {
            let e = e.into();
            Error { msg: format!("{what}: {}", e.msg), ..e }
        })
    }
    fn with_ctx<F: FnOnce() -> String>(self, f: F) -> Result<T> {
        self.map_err(|e| {
            let e = e.into();
            Error { msg: format!("{}: {}", f(), e.msg), ..e }
        })
    }
}
