//! `berth features`: the runtime-spec features document, describing this build.

use super::Global;
use crate::error::Result;
use crate::linux::capabilities;

pub fn main(_g: &Global, a: &[String]) -> Result<()> {
    // No flags of its own; -h/--help and an unknown flag are answered as elsewhere.
    super::args::parse(a, &[], false)?;
    let caps: Vec<&str> = capabilities::NAMES[..=(capabilities::last_cap() as usize).min(capabilities::NAMES.len() - 1)].to_vec();
    let mut v = serde_json::json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": berth_spec::OCI_VERSION,
        "hooks": ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"],
        "mountOptions": [
            "async", "atime", "bind", "defaults", "dev", "diratime", "dirsync", "exec", "iversion",
            "lazytime", "loud", "mand", "noatime", "nodev", "nodiratime", "noexec", "noiversion",
            "nolazytime", "nomand", "norelatime", "nostrictatime", "nosuid", "private", "rbind",
            "relatime", "remount", "ro", "rprivate", "rshared", "rslave", "runbindable", "rw",
            "shared", "silent", "slave", "strictatime", "suid", "sync", "tmpcopyup", "unbindable"
        ],
        "linux": {
            "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"],
            "capabilities": caps,
            "cgroup": {"v1": true, "v2": true, "systemd": true, "systemdUser": false, "rdma": true},
            "seccomp": crate::linux::seccomp::features(),
            "apparmor": {"enabled": true},
            "selinux": {"enabled": false},
            "intelRdt": {"enabled": false},
            "memoryPolicy": {
                "modes": crate::linux::mempolicy::MODES.iter().map(|m| m.0).collect::<Vec<_>>(),
                "flags": crate::linux::mempolicy::FLAGS.iter().map(|f| f.0).collect::<Vec<_>>()
            },
            "netDevices": {"enabled": true},
            "mountExtensions": {"idmap": {"enabled": true}}
        },
        "annotations": {"org.berth.version": env!("CARGO_PKG_VERSION"), "org.berth.commit": env!("BERTH_COMMIT")}
    });
    // The recursive options (mount_setattr), in the one sorted list.
    if let Some(opts) = v["mountOptions"].as_array_mut() {
        opts.extend(crate::linux::mounts::RECURSIVE_OPTIONS.iter().map(|o| serde_json::json!(o)));
        opts.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
    }
    super::out(&format!("{}\n", serde_json::to_string_pretty(&v).expect("json")));
    Ok(())
}
