//! `berth pause ID`: freeze every process of a running (or created) container.

use super::args;
use super::Global;
use crate::container::{Container, Status};
use crate::error::{Error, Result};
use crate::linux::cgroups;

pub fn main(g: &Global, a: &[String]) -> Result<()> {
    let p = args::parse(a, &[], false)?;
    let id = super::require_id(&p, "pause")?;
    let c = Container::load(&g.root, &id)?;
    match c.status() {
        Status::Running | Status::Created => {}
        _ => return Err(Error::new("container not running")),
    }
    if !cgroups::can_freeze(&c.saved.cgroup) {
        return Err(Error::new("cannot pause: the freezer cgroup controller is not available on this host"));
    }
    cgroups::freeze(&c.saved.cgroup, true)
}
