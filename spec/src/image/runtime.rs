//! Image config -> runtime config, as umoci (`umoci unpack`) and containerd
//! (`oci.WithImageConfig`) convert them:
//!
//! - the base is runc's default config ([`crate::default_config::default_spec_json`]`(false)`)
//!   with `root.readonly = false` and `process.terminal = false` (or the override);
//! - `process.args` = Entrypoint + Cmd; an args override replaces Cmd (as `docker run IMAGE
//!   ARGS`), an entrypoint override replaces Entrypoint and drops the image's Cmd;
//! - `process.env` = the image's Env (PATH added if missing, as Docker does), then the
//!   overrides (same key replaces), then HOME from the user's passwd entry if still unset,
//!   and TERM=xterm with a terminal;
//! - `process.cwd` = WorkingDir (or the override), "/" if empty;
//! - `process.user` from `User` ("name", "uid", "name:group", "uid:gid", ...) resolved
//!   against the rootfs' /etc/passwd and /etc/group, with runc's rules: numeric ids pass
//!   through even without an entry; a name must exist; without a group, the primary gid
//!   is the passwd entry's and the supplementary gids are the /etc/group memberships;
//! - network mode `host` drops the network namespace, `none` keeps it (loopback only);
//! - Labels, and the image's stop signal, ports, os, architecture, author and creation
//!   time become annotations, as umoci writes them.

use super::types::ImageConfig;
use crate::config::{Namespace, Spec};
use crate::rootfs_path::{clean_abs, read_in_rootfs};
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// The PATH Docker gives a container whose image sets none.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Docker's (and containerd's) default capability set. runc's default config, which the
/// conversion starts from, has only AUDIT_WRITE, KILL and NET_BIND_SERVICE: a builder's
/// RUN steps usually need these (chown, setuid, mknod, ...), so the executor passes them
/// in [`RuntimeOptions::capabilities`].
pub const DOCKER_DEFAULT_CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageError(pub String);

impl fmt::Display for ImageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ImageError {}

/// Whether the container gets its own network namespace.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum NetworkMode {
    /// Its own, empty network namespace (only loopback): the default.
    #[default]
    None,
    /// The host's network namespace (no `network` entry in linux.namespaces).
    Host,
}

impl std::str::FromStr for NetworkMode {
    type Err = ImageError;
    fn from_str(s: &str) -> Result<NetworkMode, ImageError> {
        match s {
            "none" => Ok(NetworkMode::None),
            "host" => Ok(NetworkMode::Host),
            _ => Err(ImageError(format!("network mode {s:?}: want host or none"))),
        }
    }
}

/// What the caller changes over the image's config.
#[derive(Debug, Clone, Default)]
pub struct RuntimeOptions {
    /// `root.path` in the config; default: the rootfs path given.
    pub root_path: Option<String>,
    /// Replaces the image's Cmd.
    pub args: Option<Vec<String>>,
    /// Replaces the image's Entrypoint (and drops its Cmd unless `args` is given).
    pub entrypoint: Option<Vec<String>>,
    /// `KEY=VALUE` set over the image's Env.
    pub env: Vec<String>,
    /// Replaces the image's User.
    pub user: Option<String>,
    /// Replaces the image's WorkingDir.
    pub workdir: Option<String>,
    pub terminal: bool,
    pub network: NetworkMode,
    pub hostname: Option<String>,
    /// All five capability sets; default: runc's default config's.
    pub capabilities: Option<Vec<String>>,
    /// process.noNewPrivileges; default: runc's default (true).
    pub no_new_privileges: Option<bool>,
}

/// A resolved user.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecUser {
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    /// From the passwd entry, if one matched.
    pub home: Option<String>,
}

struct PasswdEntry<'a> {
    name: &'a str,
    uid: u32,
    gid: u32,
    home: &'a str,
}

fn passwd_entries(text: &str) -> impl Iterator<Item = PasswdEntry<'_>> {
    text.lines().filter_map(|l| {
        let l = l.trim_end_matches('\r');
        if l.is_empty() || l.starts_with('#') {
            return None;
        }
        let f: Vec<&str> = l.split(':').collect();
        if f.len() < 4 {
            return None;
        }
        Some(PasswdEntry { name: f[0], uid: f[2].parse().ok()?, gid: f[3].parse().ok()?, home: f.get(5).copied().unwrap_or("") })
    })
}

struct GroupEntry<'a> {
    name: &'a str,
    gid: u32,
    members: Vec<&'a str>,
}

fn group_entries(text: &str) -> impl Iterator<Item = GroupEntry<'_>> {
    text.lines().filter_map(|l| {
        let l = l.trim_end_matches('\r');
        if l.is_empty() || l.starts_with('#') {
            return None;
        }
        let f: Vec<&str> = l.split(':').collect();
        if f.len() < 3 {
            return None;
        }
        Some(GroupEntry {
            name: f[0],
            gid: f[2].parse().ok()?,
            members: f.get(3).map(|m| m.split(',').map(str::trim).filter(|m| !m.is_empty()).collect()).unwrap_or_default(),
        })
    })
}

/// Resolves a Dockerfile/image `USER` value ("name", "uid", "name:group", "uid:gid",
/// "name:gid", "uid:group"; empty = root) against passwd and group file contents, with
/// runc's rules (see the module doc). The files may be empty (a rootfs without them).
pub fn resolve_user(user: &str, passwd: &str, group: &str) -> Result<ExecUser, ImageError> {
    let (u, g) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    let mut out = ExecUser::default();
    let mut matched_name: Option<String> = None;
    if !u.is_empty() {
        match u.parse::<u32>() {
            Ok(uid) => {
                out.uid = uid;
                if let Some(e) = passwd_entries(passwd).find(|e| e.uid == uid) {
                    out.gid = e.gid;
                    out.home = Some(e.home.to_string());
                    matched_name = Some(e.name.to_string());
                }
            }
            Err(_) => {
                let e = passwd_entries(passwd)
                    .find(|e| e.name == u)
                    .ok_or_else(|| ImageError(format!("unable to find user {u}: no matching entries in passwd file")))?;
                out.uid = e.uid;
                out.gid = e.gid;
                out.home = Some(e.home.to_string());
                matched_name = Some(e.name.to_string());
            }
        }
    } else if let Some(e) = passwd_entries(passwd).find(|e| e.uid == 0) {
        out.gid = e.gid;
        out.home = Some(e.home.to_string());
        matched_name = Some(e.name.to_string());
    }
    match g {
        Some(g) if !g.is_empty() => {
            out.gid = match g.parse::<u32>() {
                Ok(gid) => gid,
                Err(_) => group_entries(group)
                    .find(|e| e.name == g)
                    .map(|e| e.gid)
                    .ok_or_else(|| ImageError(format!("unable to find group {g}: no matching entries in group file")))?,
            };
        }
        _ => {
            if let Some(name) = &matched_name {
                for e in group_entries(group) {
                    if e.members.iter().any(|m| m == name) && !out.additional_gids.contains(&e.gid) {
                        out.additional_gids.push(e.gid);
                    }
                }
            }
        }
    }
    Ok(out)
}

fn env_key(kv: &str) -> &str {
    kv.split_once('=').map(|x| x.0).unwrap_or(kv)
}

/// `KEY=VALUE` entries in order, with an index by key: n variables cost O(n), not a
/// scan of the list for each (an image with 100k Env entries took a minute).
#[derive(Default)]
struct EnvList {
    list: Vec<String>,
    index: std::collections::HashMap<String, usize>,
}

impl EnvList {
    /// Sets `kv`, replacing the entry with the same key.
    fn set(&mut self, kv: &str) {
        let k = env_key(kv);
        match self.index.get(k) {
            Some(&i) => self.list[i] = kv.to_string(),
            None => {
                self.index.insert(k.to_string(), self.list.len());
                self.list.push(kv.to_string());
            }
        }
    }

    fn has(&self, k: &str) -> bool {
        self.index.contains_key(k)
    }

    fn push_front(&mut self, kv: String) {
        self.list.insert(0, kv);
        self.index = self.list.iter().enumerate().map(|(i, kv)| (env_key(kv).to_string(), i)).collect();
    }
}

/// The runtime config for running `image` on the rootfs at `rootfs` (read for
/// /etc/passwd and /etc/group when the user is a name). See the module doc.
pub fn runtime_spec(image: &ImageConfig, rootfs: &Path, opts: &RuntimeOptions) -> Result<Spec, ImageError> {
    let cc = image.container_config();
    let mut v = crate::default_config::default_spec_json(false);
    v["root"]["readonly"] = serde_json::json!(false);
    v["root"]["path"] = serde_json::json!(opts.root_path.clone().unwrap_or_else(|| rootfs.to_string_lossy().into_owned()));
    let mut spec: Spec = serde_json::from_value(v).map_err(|e| ImageError(format!("default config: {e}")))?;
    let process = spec.process.get_or_insert_with(Default::default);
    process.terminal = opts.terminal;

    // Args.
    let entrypoint = opts.entrypoint.clone().or(cc.entrypoint.clone()).unwrap_or_default();
    let cmd = match (&opts.args, &opts.entrypoint) {
        (Some(a), _) => a.clone(),
        (None, Some(_)) => Vec::new(),
        (None, None) => cc.cmd.clone().unwrap_or_default(),
    };
    let args: Vec<String> = entrypoint.into_iter().chain(cmd).collect();
    if args.is_empty() {
        return Err(ImageError("no command specified: the image has no Entrypoint or Cmd and none was given".into()));
    }
    process.args = args;

    // User.
    let user_text = opts.user.clone().or(cc.user.clone()).unwrap_or_default();
    // Even a numeric user is looked up: for the primary gid, HOME and the groups.
    let passwd = read_text(rootfs, "/etc/passwd")?;
    let group = read_text(rootfs, "/etc/group")?;
    let user = resolve_user(&user_text, &passwd, &group)?;
    process.user.uid = user.uid;
    process.user.gid = user.gid;
    process.user.additional_gids = user.additional_gids.clone();

    // Env.
    let mut env = EnvList::default();
    for kv in &cc.env {
        env.set(kv);
    }
    if !env.has("PATH") {
        env.push_front(format!("PATH={DEFAULT_PATH}"));
    }
    for kv in &opts.env {
        env.set(kv);
    }
    if !env.has("HOME") {
        let home = user.home.clone().filter(|h| !h.is_empty()).unwrap_or_else(|| "/".to_string());
        env.set(&format!("HOME={home}"));
    }
    if opts.terminal && !env.has("TERM") {
        env.set("TERM=xterm");
    }
    process.env = env.list;

    // Cwd.
    let wd = opts.workdir.clone().or(cc.working_dir.clone()).unwrap_or_default();
    process.cwd = if wd.is_empty() { "/".to_string() } else { clean_abs(&wd) };

    if let Some(caps) = &opts.capabilities {
        let c = process.capabilities.get_or_insert_with(Default::default);
        c.bounding = Some(caps.clone());
        c.effective = Some(caps.clone());
        c.permitted = Some(caps.clone());
        c.ambient = Some(caps.clone());
        c.inheritable = None;
    }
    if let Some(nnp) = opts.no_new_privileges {
        process.no_new_privileges = nnp;
    }

    if let Some(h) = &opts.hostname {
        spec.hostname = Some(h.clone());
    }
    if opts.network == NetworkMode::Host {
        if let Some(linux) = spec.linux.as_mut() {
            linux.namespaces.retain(|n: &Namespace| n.typ != "network");
        }
    }

    // Annotations, as umoci writes them.
    let mut ann: BTreeMap<String, String> = BTreeMap::new();
    if !image.os.is_empty() {
        ann.insert("org.opencontainers.image.os".into(), image.os.clone());
    }
    if !image.architecture.is_empty() {
        ann.insert("org.opencontainers.image.architecture".into(), image.architecture.clone());
    }
    if let Some(a) = &image.author {
        ann.insert("org.opencontainers.image.author".into(), a.clone());
    }
    if let Some(c) = &image.created {
        ann.insert("org.opencontainers.image.created".into(), c.clone());
    }
    if let Some(s) = &cc.stop_signal {
        ann.insert("org.opencontainers.image.stopSignal".into(), s.clone());
    }
    if !cc.exposed_ports.is_empty() {
        ann.insert("org.opencontainers.image.exposedPorts".into(), cc.exposed_ports.keys().cloned().collect::<Vec<_>>().join(","));
    }
    for (k, v) in &cc.labels {
        ann.insert(k.clone(), v.clone());
    }
    spec.annotations = ann;
    Ok(spec)
}

fn read_text(rootfs: &Path, inside: &str) -> Result<String, ImageError> {
    match read_in_rootfs(rootfs, inside) {
        Ok(Some(b)) => Ok(String::from_utf8_lossy(&b).into_owned()),
        Ok(None) => Ok(String::new()),
        Err(e) => Err(ImageError(format!("reading {inside} in {}: {e}", rootfs.display()))),
    }
}

/// `path` joined under `root` lexically ("/a/../../b" -> root/b). For callers that need
/// a host path for an image path and will not follow symlinks through it.
pub fn lexical_join(root: &Path, inside: &str) -> PathBuf {
    root.join(clean_abs(inside).trim_start_matches('/'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::types::ContainerConfig;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1001:App:/home/app:/bin/sh\n# c\nbad line\nnobody:x:65534:65534::/nonexistent:/bin/false\n";
    const GROUP: &str = "root:x:0:\nwheel:x:10:app,other\nappgrp:x:1001:\nextra:x:2000:app\n";

    #[test]
    fn users_resolve_like_runc() {
        let r = |u: &str| resolve_user(u, PASSWD, GROUP);
        assert_eq!(r("").unwrap(), ExecUser { uid: 0, gid: 0, additional_gids: vec![], home: Some("/root".into()) });
        let app = r("app").unwrap();
        assert_eq!((app.uid, app.gid, app.additional_gids.clone()), (1000, 1001, vec![10, 2000]));
        assert_eq!(app.home.as_deref(), Some("/home/app"));
        assert_eq!(r("1000").unwrap().additional_gids, vec![10, 2000]);
        let g = r("app:wheel").unwrap();
        assert_eq!((g.uid, g.gid, g.additional_gids.len()), (1000, 10, 0));
        assert_eq!(r("app:77").unwrap().gid, 77);
        let n = r("4242").unwrap();
        assert_eq!((n.uid, n.gid, n.home), (4242, 0, None));
        assert_eq!(r("4242:4343").unwrap().gid, 4343);
        assert_eq!(r("65534").unwrap().gid, 65534);
        assert!(r("ghost").unwrap_err().0.contains("unable to find user ghost"));
        assert!(r("app:ghosts").unwrap_err().0.contains("unable to find group ghosts"));
        assert_eq!(resolve_user("7:8", "", "").unwrap().gid, 8);
        assert!(resolve_user("app", "", "").is_err());
    }

    fn rootfs() -> PathBuf {
        let d = std::env::temp_dir().join(format!("berth-spec-img-{}-{:?}", std::process::id(), std::thread::current().id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(d.join("etc")).unwrap();
        std::fs::create_dir_all(d.join("usr/lib")).unwrap();
        std::fs::write(d.join("usr/lib/passwd"), PASSWD).unwrap();
        // An absolute symlink: must resolve inside the rootfs, not to the host's file.
        std::os::unix::fs::symlink("/usr/lib/passwd", d.join("etc/passwd")).unwrap();
        std::fs::write(d.join("etc/group"), GROUP).unwrap();
        d
    }

    #[test]
    fn rootfs_files_resolve_inside() {
        let d = rootfs();
        std::os::unix::fs::symlink("../../../../../../etc/hostname", d.join("etc/escape")).unwrap();
        std::os::unix::fs::symlink("loop", d.join("etc/loop")).unwrap();
        assert_eq!(read_in_rootfs(&d, "/etc/passwd").unwrap().unwrap(), PASSWD.as_bytes());
        assert_eq!(read_in_rootfs(&d, "etc/../etc/./group").unwrap().unwrap(), GROUP.as_bytes());
        assert_eq!(read_in_rootfs(&d, "/etc/escape").unwrap(), None);
        assert!(read_in_rootfs(&d, "/etc/loop").is_err());
        assert_eq!(read_in_rootfs(&d, "/etc/passwd/x").unwrap(), None);
        assert_eq!(lexical_join(&d, "/a/../../b"), d.join("b"));
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn converts_like_umoci() {
        let d = rootfs();
        let mut img = ImageConfig { architecture: "amd64".into(), os: "linux".into(), ..Default::default() };
        img.config = Some(ContainerConfig {
            user: Some("app".into()),
            env: vec!["FOO=1".into(), "PATH=/custom".into()],
            entrypoint: Some(vec!["/bin/ep".into()]),
            cmd: Some(vec!["a".into(), "b".into()]),
            working_dir: Some("work/../srv".into()),
            labels: [("l".to_string(), "v".to_string())].into(),
            stop_signal: Some("SIGQUIT".into()),
            ..Default::default()
        });
        let s = runtime_spec(&img, &d, &RuntimeOptions::default()).unwrap();
        let p = s.process.as_ref().unwrap();
        assert_eq!(p.args, ["/bin/ep", "a", "b"]);
        assert_eq!(p.env, ["FOO=1", "PATH=/custom", "HOME=/home/app"]);
        assert_eq!(p.cwd, "/srv");
        assert_eq!((p.user.uid, p.user.gid, p.user.additional_gids.clone()), (1000, 1001, vec![10, 2000]));
        assert!(!p.terminal);
        let root = s.root.as_ref().unwrap();
        assert!(!root.readonly);
        assert_eq!(root.path, d.to_string_lossy());
        assert!(s.namespace("network").is_some());
        assert_eq!(s.annotations["l"], "v");
        assert_eq!(s.annotations["org.opencontainers.image.stopSignal"], "SIGQUIT");
        // runc's defaults are kept.
        assert!(p.no_new_privileges);
        assert_eq!(p.capabilities.as_ref().unwrap().bounding.as_ref().unwrap().len(), 3);

        let opts = RuntimeOptions {
            root_path: Some("rootfs".into()),
            args: Some(vec!["x".into()]),
            env: vec!["FOO=2".into(), "NEW=3".into()],
            user: Some("0:0".into()),
            workdir: Some("/tmp".into()),
            terminal: true,
            network: NetworkMode::Host,
            hostname: Some("h".into()),
            capabilities: Some(DOCKER_DEFAULT_CAPS.iter().map(|s| s.to_string()).collect()),
            no_new_privileges: Some(false),
            ..Default::default()
        };
        let s = runtime_spec(&img, &d, &opts).unwrap();
        let p = s.process.as_ref().unwrap();
        assert_eq!(p.args, ["/bin/ep", "x"]);
        assert_eq!(p.env, ["FOO=2", "PATH=/custom", "NEW=3", "HOME=/root", "TERM=xterm"]);
        assert_eq!((p.user.uid, p.user.gid), (0, 0));
        assert_eq!(p.cwd, "/tmp");
        assert!(p.terminal && !p.no_new_privileges);
        assert!(p.capabilities.as_ref().unwrap().bounding.as_ref().unwrap().contains(&"CAP_CHOWN".to_string()));
        assert_eq!(s.root.as_ref().unwrap().path, "rootfs");
        assert_eq!(s.hostname.as_deref(), Some("h"));
        assert!(s.namespace("network").is_none());

        // An entrypoint override drops the image's Cmd.
        let s = runtime_spec(&img, &d, &RuntimeOptions { entrypoint: Some(vec!["sh".into()]), ..Default::default() }).unwrap();
        assert_eq!(s.process.unwrap().args, ["sh"]);
        // No command at all is an error; an image without PATH gets Docker's.
        let bare = ImageConfig::default();
        assert!(runtime_spec(&bare, &d, &RuntimeOptions::default()).is_err());
        let s = runtime_spec(&bare, &d, &RuntimeOptions { args: Some(vec!["true".into()]), ..Default::default() }).unwrap();
        assert_eq!(s.process.unwrap().env, [format!("PATH={DEFAULT_PATH}"), "HOME=/root".to_string()]);
        // An unknown user name fails with runc's words.
        let e = runtime_spec(&img, &d, &RuntimeOptions { user: Some("ghost".into()), ..Default::default() }).unwrap_err();
        assert!(e.0.contains("unable to find user ghost"), "{e}");
        std::fs::remove_dir_all(&d).unwrap();
    }
}
