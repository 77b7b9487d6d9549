//! Parser directives (`# syntax=`, `# escape=`, `# check=`) at the top of a Dockerfile.
//!
//! They must come before any instruction, comment or empty line; an unknown
//! directive, or anything that is not `# key=value`, ends them (later ones are
//! plain comments). Keys are case-insensitive and each may be given once.

/// One directive as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directive {
    /// Lower-case name: `syntax`, `escape` or `check`.
    pub name: String,
    pub value: String,
    pub line: usize,
}

/// The directives of a Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Directives {
    pub list: Vec<Directive>,
}

impl Directives {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.list.iter().find(|d| d.name == name).map(|d| d.value.as_str())
    }
    /// `# syntax=docker/dockerfile:1` (berth-build does not switch front ends; kept for reporting).
    pub fn syntax(&self) -> Option<&str> {
        self.get("syntax")
    }
    /// The escape character: `\` unless `# escape=`` ` ``.
    pub fn escape(&self) -> char {
        match self.get("escape") {
            Some("`") => '`',
            _ => '\\',
        }
    }
    /// `# check=skip=Rule1,Rule2;error=true`.
    pub fn check(&self) -> Option<CheckDirective> {
        self.get("check").map(CheckDirective::parse)
    }
}

/// The parsed `# check=` directive.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CheckDirective {
    /// Rules to skip (`all` skips all).
    pub skip: Vec<String>,
    /// Treat check warnings as errors.
    pub error: bool,
}

impl CheckDirective {
    pub fn parse(value: &str) -> CheckDirective {
        let mut c = CheckDirective::default();
        for part in value.split(';') {
            let Some((k, v)) = part.split_once('=') else { continue };
            match k.trim().to_ascii_lowercase().as_str() {
                "skip" => c.skip = v.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect(),
                "error" => c.error = v.trim().eq_ignore_ascii_case("true"),
                _ => {}
            }
        }
        c
    }
}

/// Line-by-line directive recognition.
#[derive(Default)]
pub(crate) struct DirectiveParser {
    pub(crate) done: bool,
    pub(crate) found: Directives,
}

impl DirectiveParser {
    /// Look at one (newline-trimmed) line; `Ok(true)` if it was a directive.
    pub(crate) fn parse_line(&mut self, line: &str, lineno: usize) -> crate::Result<bool> {
        if self.done {
            return Ok(false);
        }
        let Some(rest) = line.strip_prefix('#') else {
            self.done = true;
            return Ok(false);
        };
        let rest = rest.trim_start();
        // ^([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$
        let name_len = rest.char_indices().find(|&(i, c)| !(c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit()))).map_or(rest.len(), |(i, _)| i);
        let (name, after) = rest.split_at(name_len);
        let after = after.trim_start();
        let value = after.strip_prefix('=').map(|v| v.trim());
        let (Some(value), false) = (value, name.is_empty()) else {
            self.done = true;
            return Ok(false);
        };
        if value.is_empty() {
            self.done = true;
            return Ok(false);
        }
        let name = name.to_ascii_lowercase();
        if !matches!(name.as_str(), "syntax" | "escape" | "check") {
            self.done = true;
            return Ok(false);
        }
        if self.found.get(&name).is_some() {
            return Err(format!("only one {name} parser directive can be used").into());
        }
        if name == "escape" && value != "`" && value != "\\" {
            return Err(format!("invalid escape token '{value}' does not match ` or \\").into());
        }
        self.found.list.push(Directive { name, value: value.to_string(), line: lineno });
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises() {
        let mut p = DirectiveParser::default();
        assert!(p.parse_line("# syntax=docker/dockerfile:1", 1).unwrap());
        assert!(p.parse_line("#ESCAPE = `", 2).unwrap());
        assert!(p.parse_line("# check=skip=JSONArgsRecommended;error=true", 3).unwrap());
        assert_eq!(p.found.escape(), '`');
        assert_eq!(p.found.syntax(), Some("docker/dockerfile:1"));
        let c = p.found.check().unwrap();
        assert_eq!(c.skip, ["JSONArgsRecommended"]);
        assert!(c.error);
    }

    #[test]
    fn ends_on_other_lines() {
        let mut p = DirectiveParser::default();
        assert!(!p.parse_line("# unknown=x", 1).unwrap());
        assert!(!p.parse_line("# escape=`", 2).unwrap());
        assert_eq!(p.found.escape(), '\\');
        let mut p = DirectiveParser::default();
        assert!(!p.parse_line("", 1).unwrap());
        assert!(!p.parse_line("# escape=`", 2).unwrap());
    }

    #[test]
    fn errors() {
        let mut p = DirectiveParser::default();
        p.parse_line("# escape=\\", 1).unwrap();
        assert_eq!(p.parse_line("# escape=`", 2).unwrap_err().to_string(), "only one escape parser directive can be used");
        let mut p = DirectiveParser::default();
        assert!(p.parse_line("# escape=x", 1).unwrap_err().to_string().contains("invalid escape token 'x'"));
    }
}
