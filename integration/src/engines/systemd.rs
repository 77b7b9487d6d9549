//! What systemd says about the engines' cgroups when they use its driver: properties of
//! our slices and of the containers' scope units, through `systemctl` (which reaches PID 1
//! over its private socket). Only units a suite made are ever stopped.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

/// Debian's systemctl (/bin is a link to /usr/bin there).
pub const SYSTEMCTL: &str = "/usr/bin/systemctl";

/// Whether systemd is PID 1: its runtime dir exists (what sd_booted(3) checks) and PID 1
/// calls itself systemd.
pub fn booted() -> bool {
    Path::new("/run/systemd/system").is_dir() && std::fs::read_to_string("/proc/1/comm").map(|c| c.trim() == "systemd").unwrap_or(false)
}

fn systemctl(args: &[&str]) -> Result<String, String> {
    let out = crate::procs::output(Command::new(SYSTEMCTL).args(args)).map_err(|e| format!("{SYSTEMCTL} {}: {e}", args.join(" ")))?;
    if !out.status.success() {
        return Err(format!("{SYSTEMCTL} {} exited {}: {}", args.join(" "), out.status, String::from_utf8_lossy(&out.stderr).trim()));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `systemctl show -p P,.. UNIT`: the properties asked for (an unknown unit still answers,
/// with `LoadState=not-found`).
pub fn show(unit: &str, props: &[&str]) -> Result<BTreeMap<String, String>, String> {
    let out = systemctl(&["show", "-p", &props.join(","), "--", unit])?;
    Ok(out.lines().filter_map(|l| l.split_once('=')).map(|(k, v)| (k.to_string(), v.to_string())).collect())
}

/// One property of a unit ("" when systemd did not answer it).
pub fn property(unit: &str, prop: &str) -> Result<String, String> {
    Ok(show(unit, &[prop])?.remove(prop).unwrap_or_default())
}

/// `systemctl stop UNIT`, waiting for the job: for our own slices only.
pub fn stop(unit: &str) -> Result<(), String> {
    assert!(unit.starts_with("berth_e2e_") && unit.ends_with(".slice"), "only our own slices: {unit}");
    systemctl(&["stop", "--", unit]).map(|_| ())
}

/// `systemctl reset-failed UNIT`: systemd forgets a unit that failed (one in our slices).
pub fn reset_failed(unit: &str) -> Result<(), String> {
    systemctl(&["reset-failed", "--", unit]).map(|_| ())
}

/// The loaded units whose names match `pattern` (a systemctl glob).
pub fn units_matching(pattern: &str) -> Vec<String> {
    systemctl(&["list-units", "--all", "--plain", "--no-legend", "--", pattern])
        .map(|out| out.lines().filter_map(|l| l.split_whitespace().next().map(String::from)).collect())
        .unwrap_or_default()
}

/// Whether a unit is gone: never loaded, unloaded after it stopped, or stopped.
pub fn unit_gone(unit: &str) -> Result<bool, String> {
    let p = show(unit, &["LoadState", "ActiveState"])?;
    Ok(p.get("LoadState").map(String::as_str) == Some("not-found") || p.get("ActiveState").map(String::as_str) == Some("inactive"))
}

/// A time span as systemd prints it (`500ms`, `1s 500ms`, `infinity`), in microseconds.
pub fn parse_timespan(s: &str) -> Option<u64> {
    if s == "infinity" {
        return Some(u64::MAX);
    }
    let mut total = 0u64;
    for word in s.split_whitespace() {
        let split = word.find(|c: char| !c.is_ascii_digit() && c != '.')?;
        let (num, unit) = word.split_at(split);
        let per: f64 = match unit {
            "us" => 1.0,
            "ms" => 1e3,
            "s" => 1e6,
            "min" => 60e6,
            "h" => 3600e6,
            _ => return None,
        };
        total += (num.parse::<f64>().ok()? * per).round() as u64;
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::parse_timespan;

    #[test]
    fn timespans_as_systemd_prints_them() {
        assert_eq!(parse_timespan("500ms"), Some(500_000));
        assert_eq!(parse_timespan("1s 500ms"), Some(1_500_000));
        assert_eq!(parse_timespan("2s"), Some(2_000_000));
        assert_eq!(parse_timespan("infinity"), Some(u64::MAX));
        assert_eq!(parse_timespan("5 parsecs"), None);
    }
}
