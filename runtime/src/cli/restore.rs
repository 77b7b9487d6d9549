//! `berth restore [-d] [--image-path DIR] [--work-path DIR] [--bundle DIR]
//! [--pid-file F] [--console-socket S] [--tcp-established] [--ext-unix-sk] [--shell-job]
//! [--file-locks] [--manage-cgroups-mode MODE] ID`: a new container from the bundle's
//! config whose processes criu restores from a checkpoint (see linux/criu.rs, criu_rpc.rs).
//!
//! The cgroup is made first and criu starts inside it, so the restored tree is in the
//! container's cgroup from its first instruction; state.json is written as create writes
//! it (marked creating until the restored init is known), so that delete cleans up a
//! restore that was interrupted.

use super::args::{self, flag, opt, Flag};
use super::Global;
use crate::container::Container;
use crate::error::{Context, Error, Result};
use crate::linux::{cgroups, criu, criu_rpc, proc, tty};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::path::Path;

const FLAGS: &[Flag] = &[
    opt(&["image-path"]),
    opt(&["work-path"]),
    opt(&["bundle", "b"]),
    opt(&["pid-file"]),
    opt(&["console-socket"]),
    flag(&["detach", "d"]),
    flag(&["tcp-established"]),
    flag(&["ext-unix-sk"]),
    flag(&["shell-job"]),
    flag(&["file-locks"]),
    opt(&["manage-cgroups-mode"]),
    // runc's flags berth takes and has no use for.
    flag(&["no-subreaper"]),
    flag(&["no-pivot"]),
    opt(&["empty-ns"]),
    flag(&["auto-dedup"]),
    flag(&["lazy-pages"]),
];

pub fn main(g: &Global, a: &[String]) -> Result<i32> {
    let p = args::parse(a, FLAGS, false)?;
    let id = super::require_id(&p, "restore")?;
    if p.get("empty-ns").is_some() || p.has("lazy-pages") {
        return Err(Error::new("restore: --empty-ns and --lazy-pages are not supported by berth"));
    }
    let opts = super::checkpoint::criu_options(g, &p)?;
    let bundle = berth_spec::load_bundle(Path::new(p.get("bundle").unwrap_or(".")))?;
    let terminal = bundle.spec.process.as_ref().is_some_and(|p| p.terminal);
    // As create: a terminal's master goes to the console socket (criu makes a new pty
    // for the restored process; see restore()).
    let console = match (terminal, p.get("console-socket")) {
        (true, Some(path)) => Some(tty::connect_console_socket(path)?),
        (true, None) => return Err(Error::new("cannot restore a container with a terminal without --console-socket")),
        (false, Some(_)) => return Err(Error::new("cannot use console socket if the container has no terminal")),
        (false, None) => None,
    };
    let detach = p.has("detach");
    if !detach {
        // The restored init is reparented to us when criu exits: we wait for it.
        // SAFETY: prctl with integer arguments.
        if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } != 0 {
            return Err(Error::from(std::io::Error::last_os_error())).ctx("become subreaper");
        }
    }
    let c = restore(g, &id, &bundle, &opts, console.as_ref())?;
    if let Some(f) = p.get("pid-file") {
        if let Err(e) = super::create::write_pid_file(f, c.saved.pid) {
            c.destroy()?;
            return Err(e);
        }
    }
    if detach {
        return Ok(0);
    }
    // In the foreground, as `run`: signals pass on to the init, and when it has ended
    // the container goes.
    let pid = c.saved.pid;
    drop(c);
    let code = super::run::wait_forwarding_signals(pid);
    if let Ok(c) = Container::load(&g.root, &id) {
        if let Err(e) = c.destroy() {
            crate::logging::warn(&format!("delete after restore: {e}"));
        }
    }
    Ok(code)
}

/// Makes the container and restores its processes; on failure nothing of it is left.
fn restore(g: &Global, id: &str, bundle: &berth_spec::Bundle, opts: &criu::Options, console: Option<&UnixStream>) -> Result<Container> {
    let (dir, lock) = Container::create_dir(&g.root, id)?;
    let mut record = Container::from_parts(id, dir.clone(), super::create::first_record(id, bundle, Vec::new()), lock);
    let root = dir.join("criu-root");
    let result = (|| -> Result<()> {
        std::fs::write(dir.join("config.json"), &bundle.raw).ctx("save config.json")?;
        let spec = &bundle.spec;
        let linux = spec.linux.clone().unwrap_or_default();
        let mut cg = cgroups::new(&linux, &spec.annotations, id, g.systemd_cgroup)?;
        record.saved.cgroup = cg.plan();
        record.save()?;
        cg.create()?;
        let join_files = cg.join_files()?;
        let join: Vec<i32> = join_files.iter().map(|f| f.as_raw_fd()).collect();
        let unified = cg.paths().unified.clone();
        let cgroup_root = unified.as_deref().and_then(|u| u.strip_prefix("/sys/fs/cgroup").ok()).map(|r| format!("/{}", r.display()));
        // At restore every masked path is offered /dev/null; criu uses those it dumped as external.
        let externals = criu::externals(spec, &bundle.dir, unified.as_deref(), |_| Some(false));
        let inherit = criu::stdio_to_inherit(&opts.image_path)?;
        let hooks = spec.hooks.clone().unwrap_or_default();
        let state = |status: &str, pid: i32| {
            serde_json::json!({
                "ociVersion": berth_spec::OCI_VERSION, "id": id, "status": status, "pid": pid,
                "bundle": bundle.dir.to_string_lossy(), "annotations": spec.annotations,
            })
        };
        crate::linux::rootfs::make_mountpoints(spec, &bundle.dir, &bundle.rootfs())?;
        criu::bind_root(&bundle.rootfs(), &root)?;
        let request = criu_rpc::Restore { opts, externals: &externals, root: &root, cgroup_root, join: &join, inherit: &inherit };
        let restored = criu_rpc::restore(&request, |n| match n.script {
            // The restored tree's namespaces exist and nothing of it runs yet: the hooks
            // run now, as runc runs them at restore (network hooks set up the restored
            // network namespace).
            "setup-namespaces" => {
                crate::hooks::run_all("prestart", &hooks.prestart, &state("created", n.pid))?;
                crate::hooks::run_all("createRuntime", &hooks.create_runtime, &state("creating", n.pid))
            }
            // The new pty master of the restored terminal, for the console socket.
            "orphan-pts-master" => match (console, n.fd) {
                (Some(sock), Some(master)) => tty::send_fd(sock, "/dev/ptmx", master.as_raw_fd()),
                _ => Err(Error::new("criu sent no pty master")),
            },
            _ => Ok(()),
        });
        criu::unbind_root(&root);
        drop(join_files);
        let pid = restored?;
        record.saved.pid = pid;
        record.saved.start_time = proc::start_time(pid).ok_or_else(|| Error::new(format!("the restored init (pid {pid}) exited at once")))?;
        record.save()?;
        cg.enter(pid)?;
        cg.apply(&linux)?;
        record.saved.cgroup = cg.paths().clone();
        record.saved.creating = false;
        record.saved.created = crate::logging::rfc3339_now();
        record.save()
    })();
    if let Err(e) = result {
        record.kill_and_cleanup();
        let _ = std::fs::remove_dir_all(&dir);
        return Err(e);
    }
    Ok(record)
}
