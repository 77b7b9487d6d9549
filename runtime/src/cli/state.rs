//! `berth state ID`: the OCI state as JSON.

use super::args;
use super::Global;
use crate::container::Container;
use crate::error::Result;

pub fn main(g: &Global, a: &[String]) -> Result<()> {
    let p = args::parse(a, &[], false)?;
    let id = super::require_id(&p, "state")?;
    let c = Container::load(&g.root, &id)?;
    super::out(&format!("{}\n", c.state_text()));
    Ok(())
}
