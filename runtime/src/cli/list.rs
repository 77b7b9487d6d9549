//! `berth list [--format table|json] [-q]`

use super::args::{self, flag, opt, Flag};
use super::Global;
use crate::container::{list_ids, Container};
use crate::error::{Error, Result};

const FLAGS: &[Flag] = &[opt(&["format", "f"]), flag(&["quiet", "q"])];

pub fn main(g: &Global, a: &[String]) -> Result<()> {
    let p = args::parse(a, FLAGS, false)?;
    let mut containers = Vec::new();
    for id in list_ids(&g.root)? {
        // Without waiting: one being created shows as `creating`; one deleted meanwhile is skipped.
        if let Ok(c) = Container::peek(&g.root, &id) {
            containers.push(c);
        }
    }
    let states: Vec<_> = containers.iter().map(|c| c.state_out()).collect();
    if p.has("quiet") {
        for s in &states {
            super::out(&format!("{}\n", s.id));
        }
        return Ok(());
    }
    match p.get("format").unwrap_or("table") {
        "json" => {
            // runc prints null, not [], when there are none.
            if states.is_empty() {
                super::out("null\n");
            } else {
                super::out(&format!("{}\n", serde_json::to_string(&states).expect("json")));
            }
        }
        "table" => {
            let rows: Vec<[String; 6]> = states
                .iter()
                .map(|s| [s.id.to_string(), s.pid.to_string(), s.status.to_string(), s.bundle.to_string(), s.created.to_string(), s.owner.to_string()])
                .collect();
            print_table(&["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"], &rows);
        }
        f => return Err(Error::new(format!("invalid format option {f:?}"))),
    }
    Ok(())
}

/// Columns padded as Go's tabwriter does for runc (min width 12, padding 3).
fn print_table(head: &[&str; 6], rows: &[[String; 6]]) {
    let mut w = [0usize; 6];
    for (i, h) in head.iter().enumerate() {
        w[i] = h.len();
    }
    for r in rows {
        for i in 0..6 {
            w[i] = w[i].max(r[i].len());
        }
    }
    let line = |cells: [&str; 6]| {
        let mut s = String::new();
        for i in 0..6 {
            if i == 5 {
                s.push_str(cells[i]);
            } else {
                s.push_str(&format!("{:width$}", cells[i], width = (w[i] + 3).max(12)));
            }
        }
        super::out(&format!("{}\n", s.trim_end()));
    };
    line(*head);
    for r in rows {
        line([&r[0], &r[1], &r[2], &r[3], &r[4], &r[5]]);
    }
}
