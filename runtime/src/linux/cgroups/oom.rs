//! Waiting for OOM kills in a container's cgroup (`berth events`): an eventfd on v1's
//! memory.oom_control, or the oom_kill count of v2's memory.events, polled.

use super::v1;
use std::path::PathBuf;
use std::time::{Duration, Instant};

pub enum OomWatch {
    V1(v1::OomEvents),
    V2 { dir: PathBuf, seen: u64 },
    None,
}

impl OomWatch {
    /// Watches the v1 memory cgroup `dir`.
    pub fn v1(dir: Option<&std::path::Path>) -> OomWatch {
        match dir.map(v1::OomEvents::register) {
            Some(Ok(e)) => OomWatch::V1(e),
            Some(Err(e)) => {
                crate::logging::warn(&format!("no OOM events: {e}"));
                OomWatch::None
            }
            None => OomWatch::None,
        }
    }

    /// Watches the v2 cgroup `dir` (nothing to watch without the memory controller).
    pub fn v2(dir: &std::path::Path) -> OomWatch {
        match super::v2::oom_kills(dir) {
            Some(n) => OomWatch::V2 { dir: dir.to_path_buf(), seen: n },
            None => OomWatch::None,
        }
    }

    /// Waits up to `timeout`; true if an OOM happened.
    pub fn wait(&mut self, timeout: Duration) -> bool {
        match self {
            OomWatch::V1(e) => e.wait(timeout),
            OomWatch::V2 { dir, seen } => {
                let deadline = Instant::now() + timeout;
                loop {
                    if let Some(n) = super::v2::oom_kills(dir) {
                        if n > *seen {
                            *seen = n;
                            return true;
                        }
                    }
                    let now = Instant::now();
                    if now >= deadline {
                        return false;
                    }
                    std::thread::sleep((deadline - now).min(Duration::from_millis(100)));
                }
            }
            OomWatch::None => {
                std::thread::sleep(timeout);
                false
            }
        }
    }
}
