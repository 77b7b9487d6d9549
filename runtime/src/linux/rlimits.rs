//! `process.rlimits`, applied in the init before the user switch.

use crate::error::{Error, Result};
use berth_spec::Rlimit;

fn resource(name: &str) -> Option<libc::__rlimit_resource_t> {
    Some(match name {
        "RLIMIT_AS" => libc::RLIMIT_AS,
        "RLIMIT_CORE" => libc::RLIMIT_CORE,
        "RLIMIT_CPU" => libc::RLIMIT_CPU,
        "RLIMIT_DATA" => libc::RLIMIT_DATA,
        "RLIMIT_FSIZE" => libc::RLIMIT_FSIZE,
        "RLIMIT_LOCKS" => libc::RLIMIT_LOCKS,
        "RLIMIT_MEMLOCK" => libc::RLIMIT_MEMLOCK,
        "RLIMIT_MSGQUEUE" => libc::RLIMIT_MSGQUEUE,
        "RLIMIT_NICE" => libc::RLIMIT_NICE,
        "RLIMIT_NOFILE" => libc::RLIMIT_NOFILE,
        "RLIMIT_NPROC" => libc::RLIMIT_NPROC,
        "RLIMIT_RSS" => libc::RLIMIT_RSS,
        "RLIMIT_RTPRIO" => libc::RLIMIT_RTPRIO,
        "RLIMIT_RTTIME" => libc::RLIMIT_RTTIME,
        "RLIMIT_SIGPENDING" => libc::RLIMIT_SIGPENDING,
        "RLIMIT_STACK" => libc::RLIMIT_STACK,
        _ => return None,
    })
}

/// Checks the names before anything is started, so a typo fails create cleanly.
pub fn validate(rlimits: &[Rlimit]) -> Result<()> {
    for (i, r) in rlimits.iter().enumerate() {
        if resource(&r.typ).is_none() {
            return Err(Error::new(format!("process.rlimits[{i}].type: unknown rlimit {:?}", r.typ)));
        }
        if r.soft > r.hard {
            return Err(Error::new(format!("process.rlimits[{i}]: soft limit {} exceeds hard limit {}", r.soft, r.hard)));
        }
    }
    Ok(())
}

pub fn apply(rlimits: &[Rlimit]) -> Result<()> {
    for r in rlimits {
        let res = resource(&r.typ).ok_or_else(|| Error::new(format!("unknown rlimit {:?}", r.typ)))?;
        let lim = libc::rlimit { rlim_cur: r.soft, rlim_max: r.hard };
        // SAFETY: setrlimit reads one rlimit struct.
        if unsafe { libc::setrlimit(res, &lim) } != 0 {
            let e = std::io::Error::last_os_error();
            return Err(Error::new(format!("error setting rlimit type {}: {}", r.typ, berth_spec::bundle::io_words(&e))));
        }
    }
    Ok(())
}
