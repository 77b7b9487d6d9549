//! The parent's half of `create`: clone the init into its new namespaces (it runs the
//! init's code in the cloned child, or execs a sealed copy of berth: see
//! linux/exe_seal.rs), write its id maps, put it in its cgroup, hand it its setup over the
//! sync socket, run the runtime-namespace hooks when it asks, and wait until it is ready.

use crate::container::{Container, Saved};
use crate::error::{Context, Error, Result};
use crate::linux::{bitmask, cgroups, exe_seal, fds, namespaces, proc, sched};
use crate::sync::{self, InitConfig, InitMode, Msg};
use berth_spec::{Bundle, Spec};
use nix::sched::CloneFlags;
use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;

pub struct SpawnRequest<'a> {
    pub id: &'a str,
    pub bundle: &'a Bundle,
    pub state_dir: &'a Path,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    pub preserve_fds: u32,
    pub systemd_cgroup: bool,
    /// A connected console socket for the init's pty master, when the process has a terminal.
    pub console: Option<&'a UnixStream>,
    /// `run`: `start` follows at once.
    pub starts_now: bool,
    /// Signals that abort the create (undoing it) while it waits for the init.
    pub interrupts: Option<&'a crate::linux::signals::Interrupts>,
}

pub struct Spawned {
    pub pid: i32,
    pub start_time: u64,
    pub cgroup: cgroups::CgroupPaths,
    /// Without a mount namespace: the rootfs bind in the caller's (see rootfs::bind_root_in_host).
    pub host_root_mount: Option<u64>,
}

/// Env var carrying the sync socket's fd number to the init.
pub const INIT_SOCK_ENV: &str = "_BERTH_INIT_SOCK";

/// Makes the container's cgroup and init. `record` is the container's state.json, marked
/// creating: it is written before the cgroup is made (naming it) and as soon as the init
/// exists (naming it), so that `delete --force` after a SIGKILL of create finds both.
pub fn spawn_init(req: &SpawnRequest, record: &mut Container) -> Result<Spawned> {
    let spec = &req.bundle.spec;
    check_before_start(spec)?;

    let fifo = make_exec_fifo(req.state_dir)?;
    let (parent_sock, child_sock) = UnixStream::pair().ctx("socketpair")?;
    let mut keep = vec![child_sock.as_raw_fd(), fifo.as_raw_fd()];
    keep.extend(req.console.map(|c| c.as_raw_fd()));
    let flags = clone_flags(spec);
    let new_userns = flags.contains(CloneFlags::CLONE_NEWUSER);
    let image = if exe_seal::init_needs_sealed_copy(spec) { InitImage::Sealed } else { InitImage::InProcess };

    // The cgroup exists before the init, which moves itself in as its first step
    // (cgroups::join_self); systemd's scope is made around it once it exists. The limits
    // and device rules are in place before the init is told to go on.
    let linux = spec.linux.clone().unwrap_or_default();
    let mut guard = ChildGuard { pid: 0, cgroup: None, host_root: None };
    if spec.namespace("mount").is_none() {
        let root = req.bundle.rootfs();
        let id = crate::linux::rootfs::bind_root_in_host(&root)?;
        guard.host_root = Some((root, id));
        record.saved.host_root_mount = Some(id);
        record.save()?;
    }
    let cgroup = guard.cgroup.insert(cgroups::new(&linux, &spec.annotations, req.id, req.systemd_cgroup)?);
    record.saved.cgroup = cgroup.plan();
    record.save()?;
    cgroup.create()?;
    let join_files = cgroup.join_files()?;
    let join: Vec<i32> = join_files.iter().map(|f| f.as_raw_fd()).collect();
    keep.extend(&join);
    let child = ChildSetup { sock: &child_sock, keep: &keep, join: &join, wait_for_maps: new_userns, preserve_fds: req.preserve_fds };
    guard.pid = with_parent_side_namespaces(spec, || clone_init(flags, &child, image))?;
    let pid = guard.pid;
    drop(child_sock);
    // Until here the init dies with us (PR_SET_PDEATHSIG); from here on delete finds it.
    record.saved.pid = pid;
    record.saved.start_time = proc::start_time(pid).unwrap_or(0);
    record.save()?;
    drop(join_files);
    cgroup.enter(pid)?;
    cgroup.apply(&linux)?;
    // The init is not bound to the CPUs its caller was pinned to.
    sched::reset_affinity(pid);
    let paths = cgroup.paths().clone();

    let mut sock = parent_sock;
    setup_from_parent(req, pid)?;
    if new_userns {
        // The id maps are written: the child may become root in its namespace and exec.
        use std::io::Write;
        (&sock).write_all(&[1]).ctx("sync: release init")?;
    }
    let state_for_hooks = |status: &str| {
        serde_json::json!({
            "ociVersion": berth_spec::OCI_VERSION, "id": req.id, "status": status, "pid": pid,
            "bundle": req.bundle.dir.to_string_lossy(), "annotations": spec.annotations,
        })
    };
    // After the id maps: a mount without mappings of its own takes the init's.
    let idmapped = crate::linux::idmap::prepare(spec, pid)?;
    let hooks = spec.hooks.clone().unwrap_or_default();
    let cfg = InitConfig {
        mode: InitMode::Create,
        id: req.id.to_string(),
        bundle: req.bundle.dir.to_string_lossy().into_owned(),
        rootfs: req.bundle.rootfs().to_string_lossy().into_owned(),
        spec: spec.clone(),
        cgroup: paths.clone(),
        no_pivot: req.no_pivot,
        no_new_keyring: req.no_new_keyring,
        preserve_fds: req.preserve_fds,
        fifo_fd: Some(fifo.as_raw_fd()),
        starts_now: req.starts_now,
        console_fd: req.console.map(|c| c.as_raw_fd()),
        has_runtime_hooks: !hooks.prestart.is_empty() || !hooks.create_runtime.is_empty(),
        idmapped_mounts: idmapped.iter().map(|(i, _)| *i).collect(),
        exec_root: None,
    };
    sync::send(&mut sock, &Msg::Config(Box::new(cfg)))?;
    for (_, fd) in &idmapped {
        sync::send_fd(&sock, fd)?;
    }
    drop(idmapped);
    loop {
        if let Some(ints) = req.interrupts {
            wait_for_init_or_signal(&sock, ints)?;
        }
        match sync::recv(&mut sock)? {
            Some(Msg::RunHooks) => {
                // prestart sees "created", as crun does and the validation suite checks;
                // createRuntime sees "creating", as runc does: both run during create.
                crate::hooks::run_all("prestart", &hooks.prestart, &state_for_hooks("created"))?;
                crate::hooks::run_all("createRuntime", &hooks.create_runtime, &state_for_hooks("creating"))?;
                sync::send(&mut sock, &Msg::HooksDone)?;
            }
            Some(Msg::SeccompListener) => pass_listener(&mut sock, spec, pid, state_for_hooks("creating"))?,
            Some(Msg::Ready) => break,
            Some(Msg::Error { msg }) => return Err(Error::new(msg)),
            Some(other) => return Err(Error::new(format!("sync: unexpected message {other:?}"))),
            None => return Err(Error::new(format!("container init exited before it was set up ({})", describe_exit(pid)))),
        }
    }
    let start_time = proc::start_time(pid).ok_or_else(|| Error::new("container init exited during create"))?;
    let host_root_mount = guard.host_root.as_ref().map(|(_, id)| *id);
    guard.disarm();
    Ok(Spawned { pid, start_time, cgroup: paths, host_root_mount })
}

/// `berth exec`: start a process in a running container. The parent joins the
/// container's pid (and time) namespace for its child, clones it into the cgroup's
/// reach, and the child (the sealed berth in `exec` mode) joins the rest.
pub fn spawn_exec(c: &crate::container::Container, process: berth_spec::Process, preserve_fds: u32, console: Option<&UnixStream>) -> Result<i32> {
    let config = c.config()?;
    let init = c.saved.pid;
    let mut spec = config.clone();
    // The container's execCPUAffinity is the default of every exec, as with runc.
    let affinity = process.exec_cpu_affinity.as_ref().or(config.process.as_ref().and_then(|p| p.exec_cpu_affinity.as_ref()));
    let affinity = affinity.map(sched::Affinity::from_spec).transpose()?;
    spec.process = Some(process);
    // Every namespace the container has, joined through its init.
    if let Some(linux) = spec.linux.as_mut() {
        for ns in linux.namespaces.iter_mut() {
            ns.path = Some(format!("/proc/{init}/ns/{}", namespaces::proc_name(&ns.typ)));
        }
    }
    // A waiting init that runs berth's code unsealed is safe only from processes without
    // CAP_SYS_PTRACE (linux/exe_seal.rs): refuse to add one before the init has exec'd.
    if c.status() == crate::container::Status::Created
        && exe_seal::may_ptrace(spec.process.as_ref().and_then(|p| p.capabilities.as_ref()))
        && !exe_seal::runs_sealed(init)
    {
        return Err(Error::new("cannot exec a process that may hold CAP_SYS_PTRACE into a created container: start it first"));
    }
    let (parent_sock, child_sock) = UnixStream::pair().ctx("socketpair")?;
    let mut keep = vec![child_sock.as_raw_fd()];
    keep.extend(console.map(|c| c.as_raw_fd()));
    let child = ChildSetup { sock: &child_sock, keep: &keep, join: &[], wait_for_maps: false, preserve_fds };
    let initial = affinity.as_ref().and_then(|a| a.initial.as_deref());
    let pid = with_affinity(initial, || with_parent_side_namespaces(&spec, || clone_init(CloneFlags::empty(), &child, InitImage::Sealed)))?;
    drop(child_sock);
    let mut guard = ChildGuard { pid, cgroup: None, host_root: None };
    cgroups::load(&c.saved.cgroup).add_exec(pid, c.saved.pid)?;
    // Now that it is in the container's cgroup (whose cpuset may differ), its own CPUs.
    // Without one, every CPU the cgroup allows (not the CPUs berth's caller was pinned to).
    match affinity.as_ref().and_then(|a| a.final_.as_deref()) {
        Some(cpus) => sched::set_affinity(pid, &bitmask::to_mask(cpus)).ctx("process.execCPUAffinity.final: sched_setaffinity")?,
        None => sched::reset_affinity(pid),
    }
    let cfg = InitConfig {
        mode: InitMode::Exec,
        id: c.id.clone(),
        bundle: c.saved.bundle.clone(),
        rootfs: c.saved.rootfs.clone(),
        spec,
        cgroup: c.saved.cgroup.clone(),
        no_pivot: false,
        no_new_keyring: true,
        preserve_fds,
        fifo_fd: None,
        starts_now: true,
        console_fd: console.map(|c| c.as_raw_fd()),
        has_runtime_hooks: false,
        idmapped_mounts: Vec::new(),
        exec_root: config.namespace("mount").is_none().then(|| format!("/proc/{init}/root")),
    };
    let mut sock = parent_sock;
    let listener_spec = cfg.spec.clone();
    sync::send(&mut sock, &Msg::Config(Box::new(cfg)))?;
    loop {
        match sync::recv(&mut sock)? {
            Some(Msg::SeccompListener) => pass_listener(&mut sock, &listener_spec, pid, c.state_json())?,
            Some(Msg::Ready) => break,
            Some(Msg::Error { msg }) => return Err(Error::new(msg)),
            Some(other) => return Err(Error::new(format!("sync: unexpected message {other:?}"))),
            None => return Err(Error::new(format!("exec process exited before it was set up ({})", describe_exit(pid)))),
        }
    }
    guard.disarm();
    Ok(pid)
}

/// The init (or exec'd process) loaded a filter with SCMP_ACT_NOTIFY: receive its
/// listener and hand it to the agent at `linux.seccomp.listenerPath` with the process's
/// state (pid as the host sees it), as the runtime-spec says; then let the process go on.
fn pass_listener(sock: &mut UnixStream, spec: &Spec, pid: i32, state: serde_json::Value) -> Result<()> {
    let fd = sync::recv_fd(sock)?;
    let seccomp = spec.linux.as_ref().and_then(|l| l.seccomp.as_ref());
    let path = seccomp.and_then(|s| s.listener_path.as_deref()).filter(|p| !p.is_empty()).ok_or_else(|| Error::new("linux.seccomp.listenerPath is not set"))?;
    let metadata = seccomp.and_then(|s| s.listener_metadata.as_deref());
    let msg = crate::linux::seccomp::notify::process_state(pid, metadata, state);
    crate::linux::seccomp::notify::send_to_agent(path, &msg, fd.as_raw_fd())?;
    sync::send(sock, &Msg::ListenerSent)
}

/// Runs `f` (the clone of an exec'd process) on the CPUs `cpus`, if given: the child
/// inherits them and keeps them while it joins the container (`execCPUAffinity.initial`).
fn with_affinity<T>(cpus: Option<&[usize]>, f: impl FnOnce() -> Result<T>) -> Result<T> {
    let Some(cpus) = cpus else { return f() };
    let old = sched::get_affinity(0)?;
    sched::set_affinity(0, &bitmask::to_mask(cpus)).ctx("process.execCPUAffinity.initial: sched_setaffinity")?;
    let r = f();
    let _ = sched::set_affinity(0, &old);
    r
}

/// Waits until the init has something to say, or an interrupting signal arrives: then
/// an error naming it (the caller's guard kills the init and removes the cgroup).
fn wait_for_init_or_signal(sock: &UnixStream, ints: &crate::linux::signals::Interrupts) -> Result<()> {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use std::os::fd::AsFd;
    loop {
        let mut fds = [PollFd::new(sock.as_fd(), PollFlags::POLLIN), PollFd::new(ints.fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::NONE) {
            Err(nix::Error::EINTR) => continue,
            Err(e) => return Err(e).ctx("poll"),
            Ok(_) => {}
        }
        if let Some(sig) = ints.take() {
            let name = crate::linux::signals::name(sig);
            return Err(Error::interrupted(sig, format!("interrupted by {name} while the container was being created; it was removed")));
        }
        if fds[0].any().unwrap_or(false) {
            return Ok(());
        }
    }
}

/// Checks that need no process, so a bad config fails before anything exists.
fn check_before_start(spec: &Spec) -> Result<()> {
    let process = spec.process.as_ref().ok_or_else(|| Error::new("process must be set"))?;
    crate::linux::rlimits::validate(&process.rlimits)?;
    crate::linux::sysctl::validate(spec)?;
    if let Some(s) = spec.linux.as_ref().and_then(|l| l.seccomp.as_ref()) {
        crate::linux::seccomp::validate(s)?;
    }
    if let Some(c) = &process.capabilities {
        for n in crate::linux::capabilities::unknown(c) {
            crate::logging::warn(&format!("ignoring unknown or unavailable capability {n}"));
        }
    }
    if spec.namespace("mount").is_none() {
        // Without one these would change the caller's own mounts (as runc refuses them).
        let linux = spec.linux.clone().unwrap_or_default();
        if !linux.masked_paths.is_empty() || !linux.readonly_paths.is_empty() {
            return Err(Error::new("linux.maskedPaths/readonlyPaths: unable to restrict sys entries without a private MNT namespace"));
        }
        if linux.rootfs_propagation.as_deref().is_some_and(|p| !p.is_empty()) {
            return Err(Error::new("linux.rootfsPropagation needs a mount namespace: it would change the propagation of the caller's /"));
        }
    }
    if let Some(p) = process.apparmor_profile.as_deref().filter(|p| !p.is_empty()) {
        if !crate::linux::apparmor::enabled() {
            return Err(Error::new(format!("process.apparmorProfile {p:?}: AppArmor is not enabled on this host")));
        }
    }
    if process.selinux_label.as_deref().is_some_and(|l| !l.is_empty()) {
        return Err(Error::new("process.selinuxLabel is set, but SELinux is disabled or not supported"));
    }
    check_process_attrs(spec, process)?;
    crate::linux::idmap::validate(spec)?;
    exe_seal::check_pid_ns_join(spec)?;
    let userns_path = spec.namespace("user").and_then(|n| n.path.as_ref()).is_some();
    let new_pidns = spec.namespace("pid").is_some_and(|n| n.path.is_none());
    if userns_path && new_pidns {
        return Err(Error::new("joining a user namespace by path together with a new pid namespace is not supported"));
    }
    Ok(())
}

/// The process attributes create and exec share: scheduling, I/O priority, personality,
/// memory policy. A field berth cannot apply fails here, named, never ignored.
fn check_process_attrs(spec: &Spec, process: &berth_spec::Process) -> Result<()> {
    if let Some(s) = &process.scheduler {
        crate::linux::sched::validate(s)?;
    }
    if let Some(p) = &process.io_priority {
        crate::linux::ioprio::value(p)?;
    }
    if let Some(a) = &process.exec_cpu_affinity {
        crate::linux::sched::Affinity::from_spec(a)?;
    }
    let linux = spec.linux.as_ref();
    if let Some(p) = linux.and_then(|l| l.personality.as_ref()) {
        if !matches!(p.domain.as_str(), "LINUX" | "LINUX32") {
            return Err(Error::new(format!("linux.personality.domain {:?} must be LINUX or LINUX32", p.domain)));
        }
        // The spec defines no flag yet.
        if let Some(f) = p.flags.first() {
            return Err(Error::new(format!("linux.personality.flags: {f:?} is not supported (no flag is)")));
        }
    }
    if let Some(m) = linux.and_then(|l| l.memory_policy.as_ref()) {
        crate::linux::mempolicy::parse(m)?;
    }
    if let Some(l) = linux.filter(|l| !l.net_devices.is_empty()) {
        // With a user namespace joined by path, the init makes its network namespace
        // itself, after the parent would have moved the devices.
        if spec.namespace("user").is_some_and(|n| n.path.is_some()) {
            return Err(Error::new("linux.netDevices together with a user namespace joined by path is not supported"));
        }
        crate::linux::netdev::validate(&l.net_devices, spec.namespace("network").is_some())?;
    }
    if linux.is_some_and(|l| l.intel_rdt.is_some()) {
        // Intel RDT is set up through the resctrl filesystem; berth does not drive it yet.
        let mounted = std::fs::read_to_string("/proc/self/mounts").is_ok_and(|m| m.lines().any(|l| l.split_whitespace().nth(2) == Some("resctrl")));
        if !mounted {
            return Err(Error::new("linux.intelRdt: this host has no resctrl filesystem mounted (Intel RDT needs it at /sys/fs/resctrl)"));
        }
        return Err(Error::new("linux.intelRdt is not supported by berth"));
    }
    Ok(())
}

/// The fifo `start` writes to; the init holds its read end and execs once a byte arrives.
fn make_exec_fifo(dir: &Path) -> Result<OwnedFd> {
    use nix::fcntl::OFlag;
    use nix::sys::stat::Mode;
    let path = dir.join("exec.fifo");
    nix::unistd::mkfifo(&path, Mode::from_bits_truncate(0o622)).ctx("mkfifo exec.fifo")?;
    nix::fcntl::open(&path, OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC, Mode::empty()).ctx("open exec.fifo")
}

/// Namespaces created by clone: every new one except cgroup (the init unshares it once
/// it is in its cgroup) and time (set up by the parent before clone).
fn clone_flags(spec: &Spec) -> CloneFlags {
    let mut f = CloneFlags::empty();
    let Some(linux) = &spec.linux else { return f };
    let userns_path = spec.namespace("user").and_then(|n| n.path.as_ref()).is_some();
    for ns in &linux.namespaces {
        if ns.path.is_some() || matches!(ns.typ.as_str(), "cgroup" | "time") {
            continue;
        }
        // Joining a user namespace by path: the init joins it, then unshares the rest.
        if userns_path && ns.typ != "pid" {
            continue;
        }
        f |= namespaces::clone_flag(&ns.typ);
    }
    f
}

/// pid namespaces joined by path and new time namespaces take effect for children only:
/// switch this process's "for children" namespaces around the clone, then switch back.
fn with_parent_side_namespaces<T>(spec: &Spec, f: impl FnOnce() -> Result<T>) -> Result<T> {
    let pid_path = spec.namespace("pid").and_then(|n| n.path.clone());
    let time = spec.namespace("time").cloned();
    let mut restore: Vec<(OwnedFd, &str)> = Vec::new();
    if let Some(p) = &pid_path {
        restore.push((namespaces::open("/proc/self/ns/pid")?, "pid"));
        let fd = namespaces::open(p)?;
        namespaces::join(&fd, "pid", p)?;
    }
    if let Some(t) = &time {
        restore.push((namespaces::open("/proc/self/ns/time")?, "time"));
        match &t.path {
            Some(p) => namespaces::join(&namespaces::open(p)?, "time", p)?,
            None => {
                nix::sched::unshare(namespaces::clone_flag("time")).ctx("unshare time namespace")?;
                let offs = spec.linux.as_ref().map(|l| &l.time_offsets);
                let mut text = String::new();
                for (clock, o) in offs.into_iter().flatten() {
                    text.push_str(&format!("{clock} {} {}\n", o.secs, o.nanosecs));
                }
                if !text.is_empty() {
                    std::fs::write("/proc/self/timens_offsets", text).ctx("linux.timeOffsets: write timens_offsets")?;
                }
            }
        }
    }
    let r = f();
    for (fd, typ) in restore {
        let _ = nix::sched::setns(&fd, namespaces::clone_flag(typ));
    }
    r
}

/// What the cloned child runs: berth's init code as it is (create, when nothing in the
/// container can reach it) or a sealed copy of berth exec'd as `berth init`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum InitImage {
    InProcess,
    Sealed,
}

/// What the cloned child gets from its parent.
struct ChildSetup<'a> {
    /// The init's end of the sync socket.
    sock: &'a UnixStream,
    /// Fds the child keeps (the socket, exec fifo, console socket, `join`).
    keep: &'a [i32],
    /// Cgroup files the child writes itself into, first thing (cgroups::join_self).
    join: &'a [i32],
    /// A new user namespace: wait for the parent's id maps and become root in it.
    wait_for_maps: bool,
    preserve_fds: u32,
}

/// Clones a child (into new namespaces per `flags`) that becomes the init. In a new
/// user namespace the child first waits for the parent to write its id maps and
/// becomes root there: execve as an unmapped uid would drop all its capabilities.
/// Every fd above stdio and the `preserve_fds` the caller passes on, other than `keep`,
/// is closed (in process) or close-on-exec (sealed), so the waiting init holds none of
/// the caller's files.
fn clone_init(flags: CloneFlags, c: &ChildSetup, image: InitImage) -> Result<i32> {
    let sock = c.sock.as_raw_fd();
    if image == InitImage::InProcess {
        let pid = raw_clone(flags)?;
        if pid == 0 {
            run_init_in_child(c);
        }
        return Ok(pid);
    }
    let exe = exe_seal::sealed_copy_of_self()?;
    let argv = [c"berth".to_owned(), c"init".to_owned()];
    let envp = [CString::new(format!("{INIT_SOCK_ENV}={sock}")).expect("no NUL")];
    let argv_p: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).chain(std::iter::once(std::ptr::null())).collect();
    let envp_p: Vec<*const libc::c_char> = envp.iter().map(|a| a.as_ptr()).chain(std::iter::once(std::ptr::null())).collect();
    let pid = raw_clone(flags)?;
    if pid == 0 {
        // In the child: only async-signal-safe calls until execveat.
        die_with_parent();
        crate::linux::signals::unblock_interrupts_in_child();
        if !cgroups::join_self(c.join) {
            // SAFETY: _exit with an integer; the parent reports the status.
            unsafe { libc::_exit(JOIN_FAILED) };
        }
        fds::cloexec_from(3 + c.preserve_fds);
        for &fd in c.keep {
            fds::set_cloexec(fd, false);
        }
        if c.wait_for_maps {
            become_root_after_maps(sock);
            // A change of uid clears the parent-death signal.
            die_with_parent();
        }
        exec_fd(exe.as_raw_fd(), &argv_p, &envp_p);
    }
    Ok(pid)
}

/// The exit status of a child that could not move itself into its cgroup.
const JOIN_FAILED: i32 = 124;

/// The cloned child as the init, without exec. berth is single-threaded at clone, so
/// its copy of memory (allocator included) is consistent and ordinary code may run.
/// The parent's objects in that copy are never dropped here: the child leaves by _exit.
fn run_init_in_child(c: &ChildSetup) -> ! {
    die_with_parent();
    crate::linux::signals::unblock_interrupts_in_child();
    // First, before anything in the container could exist: no /proc/<pid>/exe for others.
    exe_seal::make_non_dumpable();
    if !cgroups::join_self(c.join) {
        // SAFETY: _exit with an integer; the parent reports the status.
        unsafe { libc::_exit(JOIN_FAILED) };
    }
    fds::close_from_except(3 + c.preserve_fds, c.keep);
    crate::logging::detach_from_file();
    // SAFETY: PR_SET_NAME with a NUL-terminated name of at most 16 bytes.
    // (exe_seal::IN_PROCESS_INIT_NAME, which exe_seal::check_pid_ns_join looks for.)
    unsafe { libc::prctl(libc::PR_SET_NAME, c"berth:init".as_ptr(), 0, 0, 0) };
    if c.wait_for_maps {
        become_root_after_maps(c.sock.as_raw_fd());
        die_with_parent();
    }
    let code = crate::init::run_with_sock(c.sock.as_raw_fd());
    // SAFETY: _exit ends the child without running the parent's exit handlers.
    unsafe { libc::_exit(code) }
}

/// Until it is set up, the init (or exec'd process) is SIGKILLed when the berth that
/// cloned it dies: an engine that kills create on a timeout leaves no half-built
/// container running (the init checks, once it runs, that its parent had not died
/// before this). Cleared again by [`outlive_parent`]; also cleared by the kernel
/// whenever the uid changes, so it is set again after one. Only prctl(2): safe between
/// clone and exec, and it survives the exec of the sealed berth.
pub fn die_with_parent() {
    // SAFETY: prctl with integer arguments only.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0, 0, 0) };
}

/// The init is ready: from now on it belongs to the container, not to the command that
/// made it (`create` exits; state.json names the init for every later command).
pub fn outlive_parent() {
    // SAFETY: prctl with integer arguments only.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, 0 as libc::c_ulong, 0, 0, 0) };
}

/// Whether the other end of the sync socket is closed: the parent died, maybe before
/// [`die_with_parent`] took effect.
pub fn parent_gone(sock: i32) -> bool {
    let mut p = libc::pollfd { fd: sock, events: libc::POLLRDHUP, revents: 0 };
    // SAFETY: poll on one pollfd, without waiting.
    let n = unsafe { libc::poll(&mut p, 1, 0) };
    n > 0 && p.revents & (libc::POLLHUP | libc::POLLRDHUP) != 0
}

/// clone(2) like fork, with namespace flags. Returns 0 in the child.
pub(crate) fn raw_clone(flags: CloneFlags) -> Result<i32> {
    // SAFETY: a fork-style clone (no new stack: the child gets a copy-on-write copy of
    // ours). berth is single-threaded here, so the child's copy of memory is consistent.
    let r = unsafe { libc::syscall(libc::SYS_clone, flags.bits() as libc::c_ulong | libc::SIGCHLD as libc::c_ulong, 0usize, 0usize, 0usize, 0usize) };
    if r < 0 {
        return Err(std::io::Error::last_os_error()).ctx("clone container init");
    }
    Ok(r as i32)
}

/// In the cloned child: wait for the parent's byte, then setresgid/setresuid to 0 in the
/// new user namespace. Exits the child if either fails (the parent then sees EOF).
fn become_root_after_maps(sock: i32) {
    let mut b = 0u8;
    // SAFETY: read into a one-byte buffer; setres[ug]id and _exit take integers. All are
    // async-signal-safe, as required between clone and exec.
    unsafe {
        if libc::read(sock, &mut b as *mut u8 as *mut libc::c_void, 1) != 1 {
            libc::_exit(126);
        }
        if libc::setresgid(0, 0, 0) != 0 || libc::setresuid(0, 0, 0) != 0 {
            libc::_exit(125);
        }
    }
}

/// execveat(fd, "", AT_EMPTY_PATH): run the sealed berth copy. Never returns.
fn exec_fd(fd: i32, argv: &[*const libc::c_char], envp: &[*const libc::c_char]) -> ! {
    // SAFETY: argv and envp are NULL-terminated arrays of C strings that outlive the call.
    unsafe {
        libc::syscall(libc::SYS_execveat, fd, c"".as_ptr(), argv.as_ptr(), envp.as_ptr(), libc::AT_EMPTY_PATH);
        libc::_exit(127);
    }
}

/// What only the parent can do for the init: id maps, OOM score, network devices.
fn setup_from_parent(req: &SpawnRequest, pid: i32) -> Result<()> {
    let spec = &req.bundle.spec;
    if spec.namespace("user").is_some_and(|n| n.path.is_none()) {
        let linux = spec.linux.as_ref();
        write_id_map(pid, "uid_map", linux.map_or(&[], |l| &l.uid_mappings))?;
        write_id_map(pid, "gid_map", linux.map_or(&[], |l| &l.gid_mappings))?;
    }
    if let Some(adj) = spec.process.as_ref().and_then(|p| p.oom_score_adj) {
        std::fs::write(format!("/proc/{pid}/oom_score_adj"), adj.to_string()).ctx("process.oomScoreAdj: write oom_score_adj")?;
    }
    if let Some(l) = spec.linux.as_ref().filter(|l| !l.net_devices.is_empty()) {
        let ns = spec.namespace("network").and_then(|n| n.path.clone()).unwrap_or_else(|| format!("/proc/{pid}/ns/net"));
        crate::linux::netdev::move_all(&l.net_devices, &ns)?;
    }
    Ok(())
}

pub(crate) fn write_id_map(pid: i32, file: &str, maps: &[berth_spec::IdMapping]) -> Result<()> {
    if maps.is_empty() {
        return Ok(());
    }
    let text: String = maps.iter().map(|m| format!("{} {} {}\n", m.container_id, m.host_id, m.size)).collect();
    std::fs::write(format!("/proc/{pid}/{file}"), text).with_ctx(|| format!("write {file}"))
}

/// How a child that is gone ended, for the error message.
fn describe_exit(pid: i32) -> String {
    use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
    match waitpid(nix::unistd::Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG)) {
        Ok(WaitStatus::Exited(_, JOIN_FAILED)) => "it could not move itself into its cgroup".into(),
        Ok(WaitStatus::Exited(_, c)) => format!("exit status {c}"),
        Ok(WaitStatus::Signaled(_, s, _)) => format!("killed by signal {}", s as i32),
        _ => "no status".into(),
    }
}

/// Kills and reaps the init, and removes its cgroup and rootfs bind in the caller's mount
/// namespace, unless the spawn succeeded.
struct ChildGuard {
    pid: i32,
    cgroup: Option<Box<dyn cgroups::Manager>>,
    host_root: Option<(std::path::PathBuf, u64)>,
}

impl ChildGuard {
    fn disarm(&mut self) {
        self.pid = 0;
        self.cgroup = None;
        self.host_root = None;
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if self.pid > 0 {
            let p = nix::unistd::Pid::from_raw(self.pid);
            let _ = nix::sys::signal::kill(p, nix::sys::signal::Signal::SIGKILL);
            let _ = nix::sys::wait::waitpid(p, None);
        }
        if let Some(cg) = self.cgroup.take() {
            let _ = cg.destroy();
        }
        if let Some((root, id)) = self.host_root.take() {
            let _ = crate::linux::rootfs::unbind_root_in_host(&root, id);
        }
    }
}

/// The fields of `state.json` create writes once the init is ready.
pub fn saved_state(req: &SpawnRequest, s: &Spawned, owned_files: Vec<String>) -> Saved {
    Saved {
        id: req.id.to_string(),
        pid: s.pid,
        start_time: s.start_time,
        bundle: req.bundle.dir.to_string_lossy().into_owned(),
        rootfs: req.bundle.rootfs().to_string_lossy().into_owned(),
        created: crate::logging::rfc3339_now(),
        annotations: req.bundle.spec.annotations.clone(),
        cgroup: s.cgroup.clone(),
        own_pid_ns: req.bundle.spec.namespace("pid").is_some_and(|n| n.path.is_none()),
        creating: false,
        owned_files,
        host_root_mount: s.host_root_mount,
    }
}
