//! Instruction flags (`--name`, `--name=value`), checked as BuildKit's BFlags does.

use std::collections::HashMap;

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Bool,
    Str,
    /// May be given several times.
    Strs,
}

#[derive(Default)]
pub(crate) struct Flags {
    strs: HashMap<&'static str, Vec<String>>,
    bools: HashMap<&'static str, bool>,
}

impl Flags {
    pub(crate) fn string(&self, name: &str) -> Option<String> {
        self.strs.get(name).and_then(|v| v.last().cloned())
    }
    pub(crate) fn strings(&self, name: &str) -> Vec<String> {
        self.strs.get(name).cloned().unwrap_or_default()
    }
    /// `None` when the flag was not given.
    pub(crate) fn boolean(&self, name: &str) -> Option<bool> {
        self.bools.get(name).copied()
    }
    pub(crate) fn is_true(&self, name: &str) -> bool {
        self.boolean(name).unwrap_or(false)
    }
}

pub(crate) fn parse(args: &[String], spec: &[(&'static str, Kind)]) -> crate::Result<Flags> {
    let mut out = Flags::default();
    let mut used: Vec<&str> = Vec::new();
    for a in args {
        if a == "--" {
            break;
        }
        let Some(body) = a.strip_prefix("--") else {
            return Err(format!("arg should start with -- : {a}").into());
        };
        let (name, value) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (body, None),
        };
        let flag_name = format!("--{name}");
        let Some(&(key, kind)) = spec.iter().find(|(n, _)| *n == name) else {
            let hint = super::words::suggest(name, spec.iter().map(|(n, _)| *n)).map(|s| format!(" (did you mean --{s}?)")).unwrap_or_default();
            return Err(format!("unknown flag: {flag_name}{hint}").into());
        };
        if used.contains(&key) && kind != Kind::Strs {
            return Err(format!("duplicate flag specified: {flag_name}").into());
        }
        used.push(key);
        match kind {
            Kind::Bool => {
                if value == Some("") {
                    return Err(format!("missing a value on flag: {flag_name}").into());
                }
                let b = match value.map(str::to_ascii_lowercase).as_deref() {
                    None | Some("true") => true,
                    Some("false") => false,
                    Some(_) => return Err(format!("expecting boolean value for flag {flag_name}, not: {}", value.unwrap()).into()),
                };
                out.bools.insert(key, b);
            }
            Kind::Str | Kind::Strs => {
                let Some(v) = value else {
                    return Err(format!("missing a value on flag: {flag_name}").into());
                };
                out.strs.entry(key).or_default().push(v.to_string());
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    const SPEC: &[(&str, Kind)] = &[("from", Kind::Str), ("link", Kind::Bool), ("exclude", Kind::Strs)];

    #[test]
    fn parses() {
        let f = parse(&s(&["--from=a", "--link", "--exclude=x", "--exclude=y"]), SPEC).unwrap();
        assert_eq!(f.string("from").as_deref(), Some("a"));
        assert_eq!(f.boolean("link"), Some(true));
        assert_eq!(f.strings("exclude"), ["x", "y"]);
        let f = parse(&s(&["--link=FALSE"]), SPEC).unwrap();
        assert_eq!(f.boolean("link"), Some(false));
    }

    #[test]
    fn errors() {
        assert_eq!(parse(&s(&["--frm=a"]), SPEC).err().unwrap().to_string(), "unknown flag: --frm (did you mean --from?)");
        assert_eq!(parse(&s(&["--from=a", "--from=b"]), SPEC).err().unwrap().to_string(), "duplicate flag specified: --from");
        assert_eq!(parse(&s(&["--from"]), SPEC).err().unwrap().to_string(), "missing a value on flag: --from");
        assert_eq!(parse(&s(&["--link="]), SPEC).err().unwrap().to_string(), "missing a value on flag: --link");
        assert!(parse(&s(&["--link=maybe"]), SPEC).err().unwrap().to_string().contains("expecting boolean value"));
    }
}
