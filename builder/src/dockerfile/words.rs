//! Splitting an instruction's argument text the way Docker's parser does, before
//! any variable expansion: builder flags (`--name=value`), quote-aware words (kept
//! raw, for ENV/LABEL/ARG), whitespace lists, and the JSON (exec) form.

/// Docker's whitespace for splitting (`[\t\v\f\r ]+`).
pub(crate) fn is_split_ws(c: char) -> bool {
    matches!(c, '\t' | '\u{b}' | '\u{c}' | '\r' | ' ')
}

/// Split on runs of Docker whitespace (`reWhitespace.Split(s, -1)`).
pub(crate) fn split_whitespace(s: &str) -> Vec<String> {
    if s.is_empty() {
        return Vec::new();
    }
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_ws = false;
    for c in s.chars() {
        if is_split_ws(c) {
            if !in_ws {
                out.push(std::mem::take(&mut cur));
                in_ws = true;
            }
        } else {
            in_ws = false;
            cur.push(c);
        }
    }
    out.push(cur);
    out
}

/// Split into at most two parts at the first run of Docker whitespace.
pub(crate) fn split_whitespace2(s: &str) -> (String, Option<String>) {
    match s.char_indices().find(|&(_, c)| is_split_ws(c)) {
        None => (s.to_string(), None),
        Some((i, _)) => {
            let rest = s[i..].trim_start_matches(is_split_ws);
            (s[..i].to_string(), Some(rest.to_string()))
        }
    }
}

/// Leading `--flag[=value]` words of an instruction's argument text, and the rest.
/// Quotes and the escape character are processed inside flag words; `--` alone
/// ends the flags.
pub(crate) fn extract_builder_flags(line: &str, escape: char) -> (String, Vec<String>) {
    #[derive(PartialEq)]
    enum Phase {
        Spaces,
        Word,
        Quote,
    }
    let chars: Vec<(usize, char)> = line.char_indices().collect();
    let mut words = Vec::new();
    let mut phase = Phase::Spaces;
    let mut word = String::new();
    let mut quote = '\0';
    let mut blank_ok = false;
    let mut i = 0;
    while i <= chars.len() {
        let at_end = i == chars.len();
        let ch = if at_end { '\0' } else { chars[i].1 };
        if phase == Phase::Spaces {
            if at_end {
                break;
            }
            if ch.is_whitespace() {
                i += 1;
                continue;
            }
            let next_dash = chars.get(i + 1).map(|c| c.1) == Some('-');
            if ch != '-' || !next_dash {
                return (line[chars[i].0..].to_string(), words);
            }
            phase = Phase::Word;
        }
        if at_end {
            if word != "--" && (blank_ok || !word.is_empty()) {
                words.push(word);
            }
            return (String::new(), words);
        }
        if phase == Phase::Word {
            if ch.is_whitespace() {
                phase = Phase::Spaces;
                if word == "--" {
                    return (line[chars[i].0..].to_string(), words);
                }
                if blank_ok || !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
                word.clear();
                blank_ok = false;
                i += 1;
                continue;
            }
            if ch == '\'' || ch == '"' {
                quote = ch;
                blank_ok = true;
                phase = Phase::Quote;
                i += 1;
                continue;
            }
            let mut c = ch;
            if ch == escape {
                if i + 1 == chars.len() {
                    i += 1;
                    continue;
                }
                i += 1;
                c = chars[i].1;
            }
            word.push(c);
            i += 1;
            continue;
        }
        // in quote
        if ch == quote {
            phase = Phase::Word;
            i += 1;
            continue;
        }
        let mut c = ch;
        if ch == escape {
            if i + 1 == chars.len() {
                phase = Phase::Word;
                i += 1;
                continue;
            }
            i += 1;
            c = chars[i].1;
        }
        word.push(c);
        i += 1;
    }
    (String::new(), words)
}

/// Quote-aware split into words, keeping quotes and escapes in the words (they are
/// removed later by expansion). Used for ENV, LABEL and ARG.
pub(crate) fn parse_words(rest: &str, escape: char) -> Vec<String> {
    #[derive(PartialEq)]
    enum Phase {
        Spaces,
        Word,
        Quote,
    }
    let chars: Vec<char> = rest.chars().collect();
    let mut words = Vec::new();
    let mut phase = Phase::Spaces;
    let mut quote = '\0';
    let mut blank_ok = false;
    let mut word = String::new();
    let mut i = 0;
    while i <= chars.len() {
        let at_end = i == chars.len();
        let mut ch = if at_end { '\0' } else { chars[i] };
        if phase == Phase::Spaces {
            if at_end {
                break;
            }
            if ch.is_whitespace() {
                i += 1;
                continue;
            }
            phase = Phase::Word;
        }
        if at_end {
            if blank_ok || !word.is_empty() {
                words.push(word);
            }
            break;
        }
        if phase == Phase::Word {
            if ch.is_whitespace() {
                phase = Phase::Spaces;
                if blank_ok || !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
                blank_ok = false;
                i += 1;
                continue;
            }
            if ch == '\'' || ch == '"' {
                quote = ch;
                blank_ok = true;
                phase = Phase::Quote;
            }
            if ch == escape {
                if i + 1 == chars.len() {
                    i += 1;
                    continue;
                }
                word.push(ch);
                i += 1;
                ch = chars[i];
            }
            word.push(ch);
            i += 1;
            continue;
        }
        // in quote
        if ch == quote {
            phase = Phase::Word;
        }
        if ch == escape && quote != '\'' {
            if i + 1 == chars.len() {
                phase = Phase::Word;
                i += 1;
                continue;
            }
            word.push(ch);
            i += 1;
            ch = chars[i];
        }
        word.push(ch);
        i += 1;
    }
    words
}

pub(crate) enum JsonArgs {
    /// Not a JSON array (shell form).
    NotJson,
    /// A JSON array of strings.
    Strings(Vec<String>),
    /// A JSON array with something other than strings in it: an error in Docker.
    NotStrings,
}

/// Docker's `parseJSON`: a JSON array of strings, if the text is one.
pub(crate) fn parse_json_array(rest: &str) -> JsonArgs {
    let t = rest.trim_start();
    if !t.starts_with('[') {
        return JsonArgs::NotJson;
    }
    match serde_json::from_str::<Vec<serde_json::Value>>(t) {
        Err(_) => JsonArgs::NotJson,
        Ok(items) => {
            let mut out = Vec::with_capacity(items.len());
            for it in items {
                match it {
                    serde_json::Value::String(s) => out.push(s),
                    _ => return JsonArgs::NotStrings,
                }
            }
            JsonArgs::Strings(out)
        }
    }
}

/// Edit distance counting adjacent transpositions as one edit (optimal string
/// alignment), for "did you mean" suggestions.
pub(crate) fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, v) in d[0].iter_mut().enumerate() {
        *v = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[i - 1][j] + 1).min(d[i][j - 1] + 1).min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = v;
        }
    }
    d[a.len()][b.len()]
}

/// The closest candidate, if it is close enough to be a likely typo.
pub(crate) fn suggest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let w = word.to_ascii_lowercase();
    let mut best: Option<(usize, &str)> = None;
    for c in candidates {
        let d = edit_distance(&w, &c.to_ascii_lowercase());
        if best.is_none_or(|(bd, _)| d < bd) {
            best = Some((d, c));
        }
    }
    let (d, c) = best?;
    let limit = (w.chars().count() / 3).max(1) + usize::from(w.len() > 5);
    (d > 0 && d <= limit).then_some(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags() {
        let (rest, flags) = extract_builder_flags("--from=build --chown=1:1 a b", '\\');
        assert_eq!(flags, ["--from=build", "--chown=1:1"]);
        assert_eq!(rest, "a b");
        let (rest, flags) = extract_builder_flags("--mount=type=cache,target=\"/a b\" echo", '\\');
        assert_eq!(flags, ["--mount=type=cache,target=/a b"]);
        assert_eq!(rest, "echo");
        let (rest, flags) = extract_builder_flags("-- --notaflag x", '\\');
        assert!(flags.is_empty());
        assert_eq!(rest, " --notaflag x");
        let (rest, flags) = extract_builder_flags("--link", '\\');
        assert_eq!(flags, ["--link"]);
        assert_eq!(rest, "");
        let (rest, flags) = extract_builder_flags("-x y", '\\');
        assert!(flags.is_empty());
        assert_eq!(rest, "-x y");
    }

    #[test]
    fn words() {
        assert_eq!(parse_words(r#"a=1 b="x y" c='p q' d=e\ f"#, '\\'), ["a=1", "b=\"x y\"", "c='p q'", r"d=e\ f"]);
        assert_eq!(parse_words("  one   two ", '\\'), ["one", "two"]);
        assert_eq!(parse_words(r#"x="" y"#, '\\'), ["x=\"\"", "y"]);
    }

    #[test]
    fn json() {
        assert!(matches!(parse_json_array(r#"["a", "b c"]"#), JsonArgs::Strings(v) if v == ["a", "b c"]));
        assert!(matches!(parse_json_array(r#"[ "a", b ]"#), JsonArgs::NotJson));
        assert!(matches!(parse_json_array(r#"["a", 1]"#), JsonArgs::NotStrings));
        assert!(matches!(parse_json_array("echo [x]"), JsonArgs::NotJson));
    }

    #[test]
    fn suggestions() {
        assert_eq!(suggest("frm", ["from", "chown", "chmod"]), Some("from"));
        assert_eq!(suggest("RUNN", ["RUN", "CMD"]), Some("RUN"));
        assert_eq!(suggest("xyzzy", ["from", "chown"]), None);
        assert_eq!(split_whitespace("a  b\tc"), ["a", "b", "c"]);
        assert_eq!(split_whitespace2("FROM  x y"), ("FROM".to_string(), Some("x y".to_string())));
    }
}
