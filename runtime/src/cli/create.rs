//! `berth create [--bundle DIR] [--pid-file F] [--console-socket S] [--no-pivot]
//! [--no-new-keyring] [--preserve-fds N] ID`

use super::args::{self, flag, opt, Flag};
use super::Global;
use crate::container::Container;
use crate::error::{Context, Error, Result};
use crate::spawn::{self, SpawnRequest};
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
}

pub fn parse(a: &[String], cmd: &str) -> Result<(CreateOpts, args::Parsed)> {
    let p = args::parse(a, FLAGS, false)?;
    let id = super::require_id(&p, cmd)?;
    if p.get("console-socket").is_some() {
        return Err(Error::new("--console-socket is not supported by berth yet"));
    }
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
    };
    Ok((o, p))
}

pub fn main(g: &Global, a: &[String]) -> Result<()> {
    let (o, _) = parse(a, "create")?;
    create(g, &o).map(|_| ())
}

/// Creates the container; on any failure nothing of it is left behind.
pub fn create(g: &Global, o: &CreateOpts) -> Result<Container> {
    let bundle = berth_spec::load_bundle(Path::new(&o.bundle))?;
    let (dir, lock) = Container::create_dir(&g.root, &o.id)?;
    let result = (|| -> Result<Container> {
        std::fs::write(dir.join("config.json"), &bundle.raw).ctx("save config.json")?;
        let req = SpawnRequest {
            id: &o.id,
            bundle: &bundle,
            state_dir: &dir,
            no_pivot: o.no_pivot,
            no_new_keyring: o.no_new_keyring,
            preserve_fds: o.preserve_fds,
            systemd_cgroup: g.systemd_cgroup,
        };
        let spawned = spawn::spawn_init(&req)?;
        let c = Container::from_parts(&o.id, dir.clone(), spawn::saved_state(&req, &spawned), lock);
        let saved = (|| -> Result<()> {
            c.save()?;
            if let Some(f) = &o.pid_file {
                write_pid_file(f, spawned.pid)?;
            }
            Ok(())
        })();
        if let Err(e) = saved {
            c.kill_and_cleanup();
            return Err(e);
        }
        Ok(c)
    })();
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    result
}

/// Writes the pid file atomically: engines poll for it and must never read half a pid.
pub fn write_pid_file(path: &str, pid: i32) -> Result<()> {
    let p = Path::new(path);
    let tmp = p.with_file_name(format!(".{}.tmp", p.file_name().and_then(|n| n.to_str()).unwrap_or("pid")));
    std::fs::write(&tmp, pid.to_string()).with_ctx(|| format!("write pid file {path}"))?;
    std::fs::rename(&tmp, p).with_ctx(|| format!("write pid file {path}"))
}
