//! The container's half of `create` and `exec`, run in the cloned child (create) or by
//! `berth init` exec'ed from a sealed copy of berth (see linux/exe_seal.rs). For create, inside its new namespaces: build the rootfs, set
//! hostname, sysctls and paths, report ready, wait for `start`. For exec: join the
//! container's namespaces. Both then set limits, user, capabilities and seccomp, and
//! exec the process.

use crate::error::{Context, Error, Result};
use crate::linux::{apparmor, capabilities, devices, exec, fds, ioprio, mempolicy, namespaces, rlimits, rootfs, sched, seccomp, sysctl, tty, user};
use crate::spawn::INIT_SOCK_ENV;
use crate::sync::{self, InitConfig, InitMode, Msg};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

/// Entry point of `berth init`. Only reached from spawn; a user calling it gets an error.
pub fn main() -> i32 {
    let Some(fd) = std::env::var(INIT_SOCK_ENV).ok().and_then(|v| v.parse::<RawFd>().ok()) else {
        eprintln!("berth init is internal: it is started by berth create");
        return 1;
    };
    run_with_sock(fd)
}

/// The init, talking to its parent over `fd`. Returns the exit status on failure.
pub fn run_with_sock(fd: RawFd) -> i32 {
    // SAFETY: spawn handed us this fd, open and owned by nobody else in this process.
    let mut sock = unsafe { UnixStream::from_raw_fd(fd) };
    fds::set_cloexec(fd, true);
    // The parent died before our parent-death signal was set: nobody will set us up.
    if crate::spawn::parent_gone(fd) {
        return 1;
    }
    let cfg = match sync::recv(&mut sock) {
        Ok(Some(Msg::Config(c))) => c,
        _ => return 1,
    };
    let res = match cfg.mode {
        InitMode::Create => run_create(&mut sock, &cfg),
        InitMode::Exec => run_exec(&mut sock, &cfg),
    };
    let err = match res {
        Ok(never) => match never {},
        Err(e) => e,
    };
    // Before ready, the error goes to create; after, only stderr is left.
    if sync::send(&mut sock, &Msg::Error { msg: err.to_string() }).is_err() {
        eprintln!("berth init: {err}");
    }
    127
}

enum Never {}

fn run_create(sock: &mut UnixStream, cfg: &InitConfig) -> Result<Never> {
    let spec = &cfg.spec;
    let process = spec.process.as_ref().ok_or_else(|| Error::new("process must be set"))?;
    let linux = spec.linux.clone().unwrap_or_default();
    let new_ns = |t: &str| spec.namespace(t).is_some_and(|n| n.path.is_none());
    let userns = spec.namespace("user").is_some();
    // The parent sent them right after the config.
    let idmapped = cfg.idmapped_mounts.iter().map(|&i| sync::recv_fd(sock).map(|fd| (i, fd))).collect::<Result<Vec<_>>>()?;

    join_namespaces(spec)?;
    if spec.namespace("user").is_some_and(|n| n.path.is_some()) {
        // The user namespace was joined: create the other new namespaces inside it.
        let mut flags = nix::sched::CloneFlags::empty();
        for ns in linux.namespaces.iter().filter(|n| n.path.is_none() && !matches!(n.typ.as_str(), "pid" | "cgroup" | "time" | "user")) {
            flags |= namespaces::clone_flag(&ns.typ);
        }
        nix::sched::unshare(flags).ctx("unshare namespaces")?;
    }
    if userns {
        become_root_in_userns()?;
        crate::spawn::die_with_parent();
    }
    if new_ns("network") {
        // A new network namespace starts with lo down; runc brings it up, and so do we.
        crate::linux::net::loopback_up()?;
    }
    if new_ns("cgroup") {
        // After the parent put us in our cgroup, so that it is the namespace's root.
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWCGROUP).ctx("unshare cgroup namespace")?;
    }

    let rootfs = PathBuf::from(&cfg.rootfs);
    // Without a mount namespace everything happens below the rootfs bind the parent made
    // (rootfs::bind_root_in_host): the caller's "/" and its propagation stay as they are.
    let mount_ns = spec.namespace("mount").is_some();
    if mount_ns {
        rootfs::prepare_root(spec, &rootfs)?;
    }
    let setup =
        rootfs::RootfsSetup { spec, rootfs: rootfs.clone(), cgroup: &cfg.cgroup, new_cgroup_ns: new_ns("cgroup"), in_userns: userns, idmapped: &idmapped };
    setup.mount_all()?;
    drop(idmapped);
    devices::create_devices(spec, &rootfs, userns)?;
    make_cwd(&rootfs, &process.cwd)?;
    let hooks = spec.hooks.clone().unwrap_or_default();
    if cfg.has_runtime_hooks {
        sync::send(sock, &Msg::RunHooks)?;
        match sync::recv(sock)? {
            Some(Msg::HooksDone) => {}
            _ => return Err(Error::new("sync: runtime hooks did not complete")),
        }
    }
    crate::hooks::run_all("createContainer", &hooks.create_container, &hook_state(cfg))?;

    if !mount_ns {
        rootfs::chroot_into(&rootfs)?;
    } else if cfg.no_pivot {
        rootfs::move_root(&rootfs)?;
    } else {
        rootfs::pivot_root(&rootfs)?;
    }
    if mount_ns {
        rootfs::apply_root_propagation(spec)?;
        rootfs::reopen_dev_null()?;
    }
    // The pty comes from the container's own devpts; /dev/console is its slave.
    if let Some(fd) = cfg.console_fd.filter(|_| process.terminal) {
        make_console(fd, process, true)?;
    } else {
        // A session of its own, as runc's init has: criu checkpoints only a tree whose
        // session leader is inside it (the console's setsid does this with a terminal).
        nix::unistd::setsid().ctx("setsid")?;
    }

    if spec.namespace("uts").is_some() {
        if let Some(h) = spec.hostname.as_deref().filter(|h| !h.is_empty()) {
            nix::unistd::sethostname(h).ctx("sethostname")?;
        }
        if let Some(d) = spec.domainname.as_deref().filter(|d| !d.is_empty()) {
            set_domainname(d)?;
        }
    }
    sysctl::apply(spec)?;
    rootfs::readonly_paths(&linux.readonly_paths)?;
    rootfs::mask_paths(&linux.masked_paths)?;
    if spec.root.as_ref().is_some_and(|r| r.readonly) {
        rootfs::readonly_root()?;
    }
    if !cfg.no_new_keyring {
        join_session_keyring(&cfg.id);
    }
    finish(sock, cfg)
}

fn run_exec(sock: &mut UnixStream, cfg: &InitConfig) -> Result<Never> {
    let process = cfg.spec.process.as_ref().ok_or_else(|| Error::new("process must be set"))?;
    // Joining the mount namespace also moves our root and cwd to the container's root;
    // without one, the init's root is entered (opened first: the joins may hide it).
    let root = cfg
        .exec_root
        .as_deref()
        .map(|r| {
            nix::fcntl::open(r, nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC, nix::sys::stat::Mode::empty())
                .with_ctx(|| format!("open {r}"))
        })
        .transpose()?;
    join_namespaces(&cfg.spec)?;
    if let Some(r) = &root {
        rootfs::chroot_into_fd(r)?;
    }
    if let Some(fd) = cfg.console_fd.filter(|_| process.terminal) {
        make_console(fd, process, false)?;
    }
    finish(sock, cfg)
}

/// What create and exec share once the process's surroundings exist: limits, user,
/// capabilities, seccomp, fds, then (create) the wait for start, and execve.
fn finish(sock: &mut UnixStream, cfg: &InitConfig) -> Result<Never> {
    let spec = &cfg.spec;
    let process = spec.process.as_ref().ok_or_else(|| Error::new("process must be set"))?;
    rlimits::apply(&process.rlimits)?;
    // Before seccomp and the capability drop, for create and exec alike, as runc does.
    if let Some(s) = &process.scheduler {
        sched::apply(s)?;
    }
    if let Some(p) = &process.io_priority {
        ioprio::apply(p)?;
    }
    let linux = spec.linux.as_ref();
    if let Some(p) = linux.and_then(|l| l.personality.as_ref()) {
        set_personality(&p.domain)?;
    }
    if let Some(m) = linux.and_then(|l| l.memory_policy.as_ref()) {
        mempolicy::apply(m)?;
    }

    let mut env = process.env.clone();
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        env.push(format!("HOME={}", user::home_dir(process.user.uid)));
    }
    let exe = exec::look_path(&process.args[0], &env).map_err(|e| Error::new(format!("unable to start container process: {e}")))?;
    nix::unistd::chdir(process.cwd.as_str()).with_ctx(|| format!("chdir to cwd ({:?}) set in config.json", process.cwd))?;
    // The cwd must be inside the container's root, never a leaked host directory.
    // (Checked before the seccomp filter, which may deny getcwd.)
    let cwd = std::env::current_dir().ctx("getcwd")?;
    if !cwd.is_absolute() || cwd.to_string_lossy().starts_with("(unreachable)") {
        return Err(Error::new(format!("cwd {} is outside the container", cwd.display())));
    }

    // Before the user switch and the seccomp filter, as runc: it takes effect at execve.
    if let Some(p) = process.apparmor_profile.as_deref().filter(|p| !p.is_empty()) {
        apparmor::change_on_exec(p)?;
    }
    let caps = process.capabilities.as_ref().map(capabilities::Sets::from_spec);
    // Compiled now, loaded as late as possible: without no_new_privs, loading needs
    // CAP_SYS_ADMIN, so then it happens before the capabilities are dropped (as runc does).
    let filter = spec.linux.as_ref().and_then(|l| l.seccomp.as_ref()).map(seccomp::compile).transpose()?;
    if !process.no_new_privileges {
        if let Some(f) = &filter {
            hand_over_listener(sock, f.load()?)?;
        }
    }
    if let Some(b) = caps.and_then(|c| c.bounding) {
        capabilities::drop_bounding(b)?;
    }
    user::give_stdio(process.user.uid, process.terminal && cfg.console_fd.is_some())?;
    user::switch(&process.user, true)?;
    if let Some(c) = &caps {
        capabilities::apply(c)?;
    }
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(process.user.umask.unwrap_or(0o022) as libc::mode_t));
    if process.no_new_privileges {
        // SAFETY: prctl with integer arguments only.
        if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
            return Err(std::io::Error::last_os_error()).ctx("set no_new_privs");
        }
        // A listener must reach the agent through the parent, which is gone by execve:
        // such a filter is loaded now, as runc does, not just before execve.
        if let Some(f) = filter.as_ref().filter(|f| f.has_listener()) {
            hand_over_listener(sock, f.load()?)?;
        }
    }

    // SAFETY: spawn handed us this fd, open and owned by nobody else in this process.
    let fifo = cfg.fifo_fd.map(|fd| unsafe { OwnedFd::from_raw_fd(fd) });
    fds::cloexec_from(3 + cfg.preserve_fds);
    crate::spawn::outlive_parent();
    sync::send(sock, &Msg::Ready)?;

    // The fifo stays open (close-on-exec) until execve: `start` waits for it to close.
    if let Some(fifo) = &fifo {
        if !cfg.starts_now {
            // It may wait long for `start`: keep no more of berth mapped than it needs.
            crate::linux::memory::release_binary_pages();
        }
        wait_for_start(fifo)?;
        let mut hooks = spec.hooks.clone().unwrap_or_default().start_container;
        // A hook without env gets the process's (HOME included), as runc's always has.
        for h in hooks.iter_mut().filter(|h| h.env.is_empty()) {
            h.env = env.clone();
        }
        crate::hooks::run_all("startContainer", &hooks, &hook_state(cfg))?;
    }
    exec::reset_signals();
    if process.no_new_privileges {
        if let Some(f) = filter.as_ref().filter(|f| !f.has_listener()) {
            f.load()?;
        }
    }
    Err(exec::execve(&exe, &process.args, &env))
}

/// Sends the SCMP_ACT_NOTIFY listener (if the filter made one) to the parent, which
/// hands it to the seccomp agent, and waits until it has: the agent must hold it before
/// the process can make a notifying syscall that nobody would answer.
fn hand_over_listener(sock: &mut UnixStream, listener: Option<OwnedFd>) -> Result<()> {
    let Some(fd) = listener else { return Ok(()) };
    sync::send(sock, &Msg::SeccompListener)?;
    sync::send_fd(sock, &fd)?;
    drop(fd);
    match sync::recv(sock)? {
        Some(Msg::ListenerSent) => Ok(()),
        other => Err(Error::new(format!("sync: expected listener-sent, got {other:?}"))),
    }
}

fn hook_state(cfg: &InitConfig) -> serde_json::Value {
    serde_json::json!({
        "ociVersion": berth_spec::OCI_VERSION, "id": cfg.id, "status": "created",
        "pid": std::process::id(), "bundle": cfg.bundle, "annotations": cfg.spec.annotations,
    })
}

/// Opens the pty, sends its master to the console socket and makes the slave our
/// controlling terminal and stdio. With `bind_console`, the slave is also mounted on
/// /dev/console.
fn make_console(sock_fd: RawFd, process: &berth_spec::Process, bind_console: bool) -> Result<()> {
    // SAFETY: spawn handed us this fd, open and owned by nobody else in this process.
    let sock = unsafe { UnixStream::from_raw_fd(sock_fd) };
    fds::set_cloexec(sock_fd, true);
    let (master, slave) = tty::open_pty()?;
    if let Some(size) = &process.console_size {
        tty::set_winsize(master.as_raw_fd(), size);
    }
    let name = tty::pty_name(&slave);
    if bind_console {
        let console = Path::new("/dev/console");
        if std::fs::symlink_metadata(console).is_err() {
            std::fs::File::create(console).ctx("create /dev/console")?;
        }
        nix::mount::mount(Some(name.as_str()), console, None::<&str>, nix::mount::MsFlags::MS_BIND, None::<&str>).ctx("bind pty to /dev/console")?;
    }
    tty::send_fd(&sock, &name, master.as_raw_fd())?;
    // The pty replaces the caller's stdio now, not at exec: a caller that reads create's
    // output until EOF (containerd's shim) must not wait on a created container.
    tty::become_console(&slave)
}

/// Joins the namespaces the config names by path (pid and time were joined by the
/// parent, as they only apply to children).
fn join_namespaces(spec: &berth_spec::Spec) -> Result<()> {
    let Some(linux) = &spec.linux else { return Ok(()) };
    let mut to_join: Vec<(&str, &str, OwnedFd)> = Vec::new();
    // Open all first: after joining a mount namespace the other paths may be gone.
    for ns in &linux.namespaces {
        if let Some(p) = &ns.path {
            if matches!(ns.typ.as_str(), "pid" | "time") {
                continue;
            }
            to_join.push((&ns.typ, p, namespaces::open(p)?));
        }
    }
    to_join.sort_by_key(|(t, _, _)| namespaces::join_order(t));
    for (typ, path, fd) in &to_join {
        namespaces::join(fd, typ, path)?;
    }
    Ok(())
}

fn become_root_in_userns() -> Result<()> {
    // SAFETY: plain syscalls on integers.
    if unsafe { libc::setresgid(0, 0, 0) } != 0 || unsafe { libc::setresuid(0, 0, 0) } != 0 {
        return Err(std::io::Error::last_os_error()).ctx("become root in the user namespace (is 0 mapped?)");
    }
    Ok(())
}

/// The process's cwd is created if the image lacks it, as runc does.
fn make_cwd(rootfs: &Path, cwd: &str) -> Result<()> {
    let p = crate::linux::secure_join::secure_join(rootfs, cwd)?;
    if std::fs::symlink_metadata(&p).is_err() {
        std::fs::create_dir_all(&p).with_ctx(|| format!("mkdir cwd {cwd}"))?;
    }
    Ok(())
}

fn set_domainname(d: &str) -> Result<()> {
    // SAFETY: setdomainname reads `len` bytes from the pointer.
    if unsafe { libc::setdomainname(d.as_ptr() as *const libc::c_char, d.len()) } != 0 {
        return Err(std::io::Error::last_os_error()).ctx("setdomainname");
    }
    Ok(())
}

fn set_personality(domain: &str) -> Result<()> {
    let p = if domain == "LINUX32" { 0x0008 } else { 0x0000 };
    // SAFETY: personality with an integer argument.
    if unsafe { libc::personality(p) } == -1 {
        return Err(std::io::Error::last_os_error()).with_ctx(|| format!("linux.personality: personality {domain}"));
    }
    Ok(())
}

/// A fresh session keyring per container, so containers do not share the host's keys.
/// Kernels without keyrings (or with them restricted) are not an error, as with runc.
fn join_session_keyring(id: &str) {
    let name = std::ffi::CString::new(format!("_ses.{id}")).unwrap_or_default();
    // SAFETY: keyctl JOIN_SESSION_KEYRING with a NUL-terminated name.
    unsafe {
        libc::syscall(libc::SYS_keyctl, 1 /* KEYCTL_JOIN_SESSION_KEYRING */, name.as_ptr())
    };
}

/// Blocks until `start` writes to the exec fifo.
fn wait_for_start(fifo: &OwnedFd) -> Result<()> {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use std::os::fd::AsFd;
    loop {
        let mut fds = [PollFd::new(fifo.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::NONE) {
            Err(nix::Error::EINTR) => continue,
            Err(e) => return Err(e).ctx("wait for start"),
            Ok(_) => {}
        }
        let mut b = [0u8; 1];
        match nix::unistd::read(fifo, &mut b) {
            Ok(1) => return Ok(()),
            Err(nix::Error::EAGAIN) | Err(nix::Error::EINTR) => continue,
            // The writer went away without a byte: start was aborted.
            _ => return Err(Error::new("start was aborted")),
        }
    }
}
