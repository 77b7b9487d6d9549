//! `berth-build build`.

use std::path::{Path, PathBuf};

use super::args::{parse, switch, val, Flag};
use super::Fail;
use crate::build::{self, BuildOptions, Output};
use crate::layer::Compression;
use crate::progress::Mode;

const FLAGS: &[Flag] = &[
    val("file", Some('f')),
    val("tag", Some('t')),
    val("build-arg", None),
    val("target", None),
    switch("no-cache", None),
    val("output", Some('o')),
    val("progress", None),
    val("network", None),
    val("compression", None),
    val("secret", None),
    val("runtime", None),
    val("iidfile", None),
    switch("quiet", Some('q')),
    val("store", None),
];

pub fn run(store: &Path, args: &[String]) -> Result<(), Fail> {
    let p = parse(args, FLAGS).map_err(Fail::usage)?;
    let [context] = p.positionals.as_slice() else {
        return Err(Fail::usage("build needs exactly one argument: the context directory"));
    };
    let quiet = p.has("quiet");
    let progress = match p.one("progress") {
        Some(m) => Mode::parse(&m).map_err(Fail::usage)?,
        None => Mode::parse("auto").expect("auto"),
    };
    let network = match p.one("network").as_deref() {
        None | Some("host") | Some("default") => berth_spec::image::NetworkMode::Host,
        Some("none") => berth_spec::image::NetworkMode::None,
        Some(o) => return Err(Fail::usage(format!("invalid --network {o:?}: want host or none"))),
    };
    let compression = match p.one("compression") {
        Some(c) => Compression::parse(&c).map_err(Fail::usage)?,
        None => Compression::default(),
    };
    let outputs =
        p.all("output").iter().map(|o| Output::parse(o)).collect::<Result<Vec<_>, _>>().map_err(Fail::usage)?;
    for t in p.all("tag") {
        crate::store::normalize_name(&t).map_err(|e| Fail::usage(e.to_string()))?;
    }
    let opts = BuildOptions {
        store: p.one("store").map(PathBuf::from).unwrap_or_else(|| store.to_path_buf()),
        context: PathBuf::from(context),
        dockerfile: p.one("file").map(PathBuf::from),
        tags: p.all("tag"),
        build_args: p.all("build-arg"),
        target: p.one("target"),
        no_cache: p.has("no-cache"),
        outputs,
        progress,
        network,
        compression,
        secrets: p.all("secret"),
        runtime: p.one("runtime").map(|r| in_path(&r)),
        shim: std::env::var_os("BERTH_SHIM").filter(|s| !s.is_empty()).map(PathBuf::from),
        iidfile: p.one("iidfile").map(PathBuf::from),
    };

    // Before any thread exists: a mount namespace of our own (no overlay can outlive the
    // build), subreaper for the detached shims, signal handling for cleanup.
    crate::overlay::private_mount_namespace()
        .map_err(|e| Fail::err(format!("cannot make a private mount namespace (berth-build needs root): {e}")))?;
    crate::exec::shim::become_subreaper();
    crate::cleanup::install_signal_thread();

    let r = build::build(&opts);
    crate::cleanup::run_all();
    reap_all();
    if let Some(sig) = crate::cleanup::interrupted() {
        // The signal thread is cleaning up and exits with 128+sig; so do we.
        crate::cleanup::run_all();
        std::process::exit(128 + sig);
    }
    match r {
        Ok(b) => {
            if quiet {
                println!("{}", b.id);
            }
            Ok(())
        }
        Err(e) => Err(Fail::err(e)),
    }
}

/// A command name (`runc`) looked up in $PATH; a path is kept as given.
fn in_path(name: &str) -> PathBuf {
    if name.contains('/') {
        return PathBuf::from(name);
    }
    std::env::var_os("PATH")
        .and_then(|p| std::env::split_paths(&p).map(|d| d.join(name)).find(|c| c.is_file()))
        .unwrap_or_else(|| PathBuf::from(name))
}

/// Reaps whatever was reparented to us and has exited (no child is running any more).
fn reap_all() {
    loop {
        let mut st = 0;
        // SAFETY: non-blocking waitpid of any child.
        let r = unsafe { libc::waitpid(-1, &mut st, libc::WNOHANG) };
        if r <= 0 {
            return;
        }
    }
}
