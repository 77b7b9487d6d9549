//! RUN: a container made from the stage's config (env, user, workdir; the command
//! already has the shell prepended) on the overlay merged dir, run through berth-shim
//! ([`shim`]), with the `RUN --mount`s prepared by [`mounts`].
//!
//! The container gets Docker's default capabilities for a build step (chown, setuid,
//! mknod, ...), `noNewPrivileges` off, no terminal, stdin on /dev/null. Network `host`
//! keeps the host's network namespace (with a copy of the host's /etc/resolv.conf and a
//! small /etc/hosts bound in); `none` gives it a new one with only loopback.
//!
//! Mount points the runtime has to create in the rootfs (a RUN --mount target that did
//! not exist, /proc in an image without it, ...) would end up in the step's layer: they
//! are recorded before the run ([`Stubs::record`]) and removed from the upper dir after
//! ([`Stubs::remove_from`]) when they are still empty, as BuildKit does.

pub mod mounts;
pub mod settings;
pub mod shim;

use crate::error::Context as _;
use std::path::{Path, PathBuf};

use berth_spec::config::Mount;
use berth_spec::image::{runtime_spec, ImageConfig, NetworkMode, RuntimeOptions, DOCKER_DEFAULT_CAPS};

pub use shim::{Finished, RunFiles, Tools};

use crate::rootfs::{clean_abs, secure_join};

/// One RUN to execute.
pub struct RunRequest<'a> {
    /// Container id (unique per build step).
    pub id: String,
    /// The rootfs: the overlay merged dir.
    pub rootfs: &'a Path,
    /// A per-run directory for the bundle and the shim's files.
    pub run_dir: &'a Path,
    /// A directory with a short path for the attach socket.
    pub socket_dir: &'a Path,
    /// The stage's config (Env, User, WorkingDir).
    pub image: &'a ImageConfig,
    /// The command (shell form already expanded to `shell + [text]`).
    pub argv: Vec<String>,
    /// `KEY=VALUE` besides the image's Env (ARGs, proxy args, secret envs); an image
    /// Env of the same name wins, as in Docker.
    pub extra_env: Vec<String>,
    pub network: NetworkMode,
    /// The RUN --mount mounts, ready for config.json.
    pub mounts: Vec<Mount>,
    /// `--add-host`, `--shm-size`, `--ulimit`, `--cgroup-parent`.
    pub settings: &'a settings::RunSettings,
}

/// The runtime's default mounts (runc's default config): their destinations may need
/// creating in a bare rootfs.
const DEFAULT_MOUNT_POINTS: &[&str] = &["/proc", "/dev", "/sys"];

/// Runs the container; output goes to `on_output`.
pub fn run(tools: &Tools, req: &RunRequest, stubs: &mut Stubs, on_output: &mut dyn FnMut(u8, &[u8])) -> crate::Result<Finished> {
    let bundle = req.run_dir.join("bundle");
    std::fs::create_dir_all(&bundle).with_context(|| format!("create {}", bundle.display()))?;

    let mut image_env: Vec<String> = req.image.container_config().env;
    let keys: std::collections::HashSet<&str> = image_env.iter().map(|kv| kv.split('=').next().unwrap_or("")).collect();
    let extra: Vec<String> = req.extra_env.iter().filter(|kv| !keys.contains(kv.split('=').next().unwrap_or(""))).cloned().collect();
    image_env.extend(extra);
    let mut image = req.image.clone();
    let mut cc = image.container_config();
    cc.env = image_env;
    image.config = Some(cc);

    let opts = RuntimeOptions {
        root_path: Some(req.rootfs.to_string_lossy().into_owned()),
        args: Some(req.argv.clone()),
        entrypoint: Some(Vec::new()),
        network: req.network,
        hostname: Some("berth-build".into()),
        capabilities: Some(DOCKER_DEFAULT_CAPS.iter().map(|s| s.to_string()).collect()),
        no_new_privileges: Some(false),
        ..Default::default()
    };
    let mut spec = runtime_spec(&image, req.rootfs, &opts)?;
    spec.annotations.clear();
    req.settings.apply(&mut spec, &req.id);

    let mut mounts = req.mounts.clone();
    // Network none has no /etc/hosts of ours unless --add-host asks for lines in it.
    let mut binds = Vec::new();
    if req.network == NetworkMode::Host || !req.settings.add_hosts.is_empty() {
        let hosts = req.run_dir.join("hosts");
        let text = format!("127.0.0.1\tlocalhost berth-build\n::1\tlocalhost ip6-localhost ip6-loopback\n{}", req.settings.hosts_lines());
        std::fs::write(&hosts, text).with_context(|| format!("write {}", hosts.display()))?;
        binds.push((hosts, "/etc/hosts"));
    }
    if req.network == NetworkMode::Host {
        let resolv = req.run_dir.join("resolv.conf");
        let host_resolv = std::fs::read("/etc/resolv.conf").unwrap_or_default();
        std::fs::write(&resolv, host_resolv).with_context(|| format!("write {}", resolv.display()))?;
        binds.push((resolv, "/etc/resolv.conf"));
    }
    for (src, dst) in binds {
        mounts.push(Mount {
            destination: dst.into(),
            typ: Some("bind".into()),
            source: Some(src.to_string_lossy().into_owned()),
            options: vec!["rbind".into(), "rprivate".into()],
            uid_mappings: Vec::new(),
            gid_mappings: Vec::new(),
        });
    }
    for p in DEFAULT_MOUNT_POINTS {
        stubs.record(req.rootfs, p);
    }
    for m in &mounts {
        if !m.destination.starts_with("/dev/") {
            stubs.record(req.rootfs, &m.destination);
        }
    }
    spec.mounts.extend(mounts);

    let config = serde_json::to_vec_pretty(&spec)?;
    std::fs::write(bundle.join("config.json"), config).context("write config.json")?;
    let files = RunFiles {
        bundle: bundle.clone(),
        socket: req.socket_dir.join(format!("{}.sock", short_name(&req.id))),
        exit_file: req.run_dir.join("exit"),
        log: req.run_dir.join("log"),
        shim_pid: req.run_dir.join("shim.pid"),
        container_pid: req.run_dir.join("container.pid"),
    };
    let r = shim::run(tools, &req.id, &files, on_output);
    let _ = std::fs::remove_file(&files.socket);
    r
}

fn short_name(id: &str) -> String {
    id.rsplit('-').next().unwrap_or(id).to_string()
}

/// The log of a run (when the live output was incomplete).
pub fn run_log(run_dir: &Path) -> String {
    shim::read_log(&run_dir.join("log"))
}

/// One stream of [`run_log`].
pub fn run_log_stream(run_dir: &Path, stream: &str) -> String {
    shim::read_log_stream(&run_dir.join("log"), stream)
}

/// (mode, uid, gid) of a directory.
type Owner = (u32, u32, u32);

/// Mount points that did not exist in the rootfs before a run.
#[derive(Debug, Default)]
pub struct Stubs {
    /// For each mount point: the chain of components that were missing (the deepest
    /// last), relative to the rootfs.
    missing: Vec<Vec<PathBuf>>,
    /// The directories above them that existed, with (mode, uid, gid) before the run
    /// (the deepest last): creating a stub copies them up into the upper dir.
    existing: Vec<Vec<(PathBuf, Owner)>>,
}

impl Stubs {
    /// Notes which components of `dest` (resolved inside `rootfs`) are missing now.
    pub fn record(&mut self, rootfs: &Path, dest: &str) {
        use std::os::unix::fs::MetadataExt;
        let Ok(resolved) = secure_join(rootfs, &clean_abs(dest), true) else { return };
        let Ok(rel) = resolved.strip_prefix(rootfs) else { return };
        let mut chain = Vec::new();
        let mut above = Vec::new();
        let mut cur = PathBuf::new();
        for c in rel.components() {
            cur.push(c);
            if chain.is_empty() {
                if let Ok(md) = std::fs::symlink_metadata(rootfs.join(&cur)) {
                    if md.is_dir() {
                        above.push((cur.clone(), (md.mode(), md.uid(), md.gid())));
                    }
                    continue;
                }
            }
            chain.push(cur.clone());
        }
        if !chain.is_empty() {
            self.missing.push(chain);
            self.existing.push(above);
        }
    }

    /// Removes the stubs from `upper` (after the overlay is unmounted): the deepest first,
    /// each only while it is an empty directory or an empty regular file; then the
    /// directories above them that were only copied up for them (empty, unchanged mode
    /// and owner, not opaque).
    pub fn remove_from(&self, upper: &Path) {
        use std::os::unix::fs::MetadataExt;
        for (chain, above) in self.missing.iter().zip(&self.existing) {
            let mut all = true;
            for p in chain.iter().rev() {
                let full = upper.join(p);
                let Ok(md) = std::fs::symlink_metadata(&full) else { continue };
                let removed = if md.is_dir() {
                    std::fs::remove_dir(&full).is_ok()
                } else if md.is_file() && md.len() == 0 {
                    std::fs::remove_file(&full).is_ok()
                } else {
                    false
                };
                if !removed {
                    all = false;
                    break;
                }
            }
            if !all {
                continue;
            }
            for (p, (mode, uid, gid)) in above.iter().rev() {
                let full = upper.join(p);
                let Ok(md) = std::fs::symlink_metadata(&full) else { continue };
                let unchanged = md.is_dir() && (md.mode(), md.uid(), md.gid()) == (*mode, *uid, *gid);
                if !unchanged || is_opaque(&full) || std::fs::remove_dir(&full).is_err() {
                    break;
                }
            }
        }
    }
}

fn is_opaque(p: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c) = std::ffi::CString::new(p.as_os_str().as_bytes()) else { return true };
    let mut buf = [0u8; 4];
    for name in [c"trusted.overlay.opaque", c"user.overlay.opaque"] {
        // SAFETY: lgetxattr into a small buffer with a valid path and name.
        let n = unsafe { libc::lgetxattr(c.as_ptr(), name.as_ptr(), buf.as_mut_ptr() as *mut libc::c_void, buf.len()) };
        if n >= 0 {
            return true;
        }
    }
    false
}
