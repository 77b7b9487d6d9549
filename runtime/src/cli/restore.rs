//! `berth restore [-d] [--image-path DIR] [--work-path DIR] [--bundle DIR]
//! [--pid-file F] [--console-socket S] [--tcp-established] [--ext-unix-sk] [--shell-job]
//! [--file-locks] [--manage-cgroups-mode MODE] ID`: a new container from the bundle's
//! config whose processes criu restores from a checkpoint (see linux/criu.rs).
//!
//! The cgroup is made first and criu starts inside it, so the restored tree is in the
//! container's cgroup from its first instruction; state.json is written as create writes
//! it (marked creating until the restored init is known), so that delete cleans up a
//! restore that was interrupted.

use super::args::{self, flag, opt, Flag};
use super::Global;
use crate::container::Container;
use crate::error::{Context, Error, Result};
use crate::linux::{cgroups, criu, proc};
use std::os::fd::AsRawFd;
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
    if bundle.spec.process.as_ref().is_some_and(|p| p.terminal) || p.get("console-socket").is_some() {
        // The pty master would have to be handed to criu and on to the console socket.
        return Err(Error::new("restore: containers with a terminal (--console-socket) are not supported by berth"));
    }
    let detach = p.has("detach");
    if !detach {
        // The restored init is reparented to us when criu exits: we wait for it.
        // SAFETY: prctl with integer arguments.
        if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } != 0 {
            return Err(Error::from(std::io::Error::last_os_error())).ctx("become subreaper");
        }
    }
    let c = restore(g, &id, &bundle, &opts)?;
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
fn restore(g: &Global, id: &str, bundle: &berth_spec::Bundle, opts: &criu::Options) -> Result<Container> {
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
        let hooks_env = if hooks.prestart.is_empty() && hooks.create_runtime.is_empty() {
            Vec::new()
        } else {
            vec![(HOOKS_ID_ENV, id.to_string()), (HOOKS_ROOT_ENV, g.root.to_string_lossy().into_owned())]
        };
        let pid_file = dir.join("criu.pid");
        crate::linux::rootfs::make_mountpoints(spec, &bundle.dir, &bundle.rootfs())?;
        criu::bind_root(&bundle.rootfs(), &root)?;
        let restored = criu::restore(&criu::Restore {
            opts,
            externals: &externals,
            root: &root,
            pid_file: &pid_file,
            cgroup_root,
            join: &join,
            inherit: &inherit,
            hooks_env: &hooks_env,
        });
        criu::unbind_root(&root);
        drop(join_files);
        if let (Err(e), Ok(hook_error)) = (&restored, std::fs::read_to_string(hooks_error_file(&g.root, id))) {
            return Err(Error::new(format!("{e}; {hook_error}")));
        }
        restored?;
        let text = std::fs::read_to_string(&pid_file).with_ctx(|| format!("read criu's pid file {}", pid_file.display()))?;
        let pid: i32 = text.trim().parse().map_err(|_| Error::new(format!("criu's pid file {}: not a pid: {text:?}", pid_file.display())))?;
        let _ = std::fs::remove_file(&pid_file);
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

/// criu runs an action script at each step of the restore, by path, with no arguments
/// and with our environment: this berth binary, told by these variables which container
/// it is restoring (see [`hooks_main`]).
pub const HOOKS_ID_ENV: &str = "BERTH_RESTORE_HOOKS_ID";
pub const HOOKS_ROOT_ENV: &str = "BERTH_RESTORE_HOOKS_ROOT";

/// berth run by criu as the action script of a restore (not a user's command): at
/// `setup-namespaces` the restored tree's namespaces exist and nothing of it runs yet;
/// the prestart and createRuntime hooks run then, as runc runs them at restore (network
/// hooks set up the restored network namespace). Every other step is let pass.
pub fn hooks_main() -> i32 {
    let run = || -> Result<()> {
        if std::env::var("CRTOOLS_SCRIPT_ACTION").as_deref() != Ok("setup-namespaces") {
            return Ok(());
        }
        let env = |n: &str| std::env::var(n).map_err(|_| Error::new(format!("restore hooks: {n} is not set")));
        let (id, root) = (env(HOOKS_ID_ENV)?, env(HOOKS_ROOT_ENV)?);
        let pid: i32 = env("CRTOOLS_INIT_PID")?.parse().map_err(|_| Error::new("restore hooks: CRTOOLS_INIT_PID is not a pid"))?;
        // The restoring berth holds the container's lock: peek does not wait for it.
        let c = Container::peek(Path::new(&root), &id)?;
        let spec = c.config()?;
        let hooks = spec.hooks.clone().unwrap_or_default();
        let state = |status: &str| {
            serde_json::json!({
                "ociVersion": berth_spec::OCI_VERSION, "id": id, "status": status, "pid": pid,
                "bundle": c.saved.bundle, "annotations": spec.annotations,
            })
        };
        crate::hooks::run_all("prestart", &hooks.prestart, &state("created"))?;
        crate::hooks::run_all("createRuntime", &hooks.create_runtime, &state("creating"))
    };
    match run() {
        Ok(()) => 0,
        Err(e) => {
            // criu keeps no output of its scripts: the restore reads the error from here.
            if let (Ok(id), Ok(root)) = (std::env::var(HOOKS_ID_ENV), std::env::var(HOOKS_ROOT_ENV)) {
                let _ = std::fs::write(hooks_error_file(Path::new(&root), &id), e.to_string());
            }
            crate::logging::error(&format!("restore: {e}"));
            1
        }
    }
}

fn hooks_error_file(root: &Path, id: &str) -> std::path::PathBuf {
    crate::container::state_dir(root, id).join("restore-hooks.err")
}
