//! `berth state ID`: the OCI state as JSON. It does not wait for a command working on
//! the container: during create the status is `creating` (with the init's pid once it
//! exists), never `created` before create has finished.

use super::args;
use super::Global;
use crate::container::Container;
use crate::error::Result;

pub fn main(g: &Global, a: &[String]) -> Result<()> {
    let p = args::parse(a, &[], false)?;
    let id = super::require_id(&p, "state")?;
    let c = Container::peek(&g.root, &id)?;
    super::out(&format!("{}\n", c.state_text()));
    Ok(())
}
