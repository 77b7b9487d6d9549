//! Loading a bundle's `config.json` and checking what the runtime needs before it
//! touches the system, so that bad input fails early with the file and field named.

use crate::config::Spec;
use std::fmt;
use std::path::{Path, PathBuf};

#[derive(Debug)]
pub struct BundleError(pub String);

impl fmt::Display for BundleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BundleError {}

pub struct Bundle {
    /// Absolute path of the bundle directory.
    pub dir: PathBuf,
    /// The root filesystem, absolute with symlinks resolved (mount checks compare against it).
    pub rootfs: PathBuf,
    pub spec: Spec,
    /// The config file's bytes, kept so the runtime can store exactly what it ran.
    pub raw: Vec<u8>,
}

impl Bundle {
    pub fn rootfs(&self) -> PathBuf {
        self.rootfs.clone()
    }
}

/// Reads and validates `<dir>/config.json`.
pub fn load_bundle(dir: &Path) -> Result<Bundle, BundleError> {
    let dir = std::fs::canonicalize(dir).map_err(|e| BundleError(format!("bundle {}: {}", dir.display(), io_words(&e))))?;
    let file = dir.join("config.json");
    let raw = std::fs::read(&file).map_err(|e| BundleError(format!("open {}: {}", file.display(), io_words(&e))))?;
    let spec = parse_config(&raw).map_err(|e| BundleError(format!("{}: {}", file.display(), e)))?;
    validate(&spec).map_err(|e| BundleError(format!("{}: {}", file.display(), e)))?;
    let root = dir.join(spec.root.as_ref().map(|r| r.path.as_str()).unwrap_or(""));
    let rootfs = match std::fs::canonicalize(&root) {
        Ok(p) if p.is_dir() => p,
        Ok(_) => return Err(BundleError(format!("{}: root.path {} is not a directory", file.display(), root.display()))),
        Err(e) => return Err(BundleError(format!("{}: root.path: stat {}: {}", file.display(), root.display(), io_words(&e)))),
    };
    Ok(Bundle { dir, rootfs, spec, raw })
}

/// Parses config JSON. A value of the wrong type names its field, as a path from the
/// top (`process.user.uid`, `mounts[2].options`), besides serde's line and column; a
/// syntax error has only the position.
pub fn parse_config(raw: &[u8]) -> Result<Spec, String> {
    let mut de = serde_json::Deserializer::from_slice(raw);
    let spec: Spec = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        // A syntax error inside a value (an array with more elements than the struct it
        // stands for ends in "trailing characters") still has a place worth naming.
        if path == "." || inner.is_eof() {
            format!("invalid config: {inner}")
        } else {
            format!("invalid config: {path}: {inner}")
        }
    })?;
    de.end().map_err(|e| format!("invalid config: {e}"))?;
    Ok(spec)
}

/// The error text of an io::Error without Rust's "(os error N)" suffix: engines match
/// runc's lowercase words ("no such file or directory").
pub fn io_words(e: &std::io::Error) -> String {
    let s = e.to_string();
    let s = match s.find(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    };
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_lowercase().collect::<String>() + c.as_str(),
        None => s,
    }
}

/// ociVersion is SemVer: MAJOR.MINOR.PATCH with an optional pre-release or build suffix
/// ("1.0.2-dev", "1.2.0+dirty"). Every 1.x is read (1.0 through 1.3 today; minor versions
/// only add fields, which berth ignores when it does not know them, as runc does); another
/// major version, or something that is not a version, is refused.
fn check_version(v: &str) -> Result<(), String> {
    let core = v.split(['-', '+']).next().unwrap_or("");
    let nums: Vec<&str> = core.split('.').collect();
    let numeric = |n: &&str| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit());
    if nums.len() != 3 || !nums.iter().all(numeric) || v.ends_with(['-', '+']) {
        return Err(format!("ociVersion {v:?} is not a version (MAJOR.MINOR.PATCH, such as \"{}\")", crate::OCI_VERSION));
    }
    if nums[0] != "1" {
        return Err(format!("ociVersion {v:?} is not supported: berth reads runtime-spec 1.x configs"));
    }
    Ok(())
}

const NAMESPACES: &[&str] = &["pid", "network", "mount", "ipc", "uts", "user", "cgroup", "time"];

/// Checks the fields whose absence or form the runtime cannot work around.
pub fn validate(spec: &Spec) -> Result<(), String> {
    if spec.oci_version.is_empty() {
        return Err("ociVersion must be set".into());
    }
    check_version(&spec.oci_version)?;
    let root = spec.root.as_ref().ok_or("root must be set")?;
    if root.path.is_empty() {
        return Err("root.path must be set".into());
    }
    let process = spec.process.as_ref().ok_or("process must be set")?;
    if process.args.is_empty() {
        return Err("process.args must not be empty".into());
    }
    if !process.cwd.starts_with('/') {
        return Err(format!("process.cwd {:?} is not an absolute path", process.cwd));
    }
    for (i, m) in spec.mounts.iter().enumerate() {
        if !m.destination.starts_with('/') {
            return Err(format!("mounts[{i}].destination {:?} is not an absolute path", m.destination));
        }
    }
    if let Some(linux) = &spec.linux {
        let mut seen: Vec<&str> = Vec::new();
        for (i, ns) in linux.namespaces.iter().enumerate() {
            if !NAMESPACES.contains(&ns.typ.as_str()) {
                return Err(format!("linux.namespaces[{i}].type {:?} is not a namespace type", ns.typ));
            }
            if seen.contains(&ns.typ.as_str()) {
                return Err(format!("linux.namespaces: duplicate namespace {:?}", ns.typ));
            }
            seen.push(&ns.typ);
        }
        let has_userns = seen.contains(&"user");
        if (!linux.uid_mappings.is_empty() || !linux.gid_mappings.is_empty()) && !has_userns {
            return Err("linux.uidMappings/gidMappings need a user namespace in linux.namespaces".into());
        }
        if !linux.time_offsets.is_empty() && !seen.contains(&"time") {
            return Err("linux.timeOffsets needs a time namespace in linux.namespaces".into());
        }
        if let Some(p) = &linux.rootfs_propagation {
            if !matches!(p.as_str(), "" | "private" | "rprivate" | "slave" | "rslave" | "shared" | "rshared" | "unbindable" | "runbindable") {
                return Err(format!("linux.rootfsPropagation {p:?} is not a propagation mode"));
            }
        }
        for (i, d) in linux.devices.iter().enumerate() {
            if !matches!(d.typ.as_str(), "c" | "b" | "u" | "p") {
                return Err(format!("linux.devices[{i}].type {:?} must be one of c, b, u, p", d.typ));
            }
            // Read as the container will see it: `..` is resolved, not compared as text.
            let clean = crate::rootfs_path::clean_abs(&d.path);
            if !d.path.starts_with('/') || !clean.starts_with("/dev/") {
                return Err(format!("linux.devices[{i}].path {:?} must be an absolute path under /dev (it is {clean:?})", d.path));
            }
        }
        if let Some(h) = &spec.hostname {
            if !h.is_empty() && !seen.contains(&"uts") {
                return Err("hostname needs a new uts namespace in linux.namespaces".into());
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: &str) -> Result<(), String> {
        validate(&parse_config(json.as_bytes())?)
    }

    #[test]
    fn malformed_json_names_the_line() {
        let e = parse_config(b"{\n \"ociVersion\": 1\n}").unwrap_err();
        assert!(e.contains("line 2"), "{e}");
    }

    #[test]
    fn a_value_of_the_wrong_type_names_its_field() {
        let e = parse_config(br#"{"ociVersion":"1.0.2","process":{"user":{"uid":"root"}}}"#).unwrap_err();
        assert!(e.contains("process.user.uid:"), "{e}");
        let e = parse_config(br#"{"mounts":[{"destination":"/a"},{"destination":"/b","options":"ro"}]}"#).unwrap_err();
        assert!(e.contains("mounts[1].options:"), "{e}");
        let e = parse_config(br#"{"linux":{"devices":[{"path":"/dev/x","type":"c","major":"one"}]}}"#).unwrap_err();
        assert!(e.contains("linux.devices[0].major:"), "{e}");
    }

    #[test]
    fn trailing_bytes_after_the_config_are_refused() {
        let e = parse_config(br#"{"ociVersion":"1.0.2"} x"#).unwrap_err();
        assert!(e.contains("trailing characters"), "{e}");
    }

    #[test]
    fn relative_cwd_is_refused() {
        let e = spec(r#"{"ociVersion":"1.0.2","root":{"path":"r"},"process":{"args":["sh"],"cwd":"tmp"}}"#).unwrap_err();
        assert!(e.contains("process.cwd"), "{e}");
    }

    #[test]
    fn unknown_namespace_is_named() {
        let e =
            spec(r#"{"ociVersion":"1.0.2","root":{"path":"r"},"process":{"args":["sh"],"cwd":"/"},"linux":{"namespaces":[{"type":"bogus"}]}}"#).unwrap_err();
        assert!(e.contains("linux.namespaces[0].type"), "{e}");
    }

    #[test]
    fn hostname_without_uts_namespace_is_refused() {
        let e = spec(r#"{"ociVersion":"1.0.2","root":{"path":"r"},"hostname":"x","process":{"args":["sh"],"cwd":"/"},"linux":{}}"#).unwrap_err();
        assert!(e.contains("uts"), "{e}");
    }

    fn with_version(v: &str) -> Result<(), String> {
        spec(&format!(r#"{{"ociVersion":{v:?},"root":{{"path":"r"}},"process":{{"args":["sh"],"cwd":"/"}}}}"#))
    }

    #[test]
    fn every_1_x_oci_version_is_read_and_others_are_refused() {
        for v in ["1.0.0", "1.0.2", "1.0.2-dev", "1.1.0", "1.2.0", "1.2.1", "1.3.0", "1.3.0-rc.1", "1.2.0+dirty"] {
            with_version(v).unwrap_or_else(|e| panic!("{v}: {e}"));
        }
        for v in ["1.0", "one", "1.0.x", "v1.0.2", "1..0", "1.0.2-", ""] {
            let e = with_version(v).unwrap_err();
            assert!(e.contains("ociVersion"), "{v}: {e}");
        }
        assert!(with_version("2.0.0").unwrap_err().contains("not supported"));
        assert!(with_version("1.0").unwrap_err().contains("not a version"));
    }

    #[test]
    fn go_nulls_read_as_absent_arrays_and_objects() {
        let json = r#"{"ociVersion":"1.2.0","root":{"path":"r"},"mounts":null,"annotations":null,
            "process":{"args":["sh"],"cwd":"/","env":null,"rlimits":null,"user":{"uid":0,"gid":0,"additionalGids":null},
              "capabilities":{"bounding":null,"effective":["CAP_KILL"]}},
            "hooks":{"prestart":null,"poststop":[{"path":"/bin/true","args":null,"env":null}]},
            "linux":{"namespaces":null,"uidMappings":null,"devices":null,"sysctl":null,"maskedPaths":null,"readonlyPaths":null,
              "resources":{"devices":null,"hugepageLimits":null,"blockIO":{"weightDevice":null,"throttleReadBpsDevice":null},
                "network":{"priorities":null}},
              "seccomp":{"defaultAction":"SCMP_ACT_ALLOW","architectures":null,"flags":null,
                "syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_ERRNO","args":null},{"names":null,"action":"SCMP_ACT_ALLOW"}]}}}"#;
        let s = parse_config(json.as_bytes()).unwrap();
        validate(&s).unwrap();
        let linux = s.linux.as_ref().unwrap();
        assert!(s.mounts.is_empty() && s.annotations.is_empty() && linux.namespaces.is_empty() && linux.masked_paths.is_empty());
        let seccomp = linux.seccomp.as_ref().unwrap();
        assert!(seccomp.syscalls[0].args.is_empty() && seccomp.syscalls[1].names.is_empty());
        assert_eq!(s.hooks.as_ref().unwrap().poststop[0].args, Vec::<String>::new());
        assert!(s.process.as_ref().unwrap().capabilities.as_ref().unwrap().bounding.is_none());
    }

    #[test]
    fn device_paths_that_leave_dev_are_refused_naming_the_field() {
        let with_device = |path: &str| {
            spec(&format!(
                r#"{{"ociVersion":"1.0.2","root":{{"path":"r"}},"process":{{"args":["sh"],"cwd":"/"}},"linux":{{"devices":[{{"type":"c","path":"/dev/null","major":1,"minor":3}},{{"type":"b","path":{path:?},"major":7,"minor":0}}]}}}}"#
            ))
        };
        for bad in ["/dev/../etc/x", "/dev/..", "/dev", "/dev/", "/dev/./../root/x", "/etc/x", "dev/x", "/dev/a/../../x"] {
            let e = with_device(bad).unwrap_err();
            assert!(e.contains("linux.devices[1].path") && e.contains("under /dev"), "{bad}: {e}");
        }
        for good in ["/dev/loop0", "/dev/net/tun", "/dev/a/../b", "//dev//x"] {
            with_device(good).unwrap_or_else(|e| panic!("{good}: {e}"));
        }
    }

    #[test]
    fn default_config_is_valid() {
        validate(&crate::default_config::default_spec(false)).unwrap();
        validate(&crate::default_config::default_spec(true)).unwrap();
    }

    #[test]
    fn io_words_are_runc_style() {
        let e = std::fs::read("/nonexistent/x").unwrap_err();
        assert_eq!(io_words(&e), "no such file or directory");
    }
}
