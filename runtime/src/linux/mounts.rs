//! Mount options as the runtime spec and runc spell them, turned into mount(2) flags,
//! propagation flags and the filesystem's data string.

use nix::mount::MsFlags;

#[derive(Debug, Clone)]
pub struct MountOptions {
    pub flags: MsFlags,
    /// Flags to clear (rw, suid, dev, exec ...): they only matter on a remount.
    pub cleared: MsFlags,
    pub propagation: Vec<MsFlags>,
    pub data: Vec<String>,
    /// runc's `tmpcopyup`: fill a new tmpfs with what the destination held.
    pub tmpcopyup: bool,
    /// The recursive options (`rro`, `rnosuid`, ...): MOUNT_ATTR_* bits to set and clear
    /// with mount_setattr(2) on the mount and every mount below it.
    pub rec: RecAttr,
    /// `idmap` (false) or `ridmap` (true, every mount of an rbind): an idmapped mount.
    pub idmap: Option<bool>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecAttr {
    pub set: u64,
    pub clr: u64,
}

impl RecAttr {
    pub fn is_empty(&self) -> bool {
        self.set == 0 && self.clr == 0
    }
}

impl MountOptions {
    pub fn is_bind(&self) -> bool {
        self.flags.contains(MsFlags::MS_BIND)
    }
    pub fn data_string(&self) -> Option<String> {
        (!self.data.is_empty()).then(|| self.data.join(","))
    }
}

pub fn parse(options: &[String]) -> MountOptions {
    let mut o = MountOptions {
        flags: MsFlags::empty(),
        cleared: MsFlags::empty(),
        propagation: Vec::new(),
        data: Vec::new(),
        tmpcopyup: false,
        rec: RecAttr::default(),
        idmap: None,
    };
    for opt in options {
        if let Some(r) = recursive_attr(opt) {
            o.rec.add(r);
            continue;
        }
        let (set, clear): (MsFlags, MsFlags) = match opt.as_str() {
            "async" => (MsFlags::empty(), MsFlags::MS_SYNCHRONOUS),
            "atime" => (MsFlags::empty(), MsFlags::MS_NOATIME),
            "bind" => (MsFlags::MS_BIND, MsFlags::empty()),
            "defaults" => (MsFlags::empty(), MsFlags::empty()),
            "dev" => (MsFlags::empty(), MsFlags::MS_NODEV),
            "diratime" => (MsFlags::empty(), MsFlags::MS_NODIRATIME),
            "dirsync" => (MsFlags::MS_DIRSYNC, MsFlags::empty()),
            "exec" => (MsFlags::empty(), MsFlags::MS_NOEXEC),
            "iversion" => (MsFlags::MS_I_VERSION, MsFlags::empty()),
            "lazytime" => (MsFlags::MS_LAZYTIME, MsFlags::empty()),
            "loud" => (MsFlags::empty(), MsFlags::MS_SILENT),
            "mand" => (MsFlags::MS_MANDLOCK, MsFlags::empty()),
            "noatime" => (MsFlags::MS_NOATIME, MsFlags::empty()),
            "nodev" => (MsFlags::MS_NODEV, MsFlags::empty()),
            "nodiratime" => (MsFlags::MS_NODIRATIME, MsFlags::empty()),
            "noexec" => (MsFlags::MS_NOEXEC, MsFlags::empty()),
            "noiversion" => (MsFlags::empty(), MsFlags::MS_I_VERSION),
            "nolazytime" => (MsFlags::empty(), MsFlags::MS_LAZYTIME),
            "nomand" => (MsFlags::empty(), MsFlags::MS_MANDLOCK),
            "norelatime" => (MsFlags::empty(), MsFlags::MS_RELATIME),
            "nostrictatime" => (MsFlags::empty(), MsFlags::MS_STRICTATIME),
            "nosuid" => (MsFlags::MS_NOSUID, MsFlags::empty()),
            "rbind" => (MsFlags::MS_BIND | MsFlags::MS_REC, MsFlags::empty()),
            "relatime" => (MsFlags::MS_RELATIME, MsFlags::empty()),
            "remount" => (MsFlags::MS_REMOUNT, MsFlags::empty()),
            "ro" => (MsFlags::MS_RDONLY, MsFlags::empty()),
            "rw" => (MsFlags::empty(), MsFlags::MS_RDONLY),
            "silent" => (MsFlags::MS_SILENT, MsFlags::empty()),
            "strictatime" => (MsFlags::MS_STRICTATIME, MsFlags::empty()),
            "suid" => (MsFlags::empty(), MsFlags::MS_NOSUID),
            "sync" => (MsFlags::MS_SYNCHRONOUS, MsFlags::empty()),
            "private" | "rprivate" | "shared" | "rshared" | "slave" | "rslave" | "unbindable" | "runbindable" => {
                o.propagation.push(propagation(opt).expect("listed above"));
                continue;
            }
            "tmpcopyup" => {
                o.tmpcopyup = true;
                continue;
            }
            // Not for mount(2): the mapping is set with mount_setattr (linux/idmap.rs).
            "idmap" | "ridmap" => {
                o.idmap = Some(opt == "ridmap");
                continue;
            }
            _ => {
                o.data.push(opt.clone());
                continue;
            }
        };
        o.flags.insert(set);
        o.flags.remove(clear);
        o.cleared.insert(clear);
        o.cleared.remove(set);
    }
    o
}

/// What a recursive option changes: one MOUNT_ATTR_* bit, or the atime mode. The atime
/// modes are values of one field (MOUNT_ATTR__ATIME), not bits: relatime is 0, and
/// ratime, rnorelatime and rnostrictatime go back to it (as runc reads them).
enum RecOpt {
    Set(u64),
    Clear(u64),
    Atime(u64),
}

fn recursive_attr(opt: &str) -> Option<RecOpt> {
    use RecOpt::*;
    Some(match opt {
        "rro" => Set(libc::MOUNT_ATTR_RDONLY),
        "rrw" => Clear(libc::MOUNT_ATTR_RDONLY),
        "rnosuid" => Set(libc::MOUNT_ATTR_NOSUID),
        "rsuid" => Clear(libc::MOUNT_ATTR_NOSUID),
        "rnodev" => Set(libc::MOUNT_ATTR_NODEV),
        "rdev" => Clear(libc::MOUNT_ATTR_NODEV),
        "rnoexec" => Set(libc::MOUNT_ATTR_NOEXEC),
        "rexec" => Clear(libc::MOUNT_ATTR_NOEXEC),
        "rnodiratime" => Set(libc::MOUNT_ATTR_NODIRATIME),
        "rdiratime" => Clear(libc::MOUNT_ATTR_NODIRATIME),
        "rnosymfollow" => Set(libc::MOUNT_ATTR_NOSYMFOLLOW),
        "rsymfollow" => Clear(libc::MOUNT_ATTR_NOSYMFOLLOW),
        "rnoatime" => Atime(libc::MOUNT_ATTR_NOATIME),
        "rstrictatime" => Atime(libc::MOUNT_ATTR_STRICTATIME),
        "rrelatime" | "ratime" | "rnorelatime" | "rnostrictatime" => Atime(libc::MOUNT_ATTR_RELATIME),
        _ => return None,
    })
}

/// The recursive option names, for `berth features`.
pub const RECURSIVE_OPTIONS: &[&str] = &[
    "ratime",
    "rdev",
    "rdiratime",
    "rexec",
    "rnoatime",
    "rnodev",
    "rnodiratime",
    "rnoexec",
    "rnorelatime",
    "rnostrictatime",
    "rnosuid",
    "rnosymfollow",
    "rrelatime",
    "rro",
    "rrw",
    "rstrictatime",
    "rsuid",
    "rsymfollow",
];

impl RecAttr {
    /// Later options override earlier ones. An atime mode replaces the whole field: the
    /// kernel takes one only with all of MOUNT_ATTR__ATIME in `clr`.
    fn add(&mut self, opt: RecOpt) {
        match opt {
            RecOpt::Set(bit) => {
                self.set |= bit;
                self.clr &= !bit;
            }
            RecOpt::Clear(bit) => {
                self.clr |= bit;
                self.set &= !bit;
            }
            RecOpt::Atime(mode) => {
                self.set = (self.set & !libc::MOUNT_ATTR__ATIME) | mode;
                self.clr |= libc::MOUNT_ATTR__ATIME;
            }
        }
    }
}

/// A propagation mode name ("rslave", "private", ...) as mount flags.
pub fn propagation(name: &str) -> Option<MsFlags> {
    Some(match name {
        "private" => MsFlags::MS_PRIVATE,
        "rprivate" => MsFlags::MS_PRIVATE | MsFlags::MS_REC,
        "shared" => MsFlags::MS_SHARED,
        "rshared" => MsFlags::MS_SHARED | MsFlags::MS_REC,
        "slave" => MsFlags::MS_SLAVE,
        "rslave" => MsFlags::MS_SLAVE | MsFlags::MS_REC,
        "unbindable" => MsFlags::MS_UNBINDABLE,
        "runbindable" => MsFlags::MS_UNBINDABLE | MsFlags::MS_REC,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_propagation_and_data_are_separated() {
        let o = parse(&["nosuid".into(), "rbind".into(), "ro".into(), "rslave".into(), "mode=755".into(), "size=65536k".into()]);
        assert!(o.flags.contains(MsFlags::MS_NOSUID | MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_RDONLY));
        assert_eq!(o.propagation, vec![MsFlags::MS_SLAVE | MsFlags::MS_REC]);
        assert_eq!(o.data_string().as_deref(), Some("mode=755,size=65536k"));
    }

    #[test]
    fn recursive_options_are_attributes_not_flags() {
        let o = parse(&["rbind".into(), "rro".into(), "rnosuid".into(), "rexec".into(), "rnoatime".into()]);
        assert_eq!(o.flags, MsFlags::MS_BIND | MsFlags::MS_REC);
        assert!(o.data.is_empty());
        assert_eq!(o.rec.set, libc::MOUNT_ATTR_RDONLY | libc::MOUNT_ATTR_NOSUID | libc::MOUNT_ATTR_NOATIME);
        assert_eq!(o.rec.clr, libc::MOUNT_ATTR_NOEXEC | libc::MOUNT_ATTR__ATIME);
        // The last atime mode wins, and relatime (0) replaces noatime.
        let o = parse(&["rnoatime".into(), "rrelatime".into(), "rro".into(), "rrw".into()]);
        assert_eq!(o.rec.set, 0);
        assert_eq!(o.rec.clr, libc::MOUNT_ATTR__ATIME | libc::MOUNT_ATTR_RDONLY);
        for name in RECURSIVE_OPTIONS {
            assert!(!parse(&[name.to_string()]).rec.is_empty(), "{name}");
        }
    }

    #[test]
    fn later_options_override_earlier() {
        let o = parse(&["ro".into(), "rw".into()]);
        assert!(!o.flags.contains(MsFlags::MS_RDONLY));
        assert!(o.cleared.contains(MsFlags::MS_RDONLY));
    }
}
