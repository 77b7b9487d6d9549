//! A small flag parser with urfave/cli's rules, which runc uses and engines rely on:
//! `-f`, `--flag`, `-flag`, `--flag=value` and `--flag value`; flags stop at the first
//! positional argument or `--`. Written here rather than with clap because every berth
//! command is a fresh process: this costs nothing at start-up and little binary size.

use crate::error::{Error, Result};

pub struct Flag {
    /// Long name first, then any short aliases.
    pub names: &'static [&'static str],
    pub takes_value: bool,
}

pub const fn flag(names: &'static [&'static str]) -> Flag {
    Flag { names, takes_value: false }
}

pub const fn opt(names: &'static [&'static str]) -> Flag {
    Flag { names, takes_value: true }
}

#[derive(Default, Debug)]
pub struct Parsed {
    /// (long name, value); booleans carry "true"/"false".
    values: Vec<(&'static str, String)>,
    pub positional: Vec<String>,
}

impl Parsed {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.iter().rev().find(|(n, _)| *n == name).map(|(_, v)| v.as_str())
    }
    pub fn all(&self, name: &str) -> Vec<String> {
        self.values.iter().filter(|(n, _)| *n == name).map(|(_, v)| v.clone()).collect()
    }
    pub fn has(&self, name: &str) -> bool {
        matches!(self.get(name), Some(v) if v != "false")
    }
    pub fn positional(&self, i: usize) -> Option<&str> {
        self.positional.get(i).map(|s| s.as_str())
    }
}

/// The flags of a command, one a line, for its `--help`.
pub fn describe(flags: &[Flag]) -> String {
    let mut out = String::from("options:\n");
    for f in flags {
        let names: Vec<String> = f.names.iter().map(|n| if n.len() == 1 { format!("-{n}") } else { format!("--{n}") }).collect();
        let value = if f.takes_value { " value" } else { "" };
        out.push_str(&format!("   {}{value}\n", names.join(", ")));
    }
    out.push_str("   --help, -h\n");
    out
}

/// Parses `args` against `flags`. With `stop_at_positional`, everything from the first
/// positional argument on is positional (runc's `exec ID CMD -x` relies on this).
pub fn parse(args: &[String], flags: &[Flag], stop_at_positional: bool) -> Result<Parsed> {
    let mut out = Parsed::default();
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        i += 1;
        if a == "--" {
            out.positional.extend(args[i..].iter().cloned());
            break;
        }
        if a.len() < 2 || !a.starts_with('-') {
            out.positional.push(a.clone());
            if stop_at_positional {
                out.positional.extend(args[i..].iter().cloned());
                break;
            }
            continue;
        }
        let body = a.trim_start_matches('-');
        let (name, inline) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (body, None),
        };
        if (name == "help" || name == "h") && !flags.iter().any(|f| f.names.contains(&name)) {
            // Every command takes -h/--help, as urfave/cli gives every runc command;
            // podman probes `checkpoint --help` to learn whether the runtime has it.
            return Err(Error::help(describe(flags)));
        }
        let f = flags.iter().find(|f| f.names.contains(&name)).ok_or_else(|| Error::new(format!("flag provided but not defined: -{name}")))?;
        let value = if f.takes_value {
            match inline {
                Some(v) => v,
                None => {
                    let v = args.get(i).ok_or_else(|| Error::new(format!("flag needs an argument: -{name}")))?;
                    i += 1;
                    v.clone()
                }
            }
        } else {
            match inline.as_deref() {
                None | Some("true") | Some("1") => "true".into(),
                Some("false") | Some("0") => "false".into(),
                Some(v) => return Err(Error::new(format!("invalid boolean value {v:?} for -{name}"))),
            }
        };
        out.values.push((f.names[0], value));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FLAGS: &[Flag] = &[opt(&["bundle", "b"]), flag(&["detach", "d"]), opt(&["env", "e"])];

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn accepts_runc_flag_spellings() {
        let p = parse(&v(&["-b", "x", "--detach", "id"]), FLAGS, false).unwrap();
        assert_eq!(p.get("bundle"), Some("x"));
        assert!(p.has("detach"));
        assert_eq!(p.positional, v(&["id"]));
        let p = parse(&v(&["--bundle=y", "-detach=false", "id"]), FLAGS, false).unwrap();
        assert_eq!(p.get("bundle"), Some("y"));
        assert!(!p.has("detach"));
    }

    #[test]
    fn flags_after_the_first_positional_belong_to_the_command() {
        let p = parse(&v(&["-e", "A=1", "-e", "B=2", "id", "ls", "-l"]), FLAGS, true).unwrap();
        assert_eq!(p.all("env"), v(&["A=1", "B=2"]));
        assert_eq!(p.positional, v(&["id", "ls", "-l"]));
    }

    #[test]
    fn help_lists_the_commands_flags_but_not_after_the_commands_arguments() {
        for h in ["--help", "-h", "-help"] {
            let e = parse(&v(&["-d", h]), FLAGS, false).unwrap_err();
            let text = e.help_text().expect("a help request");
            assert!(text.contains("--bundle, -b value") && text.contains("--detach, -d\n"), "{text}");
        }
        // `exec ID sh --help`: the container's command's own flag.
        let p = parse(&v(&["id", "sh", "--help"]), FLAGS, true).unwrap();
        assert_eq!(p.positional, v(&["id", "sh", "--help"]));
    }

    #[test]
    fn unknown_flag_is_an_error() {
        let e = parse(&v(&["--nope"]), FLAGS, false).unwrap_err();
        assert!(e.msg().contains("-nope"));
    }
}
