// berth's own C `main`, without std's runtime start-up: that start-up finds the main
// thread's stack guard by parsing /proc/self/maps and installs an alternate signal stack,
// work a short-lived command does on every start and never needs. std works without
// it (arguments come from glibc's init_array hook); the one part berth relies on,
// SIGPIPE ignored so that writes to a closed pipe or socket fail with EPIPE instead of
// killing berth halfway through a create, is done here.
#![no_main]

#[no_mangle]
pub extern "C" fn main(_argc: libc::c_int, _argv: *const *const libc::c_char) -> libc::c_int {
    // SAFETY: setting a signal's disposition to SIG_IGN installs no handler code.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
    berth::linux::fds::note_passed();
    berth::linux::fds::open_missing_stdio();
    let code = berth::cli::main();
    // Flushes stdout and exits, as returning from a std main would.
    std::process::exit(code)
}
