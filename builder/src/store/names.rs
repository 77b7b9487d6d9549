//! Image names, normalized as Docker does without the registry part: `busybox` ->
//! `busybox:latest`, `my/app:1.0` stays. Names are lowercase path components of
//! `[a-z0-9]` separated by `.`, `_`, `__`, `-`; the first may be a `host[:port]`. Tags
//! are `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`. Digest references (`name@sha256:..`) are
//! for lookups only ([`super::Store::resolve`]), never tags.

use std::io;

fn bad(name: &str, why: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, format!("invalid image name {name:?}: {why}"))
}

/// Docker's path component: `[a-z0-9]+` runs joined by `.`, `_`, `__` or `-+`.
fn valid_component(c: &str) -> bool {
    let b = c.as_bytes();
    if b.is_empty() || !b[0].is_ascii_alphanumeric() || !b[b.len() - 1].is_ascii_alphanumeric() {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if b[i].is_ascii_lowercase() || b[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && matches!(b[i], b'.' | b'_' | b'-') {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || (!sep.is_empty() && sep.bytes().all(|x| x == b'-'));
        if !ok {
            return false;
        }
    }
    true
}

fn valid_host(c: &str) -> bool {
    let (host, port) = match c.split_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (c, None),
    };
    !host.is_empty()
        && host.split('.').all(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') && !l.starts_with('-') && !l.ends_with('-'))
        && port.is_none_or(|p| !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()))
}

fn valid_tag(t: &str) -> bool {
    !t.is_empty()
        && t.len() <= 128
        && t.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
        && t.as_bytes()[0] != b'.'
        && t.as_bytes()[0] != b'-'
}

/// Splits a normalized or raw name into (repository, tag), defaulting the tag to latest.
pub fn split_name(name: &str) -> io::Result<(String, String)> {
    let n = normalize_name(name)?;
    let i = n.rfind(':').expect("normalized names have a tag");
    Ok((n[..i].to_string(), n[i + 1..].to_string()))
}

/// `name[:tag]` -> `name:tag` (tag `latest` by default), validated.
pub fn normalize_name(name: &str) -> io::Result<String> {
    if name.is_empty() {
        return Err(bad(name, "empty"));
    }
    if name.contains('@') {
        return Err(bad(name, "a digest reference cannot be used as a tag"));
    }
    if name.len() > 255 {
        return Err(bad(name, "longer than 255 characters"));
    }
    // A tag is after the last ':' that has no '/' after it (host:port/repo has one).
    let (repo, tag) = match name.rfind(':') {
        Some(i) if !name[i + 1..].contains('/') => (&name[..i], &name[i + 1..]),
        _ => (name, "latest"),
    };
    if !valid_tag(tag) {
        return Err(bad(name, "invalid tag"));
    }
    let comps: Vec<&str> = repo.split('/').collect();
    for (i, c) in comps.iter().enumerate() {
        let ok = valid_component(c) || (i == 0 && comps.len() > 1 && (c.contains('.') || c.contains(':') || *c == "localhost") && valid_host(c));
        if !ok {
            return Err(bad(name, "repository names are lowercase letters, digits and separators"));
        }
    }
    Ok(format!("{repo}:{tag}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_normalize_like_docker() {
        assert_eq!(normalize_name("busybox").unwrap(), "busybox:latest");
        assert_eq!(normalize_name("busybox:1.36").unwrap(), "busybox:1.36");
        assert_eq!(normalize_name("my/app:v1.0-rc_2").unwrap(), "my/app:v1.0-rc_2");
        assert_eq!(normalize_name("localhost:5000/app").unwrap(), "localhost:5000/app:latest");
        assert_eq!(normalize_name("reg.example.com:5000/a/b:t").unwrap(), "reg.example.com:5000/a/b:t");
        assert_eq!(split_name("a/b").unwrap(), ("a/b".to_string(), "latest".to_string()));
        for bad in ["", "Busybox", "a//b", "a:", ":t", "a:.t", "a@sha256:00", "../x", "a/../b", "a b", "-a", "a:t/x", "../x", "./x", "a..b/x"] {
            assert!(normalize_name(bad).is_err(), "{bad:?} accepted");
        }
    }
}
