//! Where the binaries under test are, and which runtime they are.

use std::path::PathBuf;
use std::sync::OnceLock;

/// The Cargo workspace: the parent of this crate's directory.
pub fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().expect("integration/ has a parent").to_path_buf()
}

/// `$ENV` if set, else the release build of `name`, else the debug build (which may not
/// exist yet: the first command that runs it then fails with the path in the message).
fn locate(env: &str, name: &str) -> PathBuf {
    if let Some(p) = std::env::var_os(env).filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| workspace().join("target"));
    let release = target.join("release").join(name);
    if release.exists() {
        return release;
    }
    target.join("debug").join(name)
}

/// The runtime under test: `BERTH_RUNTIME`, or target/{release,debug}/berth.
pub fn runtime() -> PathBuf {
    static P: OnceLock<PathBuf> = OnceLock::new();
    P.get_or_init(|| locate("BERTH_RUNTIME", "berth")).clone()
}

/// The shim: `BERTH_SHIM`, or target/{release,debug}/berth-shim.
pub fn shim() -> PathBuf {
    static P: OnceLock<PathBuf> = OnceLock::new();
    P.get_or_init(|| locate("BERTH_SHIM", "berth-shim")).clone()
}

/// Which runtime `runtime()` is, from the first line of its `--version`. The tests are
/// validated against runc; where berth deliberately differs from it (or runc 1.1 lacks a
/// feature), a test branches on this and says why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Flavor {
    Berth,
    Runc { major: u32, minor: u32 },
    Other(String),
}

impl Flavor {
    /// runc older than `major.minor`.
    pub fn is_runc_before(&self, major: u32, minor: u32) -> bool {
        matches!(self, Flavor::Runc { major: a, minor: b } if (*a, *b) < (major, minor))
    }
    pub fn is_runc(&self) -> bool {
        matches!(self, Flavor::Runc { .. })
    }
    /// The name the runtime uses for itself in `--version` and error prefixes.
    pub fn name(&self) -> &str {
        match self {
            Flavor::Berth => "berth",
            Flavor::Runc { .. } => "runc",
            Flavor::Other(n) => n,
        }
    }
}

pub fn flavor() -> &'static Flavor {
    static F: OnceLock<Flavor> = OnceLock::new();
    F.get_or_init(|| {
        let bin = runtime();
        let out = crate::procs::output(std::process::Command::new(&bin).arg("--version"))
            .unwrap_or_else(|e| panic!("cannot run the runtime under test {}: {e} (build it, or set BERTH_RUNTIME)", bin.display()));
        parse_flavor(&String::from_utf8_lossy(&out.stdout))
    })
}

pub fn parse_flavor(version_text: &str) -> Flavor {
    let first = version_text.lines().next().unwrap_or("");
    let mut words = first.split_whitespace();
    let name = words.next().unwrap_or("").to_string();
    let version = words.nth(1).unwrap_or("");
    match name.as_str() {
        "berth" => Flavor::Berth,
        "runc" => {
            let mut nums = version.split(|c: char| !c.is_ascii_digit()).filter_map(|n| n.parse().ok());
            Flavor::Runc { major: nums.next().unwrap_or(0), minor: nums.next().unwrap_or(0) }
        }
        _ => Flavor::Other(name),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flavors_are_read_from_version_lines() {
        assert_eq!(parse_flavor("runc version 1.1.5+ds1\ncommit: x\n"), Flavor::Runc { major: 1, minor: 1 });
        assert!(parse_flavor("runc version 1.1.5").is_runc_before(1, 2));
        assert!(!parse_flavor("runc version 1.2.0").is_runc_before(1, 2));
        assert_eq!(parse_flavor("berth version 0.1.0\nspec: 1.0.2\n"), Flavor::Berth);
        assert_eq!(parse_flavor("crun version 1.8.1"), Flavor::Other("crun".into()));
    }
}
