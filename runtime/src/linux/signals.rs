//! Signal names as `kill` takes them: `KILL`, `SIGKILL`, `kill` or `9`.

const NAMES: &[(&str, i32)] = &[
    ("HUP", libc::SIGHUP),
    ("INT", libc::SIGINT),
    ("QUIT", libc::SIGQUIT),
    ("ILL", libc::SIGILL),
    ("TRAP", libc::SIGTRAP),
    ("ABRT", libc::SIGABRT),
    ("IOT", libc::SIGIOT),
    ("BUS", libc::SIGBUS),
    ("FPE", libc::SIGFPE),
    ("KILL", libc::SIGKILL),
    ("USR1", libc::SIGUSR1),
    ("SEGV", libc::SIGSEGV),
    ("USR2", libc::SIGUSR2),
    ("PIPE", libc::SIGPIPE),
    ("ALRM", libc::SIGALRM),
    ("TERM", libc::SIGTERM),
    ("STKFLT", libc::SIGSTKFLT),
    ("CHLD", libc::SIGCHLD),
    ("CLD", libc::SIGCHLD),
    ("CONT", libc::SIGCONT),
    ("STOP", libc::SIGSTOP),
    ("TSTP", libc::SIGTSTP),
    ("TTIN", libc::SIGTTIN),
    ("TTOU", libc::SIGTTOU),
    ("URG", libc::SIGURG),
    ("XCPU", libc::SIGXCPU),
    ("XFSZ", libc::SIGXFSZ),
    ("VTALRM", libc::SIGVTALRM),
    ("PROF", libc::SIGPROF),
    ("WINCH", libc::SIGWINCH),
    ("IO", libc::SIGIO),
    ("POLL", libc::SIGPOLL),
    ("PWR", libc::SIGPWR),
    ("SYS", libc::SIGSYS),
];

pub fn parse(s: &str) -> Option<i32> {
    if let Ok(n) = s.parse::<i32>() {
        return (1..=64).contains(&n).then_some(n);
    }
    let up = s.to_ascii_uppercase();
    let name = up.strip_prefix("SIG").unwrap_or(&up);
    if let Some(&(_, n)) = NAMES.iter().find(|(k, _)| *k == name) {
        return Some(n);
    }
    // RTMIN+n / RTMAX-n
    let rtmin = libc::SIGRTMIN();
    let rtmax = libc::SIGRTMAX();
    if name == "RTMIN" {
        return Some(rtmin);
    }
    if name == "RTMAX" {
        return Some(rtmax);
    }
    if let Some(n) = name.strip_prefix("RTMIN+").and_then(|n| n.parse::<i32>().ok()) {
        return (rtmin + n <= rtmax).then_some(rtmin + n);
    }
    if let Some(n) = name.strip_prefix("RTMAX-").and_then(|n| n.parse::<i32>().ok()) {
        return (rtmax - n >= rtmin).then_some(rtmax - n);
    }
    None
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses_names_numbers_and_prefixes() {
        assert_eq!(super::parse("KILL"), Some(9));
        assert_eq!(super::parse("sigterm"), Some(15));
        assert_eq!(super::parse("10"), Some(10));
        assert_eq!(super::parse("RTMIN+1"), Some(libc::SIGRTMIN() + 1));
        assert_eq!(super::parse("NOPE"), None);
        assert_eq!(super::parse("0"), None);
    }
}
