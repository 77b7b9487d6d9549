//! `berth create [--bundle DIR] [--pid-file F] [--console-socket S] [--no-pivot]
//! [--no-new-keyring] [--preserve-fds N] ID`

use super::args::{self, flag, opt, Flag};
use super::Global;
use crate::container::{Container, Saved};
use crate::error::{Context, Error, Result};
use crate::linux::signals::Interrupts;
use crate::linux::tty;
use crate::spawn::{self, SpawnRequest, Spawned};
use std::os::unix::net::UnixStream;
use std::path::Path;

pub const FLAGS: &[Flag] = &[
    opt(&["bundle", "b"]),
    opt(&["console-socket"]),
    opt(&["pid-file"]),
    flag(&["no-pivot"]),
    flag(&["no-new-keyring"]),
    opt(&["preserve-fds"]),
    flag(&["detach", "d"]),
    flag(&["keep"]),
    flag(&["no-subreaper"]),
];

pub struct CreateOpts {
    pub id: String,
    pub bundle: String,
    pub pid_file: Option<String>,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    pub preserve_fds: u32,
    pub console_socket: Option<String>,
    /// `run` in the foreground relays a terminal itself when no console socket is given.
    pub foreground: bool,
    /// `run`: started as soon as it is created.
    pub starts_now: bool,
}

pub fn parse(a: &[String], cmd: &str) -> Result<(CreateOpts, args::Parsed)> {
    let p = args::parse(a, FLAGS, false)?;
    let id = super::require_id(&p, cmd)?;
    let preserve_fds = match p.get("preserve-fds") {
        Some(v) => v.parse().map_err(|_| Error::new(format!("--preserve-fds: invalid number {v:?}")))?,
        None => 0,
    };
    let o = CreateOpts {
        id,
        bundle: p.get("bundle").unwrap_or(".").to_string(),
        pid_file: p.get("pid-file").map(String::from),
        no_pivot: p.has("no-pivot"),
        no_new_keyring: p.has("no-new-keyring"),
        preserve_fds,
        console_socket: p.get("console-socket").map(String::from),
        foreground: cmd == "run" && !p.has("detach"),
        starts_now: cmd == "run",
    };
    Ok((o, p))
}

pub fn main(g: &Global, a: &[String]) -> Result<()> {
    let (o, _) = parse(a, "create")?;
    create(g, &o).map(|_| ())
}

/// Where the pty master goes: the caller's console socket, or (foreground `run`) our
/// end of a socketpair, returned so `run` can relay the terminal.
fn console_for(o: &CreateOpts, terminal: bool) -> Result<(Option<UnixStream>, Option<UnixStream>)> {
    match (terminal, &o.console_socket) {
        (true, Some(path)) => Ok((Some(tty::connect_console_socket(path)?), None)),
        (true, None) if o.foreground => {
            let (ours, theirs) = UnixStream::pair().ctx("socketpair")?;
            Ok((Some(theirs), Some(ours)))
        }
        (true, None) => Err(Error::new("cannot allocate tty if berth will detach without setting console socket")),
        (false, Some(_)) => Err(Error::new("cannot use console socket if berth will not detach or allocate tty")),
        (false, None) => Ok((None, None)),
    }
}

/// Creates the container; on any failure nothing of it is left behind. Returns our end
/// of the terminal socket when `run` must relay the terminal itself.
///
/// SIGINT, SIGTERM, SIGHUP and SIGQUIT stay blocked from here on: one that comes while
/// the init is being set up aborts the create, which removes what it made (the error
/// makes berth exit 128+signal); `run` passes later ones on to the container. A SIGKILL
/// cannot be caught: for that, state.json records everything as it is made (see
/// container.rs) and the init dies with us until it is ready.
pub fn create(g: &Global, o: &CreateOpts) -> Result<(Container, Option<UnixStream>)> {
    let interrupts = Interrupts::block()?;
    let mut bundle = berth_spec::load_bundle(Path::new(&o.bundle))?;
    let mut preserve_fds = o.preserve_fds;
    if let Some(n) = socket_activation_fds() {
        // systemd socket activation: pass the listening sockets (fds 3..3+n) on, as runc does.
        preserve_fds = preserve_fds.max(n);
        if let Some(p) = bundle.spec.process.as_mut() {
            p.env.push(format!("LISTEN_FDS={n}"));
            p.env.push("LISTEN_PID=1".into());
        }
    }
    crate::linux::fds::check_passed(preserve_fds)?;
    let owned_files = owned_files()?;
    let terminal = bundle.spec.process.as_ref().is_some_and(|p| p.terminal);
    let (console, relay) = console_for(o, terminal)?;
    let (dir, lock) = Container::create_dir(&g.root, &o.id)?;
    let mut record = Container::from_parts(&o.id, dir.clone(), first_record(&o.id, &bundle, owned_files.clone()), lock);
    let result = (|| -> Result<Spawned> {
        // The supervisor's files go on record before anything else (without them, the
        // first record is spawn's, before it makes the cgroup).
        if !record.saved.owned_files.is_empty() {
            record.save()?;
        }
        std::fs::write(dir.join("config.json"), &bundle.raw).ctx("save config.json")?;
        let req = SpawnRequest {
            id: &o.id,
            bundle: &bundle,
            state_dir: &dir,
            no_pivot: o.no_pivot,
            no_new_keyring: o.no_new_keyring,
            preserve_fds,
            systemd_cgroup: g.systemd_cgroup,
            console: console.as_ref(),
            starts_now: o.starts_now,
            interrupts: Some(&interrupts),
        };
        let spawned = spawn::spawn_init(&req, &mut record)?;
        crate::logging::debug(&format!("container {} created: init pid {} from bundle {}", o.id, spawned.pid, bundle.dir.display()));
        let created = std::mem::take(&mut record.saved.created);
        record.saved = spawn::saved_state(&req, &spawned, owned_files);
        record.saved.created = created;
        Ok(spawned)
    })();
    let spawned = match result {
        Ok(s) => s,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&dir);
            // The record that named them is gone: a supervisor that died meanwhile (its
            // console socket refused us) would leave them for good.
            crate::container::remove_stale_files(&record.saved.owned_files);
            return Err(e);
        }
    };
    let saved = (|| -> Result<()> {
        record.save()?;
        if let Some(f) = &o.pid_file {
            write_pid_file(f, spawned.pid)?;
        }
        Ok(())
    })();
    if let Err(e) = saved {
        record.kill_and_cleanup();
        let _ = std::fs::remove_dir_all(&dir);
        return Err(e);
    }
    Ok((record, relay))
}

/// The record create writes first: the container as far as the bundle says, marked
/// creating (spawn adds the cgroup, then the init).
pub(crate) fn first_record(id: &str, bundle: &berth_spec::Bundle, owned_files: Vec<String>) -> Saved {
    Saved {
        id: id.to_string(),
        pid: 0,
        start_time: 0,
        bundle: bundle.dir.to_string_lossy().into_owned(),
        rootfs: bundle.rootfs().to_string_lossy().into_owned(),
        created: crate::logging::rfc3339_now(),
        annotations: bundle.spec.annotations.clone(),
        cgroup: Default::default(),
        own_pid_ns: bundle.spec.namespace("pid").is_some_and(|n| n.path.is_none()),
        creating: true,
        owned_files,
        host_root_mount: None,
    }
}

/// `BERTH_OWNED_FILES`: absolute paths, one per line, of files the caller (berth-shim)
/// made for this container and may not live to remove (its attach and console sockets,
/// its temporary pid file). Delete removes those still there and no longer served.
fn owned_files() -> Result<Vec<String>> {
    let Some(v) = std::env::var_os(OWNED_FILES_ENV) else { return Ok(Vec::new()) };
    let v = v.into_string().map_err(|_| Error::new(format!("{OWNED_FILES_ENV}: not valid UTF-8")))?;
    let files: Vec<String> = v.lines().filter(|l| !l.is_empty()).map(String::from).collect();
    if let Some(bad) = files.iter().find(|f| !f.starts_with('/')) {
        return Err(Error::new(format!("{OWNED_FILES_ENV}: {bad:?} is not an absolute path")));
    }
    Ok(files)
}

/// The environment variable that names a supervisor's files (see [`owned_files`]).
pub const OWNED_FILES_ENV: &str = "BERTH_OWNED_FILES";

/// LISTEN_FDS meant for this process (LISTEN_PID unset or ours).
fn socket_activation_fds() -> Option<u32> {
    let n: u32 = std::env::var("LISTEN_FDS").ok()?.parse().ok().filter(|n| *n > 0)?;
    match std::env::var("LISTEN_PID") {
        Ok(p) if p != std::process::id().to_string() => None,
        _ => Some(n),
    }
}

/// Writes the pid file atomically: engines poll for it and must never read half a pid.
pub fn write_pid_file(path: &str, pid: i32) -> Result<()> {
    let p = Path::new(path);
    let tmp = p.with_file_name(format!(".{}.tmp", p.file_name().and_then(|n| n.to_str()).unwrap_or("pid")));
    std::fs::write(&tmp, pid.to_string()).with_ctx(|| format!("write pid file {path}"))?;
    std::fs::rename(&tmp, p).with_ctx(|| format!("write pid file {path}"))
}
