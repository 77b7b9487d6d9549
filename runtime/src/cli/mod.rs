//! `berth`'s command line: runc's global flags and subcommands.

pub mod args;
mod checkpoint;
mod create;
mod delete;
mod events;
mod exec;
mod features;
mod kill;
mod list;
mod pause;
mod ps;
mod restore;
mod resume;
mod run;
mod spec;
mod start;
mod state;
mod update;

use crate::error::{Error, Result};
use crate::logging;
use args::{flag, opt, Flag};
use std::path::PathBuf;

/// Options every subcommand sees.
pub struct Global {
    pub root: PathBuf,
    pub systemd_cgroup: bool,
    /// `--criu PATH`: the criu binary checkpoint and restore run.
    pub criu: Option<String>,
}

const GLOBAL_FLAGS: &[Flag] = &[
    opt(&["root"]),
    opt(&["log"]),
    opt(&["log-format"]),
    flag(&["debug"]),
    flag(&["systemd-cgroup"]),
    opt(&["rootless"]),
    opt(&["criu"]),
    flag(&["version", "v"]),
    flag(&["help", "h"]),
];

const USAGE: &str = "usage: berth [global options] command [command options] [arguments...]

commands:
   create   create a container
   start    start the process of a created container
   run      create and start a container
   exec     run a process in a running container
   features print the runtime features JSON
   state    print the state of a container
   kill     send a signal to a container's init process
   delete   delete a container and its resources
   list     list the containers under --root
   spec     write a default config.json for a bundle
   pause    suspend all processes of a container (cgroup freezer)
   resume   resume a paused container
   update   update a container's resource limits
   events   print a container's resource usage and OOM events
   ps       list the processes of a container
   checkpoint  checkpoint a running container with criu
   restore  restore a container from a checkpoint with criu

global options:
   --root DIR               state directory (default /run/berth)
   --log FILE               log file (default stderr)
   --log-format text|json   log format (default text)
   --debug                  log debug messages
   --systemd-cgroup         read cgroupsPath as slice:prefix:name
   --criu PATH              the criu binary (default criu on PATH)
   --version, -v            print the version
";

pub fn version_text() -> String {
    format!("berth version {}\ncommit: {}\nspec: {}\n", env!("CARGO_PKG_VERSION"), env!("BERTH_COMMIT"), berth_spec::OCI_VERSION)
}

pub fn main() -> i32 {
    let argv: Vec<String> = std::env::args().collect();
    if argv.get(1).map(|s| s.as_str()) == Some("init") && std::env::var_os(crate::spawn::INIT_SOCK_ENV).is_some() {
        return crate::init::main();
    }
    // Split global flags from the subcommand: the first argument that is not a flag
    // (or a global flag's value) is the command.
    let rest = &argv[1..];
    let mut i = 0;
    while i < rest.len() && rest[i].starts_with('-') && rest[i] != "--" {
        let name = rest[i].trim_start_matches('-');
        let takes_value = GLOBAL_FLAGS.iter().any(|f| f.takes_value && f.names.contains(&name));
        i += if takes_value { 2 } else { 1 };
    }
    let global_args = &rest[..i.min(rest.len())];
    let g = match args::parse(global_args, GLOBAL_FLAGS, false) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("berth: {e}");
            return 1;
        }
    };
    let format = match g.get("log-format") {
        None | Some("text") => logging::Format::Text,
        Some("json") => logging::Format::Json,
        Some(f) => {
            eprintln!("berth: unknown log-format {f:?}");
            return 1;
        }
    };
    if let Err(e) = logging::init(g.get("log"), format, g.has("debug")) {
        eprintln!("berth: open log file: {}", Error::from(e));
        return 1;
    }
    if g.has("version") {
        out(&version_text());
        return 0;
    }
    let Some(cmd) = rest.get(i) else {
        out(USAGE);
        return if g.has("help") { 0 } else { 1 };
    };
    let global = Global {
        root: PathBuf::from(g.get("root").unwrap_or(crate::container::DEFAULT_ROOT)),
        systemd_cgroup: g.has("systemd-cgroup"),
        criu: g.get("criu").map(String::from),
    };
    let cmd_args = &rest[i + 1..];
    match dispatch(&global, cmd, cmd_args) {
        Ok(code) => code,
        Err(e) if e.help_text().is_some() => {
            out(&format!("usage: berth {cmd} [command options] [arguments...]\n\n{}", e.help_text().unwrap_or_default()));
            0
        }
        Err(e) => {
            report(cmd, &e);
            // As a process ended by the signal, which the shell and engines read so.
            e.interrupted_by().map_or(1, |s| 128 + s)
        }
    }
}

fn dispatch(g: &Global, cmd: &str, a: &[String]) -> Result<i32> {
    match cmd {
        "create" => create::main(g, a).map(|_| 0),
        "start" => start::main(g, a).map(|_| 0),
        "run" => run::main(g, a),
        "exec" => exec::main(g, a),
        "features" => features::main(g, a).map(|_| 0),
        "state" => state::main(g, a).map(|_| 0),
        "kill" => kill::main(g, a).map(|_| 0),
        "delete" => delete::main(g, a).map(|_| 0),
        "list" => list::main(g, a).map(|_| 0),
        "spec" => spec::main(g, a).map(|_| 0),
        "pause" => pause::main(g, a).map(|_| 0),
        "resume" => resume::main(g, a).map(|_| 0),
        "update" => update::main(g, a).map(|_| 0),
        "events" => events::main(g, a).map(|_| 0),
        "ps" => ps::main(g, a).map(|_| 0),
        "checkpoint" => checkpoint::main(g, a).map(|_| 0),
        "restore" => restore::main(g, a),
        "help" => {
            out(USAGE);
            Ok(0)
        }
        other => Err(Error::new(format!("No help topic for '{other}'"))),
    }
}

/// Errors go to the log (where engines read them) and, when the log is a file, to
/// stderr as a plain line, as runc does.
fn report(cmd: &str, e: &Error) {
    let msg = match cmd {
        "create" | "run" | "start" | "exec" => format!("berth {cmd} failed: {e}"),
        _ => e.to_string(),
    };
    logging::error(&msg);
    if logging::to_file() {
        eprintln!("{msg}");
    }
}

/// Writes command output to stdout. A reader that went away (`berth list | head -1`)
/// ends berth quietly with 141, as SIGPIPE ends runc, instead of a panic: berth ignores
/// SIGPIPE itself (see main.rs).
pub fn out(text: &str) {
    use std::io::Write;
    let mut o = std::io::stdout().lock();
    if let Err(e) = o.write_all(text.as_bytes()).and_then(|_| o.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            // SAFETY: _exit ends the process at once; nothing is left half-written.
            unsafe { libc::_exit(141) };
        }
    }
}

/// The single positional container id a command takes.
pub fn require_id(p: &args::Parsed, cmd: &str) -> Result<String> {
    match p.positional.first() {
        Some(id) => Ok(id.clone()),
        None => Err(Error::new(format!("\"{cmd}\" requires a container id"))),
    }
}
