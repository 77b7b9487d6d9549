//! `--format`: the subset of Go templates that docker's and podman's `images`, `history`
//! and `inspect` users write: literal text, `{{.Field}}`, `{{.Field.Sub}}`, `{{.}}`,
//! `{{json .}}` / `{{json .Field}}`, `\t` and `\n` as typed in a shell, and a `table`
//! prefix that prints a header row and aligns the columns. `json` alone prints each row
//! as one JSON object a line. Rows are JSON values with docker's field names; a field a
//! row does not have is refused, naming it, before anything is printed.

use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
enum Piece {
    Text(String),
    /// A field path (`[]` is `.`), printed as Go prints it, or as JSON.
    Field {
        path: Vec<String>,
        json: bool,
    },
}

/// A parsed `--format`.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    pieces: Vec<Piece>,
    /// `table ...`: a header row, columns aligned.
    table: bool,
    /// `json`: each row as a JSON object.
    json_rows: bool,
    /// The header of `{{.ID}}`: what the rows are the ids of.
    id_header: &'static str,
}

impl Template {
    pub fn parse(format: &str) -> crate::Result<Template> {
        if format.trim() == "json" {
            return Ok(Template { pieces: Vec::new(), table: false, json_rows: true, id_header: "IMAGE ID" });
        }
        let (table, body) = match format.strip_prefix("table") {
            Some(rest) if rest.is_empty() || rest.starts_with(char::is_whitespace) => (true, rest.trim_start()),
            _ => (false, format),
        };
        let body = body.replace("\\t", "\t").replace("\\n", "\n");
        let mut pieces = Vec::new();
        let mut rest = body.as_str();
        while let Some(open) = rest.find("{{") {
            if open > 0 {
                pieces.push(Piece::Text(rest[..open].to_string()));
            }
            let after = &rest[open + 2..];
            let close = after.find("}}").ok_or_else(|| crate::Error::msg(format!("template {format:?}: unclosed action (no }}}})")))?;
            pieces.push(action(after[..close].trim(), format)?);
            rest = &after[close + 2..];
        }
        if !rest.is_empty() {
            pieces.push(Piece::Text(rest.to_string()));
        }
        Ok(Template { pieces, table, json_rows: false, id_header: "IMAGE ID" })
    }

    /// Names the rows' `{{.ID}}` column (`CONTAINER ID`); default `IMAGE ID`.
    pub fn id_header(mut self, h: &'static str) -> Template {
        self.id_header = h;
        self
    }

    /// `--format json`: the caller prints its JSON as it likes (inspect: pretty).
    pub fn is_json_rows(&self) -> bool {
        self.json_rows
    }

    /// Checks every field against `sample` (a row with every field the command has).
    pub fn check(&self, sample: &Value) -> crate::Result<()> {
        for p in &self.pieces {
            if let Piece::Field { path, .. } = p {
                lookup(sample, path)?;
            }
        }
        Ok(())
    }

    /// One row's text.
    pub fn render(&self, row: &Value) -> crate::Result<String> {
        if self.json_rows {
            return Ok(serde_json::to_string(row)?);
        }
        let mut out = String::new();
        for p in &self.pieces {
            match p {
                Piece::Text(t) => out.push_str(t),
                Piece::Field { path, json } => {
                    let v = lookup(row, path)?;
                    if *json {
                        out.push_str(&serde_json::to_string(v)?);
                    } else {
                        out.push_str(&go_text(v));
                    }
                }
            }
        }
        Ok(out)
    }

    /// The whole output of `rows`, a line each (after a header for `table`), checked
    /// against `sample` first so that a bad field fails even with no rows.
    pub fn render_all(&self, sample: &Value, rows: &[Value]) -> crate::Result<String> {
        self.check(sample)?;
        let mut lines = Vec::new();
        if self.table {
            lines.push(self.header());
        }
        for r in rows {
            lines.push(self.render(r)?);
        }
        let text = if self.table { align(&lines) } else { lines.join("\n") };
        Ok(if text.is_empty() || text.ends_with('\n') { text } else { text + "\n" })
    }

    /// Docker's column names: `{{.CreatedSince}}` -> `CREATED`, `{{.ID}}` -> `IMAGE ID`, ...
    fn header(&self) -> String {
        let mut out = String::new();
        for p in &self.pieces {
            match p {
                Piece::Text(t) => out.push_str(t),
                Piece::Field { path, .. } => match path.last().map(String::as_str).unwrap_or("") {
                    "ID" | "Id" => out.push_str(self.id_header),
                    f => out.push_str(&header_name(f)),
                },
            }
        }
        out
    }
}

fn action(inner: &str, format: &str) -> crate::Result<Piece> {
    let (json, arg) = match inner.strip_prefix("json") {
        Some(rest) if rest.starts_with(char::is_whitespace) => (true, rest.trim()),
        _ => (false, inner),
    };
    if arg == "." {
        return Ok(Piece::Field { path: Vec::new(), json });
    }
    let Some(path) = arg.strip_prefix('.') else {
        return Err(crate::Error::msg(format!(
            "template {format:?}: {{{{{inner}}}}} is not supported (only {{{{.Field}}}}, {{{{.Field.Sub}}}} and {{{{json .Field}}}})"
        )));
    };
    let path: Vec<String> = path.split('.').map(str::to_string).collect();
    if path.iter().any(|p| p.is_empty() || !p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')) {
        return Err(crate::Error::msg(format!("template {format:?}: bad field {arg:?}")));
    }
    Ok(Piece::Field { path, json })
}

fn lookup<'a>(mut v: &'a Value, path: &[String]) -> crate::Result<&'a Value> {
    for (i, name) in path.iter().enumerate() {
        v = match v {
            Value::Object(m) => m.get(name),
            Value::Null => return Ok(&Value::Null),
            _ => None,
        }
        .ok_or_else(|| {
            let at = if i == 0 { String::new() } else { format!(" in .{}", path[..i].join(".")) };
            crate::Error::msg(format!("template: can't evaluate field {name}{at}: no such field"))
        })?;
    }
    Ok(v)
}

/// A value as Go's text/template prints it: strings bare, lists `[a b]`, maps `map[k:v]`.
fn go_text(v: &Value) -> String {
    match v {
        Value::Null => "<no value>".into(),
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Array(a) => format!("[{}]", a.iter().map(go_text).collect::<Vec<_>>().join(" ")),
        Value::Object(m) => format!("map[{}]", m.iter().map(|(k, v)| format!("{k}:{}", go_text(v))).collect::<Vec<_>>().join(" ")),
    }
}

fn header_name(field: &str) -> String {
    match field {
        "CreatedSince" => "CREATED".into(),
        "" => "VALUE".into(),
        f => {
            // CamelCase to words: CreatedAt -> CREATED AT.
            let mut s = String::new();
            let mut prev_upper = true;
            for c in f.chars() {
                if c.is_ascii_uppercase() && !prev_upper {
                    s.push(' ');
                }
                prev_upper = c.is_ascii_uppercase();
                s.push(c.to_ascii_uppercase());
            }
            s
        }
    }
}

/// Tab-separated columns padded to the widest cell plus three spaces (docker's tabwriter).
fn align(lines: &[String]) -> String {
    let rows: Vec<Vec<&str>> = lines.iter().map(|l| l.split('\t').collect()).collect();
    let mut widths: Vec<usize> = Vec::new();
    for r in &rows {
        for (i, c) in r.iter().enumerate().take(r.len().saturating_sub(1)) {
            let w = c.chars().count();
            if widths.len() <= i {
                widths.push(w);
            } else {
                widths[i] = widths[i].max(w);
            }
        }
    }
    let mut out = String::new();
    for r in &rows {
        let mut line = String::new();
        for (i, c) in r.iter().enumerate() {
            line.push_str(c);
            if i + 1 < r.len() {
                line.push_str(&" ".repeat(widths[i] - c.chars().count() + 3));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn row() -> Value {
        json!({"Repository": "busybox", "Tag": "latest", "ID": "0123456789ab", "Size": "1.2MB",
               "Config": {"Env": ["A=1", "B=2"], "Cmd": ["sh"], "Labels": {"k": "v"}}, "Empty": null})
    }

    fn render(f: &str) -> String {
        Template::parse(f).unwrap().render(&row()).unwrap()
    }

    #[test]
    fn fields_and_literal_text() {
        assert_eq!(render("{{.Repository}}:{{ .Tag }} id={{.ID}}"), "busybox:latest id=0123456789ab");
        assert_eq!(render("{{.Repository}}\\t{{.Tag}}\\n"), "busybox\tlatest\n");
    }

    #[test]
    fn nested_fields_print_as_go_does() {
        assert_eq!(render("{{.Config.Env}}"), "[A=1 B=2]");
        assert_eq!(render("{{.Config.Labels}}"), "map[k:v]");
        assert_eq!(render("{{.Empty}}"), "<no value>");
    }

    #[test]
    fn json_function_prints_json() {
        assert_eq!(render("{{json .Config.Cmd}}"), r#"["sh"]"#);
        let whole: Value = serde_json::from_str(&render("{{json .}}")).unwrap();
        assert_eq!(whole, row());
        let t = Template::parse("json").unwrap();
        assert_eq!(serde_json::from_str::<Value>(&t.render(&row()).unwrap()).unwrap(), row());
    }

    #[test]
    fn table_prints_docker_headers_and_aligns_columns() {
        let t = Template::parse("table {{.Repository}}\\t{{.Tag}}\\t{{.ID}}\\t{{.CreatedSince}}").unwrap();
        let sample = json!({"Repository": "", "Tag": "", "ID": "", "CreatedSince": ""});
        let rows = [
            json!({"Repository": "a-long-name", "Tag": "1", "ID": "x", "CreatedSince": "now"}),
            json!({"Repository": "b", "Tag": "latest", "ID": "y", "CreatedSince": "then"}),
        ];
        let out = t.render_all(&sample, &rows).unwrap();
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], "REPOSITORY    TAG      IMAGE ID   CREATED");
        assert_eq!(lines[1], "a-long-name   1        x          now");
        assert_eq!(lines[2], "b             latest   y          then");
    }

    #[test]
    fn unknown_fields_are_refused_by_name_even_with_no_rows() {
        let t = Template::parse("{{.Repository}} {{.Nope}}").unwrap();
        let e = t.render_all(&row(), &[]).unwrap_err().to_string();
        assert!(e.contains("Nope"), "{e}");
        let e = Template::parse("{{.Config.Bogus}}").unwrap().check(&row()).unwrap_err().to_string();
        assert!(e.contains("Bogus") && e.contains(".Config"), "{e}");
    }

    #[test]
    fn unsupported_actions_and_unclosed_braces_are_refused() {
        assert!(Template::parse("{{range .Config.Env}}x{{end}}").is_err());
        assert!(Template::parse("{{.Repository").is_err());
        assert!(Template::parse("{{.Repo-sitory}}").is_err());
    }
}
