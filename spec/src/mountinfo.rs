//! /proc/PID/mountinfo's text (proc_pid_mountinfo(5)), read by the runtime, the builder
//! and the tests alike.

/// A field with the kernel's octal escapes (`\040` for a space, `\011`, `\012`, `\134`)
/// undone.
pub fn unescape(s: &str) -> String {
    if !s.contains('\\') {
        return s.to_string();
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c)) {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    #[test]
    fn octal_escapes_are_undone_and_the_rest_kept() {
        assert_eq!(super::unescape("/a\\040b/c"), "/a b/c");
        assert_eq!(super::unescape("/tab\\011x\\134y"), "/tab\tx\\y");
        assert_eq!(super::unescape("/plain"), "/plain");
        assert_eq!(super::unescape("/short\\04"), "/short\\04");
    }
}
