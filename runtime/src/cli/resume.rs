//! `berth resume ID`: thaw a paused container.

use super::args;
use super::Global;
use crate::container::{Container, Status};
use crate::error::{Error, Result};

pub fn main(g: &Global, a: &[String]) -> Result<()> {
    let p = args::parse(a, &[], false)?;
    let id = super::require_id(&p, "resume")?;
    let c = Container::load(&g.root, &id)?;
    if c.status() != Status::Paused {
        return Err(Error::new("container not paused"));
    }
    c.cgroup().freeze(false)
}
