//! Signal names as `kill` takes them (`KILL`, `SIGKILL`, `kill` or `9`), and the
//! signals that interrupt `create` and `run`.

use crate::error::{Context, Result};
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};

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

/// What a user or an engine sends to stop a command: a create or run that gets one
/// undoes what it made, where the default action would end it half way.
const INTERRUPTS: [Signal; 4] = [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP, Signal::SIGQUIT];

fn interrupt_set() -> SigSet {
    let mut set = SigSet::empty();
    for s in INTERRUPTS {
        set.add(s);
    }
    set
}

/// The interrupting signals, blocked for the rest of the process (so none is lost) and
/// readable from a signalfd (so create can wait for one beside its init).
pub struct Interrupts {
    fd: SignalFd,
}

impl Interrupts {
    pub fn block() -> Result<Interrupts> {
        let set = interrupt_set();
        nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&set), None).ctx("block signals")?;
        let fd = SignalFd::with_flags(&set, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK).ctx("signalfd")?;
        Ok(Interrupts { fd })
    }

    pub fn fd(&self) -> std::os::fd::BorrowedFd<'_> {
        use std::os::fd::AsFd;
        self.fd.as_fd()
    }

    /// A signal that has arrived, taken; None if none has.
    pub fn take(&self) -> Option<i32> {
        match self.fd.read_signal() {
            Ok(Some(info)) => Some(info.ssi_signo as i32),
            _ => None,
        }
    }
}

/// In a child cloned by a create that blocked the interrupting signals: takes them back,
/// so the init acts on them as before (a SIGTERM to a created container ends it). The
/// mask would otherwise survive into the sealed berth's exec. Their dispositions go back
/// to the default too: a caller started in the background by a shell ignores SIGINT and
/// SIGQUIT, and a created container must end on them as the started one does (its
/// process gets default dispositions at execve). Only sigset, signal and sigprocmask
/// calls: safe between clone and exec.
pub fn unblock_interrupts_in_child() {
    // SAFETY: a sigset on our stack, filled and passed to sigprocmask; SIG_DFL installs
    // no handler code; no allocation.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT] {
            libc::signal(s, libc::SIG_DFL);
            libc::sigaddset(&mut set, s);
        }
        libc::sigprocmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
    }
}

/// Takes an interrupting signal that is pending for this process, without waiting (for
/// a command that keeps them blocked, to pass one on).
pub fn take_pending_interrupt() -> Option<i32> {
    let set = interrupt_set();
    let zero = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: sigtimedwait with a valid set, no siginfo out-pointer and a zero timeout.
    let s = unsafe { libc::sigtimedwait(set.as_ref(), std::ptr::null_mut(), &zero) };
    (s > 0).then_some(s)
}

/// `SIGTERM` for 15: how an error names a signal.
pub fn name(sig: i32) -> String {
    match NAMES.iter().find(|(_, n)| *n == sig) {
        Some((k, _)) => format!("SIG{k}"),
        None => format!("signal {sig}"),
    }
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
