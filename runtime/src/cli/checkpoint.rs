//! `berth checkpoint [--image-path DIR] [--work-path DIR] [--leave-running]
//! [--tcp-established] [--ext-unix-sk] [--shell-job] [--file-locks] [--pre-dump]
//! [--parent-path DIR] [--manage-cgroups-mode MODE] ID`: dump a running container with
//! criu (see linux/criu.rs). Unless it is left running (or only pre-dumped), the container
//! is gone afterwards, as with runc: criu ends its processes and berth removes the rest.

use super::args::{self, flag, opt, Flag};
use super::Global;
use crate::container::{Container, Status};
use crate::error::{Error, Result};
use crate::linux::{criu, criu_rpc};
use std::path::{Path, PathBuf};

const FLAGS: &[Flag] = &[
    opt(&["image-path"]),
    opt(&["work-path"]),
    opt(&["parent-path"]),
    flag(&["leave-running"]),
    flag(&["tcp-established"]),
    flag(&["ext-unix-sk"]),
    flag(&["shell-job"]),
    flag(&["file-locks"]),
    flag(&["pre-dump"]),
    opt(&["manage-cgroups-mode"]),
    // runc's flags berth takes and has no use for.
    opt(&["page-server"]),
    flag(&["lazy-pages"]),
    opt(&["status-fd"]),
    flag(&["auto-dedup"]),
    opt(&["empty-ns"]),
];

/// The options checkpoint and restore share, from the command line; paths made absolute
/// (criu runs with them after berth has moved nowhere, but the log names them).
pub fn criu_options(g: &Global, p: &args::Parsed) -> Result<criu::Options> {
    let cwd = std::env::current_dir().map_err(Error::from)?;
    let image_path = cwd.join(p.get("image-path").unwrap_or("checkpoint"));
    let work_path = p.get("work-path").map(|w| cwd.join(w)).unwrap_or_else(|| image_path.clone());
    let manage_cgroups_mode = p.get("manage-cgroups-mode").map(String::from);
    if let Some(m) = &manage_cgroups_mode {
        criu::check_cgroups_mode(m)?;
    }
    Ok(criu::Options {
        criu: g.criu.clone().unwrap_or_default(),
        image_path,
        work_path,
        tcp_established: p.has("tcp-established"),
        ext_unix_sk: p.has("ext-unix-sk"),
        shell_job: p.has("shell-job"),
        file_locks: p.has("file-locks"),
        manage_cgroups_mode,
    })
}

pub fn main(g: &Global, a: &[String]) -> Result<()> {
    let p = args::parse(a, FLAGS, false)?;
    let id = super::require_id(&p, "checkpoint")?;
    for unsupported in ["page-server", "lazy-pages", "status-fd", "empty-ns"] {
        if p.get(unsupported).is_some_and(|v| v != "false") {
            return Err(Error::new(format!("checkpoint: --{unsupported} is not supported by berth")));
        }
    }
    let opts = criu_options(g, &p)?;
    let c = Container::load(&g.root, &id)?;
    match c.status() {
        Status::Running => {}
        s => return Err(Error::new(format!("cannot checkpoint container {id}: it is {}, not running", s.as_str()))),
    }
    let spec = c.config()?;
    let pid = c.saved.pid;
    // What a masked path is, seen from inside the container.
    let inside = PathBuf::from(format!("/proc/{pid}/root"));
    let is_dir = |p: &str| std::fs::metadata(inside.join(p.trim_start_matches('/'))).ok().map(|m| m.is_dir());
    let externals = criu::externals(&spec, Path::new(&c.saved.bundle), c.saved.cgroup.unified.as_deref(), is_dir);
    criu::write_descriptors(&opts.image_path, pid)?;
    let pre_dump = p.has("pre-dump");
    let leave_running = p.has("leave-running");
    criu_rpc::dump(&criu_rpc::Dump { pid, opts: &opts, externals: &externals, leave_running, pre_dump, parent_path: p.get("parent-path").map(String::from) })?;
    if leave_running || pre_dump {
        return Ok(());
    }
    // criu killed the tree; what is left of the container goes, as runc does.
    c.destroy()
}
