//! Here-documents: `RUN <<EOF`, `RUN <<-EOF` (leading tabs stripped), quoted
//! delimiters (`<<"EOF"`, `<<'EOF'`: no expansion), several on one line,
//! `COPY <<EOF /dest` (inline file), `RUN python3 <<EOF` (stdin of the command).

use super::expand::{Env, ExpandError, Lexer, NoEnv};

/// One here-document attached to an instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heredoc {
    /// The delimiter word with quotes removed (`EOF`); also the inline file's name
    /// for `COPY <<EOF`.
    pub name: String,
    /// File descriptor prefix (`3<<EOF`), 0 when none was written.
    pub fd: u32,
    /// False when any part of the delimiter was quoted: the body is taken literally.
    pub expand: bool,
    /// `<<-`: leading tabs are stripped from the body lines and the delimiter.
    pub chomp: bool,
    /// The body as written, every line with its newline, tabs not stripped.
    pub content: String,
}

impl Heredoc {
    /// The body with leading tabs stripped when `<<-` was used.
    pub fn data(&self) -> String {
        if self.chomp {
            chomp_heredoc_content(&self.content)
        } else {
            self.content.clone()
        }
    }

    /// The body for an inline file (`COPY <<EOF`): [`Heredoc::data`], with variables
    /// expanded unless the delimiter was quoted. Quotes in the body are kept.
    pub fn expanded_data(&self, env: &dyn Env) -> Result<String, ExpandError> {
        let data = self.data();
        if !self.expand {
            return Ok(data);
        }
        let mut lex = Lexer::new('\\');
        lex.skip_quotes = true;
        lex.expand_word(&data, env)
    }
}

/// Remove leading tabs from every line.
pub fn chomp_heredoc_content(s: &str) -> String {
    s.split_inclusive('\n').map(|l| l.trim_start_matches('\t')).collect()
}

/// Docker's `^(\d*)<<(-?)\s*([^<]*)$` on one word, then the delimiter checks.
pub fn parse_heredoc(word: &str) -> Option<Heredoc> {
    let digits = word.chars().take_while(|c| c.is_ascii_digit()).count();
    let rest = word[digits..].strip_prefix("<<")?;
    let (chomp, rest) = match rest.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, rest),
    };
    let rest = rest.trim_start_matches(|c: char| c.is_whitespace());
    if rest.is_empty() || rest.contains('<') {
        return None;
    }
    let fd = if digits > 0 { word[..digits].parse().unwrap_or(0) } else { 0 };

    let mut lex = Lexer::new('\\');
    lex.skip_unset = true;
    let words = lex.expand_words(rest, &NoEnv).ok()?;
    if words.len() != 1 {
        return None;
    }
    lex.raw_quotes = true;
    let raw = lex.expand_words(rest, &NoEnv).ok()?;
    if raw.len() != 1 {
        return None;
    }
    let count = |s: &str| s.chars().filter(|&c| c == '\'' || c == '"').count();
    let expand = count(&words[0]) == count(&raw[0]);
    Some(Heredoc { name: words[0].clone(), fd, expand, chomp, content: String::new() })
}

/// The here-documents a (joined) instruction line announces, in order.
pub fn heredocs_from_line(line: &str) -> Vec<Heredoc> {
    let mut lex = Lexer::new('\\');
    lex.raw_quotes = true;
    lex.raw_escapes = true;
    lex.skip_unset = true;
    let Ok(words) = lex.expand_words(line, &NoEnv) else { return Vec::new() };
    words.iter().filter_map(|w| parse_heredoc(w)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words() {
        let h = parse_heredoc("<<EOF").unwrap();
        assert_eq!((h.name.as_str(), h.expand, h.chomp, h.fd), ("EOF", true, false, 0));
        let h = parse_heredoc("<<-EOT").unwrap();
        assert!(h.chomp);
        let h = parse_heredoc("<<\"EOF\"").unwrap();
        assert_eq!((h.name.as_str(), h.expand), ("EOF", false));
        let h = parse_heredoc("<<'E'OF").unwrap();
        assert_eq!((h.name.as_str(), h.expand), ("EOF", false));
        let h = parse_heredoc("3<<FILE").unwrap();
        assert_eq!(h.fd, 3);
        let h = parse_heredoc("<< EOF").unwrap();
        assert_eq!(h.name, "EOF");
        assert!(parse_heredoc("<<").is_none());
        assert!(parse_heredoc("a<<EOF").is_none());
        assert!(parse_heredoc("<<<EOF").is_none());
        assert!(parse_heredoc("\"<<EOF\"").is_none());
    }

    #[test]
    fn from_line() {
        let hs = heredocs_from_line("RUN cat <<A > /a && cat <<-\"B\" > /b");
        assert_eq!(hs.iter().map(|h| h.name.as_str()).collect::<Vec<_>>(), ["A", "B"]);
        assert!(hs[1].chomp && !hs[1].expand);
        assert!(heredocs_from_line("RUN echo '<<EOF'").is_empty());
        assert_eq!(heredocs_from_line("COPY <<file1 <<file2 /dest/").len(), 2);
        assert_eq!(heredocs_from_line("RUN cat << EOF")[0].name, "EOF");
    }

    #[test]
    fn chomp_and_expand() {
        let h = Heredoc { name: "E".into(), fd: 0, expand: true, chomp: true, content: "\t\tx=$A\n\t'$A'\n".into() };
        assert_eq!(h.data(), "x=$A\n'$A'\n");
        let env = vec![("A".to_string(), "1".to_string())];
        assert_eq!(h.expanded_data(&env).unwrap(), "x=1\n'1'\n");
        let h = Heredoc { expand: false, ..h };
        assert_eq!(h.expanded_data(&env).unwrap(), "x=$A\n'$A'\n");
    }
}
