//! `berth delete [--force] ID`: remove a stopped (or, forced, a running) container and
//! everything it holds. An unknown id with --force is not an error: engines call it
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
            // A create that died half way may have left a directory without state.
            crate::container::validate_id(&id)?;
            let _ = std::fs::remove_dir_all(crate::container::state_dir(&g.root, &id));
            return Ok(());
        }
        Err(e) => return Err(e),
    };
    match c.status() {
        Status::Stopped | Status::Created => {}
        s if force => {
            let _ = s;
        }
        s => return Err(Error::new(format!("cannot delete container {id} that is not stopped: {}", s.as_str()))),
    }
    c.destroy()
}
