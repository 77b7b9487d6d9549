//! berth-shim: one small process per container that owns its stdio, log, attach socket
//! and exit status, so that whoever started the container can go away while it runs
//! (what conmon is to runc for podman).
//!
//! See shim/README.md for the command line. In short: the shim detaches, runs
//! `<runtime> create` (and `start` with --start), returns to its caller once that is
//! done, then stays with the container until its init exits, writes the exit status,
//! runs the exit command and exits.
//!
//! # Attach socket
//!
//! A unix `SOCK_SEQPACKET` socket: every message is one packet, and the first byte of
//! each packet says what it is.
//!
//! From the shim to a client:
//! * `1` + data: the container wrote data to stdout (with --terminal: to the pty)
//! * `2` + data: the container wrote data to stderr
//! * `3` + ASCII decimal: the container exited with this status (128+signal when
//!   killed); the shim closes the connection after it.
//!
//! Data packets carry at most 8192 bytes after the tag. Clients only get output from
//! the moment they connect. A client must keep reading: the shim never waits for one,
//! and drops a client whose socket buffer is full.
//!
//! From a client to the shim (ignored unless the shim runs with --stdin):
//! * `0` + data: write data to the container's stdin (or pty); at most 8192 bytes
//! * `1`: close the container's stdin (EOF); not with --terminal
//! * `2` + rows (u16 LE) + cols (u16 LE): resize the pty (with --terminal)
//!
//! Any number of clients may connect; input from all of them is merged. An empty
//! packet, like closing the connection, ends the client.
//!
//! # Footprint
//!
//! The shim stays resident for every container, so it keeps its pages few. Release
//! builds (panic=abort) are `no_std` + `alloc` on libc: std's panic and backtrace
//! machinery alone would double the text the shim maps. Dev and test builds (unwinding
//! panics, which need std on stable) use std's runtime around the same code.

#![cfg_attr(all(not(test), panic = "abort"), no_std, no_main)]

extern crate alloc;

mod args;
mod log;
mod shim;
mod sys;

use alloc::format;
use alloc::vec::Vec;

/// The whole program, given the arguments after argv[0]; returns the exit status.
fn entry(args: Vec<Vec<u8>>) -> i32 {
    sys::ensure_stdio();
    // Writing to a pipe whose reader went away must fail, not kill the shim.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
    match args::parse(args.into_iter()) {
        Ok(args::Parsed::Run(a)) => shim::launch(a),
        Ok(args::Parsed::Help) => {
            sys::print(1, args::USAGE.as_bytes());
            0
        }
        Ok(args::Parsed::Version) => {
            sys::print(1, concat!("berth-shim ", env!("CARGO_PKG_VERSION"), "\n").as_bytes());
            0
        }
        Err(e) => {
            sys::print(2, format!("berth-shim: {e}\n\n{}", args::USAGE).as_bytes());
            2
        }
    }
}

/// The runtime for release builds: libc's malloc, abort on panic.
#[cfg(all(not(test), panic = "abort"))]
mod rt {
    use core::alloc::{GlobalAlloc, Layout};
    use libc::{c_char, c_int, c_void};

    struct Malloc;

    // malloc's alignment on the 64-bit targets berth supports.
    const MIN_ALIGN: usize = 16;

    unsafe impl GlobalAlloc for Malloc {
        unsafe fn alloc(&self, l: Layout) -> *mut u8 {
            if l.align() <= MIN_ALIGN && l.align() <= l.size() {
                libc::malloc(l.size()) as *mut u8
            } else {
                let mut p: *mut c_void = core::ptr::null_mut();
                let align = l.align().max(core::mem::size_of::<usize>());
                if libc::posix_memalign(&mut p, align, l.size()) != 0 {
                    return core::ptr::null_mut();
                }
                p as *mut u8
            }
        }
        unsafe fn dealloc(&self, p: *mut u8, _l: Layout) {
            libc::free(p as *mut c_void)
        }
        unsafe fn realloc(&self, p: *mut u8, l: Layout, new_size: usize) -> *mut u8 {
            if l.align() <= MIN_ALIGN && l.align() <= new_size {
                libc::realloc(p as *mut c_void, new_size) as *mut u8
            } else {
                let n = self.alloc(Layout::from_size_align_unchecked(new_size, l.align()));
                if !n.is_null() {
                    core::ptr::copy_nonoverlapping(p, n, l.size().min(new_size));
                    self.dealloc(p, l);
                }
                n
            }
        }
    }

    // Without std nothing else asks for libc itself.
    #[link(name = "c")]
    extern "C" {}

    #[global_allocator]
    static ALLOC: Malloc = Malloc;

    #[panic_handler]
    fn panic(info: &core::panic::PanicInfo) -> ! {
        let msg = alloc::format!("berth-shim: panic: {info}\n");
        crate::sys::print(2, msg.as_bytes());
        unsafe { libc::abort() }
    }

    // core and alloc ship built for unwinding and reference these; with panic=abort
    // nothing ever unwinds, so neither is ever called.
    #[no_mangle]
    extern "C" fn rust_eh_personality() {}

    #[no_mangle]
    extern "C" fn _Unwind_Resume() -> ! {
        unsafe { libc::abort() }
    }

    #[export_name = "main"]
    extern "C" fn main(argc: c_int, argv: *const *const c_char) -> c_int {
        let mut args = alloc::vec::Vec::with_capacity(argc.max(1) as usize);
        for i in 1..argc as usize {
            let a = unsafe { core::ffi::CStr::from_ptr(*argv.add(i)) };
            args.push(a.to_bytes().to_vec());
        }
        let code = crate::entry(args);
        unsafe { libc::exit(code) }
    }
}

#[cfg(not(all(not(test), panic = "abort")))]
#[cfg_attr(test, allow(dead_code))]
fn main() {
    use std::os::unix::ffi::OsStringExt;
    let args = std::env::args_os().skip(1).map(|a| a.into_vec()).collect();
    std::process::exit(entry(args))
}
