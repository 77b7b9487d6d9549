//! `berth exec [flags] ID CMD [ARGS...]` or `berth exec --process FILE ID`: run a
//! process in a running container, with runc's flags. In the foreground the exit status
//! is the process's; with --detach, berth returns once it has started.

use super::args::{self, flag, opt, Flag};
use super::create::write_pid_file;
use super::Global;
use crate::container::{Container, Status};
use crate::error::{Context, Error, Result};
use crate::linux::tty;
use berth_spec::Process;
use std::os::unix::net::UnixStream;

const FLAGS: &[Flag] = &[
    opt(&["console-socket"]),
    opt(&["cwd"]),
    opt(&["env", "e"]),
    flag(&["tty", "t"]),
    opt(&["user", "u"]),
    opt(&["additional-gids", "g"]),
    opt(&["process", "p"]),
    flag(&["detach", "d"]),
    opt(&["pid-file"]),
    opt(&["process-label"]),
    opt(&["apparmor"]),
    flag(&["no-new-privs"]),
    opt(&["cap", "c"]),
    opt(&["preserve-fds"]),
    opt(&["cgroup"]),
    flag(&["ignore-paused"]),
];

pub fn main(g: &Global, a: &[String]) -> Result<i32> {
    let p = args::parse(a, FLAGS, true)?;
    let id = super::require_id(&p, "exec")?;
    let mut c = Container::load(&g.root, &id)?;
    match c.status() {
        Status::Stopped => return Err(Error::new("cannot exec in a stopped container")),
        Status::Creating => return Err(Error::new("cannot exec in a container that is being created")),
        Status::Paused if !p.has("ignore-paused") => return Err(Error::new("cannot exec in a paused container")),
        _ => {}
    }
    let process = build_process(&c, &p)?;
    let preserve_fds = match p.get("preserve-fds") {
        Some(v) => v.parse().map_err(|_| Error::new(format!("--preserve-fds: invalid number {v:?}")))?,
        None => 0,
    };
    crate::linux::fds::check_passed(preserve_fds)?;
    let detach = p.has("detach");
    let (console, relay) = match (process.terminal, p.get("console-socket")) {
        (true, Some(path)) => (Some(tty::connect_console_socket(path)?), None),
        (true, None) if !detach => {
            let (ours, theirs) = UnixStream::pair().ctx("socketpair")?;
            (Some(theirs), Some(ours))
        }
        (true, None) => return Err(Error::new("cannot allocate tty if berth will detach without setting console socket")),
        (false, Some(_)) => return Err(Error::new("cannot use console socket if berth will not detach or allocate tty")),
        (false, None) => (None, None),
    };
    if c.status() == Status::Paused {
        // The new process joins a frozen cgroup and stops before it reports ready: the
        // lock must not be held meanwhile, or the `resume` that would thaw it waits forever.
        c.unlock();
    }
    let pid = crate::spawn::spawn_exec(&c, process, preserve_fds, console.as_ref()).map_err(|e| Error::new(format!("exec failed: {e}")))?;
    drop(console);
    if let Some(f) = p.get("pid-file") {
        write_pid_file(f, pid)?;
    }
    if detach {
        return Ok(0);
    }
    c.unlock();
    let master = match &relay {
        Some(sock) => Some(tty::recv_fd(sock)?),
        None => None,
    };
    Ok(match &master {
        Some(m) => super::run::wait_with_terminal(pid, m),
        None => super::run::wait_forwarding_signals(pid),
    })
}

/// The process to run: `--process FILE`, or the container's process with the command
/// line's args and flags.
fn build_process(c: &Container, p: &args::Parsed) -> Result<Process> {
    let mut process = match p.get("process") {
        Some(f) => {
            let raw = std::fs::read(f).with_ctx(|| format!("read process file {f}"))?;
            serde_json::from_slice::<Process>(&raw).map_err(|e| Error::new(format!("{f}: invalid process: {e}")))?
        }
        None => {
            let mut base = c.config()?.process.unwrap_or_default();
            base.args = p.positional[1..].to_vec();
            base.terminal = false;
            base
        }
    };
    if process.args.is_empty() {
        return Err(Error::new("exec: args must not be empty"));
    }
    if p.has("tty") {
        process.terminal = true;
    }
    if let Some(cwd) = p.get("cwd") {
        process.cwd = cwd.to_string();
    }
    if process.cwd.is_empty() {
        process.cwd = "/".into();
    }
    for kv in p.all("env") {
        let key = kv.split('=').next().unwrap_or("").to_string();
        process.env.retain(|e| e.split('=').next() != Some(key.as_str()));
        process.env.push(kv);
    }
    if let Some(u) = p.get("user") {
        let (uid, gid) = match u.split_once(':') {
            Some((a, b)) => (a, Some(b)),
            None => (u, None),
        };
        process.user.uid = uid.parse().map_err(|_| Error::new(format!("--user: {u:?} is not uid[:gid]")))?;
        if let Some(g) = gid {
            process.user.gid = g.parse().map_err(|_| Error::new(format!("--user: {u:?} is not uid[:gid]")))?;
        }
    }
    for g in p.all("additional-gids") {
        process.user.additional_gids.push(g.parse().map_err(|_| Error::new(format!("--additional-gids: {g:?} is not a number")))?);
    }
    if p.has("no-new-privs") {
        process.no_new_privileges = true;
    }
    if let Some(a) = p.get("apparmor") {
        process.apparmor_profile = Some(a.to_string());
    }
    if let Some(l) = p.get("process-label") {
        process.selinux_label = Some(l.to_string());
    }
    let caps = p.all("cap");
    if !caps.is_empty() {
        let set = process.capabilities.get_or_insert_with(Default::default);
        let has_inheritable = set.inheritable.is_some();
        for cap in caps {
            for s in [&mut set.bounding, &mut set.effective, &mut set.permitted] {
                s.get_or_insert_with(Vec::new).push(cap.clone());
            }
            // Ambient needs inheritable; like runc, only add it where the spec has some.
            if has_inheritable {
                set.ambient.get_or_insert_with(Vec::new).push(cap.clone());
            }
        }
    }
    if p.get("cgroup").is_some() {
        return Err(Error::new("--cgroup is not supported by berth: the process joins the container's cgroup"));
    }
    // The container's profile (or --apparmor's) is applied by the exec'd process's init.
    if let Some(a) = process.apparmor_profile.as_deref().filter(|a| !a.is_empty()) {
        if !crate::linux::apparmor::enabled() {
            return Err(Error::new(format!("AppArmor profile {a:?} (--apparmor, or the container's): AppArmor is not enabled on this host")));
        }
    }
    if process.selinux_label.as_deref().is_some_and(|a| !a.is_empty()) {
        return Err(Error::new("--process-label: SELinux is disabled or not supported on this host"));
    }
    Ok(process)
}
