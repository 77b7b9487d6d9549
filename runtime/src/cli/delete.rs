//! `berth delete [--force] ID`: remove a stopped (or, forced, a running) container and
//! everything it holds, also what a create that was killed half way had made (its
//! state.json names it). An unknown id with --force is not an error: engines call it
//! during cleanup.

use super::args::{self, flag, Flag};
use super::Global;
use crate::container::{Container, Status};
use crate::error::{Error, Result};

const FLAGS: &[Flag] = &[flag(&["force", "f"])];

pub fn main(g: &Global, a: &[String]) -> Result<()> {
    let p = args::parse(a, FLAGS, false)?;
    let id = super::require_id(&p, "delete")?;
    let force = p.has("force");
    let c = match Container::load(&g.root, &id) {
        Ok(c) => c,
        Err(_) if force => {
            // Gone (or never there): nothing to do. The directory of an unreadable
            // state.json is removed all the same.
            crate::container::validate_id(&id)?;
            let _ = std::fs::remove_dir_all(crate::container::state_dir(&g.root, &id));
            return Ok(());
        }
        Err(e) => return Err(e),
    };
    match c.status() {
        Status::Stopped | Status::Created => {}
        // A create that was killed leaves a container "creating" while its init lives:
        // only --force ends it.
        _ if force => {}
        s => return Err(Error::new(format!("cannot delete container {id} that is not stopped: {}", s.as_str()))),
    }
    c.destroy()
}
