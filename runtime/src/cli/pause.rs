//! `berth pause ID`: freeze every process of a running (or created) container.

use super::args;
use super::Global;
use crate::container::{Container, Status};
use crate::error::{Error, Result};

pub fn main(g: &Global, a: &[String]) -> Result<()> {
    let p = args::parse(a, &[], false)?;
    let id = super::require_id(&p, "pause")?;
    let c = Container::load(&g.root, &id)?;
    match c.status() {
        Status::Running | Status::Created => {}
        _ => return Err(Error::new("container not running")),
    }
    let cg = c.cgroup();
    if !cg.can_freeze() {
        return Err(Error::new("cannot pause: the freezer cgroup controller is not available on this host"));
    }
    cg.freeze(true)
}
