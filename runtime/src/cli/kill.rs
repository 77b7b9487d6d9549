//! `berth kill [--all] ID [SIGNAL]`: signal by name or number, TERM by default.

use super::args::{self, flag, Flag};
use super::Global;
use crate::container::{Container, Status};
use crate::error::{Error, Result};
use crate::linux::signals;

const FLAGS: &[Flag] = &[flag(&["all", "a"])];

pub fn main(g: &Global, a: &[String]) -> Result<()> {
    let p = args::parse(a, FLAGS, false)?;
    let id = super::require_id(&p, "kill")?;
    let sig_s = p.positional(1).unwrap_or("SIGTERM");
    let sig = signals::parse(sig_s).ok_or_else(|| Error::new(format!("unknown signal {sig_s:?}")))?;
    let c = Container::load(&g.root, &id)?;
    if c.status() == Status::Stopped {
        return Err(Error::new("container not running"));
    }
    if p.has("all") {
        c.signal_all(sig)
    } else {
        c.signal_init(sig)
    }
}
