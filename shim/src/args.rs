//! The command line, parsed by hand (no clap: every container pays for the shim's pages).

use crate::sys;
use alloc::borrow::ToOwned;
use alloc::ffi::CString;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

pub const USAGE: &str = "\
usage: berth-shim --id ID --bundle DIR [options]

Runs one container through an OCI runtime and stays with it: holds its stdio, writes
its log, serves the attach socket, records its exit status. Returns once the container
is created (and started, with --start).

options:
  --id ID                   container id (required)
  --bundle DIR              OCI bundle directory (required)
  --root DIR                passed to the runtime as its global --root
  --runtime PATH            OCI runtime (default: `berth` beside this binary)
  --start                   also start the container before returning
  --stdin                   keep the container's stdin open for attach clients
  --terminal                give the container a pty (process.terminal must be true)
  --log-path FILE           write the container's output to FILE
  --log-format FORMAT       k8s-file (default) or json
  --log-size-max BYTES      rotate the log to FILE.1 past BYTES (suffixes k, m, g)
  --exit-file FILE          write the exit status here (128+signal when killed)
  --attach-socket PATH      serve attach clients on this unix SEQPACKET socket
  --pid-file FILE           where the runtime writes the container's init pid
  --shim-pid-file FILE      write the shim's own pid here
  --exit-command PATH       run PATH after the container exited
  --exit-command-arg ARG    an argument for the exit command (repeatable)
  -h, --help                this text
  -V, --version             the version
";

#[derive(Default)]
pub struct Args {
    pub id: CString,
    pub bundle: CString,
    pub root: Option<CString>,
    pub runtime: CString,
    pub start: bool,
    pub stdin: bool,
    pub terminal: bool,
    pub log_path: Option<CString>,
    pub log_json: bool,
    pub log_size_max: u64,
    pub exit_file: Option<CString>,
    pub attach_socket: Option<CString>,
    pub pid_file: Option<CString>,
    pub shim_pid_file: Option<CString>,
    pub exit_command: Option<CString>,
    pub exit_command_args: Vec<CString>,
}

pub enum Parsed {
    Run(Args),
    Help,
    Version,
}

fn cstring(v: Vec<u8>) -> CString {
    // argv strings never contain NUL
    CString::new(v).unwrap_or_default()
}

pub fn parse_size(s: &[u8]) -> Option<u64> {
    let (num, mul) = match s.last()?.to_ascii_lowercase() {
        b'k' => (&s[..s.len() - 1], 1u64 << 10),
        b'm' => (&s[..s.len() - 1], 1 << 20),
        b'g' => (&s[..s.len() - 1], 1 << 30),
        _ => (s, 1),
    };
    core::str::from_utf8(num).ok()?.parse::<u64>().ok()?.checked_mul(mul)
}

pub fn parse<I: Iterator<Item = Vec<u8>>>(mut it: I) -> Result<Parsed, String> {
    let mut a = Args::default();
    let mut id = None;
    let mut bundle = None;
    let mut runtime = None;
    while let Some(arg) = it.next() {
        if arg == b"-h" || arg == b"--help" {
            return Ok(Parsed::Help);
        }
        if arg == b"-V" || arg == b"--version" {
            return Ok(Parsed::Version);
        }
        if !arg.starts_with(b"--") {
            return Err(format!("unexpected argument '{}'", String::from_utf8_lossy(&arg)));
        }
        let (name, inline) = match arg.iter().position(|&b| b == b'=') {
            Some(i) => (arg[2..i].to_vec(), Some(arg[i + 1..].to_vec())),
            None => (arg[2..].to_vec(), None),
        };
        let name_s = String::from_utf8_lossy(&name).into_owned();
        let flag = |v: &mut bool| -> Result<(), String> {
            if inline.is_some() {
                return Err(format!("--{name_s} takes no value"));
            }
            *v = true;
            Ok(())
        };
        match &name[..] {
            b"start" => flag(&mut a.start)?,
            b"stdin" => flag(&mut a.stdin)?,
            b"terminal" => flag(&mut a.terminal)?,
            _ => {
                let value = match inline {
                    Some(v) => v,
                    None => it.next().ok_or_else(|| format!("--{name_s} needs a value"))?,
                };
                match &name[..] {
                    b"id" => id = Some(value),
                    b"bundle" => bundle = Some(value),
                    b"root" => a.root = Some(cstring(value)),
                    b"runtime" => runtime = Some(value),
                    b"log-path" => a.log_path = Some(cstring(value)),
                    b"log-format" => {
                        a.log_json = match &value[..] {
                            b"k8s-file" => false,
                            b"json" | b"json-file" => true,
                            _ => return Err("--log-format must be k8s-file or json".to_owned()),
                        }
                    }
                    b"log-size-max" => {
                        a.log_size_max = parse_size(&value).ok_or_else(|| format!("invalid --log-size-max '{}'", String::from_utf8_lossy(&value)))?
                    }
                    b"exit-file" => a.exit_file = Some(cstring(value)),
                    b"attach-socket" => a.attach_socket = Some(cstring(value)),
                    b"pid-file" => a.pid_file = Some(cstring(value)),
                    b"shim-pid-file" => a.shim_pid_file = Some(cstring(value)),
                    b"exit-command" => a.exit_command = Some(cstring(value)),
                    b"exit-command-arg" => a.exit_command_args.push(cstring(value)),
                    _ => return Err(format!("unknown option --{name_s}")),
                }
            }
        }
    }
    let id = id.filter(|v| !v.is_empty()).ok_or("--id is required".to_owned())?;
    if id.contains(&b'/') {
        return Err("--id must not contain '/'".to_owned());
    }
    a.id = cstring(id);
    a.bundle = cstring(bundle.filter(|v| !v.is_empty()).ok_or("--bundle is required".to_owned())?);
    if !a.exit_command_args.is_empty() && a.exit_command.is_none() {
        return Err("--exit-command-arg needs --exit-command".to_owned());
    }
    a.runtime = match runtime {
        Some(r) => cstring(r),
        None => {
            let mut exe = sys::readlink(c"/proc/self/exe").map_err(|e| format!("cannot find own binary: {e}"))?;
            let slash = exe.iter().rposition(|&b| b == b'/').ok_or("cannot find own directory".to_owned())?;
            exe.truncate(slash + 1);
            exe.extend_from_slice(b"berth");
            cstring(exe)
        }
    };
    Ok(Parsed::Run(a))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> Result<Args, String> {
        match parse(args.iter().map(|a| a.as_bytes().to_vec()))? {
            Parsed::Run(a) => Ok(a),
            _ => Err("not a run".into()),
        }
    }

    #[test]
    fn parses_a_full_command_line() {
        let a = run(&[
            "--id",
            "c1",
            "--bundle=/b",
            "--root",
            "/r",
            "--runtime",
            "/usr/sbin/runc",
            "--start",
            "--stdin",
            "--log-path",
            "/l",
            "--log-format",
            "json",
            "--log-size-max",
            "2k",
            "--exit-command",
            "/x",
            "--exit-command-arg",
            "a",
            "--exit-command-arg=b",
        ])
        .unwrap();
        assert_eq!(a.id.to_bytes(), b"c1");
        assert_eq!(a.bundle.to_bytes(), b"/b");
        assert_eq!(a.root.unwrap().to_bytes(), b"/r");
        assert_eq!(a.runtime.to_bytes(), b"/usr/sbin/runc");
        assert!(a.start && a.stdin && !a.terminal && a.log_json);
        assert_eq!(a.log_size_max, 2048);
        assert_eq!(a.exit_command_args.len(), 2);
    }

    #[test]
    fn defaults_the_runtime_beside_the_binary() {
        let a = run(&["--id", "c", "--bundle", "/b"]).unwrap();
        assert!(a.runtime.to_bytes().ends_with(b"/berth"));
        assert!(!a.log_json && a.log_size_max == 0);
    }

    #[test]
    fn rejects_bad_command_lines() {
        assert!(run(&["--bundle", "/b"]).is_err());
        assert!(run(&["--id", "c"]).is_err());
        assert!(run(&["--id", "c", "--bundle", "/b", "--bogus"]).is_err());
        assert!(run(&["--id", "c", "--bundle", "/b", "--log-format", "xml"]).is_err());
        assert!(run(&["--id", "c", "--bundle", "/b", "--log-size-max", "x"]).is_err());
        assert!(run(&["--id", "c", "--bundle", "/b", "--start=1"]).is_err());
        assert!(run(&["--id", "c", "--bundle", "/b", "--exit-command-arg", "a"]).is_err());
        assert!(run(&["--id", "c", "--bundle", "/b", "--log-path"]).is_err());
        assert!(run(&["--id", "a/b", "--bundle", "/b"]).is_err());
    }
}
