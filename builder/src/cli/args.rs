//! A small hand-written argument parser (no clap: the builder's flags are few and
//! docker-like, and this keeps the binary free of a parser dependency): `--name value`,
//! `--name=value`, `-x value`, boolean flags, repeated flags, positionals; `--` ends flags.

use std::collections::BTreeMap;

/// One flag a command takes.
#[derive(Debug, Clone, Copy)]
pub struct Flag {
    pub long: &'static str,
    pub short: Option<char>,
    /// Takes a value (else boolean).
    pub value: bool,
}

pub const fn val(long: &'static str, short: Option<char>) -> Flag {
    Flag { long, short, value: true }
}

pub const fn switch(long: &'static str, short: Option<char>) -> Flag {
    Flag { long, short, value: false }
}

/// Parsed arguments.
#[derive(Debug, Default)]
pub struct Parsed {
    values: BTreeMap<&'static str, Vec<String>>,
    pub positionals: Vec<String>,
}

impl Parsed {
    pub fn all(&self, long: &str) -> Vec<String> {
        self.values.get(long).cloned().unwrap_or_default()
    }
    /// The last value given.
    pub fn one(&self, long: &str) -> Option<String> {
        self.values.get(long).and_then(|v| v.last().cloned())
    }
    pub fn has(&self, long: &str) -> bool {
        self.values.contains_key(long)
    }
}

/// Parses `args` (after the command name) against `flags`.
pub fn parse(args: &[String], flags: &[Flag]) -> crate::Result<Parsed> {
    let mut p = Parsed::default();
    let mut i = 0;
    let mut only_positionals = false;
    while i < args.len() {
        let a = &args[i];
        i += 1;
        if only_positionals || a == "-" || !a.starts_with('-') {
            p.positionals.push(a.clone());
            continue;
        }
        if a == "--" {
            only_positionals = true;
            continue;
        }
        let (flag, inline) = if let Some(long) = a.strip_prefix("--") {
            let (name, v) = match long.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (long, None),
            };
            (flags.iter().find(|f| f.long == name).ok_or_else(|| format!("unknown flag: --{name}"))?, v)
        } else {
            let mut chars = a[1..].chars();
            let c = chars.next().unwrap_or('-');
            let rest: String = chars.collect();
            let f = flags.iter().find(|f| f.short == Some(c)).ok_or_else(|| format!("unknown shorthand flag: '{c}' in {a}"))?;
            (f, if rest.is_empty() { None } else { Some(rest.trim_start_matches('=').to_string()) })
        };
        let value = if flag.value {
            match inline {
                Some(v) => v,
                None => {
                    let v = args.get(i).cloned().ok_or_else(|| format!("flag needs an argument: --{}", flag.long))?;
                    i += 1;
                    v
                }
            }
        } else {
            match inline.as_deref() {
                None | Some("true") => "true".to_string(),
                Some("false") => continue,
                Some(v) => return Err(format!("invalid value {v:?} for --{}", flag.long).into()),
            }
        };
        p.values.entry(flag.long).or_default().push(value);
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_docker_style() {
        let flags = [val("file", Some('f')), val("tag", Some('t')), switch("no-cache", None), val("build-arg", None)];
        let a: Vec<String> = ["-f", "D", "-tx:1", "--tag=y", "--no-cache", "--build-arg", "A=1", "ctx"].iter().map(|s| s.to_string()).collect();
        let p = parse(&a, &flags).unwrap();
        assert_eq!(p.one("file").as_deref(), Some("D"));
        assert_eq!(p.all("tag"), ["x:1", "y"]);
        assert!(p.has("no-cache"));
        assert_eq!(p.all("build-arg"), ["A=1"]);
        assert_eq!(p.positionals, ["ctx"]);
        assert!(parse(&["--bogus".to_string()], &flags).is_err());
        assert!(parse(&["-t".to_string()], &flags).is_err());
    }
}
