//! What `build` flags give every RUN container: `--add-host` (lines of /etc/hosts),
//! `--shm-size` (the /dev/shm tmpfs), `--ulimit` (process rlimits) and `--cgroup-parent`
//! (the cgroup the containers go under), with docker's value syntax.

use berth_spec::config::{Rlimit, Spec};

/// The RUN settings of a build; the default changes nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunSettings {
    /// (host name, address), in flag order.
    pub add_hosts: Vec<(String, String)>,
    /// Bytes.
    pub shm_size: Option<u64>,
    /// (RLIMIT_ name, soft, hard).
    pub ulimits: Vec<(String, u64, u64)>,
    pub cgroup_parent: Option<String>,
}

/// docker's `--ulimit` names.
const ULIMITS: &[&str] =
    &["core", "cpu", "data", "fsize", "locks", "memlock", "msgqueue", "nice", "nofile", "nproc", "rss", "rtprio", "rttime", "sigpending", "stack"];

impl RunSettings {
    /// `HOST:IP` (or `HOST=IP`); the address may be IPv6 (`HOST:::1`, `HOST=[::1]`).
    pub fn add_host(&mut self, s: &str) -> Result<(), String> {
        let bad = |why: &str| format!("invalid --add-host {s:?}: {why}");
        let (host, ip) = match s.split_once('=') {
            Some(p) => p,
            None => s.split_once(':').ok_or_else(|| bad("want HOST:IP"))?,
        };
        let ip = ip.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() || host.chars().any(|c| c.is_whitespace() || c == '#') {
            return Err(bad("bad host name"));
        }
        if ip == "host-gateway" {
            return Err(bad("host-gateway is not supported (RUN shares the host's network: use 127.0.0.1)"));
        }
        ip.parse::<std::net::IpAddr>().map_err(|_| bad(&format!("{ip:?} is not an IP address")))?;
        self.add_hosts.push((host.to_string(), ip.to_string()));
        Ok(())
    }

    /// `64m`, `1g`, `1048576` (bytes), as docker's RAM sizes (`k`, `m`, `g`, `t`, with
    /// an optional `b` or `ib`: powers of 1024).
    pub fn set_shm_size(&mut self, s: &str) -> Result<(), String> {
        let n = ram_bytes(s).filter(|n| *n > 0).ok_or_else(|| format!("invalid --shm-size {s:?}: want a size such as 64m or 1g"))?;
        self.shm_size = Some(n);
        Ok(())
    }

    /// `NAME=SOFT[:HARD]` (`-1` or `unlimited`: no limit); a later one of the same name
    /// replaces an earlier one.
    pub fn add_ulimit(&mut self, s: &str) -> Result<(), String> {
        let bad = |why: &str| format!("invalid --ulimit {s:?}: {why}");
        let (name, v) = s.split_once('=').ok_or_else(|| bad("want NAME=SOFT[:HARD]"))?;
        if !ULIMITS.contains(&name) {
            return Err(bad(&format!("unknown name {name:?} (want one of {})", ULIMITS.join(", "))));
        }
        let num = |x: &str| -> Result<u64, String> {
            match x {
                "-1" | "unlimited" => Ok(u64::MAX),
                _ => x.parse::<u64>().map_err(|_| bad(&format!("{x:?} is not a number"))),
            }
        };
        let (soft, hard) = match v.split_once(':') {
            Some((a, b)) => (num(a)?, num(b)?),
            None => (num(v)?, num(v)?),
        };
        if soft > hard {
            return Err(bad("the soft limit is above the hard limit"));
        }
        let kind = format!("RLIMIT_{}", name.to_ascii_uppercase());
        self.ulimits.retain(|(k, _, _)| *k != kind);
        self.ulimits.push((kind, soft, hard));
        Ok(())
    }

    /// A cgroup path (absolute, or relative to berth's own cgroup).
    pub fn set_cgroup_parent(&mut self, s: &str) -> Result<(), String> {
        if s.is_empty() || s.split('/').any(|c| c == "..") || s.contains(':') {
            return Err(format!("invalid --cgroup-parent {s:?}: want a cgroup path such as /ci/builds"));
        }
        self.cgroup_parent = Some(s.trim_end_matches('/').to_string());
        Ok(())
    }

    /// What goes into RUN's cache key: a step run with other settings may have made
    /// something else. Empty when nothing is set, so keys without flags do not change.
    pub fn key_fields(&self) -> Vec<String> {
        let mut v: Vec<String> = self.add_hosts.iter().map(|(h, ip)| format!("add-host={h}:{ip}")).collect();
        if let Some(n) = self.shm_size {
            v.push(format!("shm-size={n}"));
        }
        v.extend(self.ulimits.iter().map(|(k, s, h)| format!("ulimit={k}={s}:{h}")));
        if let Some(p) = &self.cgroup_parent {
            v.push(format!("cgroup-parent={p}"));
        }
        v
    }

    /// The /etc/hosts lines the flags add.
    pub fn hosts_lines(&self) -> String {
        self.add_hosts.iter().map(|(h, ip)| format!("{ip}\t{h}\n")).collect()
    }

    /// Applies the shm size, rlimits and cgroup path to the container config of `id`.
    pub fn apply(&self, spec: &mut Spec, id: &str) {
        if let Some(n) = self.shm_size {
            for m in spec.mounts.iter_mut().filter(|m| m.destination == "/dev/shm") {
                m.options.retain(|o| !o.starts_with("size="));
                m.options.push(format!("size={}k", n.div_ceil(1024)));
            }
        }
        for (kind, soft, hard) in &self.ulimits {
            let rl = &mut spec.process.get_or_insert_with(Default::default).rlimits;
            rl.retain(|r| r.typ != *kind);
            rl.push(Rlimit { typ: kind.clone(), soft: *soft, hard: *hard });
        }
        if let Some(p) = &self.cgroup_parent {
            spec.linux.get_or_insert_with(Default::default).cgroups_path = Some(format!("{p}/{id}"));
        }
    }
}

fn ram_bytes(s: &str) -> Option<u64> {
    let t = s.trim().to_ascii_lowercase();
    let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(digits);
    let n: u64 = num.parse().ok()?;
    let unit = unit.strip_suffix("ib").or_else(|| unit.strip_suffix('b')).unwrap_or(unit);
    let mult: u64 = match unit {
        "" => 1,
        "k" => 1 << 10,
        "m" => 1 << 20,
        "g" => 1 << 30,
        "t" => 1 << 40,
        _ => return None,
    };
    n.checked_mul(mult)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flag_values_parse_as_docker_takes_them() {
        let mut s = RunSettings::default();
        s.add_host("db:10.0.0.5").unwrap();
        s.add_host("v6=[::1]").unwrap();
        s.add_host("v6b:::2").unwrap();
        assert_eq!(s.hosts_lines(), "10.0.0.5\tdb\n::1\tv6\n::2\tv6b\n");
        for bad in ["nohost", "db:not-an-ip", ":1.2.3.4", "gw:host-gateway"] {
            assert!(s.add_host(bad).unwrap_err().contains(bad), "{bad}");
        }
        s.set_shm_size("64m").unwrap();
        assert_eq!(s.shm_size, Some(64 << 20));
        s.set_shm_size("1GiB").unwrap();
        assert_eq!(s.shm_size, Some(1 << 30));
        s.set_shm_size("4096").unwrap();
        assert_eq!(s.shm_size, Some(4096));
        for bad in ["", "0", "12x", "m"] {
            assert!(s.set_shm_size(bad).unwrap_err().contains("--shm-size"), "{bad}");
        }
        s.add_ulimit("nofile=1024:2048").unwrap();
        s.add_ulimit("nproc=-1").unwrap();
        s.add_ulimit("nofile=512").unwrap();
        assert_eq!(s.ulimits, [("RLIMIT_NPROC".to_string(), u64::MAX, u64::MAX), ("RLIMIT_NOFILE".to_string(), 512, 512)]);
        for bad in ["nofile", "bogus=1", "nofile=2:1", "nofile=x"] {
            assert!(s.add_ulimit(bad).unwrap_err().contains("--ulimit"), "{bad}");
        }
        assert!(s.set_cgroup_parent("../escape").is_err());
        s.set_cgroup_parent("/ci/builds/").unwrap();
        assert_eq!(s.cgroup_parent.as_deref(), Some("/ci/builds"));
        assert!(RunSettings::default().key_fields().is_empty());
        assert_eq!(s.key_fields().len(), 3 + 1 + 2 + 1);
    }

    #[test]
    fn settings_land_in_the_container_config() {
        let mut spec: Spec = serde_json::from_value(berth_spec::default_config::default_spec_json(false)).unwrap();
        let mut s = RunSettings::default();
        s.set_shm_size("128m").unwrap();
        s.add_ulimit("nofile=4096:8192").unwrap();
        s.set_cgroup_parent("/ci").unwrap();
        s.apply(&mut spec, "bb-1");
        let shm = spec.mounts.iter().find(|m| m.destination == "/dev/shm").unwrap();
        assert!(shm.options.contains(&"size=131072k".to_string()) && shm.options.iter().filter(|o| o.starts_with("size=")).count() == 1, "{shm:?}");
        let rl = &spec.process.as_ref().unwrap().rlimits;
        assert!(rl.iter().any(|r| r.typ == "RLIMIT_NOFILE" && r.soft == 4096 && r.hard == 8192) && rl.len() == 1, "{rl:?}");
        assert_eq!(spec.linux.as_ref().unwrap().cgroups_path.as_deref(), Some("/ci/bb-1"));
    }
}
