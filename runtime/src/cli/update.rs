//! `berth update [flags] ID`: change the resource limits of a container, with runc's
//! flags, or from a LinuxResources JSON object (`-r FILE`, `-r -` for stdin, which is
//! what dockerd sends). As in runc, only the memory limits (limit, reservation, swap,
//! kernel, kernelTCP), cpu, pids, the block I/O weight and the v2 `unified` map are
//! taken from the JSON; unset or zero values change nothing. Device rules are left alone.

use super::args::{self, opt, Flag};
use super::Global;
use crate::container::{Container, Status};
use crate::error::{Error, Result};
use berth_spec::{BlockIo, Cpu, Memory, Pids, Resources};

const FLAGS: &[Flag] = &[
    opt(&["resources", "r"]),
    opt(&["blkio-weight"]),
    opt(&["cpu-period"]),
    opt(&["cpu-quota"]),
    opt(&["cpu-share", "cpu-shares"]),
    opt(&["cpu-rt-period"]),
    opt(&["cpu-rt-runtime"]),
    opt(&["cpuset-cpus"]),
    opt(&["cpuset-mems"]),
    opt(&["kernel-memory"]),
    opt(&["kernel-memory-tcp"]),
    opt(&["memory"]),
    opt(&["memory-reservation"]),
    opt(&["memory-swap"]),
    opt(&["pids-limit"]),
    opt(&["l3-cache-schema"]),
    opt(&["mem-bw-schema"]),
];

pub fn main(g: &Global, a: &[String]) -> Result<()> {
    let p = args::parse(a, FLAGS, false)?;
    let id = super::require_id(&p, "update")?;
    let r = match p.get("resources") {
        Some(src) => from_json(src)?,
        None => from_flags(&p)?,
    };
    let c = Container::load(&g.root, &id)?;
    if matches!(c.status(), Status::Stopped | Status::Creating) {
        return Err(Error::new("container not running"));
    }
    c.cgroup().update(&r)
}

fn from_json(src: &str) -> Result<Resources> {
    let data = if src == "-" {
        let mut v = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut v).map_err(|e| Error::new(format!("read resources from stdin: {}", Error::from(e))))?;
        v
    } else {
        std::fs::read(src).map_err(|e| Error::new(format!("open {src}: {}", Error::from(e))))?
    };
    let full: Resources = serde_json::from_slice(&data).map_err(|e| Error::new(format!("decode resources: {e}")))?;
    Ok(Resources {
        memory: full.memory.map(|m| Memory {
            limit: m.limit,
            reservation: m.reservation,
            swap: m.swap,
            kernel: m.kernel,
            kernel_tcp: m.kernel_tcp,
            ..Default::default()
        }),
        cpu: full.cpu,
        pids: full.pids,
        block_io: full.block_io.map(|b| BlockIo { weight: b.weight, ..Default::default() }),
        unified: full.unified,
        ..Default::default()
    })
}

fn from_flags(p: &args::Parsed) -> Result<Resources> {
    if p.get("l3-cache-schema").is_some() || p.get("mem-bw-schema").is_some() {
        return Err(Error::new("Intel RDT (--l3-cache-schema, --mem-bw-schema) is not supported by berth"));
    }
    let uint = |name: &str| -> Result<Option<u64>> {
        p.get(name)
            .filter(|v| !v.is_empty())
            .map(|v| v.parse::<u64>().map_err(|_| Error::new(format!("invalid value for {name}: {v:?} is not an unsigned integer"))))
            .transpose()
    };
    let int = |name: &str| -> Result<Option<i64>> {
        p.get(name)
            .filter(|v| !v.is_empty())
            .map(|v| v.parse::<i64>().map_err(|_| Error::new(format!("invalid value for {name}: {v:?} is not an integer"))))
            .transpose()
    };
    let mem = |name: &str| -> Result<Option<i64>> {
        p.get(name).filter(|v| !v.is_empty()).map(|v| ram_in_bytes(v).map_err(|e| Error::new(format!("invalid value for {name}: {e}")))).transpose()
    };
    // urfave/cli int flags
    let int_flag = |name: &str| -> Result<i64> {
        match p.get(name) {
            None => Ok(0),
            Some(v) => v.parse::<i64>().map_err(|_| Error::new(format!("invalid value {v:?} for flag -{name}: parse error"))),
        }
    };
    let blkio = int_flag("blkio-weight")?;
    if !(0..=u16::MAX as i64).contains(&blkio) {
        return Err(Error::new(format!("invalid value for blkio-weight: {blkio}")));
    }
    let memory = Memory {
        limit: mem("memory")?,
        reservation: mem("memory-reservation")?,
        swap: mem("memory-swap")?,
        kernel: mem("kernel-memory")?,
        kernel_tcp: mem("kernel-memory-tcp")?,
        ..Default::default()
    };
    let cpu = Cpu {
        shares: uint("cpu-share")?,
        quota: int("cpu-quota")?,
        period: uint("cpu-period")?,
        realtime_runtime: int("cpu-rt-runtime")?,
        realtime_period: uint("cpu-rt-period")?,
        cpus: p.get("cpuset-cpus").filter(|v| !v.is_empty()).map(String::from),
        mems: p.get("cpuset-mems").filter(|v| !v.is_empty()).map(String::from),
        ..Default::default()
    };
    Ok(Resources {
        memory: Some(memory),
        cpu: Some(cpu),
        pids: Some(Pids { limit: int_flag("pids-limit")? }),
        block_io: Some(BlockIo { weight: Some(blkio as u16), ..Default::default() }),
        ..Default::default()
    })
}

/// A memory size as docker's `units.RAMInBytes` reads it: "-1", a number with an
/// optional fraction and an optional binary unit (k, m, g, t, p; "kb", "KiB" ...).
pub fn ram_in_bytes(s: &str) -> Result<i64> {
    if s == "-1" {
        return Ok(-1);
    }
    let bad = || Error::new(format!("invalid size: '{s}'"));
    let num_end = s.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(s.len());
    let (num, mut rest) = s.split_at(num_end);
    if num.is_empty() || !num.starts_with(|c: char| c.is_ascii_digit()) || num.ends_with('.') || num.contains("..") {
        return Err(bad());
    }
    let n: f64 = num.parse().map_err(|_| bad())?;
    rest = rest.strip_prefix(' ').unwrap_or(rest);
    let mut chars = rest.chars().peekable();
    let mul: u64 = match chars.peek().map(|c| c.to_ascii_lowercase()) {
        Some('k') => 1 << 10,
        Some('m') => 1 << 20,
        Some('g') => 1 << 30,
        Some('t') => 1 << 40,
        Some('p') => 1 << 50,
        _ => 1,
    };
    if mul != 1 {
        chars.next();
    }
    if chars.peek().is_some_and(|c| c.eq_ignore_ascii_case(&'i')) {
        chars.next();
    }
    if chars.peek().is_some_and(|c| c.eq_ignore_ascii_case(&'b')) {
        chars.next();
    }
    if chars.next().is_some() {
        return Err(bad());
    }
    Ok((n * mul as f64) as i64)
}

#[cfg(test)]
mod tests {
    use super::ram_in_bytes;

    #[test]
    fn memory_sizes_read_like_docker() {
        assert_eq!(ram_in_bytes("-1").unwrap(), -1);
        assert_eq!(ram_in_bytes("1024").unwrap(), 1024);
        assert_eq!(ram_in_bytes("16m").unwrap(), 16 << 20);
        assert_eq!(ram_in_bytes("16M").unwrap(), 16 << 20);
        assert_eq!(ram_in_bytes("1g").unwrap(), 1 << 30);
        assert_eq!(ram_in_bytes("1.5k").unwrap(), 1536);
        assert_eq!(ram_in_bytes("2kb").unwrap(), 2048);
        assert_eq!(ram_in_bytes("2KiB").unwrap(), 2048);
        assert_eq!(ram_in_bytes("3 mb").unwrap(), 3 << 20);
        for bad in ["", "m", "-2", "1x", "1mm", "1..2", "1.2.3", " 1", "1.m"] {
            assert!(ram_in_bytes(bad).is_err(), "{bad:?}");
        }
    }
}
