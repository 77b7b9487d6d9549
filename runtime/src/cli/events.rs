//! `berth events [--stats] [--interval 5s] ID`: the container's resource usage as runc
//! prints it, `{"type":"stats","id":ID,"data":{...}}`, once (`--stats`) or every interval,
//! and `{"type":"oom","id":ID}` when the kernel kills in it for memory. The stream ends
//! when the container stops.

use super::args::{self, flag, opt, Flag};
use super::Global;
use crate::container::{Container, Status};
use crate::error::{Error, Result};
use crate::linux::cgroups::stats;
use serde::Serialize;
use std::io::Write;
use std::time::{Duration, Instant};

const FLAGS: &[Flag] = &[opt(&["interval"]), flag(&["stats"])];

#[derive(Serialize)]
struct Event<'a> {
    #[serde(rename = "type")]
    typ: &'a str,
    id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<stats::Stats>,
}

pub fn main(g: &Global, a: &[String]) -> Result<()> {
    let p = args::parse(a, FLAGS, false)?;
    let id = super::require_id(&p, "events")?;
    let interval = parse_duration(p.get("interval").unwrap_or("5s"))?;
    if interval.is_zero() {
        return Err(Error::new("duration interval must be greater than 0"));
    }
    let mut c = Container::load(&g.root, &id)?;
    // Others may work on the container while this watches.
    c.unlock();
    if matches!(c.status(), Status::Stopped | Status::Creating) {
        return Err(Error::new(format!("container with id {id} is not running")));
    }
    let cg = c.cgroup();
    let mut out = std::io::stdout();
    let mut emit = |e: &Event| -> bool {
        let line = serde_json::to_string(e).expect("event serializes");
        writeln!(out, "{line}").and_then(|_| out.flush()).is_ok()
    };
    let stats_event = || Event { typ: "stats", id: &id, data: Some(cg.stats()) };
    if p.has("stats") {
        emit(&stats_event());
        return Ok(());
    }
    let mut oom = cg.oom_watch();
    let oom_event = Event { typ: "oom", id: &id, data: None };
    let mut next = Instant::now() + interval;
    loop {
        let now = Instant::now();
        if now >= next {
            if !emit(&stats_event()) {
                return Ok(());
            }
            next = (next + interval).max(now);
        }
        let wait = next.saturating_duration_since(Instant::now()).min(Duration::from_millis(200));
        if oom.wait(wait) && !emit(&oom_event) {
            return Ok(());
        }
        if !c.init_alive() {
            // The kill that stopped it may have been for memory.
            if oom.wait(Duration::ZERO) {
                emit(&oom_event);
            }
            return Ok(());
        }
    }
}

/// A Go duration: "5s", "1.5s", "100ms", "1m30s", "2h", "250us".
pub fn parse_duration(s: &str) -> Result<Duration> {
    let bad = || Error::new(format!("invalid value {s:?} for flag -interval: time: invalid duration {s:?}"));
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    let mut rest = s;
    let mut total = 0f64;
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let n_end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).ok_or_else(bad)?;
        let n: f64 = rest[..n_end].parse().map_err(|_| bad())?;
        rest = &rest[n_end..];
        let u_end = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let unit = match &rest[..u_end] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(bad()),
        };
        total += n * unit;
        rest = &rest[u_end..];
    }
    Ok(Duration::from_secs_f64(total))
}

#[cfg(test)]
mod tests {
    use super::parse_duration;
    use std::time::Duration;

    #[test]
    fn go_durations() {
        assert_eq!(parse_duration("5s").unwrap(), Duration::from_secs(5));
        assert_eq!(parse_duration("100ms").unwrap(), Duration::from_millis(100));
        assert_eq!(parse_duration("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("0").unwrap(), Duration::ZERO);
        for bad in ["", "5", "s", "5x", "-1s"] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
    }
}
