//! `berth ps [--format table|json] ID [ps options]`: the container's processes. json is
//! the array of their (host) pids; table runs `ps -ef` (or `ps` with the given options)
//! and keeps the header and the rows whose PID column is one of them.

use super::args::{self, opt, Flag};
use super::Global;
use crate::container::Container;
use crate::error::{Error, Result};

const FLAGS: &[Flag] = &[opt(&["format", "f"])];

pub fn main(g: &Global, a: &[String]) -> Result<()> {
    // Everything after the id goes to ps.
    let p = args::parse(a, FLAGS, true)?;
    let id = super::require_id(&p, "ps")?;
    let format = p.get("format").unwrap_or("table");
    if format != "table" && format != "json" {
        return Err(Error::new("invalid format option"));
    }
    let mut c = Container::load(&g.root, &id)?;
    c.unlock();
    let pids = c.cgroup().pids();
    if format == "json" {
        super::out(&format!("{}\n", serde_json::to_string(&pids).expect("json")));
        return Ok(());
    }
    let mut ps_args: Vec<String> = p.positional[1..].to_vec();
    if ps_args.is_empty() {
        ps_args = vec!["-ef".into()];
    }
    let out = std::process::Command::new("ps").args(&ps_args).output().map_err(|e| Error::new(format!("exec ps: {}", Error::from(e))))?;
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        text.push_str(&String::from_utf8_lossy(&out.stderr));
        return Err(Error::new(format!("{}: {}", out.status, text.trim_end())));
    }
    super::out(&filter_table(&text, &pids)?);
    Ok(())
}

/// The header and the rows of ps output whose PID column is in `pids`.
pub fn filter_table(text: &str, pids: &[i32]) -> Result<String> {
    let mut lines = text.lines();
    let header = lines.next().unwrap_or("");
    let idx = header.split_whitespace().position(|t| t == "PID").ok_or_else(|| Error::new("couldn't find PID field in ps output"))?;
    let mut out = format!("{header}\n");
    for l in lines.filter(|l| !l.is_empty()) {
        let field = l.split_whitespace().nth(idx).unwrap_or("");
        let pid: i32 = field.parse().map_err(|_| Error::new(format!("unexpected pid {field:?} in ps output")))?;
        if pids.contains(&pid) {
            out.push_str(l);
            out.push('\n');
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn rows_are_kept_by_pid_column() {
        let t = "UID PID PPID CMD\nroot 1 0 init\nroot 42 1 sleep\nroot 43 42 sh\n";
        assert_eq!(super::filter_table(t, &[42]).unwrap(), "UID PID PPID CMD\nroot 42 1 sleep\n");
        assert!(super::filter_table("A B\n1 2\n", &[1]).is_err());
    }
}
