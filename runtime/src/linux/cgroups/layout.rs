//! Finding the cgroup hierarchies from /proc/self/mountinfo and /proc/self/cgroup.

use crate::error::{Context, Error, Result};
use berth_spec::mountinfo::unescape;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct Hierarchy {
    pub mountpoint: PathBuf,
    /// The cgroup shown at the mountpoint (the mountinfo "root" field).
    pub root: String,
    /// v1 controllers of this hierarchy (e.g. ["cpu", "cpuacct"] or ["name=systemd"]).
    pub controllers: Vec<String>,
    /// This process's own cgroup in the hierarchy (from /proc/self/cgroup).
    pub own: String,
}

#[derive(Debug, Clone, Default)]
pub struct Layout {
    pub v1: Vec<Hierarchy>,
    pub unified: Option<Hierarchy>,
}

impl Hierarchy {
    /// The directory for a cgroup path: absolute paths start at the hierarchy's root,
    /// relative ones below this process's own cgroup.
    pub fn dir_for(&self, rel: &str) -> Result<PathBuf> {
        let full = if rel.starts_with('/') { rel.to_string() } else { format!("{}/{}", self.own.trim_end_matches('/'), rel) };
        // The mountpoint shows `root`; the path must be inside it.
        let inner = if self.root == "/" { full.as_str() } else { full.strip_prefix(self.root.as_str()).unwrap_or(full.as_str()) };
        let mut out = self.mountpoint.clone();
        for c in inner.split('/').filter(|c| !c.is_empty()) {
            if c == ".." || c == "." {
                return Err(Error::new(format!("cgroup path {rel:?} must not contain . or ..")));
            }
            out.push(c);
        }
        Ok(out)
    }
}

impl Layout {
    pub fn detect() -> Result<Layout> {
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").ctx("read /proc/self/mountinfo")?;
        let own = std::fs::read_to_string("/proc/self/cgroup").ctx("read /proc/self/cgroup")?;
        Ok(Self::parse(&mountinfo, &own))
    }

    pub fn parse(mountinfo: &str, own_cgroups: &str) -> Layout {
        let mut layout = Layout::default();
        for line in mountinfo.lines() {
            let Some((left, right)) = line.split_once(" - ") else { continue };
            let l: Vec<&str> = left.split(' ').collect();
            let r: Vec<&str> = right.split(' ').collect();
            if l.len() < 5 || r.len() < 3 {
                continue;
            }
            let (root, mountpoint) = (unescape(l[3]), PathBuf::from(unescape(l[4])));
            match r[0] {
                "cgroup2" if layout.unified.is_none() => {
                    let own = own_path(own_cgroups, |c| c.is_empty());
                    layout.unified = Some(Hierarchy { mountpoint, root, controllers: vec![], own });
                }
                "cgroup" => {
                    let controllers: Vec<String> = r[2].split(',').filter(|o| is_controller(o)).map(String::from).collect();
                    if controllers.is_empty() || layout.v1.iter().any(|h| h.controllers == controllers) {
                        continue;
                    }
                    let own = own_path(own_cgroups, |c| {
                        let mut a: Vec<&str> = c.split(',').collect();
                        let mut b: Vec<&str> = controllers.iter().map(|s| s.as_str()).collect();
                        a.sort();
                        b.sort();
                        a == b
                    });
                    layout.v1.push(Hierarchy { mountpoint, root, controllers, own });
                }
                _ => {}
            }
        }
        layout
    }
}

/// v1 mount options that name controllers (everything but the generic mount options).
fn is_controller(o: &str) -> bool {
    !matches!(
        o,
        "rw" | "ro"
            | "nosuid"
            | "nodev"
            | "noexec"
            | "relatime"
            | "noatime"
            | "strictatime"
            | "nodiratime"
            | "xattr"
            | "clone_children"
            | "noprefix"
            | "cpuset_v2_mode"
            | "favordynmods"
    ) && !o.starts_with("release_agent=")
}

fn own_path(own_cgroups: &str, matches: impl Fn(&str) -> bool) -> String {
    for l in own_cgroups.lines() {
        let mut it = l.splitn(3, ':');
        let (_, ctrl, path) = (it.next(), it.next().unwrap_or(""), it.next().unwrap_or("/"));
        if matches(ctrl) {
            return path.to_string();
        }
    }
    "/".to_string()
}

pub fn is_mountpoint_of_cgroup2(p: &Path) -> bool {
    nix::sys::statfs::statfs(p).map(|s| s.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC).unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
30 25 0:26 / /sys/fs/cgroup rw - tmpfs tmpfs rw,mode=755
31 30 0:27 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
32 30 0:28 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
33 30 0:29 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
34 30 0:30 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw";
    const OWN: &str = "4:memory:/session/x\n3:name=systemd:/\n1:cpu:/\n0::/";

    #[test]
    fn hybrid_layout_has_v1_and_unified() {
        let l = Layout::parse(HYBRID, OWN);
        assert_eq!(l.v1.len(), 3);
        assert_eq!(l.unified.as_ref().unwrap().mountpoint, PathBuf::from("/sys/fs/cgroup/unified"));
        let mem = l.v1.iter().find(|h| h.controllers == ["memory"]).unwrap();
        assert_eq!(mem.own, "/session/x");
        assert_eq!(mem.dir_for("/a/b").unwrap(), PathBuf::from("/sys/fs/cgroup/memory/a/b"));
        assert_eq!(mem.dir_for("c").unwrap(), PathBuf::from("/sys/fs/cgroup/memory/session/x/c"));
        assert!(mem.dir_for("/a/../../etc").is_err());
    }

    #[test]
    fn pure_v2_has_no_v1() {
        let l = Layout::parse("35 1 0:30 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate", "0::/user.slice");
        assert!(l.v1.is_empty());
        assert_eq!(l.unified.unwrap().own, "/user.slice");
    }
}
