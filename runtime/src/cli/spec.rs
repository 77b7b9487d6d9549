//! `berth spec [--bundle DIR] [--rootless]`: write runc's default config.json.

use super::args::{self, flag, opt, Flag};
use super::Global;
use crate::error::{Context, Error, Result};
use std::path::Path;

const FLAGS: &[Flag] = &[opt(&["bundle", "b"]), flag(&["rootless"])];

pub fn main(_g: &Global, a: &[String]) -> Result<()> {
    let p = args::parse(a, FLAGS, false)?;
    let dir = Path::new(p.get("bundle").unwrap_or("."));
    let file = dir.join("config.json");
    if file.exists() {
        return Err(Error::new("File config.json exists. Remove it first"));
    }
    let text = berth_spec::default_config::default_spec_text(p.has("rootless"));
    std::fs::write(&file, text).with_ctx(|| format!("write {}", file.display()))
}
