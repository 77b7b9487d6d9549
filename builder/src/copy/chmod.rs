//! `--chmod` applied to one file: octal replaces the permission bits; symbolic
//! (`u+x,g-w,o=r`, `a+X`, `u=g`) edits them as chmod(1) does (no umask: an empty "who"
//! means all).

use crate::dockerfile::Chmod;

/// The new permission bits (with setuid/setgid/sticky) of a file with `mode` (perm bits)
/// under `chmod`.
pub fn apply(chmod: &Chmod, mode: u32, is_dir: bool) -> u32 {
    match chmod {
        Chmod::Octal(m) => *m,
        Chmod::Symbolic(s) => symbolic(s, mode & 0o7777, is_dir),
    }
}

fn symbolic(spec: &str, mut mode: u32, is_dir: bool) -> u32 {
    for clause in spec.split(',') {
        let who_len = clause.chars().take_while(|c| "ugoa".contains(*c)).count();
        let who = &clause[..who_len];
        let mut mask: u32 = 0;
        for c in who.chars() {
            mask |= match c {
                'u' => 0o4700,
                'g' => 0o2070,
                'o' => 0o1007,
                _ => 0o7777,
            };
        }
        if who.is_empty() {
            mask = 0o7777;
        }
        let mut rest = clause[who_len..].chars().peekable();
        while let Some(op) = rest.next() {
            let mut bits: u32 = 0;
            while let Some(&c) = rest.peek() {
                if "+-=".contains(c) {
                    break;
                }
                rest.next();
                bits |= match c {
                    'r' => 0o444,
                    'w' => 0o222,
                    'x' => 0o111,
                    'X' if is_dir || mode & 0o111 != 0 => 0o111,
                    'X' => 0,
                    's' => 0o6000,
                    't' => 0o1000,
                    'u' => copy_class((mode >> 6) & 7),
                    'g' => copy_class((mode >> 3) & 7),
                    'o' => copy_class(mode & 7),
                    _ => 0,
                };
            }
            let b = bits & mask;
            match op {
                '+' => mode |= b,
                '-' => mode &= !b,
                '=' => {
                    // `=` clears the who-bits (not setuid/setgid of a directory, as chmod(1)).
                    let clear = if is_dir { mask & 0o1777 } else { mask };
                    mode = (mode & !clear) | b;
                }
                _ => {}
            }
        }
    }
    mode
}

/// rwx bits of one class copied to all three classes.
fn copy_class(rwx: u32) -> u32 {
    rwx | (rwx << 3) | (rwx << 6)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(spec: &str, mode: u32, dir: bool) -> u32 {
        apply(&Chmod::Symbolic(spec.into()), mode, dir)
    }

    #[test]
    fn symbolic_modes() {
        assert_eq!(apply(&Chmod::Octal(0o750), 0o644, false), 0o750);
        assert_eq!(s("u+x", 0o644, false), 0o744);
        assert_eq!(s("+x", 0o644, false), 0o755);
        assert_eq!(s("g-r,o-r", 0o644, false), 0o600);
        assert_eq!(s("a=r", 0o755, false), 0o444);
        assert_eq!(s("a+X", 0o644, false), 0o644);
        assert_eq!(s("a+X", 0o644, true), 0o755);
        assert_eq!(s("a+X", 0o744, false), 0o755);
        assert_eq!(s("u=rwx,go=rx", 0o600, false), 0o755);
        assert_eq!(s("g=u", 0o640, false), 0o660);
        assert_eq!(s("u+s", 0o755, false), 0o4755);
        assert_eq!(s("+t", 0o777, true), 0o1777);
    }
}
