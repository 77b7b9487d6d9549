//! Capability names, and applying the five sets of `process.capabilities`.

use crate::error::{Context, Result};

pub const NAMES: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// The highest capability this kernel knows.
pub fn last_cap() -> u32 {
    // Read once per process: create and the init ask several times.
    static LAST: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    *LAST.get_or_init(|| std::fs::read_to_string("/proc/sys/kernel/cap_last_cap").ok().and_then(|s| s.trim().parse().ok()).unwrap_or(NAMES.len() as u32 - 1))
}

/// A set as a bit mask. Names this kernel or berth does not know are skipped, as runc
/// does: an engine may name capabilities newer than the host's kernel ([`unknown`] lists
/// them for the warning create gives).
pub fn mask(names: &[String], last: u32) -> u64 {
    names.iter().filter_map(|n| index(n)).filter(|&i| i <= last).fold(0, |m, i| m | 1 << i)
}

/// The bit of a capability name ("CAP_KILL", "kill").
fn index(name: &str) -> Option<u32> {
    let up = name.to_ascii_uppercase();
    let full = if up.starts_with("CAP_") { up } else { format!("CAP_{up}") };
    NAMES.iter().position(|x| *x == full).map(|i| i as u32)
}

/// Every name of the config's sets that [`mask`] skips, as "FIELD: NAME" (unknown to berth,
/// or to this kernel).
pub fn unknown(c: &berth_spec::Capabilities) -> Vec<String> {
    let last = last_cap();
    let sets = [("bounding", &c.bounding), ("effective", &c.effective), ("permitted", &c.permitted), ("inheritable", &c.inheritable), ("ambient", &c.ambient)];
    let mut out = Vec::new();
    for (field, names) in sets {
        for n in names.iter().flatten() {
            if index(n).is_none_or(|i| i > last) {
                out.push(format!("process.capabilities.{field}: {n}"));
            }
        }
    }
    out
}

#[derive(Default, Clone, Copy, Debug)]
pub struct Sets {
    pub bounding: Option<u64>,
    pub effective: u64,
    pub permitted: u64,
    pub inheritable: u64,
    pub ambient: u64,
}

impl Sets {
    pub fn from_spec(c: &berth_spec::Capabilities) -> Sets {
        let last = last_cap();
        let m = |v: &Option<Vec<String>>| mask(v.as_deref().unwrap_or(&[]), last);
        Sets {
            // An absent set is an empty one, the bounding set included (as runc reads
            // the spec): a config that lists no bounding capabilities keeps none.
            bounding: Some(m(&c.bounding)),
            effective: m(&c.effective),
            permitted: m(&c.permitted),
            inheritable: m(&c.inheritable),
            ambient: m(&c.ambient),
        }
    }
}

/// Drops every capability outside the bounding set. Needs CAP_SETPCAP, so it runs
/// before the user switch.
pub fn drop_bounding(bounding: u64) -> Result<()> {
    for cap in 0..=last_cap() {
        if bounding & (1 << cap) == 0 {
            // SAFETY: prctl with integer arguments only.
            let r = unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) };
            if r != 0 {
                let e = std::io::Error::last_os_error();
                if e.raw_os_error() != Some(libc::EINVAL) {
                    return Err(e).with_ctx(|| format!("drop capability {} from the bounding set", NAMES.get(cap as usize).unwrap_or(&"?")));
                }
            }
        }
    }
    Ok(())
}

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Default, Clone, Copy)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// Sets the effective, permitted and inheritable sets, then raises the ambient ones.
pub fn apply(s: &Sets) -> Result<()> {
    let hdr = CapHeader { version: 0x2008_0522, pid: 0 }; // _LINUX_CAPABILITY_VERSION_3
    let data = [
        CapData { effective: s.effective as u32, permitted: s.permitted as u32, inheritable: s.inheritable as u32 },
        CapData { effective: (s.effective >> 32) as u32, permitted: (s.permitted >> 32) as u32, inheritable: (s.inheritable >> 32) as u32 },
    ];
    // SAFETY: capset reads a v3 header and two data words, which we pass.
    let r = unsafe { libc::syscall(libc::SYS_capset, &hdr as *const CapHeader, data.as_ptr()) };
    if r != 0 {
        return Err(std::io::Error::last_os_error()).ctx("capset");
    }
    // SAFETY: prctl with integer arguments only.
    unsafe { libc::prctl(libc::PR_CAP_AMBIENT, libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong, 0, 0, 0) };
    for cap in 0..=last_cap() {
        if s.ambient & (1 << cap) != 0 {
            // SAFETY: as above.
            let r = unsafe { libc::prctl(libc::PR_CAP_AMBIENT, libc::PR_CAP_AMBIENT_RAISE as libc::c_ulong, cap as libc::c_ulong, 0, 0) };
            if r != 0 {
                // Ambient needs the cap in permitted and inheritable (runc's default config
                // lists it in neither inheritable); like runc, carry on.
                crate::logging::debug(&format!("cannot raise ambient capability {}", NAMES.get(cap as usize).unwrap_or(&"?")));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_map_to_bits_and_unknown_or_newer_names_are_skipped() {
        assert_eq!(super::mask(&["CAP_CHOWN".into(), "kill".into()], 40), 1 | (1 << 5));
        assert_eq!(super::mask(&["CAP_NOPE".into(), "CAP_KILL".into()], 40), 1 << 5);
        assert_eq!(super::mask(&["CAP_CHECKPOINT_RESTORE".into(), "CAP_BPF".into(), "CAP_PERFMON".into()], 38), 1 << 38);
        let c = berth_spec::Capabilities { bounding: Some(vec!["CAP_KILL".into(), "CAP_NOPE".into()]), ..Default::default() };
        assert_eq!(super::unknown(&c), vec!["process.capabilities.bounding: CAP_NOPE"]);
        assert_eq!(super::NAMES[40], "CAP_CHECKPOINT_RESTORE");
    }

    #[test]
    fn an_absent_set_is_empty_and_an_absent_bounding_set_keeps_nothing() {
        let c = berth_spec::Capabilities { effective: Some(vec!["CAP_KILL".into()]), ..Default::default() };
        let s = super::Sets::from_spec(&c);
        assert_eq!(s.bounding, Some(0));
        assert_eq!((s.effective, s.permitted, s.inheritable, s.ambient), (1 << 5, 0, 0, 0));
    }
}
