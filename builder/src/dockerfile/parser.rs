//! From text to logical instruction lines: parser directives, comments, empty
//! lines, continuation lines (with comment lines inside a continuation skipped),
//! leading whitespace, and here-document bodies. Follows BuildKit's parser.

use super::directives::{DirectiveParser, Directives};
use super::heredoc::{heredocs_from_line, Heredoc};
use super::words::{extract_builder_flags, parse_json_array, split_whitespace2, JsonArgs};

/// One logical instruction line before typing.
#[derive(Debug, Clone)]
pub(crate) struct RawNode {
    /// The instruction keyword as written (`run`, `RUN`).
    pub cmd: String,
    /// Builder flags as written (`--from=build`), quotes processed.
    pub flags: Vec<String>,
    /// The argument text after the flags, trimmed.
    pub args: String,
    /// The joined line (continuations removed).
    pub original: String,
    pub start_line: usize,
    pub end_line: usize,
    pub heredocs: Vec<Heredoc>,
}

/// A parse warning (docker prints these; they are not errors).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    pub line: usize,
    pub message: String,
}

pub(crate) struct Scanned {
    pub nodes: Vec<RawNode>,
    pub directives: Directives,
    pub escape: char,
    pub warnings: Vec<Warning>,
}

fn trim_newline(s: &str) -> &str {
    s.trim_end_matches(['\r', '\n'])
}

fn is_comment(s: &str) -> bool {
    s.trim_start().starts_with('#')
}

/// Strip a trailing continuation (escape char followed by spaces/tabs, not itself
/// escaped); `None` when the line does not continue.
fn trim_continuation(line: &str, escape: char) -> Option<String> {
    let t = line.trim_end_matches([' ', '\t']);
    let before = t.strip_suffix(escape)?;
    if before.ends_with(escape) {
        return None;
    }
    Some(before.to_string())
}

/// Split a command line into keyword, flags and arguments.
pub(crate) fn split_command(line: &str, escape: char) -> (String, Vec<String>, String) {
    let (cmd, rest) = split_whitespace2(line.trim());
    match rest {
        None => (cmd, Vec::new(), String::new()),
        Some(rest) => {
            let (args, flags) = extract_builder_flags(&rest, escape);
            (cmd, flags, args.trim().to_string())
        }
    }
}

/// Whether a node may carry here-documents (RUN/COPY/ADD, also under ONBUILD, not in JSON form).
fn can_contain_heredoc(cmd: &str, args: &str, escape: char) -> bool {
    let mut cmd = cmd.to_ascii_lowercase();
    let mut args = args.to_string();
    if cmd == "onbuild" {
        let (c, _, a) = split_command(&args, escape);
        cmd = c.to_ascii_lowercase();
        args = a;
    }
    if !matches!(cmd.as_str(), "run" | "copy" | "add") {
        return false;
    }
    !matches!(parse_json_array(&args), JsonArgs::Strings(_))
}

pub(crate) fn scan(text: &str) -> Result<Scanned, (usize, crate::Error)> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let mut dp = DirectiveParser::default();
    let mut nodes = Vec::new();
    let mut warnings = Vec::new();
    let mut i = 0; // index of the next line to read; line number = index + 1

    while i < lines.len() {
        let raw = lines[i];
        let lineno = i + 1;
        i += 1;
        let token = trim_newline(raw).trim_start();
        dp.parse_line(token, lineno).map_err(|e| (lineno, e))?;
        let escape = dp.found.escape();
        let token = if is_comment(token) { "" } else { token };
        let start_line = lineno;
        let (mut buf, mut end) = match trim_continuation(token, escape) {
            Some(t) => (t, false),
            None => (token.to_string(), true),
        };
        if end && buf.is_empty() {
            continue;
        }
        let mut empty_continuation = false;
        while !end && i < lines.len() {
            let raw = lines[i];
            i += 1;
            let token = trim_newline(raw);
            if !dp.done {
                dp.parse_line(token, i).map_err(|e| (i, e))?;
            }
            if is_comment(raw) {
                continue;
            }
            if token.trim_start().is_empty() {
                empty_continuation = true;
                continue;
            }
            match trim_continuation(token, escape) {
                Some(t) => buf.push_str(&t),
                None => {
                    buf.push_str(token);
                    end = true;
                }
            }
        }
        let end_line = i;
        if empty_continuation {
            warnings.push(Warning { line: end_line, message: format!("Empty continuation line found in: {buf}") });
        }
        let (cmd, flags, args) = split_command(&buf, escape);
        let mut node = RawNode { cmd, flags, args, original: buf.clone(), start_line, end_line, heredocs: Vec::new() };
        if buf.contains("<<") && can_contain_heredoc(&node.cmd, &node.args, escape) {
            for mut h in heredocs_from_line(&buf) {
                let mut content = String::new();
                let mut terminated = false;
                while i < lines.len() {
                    let raw = lines[i];
                    i += 1;
                    let mut candidate = trim_newline(raw);
                    if h.chomp {
                        candidate = candidate.trim_start_matches('\t');
                    }
                    if candidate == h.name {
                        terminated = true;
                        break;
                    }
                    content.push_str(raw);
                }
                if !terminated {
                    return Err((start_line, format!("unterminated heredoc {:?}", h.name).into()));
                }
                h.content = content;
                node.heredocs.push(h);
            }
            node.end_line = i;
        }
        nodes.push(node);
    }
    let escape = dp.found.escape();
    Ok(Scanned { nodes, directives: dp.found, escape, warnings })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmds(text: &str) -> Vec<(String, String, usize)> {
        scan(text).unwrap().nodes.into_iter().map(|n| (n.cmd, n.args, n.start_line)).collect()
    }

    #[test]
    fn continuation_and_comments() {
        let n = cmds("FROM a\n\n# comment\nRUN echo a \\\n  # inner comment\n    b \\\n\n  c\n  CMD x\n");
        assert_eq!(n[0], ("FROM".into(), "a".into(), 1));
        assert_eq!(n[1], ("RUN".into(), "echo a     b   c".into(), 4));
        assert_eq!(n[2], ("CMD".into(), "x".into(), 9));
        let s = scan("FROM a\nRUN a \\\n\n b\n").unwrap();
        assert_eq!(s.warnings.len(), 1);
    }

    #[test]
    fn escape_directive() {
        let s = scan("# escape=`\nFROM windows\nRUN dir `\n  c:\\\nCOPY a\\ b\n").unwrap();
        assert_eq!(s.escape, '`');
        assert_eq!(s.nodes[1].args, "dir   c:\\");
        assert_eq!(s.nodes[2].args, "a\\ b");
        // an escaped escape does not continue
        let s = scan("FROM a\nRUN echo \\\\\nCMD x\n").unwrap();
        assert_eq!(s.nodes.len(), 3);
    }

    #[test]
    fn directive_after_comment_is_comment() {
        let s = scan("# hello\n# escape=`\nFROM a\nRUN x \\\n y\n").unwrap();
        assert_eq!(s.escape, '\\');
        assert_eq!(s.nodes[1].args, "x  y");
    }

    #[test]
    fn crlf_and_bom() {
        let s = scan("\u{feff}FROM a\r\nRUN b \\\r\n c\r\n").unwrap();
        assert_eq!(s.nodes[0].cmd, "FROM");
        assert_eq!(s.nodes[1].args, "b  c");
    }

    #[test]
    fn heredoc_bodies() {
        let s = scan("FROM a\nRUN <<EOF\necho hi\n  EOF\nEOF\nCMD x\n").unwrap();
        assert_eq!(s.nodes[1].heredocs[0].content, "echo hi\n  EOF\n");
        assert_eq!(s.nodes[1].end_line, 5);
        assert_eq!(s.nodes[2].start_line, 6);
        let s = scan("FROM a\nRUN <<-EOF\n\techo hi\n\tEOF\n").unwrap();
        assert_eq!(s.nodes[1].heredocs[0].data(), "echo hi\n");
        assert_eq!(scan("FROM a\nRUN <<EOF\necho\n").err().unwrap().0, 2);
        // JSON form never has heredocs
        let s = scan("FROM a\nRUN [\"cat\", \"<<EOF\"]\nCMD x\n").unwrap();
        assert!(s.nodes[1].heredocs.is_empty());
        assert_eq!(s.nodes.len(), 3);
    }
}
